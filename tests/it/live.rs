//! Plan and apply end to end, against the Kubernetes API emulator.

use cairn_sandbox::{PodOutcome, SandboxConfig};
use cairn_tests::{TestCluster, root};

fn shop(replicas: i64, level: &str, extra: bool) -> String {
    let mut s = format!(
        r#"
let env = environment("shop", #{{}});
env.namespace("shop", #{{
    quota: #{{ requests_cpu: "4", requests_memory: "8Gi" }},
    container_defaults: #{{ cpu: "200m", memory: "128Mi", request_cpu: "100m", request_memory: "64Mi" }},
}});
let settings = env.config_map("settings", #{{ MODE: "one" }});
let creds = env.secret("creds", #{{ PASSWORD: generate_password(20) }});
let web = env.deployment("web", #{{
    image: "nginx:1.27", replicas: {replicas}, port: 80, ready: http_get("/", 80),
    env: [settings, creds, #{{ LEVEL: "{level}" }}],
    resources: #{{ cpu: "100m", memory: "64Mi" }},
}});
"#
    );
    if extra {
        s.push_str("env.config_map(\"extra\", #{ A: \"1\" });\n");
    }
    s
}

fn config() -> SandboxConfig {
    SandboxConfig {
        pod_start_delay: std::time::Duration::from_millis(50),
        ..SandboxConfig::default()
    }
}

#[test]
fn apply_then_edit_then_apply_converges() {
    let cluster = TestCluster::start(config());
    let v1 = cluster.write("v1.rhai", &shop(2, "info", true));
    let out = cluster.cairn(&["apply", &v1, "--yes"]);
    assert_eq!(
        out.code, 0,
        "first apply failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout.contains("+ Deployment/shop/web"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Apply complete"), "{}", out.stdout);

    let out = cluster.cairn(&["plan", &v1]);
    assert_eq!(
        out.code, 0,
        "a plan right after apply must show no changes:\n{}\n{}",
        out.stdout, out.stderr
    );
    assert!(out.stdout.contains("No changes"), "{}", out.stdout);

    let v2 = cluster.write("v2.rhai", &shop(3, "debug", false));
    let out = cluster.cairn(&["plan", &v2]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    let plan = &out.stdout;
    assert!(plan.contains("~ Deployment/shop/web"), "{plan}");
    assert!(plan.contains("spec.replicas: 2 → 3"), "{plan}");
    assert!(
        plan.contains("spec.template.spec.containers[web].env[LEVEL].value: \"info\" → \"debug\""),
        "{plan}"
    );
    assert!(plan.contains("- ConfigMap/shop/extra"), "{plan}");
    assert!(
        plan.contains("Plan: 0 to add, 1 to change, 0 to replace, 1 to destroy"),
        "{plan}"
    );
    let changed_lines = plan
        .lines()
        .filter(|l| l.trim_start().starts_with("spec.") || l.trim_start().starts_with("metadata."))
        .count();
    assert_eq!(
        changed_lines, 2,
        "exactly the two edited fields change:\n{plan}"
    );

    let json = cluster.cairn(&["plan", &v2, "--json"]);
    assert_eq!(json.code, 2);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("plan JSON");
    assert_eq!(doc["summary"]["update"], 1);
    assert_eq!(doc["summary"]["delete"], 1);

    let out = cluster.cairn(&["apply", &v2, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let out = cluster.cairn(&["plan", &v2]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
}

#[test]
fn apply_refuses_without_a_terminal() {
    let cluster = TestCluster::start(config());
    let v1 = cluster.write("v1.rhai", &shop(1, "info", false));
    let out = cluster.cairn(&["apply", &v1]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("refusing to apply without a terminal"),
        "{}",
        out.stderr
    );
    let out = cluster.cairn(&["plan", &v1]);
    assert_eq!(out.code, 2, "nothing was applied:\n{}", out.stdout);
}

#[test]
fn a_crash_loop_is_explained_with_its_logs() {
    let mut config = config();
    config.outcomes.push((
        "acme/crashy".to_owned(),
        PodOutcome::CrashLoop {
            exit_code: 1,
            logs: vec![
                "booting".to_owned(),
                "UndefinedValueError: RBS_SECRET_KEY not found".to_owned(),
            ],
        },
    ));
    let cluster = TestCluster::start(config);
    let script = cluster.write("crash.rhai",
        r#"
let env = environment("crash", #{});
env.namespace("crash", #{});
env.deployment("backend", #{ image: "ghcr.io/acme/crashy:1.0", port: 8000, ready: http_get("/health", 8000) });
"#,
    );
    // The failure, its reason and the container's log.
    let explained = |out: &cairn_tests::Output| {
        assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
        for line in [
            "✗ Deployment/crash/backend failed",
            "crash-looping",
            "| UndefinedValueError: RBS_SECRET_KEY not found",
        ] {
            assert!(out.stdout.contains(line), "{line}\n{}", out.stdout);
        }
    };
    explained(&cluster.cairn(&["apply", &script, "--yes", "--timeout", "60"]));
    // The same apply again changes nothing, and still fails: the rollout is not healthy.
    let out = cluster.cairn(&["apply", &script, "--yes", "--timeout", "60"]);
    explained(&out);
    assert!(out.stdout.contains("No changes"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("nothing to change, but 1 workload(s) are not healthy"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_quota_rejection_is_explained_with_the_numbers() {
    let cluster = TestCluster::start(config());
    // The namespace and a quota made outside cairn: `check` cannot see this one.
    let ns = cluster.write(
        "ns.rhai",
        "let env = environment(\"tight\", #{});\nenv.namespace(\"tight\", #{});\n",
    );
    assert_eq!(cluster.cairn(&["apply", &ns, "--yes"]).code, 0);
    let kubectl_like = cluster.runtime.block_on(async {
        let client = cairn_tests::kube_client(&cluster).await;
        let api: kube::Api<k8s_openapi::api::core::v1::ResourceQuota> = kube::Api::namespaced(client, "tight");
        let quota: k8s_openapi::api::core::v1::ResourceQuota = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "pods"}, "spec": {"hard": {"pods": "1"}}
        })).expect("quota");
        api.create(&kube::api::PostParams::default(), &quota).await
    });
    kubectl_like.expect("quota created");
    let script = cluster.write("tight.rhai",
        "let env = environment(\"tight\", #{});\nenv.namespace(\"tight\", #{});\nenv.deployment(\"web\", #{ image: \"nginx:1.27\", replicas: 3, port: 80, ready: http_get(\"/\", 80) });\n",
    );
    let out = cluster.cairn(&["apply", &script, "--yes", "--timeout", "60"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("exceeded quota: pods"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("limited: pods=1"), "{}", out.stdout);
}

#[test]
fn objects_without_cairns_labels_are_never_pruned() {
    let cluster = TestCluster::start(config());
    let v1 = cluster.write("v1.rhai", &shop(1, "info", true));
    assert_eq!(cluster.cairn(&["apply", &v1, "--yes"]).code, 0);
    cluster.runtime.block_on(async {
        let client = cairn_tests::kube_client(&cluster).await;
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::namespaced(client, "shop");
        for (name, labels) in [
            ("hand-made", serde_json::json!({})),
            ("other-env", serde_json::json!({"app.kubernetes.io/managed-by": "cairn", "cairn.dev/environment": "other"})),
        ] {
            let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"x": "y"}
            })).expect("configmap");
            api.create(&kube::api::PostParams::default(), &cm).await.expect("created");
        }
    });
    let v2 = cluster.write("v2.rhai", &shop(1, "info", false));
    let out = cluster.cairn(&["apply", &v2, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("- ConfigMap/shop/extra"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("hand-made") && !out.stdout.contains("other-env"),
        "{}",
        out.stdout
    );
    let names = cluster.runtime.block_on(async {
        let client = cairn_tests::kube_client(&cluster).await;
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client, "shop");
        api.list(&Default::default())
            .await
            .expect("list")
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect::<Vec<_>>()
    });
    assert!(
        names.contains(&"hand-made".to_owned()) && names.contains(&"other-env".to_owned()),
        "{names:?}"
    );
    assert!(!names.contains(&"extra".to_owned()), "{names:?}");
}

#[test]
fn a_thousand_objects_are_planned_with_one_list_per_kind() {
    let cluster = TestCluster::start(config());
    let script = cluster.write("big.rhai",
        r#"
let env = environment("big", #{});
env.namespace("big", #{});
for i in 0..400 { env.config_map(`settings-${i}`, #{ INDEX: `${i}` }); }
for i in 0..300 { env.secret(`token-${i}`, #{ TOKEN: sensitive(`t-${i}`) }); }
for i in 0..150 { env.deployment(`svc-${i}`, #{ image: "nginx:1.27", replicas: 1, port: 80, ready: http_get("/", 80) }); }
"#,
    );
    let out = cluster.cairn(&["apply", &script, "--yes", "--timeout", "120"]);
    assert_eq!(
        out.code,
        0,
        "{}\n{}",
        out.stdout
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n"),
        out.stderr
    );
    cluster.sandbox().clear_requests();
    let out = cluster.cairn(&["plan", &script]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("1001 resources match"),
        "{}",
        out.stdout
    );
    let requests = cluster.sandbox().requests();
    let api_requests: Vec<_> = requests
        .iter()
        .filter(|r| {
            !r.path.starts_with("/version")
                && !r.path.starts_with("/api?")
                && r.path != "/api"
                && r.path != "/apis"
        })
        .collect();
    // Namespace, ConfigMap, Secret, Service, Deployment: one LIST each; and one GET of the
    // kube-system namespace, the cluster's identity.
    assert!(
        api_requests.len() <= 6,
        "{} requests: {api_requests:?}",
        api_requests.len()
    );
    assert!(
        api_requests.iter().all(|r| r.method == "GET"),
        "{api_requests:?}"
    );
}

#[test]
fn staging_applies_on_the_sandbox_and_replans_clean() {
    // `--sandbox`: the embedded emulator, an in-memory DNS zone, state under .cairn/.
    let dir = cairn_tests::temp_dir("staging");
    let staging = root().join("environments/staging.rhai");
    let staging = staging.to_string_lossy();
    let out = cairn_tests::cairn_in(
        &dir,
        &["apply", "--sandbox", &staging, "--yes", "--timeout", "120"],
        cairn_tests::ci_vars(),
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("+ DnsRecord/rbx.ia.br/api.staging.rbx.ia.br A"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("✓ Deployment/staging/backend-staging created"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("✓ Job/staging/migrate-4f2c9e1 created"),
        "{}",
        out.stdout
    );
    let out = cairn_tests::cairn_in(
        &dir,
        &["plan", "--sandbox", &staging],
        cairn_tests::ci_vars(),
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("in-memory sandbox zone"),
        "{}",
        out.stdout
    );
    for secret in cairn_tests::secret_values() {
        assert!(!out.stdout.contains(&secret));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn alert_rules_become_a_prometheus_rule_when_the_operator_is_there() {
    let cluster = TestCluster::start(config());
    let script = cluster.write(
        "alerts.rhai",
        r##"
import "monitoring" as monitoring;
let env = environment("mon", #{});
env.namespace("mon", #{});
monitoring::alerts(env, #{ notify: slack("#mon-alerts") });
"##,
    );
    let cli = |args: &[&str]| {
        let root = root().join("plugins");
        let mut all = args.to_vec();
        let path = root.to_string_lossy().into_owned();
        all.extend(["--plugin-path", &path]);
        cluster.cairn(&all)
    };
    // Without the operator: a ConfigMap holding a rules file.
    let out = cli(&["plan", &script]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("+ ConfigMap/mon/mon-alert-rules"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("+ Secret/mon/mon-alertmanager"),
        "{}",
        out.stdout
    );
    // With the Prometheus operator's CRD served: a PrometheusRule.
    cluster.runtime.block_on(async {
        let client = cairn_tests::kube_client(&cluster).await;
        let api: kube::Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = kube::Api::all(client);
        let crd = serde_json::from_value(serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "prometheusrules.monitoring.coreos.com"},
            "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
                "names": {"plural": "prometheusrules", "singular": "prometheusrule", "kind": "PrometheusRule", "listKind": "PrometheusRuleList"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
        })).expect("crd");
        api.create(&kube::api::PostParams::default(), &crd).await.expect("CRD created");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    });
    let out = cli(&["apply", &script, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("serves monitoring.coreos.com/v1"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("✓ PrometheusRule/mon/mon-alert-rules created"),
        "{}",
        out.stdout
    );
    let out = cli(&["plan", &script]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
}

#[test]
fn status_reports_rollouts_certificates_and_backup_freshness() {
    use std::collections::BTreeMap;
    use std::time::{Duration, SystemTime};
    let dir = cairn_tests::temp_dir("status");
    let staging = root().join("environments/staging.rhai");
    let staging = staging.to_string_lossy();
    let run = |args: &[&str]| cairn_tests::cairn_in(&dir, args, cairn_tests::ci_vars());
    let out = run(&["apply", "--sandbox", &staging, "--yes", "--timeout", "120"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    // No backup has run yet: status fails, naming it.
    let out = run(&["status", "--sandbox", &staging]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("✓ rollout Deployment/staging/backend-staging"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("✓ certificate staging-rbx-ia-br"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "✗ missing backup postgres-staging-backup → s3://rbx-backup-staging/postgres/"
        ),
        "{}",
        out.stdout
    );
    // Backups written at controlled times into the sandbox's S3.
    let s3_file = dir.join(".cairn/sandbox/s3.json");
    let write_backup = |age: Duration| {
        let buckets: BTreeMap<String, cairn_s3::MemBucket> =
            serde_json::from_str(&std::fs::read_to_string(&s3_file).expect("s3 state"))
                .expect("json");
        let s3 = cairn_s3::InMemoryS3::with_buckets(buckets);
        s3.put_object_at(
            "rbx-backup-staging",
            "postgres/robson_staging-x.sql.gz",
            1234,
            SystemTime::now() - age,
        )
        .expect("put");
        std::fs::write(
            &s3_file,
            serde_json::to_string(&s3.snapshot()).expect("json"),
        )
        .expect("saved");
    };
    write_backup(Duration::from_secs(30 * 3600));
    let out = run(&["status", "--sandbox", &staging]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("! stale backup postgres-staging-backup"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("more than the 26h 0m the schedule `0 2 * * *` allows"),
        "{}",
        out.stdout
    );
    write_backup(Duration::from_secs(3600));
    let out = run(&["status", "--sandbox", &staging, "--json"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(doc["healthy"], true);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_plans_follow_the_documented_schema_and_markdown_reads_well() {
    let cluster = TestCluster::start(config());
    let v1 = cluster.write("v1.rhai", &shop(2, "info", true));
    assert_eq!(cluster.cairn(&["apply", &v1, "--yes"]).code, 0);
    let v2 = cluster.write(
        "v2.rhai",
        &shop(3, "debug", false).replace("MODE: \"one\"", "MODE: \"two\""),
    );
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/plan-schema.json")).expect("schema"),
    )
    .expect("json");
    for script in [&v1, &v2] {
        let out = cluster.cairn(&["plan", script, "--format", "json"]);
        let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("plan JSON");
        crate::json_lines::conforms(
            &crate::json_lines::schemas(),
            &schema,
            &schema,
            &doc,
            "plan",
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", out.stdout));
    }
    let out = cluster.cairn(&["plan", &v2, "--format", "markdown"]);
    assert_eq!(out.code, 2);
    // Secret values are redacted in every format.
    let json = cluster.cairn(&["plan", &v2, "--json"]);
    assert!(
        !json.stdout.contains("c2Vj"),
        "no base64 secret data in plans"
    );
    insta::assert_snapshot!("plan-markdown", out.stdout);
}

#[test]
fn a_held_lock_makes_apply_wait_then_fail_naming_the_holder() {
    let cluster = TestCluster::start(config());
    let v1 = cluster.write("v1.rhai", &shop(1, "info", false));
    let lock = cluster.runtime.block_on(async {
        let c = cluster.provider_cluster().await;
        cairn_kube::lock::acquire(
            &c,
            "shop",
            "deploy-bot (run 41)",
            std::time::Duration::from_secs(3),
            std::time::Duration::ZERO,
            &|_| {},
        )
        .await
        .expect("lock")
    });
    let out = cluster.cairn(&["apply", &v1, "--yes", "--lock-timeout", "1"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("waiting for the lock held by deploy-bot (run 41)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("environment shop is locked by deploy-bot (run 41)"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("Applying to"),
        "nothing was applied:\n{}",
        out.stdout
    );
    // A crashed run's lock expires and is taken over.
    lock.abandon();
    cluster.runtime.block_on(async {
        let c = cluster.provider_cluster().await;
        let short = cairn_kube::lock::acquire(
            &c,
            "shop",
            "crashed-run",
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(40),
            &|_| {},
        )
        .await
        .expect("lock");
        short.abandon();
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    });
    let out = cluster.cairn(&["apply", &v1, "--yes", "--lock-timeout", "1"]);
    assert_eq!(
        out.code, 0,
        "an expired lock is taken over:\n{}\n{}",
        out.stdout, out.stderr
    );
    // `cairn unlock` removes a live lock.
    cluster.runtime.block_on(async {
        let c = cluster.provider_cluster().await;
        cairn_kube::lock::acquire(
            &c,
            "shop",
            "someone",
            std::time::Duration::from_secs(30),
            std::time::Duration::ZERO,
            &|_| {},
        )
        .await
        .expect("lock")
        .abandon();
    });
    let out = cluster.cairn(&["unlock", &v1]);
    assert_eq!(out.code, 1, "unlock asks first: {}", out.stderr);
    let out = cluster.cairn(&["unlock", &v1, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("was held by someone"), "{}", out.stdout);
}

/// Two applies of one environment never run at once. The test holds the lock first, so both
/// plan and then queue behind it; once it is released, each apply rolls out a new template
/// (pods take 2 s to start), so one after the other they need at least two rollouts' time —
/// at once they would need one. Load can only make it slower, never make it pass wrongly.
#[test]
fn two_applies_racing_for_the_lock_run_one_at_a_time() {
    let delay = std::time::Duration::from_millis(2000);
    let cluster = TestCluster::start(SandboxConfig {
        pod_start_delay: delay,
        ..SandboxConfig::default()
    });
    let a = cluster.write("a.rhai", &shop(1, "a", false));
    let b = cluster.write("b.rhai", &shop(1, "b", false));
    let provider = cluster.runtime.block_on(cluster.provider_cluster());
    let held = cluster
        .runtime
        .block_on(cairn_kube::lock::acquire(
            &provider,
            "shop",
            "test-holder",
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs(5),
            &|_| {},
        ))
        .expect("the test takes the lock");
    // Two jobs of one CI run: the same CI variables, never the same lock holder.
    let ci = [
        ("GITHUB_REPOSITORY", "acme/shop"),
        ("GITHUB_RUN_ID", "4242"),
        ("GITHUB_RUN_ATTEMPT", "1"),
        ("GITHUB_JOB", "deploy"),
        ("GITHUB_ACTOR", "octocat"),
    ];
    let (outputs, after_release) = std::thread::scope(|s| {
        let ta =
            s.spawn(|| cluster.cairn_with(&["apply", &a, "--yes", "--lock-timeout", "120"], &ci));
        let tb =
            s.spawn(|| cluster.cairn_with(&["apply", &b, "--yes", "--lock-timeout", "120"], &ci));
        std::thread::sleep(std::time::Duration::from_secs(3));
        assert!(
            !ta.is_finished() && !tb.is_finished(),
            "neither apply may run while the lock is held"
        );
        cluster.runtime.block_on(held.release());
        let released = std::time::Instant::now();
        let outputs = vec![ta.join().expect("a"), tb.join().expect("b")];
        (outputs, released.elapsed())
    });
    for o in &outputs {
        assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
        assert!(
            o.stdout.contains("waiting for the lock held by"),
            "{}",
            o.stdout
        );
    }
    assert!(
        outputs.iter().any(|o| o
            .stdout
            .contains("waiting for the lock held by test-holder")),
        "{}\n----\n{}",
        outputs[0].stdout,
        outputs[1].stdout
    );
    assert!(
        after_release >= 2 * delay,
        "the two rollouts ran one after the other: {after_release:?}\n{}\n----\n{}",
        outputs[0].stdout,
        outputs[1].stdout
    );
}

/// A rollout whose pods cannot be scheduled (their claim's StorageClass does not exist, so it
/// never binds) fails when the wait runs out, saying why the scheduler cannot place them.
#[test]
fn an_unschedulable_rollout_says_why() {
    let cluster = TestCluster::start(config());
    let script = cluster.write(
        "stuck.rhai",
        "let env = environment(\"stuck\", #{});\nenv.namespace(\"stuck\", #{});\nlet data = env.volume_claim(\"data\", #{ storage: \"1Gi\", class: \"no-such-class\" });\nenv.deployment(\"web\", #{ image: \"nginx:1.27\", replicas: 1, port: 80, volumes: #{ \"/data\": data } });\n",
    );
    let out = cluster.cairn(&["apply", &script, "--yes", "--timeout", "3"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("Deployment/stuck/web was not ready after 3s"),
        "{text}"
    );
    assert!(
        text.contains("cannot be scheduled: 0/1 nodes are available: 1 pod has unbound immediate PersistentVolumeClaims"),
        "{text}"
    );
    // The claim that holds it, and its class.
    assert!(
        text.contains("claim data: Pending, StorageClass no-such-class, which does not exist"),
        "{text}"
    );
}

#[test]
fn an_environment_that_declares_nothing_is_a_warning_and_plans_nothing() {
    let dir = cairn_tests::temp_dir("nothing-declared");
    let script = dir.join("pr-123.rhai");
    std::fs::write(&script, "let env = environment(\"pr-123\", #{});\n").expect("script");
    let path = script.to_string_lossy().into_owned();
    let out = cairn_tests::cairn_in(&dir, &["check", &path], cairn_tests::ci_vars());
    assert_eq!(out.code, 0, "a warning:\n{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("nothing-declared"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("environment pr-123 declares nothing: no namespace and no resource"),
        "{}",
        out.stderr
    );
    let out = cairn_tests::cairn_in(&dir, &["plan", "--sandbox", &path], cairn_tests::ci_vars());
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("Nothing to plan: the script declares no resource for environment pr-123."),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("No changes"), "{}", out.stdout);
}

#[test]
fn contradicting_flags_are_errors() {
    let vars = cairn_tests::ci_vars();
    let out = cairn_tests::cairn(
        &["plan", "env.rhai", "--json", "--format", "markdown"],
        vars.clone(),
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("error: --json contradicts --format markdown: give one of them"),
        "{}",
        out.stderr
    );
    let out = cairn_tests::cairn(
        &["status", "env.rhai", "--sandbox", "--kubeconfig", "k"],
        vars.clone(),
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("cannot be used with"), "{}", out.stderr);
    let out = cairn_tests::cairn(&["apply", "env.rhai", "--sandbox", "--context", "c"], vars);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("cannot be used with"), "{}", out.stderr);
}
