//! Batched updates and the sweep of orphaned ownership records, against BIND9.

use cairn_plan::plan::Action;
use std::sync::Arc;
use std::time::Duration;

use cairn_dns::{
    DnsBackend, DnsError, ORPHAN_REASON, PlanOptions, RecordSet, Rfc2136Backend, ZoneBatcher,
};
use futures::StreamExt as _;

use crate::harness::Bind;
use crate::{converge, plan_for, rs, staging};

fn records(n: usize) -> Vec<RecordSet> {
    (0..n)
        .map(|i| match i % 3 {
            0 => rs(
                &format!("h{i}"),
                "A",
                300,
                &[&format!("192.0.2.{}", i % 250)],
            ),
            1 => rs(&format!("h{i}"), "TXT", 300, &[&format!("record {i}")]),
            _ => rs(&format!("h{i}"), "MX", 300, &["10 mail.cairn.test."]),
        })
        .collect()
}

/// UPDATE requests BIND9 approved, from its log (one line per signed request it accepted).
fn updates_approved(bind: &Bind) -> usize {
    std::fs::read_to_string(bind.dir.join("named.log"))
        .unwrap()
        .lines()
        .filter(|l| l.ends_with("signer \"cairn-key\" approved"))
        .count()
}

/// Runs one node per change through a shared batcher, 8 at a time (as the executor does).
async fn run_nodes(
    backend: &Rfc2136Backend,
    plan: &cairn_dns::DnsPlan,
) -> Vec<(String, Result<(), String>)> {
    let batcher = Arc::new(ZoneBatcher::new(Arc::new(backend.clone()), plan.clone()));
    futures::stream::iter(plan.changes.iter().map(|c| {
        let (batcher, key) = (batcher.clone(), c.key.clone());
        async move {
            let r = match batcher.apply(&key, Duration::from_secs(5)).await {
                Ok(None) => Ok(()),
                Ok(Some(ignored)) => Err(format!("ignored: {ignored:?}")),
                Err(e) => Err(e.to_string()),
            };
            (key.to_string(), r)
        }
    }))
    .buffer_unordered(8)
    .collect()
    .await
}

#[tokio::test]
async fn two_hundred_records_go_out_in_few_update_messages() {
    let bind = Bind::start();
    let b = Rfc2136Backend::new(bind.config());
    let desired = records(200);
    let p = plan_for(&b, &desired, &staging()).await.unwrap();
    assert_eq!(p.changes.len(), 200);
    let before = updates_approved(&bind);

    let results = run_nodes(&b, &p).await;
    assert_eq!(results.len(), 200);
    let failed: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
    assert!(failed.is_empty(), "{failed:?}");
    let sent = b.updates_sent();
    assert!(
        (1..=2).contains(&sent),
        "200 record sets went out in {sent} UPDATE messages"
    );
    assert_eq!(
        updates_approved(&bind) - before,
        sent,
        "BIND9 approved as many UPDATE requests as cairn counted"
    );
    assert_eq!(bind.dig("h0.cairn.test", "A"), ["192.0.2.0"]);
    assert_eq!(bind.dig("h199.cairn.test", "TXT"), ["\"record 199\""]);
    assert_eq!(
        bind.dig("_cairn-owner.mx.h200.cairn.test", "TXT").len(),
        0,
        "no such record"
    );
    assert_eq!(
        bind.dig("_cairn-owner.mx.h197.cairn.test", "TXT"),
        ["\"heritage=cairn,environment=staging,type=MX\""]
    );

    // A re-plan has nothing to do.
    let again = plan_for(&b, &desired, &staging()).await.unwrap();
    assert!(again.is_empty(), "{:?}", again.changes);

    // Updating and deleting go out batched too, through the library's apply.
    let mut changed = records(150);
    changed[0] = rs("h0", "A", 60, &["192.0.2.250"]);
    let mut opts = staging();
    opts.force = true;
    let before = b.updates_sent();
    let (p, _) = converge(&b, &changed, &opts).await;
    assert_eq!(p.changes.len(), 51);
    assert_eq!(b.updates_sent() - before, 1);
    assert_eq!(bind.dig("h0.cairn.test", "A"), ["192.0.2.250"]);
    assert!(bind.dig("h199.cairn.test", "TXT").is_empty());
    assert!(plan_for(&b, &changed, &staging()).await.unwrap().is_empty());
}

#[tokio::test]
async fn large_batches_are_split_under_the_message_size_limit() {
    let bind = Bind::start();
    let b = Rfc2136Backend::new(bind.config());
    // 40 record sets of ~2 KB each: more than one message can hold
    let desired: Vec<RecordSet> = (0..40)
        .map(|i| {
            rs(
                &format!("big{i}"),
                "TXT",
                300,
                &[&format!("{i}-{}", "x".repeat(2000))],
            )
        })
        .collect();
    let (p, _) = converge(&b, &desired, &staging()).await;
    assert_eq!(p.changes.len(), 40);
    assert_eq!(
        b.updates_sent(),
        2,
        "split in two under {} bytes",
        cairn_dns::MAX_UPDATE_BYTES
    );
    assert_eq!(bind.dig("big39.cairn.test", "TXT").len(), 1);
    assert!(plan_for(&b, &desired, &staging()).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_batch_with_one_bad_record_reports_exactly_that_record() {
    let bind = Bind::start();
    let b = Rfc2136Backend::new(bind.config());
    let desired = records(20);
    let p = plan_for(&b, &desired, &staging()).await.unwrap();
    // Someone creates h7 between plan and apply: the batch's prerequisite for h7 fails.
    bind.nsupdate("update add h7.cairn.test. 300 TXT \"by hand\"");

    let results = run_nodes(&b, &p).await;
    let failed: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "h7.cairn.test TXT");
    let why = failed[0].1.as_ref().unwrap_err();
    assert!(
        why.contains("record set h7.cairn.test TXT changed") && why.contains("plan again"),
        "{why}"
    );
    assert_eq!(bind.dig("h7.cairn.test", "TXT"), ["\"by hand\""]);
    assert!(
        bind.dig("_cairn-owner.txt.h7.cairn.test", "TXT").is_empty(),
        "no claim on the record set made by hand"
    );
    // every other record is there, and was reported done
    for (key, r) in results.iter().filter(|(k, _)| k != "h7.cairn.test TXT") {
        assert!(r.is_ok(), "{key}: {r:?}");
    }
    assert_eq!(bind.dig("h6.cairn.test", "A"), ["192.0.2.6"]);
    assert_eq!(bind.dig("h8.cairn.test", "MX"), ["10 mail.cairn.test."]);
    // one rejected batch, then halves of it until the bad record is alone: 20 → 10 → 5 → 3 → 1
    let sent = b.updates_sent();
    assert!((5..=1 + 2 * 5).contains(&sent), "{sent} UPDATE messages");

    // Through the library's apply: the error names that record and what was applied.
    let mut opts = staging();
    opts.force = true; // h7 is taken over
    let p = plan_for(&b, &records(22), &opts).await.unwrap();
    assert_eq!(p.changes.len(), 3, "{:?}", p.changes);
    bind.nsupdate("update add h21.cairn.test. 300 A 192.0.2.99");
    let err = b
        .apply_changes(&p, Duration::from_secs(2))
        .await
        .unwrap_err();
    let DnsError::Partial { applied, source } = &err else {
        panic!("{err}")
    };
    assert_eq!(applied.len(), 2, "{err}");
    assert!(
        matches!(&**source, DnsError::ChangedSincePlan { key, .. } if key.name == "h21.cairn.test"),
        "{err}"
    );
    assert_eq!(bind.dig("h20.cairn.test", "MX"), ["10 mail.cairn.test."]);
    assert_eq!(bind.dig("h21.cairn.test", "A"), ["192.0.2.99"]);
}

#[tokio::test]
async fn orphaned_ownership_records_are_swept_only_for_this_environment() {
    let bind = Bind::start();
    let b = Rfc2136Backend::new(bind.config());
    let desired = [
        rs("keep", "A", 300, &["192.0.2.1"]),
        rs("gone", "A", 300, &["192.0.2.2"]),
        rs("gone", "TXT", 300, &["bye"]),
    ];
    converge(&b, &desired, &staging()).await;
    let production = PlanOptions::owned_by("production");
    converge(&b, &[rs("theirs", "A", 300, &["192.0.2.3"])], &production).await;
    // Deleted by hand, ownership records left behind.
    bind.nsupdate(
        "update delete gone.cairn.test. A\nupdate delete gone.cairn.test. TXT\nupdate delete theirs.cairn.test. A",
    );
    assert_eq!(
        bind.dig("_cairn-owner.a.gone.cairn.test", "TXT"),
        ["\"heritage=cairn,environment=staging,type=A\""]
    );

    // Still declared: recreated (its ownership record rewritten), nothing swept.
    let p = plan_for(&b, &desired, &staging()).await.unwrap();
    assert_eq!(p.changes.len(), 2);
    assert!(p.changes.iter().all(|c| c.kind == Action::Create));

    // No longer declared: the orphans of staging are deleted, production's is not.
    let p = plan_for(&b, &desired[..1], &staging()).await.unwrap();
    let lines: Vec<String> = p.changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            format!("delete _cairn-owner.a.gone.cairn.test TXT ({ORPHAN_REASON})"),
            format!("delete _cairn-owner.txt.gone.cairn.test TXT ({ORPHAN_REASON})"),
        ]
    );
    let report = b.apply_changes(&p, Duration::from_secs(5)).await.unwrap();
    assert_eq!(report.applied, p.changes);
    assert!(bind.dig("_cairn-owner.a.gone.cairn.test", "TXT").is_empty());
    assert!(
        bind.dig("_cairn-owner.txt.gone.cairn.test", "TXT")
            .is_empty()
    );
    assert_eq!(
        bind.dig("_cairn-owner.a.theirs.cairn.test", "TXT"),
        ["\"heritage=cairn,environment=production,type=A\""],
        "another environment's ownership record stays"
    );
    assert_eq!(bind.dig("keep.cairn.test", "A"), ["192.0.2.1"]);
    assert!(
        plan_for(&b, &desired[..1], &staging())
            .await
            .unwrap()
            .is_empty()
    );
    // production sweeps its own
    let p = plan_for(&b, &[], &production).await.unwrap();
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].reason, ORPHAN_REASON);

    // An ownership record whose record set reappears between plan and apply is not deleted.
    bind.nsupdate("update add theirs.cairn.test. 300 A 192.0.2.4");
    let err = b
        .apply_changes(&p, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(matches!(err, DnsError::ChangedSincePlan { .. }), "{err:?}");
    assert_eq!(bind.dig("_cairn-owner.a.theirs.cairn.test", "TXT").len(), 1);
}
