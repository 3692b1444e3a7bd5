//! Applies then re-plans N record sets (default 200) on a BIND9 started like the tests', and
//! prints timings. Not a timed test: `cargo run --release -p cairn-dns --example bench [N]`.

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

#[path = "../tests/it/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use cairn_dns::{DnsBackend, PlanOptions, RecordSet, RecordType, Rfc2136Backend, plan};

fn desired(n: usize, generation: u8) -> Vec<RecordSet> {
    (0..n)
        .map(|i| {
            let name = format!("host{i}.{}", harness::ZONE);
            match i % 4 {
                0 | 1 => RecordSet::new(
                    &name,
                    RecordType::A,
                    300,
                    [format!("192.0.2.{}", (i % 250) as u8 + generation)],
                ),
                2 => RecordSet::new(
                    &name,
                    RecordType::Txt,
                    300,
                    [format!("bench record {i} generation {generation}")],
                ),
                _ => RecordSet::new(
                    &name,
                    RecordType::Mx,
                    300,
                    [format!("{} mail.{}.", 10 + generation, harness::ZONE)],
                ),
            }
            .unwrap()
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
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
}
