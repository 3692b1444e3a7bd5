//! What an apply costs the API server, counted (never timed): about one request per object,
//! readiness read from watches (no GET of a waiting object, however long it waits), and a
//! prune that waits for each deletion through the same watches.

use cairn_kube::{ApplyOptions, Cluster, PlanOptions};
use cairn_sandbox::SandboxConfig;
use cairn_tests::TestCluster;

/// 200 ConfigMaps, 150 Secrets and 40 Deployments, each with a Service: 431 objects with the
/// namespace.
fn script(configs: usize, deployments: usize) -> String {
    format!(
        r#"let env = environment("speed", #{{}});
env.namespace("speed", #{{}});
for i in 0..{configs} {{ env.config_map(`settings-${{i}}`, #{{ INDEX: `${{i}}` }}); }}
for i in 0..150 {{ env.secret(`token-${{i}}`, #{{ TOKEN: sensitive(`t-${{i}}`) }}); }}
for i in 0..{deployments} {{ env.deployment(`svc-${{i}}`, #{{ image: "nginx:1.27", replicas: 1, port: 80, ready: http_get("/", 80) }}); }}
"#
    )
}

fn evaluate(text: &str) -> cairn_stdlib::Evaluation {
    let eval = cairn_stdlib::evaluate(
        "speed.rhai",
        text,
        &[],
        &cairn_stdlib::EvalOptions::default(),
    );
    assert!(!eval.has_errors(), "{:?}", eval.diagnostics);
    eval
}

/// Plans and applies `text`; gives the plan's number of objects written and the requests the
/// apply alone made.
async fn apply(cluster: &Cluster, text: &str) -> (cairn_kube::KubePlan, Vec<String>) {
    let eval = evaluate(text);
    let plan = cairn_kube::plan(cluster, &eval.state, &PlanOptions::default())
        .await
        .expect("plan");
    cluster.clear_requests();
    let report = cairn_kube::apply(
        cluster,
        &plan,
        &ApplyOptions {
            timeout: std::time::Duration::from_secs(30),
            ..ApplyOptions::default()
        },
        std::sync::Arc::new(|_| {}),
    )
    .await;
    assert!(report.ok(), "{:?}", report.failed.first());
    (plan, cluster.requests())
}

fn is_watch(r: &str) -> bool {
    r.contains("watch=true") || r.contains("watch=1")
}

#[test]
fn an_apply_makes_one_request_per_object_and_waits_by_watching() {
    let cluster = TestCluster::start(SandboxConfig {
        // Slow pods: every Deployment waits a while, which a polling wait would pay for in GETs.
        pod_start_delay: std::time::Duration::from_millis(1500),
        ..SandboxConfig::default()
    });
    let (plan, requests) = cluster.runtime.block_on(async {
        let c = cluster.provider_cluster().await;
        apply(&c, &script(200, 40)).await
    });
    let written = plan.plan.summary().create;
    assert_eq!(written, 431, "{:?}", plan.plan.summary());
    let watches: Vec<&String> = requests.iter().filter(|r| is_watch(r)).collect();
    let others: Vec<&String> = requests.iter().filter(|r| !is_watch(r)).collect();
    // One write per object, the inventory, and the first LIST of each watch: of the
    // Deployments, the Namespace and the pods.
    assert!(
        others.len() as f64 <= 1.1 * written as f64 + 10.0,
        "{} requests for {written} objects: {:?}",
        others.len(),
        &others[..others.len().min(40)]
    );
    let gets: Vec<&&String> = others.iter().filter(|r| r.starts_with("GET ")).collect();
    assert!(
        gets.len() <= 4,
        "a wait read its object by GET rather than from a watch: {gets:?}"
    );
    // One watch per kind and namespace, resumed by kube-runtime only after a disconnect.
    assert!(watches.len() <= 6, "{watches:?}");
}

#[test]
fn a_prune_deletes_once_each_and_waits_for_disappearance_by_watching() {
    let cluster = TestCluster::start(SandboxConfig {
        pod_start_delay: std::time::Duration::from_millis(20),
        ..SandboxConfig::default()
    });
    let (deleted, requests, left) = cluster.runtime.block_on(async {
        let c = cluster.provider_cluster().await;
        apply(&c, &script(200, 40)).await;
        let (plan, requests) = apply(&c, &script(20, 10)).await;
        let client = cairn_tests::kube_client(&cluster).await;
        let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client, "speed");
        let left = cms
            .list(&kube::api::ListParams::default())
            .await
            .expect("list")
            .items
            .len();
        (plan.plan.summary().delete, requests, left)
    });
    // 180 ConfigMaps, 30 Deployments and their 30 Services.
    assert_eq!(deleted, 240);
    let deletes = requests.iter().filter(|r| r.starts_with("DELETE ")).count();
    assert_eq!(deletes, 240, "one DELETE per object");
    let others = requests
        .iter()
        .filter(|r| !r.starts_with("DELETE ") && !is_watch(r))
        .count();
    // The inventory, and the first LIST of the watches of the kinds deleted.
    assert!(
        others <= 6,
        "{:?}",
        requests
            .iter()
            .filter(|r| !r.starts_with("DELETE "))
            .collect::<Vec<_>>()
    );
    // 20 declared, the inventory, and the namespace's kube-root-ca.crt.
    assert_eq!(left, 22);
}
