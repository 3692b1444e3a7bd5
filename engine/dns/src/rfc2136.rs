//! RFC 2136 dynamic updates and AXFR, signed with TSIG, over TCP.
//!
//! Changes go out batched: many record sets per UPDATE message, each with its own
//! prerequisites, at most [`MAX_CHANGES_PER_UPDATE`] record sets or [`MAX_UPDATE_BYTES`] per
//! message. A message the server rejects for its records is split until each change has its
//! own answer; every accepted change is then verified at the server.

use cairn_plan::plan::Action;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::{DnsHandle, DnsMultiplexer, NetError};
use hickory_proto::op::update_message::UpdateMessage;
use hickory_proto::op::{DnsRequest, DnsResponse, Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm as HAlg;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType as HType, TSigner};

use crate::backend::{ApplyReport, DnsBackend, IgnoredChange, partial};
use crate::plan::{
    DnsChange, DnsPlan, ReadMethod, ZoneSnapshot, is_orphan_sweep, owned_key, ownership_record,
};
use crate::query::Querier;
use crate::record::{RecordKey, RecordSet};
use crate::settings::{Rfc2136Config, TsigAlgorithm, resolve};
use crate::{DnsError, wire};

/// How long one request may take before the server counts as unreachable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many record set changes go in one UPDATE message.
pub const MAX_CHANGES_PER_UPDATE: usize = 500;
/// An UPDATE message is kept under this many bytes before its TSIG record (a DNS message over
/// TCP is at most 65,535 bytes).
pub const MAX_UPDATE_BYTES: usize = 60_000;

/// A zone on an RFC 2136 server.
#[derive(Debug, Clone)]
pub struct Rfc2136Backend {
    cfg: Rfc2136Config,
    request_timeout: Duration,
    updates: Arc<AtomicUsize>,
}

impl Rfc2136Backend {
    /// A backend for the zone `cfg` describes.
    pub fn new(cfg: Rfc2136Config) -> Rfc2136Backend {
        Rfc2136Backend {
            cfg,
            request_timeout: REQUEST_TIMEOUT,
            updates: Arc::default(),
        }
    }

    /// UPDATE messages sent so far through this backend (and its clones).
    pub fn updates_sent(&self) -> usize {
        self.updates.load(Ordering::Relaxed)
    }

    /// The server, `host:port`.
    pub fn server(&self) -> &str {
        &self.cfg.server
    }

    /// The TSIG key's name.
    pub fn key_name(&self) -> &str {
        &self.cfg.key_name
    }

    /// Sets how long one request may take (default [`REQUEST_TIMEOUT`]).
    pub fn with_request_timeout(mut self, t: Duration) -> Rfc2136Backend {
        self.request_timeout = t;
        self
    }
}

impl DnsBackend for Rfc2136Backend {
    fn zone(&self) -> &str {
        &self.cfg.zone
    }

    async fn read_zone(&self, interest: &[RecordKey]) -> Result<ZoneSnapshot, DnsError> {
        read_zone_with(&self.cfg, interest, self.request_timeout).await
    }

    async fn apply_changes(
        &self,
        plan: &DnsPlan,
        timeout: Duration,
    ) -> Result<ApplyReport, DnsError> {
        apply_with(
            &self.cfg,
            plan,
            timeout,
            self.request_timeout,
            &self.updates,
        )
        .await
    }

    async fn send_changes(&self, plan: &DnsPlan) -> Vec<Result<(), DnsError>> {
        let all = |e: DnsError| plan.changes.iter().map(|_| Err(e.clone())).collect();
        if let Err(e) = check_zone(&self.cfg, plan) {
            return all(e);
        }
        if plan.changes.is_empty() {
            return Vec::new();
        }
        match connect(&self.cfg, self.request_timeout, &self.updates).await {
            Err(e) => all(e),
            Ok(conn) => {
                let changes: Vec<&DnsChange> = plan.changes.iter().collect();
                conn.send_batched(&changes, plan.owner.as_deref()).await
            }
        }
    }

    async fn verify_change(
        &self,
        change: &DnsChange,
        owner: Option<&str>,
        timeout: Duration,
    ) -> Result<Option<IgnoredChange>, DnsError> {
        let conn = connect(&self.cfg, self.request_timeout, &self.updates).await?;
        let (_, mut ignored) = verify(&conn, &[change], timeout).await;
        if let Some(owner) = owner {
            conn.release_ignored(&ignored, owner).await;
        }
        Ok(ignored.pop())
    }
}

fn check_zone(cfg: &Rfc2136Config, plan: &DnsPlan) -> Result<(), DnsError> {
    if plan.zone != cfg.zone {
        return Err(DnsError::Internal(format!(
            "a plan for zone {} applied to zone {}",
            plan.zone, cfg.zone
        )));
    }
    Ok(())
}

/// Reads the zone: AXFR signed with the TSIG key; when the transfer is refused, targeted
/// queries for `interest` and its ownership records.
pub async fn read_zone(
    cfg: &Rfc2136Config,
    interest: &[RecordKey],
) -> Result<ZoneSnapshot, DnsError> {
    read_zone_with(cfg, interest, REQUEST_TIMEOUT).await
}

/// Sends the plan's changes as signed RFC 2136 updates (batched: many record sets per
/// message, each with its own prerequisites), then verifies at the server that it answers the
/// new data, waiting at most `timeout`.
pub async fn apply(
    cfg: &Rfc2136Config,
    plan: &DnsPlan,
    timeout: Duration,
) -> Result<ApplyReport, DnsError> {
    apply_with(cfg, plan, timeout, REQUEST_TIMEOUT, &Arc::default()).await
}

struct Conn {
    updates: Arc<AtomicUsize>,
    client: Client<TokioRuntimeProvider>,
    addr: SocketAddr,
    server: String,
    key_name: String,
    zone: Name,
    zone_text: String,
}

fn signer(cfg: &Rfc2136Config) -> Result<TSigner, DnsError> {
    let alg = match cfg.algorithm {
        TsigAlgorithm::HmacSha256 => HAlg::HmacSha256,
        TsigAlgorithm::HmacSha512 => HAlg::HmacSha512,
    };
    let name = wire::name(&cfg.key_name).map_err(|_| {
        DnsError::Settings(format!(
            "TSIG key name `{}` is not a DNS name",
            cfg.key_name
        ))
    })?;
    TSigner::new(cfg.key.clone(), alg, name, 300)
        .map_err(|e| DnsError::Settings(format!("TSIG key `{}`: {e}", cfg.key_name)))
}

async fn connect(
    cfg: &Rfc2136Config,
    request_timeout: Duration,
    updates: &Arc<AtomicUsize>,
) -> Result<Conn, DnsError> {
    let signer = signer(cfg)?;
    let addr = resolve(&cfg.server).await?;
    let unreachable = |detail: String| DnsError::Unreachable {
        server: cfg.server.clone(),
        detail,
    };
    let (connecting, handle) = TcpClientStream::new(
        addr,
        None,
        Some(request_timeout),
        TokioRuntimeProvider::new(),
    );
    let stream = match tokio::time::timeout(request_timeout, connecting).await {
        Err(_) => {
            return Err(unreachable(format!(
                "no TCP connection within {}s",
                request_timeout.as_secs()
            )));
        }
        Ok(Err(e)) => return Err(unreachable(format!("cannot connect over TCP: {e}"))),
        Ok(Ok(s)) => s,
    };
    let mux = DnsMultiplexer::new(stream, handle)
        .with_timeout(request_timeout)
        .with_signer(signer);
    let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(mux);
    tokio::spawn(bg);
    Ok(Conn {
        updates: updates.clone(),
        client,
        addr,
        server: cfg.server.clone(),
        key_name: cfg.key_name.clone(),
        zone: wire::name(&cfg.zone)?,
        zone_text: cfg.zone.clone(),
    })
}

impl Conn {
    /// Maps a transport or verification error of a signed request.
    fn net_error(&self, what: &str, e: NetError) -> DnsError {
        match e {
            NetError::Timeout => DnsError::Unreachable {
                server: self.server.clone(),
                detail: format!("no answer to {what}"),
            },
            NetError::Io(io) => DnsError::Unreachable {
                server: self.server.clone(),
                detail: format!("{what}: {io}"),
            },
            // The multiplexer verifies the answer's TSIG: a server that does not know the key
            // or cannot verify our signature answers NOTAUTH with an unsigned TSIG (BADKEY,
            // BADSIG), which fails verification here.
            NetError::Proto(p) if is_tsig_failure(&p.to_string()) => DnsError::TsigRejected {
                server: self.server.clone(),
                key_name: self.key_name.clone(),
                detail: format!(
                    "its answer to {what} carries no valid signature for this key, as when the secret is wrong (BADSIG) or the server does not know the key name (BADKEY)"
                ),
            },
            other => DnsError::Unreachable {
                server: self.server.clone(),
                detail: format!("{what}: {other}"),
            },
        }
    }

    /// Maps an error response code.
    fn rcode_error(&self, what: &str, resp: &DnsResponse, key: Option<&RecordKey>) -> DnsError {
        let code = resp.response_code;
        let tsig_error = resp
            .signature()
            .and_then(|s| s.data.error.as_ref())
            .map(|e| format!("{e:?}"));
        match (code, tsig_error, key) {
            (_, Some(te), _) => DnsError::TsigRejected {
                server: self.server.clone(),
                key_name: self.key_name.clone(),
                detail: format!("{code} with TSIG error {te} to {what}"),
            },
            (ResponseCode::Refused, None, _) => DnsError::Refused {
                server: self.server.clone(),
                what: what.to_owned(),
                key_name: self.key_name.clone(),
            },
            (ResponseCode::YXRRSet | ResponseCode::NXRRSet, None, Some(k)) => {
                DnsError::ChangedSincePlan {
                    server: self.server.clone(),
                    key: k.clone(),
                    rcode: code.to_string(),
                }
            }
            (ResponseCode::NotAuth, None, _) => DnsError::ServerError {
                server: self.server.clone(),
                what: what.to_owned(),
                rcode: format!("NOTAUTH (not authoritative for zone {})", self.zone_text),
            },
            _ => DnsError::ServerError {
                server: self.server.clone(),
                what: what.to_owned(),
                rcode: code.to_string(),
            },
        }
    }

    async fn send(
        &self,
        what: &str,
        message: Message,
        key: Option<&RecordKey>,
    ) -> Result<DnsResponse, DnsError> {
        if message.metadata.op_code == OpCode::Update {
            self.updates.fetch_add(1, Ordering::Relaxed);
        }
        let mut responses = self.client.send(DnsRequest::from(message));
        let resp = match responses.next().await {
            None => return Err(self.net_error(what, NetError::Timeout)),
            Some(Err(e)) => return Err(self.net_error(what, e)),
            Some(Ok(r)) => r,
        };
        if resp.response_code != ResponseCode::NoError {
            return Err(self.rcode_error(what, &resp, key));
        }
        Ok(resp)
    }

    /// The record set `key` as the server answers it right now (plain query over TCP).
    async fn query(&self, key: &RecordKey) -> Result<Option<RecordSet>, DnsError> {
        let mut client = self.client.clone();
        let what = format!("a query for {key}");
        let resp = client
            .query(
                wire::name(&key.name)?,
                DNSClass::IN,
                wire::htype(&key.rtype),
            )
            .await
            .map_err(|e| self.net_error(&what, e))?;
        if !matches!(
            resp.response_code,
            ResponseCode::NoError | ResponseCode::NXDomain
        ) {
            return Err(self.rcode_error(&what, &resp, None));
        }
        let mut ttl = u32::MAX;
        let mut values = Vec::new();
        for r in &resp.answers {
            if let Some((owner, t, rttl, v)) = wire::from_record(r)
                && owner == key.name
                && t == key.rtype
            {
                ttl = ttl.min(rttl);
                values.push(v);
            }
        }
        Ok((!values.is_empty())
            .then(|| RecordSet::from_normalized(key.name.clone(), key.rtype.clone(), ttl, values)))
    }

    /// AXFR; `Ok(None)` when the server refuses the transfer.
    async fn axfr(&self) -> Result<Option<(u32, Vec<RecordSet>)>, DnsError> {
        let what = format!("the zone transfer (AXFR) of {}", self.zone_text);
        let mut client = self.client.clone();
        let mut stream = client.zone_transfer(self.zone.clone(), None);
        let mut serial = None;
        let mut sets: BTreeMap<RecordKey, (u32, Vec<String>)> = BTreeMap::new();
        while let Some(item) = stream.next().await {
            let resp = item.map_err(|e| self.net_error(&what, e))?;
            match resp.response_code {
                ResponseCode::NoError => {}
                ResponseCode::Refused | ResponseCode::NotAuth | ResponseCode::NotImp
                    if resp
                        .signature()
                        .and_then(|s| s.data.error.as_ref())
                        .is_none() =>
                {
                    return Ok(None);
                }
                _ => return Err(self.rcode_error(&what, &resp, None)),
            }
            for r in &resp.answers {
                if let RData::SOA(soa) = &r.data {
                    if serial.is_some() {
                        continue; // the closing SOA
                    }
                    serial = Some(soa.serial);
                }
                if let Some((owner, t, ttl, v)) = wire::from_record(r) {
                    let e = sets
                        .entry(RecordKey {
                            name: owner,
                            rtype: t,
                        })
                        .or_insert((ttl, Vec::new()));
                    e.0 = e.0.min(ttl);
                    e.1.push(v);
                }
            }
        }
        let records = sets
            .into_iter()
            .map(|(k, (ttl, values))| RecordSet::from_normalized(k.name, k.rtype, ttl, values))
            .collect();
        Ok(Some((serial.unwrap_or(0), records)))
    }

    fn update_message(&self) -> Message {
        let mut zone = Query::new();
        zone.set_name(self.zone.clone())
            .set_query_class(DNSClass::IN)
            .set_query_type(HType::SOA);
        let mut m = Message::query();
        m.metadata.op_code = OpCode::Update;
        m.metadata.recursion_desired = false;
        m.add_zone(zone);
        m
    }

    /// Deletes the ownership record of `key` if the record set itself does not exist.
    fn release_message(&self, key: &RecordKey, owner: &str) -> Result<Message, DnsError> {
        let mut m = self.update_message();
        let mut pre = Record::update0(wire::name(&key.name)?, 0, wire::htype(&key.rtype));
        pre.dns_class = DNSClass::NONE;
        m.add_pre_requisite(pre);
        let own = ownership_record(key, owner, 0);
        m.add_update(delete_rrset(wire::name(&own.name)?, HType::TXT));
        Ok(m)
    }

    /// The update message of one change.
    fn change_message(&self, change: &DnsChange, owner: Option<&str>) -> Result<Message, DnsError> {
        let mut m = self.update_message();
        add_change(&mut m, change, owner)?;
        Ok(m)
    }

    /// Takes back the ownership records of ignored creations, so no stale claim remains. Best
    /// effort: the prerequisite keeps data that appeared since.
    async fn release_ignored(&self, ignored: &[IgnoredChange], owner: &str) {
        for i in ignored.iter().filter(|i| i.change.kind == Action::Create) {
            if let Ok(m) = self.release_message(&i.change.key, owner) {
                let _ = self.send("releasing an ownership record", m, None).await;
            }
        }
    }

    /// Sends `changes` in as few UPDATE messages as the limits allow ([`MAX_CHANGES_PER_UPDATE`],
    /// [`MAX_UPDATE_BYTES`]); one result per change, in order. A message is atomic: when the
    /// server rejects one for a reason tied to its records (a failed prerequisite, a record it
    /// will not take), nothing of it was applied, and it is split in halves sent again, down to
    /// single changes, so each change gets its own answer (one bad record among n costs about
    /// 2·log2(n) more messages). A rejection of the key or the server (REFUSED, NOTAUTH,
    /// TSIG, unreachable) stops there: the rest is not sent and fails with the same error.
    async fn send_batched(
        &self,
        changes: &[&DnsChange],
        owner: Option<&str>,
    ) -> Vec<Result<(), DnsError>> {
        let mut results: Vec<Result<(), DnsError>> = Vec::with_capacity(changes.len());
        let mut chunks: Vec<Vec<usize>> = Vec::new();
        let base = self.update_message().to_vec().map_or(12, |v| v.len());
        let (mut size, mut current) = (base, Vec::new());
        for (i, c) in changes.iter().enumerate() {
            let one = self
                .change_message(c, owner)
                .and_then(|m| {
                    m.to_vec().map_err(|e| {
                        DnsError::Internal(format!("encoding the update of {}: {e}", c.key))
                    })
                })
                .map(|v| v.len().saturating_sub(base));
            let Ok(len) = one else {
                chunks.push(std::mem::take(&mut current));
                chunks.push(vec![i]); // sent alone: its error is its own
                size = base;
                continue;
            };
            if !current.is_empty()
                && (current.len() >= MAX_CHANGES_PER_UPDATE || size + len > MAX_UPDATE_BYTES)
            {
                chunks.push(std::mem::take(&mut current));
                size = base;
            }
            size += len;
            current.push(i);
        }
        chunks.push(current);
        let mut fatal: Option<DnsError> = None;
        let mut by_index: BTreeMap<usize, Result<(), DnsError>> = BTreeMap::new();
        // Chunks to send, next one last; a rejected chunk is split in halves, in place.
        let mut todo: Vec<Vec<usize>> =
            chunks.into_iter().filter(|c| !c.is_empty()).rev().collect();
        while let Some(chunk) = todo.pop() {
            if let Some(e) = &fatal {
                for i in chunk {
                    by_index.insert(i, Err(e.clone()));
                }
                continue;
            }
            match self.send_chunk(changes, &chunk, owner).await {
                Ok(()) => {
                    for i in chunk {
                        by_index.insert(i, Ok(()));
                    }
                }
                Err(e) if chunk.len() > 1 && is_record_error(&e) => {
                    let (first, second) = chunk.split_at(chunk.len() / 2);
                    todo.push(second.to_vec());
                    todo.push(first.to_vec());
                }
                Err(e) => {
                    for &i in &chunk {
                        by_index.insert(i, Err(e.clone()));
                    }
                    if !is_record_error(&e) {
                        fatal = Some(e);
                    }
                }
            }
        }
        for (i, change) in changes.iter().enumerate() {
            results.push(by_index.remove(&i).unwrap_or_else(|| {
                Err(fatal.clone().unwrap_or_else(|| {
                    DnsError::Internal(format!("the update of {} was never sent", change.key))
                }))
            }));
        }
        results
    }

    /// One UPDATE message holding the changes `indices` of `changes`.
    async fn send_chunk(
        &self,
        changes: &[&DnsChange],
        indices: &[usize],
        owner: Option<&str>,
    ) -> Result<(), DnsError> {
        let mut m = self.update_message();
        for &i in indices {
            add_change(&mut m, changes[i], owner)?;
        }
        let (what, key) = match indices {
            [i] => (
                format!("the update of {}", changes[*i].key),
                Some(&changes[*i].key),
            ),
            _ => (format!("an update of {} record sets", indices.len()), None),
        };
        self.send(&what, m, key).await.map(|_| ())
    }
}

/// Whether an update was rejected because of its records (so it is worth sending its changes
/// one by one), not because of the key or the server.
fn is_record_error(e: &DnsError) -> bool {
    match e {
        DnsError::ChangedSincePlan { .. } | DnsError::InvalidRecord { .. } => true,
        DnsError::ServerError { rcode, .. } => !rcode.starts_with("NOTAUTH"),
        _ => false,
    }
}

/// Adds one change to an update message: prerequisites that hold only if the record set is as
/// planned (absent for a creation, present otherwise), the new data, and the ownership record.
/// An orphaned ownership record is deleted only while its record set is still absent.
fn add_change(m: &mut Message, change: &DnsChange, owner: Option<&str>) -> Result<(), DnsError> {
    let key = &change.key;
    let name = wire::name(&key.name)?;
    let t = wire::htype(&key.rtype);
    // RFC 2136 2.4: "RRset does not exist" is class NONE, "RRset exists" is class ANY.
    let mut pre = Record::update0(name.clone(), 0, t);
    pre.dns_class = if change.kind == Action::Create {
        DNSClass::NONE
    } else {
        DNSClass::ANY
    };
    m.add_pre_requisite(pre);
    if is_orphan_sweep(change) {
        if let Some(data) = owned_key(&key.name) {
            let mut absent = Record::update0(wire::name(&data.name)?, 0, wire::htype(&data.rtype));
            absent.dns_class = DNSClass::NONE;
            m.add_pre_requisite(absent);
        }
        m.add_update(delete_rrset(name, t));
        return Ok(());
    }
    if change.kind != Action::Create {
        m.add_update(delete_rrset(name.clone(), t));
    }
    if let Some(after) = &change.after {
        for v in &after.values {
            m.add_update(Record::from_rdata(
                name.clone(),
                after.ttl,
                wire::to_rdata(&key.rtype, v)?,
            ));
        }
    }
    if let Some(owner) = owner {
        let ttl = change
            .after
            .as_ref()
            .or(change.before.as_ref())
            .map_or(300, |r| r.ttl);
        let own = ownership_record(key, owner, ttl);
        let own_name = wire::name(&own.name)?;
        m.add_update(delete_rrset(own_name.clone(), HType::TXT));
        if change.kind != Action::Delete {
            for v in &own.values {
                m.add_update(Record::from_rdata(
                    own_name.clone(),
                    ttl,
                    wire::to_rdata(&own.rtype, v)?,
                ));
            }
        }
    }
    Ok(())
}

/// Whether a protocol error comes from verifying the answer's TSIG.
fn is_tsig_failure(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    ["tsig", "hmac", "signature", "mac "]
        .iter()
        .any(|w| t.contains(w))
}

fn delete_rrset(name: Name, t: HType) -> Record {
    let mut r = Record::update0(name, 0, t);
    r.dns_class = DNSClass::ANY;
    r
}

async fn read_zone_with(
    cfg: &Rfc2136Config,
    interest: &[RecordKey],
    request_timeout: Duration,
) -> Result<ZoneSnapshot, DnsError> {
    let conn = connect(cfg, request_timeout, &Arc::default()).await?;
    if let Some((serial, records)) = conn.axfr().await? {
        return Ok(ZoneSnapshot {
            zone: cfg.zone.clone(),
            serial,
            records,
            read_by: ReadMethod::Axfr,
        });
    }
    let q = Querier::new(&[conn.addr], request_timeout)?;
    let serial = q.serial(&cfg.zone).await?;
    let records = q.read(interest, true).await?;
    Ok(ZoneSnapshot {
        zone: cfg.zone.clone(),
        serial,
        records,
        read_by: ReadMethod::Queries,
    })
}

async fn apply_with(
    cfg: &Rfc2136Config,
    plan: &DnsPlan,
    timeout: Duration,
    request_timeout: Duration,
    updates: &Arc<AtomicUsize>,
) -> Result<ApplyReport, DnsError> {
    check_zone(cfg, plan)?;
    let mut report = ApplyReport::default();
    if plan.changes.is_empty() {
        return Ok(report);
    }
    let conn = connect(cfg, request_timeout, updates).await?;
    let changes: Vec<&DnsChange> = plan.changes.iter().collect();
    let results = conn.send_batched(&changes, plan.owner.as_deref()).await;
    let mut sent: Vec<&DnsChange> = Vec::new();
    let mut failures: Vec<DnsError> = Vec::new();
    for (change, r) in changes.iter().zip(results) {
        match r {
            Ok(()) => sent.push(change),
            // one error for the whole rest (a rejected key, an unreachable server) once
            Err(e) if failures.iter().any(|f| f.to_string() == e.to_string()) => {}
            Err(e) => failures.push(e),
        }
    }
    if !failures.is_empty() {
        // Verify what was accepted, so the error lists only what is really there.
        let (verified, _) = verify(&conn, &sent, Duration::ZERO).await;
        report.applied = verified;
        let e = if failures.len() == 1 {
            failures.remove(0)
        } else {
            DnsError::Rejected { failures }
        };
        return Err(partial(&report, e));
    }
    let (applied, ignored) = verify(&conn, &sent, timeout).await;
    if let Some(owner) = plan.owner.as_deref() {
        conn.release_ignored(&ignored, owner).await;
    }
    report.applied = applied;
    report.ignored = ignored;
    Ok(report)
}

/// Polls the server until it answers every sent change's new data or `timeout` passes;
/// changes it still does not answer are reported as ignored.
async fn verify(
    conn: &Conn,
    sent: &[&DnsChange],
    timeout: Duration,
) -> (Vec<DnsChange>, Vec<IgnoredChange>) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pending: Vec<&DnsChange> = sent.to_vec();
    let mut applied = Vec::new();
    let mut answered: BTreeMap<RecordKey, Vec<String>> = BTreeMap::new();
    let mut delay = Duration::from_millis(50);
    loop {
        let mut still = Vec::new();
        for change in pending {
            let live = conn.query(&change.key).await;
            let ok = match &live {
                Ok(live) => live.as_ref() == change.after.as_ref(),
                Err(_) => false,
            };
            if ok {
                applied.push(change.clone());
            } else {
                let values = match live {
                    Ok(Some(rs)) => rs.values,
                    _ => Vec::new(),
                };
                answered.insert(change.key.clone(), values);
                still.push(change);
            }
        }
        pending = still;
        if pending.is_empty() || tokio::time::Instant::now() + delay > deadline {
            break;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    let ignored = pending
        .into_iter()
        .map(|c| IgnoredChange {
            change: c.clone(),
            answered: answered.remove(&c.key).unwrap_or_default(),
        })
        .collect();
    (applied, ignored)
}
