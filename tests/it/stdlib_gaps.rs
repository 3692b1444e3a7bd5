//! Sidecars, init containers, pod annotations and labels, and Services whose port differs
//! from the container's: rendered as strictly valid objects, applied on the emulator, and the
//! errors that name script types.

use cairn_sandbox::SandboxConfig;
use cairn_tests::{TestCluster, cairn, ci_vars, temp_dir};
use k8s_openapi::api::{apps::v1 as apps, core::v1 as core};
use serde::Serialize;
use serde::de::DeserializeOwned;

const SCRIPT: &str = r#"
let env = environment("gaps", #{});
env.namespace("gaps", #{ isolate: #{} });
let db = env.secret("exporter", #{ DATA_SOURCE_NAME: secret_env("EXPORTER_DSN") });
let web = env.deployment("web", #{
    image: "ghcr.io/acme/web:1.0",
    port: 80, target_port: 8000,
    ports: #{ admin: #{ port: 81, target_port: 8001 } },
    ready: http_get("/health", 8000),
    annotations: #{ "prometheus.io/scrape": "true", "prometheus.io/port": 9187 },
    labels: #{ team: "web" },
    sidecars: [#{ name: "exporter", image: "quay.io/prometheuscommunity/postgres-exporter:v0.15.0",
                  ports: #{ metrics: 9187 }, env: [db], resources: #{ cpu: "50m", memory: "64Mi" } }],
    init: [#{ name: "wait", image: "busybox:1.36", command: ["sh", "-c", "true"] }],
});
env.route("web.gaps.example.com", web, #{});
"#;

fn vars() -> Vec<(&'static str, &'static str)> {
    vec![("EXPORTER_DSN", "postgresql://exporter:hunter2@db:5432/app")]
}

fn render(script: &str) -> Vec<serde_json::Value> {
    let dir = temp_dir("gaps");
    let path = dir.join("gaps.rhai");
    std::fs::write(&path, script).expect("script written");
    let mut env = ci_vars();
    env.extend(
        vars()
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let out = cairn(
        &["render", &path.to_string_lossy(), "--format", "json"],
        env,
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("hunter2"), "{}", out.stdout);
    serde_json::from_str(&out.stdout).expect("JSON array")
}

/// Deserializes into the k8s-openapi type and back: nothing unknown, nothing lost.
fn strict<T: DeserializeOwned + Serialize>(doc: &serde_json::Value) -> T {
    let typed: T = serde_json::from_value(doc.clone()).expect("a valid object");
    let back = serde_json::to_value(&typed).expect("serialized");
    assert_eq!(&back, doc, "fields lost or changed in a round trip");
    typed
}

fn find<'a>(docs: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn sidecars_init_containers_annotations_and_port_mapping_render_strictly_valid() {
    let docs = render(SCRIPT);
    let deployment: apps::Deployment = strict(find(&docs, "Deployment", "web"));
    let template = deployment.spec.template;
    let meta = template.metadata.expect("pod metadata");
    let annotations = meta.annotations.expect("annotations");
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "9187");
    let labels = meta.labels.expect("labels");
    assert_eq!(labels["team"], "web");
    assert_eq!(labels["app.kubernetes.io/name"], "web");
    let pod = template.spec.expect("pod spec");
    let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["web", "exporter"]);
    let main_ports: Vec<i32> = pod.containers[0]
        .ports
        .iter()
        .flatten()
        .map(|p| p.container_port)
        .collect();
    assert_eq!(main_ports, [8000, 8001]);
    let exporter = &pod.containers[1];
    assert_eq!(
        exporter.ports.as_ref().expect("ports")[0].container_port,
        9187
    );
    let env = &exporter.env.as_ref().expect("env")[0];
    assert_eq!(env.name, "DATA_SOURCE_NAME");
    assert!(env.value.is_none(), "the DSN comes from the Secret");
    let init = pod.init_containers.expect("init containers");
    assert_eq!(init[0].name, "wait");

    let service: core::Service = strict(find(&docs, "Service", "web"));
    let ports: Vec<(String, i32, String)> = service
        .spec
        .expect("spec")
        .ports
        .expect("ports")
        .into_iter()
        .map(|p| {
            let target = match p.target_port.expect("target port") {
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => n.to_string(),
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s,
            };
            (p.name.unwrap_or_default(), p.port, target)
        })
        .collect();
    assert_eq!(
        ports,
        [
            ("http".to_owned(), 80, "8000".to_owned()),
            ("admin".to_owned(), 81, "8001".to_owned()),
            ("metrics".to_owned(), 9187, "9187".to_owned()),
        ]
    );
    // The Ingress names the Service's port; the ingress controller's policy the pod's.
    let ingress = find(&docs, "Ingress", "web.gaps.example.com");
    let backend = &ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"];
    assert_eq!(backend["port"]["number"], 80);
    let policy = find(&docs, "NetworkPolicy", "allow-ingress-to-web");
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], 8000);
}

#[test]
fn sidecars_and_port_mapping_apply_on_the_sandbox_and_replan_clean() {
    let cluster = TestCluster::start(SandboxConfig {
        pod_start_delay: std::time::Duration::from_millis(50),
        ..SandboxConfig::default()
    });
    let script = cluster.write("gaps.rhai", SCRIPT);
    let out = cluster.cairn_with(&["apply", &script, "--yes"], &vars());
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Apply complete"), "{}", out.stdout);
    assert!(!out.stdout.contains("hunter2"), "{}", out.stdout);
    cluster.runtime.block_on(async {
        let client = cairn_tests::kube_client(&cluster).await;
        let deployments: kube::Api<apps::Deployment> =
            kube::Api::namespaced(client.clone(), "gaps");
        let web = deployments.get("web").await.expect("the Deployment");
        let status = web.status.expect("status");
        assert_eq!(status.ready_replicas, Some(1), "{status:?}");
        let pod = web.spec.template;
        let spec = pod.spec.expect("pod spec");
        assert_eq!(spec.containers.len(), 2);
        assert_eq!(spec.init_containers.expect("init").len(), 1);
        let annotations = pod
            .metadata
            .expect("meta")
            .annotations
            .expect("annotations");
        assert_eq!(annotations["prometheus.io/scrape"], "true");
        let services: kube::Api<core::Service> = kube::Api::namespaced(client, "gaps");
        let svc = services.get("web").await.expect("the Service");
        let http = &svc.spec.expect("spec").ports.expect("ports")[0];
        assert_eq!(
            (http.port, http.target_port.clone()),
            (
                80,
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8000))
            )
        );
    });
    let out = cluster.cairn_with(&["plan", &script], &vars());
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("No changes"), "{}", out.stdout);
}

fn diagnostics(script: &str) -> Vec<String> {
    let eval = cairn_stdlib::evaluate(
        "gaps.rhai",
        script,
        &[],
        &cairn_stdlib::EvalOptions::default(),
    );
    eval.diagnostics.iter().map(|d| d.message.clone()).collect()
}

#[test]
fn errors_name_script_types_never_rust_paths() {
    let messages = diagnostics(
        r#"
let env = environment("gaps", #{});
env.namespace("gaps", #{});
let s = env.secret("s", #{ A: "1" });
let web = env.deployment("web", #{ image: "nginx:1.27", after: [s], pull_secret: [#{}], replicas: "two",
    sidecars: ["exporter"], annotations: #{ a: [1] } });
"#,
    );
    let all = messages.join("\n");
    assert!(!all.contains("cairn_stdlib"), "{all}");
    assert!(!all.contains("::"), "{all}");
    for expected in [
        "`after` of `web` lists a secret, not a workload or a component",
        "`pull_secret` of `web` must be a secret, found a map",
        "must be an integer, found a string",
        "each of `sidecars` must be a map #{ name, image, ... }, found a string",
        "annotations `a` of `web` must be a string, found an array",
    ] {
        assert!(all.contains(expected), "no «{expected}» in:\n{all}");
    }
}

#[test]
fn after_takes_a_component() {
    let messages = diagnostics(
        r#"
let env = environment("gaps", #{});
env.namespace("gaps", #{});
let w = env.statefulset("kv", #{ image: "valkey/valkey:8.0", port: 6379 });
let kv = component(#{ name: "kv", host: "kv", port: 6379, workload: w });
env.job("seed", #{ image: "valkey/valkey:8.0", command: ["true"], after: [kv] });
"#,
    );
    assert!(
        messages.iter().all(|m| !m.contains("after")),
        "{messages:?}"
    );
}

#[test]
fn clashing_ports_and_containers_are_reported() {
    let all = diagnostics(
        r#"
let env = environment("gaps", #{});
env.namespace("gaps", #{});
env.deployment("web", #{ image: "nginx:1.27", port: 80, ready: http_get("/", 80), target_port: 8080,
    sidecars: [#{ name: "web", image: "nginx:1.27", port: 8080 }],
    labels: #{ "app.kubernetes.io/name": "other" } });
"#,
    )
    .join("\n");
    for expected in [
        "the pod of `web` has two containers named \"web\"",
        "port 8080 (web) of sidecar `web` clashes with port 8080 (http) of the pod",
        "the `ready` probe of `web` checks port 80, which the container does not expose",
        "label `app.kubernetes.io/name` of `web`'s pods is cairn's own",
    ] {
        assert!(all.contains(expected), "no «{expected}» in:\n{all}");
    }
}

/// A component's documented getters: its Service, its Secret, its Jobs (to run after).
#[test]
fn components_expose_their_service_secret_and_jobs() {
    let script = r#"
import "cockroachdb" as cockroachdb;
import "postgres" as postgres;
let env = environment("gaps", #{});
env.namespace("gaps", #{});
let crdb = cockroachdb::cluster(env, "crdb", #{ storage: "1Gi" });
let pg = postgres::instance(env, "pg", #{ storage: "1Gi" });
let seed = env.job("seed", #{ image: "ghcr.io/acme/seed:1", after: [crdb.jobs[0]],
    env: [#{ DB_SERVICE: crdb.service, CRDB_SECRET: crdb.secret, PG_SECRET: pg.secret }] });
"#;
    let eval = cairn_stdlib::evaluate(
        "gaps.rhai",
        script,
        &[cairn_tests::root().join("plugins")],
        &cairn_stdlib::EvalOptions::default(),
    );
    assert!(!eval.has_errors(), "{:?}", eval.diagnostics);
    let seed = eval
        .state
        .resources
        .iter()
        .find(|r| r.id.kind == "Job" && r.id.name == "seed")
        .expect("the seed Job");
    let after: Vec<String> = seed.depends_on.iter().map(ToString::to_string).collect();
    assert!(
        after
            .iter()
            .any(|d| d.starts_with("Job/gaps/") && d.contains("init")),
        "runs after the plugin's init Job: {after:?}"
    );
    let env = seed.body.to_json().to_string();
    assert!(env.contains(r#""value":"crdb""#), "{env}");
    assert!(
        !env.contains(r#""name":"DB_SECRET","value":"""#),
        "a Secret's name: {env}"
    );
}
