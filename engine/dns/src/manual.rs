//! The manual provider: zones at a registrar with no update API. cairn reads the live
//! records from the authoritative nameservers, says exactly which records to create, and
//! waits until the nameservers answer them.

use cairn_plan::plan::Action;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::rr::RecordType as HType;
use hickory_resolver::Resolver;

use crate::backend::{ApplyReport, DnsBackend, IgnoredChange};
use crate::plan::{DnsChange, DnsPlan, ReadMethod, ZoneSnapshot};
use crate::query::Querier;
use crate::record::RecordKey;
use crate::settings::{ManualConfig, resolve};
use crate::{DnsError, wire};

/// A zone changed by hand.
#[derive(Debug, Clone)]
pub struct ManualBackend {
    cfg: ManualConfig,
    request_timeout: Duration,
}

/// What the user must do for a plan, as zone file lines (`name. TTL IN TYPE data`), one
/// instruction per record set: `create …`, `replace … with …`.
pub fn manual_instructions(plan: &DnsPlan) -> Vec<String> {
    plan.changes
        .iter()
        .map(|c| {
            let lines = |rs: Option<&crate::RecordSet>| {
                rs.map(|r| r.zone_lines().join("\n  ")).unwrap_or_default()
            };
            match c.kind {
                Action::Create => format!("create:\n  {}", lines(c.after.as_ref())),
                Action::Delete => format!("remove:\n  {}", lines(c.before.as_ref())),
                _ => format!(
                    "replace:\n  {}\nwith:\n  {}",
                    lines(c.before.as_ref()),
                    lines(c.after.as_ref())
                ),
            }
        })
        .collect()
}

impl ManualBackend {
    /// A backend for the zone `cfg` describes.
    pub fn new(cfg: ManualConfig) -> ManualBackend {
        ManualBackend {
            cfg,
            request_timeout: Duration::from_secs(5),
        }
    }

    async fn querier(&self) -> Result<Querier, DnsError> {
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for ns in &self.cfg.nameservers {
            addrs.push(resolve(ns).await?);
        }
        if addrs.is_empty() {
            addrs = self.zone_nameservers().await?;
        }
        Querier::new(&addrs, self.request_timeout)
    }

    /// The zone's NS records, through the system resolver.
    async fn zone_nameservers(&self) -> Result<Vec<SocketAddr>, DnsError> {
        let unreachable = |detail: String| DnsError::Unreachable {
            server: "the system resolver".into(),
            detail,
        };
        let resolver = Resolver::builder_tokio()
            .map_err(|e| unreachable(e.to_string()))?
            .build()
            .map_err(|e| unreachable(e.to_string()))?;
        let ns = resolver
            .lookup(wire::name(&self.cfg.zone)?, HType::NS)
            .await
            .map_err(|e| unreachable(format!("NS records of {}: {e}", self.cfg.zone)))?;
        let mut addrs = Vec::new();
        for r in ns.answers() {
            if let hickory_proto::rr::RData::NS(n) = &r.data
                && let Ok(ips) = resolver.lookup_ip(n.0.clone()).await
            {
                addrs.extend(ips.iter().map(|ip| SocketAddr::new(ip, 53)));
            }
        }
        if addrs.is_empty() {
            return Err(unreachable(format!(
                "no address for the nameservers of {}; set `nameservers` in manual_dns(...)",
                self.cfg.zone
            )));
        }
        Ok(addrs)
    }
}

impl DnsBackend for ManualBackend {
    fn zone(&self) -> &str {
        &self.cfg.zone
    }

    async fn read_zone(&self, interest: &[RecordKey]) -> Result<ZoneSnapshot, DnsError> {
        let q = self.querier().await?;
        let serial = q.serial(&self.cfg.zone).await?;
        Ok(ZoneSnapshot {
            zone: self.cfg.zone.clone(),
            serial,
            records: q.read(interest, false).await?,
            read_by: ReadMethod::Queries,
        })
    }

    /// Does not change anything itself: reports [`manual_instructions`] and waits until every
    /// nameserver answers the planned data, or `timeout` passes
    /// ([`DnsError::NotPropagated`] listing what is still missing).
    async fn apply_changes(
        &self,
        plan: &DnsPlan,
        timeout: Duration,
    ) -> Result<ApplyReport, DnsError> {
        let mut report = ApplyReport {
            instructions: manual_instructions(plan),
            ..ApplyReport::default()
        };
        if plan.changes.is_empty() {
            return Ok(report);
        }
        let mut queriers = Vec::new();
        let mut addrs = Vec::new();
        for ns in &self.cfg.nameservers {
            addrs.push(resolve(ns).await?);
        }
        if addrs.is_empty() {
            addrs = self.zone_nameservers().await?;
        }
        // every nameserver must answer, not just one of them
        for a in &addrs {
            queriers.push(Querier::new(&[*a], self.request_timeout)?);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut delay = Duration::from_millis(100);
        loop {
            let mut missing = Vec::new();
            for change in &plan.changes {
                for q in &queriers {
                    let live = q.record_set(&change.key).await;
                    match live {
                        Ok(live) if live.as_ref() == change.after.as_ref() => {}
                        Ok(Some(rs)) => missing.push(format!("{} answers {rs}", q.servers())),
                        Ok(None) => missing.push(format!("{} has no {}", q.servers(), change.key)),
                        Err(e) => missing.push(e.to_string()),
                    }
                }
            }
            if missing.is_empty() {
                report.applied = plan.changes.clone();
                return Ok(report);
            }
            if tokio::time::Instant::now() + delay > deadline {
                return Err(DnsError::NotPropagated {
                    server: addrs
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    seconds: timeout.as_secs(),
                    missing,
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Nothing is sent: the user makes the changes.
    async fn send_changes(&self, plan: &DnsPlan) -> Vec<Result<(), DnsError>> {
        plan.changes.iter().map(|_| Ok(())).collect()
    }

    /// Waits until every nameserver answers the change (as [`ManualBackend::apply_changes`]).
    async fn verify_change(
        &self,
        change: &DnsChange,
        _owner: Option<&str>,
        timeout: Duration,
    ) -> Result<Option<IgnoredChange>, DnsError> {
        let plan = DnsPlan {
            zone: self.cfg.zone.clone(),
            owner: None,
            changes: vec![change.clone()],
            zone_records_total: 0,
            read_by: ReadMethod::Queries,
            warnings: Vec::new(),
        };
        self.apply_changes(&plan, timeout).await.map(|_| None)
    }
}
