//! Applies then re-plans N record sets (default 200) on a BIND9 started like the tests', and
//! prints timings. Not a timed test: `cargo run --release -p cairn-dns --example bench-dns [N]`.
//!
//! With `--octodns VENV` (a virtualenv holding `octodns` and `octodns-bind`, see
//! `engine/dns/bench/octodns.sh`), it then compares cairn with octoDNS + `octodns-bind`'s
//! `Rfc2136Provider` on the same records: each tool, three times on a fresh BIND9 zone, applies
//! the N record sets to the empty zone and then re-plans (no changes expected); the table shows
//! the medians and the ratios.

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

#[path = "../tests/it/harness.rs"]
mod harness;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cairn_dns::{DnsBackend, PlanOptions, RecordSet, RecordType, Rfc2136Backend, plan};

/// Runs of each tool in the comparison; the table shows the median.
const RUNS: usize = 3;
/// The environment variable through which octoDNS gets the TSIG secret (`env/...` in its config).
const SECRET_ENV: &str = "CAIRN_BENCH_TSIG_SECRET";

/// The `i`th record of a generation: (label in the zone, type, value). A, TXT and MX.
fn spec(i: usize, generation: u8) -> (String, RecordType, String) {
    let label = format!("host{i}");
    match i % 4 {
        0 | 1 => (
            label,
            RecordType::A,
            format!("192.0.2.{}", (i % 250) as u8 + generation),
        ),
        2 => (
            label,
            RecordType::Txt,
            format!("bench record {i} generation {generation}"),
        ),
        _ => (
            label,
            RecordType::Mx,
            format!("{} mail.{}.", 10 + generation, harness::ZONE),
        ),
    }
}

fn desired(n: usize, generation: u8) -> Vec<RecordSet> {
    (0..n)
        .map(|i| {
            let (label, rtype, value) = spec(i, generation);
            RecordSet::new(&format!("{label}.{}", harness::ZONE), rtype, 300, [value]).unwrap()
        })
        .collect()
}

/// The same records as octoDNS's YAML zone file (plus the zone's own `ns1` A record, so that
/// octoDNS, which owns the whole zone, has nothing to delete).
fn octodns_zone_yaml(n: usize, generation: u8) -> String {
    let mut y = String::from("---\nns1:\n  ttl: 300\n  type: A\n  value: 127.0.0.1\n");
    for i in 0..n {
        let (label, rtype, value) = spec(i, generation);
        let _ = write!(y, "{label}:\n  ttl: 300\n  type: {}\n", rtype.as_str());
        match rtype {
            RecordType::Mx => {
                let (pref, exchange) = value.split_once(' ').unwrap();
                let _ = writeln!(
                    y,
                    "  value:\n    preference: {pref}\n    exchange: {exchange}"
                );
            }
            _ => {
                let _ = writeln!(y, "  value: '{value}'");
            }
        }
    }
    y
}

/// octoDNS's config: the YAML zone as source, BIND9 through `Rfc2136Provider` as target,
/// `batch` record changes per RFC 2136 update message (octodns-bind's default is 1000).
fn octodns_config(dir: &Path, bind: &harness::Bind, batch: usize) -> String {
    format!(
        r"---
providers:
  config:
    class: octodns.provider.yaml.YamlProvider
    directory: {dir}
    default_ttl: 300
    enforce_order: false
  bind:
    class: octodns_bind.Rfc2136Provider
    host: 127.0.0.1
    port: {port}
    timeout: 10
    key_name: {key}
    key_secret: env/{SECRET_ENV}
    key_algorithm: hmac-sha256
    update_batch_size: {batch}
zones:
  {zone}.:
    sources:
      - config
    targets:
      - bind
",
        dir = dir.display(),
        port = bind.port,
        key = harness::KEY_NAME,
        zone = harness::ZONE,
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One run of cairn on a fresh zone: (apply = read + plan + apply + verify, re-plan, UPDATE
/// messages sent).
async fn cairn_run(n: usize) -> (Duration, Duration, usize) {
    let bind = harness::Bind::start();
    let backend = Rfc2136Backend::new(bind.config());
    let mut opts = PlanOptions::owned_by("bench");
    opts.delete_threshold_percent = 100;
    let d = desired(n, 0);
    let keys = d.iter().map(RecordSet::key).collect::<Vec<_>>();
    let t = Instant::now();
    let live = backend.read_zone(&keys).await.unwrap();
    let p = plan(&d, &live, &opts).unwrap();
    let report = backend
        .apply_changes(&p, Duration::from_secs(10))
        .await
        .unwrap();
    let apply = t.elapsed();
    assert_eq!(report.applied.len(), n);
    let t = Instant::now();
    let live = backend.read_zone(&keys).await.unwrap();
    let again = plan(&d, &live, &opts).unwrap();
    let replan = t.elapsed();
    assert!(again.is_empty(), "cairn re-plan is not empty: {again:?}");
    (apply, replan, backend.updates_sent())
}

/// Runs `octodns-sync` and returns its wall time and its output (stdout + stderr).
fn octodns_sync(venv: &Path, config: &Path, secret: &str, doit: bool) -> (Duration, String) {
    let mut cmd = Command::new(venv.join("bin/octodns-sync"));
    cmd.arg("--config-file").arg(config).env(SECRET_ENV, secret);
    if doit {
        cmd.arg("--doit");
    }
    let t = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}/bin/octodns-sync: {e}", venv.display()));
    let took = t.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "octodns-sync{} failed ({}):\n{text}",
        if doit { " --doit" } else { "" },
        out.status
    );
    (took, text)
}

/// One run of octoDNS on a fresh zone: (apply = `octodns-sync --doit`, re-plan = `octodns-sync`).
fn octodns_run(venv: &Path, n: usize, batch: usize) -> (Duration, Duration) {
    let bind = harness::Bind::start();
    let dir = bind.dir.join("octodns");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{}.yaml", harness::ZONE)),
        octodns_zone_yaml(n, 0),
    )
    .unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(&config, octodns_config(&dir, &bind, batch)).unwrap();
    let secret = bind.secret_b64();
    let (apply, out) = octodns_sync(venv, &config, &secret, true);
    // Check the outcome from outside: every record answers.
    for i in [0, 2, 3, n - 1] {
        let (label, rtype, _) = spec(i, 0);
        let name = format!("{label}.{}", harness::ZONE);
        assert!(
            !bind.dig(&name, rtype.as_str()).is_empty(),
            "octoDNS did not create {name} {}; its output:\n{out}",
            rtype.as_str()
        );
    }
    let (replan, out) = octodns_sync(venv, &config, &secret, false);
    assert!(
        out.contains("No changes were planned"),
        "octoDNS re-plan is not empty:\n{out}"
    );
    (apply, replan)
}

async fn compare(venv: &Path, n: usize) {
    let sync = venv.join("bin/octodns-sync");
    assert!(
        sync.exists(),
        "{} is missing: run engine/dns/bench/octodns.sh",
        sync.display()
    );
    let version = Command::new(&sync).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let bind_version = Command::new(harness::NAMED).arg("-v").output().unwrap();
    let bind_version = String::from_utf8_lossy(&bind_version.stdout);
    let bind_version = bind_version.split(" <").next().unwrap_or_default().trim();
    println!();
    println!(
        "cairn vs {version} + octodns_bind.Rfc2136Provider, {bind_version}: {n} record sets \
         (A, TXT, MX), median of {RUNS} runs, each on a fresh zone"
    );
    let (mut ca, mut cr, mut oa, mut or, mut os) = (vec![], vec![], vec![], vec![], vec![]);
    let mut oa1 = vec![];
    for run in 1..=RUNS {
        let (a, r, updates) = cairn_run(n).await;
        println!(
            "  run {run}: cairn    apply {:>8.1} ms   re-plan {:>8.1} ms   ({updates} UPDATE messages)",
            ms(a),
            ms(r)
        );
        ca.push(a);
        cr.push(r);
        let (a, r) = octodns_run(venv, n, 1000);
        println!(
            "  run {run}: octoDNS  apply {:>8.1} ms   re-plan {:>8.1} ms",
            ms(a),
            ms(r)
        );
        oa.push(a);
        or.push(r);
        let (a, _) = octodns_run(venv, n, 1);
        println!(
            "  run {run}: octoDNS  apply {:>8.1} ms   (update_batch_size: 1)",
            ms(a)
        );
        oa1.push(a);
        // The fixed cost of an octoDNS run: starting Python and loading octoDNS.
        let t = Instant::now();
        let out = Command::new(&sync).arg("--version").output().unwrap();
        assert!(out.status.success());
        os.push(t.elapsed());
    }
    let (ca, cr, oa, or, os) = (median(ca), median(cr), median(oa), median(or), median(os));
    let oa1 = median(oa1);
    println!();
    println!(
        "| step ({n} record sets) | cairn | octoDNS | octoDNS / cairn |\n|---|---:|---:|---:|"
    );
    for (label, c, o) in [
        ("apply to an empty zone", ca, oa),
        ("re-plan (no changes)", cr, or),
        (
            "apply, octoDNS with `update_batch_size: 1` (one update per record set)",
            ca,
            oa1,
        ),
    ] {
        println!(
            "| {label} | {:.1} ms | {:.1} ms | {:.2}x |",
            ms(c),
            ms(o),
            o.as_secs_f64() / c.as_secs_f64()
        );
    }
    println!(
        "| (octoDNS process start: `octodns-sync --version`) | | {:.1} ms | |",
        ms(os)
    );
    println!(
        "\ncairn apply = AXFR + plan + batched signed updates (each record set with its ownership \
         TXT and prerequisites; at most {} record sets or {} bytes per message) + verification at \
         the server;\noctoDNS apply = `octodns-sync --doit` (process start, \
         AXFR, plan, one signed update per batch of changes over a new TCP connection, no \
         verification);\nre-plan = AXFR + plan \
         (cairn in-process, octoDNS a full `octodns-sync` run).",
        cairn_dns::MAX_CHANGES_PER_UPDATE,
        cairn_dns::MAX_UPDATE_BYTES
    );
}

#[tokio::main]
async fn main() {
    let mut n = 200usize;
    let mut octodns: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--octodns" {
            octodns = Some(PathBuf::from(
                args.next()
                    .expect("--octodns needs the path of a virtualenv"),
            ));
        } else {
            n = arg
                .parse()
                .unwrap_or_else(|_| panic!("usage: bench-dns [N] [--octodns VENV]; got {arg}"));
        }
    }
    assert!(n >= 4, "N must be at least 4");
    let bind = harness::Bind::start();
    let backend = Rfc2136Backend::new(bind.config());
    let mut opts = PlanOptions::owned_by("bench");
    opts.delete_threshold_percent = 100;
    let keys = |d: &[RecordSet]| d.iter().map(RecordSet::key).collect::<Vec<_>>();

    let step = |label: &str, t: Instant| {
        println!("{label:<34} {:>8.1} ms", t.elapsed().as_secs_f64() * 1000.0);
    };
    println!(
        "cairn-dns bench: {n} record sets, BIND9 at {}",
        bind.server()
    );
    for (round, label) in [(0u8, "create"), (1, "update")] {
        let d = desired(n, round);
        let t = Instant::now();
        let live = backend.read_zone(&keys(&d)).await.unwrap();
        let p = plan(&d, &live, &opts).unwrap();
        step(&format!("plan ({} changes)", p.changes.len()), t);
        let t = Instant::now();
        let report = backend
            .apply_changes(&p, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(report.applied.len(), n);
        step(&format!("apply {label} + verify"), t);
        let t = Instant::now();
        let live = backend.read_zone(&keys(&d)).await.unwrap();
        let again = plan(&d, &live, &opts).unwrap();
        assert!(again.is_empty());
        step("re-plan (no changes)", t);
    }
    let t = Instant::now();
    let live = backend.read_zone(&[]).await.unwrap();
    let p = plan(&[], &live, &opts).unwrap();
    backend
        .apply_changes(&p, Duration::from_secs(10))
        .await
        .unwrap();
    step(&format!("delete all ({})", p.changes.len()), t);
    drop(bind);

    if let Some(venv) = octodns {
        compare(&venv, n).await;
    }
}
