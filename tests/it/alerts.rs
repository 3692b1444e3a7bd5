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
