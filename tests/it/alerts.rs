//! Alert routing rendered both ways: an Alertmanager configuration in a Secret, and an
//! `AlertmanagerConfig` custom resource (webhook URLs as Secret references, never inline).

use cairn_plan::alerts::{AlertFormat, RouteFormat, RuleFormat, with_alert_objects};

/// The alert objects of an environment `name` routed to `notify`, as a YAML stream.
fn routing(name: &str, notify: &str, routes: RouteFormat) -> String {
    let script = format!(
        r#"
let env = environment("{name}", #{{}});
env.namespace("{name}", #{{}});
env.alert("PodCrashLooping", #{{ expr: "increase(kube_pod_container_status_restarts_total[15m]) > 3", severity: "critical" }});
env.alert_route({notify});
"#
    );
    let eval = cairn_stdlib::evaluate(
        "alerts.rhai",
        &script,
        &[],
        &cairn_stdlib::EvalOptions::default(),
    );
    assert!(!eval.has_errors(), "{:?}", eval.diagnostics);
    let state = with_alert_objects(
        &eval.state,
        AlertFormat {
            rules: RuleFormat::PrometheusOperator,
            routes,
        },
    );
    let mut out = String::new();
    for r in state
        .kube_objects()
        .filter(|r| matches!(r.id.kind.as_str(), "Secret" | "AlertmanagerConfig"))
    {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&r.body.to_json()).expect("yaml"));
    }
    out
}

fn all_receivers(routes: RouteFormat) -> String {
    [
        ("staging", "slack(\"#staging-alerts\")"),
        ("production", "email(\"oncall@example.com\")"),
        (
            "preview",
            "webhook(\"https://hooks.example.com/T0/B0/s3cr3t\")",
        ),
    ]
    .iter()
    .map(|(env, notify)| routing(env, notify, routes))
    .collect()
}

#[test]
fn routing_renders_as_an_alertmanager_secret() {
    insta::assert_snapshot!("routing-secret.yaml", all_receivers(RouteFormat::Secret));
}

#[test]
fn routing_renders_as_an_alertmanager_config_resource() {
    let text = all_receivers(RouteFormat::AlertmanagerConfig);
    insta::assert_snapshot!("routing-alertmanagerconfig.yaml", text);
}

#[test]
fn an_alertmanager_config_never_holds_a_webhook_url_inline() {
    let text = routing(
        "preview",
        "webhook(\"https://hooks.example.com/T0/B0/s3cr3t\")",
        RouteFormat::AlertmanagerConfig,
    );
    let docs: Vec<&str> = text.split("---\n").filter(|d| !d.is_empty()).collect();
    let config = docs
        .iter()
        .find(|d| d.contains("kind: AlertmanagerConfig"))
        .expect("an AlertmanagerConfig");
    assert!(!config.contains("s3cr3t"), "{config}");
    assert!(config.contains("name: preview-alert-receivers"), "{config}");
    let secret = docs
        .iter()
        .find(|d| d.contains("kind: Secret"))
        .expect("the receivers' Secret");
    assert!(
        secret.contains("webhook-1: https://hooks.example.com/T0/B0/s3cr3t"),
        "{secret}"
    );
}

#[test]
fn each_environment_routes_only_its_own_alerts() {
    for routes in [RouteFormat::Secret, RouteFormat::AlertmanagerConfig] {
        let staging = routing("staging", "slack(\"#staging-alerts\")", routes);
        assert!(
            staging.contains("environment=\\\"staging\\\"") || staging.contains("value: staging"),
            "{staging}"
        );
        assert!(!staging.contains("production"), "{staging}");
    }
}

#[test]
fn routing_becomes_an_alertmanager_config_when_the_cluster_serves_it() {
    let cluster = cairn_tests::TestCluster::start(cairn_sandbox::SandboxConfig::default());
    let script = cluster.dir.join("alerts.rhai");
    std::fs::write(
        &script,
        r##"
let env = environment("mon", #{});
env.namespace("mon", #{});
env.alert("Down", #{ expr: "up == 0" });
env.alert_route(webhook("https://hooks.example.com/T0/B0/s3cr3t"));
"##,
    )
    .expect("script written");
    let script = script.to_string_lossy().into_owned();
    // Without the operator's v1alpha1 API: an Alertmanager configuration in a Secret.
    let out = cluster.cairn(&["plan", &script]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("+ Secret/mon/mon-alertmanager"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("AlertmanagerConfig"), "{}", out.stdout);
    cluster.runtime.block_on(async {
        let client = cairn_tests::kube_client(&cluster).await;
        let api: kube::Api<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        > = kube::Api::all(client);
        let crd = serde_json::from_value(serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "alertmanagerconfigs.monitoring.coreos.com"},
            "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
                "names": {"plural": "alertmanagerconfigs", "singular": "alertmanagerconfig", "kind": "AlertmanagerConfig", "listKind": "AlertmanagerConfigList"},
                "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
        }))
        .expect("crd");
        api.create(&kube::api::PostParams::default(), &crd)
            .await
            .expect("CRD created");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    });
    let out = cluster.cairn(&["apply", &script, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("✓ AlertmanagerConfig/mon/mon-alert-routing created"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("✓ Secret/mon/mon-alert-receivers created"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("s3cr3t"), "{}", out.stdout);
    // Applied as planned: the next plan has nothing to do.
    let out = cluster.cairn(&["plan", &script]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
}

const WEBHOOK: &str = "https://hooks.slack.com/services/T0/B0/hunter2";
const SMTP_PASSWORD: &str = "smtp-hunter2";

/// The alert objects of an environment whose receivers take their secrets from variables.
fn routing_with_secrets(routes: RouteFormat) -> cairn_model::DesiredState {
    let script = r##"
let env = environment("staging", #{});
env.namespace("staging", #{});
env.alert("PodCrashLooping", #{ expr: "increase(kube_pod_container_status_restarts_total[15m]) > 3", severity: "critical" });
env.alert_route(slack(#{ channel: "#staging-alerts", webhook: secret_env("SLACK_WEBHOOK") }));
"##;
    let options = cairn_stdlib::EvalOptions {
        vars: [("SLACK_WEBHOOK", WEBHOOK), ("SMTP_PASSWORD", SMTP_PASSWORD)]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..cairn_stdlib::EvalOptions::default()
    };
    let mut eval = cairn_stdlib::evaluate("alerts.rhai", script, &[], &options);
    assert!(!eval.has_errors(), "{:?}", eval.diagnostics);
    // A second receiver: e-mail through an SMTP server with a password.
    let email = cairn_stdlib::evaluate(
        "email.rhai",
        r##"
let env = environment("staging", #{});
env.namespace("staging", #{});
env.alert_route(email(#{ to: "oncall@example.com", from: "alerts@example.com", smarthost: "smtp.example.com:587", username: "alerts", password: secret_env("SMTP_PASSWORD"), send_resolved: false }));
"##,
        &[],
        &options,
    );
    assert!(!email.has_errors(), "{:?}", email.diagnostics);
    let mut route = email
        .state
        .resources
        .into_iter()
        .find(|r| r.id.kind == "AlertRoute")
        .expect("the e-mail route");
    route.id.name = "email".into();
    eval.state.resources.push(route);
    with_alert_objects(
        &eval.state,
        AlertFormat {
            rules: RuleFormat::ConfigMap,
            routes,
        },
    )
}

fn yaml_of(state: &cairn_model::DesiredState) -> String {
    let mut out = String::new();
    for r in state
        .kube_objects()
        .filter(|r| matches!(r.id.kind.as_str(), "Secret" | "AlertmanagerConfig"))
    {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&r.body.to_json()).expect("yaml"));
    }
    out
}

#[test]
fn a_slack_webhook_and_an_smtp_password_come_from_the_secret_never_the_configuration() {
    for routes in [RouteFormat::Secret, RouteFormat::AlertmanagerConfig] {
        let state = routing_with_secrets(routes);
        let text = yaml_of(&state);
        assert!(!text.contains("hunter2"), "{text}");
        let name = match routes {
            RouteFormat::Secret => "routing-secret-with-credentials.yaml",
            RouteFormat::AlertmanagerConfig => "routing-alertmanagerconfig-with-credentials.yaml",
        };
        insta::assert_snapshot!(name, text);
        // The Secret holds the real values only when revealed, at apply.
        let secret = state
            .kube_objects()
            .find(|r| r.id.kind == "Secret")
            .expect("a Secret");
        let revealed = secret.body.reveal(&|_| None).expect("revealed");
        let data = revealed["stringData"].as_object().expect("stringData");
        let values: Vec<&str> = data.values().filter_map(|v| v.as_str()).collect();
        assert!(values.contains(&WEBHOOK), "{data:?}");
        assert!(values.contains(&SMTP_PASSWORD), "{data:?}");
    }
}

#[test]
fn the_secret_format_reads_each_credential_from_a_file_beside_the_configuration() {
    let state = routing_with_secrets(RouteFormat::Secret);
    let secret = state
        .kube_objects()
        .find(|r| r.id.kind == "Secret")
        .expect("a Secret")
        .body
        .to_json();
    let config: serde_json::Value = serde_json::from_str(
        secret["stringData"]["alertmanager.yaml"]
            .as_str()
            .expect("config"),
    )
    .expect("JSON config");
    let dir = cairn_plan::alerts::ALERTMANAGER_CONFIG_DIR;
    let slack = &config["receivers"][0]["slack_configs"][0];
    let file = slack["api_url_file"].as_str().expect("api_url_file");
    let key = file
        .strip_prefix(&format!("{dir}/"))
        .expect("in the mounted directory");
    assert_eq!(secret["stringData"][key], "<sensitive: $SLACK_WEBHOOK>");
    let email = &config["receivers"][0]["email_configs"][0];
    assert_eq!(email["smarthost"], "smtp.example.com:587");
    assert_eq!(email["send_resolved"], false);
    let file = email["auth_password_file"]
        .as_str()
        .expect("auth_password_file");
    let key = file
        .strip_prefix(&format!("{dir}/"))
        .expect("in the mounted directory");
    assert_eq!(secret["stringData"][key], "<sensitive: $SMTP_PASSWORD>");
}

#[test]
fn a_slack_receiver_needs_its_channel_and_webhook() {
    let eval = cairn_stdlib::evaluate(
        "alerts.rhai",
        r##"
let env = environment("staging", #{});
env.namespace("staging", #{});
env.alert_route(slack(#{ chanel: "#staging-alerts" }));
"##,
        &[],
        &cairn_stdlib::EvalOptions::default(),
    );
    let messages: Vec<&str> = eval
        .diagnostics
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert!(
        messages.contains(&"slack(...) needs the option `channel`"),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"slack(...) needs the option `webhook`"),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"slack(...) has no option `chanel`"),
        "{messages:?}"
    );
}

#[test]
fn the_monitoring_stack_applies_with_alertmanager_reading_the_slack_webhook_from_its_secret() {
    let cluster = cairn_tests::TestCluster::start(cairn_sandbox::SandboxConfig {
        pod_start_delay: std::time::Duration::from_millis(50),
        ..cairn_sandbox::SandboxConfig::default()
    });
    let script = cluster.write(
        "mon.rhai",
        r##"
import "monitoring" as monitoring;
import "redis" as redis;
let env = environment("mon", #{});
env.namespace("mon", #{ isolate: #{ allow_within: true } });
let cache = redis::instance(env, "cache", #{ metrics: true, storage: "1Gi" });
monitoring::stack(env, #{ storage: "1Gi", grafana_storage: "1Gi",
    prometheus_resources: #{ cpu: "100m", memory: "128Mi" }, grafana_resources: #{ cpu: "100m", memory: "128Mi" } });
monitoring::alerts(env, #{ notify: slack(#{ channel: "#mon-alerts", webhook: secret_env("SLACK_WEBHOOK") }) });
"##,
    );
    let plugins = cairn_tests::root().join("plugins");
    let plugins = plugins.to_string_lossy().into_owned();
    let vars = [
        ("SLACK_WEBHOOK", WEBHOOK),
        ("CAIRN_PLUGIN_PATH", plugins.as_str()),
    ];
    let out = cluster.cairn_with(&["apply", &script, "--yes"], &vars);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for created in [
        "Secret/mon/mon-alertmanager created",
        "ConfigMap/mon/mon-scrape-targets created",
        "Deployment/mon/alertmanager",
        "Deployment/mon/kube-state-metrics",
        "RoleBinding/mon/kube-state-metrics",
    ] {
        assert!(
            out.stdout.contains(created),
            "no «{created}»:\n{}",
            out.stdout
        );
    }
    assert!(!out.stdout.contains("hunter2") && !out.stderr.contains("hunter2"));
    cluster.runtime.block_on(async {
        let client = cairn_tests::kube_client(&cluster).await;
        let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
            kube::Api::namespaced(client.clone(), "mon");
        let secret = secrets
            .get("mon-alertmanager")
            .await
            .expect("the routing Secret");
        let data = secret.data.expect("data");
        let webhook = data.get("api-url-1").expect("the webhook's file");
        assert_eq!(webhook.0, WEBHOOK.as_bytes());
        let config = String::from_utf8(data["alertmanager.yaml"].0.clone()).expect("text");
        assert!(!config.contains("hunter2"), "{config}");
        assert!(
            config.contains("/etc/alertmanager/config/api-url-1"),
            "{config}"
        );
        let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
            kube::Api::namespaced(client.clone(), "mon");
        let am = deployments.get("alertmanager").await.expect("Alertmanager");
        assert_eq!(am.status.and_then(|s| s.ready_replicas), Some(1));
        let pod = am.spec.template.spec.expect("pod spec");
        let volume = &pod.volumes.expect("volumes")[0];
        assert_eq!(
            volume
                .secret
                .as_ref()
                .and_then(|s| s.secret_name.as_deref()),
            Some("mon-alertmanager")
        );
        let configs: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client, "mon");
        let targets = configs.get("mon-scrape-targets").await.expect("targets");
        let file = &targets.data.expect("data")["targets.json"];
        assert!(file.contains("cache:9121"), "{file}");
    });
    let out = cluster.cairn_with(&["plan", &script], &vars);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
}

/// Every component with `metrics: true`, a monitoring stack, and rules on their metrics.
const EXPORTERS: &str = r##"
import "postgres" as postgres;
import "redis" as redis;
import "rabbitmq" as rabbitmq;
import "cockroachdb" as cockroachdb;
import "monitoring" as monitoring;
let env = environment("exp", #{});
env.namespace("exp", #{ isolate: #{ allow_within: true } });
let db = postgres::instance(env, "db", #{ metrics: true });
let cache = redis::instance(env, "cache", #{ metrics: true });
let mq = rabbitmq::instance(env, "mq", #{ metrics: true });
let crdb = cockroachdb::cluster(env, "crdb", #{ metrics: true });
monitoring::stack(env, #{});
env.alert("PostgresDown", #{ expr: "pg_up == 0" });
env.alert("RedisDown", #{ expr: "redis_up == 0" });
env.alert("RangesUnavailable", #{ expr: "sum(ranges_unavailable) > 0" });
env.alert("QueueBacklog", #{ expr: "sum(rabbitmq_queue_messages_ready) > 1000" });
env.alert("PodsNotReady", #{ expr: "kube_deployment_status_replicas_unavailable > 0" });
env.job("seed", #{ image: "busybox:1.36", command: ["true"], after: [crdb, db] });
"##;

#[test]
fn exporters_run_beside_their_databases_and_their_metrics_satisfy_the_rules() {
    let plugins = vec![cairn_tests::root().join("plugins")];
    let eval = cairn_stdlib::evaluate(
        "exporters.rhai",
        EXPORTERS,
        &plugins,
        &cairn_stdlib::EvalOptions::default(),
    );
    let problems: Vec<String> = eval
        .diagnostics
        .iter()
        .map(|d| format!("{}: {}", d.code, d.message))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    let body = |kind: &str, name: &str| {
        eval.state
            .resources
            .iter()
            .find(|r| r.id.kind == kind && r.id.name == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
            .body
            .to_json()
    };
    for (name, image, port) in [
        (
            "db",
            "quay.io/prometheuscommunity/postgres-exporter:v0.15.0",
            9187,
        ),
        ("cache", "oliver006/redis_exporter:v1.62.0", 9121),
    ] {
        let set = body("StatefulSet", name);
        let typed: k8s_openapi::api::apps::v1::StatefulSet =
            serde_json::from_value(set.clone()).expect("a valid StatefulSet");
        assert_eq!(serde_json::to_value(&typed).expect("json"), set);
        let template = &set["spec"]["template"];
        let exporter = &template["spec"]["containers"][1];
        assert_eq!(exporter["image"], image, "{set}");
        assert_eq!(exporter["ports"][0]["containerPort"], port);
        let annotations = &template["metadata"]["annotations"];
        assert_eq!(annotations["prometheus.io/scrape"], "true");
        assert_eq!(annotations["prometheus.io/port"], port.to_string());
        let service = body("Service", name);
        assert!(
            service.to_string().contains(&format!("\"port\":{port}")),
            "{service}"
        );
        // The exporter reads the database's credentials from its Secret.
        assert!(
            !exporter.to_string().contains("\"value\":\"<sensitive"),
            "{exporter}"
        );
    }
    let mq = body("ScrapeTarget", "mq");
    assert_eq!(mq["targets"][0], "mq:15692");
    let crdb = body("ScrapeTarget", "crdb");
    assert_eq!(crdb["path"], "/_status/vars");
    assert_eq!(crdb["targets"].as_array().map(Vec::len), Some(3));
    // The Prometheus of the stack reads them from the file written at plan time.
    let state = with_alert_objects(&eval.state, RuleFormat::ConfigMap);
    let targets = state
        .kube_objects()
        .find(|r| r.id.name == "exp-scrape-targets")
        .expect("the targets ConfigMap")
        .body
        .to_json();
    let groups: serde_json::Value =
        serde_json::from_str(targets["data"]["targets.json"].as_str().expect("file"))
            .expect("file discovery JSON");
    let jobs: Vec<&str> = groups
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["labels"]["job"].as_str())
        .collect();
    for job in [
        "db",
        "cache",
        "mq",
        "crdb",
        "kube-state-metrics",
        "alertmanager",
        "prometheus",
    ] {
        assert!(jobs.contains(&job), "{job} not scraped: {jobs:?}");
    }
}

/// The default alert pack with the stack and two TLS routes; `stack` options appended.
fn pack(stack: &str) -> cairn_stdlib::Evaluation {
    let script = format!(
        r##"
import "monitoring" as monitoring;
let env = environment("pk", #{{ domain: "pk.example.com", acme: letsencrypt(#{{ email: "ops@pk.example.com" }}) }});
env.namespace("pk", #{{ isolate: #{{}} }});
let web = env.deployment("web", #{{ image: "nginx:1.27", port: 80, ready: http_get("/", 80) }});
let tls = env.certificate("pk", ["app.pk.example.com", "www.pk.example.com"]);
env.route("app.pk.example.com", web, #{{ tls: tls }});
env.route("www.pk.example.com", web, #{{ tls: tls }});
monitoring::stack(env, #{{ {stack} }});
monitoring::alerts(env, #{{}});
"##
    );
    let plugins = vec![cairn_tests::root().join("plugins")];
    cairn_stdlib::evaluate(
        "pack.rhai",
        &script,
        &plugins,
        &cairn_stdlib::EvalOptions::default(),
    )
}

fn unscraped(eval: &cairn_stdlib::Evaluation) -> Vec<String> {
    eval.diagnostics
        .iter()
        .filter(|d| d.code == cairn_model::Code::MetricNotScraped)
        .map(|d| d.message.clone())
        .collect()
}

#[test]
fn the_backup_and_certificate_rules_query_what_the_stack_scrapes() {
    let eval = pack("");
    let problems: Vec<String> = eval
        .diagnostics
        .iter()
        .map(|d| format!("{}: {}", d.code, d.message))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    // Without kube-state-metrics or the blackbox exporter, the rules that need them say so.
    let without = unscraped(&pack("kube_state_metrics: false, blackbox: false"));
    for expected in [
        "alert `BackupStale` queries `kube_cronjob_status_last_successful_time`",
        "alert `BackupFailed` queries `kube_job_status_failed`",
        "alert `CertificateExpiringSoon` queries `probe_ssl_earliest_cert_expiry`",
    ] {
        assert!(
            without.iter().any(|m| m.starts_with(expected)),
            "no «{expected}» in {without:#?}"
        );
    }
    let no_probes = unscraped(&pack("blackbox: false"));
    assert_eq!(no_probes.len(), 1, "{no_probes:#?}");

    // Prometheus probes each TLS host through the exporter: the multi-target relabelling in
    // prometheus.yml, the hosts in the probes file written at plan time.
    let body = |kind: &str, name: &str| {
        eval.state
            .resources
            .iter()
            .find(|r| r.id.kind == kind && r.id.name == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
            .body
            .to_json()
    };
    let config: serde_json::Value = serde_json::from_str(
        body("ConfigMap", "prometheus-config")["data"]["prometheus.yml"]
            .as_str()
            .expect("prometheus.yml"),
    )
    .expect("JSON");
    let blackbox = config["scrape_configs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["job_name"] == "blackbox")
        .expect("the blackbox job")
        .clone();
    assert_eq!(blackbox["metrics_path"], "/probe");
    assert_eq!(blackbox["params"]["module"][0], "tls_connect");
    assert_eq!(
        blackbox["relabel_configs"],
        serde_json::json!([
            { "source_labels": ["__address__"], "target_label": "__param_target" },
            { "source_labels": ["__param_target"], "target_label": "instance" },
            { "target_label": "__address__", "replacement": "blackbox-exporter:9115" },
        ])
    );
    let exporter_config: serde_json::Value = serde_json::from_str(
        body("ConfigMap", "blackbox-exporter-config")["data"]["config.yml"]
            .as_str()
            .expect("config.yml"),
    )
    .expect("JSON");
    assert_eq!(
        exporter_config["modules"]["tls_connect"],
        serde_json::json!({ "prober": "tcp", "timeout": "10s", "tcp": { "tls": true } })
    );
    let state = with_alert_objects(&eval.state, RuleFormat::ConfigMap);
    let targets = state
        .kube_objects()
        .find(|r| r.id.name == "pk-scrape-targets")
        .expect("the targets ConfigMap")
        .body
        .to_json();
    let probes: serde_json::Value = serde_json::from_str(
        targets["data"]["probes-blackbox.json"]
            .as_str()
            .expect("the probes file"),
    )
    .expect("JSON");
    assert_eq!(
        probes,
        serde_json::json!([{
            "targets": ["app.pk.example.com:443", "www.pk.example.com:443"],
            "labels": { "job": "blackbox", "namespace": "pk" },
        }])
    );
    let scraped = targets["data"]["targets.json"].as_str().expect("targets");
    assert!(!scraped.contains("\"blackbox\""), "{scraped}");

    // Only the exporter's pods may leave the cluster, only on 443.
    let policy = body("NetworkPolicy", "allow-blackbox-exporter-probes");
    assert_eq!(
        policy["spec"]["podSelector"],
        serde_json::json!({ "matchLabels": { "app.kubernetes.io/name": "blackbox-exporter" } })
    );
    assert_eq!(
        policy["spec"]["egress"],
        serde_json::json!([{
            "to": [{ "ipBlock": { "cidr": "0.0.0.0/0", "except": ["10.42.0.0/16", "10.43.0.0/16"] } }],
            "ports": [{ "protocol": "TCP", "port": 443 }],
        }])
    );
    let iso = cairn_plan::isolation::analyze(&eval.state).expect("a namespace");
    let open = |from: &str, to: &str| {
        iso.reach
            .pair(from, to)
            .is_some_and(|p| p.allowed.contains(443, cairn_plan::reach::Protocol::Tcp))
    };
    assert!(open("pk/blackbox-exporter", "internet"));
    assert!(!open("pk/prometheus", "internet"));
    assert!(!open("pk/web", "internet"));
    assert_eq!(iso.outside.len(), 2, "one probe per TLS host");
}

/// A CustomResourceDefinition of the Prometheus operator's group, schemaless, as the tests
/// serve them on the sandbox (there is no operator there: the resources are stored).
fn operator_crd(plural: &str, kind: &str, version: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.monitoring.coreos.com")},
        "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind, "listKind": format!("{kind}List")},
            "versions": [{"name": version, "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    })
}

#[test]
fn on_the_operator_the_stacks_alertmanager_is_a_custom_resource_selecting_its_routing() {
    let cluster = cairn_tests::TestCluster::start(cairn_sandbox::SandboxConfig {
        pod_start_delay: std::time::Duration::from_millis(50),
        ..cairn_sandbox::SandboxConfig::default()
    });
    let script = cluster.write(
        "mon.rhai",
        r##"
import "monitoring" as monitoring;
let env = environment("mon", #{});
env.namespace("mon", #{ isolate: #{} });
monitoring::stack(env, #{ storage: "1Gi", grafana_storage: "1Gi", blackbox: false,
    prometheus_resources: #{ cpu: "100m", memory: "128Mi" }, grafana_resources: #{ cpu: "100m", memory: "128Mi" } });
monitoring::alerts(env, #{ notify: slack(#{ channel: "#mon-alerts", webhook: secret_env("SLACK_WEBHOOK") }) });
"##,
    );
    cluster.runtime.block_on(async {
        let client = cairn_tests::kube_client(&cluster).await;
        let api: kube::Api<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        > = kube::Api::all(client);
        for (plural, kind, version) in [
            ("prometheusrules", "PrometheusRule", "v1"),
            ("alertmanagers", "Alertmanager", "v1"),
            ("alertmanagerconfigs", "AlertmanagerConfig", "v1alpha1"),
        ] {
            let crd = serde_json::from_value(operator_crd(plural, kind, version)).expect("crd");
            api.create(&kube::api::PostParams::default(), &crd)
                .await
                .expect("CRD created");
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    });
    let plugins = cairn_tests::root().join("plugins");
    let plugins = plugins.to_string_lossy().into_owned();
    let vars = [
        ("SLACK_WEBHOOK", WEBHOOK),
        ("CAIRN_PLUGIN_PATH", plugins.as_str()),
    ];
    let out = cluster.cairn_with(&["apply", &script, "--yes"], &vars);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for created in [
        "AlertmanagerConfig/mon/mon-alert-routing created",
        "Secret/mon/mon-alert-receivers created",
        "Alertmanager/mon/alertmanager created",
        "PrometheusRule/mon/mon-alert-rules created",
        // The stack's Prometheus reads a rules file: it gets it too.
        "ConfigMap/mon/mon-alert-rules created",
        "Deployment/mon/prometheus",
    ] {
        assert!(
            out.stdout.contains(created),
            "no «{created}»:\n{}",
            out.stdout
        );
    }
    assert!(
        out.stdout.contains(
            "routing as an AlertmanagerConfig, which Alertmanager/mon/alertmanager (run by the operator) selects"
        ),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("Deployment/mon/alertmanager"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("Secret/mon/mon-alertmanager"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("hunter2") && !out.stderr.contains("hunter2"));
    cluster.runtime.block_on(async {
        let client = cairn_tests::kube_client(&cluster).await;
        let resource = |kind: &str, plural: &str, version: &str| {
            let gvk = kube::api::GroupVersionKind::gvk("monitoring.coreos.com", version, kind);
            let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, plural);
            kube::Api::<kube::api::DynamicObject>::namespaced_with(client.clone(), "mon", &ar)
        };
        let am = resource("Alertmanager", "alertmanagers", "v1")
            .get("alertmanager")
            .await
            .expect("the Alertmanager");
        let spec = &am.data["spec"];
        assert_eq!(
            spec["alertmanagerConfigSelector"],
            serde_json::json!({ "matchLabels": { "cairn.dev/environment": "mon" } }),
            "{spec}"
        );
        assert_eq!(spec["image"], "prom/alertmanager:v0.27.0", "{spec}");
        assert_eq!(spec["replicas"], 1, "{spec}");
        assert_eq!(
            spec["podMetadata"]["labels"]["app.kubernetes.io/name"],
            "alertmanager"
        );
        let config = resource("AlertmanagerConfig", "alertmanagerconfigs", "v1alpha1")
            .get("mon-alert-routing")
            .await
            .expect("the AlertmanagerConfig");
        // The Alertmanager selects it by its labels.
        assert_eq!(
            config
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("cairn.dev/environment")),
            Some(&"mon".to_owned())
        );
        let receivers = config.data["spec"]["receivers"].to_string();
        assert!(receivers.contains("mon-alert-receivers"), "{receivers}");
        assert!(!receivers.contains("hunter2"), "{receivers}");
    });
    let out = cluster.cairn_with(&["plan", &script], &vars);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
}
