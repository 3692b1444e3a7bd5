//! Integration tests of the DNS provider against a real BIND9 on loopback.

#![allow(clippy::unwrap_used)]

mod batch;
mod harness;
mod manual;
mod rfc2136;
mod script;

use std::time::Duration;

use cairn_dns::{
    ApplyReport, DnsBackend, DnsPlan, PlanOptions, RecordKey, RecordSet, RecordType, plan,
};

pub const ZONE: &str = harness::ZONE;

/// A record set in the test zone; `name` is relative (`@` is the apex).
pub fn rs(name: &str, t: &str, ttl: u32, values: &[&str]) -> RecordSet {
    let fqdn = if name == "@" {
        ZONE.to_owned()
    } else {
        format!("{name}.{ZONE}")
    };
    RecordSet::new(&fqdn, RecordType::parse(t), ttl, values).unwrap()
}

pub fn keys(desired: &[RecordSet]) -> Vec<RecordKey> {
    desired.iter().map(RecordSet::key).collect()
}

/// Reads the zone and plans `desired` for environment `staging`.
pub async fn plan_for(
    b: &impl DnsBackend,
    desired: &[RecordSet],
    opts: &PlanOptions,
) -> Result<DnsPlan, cairn_dns::DnsError> {
    let live = b.read_zone(&keys(desired)).await?;
    plan(desired, &live, opts)
}

/// Plans and applies, asserting the apply verified every change.
pub async fn converge(
    b: &impl DnsBackend,
    desired: &[RecordSet],
    opts: &PlanOptions,
) -> (DnsPlan, ApplyReport) {
    let p = plan_for(b, desired, opts).await.unwrap();
    let report = b.apply_changes(&p, Duration::from_secs(5)).await.unwrap();
    assert!(report.ignored.is_empty(), "ignored: {:?}", report.ignored);
    assert_eq!(report.applied, p.changes);
    (p, report)
}

pub fn staging() -> PlanOptions {
    PlanOptions::owned_by("staging")
}
