//! The pure planner: desired record sets against a zone snapshot, with ownership records.
//!
//! # Ownership records
//!
//! For every record set cairn creates it also writes one TXT record set that says who owns it
//! (in the spirit of external-dns's TXT registry):
//!
//! ```text
//! _cairn-owner.<type>.<name>.            TXT "heritage=cairn,environment=<env>,type=<TYPE>"
//! _cairn-owner-wildcard.<type>.<base>.   TXT  …  for the wildcard name *.<base>
//! ```
//!
//! `<type>` is the lower-case mnemonic, so each record set of a name has its own ownership
//! record and a CNAME's ownership record is not at the CNAME's name. The first label
//! (`_cairn-owner` or `_cairn-owner-wildcard`) cannot be a host name (underscore), and desired
//! records may not use it, so ownership names never collide with records. cairn changes or
//! deletes only record sets whose ownership record names its environment; any other record
//! set is foreign: never deleted, and changed only with `force` (which takes it over).
//!
//! An ownership record of this environment whose record set no longer exists (deleted by hand)
//! is deleted by the plan, with the reason [`ORPHAN_REASON`], when it names this environment
//! and no other; the update deletes it only while the record set is still absent.

use cairn_plan::plan::Action;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::DnsError;
use crate::error::Conflict;
use crate::record::{RecordKey, RecordSet, RecordType, in_zone_name, normalize_name};

/// How a snapshot was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ReadMethod {
    /// A full zone transfer: every record set of the zone.
    Axfr,
    /// Targeted queries for the desired record sets and their ownership records: record sets
    /// cairn owns but no longer declares cannot be seen, so they are not deleted.
    Queries,
    /// The in-memory zone of `--sandbox`.
    InMemory,
}

/// The live records of a zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneSnapshot {
    /// The zone, normalized.
    pub zone: String,
    /// The SOA serial (0 when unknown).
    pub serial: u32,
    /// Every record set read (sorted), ownership records included.
    pub records: Vec<RecordSet>,
    /// How it was read.
    pub read_by: ReadMethod,
}

impl ZoneSnapshot {
    /// The record set with this name and type.
    pub fn get(&self, key: &RecordKey) -> Option<&RecordSet> {
        self.records
            .iter()
            .find(|r| r.name == key.name && r.rtype == key.rtype)
    }
}

/// The first label of ownership record names.
pub const OWNER_LABEL: &str = "_cairn-owner";
/// The first label of ownership record names of wildcard record sets.
pub const OWNER_WILDCARD_LABEL: &str = "_cairn-owner-wildcard";

/// The name of the ownership TXT record of a record set.
pub fn ownership_name(key: &RecordKey) -> String {
    let t = key.rtype.as_str().to_ascii_lowercase();
    match key.name.strip_prefix("*.") {
        Some(base) => format!("{OWNER_WILDCARD_LABEL}.{t}.{base}"),
        None => format!("{OWNER_LABEL}.{t}.{}", key.name),
    }
}

/// The text of the ownership record of a record set of type `rtype` owned by `owner`.
pub fn ownership_value(owner: &str, rtype: &RecordType) -> String {
    format!("heritage=cairn,environment={owner},type={rtype}")
}

/// The ownership TXT record set of `key` for `owner`.
pub fn ownership_record(key: &RecordKey, owner: &str, ttl: u32) -> RecordSet {
    RecordSet::from_normalized(
        ownership_name(key),
        RecordType::Txt,
        ttl,
        vec![ownership_value(owner, &key.rtype)],
    )
}

/// Whether a name is an ownership record's name.
pub fn is_ownership_name(name: &str) -> bool {
    name.starts_with(&format!("{OWNER_LABEL}."))
        || name.starts_with(&format!("{OWNER_WILDCARD_LABEL}."))
}

/// The record set an ownership record's name speaks for (`None`: not an ownership name).
pub fn owned_key(ownership_name: &str) -> Option<RecordKey> {
    let (wild, rest) =
        if let Some(r) = ownership_name.strip_prefix(&format!("{OWNER_WILDCARD_LABEL}.")) {
            (true, r)
        } else {
            (
                false,
                ownership_name.strip_prefix(&format!("{OWNER_LABEL}."))?,
            )
        };
    let (t, name) = rest.split_once('.')?;
    let rtype = RecordType::parse(t);
    let name = if wild {
        format!("*.{name}")
    } else {
        name.to_owned()
    };
    Some(RecordKey { name, rtype })
}

/// The reason of the deletion of an ownership record whose record set is gone.
pub const ORPHAN_REASON: &str = "orphaned ownership record";

/// The record set an ownership record set speaks for, and the environments it names.
fn parse_ownership(rs: &RecordSet) -> Option<(RecordKey, Vec<String>)> {
    if rs.rtype != RecordType::Txt {
        return None;
    }
    let RecordKey { name, rtype } = owned_key(&rs.name)?;
    let owners = rs
        .values
        .iter()
        .filter_map(|v| {
            let fields: BTreeMap<&str, &str> =
                v.split(',').filter_map(|kv| kv.split_once('=')).collect();
            (fields.get("heritage") == Some(&"cairn")
                && fields
                    .get("type")
                    .is_some_and(|ft| ft.eq_ignore_ascii_case(rtype.as_str())))
            .then(|| fields.get("environment").map(|e| (*e).to_owned()))
            .flatten()
        })
        .collect();
    Some((RecordKey { name, rtype }, owners))
}

/// The order changes go out in: deletions (of records cairn owns and no longer declares)
/// first, then updates (a record set's data or TTL), then creations.
fn send_order(action: Action) -> u8 {
    match action {
        Action::Delete => 0,
        Action::Update => 1,
        _ => 2,
    }
}

/// One change of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsChange {
    /// What it does: [`Action::Create`], [`Action::Update`] or [`Action::Delete`].
    pub kind: Action,
    /// The record set.
    pub key: RecordKey,
    /// The live record set (Update, Delete).
    pub before: Option<RecordSet>,
    /// The desired record set (Create, Update).
    pub after: Option<RecordSet>,
    /// Why, in words.
    pub reason: String,
}

impl std::fmt::Display for DnsChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = match self.kind {
            Action::Create => "create",
            Action::Delete => "delete",
            _ => "update",
        };
        write!(f, "{k} {} ({})", self.key, self.reason)
    }
}

/// Options of [`plan`].
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// The environment that owns what this plan creates (`staging`). `None` for the manual
    /// provider: no ownership records, no deletions, every difference is an instruction.
    pub owner: Option<String>,
    /// A plan deleting more than this share of the zone's record sets needs `force`
    /// (zones of fewer than [`MIN_RECORDS_FOR_THRESHOLD`] record sets are exempt, as in octoDNS).
    pub delete_threshold_percent: u8,
    /// Allow deleting past the threshold and taking over foreign record sets.
    pub force: bool,
}

impl PlanOptions {
    /// Options for an environment with the default threshold (30%, as octoDNS) and no force.
    pub fn owned_by(owner: &str) -> PlanOptions {
        PlanOptions {
            owner: Some(owner.to_owned()),
            delete_threshold_percent: 30,
            force: false,
        }
    }
}

/// Zones with fewer record sets than this are not protected by the delete threshold.
pub const MIN_RECORDS_FOR_THRESHOLD: usize = 10;

/// What applying would change in a zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsPlan {
    /// The zone.
    pub zone: String,
    /// The owning environment (see [`PlanOptions::owner`]).
    pub owner: Option<String>,
    /// Changes in apply order: deletions, updates, creations.
    pub changes: Vec<DnsChange>,
    /// Record sets in the zone, ownership records and the SOA not counted.
    pub zone_records_total: usize,
    /// How the zone was read.
    pub read_by: ReadMethod,
    /// Things the user should know (records the server will ignore, an incomplete read…).
    pub warnings: Vec<String>,
}

impl DnsPlan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

fn describe_diff(before: &RecordSet, after: &RecordSet) -> String {
    let mut parts = Vec::new();
    if before.ttl != after.ttl {
        parts.push(format!("ttl {} → {}", before.ttl, after.ttl));
    }
    let b: BTreeSet<&String> = before.values.iter().collect();
    let a: BTreeSet<&String> = after.values.iter().collect();
    let added: Vec<&str> = a.difference(&b).map(|s| s.as_str()).collect();
    let removed: Vec<&str> = b.difference(&a).map(|s| s.as_str()).collect();
    if !added.is_empty() {
        parts.push(format!("add {}", added.join(", ")));
    }
    if !removed.is_empty() {
        parts.push(format!("remove {}", removed.join(", ")));
    }
    parts.join("; ")
}

/// The live zone as the planner reads it: data record sets, who owns which, the ownership
/// record sets that are one environment's alone.
struct LiveZone<'a> {
    data: BTreeMap<RecordKey, &'a RecordSet>,
    owners: BTreeMap<RecordKey, Vec<String>>,
    ownership_sets: BTreeMap<RecordKey, &'a RecordSet>,
    /// Data record sets, SOA apart.
    total: usize,
}

impl<'a> LiveZone<'a> {
    fn read(live: &'a ZoneSnapshot) -> Self {
        let mut data: BTreeMap<RecordKey, &RecordSet> = BTreeMap::new();
        let mut owners: BTreeMap<RecordKey, Vec<String>> = BTreeMap::new();
        let mut ownership_sets: BTreeMap<RecordKey, &RecordSet> = BTreeMap::new();
        for rs in &live.records {
            if is_ownership_name(&rs.name) {
                if let Some((key, envs)) = parse_ownership(rs) {
                    // Every value must name an environment for the set to be anyone's alone.
                    if envs.len() == rs.values.len() {
                        ownership_sets.insert(key.clone(), rs);
                    }
                    owners.entry(key).or_default().extend(envs);
                }
            } else {
                data.insert(rs.key(), rs);
            }
        }
        let total = data
            .keys()
            .filter(|k| !matches!(&k.rtype, RecordType::Other(t) if t == "SOA"))
            .count();
        Self {
            data,
            owners,
            ownership_sets,
            total,
        }
    }
}

/// An environment name must fit in an ownership record.
fn check_owner(opts: &PlanOptions) -> Result<(), DnsError> {
    if let Some(owner) = &opts.owner
        && (owner.is_empty()
            || !owner
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
    {
        return Err(DnsError::Settings(format!(
            "environment name `{owner}` cannot be written in an ownership record (letters, digits, `-`, `_`, `.`)"
        )));
    }
    Ok(())
}

/// A desired record set cairn can manage: in the zone, not an ownership name, of a managed
/// type, declared once.
fn check_desired(
    d: &RecordSet,
    zone: &str,
    declared: &mut BTreeSet<RecordKey>,
) -> Result<(), DnsError> {
    let key = d.key();
    let invalid = |reason: String| DnsError::InvalidRecord {
        what: format!("record {key}"),
        reason,
    };
    if !in_zone_name(&d.name, zone) {
        return Err(invalid(format!("the name is outside the zone {zone}")));
    }
    if is_ownership_name(&d.name) {
        return Err(invalid(format!(
            "names starting with `{OWNER_LABEL}` are reserved for cairn's ownership records"
        )));
    }
    if !d.rtype.is_managed() {
        return Err(invalid(
            "cairn does not manage records of this type".to_owned(),
        ));
    }
    if !declared.insert(key.clone()) {
        return Err(invalid("declared twice".to_owned()));
    }
    Ok(())
}

/// RFC 2136 3.4.1.2: a CNAME cannot share its name with other data; servers ignore the
/// conflicting addition silently. The warning, when `d` would.
fn cname_clash(d: &RecordSet, zone: &LiveZone<'_>) -> Option<String> {
    let other = zone.data.keys().find(|k| {
        k.name == d.name
            && k.rtype != d.rtype
            && (k.rtype == RecordType::Cname || d.rtype == RecordType::Cname)
            && !matches!(k.rtype, RecordType::Other(_))
    })?;
    Some(format!(
        "{} shares its name with the live record set {other}: a CNAME cannot coexist with other data, so the server may ignore the change",
        d.key()
    ))
}

/// What to do with one desired record set: nothing, a change, or a conflict with its owner.
fn plan_desired(
    d: &RecordSet,
    zone: &LiveZone<'_>,
    opts: &PlanOptions,
) -> Result<Option<DnsChange>, Conflict> {
    let key = d.key();
    let change = |kind, before: Option<&RecordSet>, reason| DnsChange {
        kind,
        key: key.clone(),
        before: before.cloned(),
        after: Some(d.clone()),
        reason,
    };
    let Some(l) = zone.data.get(&key) else {
        return Ok(Some(change(Action::Create, None, "missing".to_owned())));
    };
    if *l == d {
        return Ok(None);
    }
    let owned = zone.owners.get(&key);
    let mine = match (&opts.owner, owned) {
        (None, _) => true,
        (Some(me), Some(envs)) => envs.contains(me),
        (Some(_), None) => false,
    };
    let diff = describe_diff(l, d);
    if mine {
        return Ok(Some(change(Action::Update, Some(l), diff)));
    }
    let other = owned.and_then(|o| o.first().cloned());
    if !opts.force {
        return Err(Conflict {
            key: key.clone(),
            owner: other,
        });
    }
    let from = match &other {
        Some(o) => format!("environment `{o}`"),
        None => "records not created by cairn".to_owned(),
    };
    let reason = format!("{diff}; forced take-over from {from}");
    Ok(Some(change(Action::Update, Some(l), reason)))
}

/// Deletions of the record sets `me` owns and no longer declares.
fn undeclared(zone: &LiveZone<'_>, declared: &BTreeSet<RecordKey>, me: &str) -> Vec<DnsChange> {
    let mut out = Vec::new();
    for (key, envs) in &zone.owners {
        if declared.contains(key) || !envs.iter().any(|e| e == me) {
            continue;
        }
        if let Some(l) = zone.data.get(key) {
            out.push(DnsChange {
                kind: Action::Delete,
                key: key.clone(),
                before: Some((*l).clone()),
                after: None,
                reason: format!("no longer declared by environment `{me}`"),
            });
        }
    }
    out
}

/// Plans the changes that make the zone hold `desired`. Pure: no IO.
///
/// Errors: [`DnsError::InvalidRecord`] for desired records outside the zone or on ownership
/// names; [`DnsError::Conflicts`] when a foreign record set would change (unless `force`);
/// [`DnsError::DeleteThreshold`] when too much of the zone would be deleted (unless `force`).
pub fn plan(
    desired: &[RecordSet],
    live: &ZoneSnapshot,
    opts: &PlanOptions,
) -> Result<DnsPlan, DnsError> {
    let zone = normalize_name(&live.zone)?;
    check_owner(opts)?;
    let read = LiveZone::read(live);
    let mut warnings = Vec::new();
    if live.read_by == ReadMethod::Queries && opts.owner.is_some() {
        warnings.push(format!(
            "zone transfer of {zone} was refused: only the declared record sets were read, so record sets cairn created earlier and no longer declares are not deleted"
        ));
    }
    let mut declared = BTreeSet::new();
    let mut changes = Vec::new();
    let mut conflicts = Vec::new();
    for d in desired {
        check_desired(d, &zone, &mut declared)?;
        warnings.extend(cname_clash(d, &read));
        match plan_desired(d, &read, opts) {
            Ok(change) => changes.extend(change),
            Err(conflict) => conflicts.push(conflict),
        }
    }
    let orphans = match &opts.owner {
        Some(me) => {
            changes.extend(undeclared(&read, &declared, me));
            orphaned_ownership(
                &read.owners,
                &read.ownership_sets,
                &read.data,
                &declared,
                me,
            )
        }
        None => Vec::new(),
    };
    if !conflicts.is_empty() {
        return Err(DnsError::Conflicts { conflicts });
    }
    let deletes = changes.iter().filter(|c| c.kind == Action::Delete).count();
    changes.extend(orphans);
    let total = read.total;
    if !opts.force
        && total >= MIN_RECORDS_FOR_THRESHOLD
        && deletes * 100 > usize::from(opts.delete_threshold_percent) * total
    {
        return Err(DnsError::DeleteThreshold {
            zone,
            deletes,
            total,
            threshold_percent: opts.delete_threshold_percent,
        });
    }
    changes.sort_by(|a, b| (send_order(a.kind), &a.key).cmp(&(send_order(b.kind), &b.key)));
    Ok(DnsPlan {
        zone,
        owner: opts.owner.clone(),
        changes,
        zone_records_total: total,
        read_by: live.read_by,
        warnings,
    })
}

/// Deletions of this environment's ownership records whose record set no longer exists (deleted
/// by hand, or an apply interrupted between the two): the ownership record set itself is
/// deleted, when every value of it names `me` and only `me`. Record sets still declared are
/// left alone (their creation rewrites the ownership record).
fn orphaned_ownership(
    owners: &BTreeMap<RecordKey, Vec<String>>,
    ownership_sets: &BTreeMap<RecordKey, &RecordSet>,
    data: &BTreeMap<RecordKey, &RecordSet>,
    desired_keys: &BTreeSet<RecordKey>,
    me: &str,
) -> Vec<DnsChange> {
    owners
        .iter()
        .filter(|(key, envs)| {
            !data.contains_key(*key)
                && !desired_keys.contains(*key)
                && !envs.is_empty()
                && envs.iter().all(|e| e == me)
        })
        .filter_map(|(key, _)| {
            let own = *ownership_sets.get(key)?;
            Some(DnsChange {
                kind: Action::Delete,
                key: own.key(),
                before: Some(own.clone()),
                after: None,
                reason: ORPHAN_REASON.to_owned(),
            })
        })
        .collect()
}

/// Whether a change only removes an orphaned ownership record (see [`ORPHAN_REASON`]).
pub fn is_orphan_sweep(change: &DnsChange) -> bool {
    change.kind == Action::Delete && is_ownership_name(&change.key.name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rs(name: &str, t: &str, ttl: u32, values: &[&str]) -> RecordSet {
        RecordSet::new(name, RecordType::parse(t), ttl, values).unwrap()
    }

    fn own(name: &str, t: &str, env: &str) -> RecordSet {
        ownership_record(&rs(name, t, 1, &[]).key(), env, 300)
    }

    fn zone(records: Vec<RecordSet>) -> ZoneSnapshot {
        let mut records = records;
        records.push(rs(
            "example.com",
            "SOA",
            300,
            &["ns1.example.com. h.example.com. 1 1 1 1 1"],
        ));
        records.push(rs("example.com", "NS", 300, &["ns1.example.com."]));
        records.sort();
        ZoneSnapshot {
            zone: "example.com".into(),
            serial: 1,
            records,
            read_by: ReadMethod::Axfr,
        }
    }

    fn kinds(p: &DnsPlan) -> Vec<(Action, String)> {
        p.changes
            .iter()
            .map(|c| (c.kind, c.key.to_string()))
            .collect()
    }

    #[test]
    fn creates_updates_and_deletes_owned_records() {
        let live = zone(vec![
            rs("api.example.com", "A", 300, &["192.0.2.1"]),
            own("api.example.com", "A", "staging"),
            rs("old.example.com", "TXT", 300, &["bye"]),
            own("old.example.com", "TXT", "staging"),
            rs("same.example.com", "AAAA", 300, &["2001:db8::1"]),
            own("same.example.com", "AAAA", "staging"),
        ]);
        let desired = [
            rs("api.example.com", "A", 60, &["192.0.2.2"]),
            rs("new.example.com", "MX", 300, &["10 mail.example.com."]),
            rs("same.example.com", "AAAA", 300, &["2001:DB8:0::1"]),
        ];
        let p = plan(&desired, &live, &PlanOptions::owned_by("staging")).unwrap();
        assert_eq!(
            kinds(&p),
            [
                (Action::Delete, "old.example.com TXT".into()),
                (Action::Update, "api.example.com A".into()),
                (Action::Create, "new.example.com MX".into()),
            ]
        );
        assert_eq!(
            p.changes[1].reason,
            "ttl 300 → 60; add 192.0.2.2; remove 192.0.2.1"
        );
        assert_eq!(p.zone_records_total, 4);
    }

    #[test]
    fn foreign_records_are_neither_deleted_nor_changed() {
        let live = zone(vec![
            rs("hand.example.com", "A", 300, &["192.0.2.9"]),
            rs("other.example.com", "A", 300, &["192.0.2.8"]),
            own("other.example.com", "A", "production"),
        ]);
        // not declared: not deleted
        let p = plan(&[], &live, &PlanOptions::owned_by("staging")).unwrap();
        assert!(p.is_empty());
        // declared differently: a conflict naming both record sets
        let desired = [
            rs("hand.example.com", "A", 300, &["192.0.2.1"]),
            rs("other.example.com", "A", 300, &["192.0.2.1"]),
        ];
        let err = plan(&desired, &live, &PlanOptions::owned_by("staging")).unwrap_err();
        let DnsError::Conflicts { conflicts } = &err else {
            panic!("{err}")
        };
        assert_eq!(conflicts.len(), 2);
        assert_eq!(conflicts[1].owner.as_deref(), Some("production"));
        assert!(
            err.to_string()
                .contains("hand.example.com A (not created by cairn)"),
            "{err}"
        );
        // forced: taken over
        let mut opts = PlanOptions::owned_by("staging");
        opts.force = true;
        let p = plan(&desired, &live, &opts).unwrap();
        assert_eq!(p.changes.len(), 2);
        assert!(p.changes[0].reason.contains("forced take-over"));
        // declared identically: nothing to do
        let same = [rs("hand.example.com", "A", 300, &["192.0.2.9"])];
        assert!(
            plan(&same, &live, &PlanOptions::owned_by("staging"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn delete_threshold_needs_force() {
        let mut records = Vec::new();
        for i in 0..10 {
            records.push(rs(&format!("h{i}.example.com"), "A", 300, &["192.0.2.1"]));
            records.push(own(&format!("h{i}.example.com"), "A", "staging"));
        }
        let live = zone(records);
        let keep: Vec<RecordSet> = (0..8)
            .map(|i| rs(&format!("h{i}.example.com"), "A", 300, &["192.0.2.1"]))
            .collect();
        // 2 of 11 (NS counts) = 18%: fine
        assert_eq!(
            plan(&keep, &live, &PlanOptions::owned_by("staging"))
                .unwrap()
                .changes
                .len(),
            2
        );
        // 10 of 11: refused
        let err = plan(&[], &live, &PlanOptions::owned_by("staging")).unwrap_err();
        assert!(
            matches!(
                err,
                DnsError::DeleteThreshold {
                    deletes: 10,
                    total: 11,
                    ..
                }
            ),
            "{err}"
        );
        let mut opts = PlanOptions::owned_by("staging");
        opts.force = true;
        assert_eq!(plan(&[], &live, &opts).unwrap().changes.len(), 10);
    }

    #[test]
    fn ownership_names_do_not_collide() {
        let a = RecordKey {
            name: "*.example.com".into(),
            rtype: RecordType::A,
        };
        let b = RecordKey {
            name: "example.com".into(),
            rtype: RecordType::A,
        };
        assert_eq!(ownership_name(&a), "_cairn-owner-wildcard.a.example.com");
        assert_eq!(ownership_name(&b), "_cairn-owner.a.example.com");
        for key in [a, b] {
            let (back, envs) = parse_ownership(&ownership_record(&key, "staging", 60)).unwrap();
            assert_eq!((back, envs), (key, vec!["staging".to_owned()]));
        }
        let bad = [rs("_cairn-owner.a.example.com", "TXT", 300, &["x"])];
        assert!(plan(&bad, &zone(vec![]), &PlanOptions::owned_by("s")).is_err());
    }

    #[test]
    fn cname_beside_other_data_is_warned() {
        let live = zone(vec![rs("www.example.com", "CNAME", 300, &["example.com."])]);
        let p = plan(
            &[rs("www.example.com", "A", 300, &["192.0.2.1"])],
            &live,
            &PlanOptions::owned_by("s"),
        )
        .unwrap();
        assert_eq!(p.changes.len(), 1);
        assert!(p.warnings[0].contains("CNAME"), "{:?}", p.warnings);
    }

    #[test]
    fn orphaned_ownership_records_of_this_environment_are_swept() {
        let mut both = own("shared.example.com", "A", "staging");
        both.values
            .push(ownership_value("production", &RecordType::A));
        let live = zone(vec![
            // record set deleted by hand: its ownership record is an orphan
            own("gone.example.com", "A", "staging"),
            own("gone.example.com", "TXT", "staging"),
            // another environment's orphan, one claimed by two environments, one still declared
            own("theirs.example.com", "A", "production"),
            both,
            own("back.example.com", "A", "staging"),
            // a live record set keeps its ownership record
            rs("kept.example.com", "A", 300, &["192.0.2.1"]),
            own("kept.example.com", "A", "staging"),
        ]);
        let desired = [
            rs("back.example.com", "A", 300, &["192.0.2.2"]),
            rs("kept.example.com", "A", 300, &["192.0.2.1"]),
        ];
        let p = plan(&desired, &live, &PlanOptions::owned_by("staging")).unwrap();
        assert_eq!(
            kinds(&p),
            [
                (Action::Delete, "_cairn-owner.a.gone.example.com TXT".into()),
                (
                    Action::Delete,
                    "_cairn-owner.txt.gone.example.com TXT".into()
                ),
                (Action::Create, "back.example.com A".into()),
            ]
        );
        assert!(
            p.changes[..2]
                .iter()
                .all(|c| c.reason == ORPHAN_REASON && is_orphan_sweep(c))
        );
        assert!(!is_orphan_sweep(&p.changes[2]));
        // production sees only its own orphan
        let p = plan(&[], &live, &PlanOptions::owned_by("production")).unwrap();
        assert_eq!(
            kinds(&p),
            [(
                Action::Delete,
                "_cairn-owner.a.theirs.example.com TXT".into()
            )]
        );
        assert_eq!(
            owned_key("_cairn-owner-wildcard.a.example.com")
                .unwrap()
                .name,
            "*.example.com"
        );
    }

    #[test]
    fn manual_plans_have_no_owner_and_no_deletes() {
        let live = zone(vec![rs("a.example.com", "A", 300, &["192.0.2.1"])]);
        let opts = PlanOptions {
            owner: None,
            delete_threshold_percent: 30,
            force: false,
        };
        let p = plan(
            &[rs("a.example.com", "A", 300, &["192.0.2.2"])],
            &live,
            &opts,
        )
        .unwrap();
        assert_eq!(kinds(&p), [(Action::Update, "a.example.com A".into())]);
        assert!(plan(&[], &live, &opts).unwrap().is_empty());
    }
}
