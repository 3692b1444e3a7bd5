//! Drift heals: fields people changed with their tools are taken back by a plain apply (the
//! plan shows old and new values and says from whom), fields a controller owns are left to it.

use cairn_tests::{TestCluster, kube_client};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::ownership::kubectl;

const SCRIPT: &str = r#"
let env = environment("heal", #{});
env.namespace("heal", #{});
let settings = env.config_map("settings", #{ DEBUG: "False" });
env.deployment("web", #{ image: "nginx:1.27", replicas: 2, port: 80, env: [settings] });
"#;

fn replicas(cluster: &TestCluster) -> i32 {
    cluster.runtime.block_on(async {
        let api: Api<Deployment> = Api::namespaced(kube_client(cluster).await, "heal");
        let web = api.get("web").await.expect("web");
        web.spec.replicas.unwrap_or_default()
    })
}

fn debug(cluster: &TestCluster) -> String {
    cluster.runtime.block_on(async {
        let api: Api<ConfigMap> = Api::namespaced(kube_client(cluster).await, "heal");
        let cm = api.get("settings").await.expect("settings");
        cm.data
            .and_then(|d| d.get("DEBUG").cloned())
            .unwrap_or_default()
    })
}

/// Scales the Deployment through its scale subresource as `manager` does.
fn scale_as(cluster: &TestCluster, manager: &str, to: i32) {
    cluster.runtime.block_on(async {
        let api: Api<Deployment> = Api::namespaced(kube_client(cluster).await, "heal");
        let params = PatchParams {
            field_manager: Some(manager.to_owned()),
            ..PatchParams::default()
        };
        let patch = serde_json::json!({ "spec": { "replicas": to } });
        api.patch_scale("web", &params, &Patch::Merge(&patch))
            .await
            .expect("scaled");
    });
}

#[test]
fn drift_made_with_kubectl_is_taken_back_without_force() {
    let cluster = TestCluster::start(cairn_sandbox::SandboxConfig::default());
    let path = cluster.write("heal.rhai", SCRIPT);
    let out = cluster.cairn(&["apply", &path, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);

    // Debian's kubectl, as people use it.
    let out = kubectl(
        &cluster,
        &["scale", "deployment/web", "-n", "heal", "--replicas=5"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kubectl(
        &cluster,
        &[
            "patch",
            "configmap",
            "settings",
            "-n",
            "heal",
            "-p",
            r#"{"data":{"DEBUG":"True"}}"#,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(replicas(&cluster), 5);

    let out = cluster.cairn(&["drift", &path]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("spec.replicas: live 5 → declared 2")
            && out
                .stdout
                .contains("(takes back spec.replicas from kubectl")
            && out.stdout.contains("`cairn apply` puts them back."),
        "{}",
        out.stdout
    );
    let out = cluster.cairn(&["plan", &path]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    insta::assert_snapshot!("drift-taken-back", out.stdout);
    for line in [
        "~ Deployment/heal/web",
        "spec.replicas: 5 → 2",
        "takes back spec.replicas from kubectl",
        "~ ConfigMap/heal/settings",
        "data.DEBUG: \"True\" → \"False\"",
        "takes back data.DEBUG from kubectl-patch",
    ] {
        assert!(out.stdout.contains(line), "{line:?} in:\n{}", out.stdout);
    }
    assert!(!out.stdout.contains("--force-conflicts"), "{}", out.stdout);
    let out = cluster.cairn(&["apply", &path, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(replicas(&cluster), 2);
    assert_eq!(debug(&cluster), "False");
    let out = cluster.cairn(&["plan", &path]);
    assert_eq!(out.code, 0, "healed: {}", out.stdout);

    // A key added by hand is not cairn's to remove, but drift says it is there.
    let out = kubectl(
        &cluster,
        &[
            "patch",
            "configmap",
            "settings",
            "-n",
            "heal",
            "-p",
            r#"{"data":{"EXTRA":"1"}}"#,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cluster.cairn(&["drift", &path]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("+ ConfigMap/heal/settings data.EXTRA (by kubectl-patch)"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("No drift"), "{}", out.stdout);
}

#[test]
fn replicas_a_controller_scales_are_left_to_it() {
    let cluster = TestCluster::start(cairn_sandbox::SandboxConfig::default());
    let path = cluster.write("heal.rhai", SCRIPT);
    let out = cluster.cairn(&["apply", &path, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    // An autoscaler scales through the scale subresource, as kube-controller-manager.
    scale_as(&cluster, "kube-controller-manager", 7);
    let out = cluster.cairn(&["plan", &path]);
    assert_eq!(out.code, 0, "not fought: {}\n{}", out.stdout, out.stderr);
    let out = cluster.cairn(&["apply", &path, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(replicas(&cluster), 7);

    // A manager the script leaves fields to is not fought either.
    scale_as(&cluster, "argocd-controller", 3);
    let out = cluster.cairn(&["plan", &path]);
    assert_eq!(out.code, 2, "another tool: a conflict: {}", out.stdout);
    assert!(out.stdout.contains("--force-conflicts"), "{}", out.stdout);
    let left = SCRIPT.replace(
        r#"environment("heal", #{})"#,
        r#"environment("heal", #{ leave_to: ["argocd-controller"] })"#,
    );
    let path = cluster.write("heal.rhai", &left);
    let out = cluster.cairn(&["plan", &path]);
    assert_eq!(
        out.code, 0,
        "left to argocd: {}\n{}",
        out.stdout, out.stderr
    );
}

/// `autoscale`: an HPA scales the Deployment, and cairn never applies its replicas.
#[test]
fn an_autoscaled_deployment_is_left_to_its_autoscaler() {
    let cluster = TestCluster::start(cairn_sandbox::SandboxConfig::default());
    let path = cluster.write(
        "auto.rhai",
        r#"
let env = environment("heal", #{});
env.namespace("heal", #{});
env.deployment("web", #{ image: "nginx:1.27", port: 80, resources: #{ cpu: "100m", memory: "64Mi" },
    autoscale: #{ min: 2, max: 5, cpu: 70 } });
"#,
    );
    let out = cluster.cairn(&["apply", &path, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("HorizontalPodAutoscaler/heal/web"),
        "{}",
        out.stdout
    );
    let out = kubectl(
        &cluster,
        &[
            "get",
            "hpa",
            "web",
            "-n",
            "heal",
            "-o",
            "jsonpath={.spec.minReplicas}-{.spec.maxReplicas}",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2-5");
    // The autoscaler scales (as kube-controller-manager, through the scale subresource).
    scale_as(&cluster, "kube-controller-manager", 4);
    let out = cluster.cairn(&["plan", &path]);
    assert_eq!(out.code, 0, "not fought: {}\n{}", out.stdout, out.stderr);
    let out = cluster.cairn(&["apply", &path, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(replicas(&cluster), 4);
}
