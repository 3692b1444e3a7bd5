//! Benchmark of cairn against a Kubernetes API: environments of N objects (40 % ConfigMaps,
//! 30 % Secrets, 15 % Deployments each with a Service). Per size it times evaluation, a first
//! plan, the apply with readiness waits and the moment every object was accepted, a **floor**
//! (the same objects written by concurrent server-side applies with no waits, in the same run),
//! a no-change plan, a prune of 70 % of the objects, and kubectl's `apply --server-side` and
//! `diff --server-side` on the same manifests (every kubectl given with `--kubectl PATH`;
//! by default the one on `PATH` and Debian's in `.test-tools/`), with requests per object and
//! the process's peak RSS. A last row prunes 1,500 mixed objects (1,000 ConfigMaps, 250
//! Deployments and their 250 Services) from a 3,000-object environment. Targets the embedded
//! emulator by default, any cluster with `--kubeconfig FILE --context NAME`.
//!
//! ```sh
//! cargo run --release -p cairn-tests --bin bench-kube -- --sizes 1000,10000 --runs 1
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
    kubectls: Vec<PathBuf>,
    prune: bool,
}

const USAGE: &str =
    "usage: bench-kube [--sizes N,N…] [--runs N] [--kubeconfig FILE] [--context NAME]
                  [--kubectl PATH]… [--no-kubectl] [--no-prune]

Benchmarks cairn's plan, apply and prune against the embedded emulator (or a cluster with
--kubeconfig), beside a floor of concurrent server-side applies and kubectl's apply/diff
--server-side (the kubectl on PATH and Debian's in .test-tools/, or those --kubectl names).";

/// Stops with a usage error (exit 2), or the usage itself (exit 0).
fn usage(problem: Option<String>) -> ! {
    match problem {
        Some(p) => {
            eprintln!("bench-kube: {p}\n\n{USAGE}");
            std::process::exit(2)
        }
        None => {
            println!("{USAGE}");
            std::process::exit(0)
        }
    }
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> T {
    text.parse()
        .unwrap_or_else(|_| usage(Some(format!("{flag} takes a number, not {text:?}"))))
}

fn parse_args() -> Args {
    let mut args = Args {
        sizes: vec![1000, 10000],
        runs: 1,
        kubeconfig: None,
        context: None,
        kubectls: Vec::new(),
        prune: true,
    };
    let mut given: Option<Vec<PathBuf>> = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(Some(format!("{a} needs a value"))))
        };
        match a.as_str() {
            "--sizes" => args.sizes = value().split(',').map(|s| number("--sizes", s)).collect(),
            "--runs" => args.runs = number("--runs", &value()),
            "--kubeconfig" => args.kubeconfig = Some(PathBuf::from(value())),
            "--context" => args.context = Some(value()),
            "--kubectl" => given
                .get_or_insert_with(Vec::new)
                .push(PathBuf::from(value())),
            "--no-kubectl" => given = Some(Vec::new()),
            "--no-prune" => args.prune = false,
            "--help" | "-h" => usage(None),
            other => usage(Some(format!("unknown argument {other}"))),
        }
    }
    args.kubectls = given.unwrap_or_else(default_kubectls);
    args
}

/// The kubectl on `PATH` and Debian's in `.test-tools/`, those that exist.
fn default_kubectls() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("kubectl"))
            .find(|p| p.exists())
    });
    out.extend(on_path);
    let debian = cairn_tests::root().join(".test-tools/kubernetes-client/usr/bin/kubectl");
    if debian.exists() {
        out.push(debian);
    }
    out
}

/// What `kubectl version --client` says of itself, in short.
fn kubectl_version(kubectl: &std::path::Path) -> String {
    let out = std::process::Command::new(kubectl)
        .args(["version", "--client"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.split(|c: char| c == '"' || c.is_whitespace())
        .find(|w| w.starts_with('v') && w[1..].starts_with(|c: char| c.is_ascii_digit()))
        .map_or_else(|| "unknown".to_owned(), str::to_owned)
}

/// A script declaring `n` objects in namespace `ns`: 40 % ConfigMaps, 30 % Secrets, 15 %
/// Deployments each with a Service.
fn script(ns: &str, n: usize) -> String {
    let (cms, secrets, deployments) = (n * 4 / 10, n * 3 / 10, n * 15 / 100);
    script_with(ns, cms, secrets, deployments)
}

fn script_with(ns: &str, cms: usize, secrets: usize, deployments: usize) -> String {
    format!(
        r#"let env = environment("{ns}", #{{}});
env.namespace("{ns}", #{{}});
for i in 0..{cms} {{ env.config_map(`settings-${{i}}`, #{{ INDEX: `${{i}}`, MODE: "bench" }}); }}
for i in 0..{secrets} {{ env.secret(`token-${{i}}`, #{{ TOKEN: sensitive(`t-${{i}}`) }}); }}
for i in 0..{deployments} {{ env.deployment(`svc-${{i}}`, #{{ image: "nginx:1.27", replicas: 1, port: 80, ready: http_get("/", 80), resources: #{{ cpu: "10m", memory: "16Mi" }} }}); }}
"#
    )
}

fn evaluate(text: &str) -> cairn_stdlib::Evaluation {
    let eval = cairn_stdlib::evaluate(
        "bench.rhai",
        text,
        &[],
        &cairn_stdlib::EvalOptions::default(),
    );
    assert!(!eval.has_errors(), "{:?}", eval.diagnostics);
    eval
}

/// What one apply took: in all, and until every object had been accepted (written, and
/// waiting for readiness or done).
struct Applied {
    all: Duration,
    accepted: Duration,
    requests: usize,
}

/// Applies a plan as the CLI does (its default parallelism), without progress output.
async fn apply_all(cluster: &Cluster, plan: &cairn_kube::KubePlan) -> Applied {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    let options = ApplyOptions::default();
    let first: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen = first.clone();
    let emit = Arc::new(move |e: cairn_kube::Event| {
        if let cairn_kube::Event::Waiting { id, .. } | cairn_kube::Event::Done { id, .. } = e {
            seen.lock()
                .unwrap()
                .entry(id.to_string())
                .or_insert_with(Instant::now);
        }
    });
    cluster.clear_requests();
    let t = Instant::now();
    let report = cairn_kube::apply(cluster, plan, &options, emit).await;
    let all = t.elapsed();
    assert!(report.ok(), "{:?}", report.failed.first());
    let accepted = first
        .lock()
        .unwrap()
        .values()
        .max()
        .map_or(Duration::ZERO, |last| last.duration_since(t));
    Applied {
        all,
        accepted,
        requests: cluster.requests().len(),
    }
}

/// The floor: the same objects (in namespace `ns`) written by concurrent server-side
/// applies, as many in flight as cairn allows itself, the namespace first, no waits.
async fn floor(cluster: &Cluster, ns: &str, n: usize) -> (Duration, usize) {
    use futures::StreamExt;
    let eval = evaluate(&script(ns, n));
    let bodies: Vec<serde_json::Value> = eval
        .state
        .kube_objects()
        .map(|r| r.body.reveal(&|_| Some("x".repeat(8))).unwrap())
        .collect();
    let (namespaces, rest): (Vec<_>, Vec<_>) =
        bodies.into_iter().partition(|b| b["kind"] == "Namespace");
    cluster.clear_requests();
    let t = Instant::now();
    for b in &namespaces {
        cluster.apply_object(b).await.unwrap();
    }
    let results: Vec<_> = futures::stream::iter(rest.iter().map(|b| cluster.apply_object(b)))
        .buffer_unordered(cluster.requests_in_flight())
        .collect()
        .await;
    let took = t.elapsed();
    assert!(
        results.iter().all(Result::is_ok),
        "the floor's writes failed"
    );
    (took, cluster.requests().len())
}

/// The peak resident set of this process (cairn, and the emulator when it runs in-process).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}×", a.as_secs_f64() / b.as_secs_f64().max(1e-9))
}

#[derive(Default)]
struct Row {
    eval: Vec<Duration>,
    first_plan: Vec<Duration>,
    apply: Vec<Duration>,
    accepted: Vec<Duration>,
    floor: Vec<Duration>,
    noop_plan: Vec<Duration>,
    prune: Vec<Duration>,
    pruned: usize,
    /// First plan, apply, floor, no-change plan.
    requests: [usize; 4],
    /// Per kubectl: apply and diff times.
    kubectl: Vec<(Vec<Duration>, Vec<Duration>)>,
}

struct Bench {
    rt: tokio::runtime::Runtime,
    cluster: Cluster,
    kubeconfig: Option<PathBuf>,
    context: String,
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (cluster, sandbox, kubeconfig) = rt.block_on(connect(&args));
    let target = if sandbox.is_some() {
        "the embedded emulator".to_owned()
    } else {
        cluster.name.clone()
    };
    let bench = Bench {
        rt,
        cluster,
        kubeconfig,
        context: args.context.clone().unwrap_or_else(|| "sandbox".to_owned()),
    };
    let versions: Vec<String> = args.kubectls.iter().map(|k| kubectl_version(k)).collect();
    println!(
        "cairn benchmark against {target}, median of {} runs; {} requests in flight; kubectl: {}\n",
        args.runs,
        bench.cluster.requests_in_flight(),
        if versions.is_empty() {
            "none".to_owned()
        } else {
            versions.join(", ")
        }
    );
    let kubectl_cols: String = versions
        .iter()
        .map(|v| format!(" kubectl {v} apply --server-side | kubectl {v} diff --server-side |"))
        .collect();
    println!(
        "| objects | evaluate | first plan (requests) | apply with readiness (requests, per object) | all accepted | floor (requests) | apply ÷ floor | accepted ÷ floor | no-change plan (requests) | prune 70 %: plan + apply (deletions) |{kubectl_cols} peak RSS so far (cairn + emulator) |"
    );
    println!(
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|{} ---:|",
        " ---:| ---:|".repeat(versions.len())
    );
    for &n in &args.sizes {
        let row = bench.size(n, &args);
        print_row(n, row, versions.len());
    }
    if args.prune {
        let (took, deletions, requests) = bench.prune_mixed();
        println!(
            "\nprune of {deletions} mixed objects (1,000 ConfigMaps, 250 Deployments, 250 Services) from a 3,000-object environment: plan + apply {} in {requests} requests",
            ms(took)
        );
    }
    println!(
        "\nrequests the server refused with 429 and cairn sent again after its Retry-After: {}",
        bench.cluster.throttled()
    );
    if let Some(sandbox) = sandbox {
        bench.rt.block_on(sandbox.shutdown()).unwrap();
    }
}

async fn connect(args: &Args) -> (Cluster, Option<cairn_sandbox::Sandbox>, Option<PathBuf>) {
    if let Some(path) = &args.kubeconfig {
        let cluster = Cluster::connect(Some(path), args.context.as_deref())
            .await
            .unwrap();
        return (cluster, None, Some(path.clone()));
    }
    let config = cairn_sandbox::SandboxConfig {
        pod_start_delay: Duration::from_millis(20),
        ..Default::default()
    };
    let sandbox = cairn_sandbox::Sandbox::start(config).await.unwrap();
    let file = std::env::temp_dir().join(format!("cairn-bench-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&file, "sandbox").unwrap();
    let cluster = Cluster::from_kubeconfig_yaml(&sandbox.kubeconfig_yaml("sandbox"), "sandbox")
        .await
        .unwrap();
    (cluster, Some(sandbox), Some(file))
}

impl Bench {
    fn size(&self, n: usize, args: &Args) -> Row {
        let mut row = Row {
            kubectl: vec![(Vec::new(), Vec::new()); args.kubectls.len()],
            ..Row::default()
        };
        for run in 0..args.runs {
            let ns = format!("bench-{n}-{run}-{}", std::process::id() % 10_000);
            self.cairn_run(&ns, n, &mut row);
            for (i, kubectl) in args.kubectls.iter().enumerate() {
                if let Some(kubeconfig) = &self.kubeconfig {
                    let kns = format!("{ns}-k{i}");
                    let (apply, diff) = kubectl_times(kubectl, kubeconfig, &self.context, &kns, n);
                    row.kubectl[i].0.push(apply);
                    row.kubectl[i].1.push(diff);
                    self.rt.block_on(self.drop_namespace(&kns));
                }
            }
        }
        row
    }

    fn cairn_run(&self, ns: &str, n: usize, row: &mut Row) {
        let cluster = &self.cluster;
        let t = Instant::now();
        let eval = evaluate(&script(ns, n));
        row.eval.push(t.elapsed());
        self.rt.block_on(async {
            cluster.clear_requests();
            let t = Instant::now();
            let plan = cairn_kube::plan(cluster, &eval.state, &PlanOptions::default())
                .await
                .unwrap();
            row.first_plan.push(t.elapsed());
            row.requests[0] = cluster.requests().len();
            let applied = apply_all(cluster, &plan).await;
            row.apply.push(applied.all);
            row.accepted.push(applied.accepted);
            row.requests[1] = applied.requests;
            let (took, requests) = floor(cluster, &format!("{ns}-floor"), n).await;
            row.floor.push(took);
            row.requests[2] = requests;
            // Its Deployments would keep the controllers busy during what is timed next.
            self.drop_namespace(&format!("{ns}-floor")).await;
            cluster.clear_requests();
            let t = Instant::now();
            let plan = cairn_kube::plan(cluster, &eval.state, &PlanOptions::default())
                .await
                .unwrap();
            row.noop_plan.push(t.elapsed());
            row.requests[3] = cluster.requests().len();
            assert!(!plan.plan.has_changes(), "a second plan must be empty");
            // Prune: the environment without its ConfigMaps, Deployments and Services.
            let smaller = evaluate(&script_with(ns, 0, n * 3 / 10, 0));
            let t = Instant::now();
            let plan = cairn_kube::plan(cluster, &smaller.state, &PlanOptions::default())
                .await
                .unwrap();
            apply_all(cluster, &plan).await;
            row.prune.push(t.elapsed());
            row.pruned = plan.plan.summary().delete;
        });
    }

    /// Deletes a namespace the benchmark made for a comparison, and waits until it is gone.
    async fn drop_namespace(&self, ns: &str) {
        let Some(path) = &self.kubeconfig else {
            return;
        };
        let kubeconfig = kube::config::Kubeconfig::read_from(path).unwrap();
        let options = kube::config::KubeConfigOptions {
            context: Some(self.context.clone()),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .unwrap();
        let namespaces = kube::api::ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "Namespace".into(),
            plural: "namespaces".into(),
        };
        let client = kube::Client::try_from(config).unwrap();
        let api: kube::Api<kube::api::DynamicObject> = kube::Api::all_with(client, &namespaces);
        let _ = api.delete(ns, &kube::api::DeleteParams::default()).await;
        while api.get_opt(ns).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// 1,500 deletions: 1,000 ConfigMaps and 250 Deployments with their Services, from an
    /// environment of 1,200 ConfigMaps, 900 Secrets and 450 Deployments with their Services.
    fn prune_mixed(&self) -> (Duration, usize, usize) {
        let ns = format!("bench-prune-{}", std::process::id() % 10_000);
        let cluster = &self.cluster;
        self.rt.block_on(async {
            let all = evaluate(&script_with(&ns, 1200, 900, 450));
            let plan = cairn_kube::plan(cluster, &all.state, &PlanOptions::default())
                .await
                .unwrap();
            apply_all(cluster, &plan).await;
            let fewer = evaluate(&script_with(&ns, 200, 900, 200));
            cluster.clear_requests();
            let t = Instant::now();
            let plan = cairn_kube::plan(cluster, &fewer.state, &PlanOptions::default())
                .await
                .unwrap();
            let planned = cluster.requests().len();
            let applied = apply_all(cluster, &plan).await;
            (
                t.elapsed(),
                plan.plan.summary().delete,
                planned + applied.requests,
            )
        })
    }
}

fn print_row(n: usize, row: Row, kubectls: usize) {
    let apply = median(row.apply.clone());
    let noop = median(row.noop_plan.clone());
    let floor = median(row.floor.clone());
    let mut kubectl = String::new();
    for (applies, diffs) in row.kubectl.iter().take(kubectls) {
        for (v, ours) in [(applies, apply), (diffs, noop)] {
            if v.is_empty() {
                kubectl.push_str(" n/a |");
            } else {
                let m = median(v.clone());
                kubectl.push_str(&format!(" {} ({} cairn) |", ms(m), ratio(m, ours)));
            }
        }
    }
    println!(
        "| {n} | {} | {} ({}) | {} ({}, {:.2}) | {} | {} ({}) | {} | {} | {} ({}) | {} ({}) |{kubectl} {:.0} MiB |",
        ms(median(row.eval)),
        ms(median(row.first_plan)),
        row.requests[0],
        ms(apply),
        row.requests[1],
        row.requests[1] as f64 / n as f64,
        ms(median(row.accepted.clone())),
        ms(floor),
        row.requests[2],
        ratio(apply, floor),
        ratio(median(row.accepted), floor),
        ms(noop),
        row.requests[3],
        ms(median(row.prune)),
        row.pruned,
        peak_rss_mib(),
    );
}

/// Times kubectl on the same manifests, rendered into another namespace.
fn kubectl_times(
    kubectl: &std::path::Path,
    kubeconfig: &std::path::Path,
    context: &str,
    ns: &str,
    n: usize,
) -> (Duration, Duration) {
    let kns = ns.to_owned();
    let eval = evaluate(&script(&kns, n));
    let dir = std::env::temp_dir().join(format!("cairn-bench-{kns}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut manifests = String::new();
    for r in eval.state.kube_objects() {
        let body = r.body.reveal(&|_| Some("x".repeat(8))).unwrap();
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
