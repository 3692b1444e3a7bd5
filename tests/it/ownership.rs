//! Objects cairn does not own: made by hand with Debian's kubectl before cairn (client-side
//! apply), they are shown as refusals with the fields cairn would take and those it would
//! leave, taken over only with `env.adopt` or `--adopt`, and then plan clean.

use cairn_sandbox::SandboxConfig;
use cairn_tests::{TestCluster, root};

fn config() -> SandboxConfig {
    SandboxConfig {
        pod_start_delay: std::time::Duration::from_millis(20),
        ..SandboxConfig::default()
    }
}

const HAND_MADE: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  MODE: "old"
  EXTRA: "kept"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: web
  template:
    metadata:
      labels:
        app.kubernetes.io/name: web
    spec:
      containers:
      - name: web
        image: nginx:1.25
        envFrom:
        - configMapRef:
            name: settings
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector:
    app.kubernetes.io/name: web
  ports:
  - name: http
    port: 80
  - name: https
    port: 443
"#;

fn script(adopt: &str) -> String {
    format!(
        r#"
let env = environment("shop", #{{}});
env.namespace("shop", #{{}});
let settings = env.config_map("settings", #{{ MODE: "new" }});
env.deployment("web", #{{ image: "nginx:1.27", replicas: 1, port: 80, env: [settings] }});
{adopt}
"#
    )
}

pub(crate) fn kubectl(cluster: &TestCluster, args: &[&str]) -> std::process::Output {
    let kubectl = root().join(".test-tools/kubernetes-client/usr/bin/kubectl");
    assert!(
        kubectl.exists(),
        "kubectl missing: run scripts/install-test-servers"
    );
    std::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs")
}

/// Fields of ConfigMap shop/settings, read with kubectl's jsonpath.
fn settings(cluster: &TestCluster, jsonpath: &str) -> String {
    let out = kubectl(
        cluster,
        &[
            "get",
            "configmap",
            "settings",
            "-n",
            "shop",
            "-o",
            &format!("jsonpath={jsonpath}"),
        ],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn hand_made_objects_are_adopted_only_when_the_script_says_so() {
    let cluster = TestCluster::start(config());
    let manifest = cluster.write("hand-made.yaml", HAND_MADE);
    let out = kubectl(&cluster, &["apply", "-f", &manifest]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Without adopt: each is refused, with the fields cairn would take and those it leaves.
    let v1 = cluster.write("v1.rhai", &script(""));
    let plan = cluster.cairn(&["plan", &v1]);
    assert_eq!(plan.code, 1, "{}\n{}", plan.stdout, plan.stderr);
    for id in [
        "Namespace/shop",
        "ConfigMap/shop/settings",
        "Deployment/shop/web",
        "Service/shop/web",
    ] {
        let line = format!("✗ {id}  (declared at {v1}:");
        assert!(plan.stdout.contains(&line), "{id}:\n{}", plan.stdout);
    }
    assert!(
        plan.stdout
            .contains("exists without cairn's labels (written by kubectl-client-side-apply)"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("data.MODE: \"old\" → \"new\""),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("spec.template.spec.containers[web].envFrom"),
        "the stray envFrom is named:\n{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("spec.ports[443"),
        "the second port is named:\n{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("env.adopt(\"Deployment\", \"web\")"),
        "{}",
        plan.stdout
    );
    let apply = cluster.cairn(&["apply", &v1, "--yes"]);
    assert_eq!(apply.code, 1, "{}\n{}", apply.stdout, apply.stderr);
    let cm = settings(&cluster, "{.data.MODE}");
    assert_eq!(cm, "old", "nothing was applied");

    // `--adopt` plans the take-over of all of them.
    let plan = cluster.cairn(&["plan", &v1, "--adopt"]);
    assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains("⇐ Deployment/shop/web"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("to adopt"), "{}", plan.stdout);

    // env.adopt in the script: applied, then clean.
    let adopt = r#"env.adopt("Namespace", "shop"); env.adopt("ConfigMap", "settings"); env.adopt("Deployment", "web"); env.adopt("Service", "web");"#;
    let v2 = cluster.write("v2.rhai", &script(adopt));
    let apply = cluster.cairn(&["apply", &v2, "--yes"]);
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    assert!(
        apply.stdout.contains("⇐ Service/shop/web"),
        "{}",
        apply.stdout
    );
    let cm = settings(
        &cluster,
        "{.data.MODE} {.metadata.labels.cairn\\.dev/environment}",
    );
    assert_eq!(cm, "new shop");
    let again = cluster.cairn(&["plan", &v2]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
}

const SMALL: &str = r#"
let env = environment("shop", #{ cluster: kube_context("PIN") });
env.namespace("shop", #{});
env.config_map("settings", #{ MODE: "one" });
"#;

/// A script that pins a context is planned and applied on that context only: `--context`
/// elsewhere is refused naming the pin's line and the contexts there are; a pinned context the
/// kubeconfig does not have is named with those it has.
#[test]
fn the_cluster_pin_is_a_guard() {
    let cluster = TestCluster::start(config());
    let pinned = cluster.write("pinned.rhai", &SMALL.replace("PIN", "prod-cluster"));
    let out = cluster.cairn(&["plan", &pinned]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "the script pins cluster context prod-cluster ({pinned}:2), and --context asks for test"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("contexts in the kubeconfig: test"),
        "{}",
        out.stderr
    );
    let kubeconfig = cluster.kubeconfig.to_string_lossy().into_owned();
    let out = cairn_tests::cairn(
        &["plan", &pinned, "--kubeconfig", &kubeconfig],
        cairn_tests::ci_vars(),
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("has no context prod-cluster; its contexts: test"),
        "{}",
        out.stderr
    );
    let right = cluster.write("right.rhai", &SMALL.replace("PIN", "test"));
    let out = cluster.cairn(&["plan", &right]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
}

/// The first apply records the cluster's identity (the kube-system namespace's uid) in the
/// inventory; an inventory from another cluster is refused unless `--accept-cluster`. A saved
/// plan is applied only on the cluster it was made on, whatever its context name points at.
#[test]
fn the_cluster_identity_is_a_guard() {
    let cluster = TestCluster::start(config());
    let script = cluster.write("shop.rhai", &SMALL.replace("PIN", "test"));
    assert_eq!(cluster.cairn(&["apply", &script, "--yes"]).code, 0);
    let inventory = kubectl(
        &cluster,
        &[
            "get",
            "configmap",
            "cairn-inventory",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.cluster}",
        ],
    );
    let uid = kubectl(
        &cluster,
        &[
            "get",
            "namespace",
            "kube-system",
            "-o",
            "jsonpath={.metadata.uid}",
        ],
    );
    assert_eq!(inventory.stdout, uid.stdout);
    assert!(!uid.stdout.is_empty());

    // As if the namespace had been restored from another cluster's backup.
    let out = kubectl(
        &cluster,
        &[
            "patch",
            "configmap",
            "cairn-inventory",
            "-n",
            "shop",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"cluster":"0000-other"}}"#,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cluster.cairn(&["plan", &script]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("was applied on cluster 0000-other"),
        "{}",
        out.stderr
    );
    let out = cluster.cairn(&["apply", &script, "--yes", "--accept-cluster"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(cluster.cairn(&["plan", &script]).code, 0);

    // A saved plan, then the context name points at another cluster.
    let changed = cluster.write(
        "changed.rhai",
        &SMALL.replace("PIN", "test").replace("one", "two"),
    );
    let saved = cluster.write("plan.cairn", "");
    assert_eq!(cluster.cairn(&["plan", &changed, "-o", &saved]).code, 2);
    let other = TestCluster::start(config());
    std::fs::copy(&other.kubeconfig, &cluster.kubeconfig).expect("kubeconfig swapped");
    let out = cluster.cairn(&["apply", &saved]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("a plan is applied on the cluster it was made on"),
        "{}",
        out.stderr
    );
}

/// A lock left by a process of this host that no longer runs is taken at once, and said so.
#[test]
fn a_stale_local_lock_is_taken_at_once() {
    let cluster = TestCluster::start(config());
    let script = cluster.write("shop.rhai", &SMALL.replace("PIN", "test"));
    let mut gone = std::process::Command::new("true")
        .spawn()
        .expect("true runs");
    let pid = gone.id();
    gone.wait().expect("true exits");
    let host = cairn_kube::lock::this_host();
    let here = cairn_kube::lock::this_pid_namespace().expect("/proc/self/ns/pid");
    let lease_of = |pid_namespace: &str| {
        cluster.runtime.block_on(async {
            let client = cairn_tests::kube_client(&cluster).await;
            let api: kube::Api<k8s_openapi::api::coordination::v1::Lease> = kube::Api::namespaced(client, "default");
            let now = cairn_kube::lock::micro_time(std::time::SystemTime::now());
            let lease = serde_json::json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "cairn-shop", "annotations": {"cairn.dev/holder-host": host, "cairn.dev/holder-pid": pid.to_string(), "cairn.dev/holder-pid-namespace": pid_namespace}},
                "spec": {"holderIdentity": format!("ci on {host} pid {pid} run 0badcafe"), "leaseDurationSeconds": 300, "acquireTime": now, "renewTime": now},
            });
            let params = kube::api::PatchParams::apply("crashed-run").force();
            api.patch("cairn-shop", &params, &kube::api::Patch::Apply(lease))
                .await
                .expect("a crashed run's lease");
        });
    };
    // A process of another container with the same host name: not seen, so not judged dead.
    lease_of("pid:[1]");
    let out = cluster.cairn(&["apply", &script, "--yes", "--lock-timeout", "1"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("locked by ci on"), "{}", out.stderr);
    lease_of(&here);
    let started = std::time::Instant::now();
    let out = cluster.cairn(&["apply", &script, "--yes", "--lock-timeout", "1"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "pid {pid} run 0badcafe, a process of this host that no longer runs: taking it"
        )),
        "{}",
        out.stdout
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

/// Two in-process `--sandbox` applies of different environments in one project, at once: the
/// second waits for the first (one file lock on .cairn/sandbox), both are kept, both then plan
/// clean; the state and its folders are their owner's only.
#[test]
fn concurrent_sandbox_applies_keep_both_and_the_state_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = cairn_tests::temp_dir("sandbox-race");
    let env = |name: &str| {
        format!(
            "let env = environment(\"{name}\", #{{}});\nenv.namespace(\"{name}\", #{{}});\nenv.config_map(\"settings\", #{{ MODE: \"{name}\" }});\nenv.deployment(\"web\", #{{ image: \"nginx:1.27\", replicas: 1, port: 80 }});\n"
        )
    };
    let scripts: Vec<String> = ["alpha", "beta"]
        .iter()
        .map(|n| {
            let p = dir.join(format!("{n}.rhai"));
            std::fs::write(&p, env(n)).expect("script");
            p.to_string_lossy().into_owned()
        })
        .collect();
    let outs: Vec<cairn_tests::Output> = std::thread::scope(|s| {
        let runs: Vec<_> = scripts
            .iter()
            .map(|p| {
                s.spawn(|| {
                    cairn_tests::cairn_in(
                        &dir,
                        &["apply", "--sandbox", p, "--yes"],
                        cairn_tests::ci_vars(),
                    )
                })
            })
            .collect();
        runs.into_iter().map(|t| t.join().expect("apply")).collect()
    });
    for o in &outs {
        assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    }
    assert!(
        outs.iter().any(|o| o
            .stderr
            .contains("Waiting: another cairn command uses the sandbox")),
        "one waited for the other"
    );
    for p in &scripts {
        let plan = cairn_tests::cairn_in(&dir, &["plan", "--sandbox", p], cairn_tests::ci_vars());
        assert_eq!(
            plan.code, 0,
            "both applies were kept:\n{}\n{}",
            plan.stdout, plan.stderr
        );
    }
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join(".cairn")), 0o700);
    assert_eq!(mode(&dir.join(".cairn/sandbox")), 0o700);
    assert_eq!(mode(&dir.join(".cairn/sandbox/state.json")), 0o600);
    let cluster = TestCluster::start(config());
    assert_eq!(
        mode(&cluster.kubeconfig),
        0o600,
        "a sandbox kubeconfig holds a token"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `sandbox down` with a pid file naming a process that is not the sandbox (the sandbox died,
/// its pid was reused) signals nothing.
#[test]
fn a_stale_sandbox_pid_file_signals_nothing() {
    let dir = cairn_tests::temp_dir("stale-pid");
    let sandbox = dir.join(".cairn/sandbox");
    std::fs::create_dir_all(&sandbox).expect("dir");
    let mut other = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep runs");
    std::fs::write(sandbox.join("pid"), other.id().to_string()).expect("pid file");
    std::fs::write(sandbox.join("kubeconfig"), "apiVersion: v1\n").expect("kubeconfig");
    for cmd in ["status", "down"] {
        let out = cairn_tests::cairn_in(&dir, &["sandbox", cmd], Default::default());
        assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains("sandbox not running"),
            "{cmd}: {}",
            out.stdout
        );
    }
    assert!(
        other.try_wait().expect("wait").is_none(),
        "the unrelated process still runs"
    );
    other.kill().expect("kill");
    let _ = other.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// An environment drops its namespace, allowing its deletion: the namespace stays while
/// another environment lives in it, and while it holds claims the script does not allow to
/// delete (here its own, which it no longer sees from its new namespace).
#[test]
fn a_namespace_is_kept_while_anything_cairn_may_not_delete_lives_in_it() {
    let cluster = TestCluster::start(config());
    let scripts = [
        (
            "owner.rhai",
            "let env = environment(\"owner\", #{});\nenv.namespace(\"shared\", #{});\nenv.config_map(\"owner-settings\", #{ MODE: \"owner\" });\n",
        ),
        (
            "guest.rhai",
            "let env = environment(\"guest\", #{});\nenv.namespace(\"shared\", #{ owned_by: \"owner\" });\nenv.config_map(\"guest-settings\", #{ MODE: \"guest\" });\n",
        ),
        (
            "solo.rhai",
            "let env = environment(\"solo\", #{});\nenv.namespace(\"lone\", #{});\nenv.volume_claim(\"solo-data\", #{ storage: \"1Gi\" });\n",
        ),
    ];
    for (name, text) in scripts {
        let script = cluster.write(name, text);
        let out = cluster.cairn(&["apply", &script, "--yes", "--timeout", "60"]);
        assert_eq!(out.code, 0, "{name}\n{}\n{}", out.stdout, out.stderr);
    }
    // Each moves to a namespace of its own, and allows (or not) the old one to go.
    let plan_of = |env: &str, old: &str, allow: bool| {
        let allow = if allow {
            format!("env.allow_delete(\"Namespace\", \"{old}\");\n")
        } else {
            String::new()
        };
        let text = format!(
            "let env = environment(\"{env}\", #{{}});\nenv.namespace(\"{env}-new\", #{{}});\n{allow}"
        );
        let script = cluster.write(&format!("{env}-{}.rhai", allow.len()), &text);
        let out = cluster.cairn(&["plan", &script]);
        format!("{}{}", out.stdout, out.stderr)
    };
    let plain = plan_of("owner", "shared", false);
    assert!(
        plain.contains("! Namespace/shared")
            && plain.contains("env.allow_delete(\"Namespace\", \"shared\")"),
        "{plain}"
    );
    let shared = plan_of("owner", "shared", true);
    assert!(
        shared.contains("! Namespace/shared")
            && shared.contains("other environments live in it (guest)"),
        "{shared}"
    );
    let lone = plan_of("solo", "lone", true);
    assert!(
        lone.contains("! Namespace/lone")
            && lone
                .contains("it holds volume claims the script does not allow to delete (solo-data)"),
        "{lone}"
    );
    for out in [&shared, &lone] {
        assert!(!out.contains("- Namespace/"), "{out}");
    }
}
