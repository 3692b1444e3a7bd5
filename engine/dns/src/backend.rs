//! The provider surface: a [`DnsBackend`] reads a zone and applies a plan. Three
//! implementations: [`crate::Rfc2136Backend`] (real servers), [`crate::ManualBackend`]
//! (registrars without an API) and [`InMemoryBackend`] (`--sandbox`, tests).

use cairn_plan::plan::Action;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

use crate::DnsError;
use crate::plan::{
    DnsChange, DnsPlan, ReadMethod, ZoneSnapshot, is_orphan_sweep, owned_key, ownership_record,
};
use crate::record::{RecordKey, RecordSet, RecordType, normalize_name};

/// A change the server accepted (NOERROR) but does not answer: it silently ignored it, as
/// RFC 2136 servers do with data beside a CNAME.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IgnoredChange {
    /// The change that was sent.
    pub change: DnsChange,
    /// What the server answers for the record set instead (normalized values; empty: nothing).
    pub answered: Vec<String>,
}

/// What an apply did. Only changes the server answers afterwards are listed as applied.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ApplyReport {
    /// Changes sent, accepted and verified at the authoritative server.
    pub applied: Vec<DnsChange>,
    /// Changes accepted but not answered by the server.
    pub ignored: Vec<IgnoredChange>,
    /// Manual provider: the records (zone file lines) the user had to create, change or remove.
    pub instructions: Vec<String>,
}

impl ApplyReport {
    /// Whether everything planned was applied.
    pub fn is_complete(&self) -> bool {
        self.ignored.is_empty()
    }
}

/// A DNS zone cairn can read and change.
pub trait DnsBackend: Send + Sync {
    /// The zone, normalized.
    fn zone(&self) -> &str;

    /// Reads the zone. `interest` names the record sets wanted when the zone cannot be read
    /// whole (the desired ones; their ownership records are read too).
    fn read_zone(
        &self,
        interest: &[RecordKey],
    ) -> impl Future<Output = Result<ZoneSnapshot, DnsError>> + Send;

    /// Applies a plan made against this zone and verifies the result, waiting at most
    /// `timeout` for the servers to answer the new data.
    fn apply_changes(
        &self,
        plan: &DnsPlan,
        timeout: Duration,
    ) -> impl Future<Output = Result<ApplyReport, DnsError>> + Send;

    /// Sends a plan's changes without waiting for the servers to answer them, in as few
    /// messages as the backend can (RFC 2136: batched signed UPDATEs). One result per change,
    /// in the plan's order; `Err`: that change was rejected or not sent, and is not applied.
    /// The manual backend sends nothing (the user makes the changes).
    fn send_changes(
        &self,
        plan: &DnsPlan,
    ) -> impl Future<Output = Vec<Result<(), DnsError>>> + Send;

    /// Waits at most `timeout` until the servers answer a sent change's new data. `Some`: they
    /// do not (the change was accepted but ignored); the ownership record of an ignored
    /// creation is taken back.
    fn verify_change(
        &self,
        change: &DnsChange,
        owner: Option<&str>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<IgnoredChange>, DnsError>> + Send;
}

/// An in-memory zone that behaves like an RFC 2136 server, CNAME rule included (data added
/// beside a CNAME, or a CNAME added beside data, is silently ignored).
#[derive(Debug)]
pub struct InMemoryBackend {
    zone: String,
    state: Mutex<(u32, BTreeMap<RecordKey, RecordSet>)>,
}

impl InMemoryBackend {
    /// An empty zone (an SOA and an NS record set, as a fresh zone has).
    pub fn new(zone: &str) -> Result<InMemoryBackend, DnsError> {
        let zone = normalize_name(zone)?;
        let mut records = BTreeMap::new();
        for rs in [
            RecordSet::from_normalized(
                zone.clone(),
                RecordType::Other("SOA".into()),
                300,
                vec![format!(
                    "ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 300"
                )],
            ),
            RecordSet::from_normalized(
                zone.clone(),
                RecordType::Other("NS".into()),
                300,
                vec![format!("ns.{zone}.")],
            ),
        ] {
            records.insert(rs.key(), rs);
        }
        Ok(InMemoryBackend {
            zone,
            state: Mutex::new((1, records)),
        })
    }

    /// A zone holding `records` (as saved by [`InMemoryBackend::records`]), for a sandbox whose
    /// state outlives one run.
    pub fn with_records(
        zone: &str,
        serial: u32,
        records: Vec<RecordSet>,
    ) -> Result<InMemoryBackend, DnsError> {
        let backend = InMemoryBackend::new(zone)?;
        {
            let mut st = backend.state.lock().unwrap_or_else(PoisonError::into_inner);
            for rs in records {
                st.1.insert(rs.key(), rs);
            }
            st.0 = st.0.max(serial);
        }
        Ok(backend)
    }

    /// The zone's serial and record sets, to be saved.
    pub fn records(&self) -> (u32, Vec<RecordSet>) {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (st.0, st.1.values().cloned().collect())
    }

    /// Puts a record set in the zone as if someone else had created it.
    pub fn insert_foreign(&self, rs: RecordSet) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.1.insert(rs.key(), rs);
        st.0 += 1;
    }

    fn snapshot(&self) -> ZoneSnapshot {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        ZoneSnapshot {
            zone: self.zone.clone(),
            serial: st.0,
            records: st.1.values().cloned().collect(),
            read_by: ReadMethod::InMemory,
        }
    }

    fn check_zone(&self, plan: &DnsPlan) -> Result<(), DnsError> {
        if plan.zone != self.zone {
            return Err(DnsError::Internal(format!(
                "a plan for zone {} applied to zone {}",
                plan.zone, self.zone
            )));
        }
        Ok(())
    }

    /// Applies one change as an RFC 2136 server would; `Ok(true)`: accepted but ignored.
    fn apply_one(
        records: &mut BTreeMap<RecordKey, RecordSet>,
        serial: &mut u32,
        change: &DnsChange,
        owner: Option<&str>,
    ) -> Result<bool, DnsError> {
        let key = &change.key;
        let exists = records.contains_key(key);
        let changed = |rcode: &str| DnsError::ChangedSincePlan {
            server: "in-memory zone".into(),
            key: key.clone(),
            rcode: rcode.to_owned(),
        };
        match change.kind {
            Action::Create if exists => return Err(changed("YXRRSET")),
            Action::Update | Action::Delete if !exists => {
                return Err(changed("NXRRSET"));
            }
            _ => {}
        }
        if is_orphan_sweep(change)
            && let Some(data) = owned_key(&key.name)
            && records.contains_key(&data)
        {
            return Err(changed("YXRRSET"));
        }
        records.remove(key);
        let mut ignored = false;
        if let Some(after) = &change.after {
            let clash = records.keys().any(|k| {
                k.name == key.name
                    && !matches!(k.rtype, RecordType::Other(_))
                    && (k.rtype == RecordType::Cname || key.rtype == RecordType::Cname)
            });
            if clash {
                ignored = true;
            } else {
                records.insert(key.clone(), after.clone());
            }
        }
        if let Some(owner) = owner
            && !is_orphan_sweep(change)
        {
            let ttl = change.after.as_ref().map_or(300, |a| a.ttl);
            let own = ownership_record(key, owner, ttl);
            if change.kind == Action::Delete || ignored {
                records.remove(&own.key());
            } else {
                records.insert(own.key(), own);
            }
        }
        *serial += 1;
        Ok(ignored)
    }

    fn apply_sync(&self, plan: &DnsPlan) -> Result<ApplyReport, DnsError> {
        self.check_zone(plan)?;
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (serial, records) = &mut *guard;
        let mut report = ApplyReport::default();
        for change in &plan.changes {
            match Self::apply_one(records, serial, change, plan.owner.as_deref()) {
                Err(e) => return Err(partial(&report, e)),
                Ok(true) => report.ignored.push(IgnoredChange {
                    change: change.clone(),
                    answered: Vec::new(),
                }),
                Ok(false) => report.applied.push(change.clone()),
            }
        }
        Ok(report)
    }
}

pub(crate) fn partial(report: &ApplyReport, e: DnsError) -> DnsError {
    if report.applied.is_empty() {
        e
    } else {
        DnsError::Partial {
            applied: report.applied.iter().map(ToString::to_string).collect(),
            source: Box::new(e),
        }
    }
}

impl DnsBackend for InMemoryBackend {
    fn zone(&self) -> &str {
        &self.zone
    }

    async fn read_zone(&self, _interest: &[RecordKey]) -> Result<ZoneSnapshot, DnsError> {
        Ok(self.snapshot())
    }

    async fn apply_changes(
        &self,
        plan: &DnsPlan,
        _timeout: Duration,
    ) -> Result<ApplyReport, DnsError> {
        self.apply_sync(plan)
    }

    async fn send_changes(&self, plan: &DnsPlan) -> Vec<Result<(), DnsError>> {
        if let Err(e) = self.check_zone(plan) {
            return plan.changes.iter().map(|_| Err(e.clone())).collect();
        }
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (serial, records) = &mut *guard;
        plan.changes
            .iter()
            .map(|c| Self::apply_one(records, serial, c, plan.owner.as_deref()).map(|_| ()))
            .collect()
    }

    async fn verify_change(
        &self,
        change: &DnsChange,
        _owner: Option<&str>,
        _timeout: Duration,
    ) -> Result<Option<IgnoredChange>, DnsError> {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let live = st.1.get(&change.key);
        Ok((live != change.after.as_ref()).then(|| IgnoredChange {
            change: change.clone(),
            answered: live.map(|r| r.values.clone()).unwrap_or_default(),
        }))
    }
}

/// Any backend, chosen from the environment's settings: what the CLI holds.
#[derive(Debug)]
pub enum Backend {
    /// An RFC 2136 server.
    Rfc2136(crate::Rfc2136Backend),
    /// A zone changed by hand.
    Manual(crate::ManualBackend),
    /// The in-memory zone of `--sandbox`.
    InMemory(InMemoryBackend),
}

impl Backend {
    /// The backend for `settings`; under `sandbox`, an empty in-memory zone of the same name.
    pub fn from_settings(
        settings: &crate::DnsSettings,
        sandbox: bool,
    ) -> Result<Backend, DnsError> {
        if sandbox {
            return InMemoryBackend::new(settings.zone()).map(Backend::InMemory);
        }
        Ok(match settings {
            crate::DnsSettings::Rfc2136(c) => {
                Backend::Rfc2136(crate::Rfc2136Backend::new(c.clone()))
            }
            crate::DnsSettings::Manual(c) => Backend::Manual(crate::ManualBackend::new(c.clone())),
        })
    }

    /// Where the zone lives, in words (for plan headers).
    pub fn describe(&self) -> String {
        match self {
            Backend::Rfc2136(b) => format!(
                "zone {} on {} (RFC 2136, TSIG key `{}`)",
                b.zone(),
                b.server(),
                b.key_name()
            ),
            Backend::Manual(b) => {
                format!("zone {} (manual: records are created by hand)", b.zone())
            }
            Backend::InMemory(b) => format!("zone {} (in-memory sandbox zone)", b.zone()),
        }
    }
}

impl DnsBackend for Backend {
    fn zone(&self) -> &str {
        match self {
            Backend::Rfc2136(b) => b.zone(),
            Backend::Manual(b) => b.zone(),
            Backend::InMemory(b) => b.zone(),
        }
    }

    async fn read_zone(&self, interest: &[RecordKey]) -> Result<ZoneSnapshot, DnsError> {
        match self {
            Backend::Rfc2136(b) => b.read_zone(interest).await,
            Backend::Manual(b) => b.read_zone(interest).await,
            Backend::InMemory(b) => b.read_zone(interest).await,
        }
    }

    async fn apply_changes(
        &self,
        plan: &DnsPlan,
        timeout: Duration,
    ) -> Result<ApplyReport, DnsError> {
        match self {
            Backend::Rfc2136(b) => b.apply_changes(plan, timeout).await,
            Backend::Manual(b) => b.apply_changes(plan, timeout).await,
            Backend::InMemory(b) => b.apply_changes(plan, timeout).await,
        }
    }

    async fn send_changes(&self, plan: &DnsPlan) -> Vec<Result<(), DnsError>> {
        match self {
            Backend::Rfc2136(b) => b.send_changes(plan).await,
            Backend::Manual(b) => b.send_changes(plan).await,
            Backend::InMemory(b) => b.send_changes(plan).await,
        }
    }

    async fn verify_change(
        &self,
        change: &DnsChange,
        owner: Option<&str>,
        timeout: Duration,
    ) -> Result<Option<IgnoredChange>, DnsError> {
        match self {
            Backend::Rfc2136(b) => b.verify_change(change, owner, timeout).await,
            Backend::Manual(b) => b.verify_change(change, owner, timeout).await,
            Backend::InMemory(b) => b.verify_change(change, owner, timeout).await,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::plan::{PlanOptions, plan};

    fn rs(name: &str, t: &str, values: &[&str]) -> RecordSet {
        RecordSet::new(name, RecordType::parse(t), 300, values).unwrap()
    }

    #[tokio::test]
    async fn in_memory_zone_round_trip() {
        let z = InMemoryBackend::new("example.com").unwrap();
        z.insert_foreign(rs("www.example.com", "CNAME", &["example.com."]));
        let desired = [
            rs("api.example.com", "A", &["192.0.2.1"]),
            rs("www.example.com", "A", &["192.0.2.1"]),
        ];
        let opts = PlanOptions::owned_by("staging");
        let p = plan(&desired, &z.read_zone(&[]).await.unwrap(), &opts).unwrap();
        assert_eq!(p.changes.len(), 2);
        let report = z.apply_changes(&p, Duration::from_secs(1)).await.unwrap();
        assert_eq!(report.applied.len(), 1);
        assert_eq!(report.ignored.len(), 1);
        assert_eq!(report.ignored[0].change.key.name, "www.example.com");
        let again = plan(&desired[..1], &z.read_zone(&[]).await.unwrap(), &opts).unwrap();
        assert!(again.is_empty(), "{:?}", again.changes);
        // the foreign CNAME is still there, and removing api deletes only api
        let snap = z.read_zone(&[]).await.unwrap();
        let p = plan(&[], &snap, &opts).unwrap();
        assert_eq!(p.changes.len(), 1);
        z.apply_changes(&p, Duration::from_secs(1)).await.unwrap();
        let snap = z.read_zone(&[]).await.unwrap();
        assert!(snap.records.iter().any(|r| r.name == "www.example.com"));
        assert!(!snap.records.iter().any(|r| r.name.contains("api")));
    }
}
