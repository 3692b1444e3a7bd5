//! Changes the server refuses, through `cairn plan` and `cairn apply` on the emulator (which
//! refuses what a real kube-apiserver refuses): a claim that cannot grow is refused at plan
//! time and never deleted, a Job is replaced, a StatefulSet's claim templates need
//! `allow_replace` and keep their claims. Plans are snapshots: one readable line per refusal.

use cairn_sandbox::SandboxConfig;
use cairn_tests::{TestCluster, kube_client};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::Api;

fn config() -> SandboxConfig {
    SandboxConfig {
        pod_start_delay: std::time::Duration::from_millis(20),
        ..SandboxConfig::default()
    }
}

/// A namespace, a claim of `size`, mounted by a Deployment when `mounted` (so local-path binds
/// it), a migration Job running `command`, and a two-node StatefulSet with a claim per pod.
fn script(size: &str, mounted: bool, command: &str, node_size: &str, extra: &str) -> String {
    let volumes = if mounted {
        r#"volumes: #{ "/data": data },"#
    } else {
        ""
    };
    format!(
        r#"
let env = environment("shop", #{{}});
env.namespace("shop", #{{}});
let data = env.volume_claim("data", #{{ storage: "{size}" }});
env.deployment("web", #{{ image: "nginx:1.27", replicas: 1, port: 80, {volumes} }});
env.job("migrate", #{{ image: "busybox:1.36", command: ["sh", "-c", "{command}"] }});
env.statefulset("db", #{{
    image: "postgres:16", replicas: 2, ports: #{{ postgres: 5432 }},
    volume_claims: #{{ "/var/lib/postgresql/data": #{{ storage: "{node_size}" }} }},
}});
{extra}
"#
    )
}

fn uid_of_claim(cluster: &TestCluster, name: &str) -> (String, String) {
    cluster.runtime.block_on(async {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(kube_client(cluster).await, "shop");
        let pvc = api.get(name).await.expect("claim");
        let size = pvc.spec.and_then(|s| s.resources).and_then(|r| r.requests);
        let size = size.and_then(|r| r.get("storage").map(|q| q.0.clone()));
        (
            pvc.metadata.uid.unwrap_or_default(),
            size.unwrap_or_default(),
        )
    })
}

fn job_uid(cluster: &TestCluster) -> String {
    cluster.runtime.block_on(async {
        let api: Api<Job> = Api::namespaced(kube_client(cluster).await, "shop");
        api.get("migrate")
            .await
            .expect("job")
            .metadata
            .uid
            .unwrap_or_default()
    })
}

/// The plan's lines, without the ones every plan has, and the test's directory as `[dir]`.
fn plan_text(cluster: &TestCluster, stdout: &str) -> String {
    let dir = cluster.dir.to_string_lossy().into_owned();
    stdout
        .lines()
        .filter(|l| !l.starts_with("Plan for environment"))
        .map(|l| l.replace(&dir, "[dir]"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_claim_that_cannot_grow_is_refused_at_plan_time_and_never_deleted() {
    let cluster = TestCluster::start(config());
    let v1 = cluster.write("v1.rhai", &script("10Gi", false, "echo v1", "1Gi", ""));
    let out = cluster.cairn(&["apply", &v1, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let (uid, _) = uid_of_claim(&cluster, "data");

    // Unbound (nothing mounts it, and local-path binds on first use): the spec is immutable.
    let v2 = cluster.write("v2.rhai", &script("20Gi", false, "echo v1", "1Gi", ""));
    let plan = cluster.cairn(&["plan", &v2]);
    assert_eq!(plan.code, 1, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        !plan.stdout.contains("core."),
        "a Go dump in the plan:\n{}",
        plan.stdout
    );
    insta::assert_snapshot!("refused-claim-unbound", plan_text(&cluster, &plan.stdout));
    let saved = cluster.write("plan.cairn", "");
    let out = cluster.cairn(&["plan", &v2, "-o", &saved]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("was not saved"), "{}", out.stderr);
    let apply = cluster.cairn(&["apply", &v2, "--yes"]);
    assert_eq!(apply.code, 1, "{}\n{}", apply.stdout, apply.stderr);
    assert!(
        apply.stderr.contains("not applying anything"),
        "{}",
        apply.stderr
    );
    assert!(!apply.stdout.contains("Applying to"), "{}", apply.stdout);
    assert_eq!(
        uid_of_claim(&cluster, "data"),
        (uid.clone(), "10Gi".to_owned())
    );

    // Bound (a pod mounts it): the resize admission refuses, local-path cannot expand.
    let v3 = cluster.write("v3.rhai", &script("10Gi", true, "echo v1", "1Gi", ""));
    let out = cluster.cairn(&["apply", &v3, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let v4 = cluster.write("v4.rhai", &script("20Gi", true, "echo v1", "1Gi", ""));
    let plan = cluster.cairn(&["plan", &v4]);
    assert_eq!(plan.code, 1, "{}\n{}", plan.stdout, plan.stderr);
    insta::assert_snapshot!("refused-claim-bound", plan_text(&cluster, &plan.stdout));
    let apply = cluster.cairn(&["apply", &v4, "--yes"]);
    assert_eq!(apply.code, 1);
    assert_eq!(
        uid_of_claim(&cluster, "data"),
        (uid.clone(), "10Gi".to_owned())
    );

    // A shrink is refused too.
    let v5 = cluster.write("v5.rhai", &script("5Gi", true, "echo v1", "1Gi", ""));
    let plan = cluster.cairn(&["plan", &v5]);
    assert_eq!(plan.code, 1);
    assert!(
        plan.stdout.contains("a claim cannot shrink"),
        "{}",
        plan.stdout
    );

    // With allow_delete the script accepts losing the data: a replacement, exit code 3.
    let allowed = script(
        "20Gi",
        true,
        "echo v1",
        "1Gi",
        r#"env.allow_delete("PersistentVolumeClaim", "data");"#,
    );
    let v6 = cluster.write("v6.rhai", &allowed);
    let plan = cluster.cairn(&["plan", &v6]);
    assert_eq!(plan.code, 3, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains("-/+ PersistentVolumeClaim/shop/data"),
        "{}",
        plan.stdout
    );
    let json = cluster.cairn(&["plan", &v4, "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let change = doc["plan"]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["action"] == "refuse")
        .expect("a refusal");
    assert!(
        change["server_message"]
            .as_str()
            .expect("message")
            .contains("persistentvolumeclaims \"data\" is forbidden")
    );
    assert_eq!(doc["summary"]["refused"], 1);
}

#[test]
fn a_job_is_replaced_and_a_statefulsets_claim_templates_need_allow_replace() {
    let cluster = TestCluster::start(config());
    let v1 = cluster.write("v1.rhai", &script("1Gi", false, "echo v1", "1Gi", ""));
    assert_eq!(cluster.cairn(&["apply", &v1, "--yes"]).code, 0);
    let job = job_uid(&cluster);
    let claims: Vec<(String, String)> = ["data-db-0", "data-db-1"]
        .iter()
        .map(|c| uid_of_claim(&cluster, c))
        .collect();

    // The Job's command changed: replaced by default (a Job is a run), said in one line.
    let v2 = cluster.write("v2.rhai", &script("1Gi", false, "echo v2", "1Gi", ""));
    let plan = cluster.cairn(&["plan", &v2]);
    assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
    insta::assert_snapshot!("replaced-job", plan_text(&cluster, &plan.stdout));
    let apply = cluster.cairn(&["apply", &v2, "--yes"]);
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    assert_ne!(job_uid(&cluster), job, "the Job was created again");
    assert_eq!(cluster.cairn(&["plan", &v2]).code, 0);

    // The StatefulSet's claim template grew: refused until the script allows a replacement.
    let v3 = cluster.write("v3.rhai", &script("1Gi", false, "echo v2", "2Gi", ""));
    let plan = cluster.cairn(&["plan", &v3]);
    assert_eq!(plan.code, 1, "{}\n{}", plan.stdout, plan.stderr);
    insta::assert_snapshot!("refused-statefulset", plan_text(&cluster, &plan.stdout));
    let allowed = script(
        "1Gi",
        false,
        "echo v2",
        "2Gi",
        r#"env.allow_replace("StatefulSet", "db");"#,
    );
    let v4 = cluster.write("v4.rhai", &allowed);
    let plan = cluster.cairn(&["plan", &v4]);
    assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains("-/+ StatefulSet/shop/db"),
        "{}",
        plan.stdout
    );
    let apply = cluster.cairn(&["apply", &v4, "--yes"]);
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    // Its pods' claims are the same claims, with their data and size.
    let after: Vec<(String, String)> = ["data-db-0", "data-db-1"]
        .iter()
        .map(|c| uid_of_claim(&cluster, c))
        .collect();
    assert_eq!(after, claims);
    let again = cluster.cairn(&["plan", &v4]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
}
