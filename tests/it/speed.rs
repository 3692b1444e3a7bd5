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
    let (plan, requests, ready) = cluster.runtime.block_on(async {
        let c = cluster.provider_cluster().await;
        let (plan, requests) = apply(&c, &script(200, 40)).await;
        // Read apart (not counted): the apply returned once every rollout was done.
        let client = cairn_tests::kube_client(&cluster).await;
        let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
            kube::Api::namespaced(client, "speed");
        let list = deployments
            .list(&kube::api::ListParams::default())
            .await
            .expect("list");
        let ready = list
            .items
            .iter()
            .filter(|d| d.status.as_ref().and_then(|s| s.ready_replicas) == Some(1))
            .count();
        (plan, requests, ready)
    });
    assert_eq!(
        ready, 40,
        "the apply returned before its rollouts were done"
    );
    let written = plan.plan.summary().create;
    assert_eq!(written, 431, "{:?}", plan.plan.summary());
    // One write per object, and the inventory's.
    let writes: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("PATCH "))
        .collect();
    let paths: std::collections::BTreeSet<&String> = writes.iter().copied().collect();
    assert_eq!(
        writes.len(),
        written + 1,
        "{:?}",
        &writes[..writes.len().min(20)]
    );
    assert_eq!(paths.len(), writes.len(), "an object was written twice");
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
        let client = cairn_tests::kube_client(&cluster).await;
        let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client, "speed");
        // One ConfigMap lingers after its deletion, held by a finalizer taken off a while
        // later (as a controller would): the prune must wait for it.
        let hold = |finalizers: serde_json::Value| {
            let cms = cms.clone();
            async move {
                let patch = serde_json::json!({"metadata": {"finalizers": finalizers}});
                cms.patch(
                    "settings-100",
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(patch),
                )
                .await
                .expect("finalizer patched");
            }
        };
        hold(serde_json::json!(["example.com/hold"])).await;
        let release = async {
            // Once the prune has deleted it (it has a deletionTimestamp), the finalizer comes
            // off half a second later.
            loop {
                let cm = cms.get("settings-100").await.expect("there until released");
                if cm.metadata.deletion_timestamp.is_some() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            hold(serde_json::Value::Null).await;
        };
        let fewer = script(20, 10);
        let ((plan, requests), ()) = tokio::join!(apply(&c, &fewer), release);
        let lingering = cms.get_opt("settings-100").await.expect("get");
        assert!(
            lingering.is_none(),
            "the prune returned before the object was gone"
        );
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
    assert!(
        !requests
            .iter()
            .any(|r| r.starts_with("GET ") && r.contains("settings-100")),
        "the wait for the lingering object read it by GET"
    );
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
