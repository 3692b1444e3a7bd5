//! Benchmark of cairn against a Kubernetes API: environments of N objects (ConfigMaps,
//! Secrets, Deployments with their Services), timing evaluation, a first plan, apply, and a
//! no-change plan, with the number of API requests each made. Targets the embedded emulator
//! by default, any cluster with `--kubeconfig FILE --context NAME`. Where Debian's kubectl is
//! available (`--kubectl PATH`, default `.test-tools/kubernetes-client/usr/bin/kubectl`), it also
//! times `kubectl apply --server-side` and `kubectl diff --server-side` on the same manifests.
//!
//! ```sh
//! cargo run --release -p cairn-tests --bin bench-kube -- --sizes 100,1000 --runs 3
//! ```

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cairn_kube::{ApplyOptions, Cluster, PlanOptions};

struct Args {
    sizes: Vec<usize>,
    runs: usize,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    kubectl: Option<PathBuf>,
}

fn parse_args() -> Args {
    let mut args = Args {
        sizes: vec![100, 1000],
        runs: 3,
        kubeconfig: None,
        context: None,
        kubectl: None,
    };
    let default_kubectl = cairn_tests::root().join(".test-tools/kubernetes-client/usr/bin/kubectl");
    if default_kubectl.exists() {
        args.kubectl = Some(default_kubectl);
    }
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--sizes" => {
                args.sizes = value()
                    .split(',')
                    .map(|s| s.parse().expect("a number"))
                    .collect()
            }
            "--runs" => args.runs = value().parse().expect("a number"),
            "--kubeconfig" => args.kubeconfig = Some(PathBuf::from(value())),
            "--context" => args.context = Some(value()),
            "--kubectl" => args.kubectl = Some(PathBuf::from(value())),
            "--no-kubectl" => args.kubectl = None,
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

/// A script declaring `n` objects in namespace `ns`: 40 % ConfigMaps, 30 % Secrets, 15 %
/// Deployments each with a Service.
fn script(ns: &str, n: usize) -> String {
    script_of(ns, n, true)
}

/// The same environment with its ConfigMaps and Deployments (and their Services) dropped: 70 %
/// of its objects to prune.
fn script_of(ns: &str, n: usize, all: bool) -> String {
    let (cms, secrets, deployments) = (n * 4 / 10, n * 3 / 10, n * 15 / 100);
    let (cms, deployments) = if all { (cms, deployments) } else { (0, 0) };
    format!(
        r#"let env = environment("{ns}", #{{}});
env.namespace("{ns}", #{{}});
for i in 0..{cms} {{ env.config_map(`settings-${{i}}`, #{{ INDEX: `${{i}}`, MODE: "bench" }}); }}
for i in 0..{secrets} {{ env.secret(`token-${{i}}`, #{{ TOKEN: sensitive(`t-${{i}}`) }}); }}
for i in 0..{deployments} {{ env.deployment(`svc-${{i}}`, #{{ image: "nginx:1.27", replicas: 1, port: 80, ready: http_get("/", 80), resources: #{{ cpu: "10m", memory: "16Mi" }} }}); }}
"#
    )
}

/// Applies a plan as the CLI does (16 steps at a time), without progress output.
async fn apply_all(cluster: &Cluster, plan: &cairn_kube::KubePlan) -> cairn_kube::Report {
    let options = ApplyOptions {
        concurrency: 16,
        ..ApplyOptions::default()
    };
    cairn_kube::apply(cluster, plan, &options, std::sync::Arc::new(|_| {})).await
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

struct Row {
    eval: Vec<Duration>,
    first_plan: Vec<Duration>,
    apply: Vec<Duration>,
    noop_plan: Vec<Duration>,
    prune: Vec<Duration>,
    pruned: usize,
    requests: [usize; 3],
    kubectl_apply: Vec<Duration>,
    kubectl_diff: Vec<Duration>,
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (cluster, sandbox, kubeconfig_file) = rt.block_on(async {
        match &args.kubeconfig {
            Some(path) => (
                Cluster::connect(Some(path), args.context.as_deref())
                    .await
                    .unwrap(),
                None,
                Some(path.clone()),
            ),
            None => {
                let config = cairn_sandbox::SandboxConfig {
                    pod_start_delay: Duration::from_millis(20),
                    ..Default::default()
                };
                let sandbox = cairn_sandbox::Sandbox::start(config).await.unwrap();
                let file = std::env::temp_dir()
                    .join(format!("cairn-bench-{}.kubeconfig", std::process::id()));
                sandbox.write_kubeconfig(&file, "sandbox").unwrap();
                let cluster =
                    Cluster::from_kubeconfig_yaml(&sandbox.kubeconfig_yaml("sandbox"), "sandbox")
                        .await
                        .unwrap();
                (cluster, Some(sandbox), Some(file))
            }
        }
    });
    let target = if sandbox.is_some() {
        "the embedded emulator".to_owned()
    } else {
        cluster.name.clone()
    };
    println!(
        "cairn benchmark against {target}, median of {} runs\n",
        args.runs
    );
    println!(
        "| objects | evaluate | first plan (requests) | apply (requests) | no-change plan (requests) | prune: plan + apply (deletions) | kubectl apply --server-side | kubectl diff --server-side |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &args.sizes {
        let mut row = Row {
            eval: vec![],
            first_plan: vec![],
            apply: vec![],
            noop_plan: vec![],
            prune: vec![],
            pruned: 0,
            requests: [0; 3],
            kubectl_apply: vec![],
            kubectl_diff: vec![],
        };
        for run in 0..args.runs {
            let ns = format!("bench-{n}-{run}-{}", std::process::id() % 10_000);
            let text = script(&ns, n);
            let t = Instant::now();
            let eval = cairn_stdlib::evaluate(
                "bench.rhai",
                &text,
                &[],
                &cairn_stdlib::EvalOptions::default(),
            );
            row.eval.push(t.elapsed());
            assert!(!eval.has_errors(), "{:?}", eval.diagnostics);
            rt.block_on(async {
                cluster.clear_requests();
                let t = Instant::now();
                let plan = cairn_kube::plan(&cluster, &eval.state, &PlanOptions::default())
                    .await
                    .unwrap();
                row.first_plan.push(t.elapsed());
                row.requests[0] = cluster.requests().len();
                cluster.clear_requests();
                let t = Instant::now();
                let report = apply_all(&cluster, &plan).await;
                row.apply.push(t.elapsed());
                assert!(report.ok(), "{:?}", report.failed.first());
                row.requests[1] = cluster.requests().len();
                cluster.clear_requests();
                let t = Instant::now();
                let plan = cairn_kube::plan(&cluster, &eval.state, &PlanOptions::default())
                    .await
                    .unwrap();
                row.noop_plan.push(t.elapsed());
                row.requests[2] = cluster.requests().len();
                assert!(!plan.plan.has_changes(), "a second plan must be empty");
                // Prune: plan and apply the environment without 70 % of its objects.
                let smaller = cairn_stdlib::evaluate(
                    "bench.rhai",
                    &script_of(&ns, n, false),
                    &[],
                    &cairn_stdlib::EvalOptions::default(),
                );
                let t = Instant::now();
                let plan = cairn_kube::plan(&cluster, &smaller.state, &PlanOptions::default())
                    .await
                    .unwrap();
                let report = apply_all(&cluster, &plan).await;
                row.prune.push(t.elapsed());
                assert!(report.ok(), "{:?}", report.failed.first());
                row.pruned = plan.plan.summary().delete;
            });
            if let (Some(kubectl), Some(kubeconfig)) = (&args.kubectl, &kubeconfig_file) {
                let (apply, diff) = kubectl_times(
                    kubectl,
                    kubeconfig,
                    args.context.as_deref().unwrap_or("sandbox"),
                    &ns,
                    n,
                );
                row.kubectl_apply.push(apply);
                row.kubectl_diff.push(diff);
            }
        }
        let kubectl = |v: &Vec<Duration>, ours: Duration| {
            if v.is_empty() {
                "n/a".to_owned()
            } else {
                let m = median(v.clone());
                format!(
                    "{} ({:.1}× cairn)",
                    ms(m),
                    m.as_secs_f64() / ours.as_secs_f64()
                )
            }
        };
        let apply = median(row.apply.clone());
        let noop = median(row.noop_plan.clone());
        println!(
            "| {n} | {} | {} ({}) | {} ({}) | {} ({}) | {} ({}) | {} | {} |",
            ms(median(row.eval)),
            ms(median(row.first_plan)),
            row.requests[0],
            ms(apply),
            row.requests[1],
            ms(noop),
            row.requests[2],
            ms(median(row.prune)),
            row.pruned,
            kubectl(&row.kubectl_apply, apply),
            kubectl(&row.kubectl_diff, noop)
        );
    }
    if let Some(sandbox) = sandbox {
        rt.block_on(sandbox.shutdown()).unwrap();
    }
}

/// Times kubectl on the same manifests, rendered into another namespace.
fn kubectl_times(
    kubectl: &std::path::Path,
    kubeconfig: &std::path::Path,
    context: &str,
    ns: &str,
    n: usize,
) -> (Duration, Duration) {
    let kns = format!("{ns}-kubectl");
    let eval = cairn_stdlib::evaluate(
        "bench.rhai",
        &script(&kns, n),
        &[],
        &cairn_stdlib::EvalOptions::default(),
    );
    let dir = std::env::temp_dir().join(format!("cairn-bench-{kns}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut manifests = String::new();
    for r in eval.state.kube_objects() {
        let mut body = r.body.reveal(&|_| Some("x".repeat(8))).unwrap();
        if r.id.kind == "Secret" {
            body["stringData"] = body["stringData"].clone();
        }
        manifests.push_str("---\n");
        manifests.push_str(&serde_json::to_string(&body).unwrap());
        manifests.push('\n');
    }
    let file = dir.join("all.yaml");
    std::fs::write(&file, manifests).unwrap();
    let run = |verb: &[&str]| {
        let t = Instant::now();
        let out = std::process::Command::new(kubectl)
            .args([
                "--kubeconfig",
                &kubeconfig.to_string_lossy(),
                "--context",
                context,
            ])
            .args(verb)
            .args(["-f", &file.to_string_lossy()])
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        assert!(
            code == 0 || (verb[0] == "diff" && code == 1),
            "kubectl {verb:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.elapsed()
    };
    let apply = run(&["apply", "--server-side", "--field-manager", "kubectl-bench"]);
    let diff = run(&["diff", "--server-side", "--field-manager", "kubectl-bench"]);
    let _ = std::fs::remove_dir_all(&dir);
    (apply, diff)
}
