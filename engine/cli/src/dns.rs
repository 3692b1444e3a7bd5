//! The DNS part of `plan` and `apply`: the environment's records through `cairn-dns`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cairn_apply::{Emit, Event, Failure, Node};
use cairn_dns::{
    Backend, ChangeKind, DnsBackend, DnsPlan, DnsSettings, IgnoredChange, InMemoryBackend,
    RecordKey, RecordSet, ZoneBatcher,
};
use cairn_model::{DesiredState, Provider, ResourceId};
use cairn_plan::diff::FieldChange;
use cairn_plan::plan::{Action, Change};

/// The DNS zone of an environment: where it lives and what would change.
pub struct DnsPart {
    pub backend: Arc<Backend>,
    pub plan: DnsPlan,
    /// Under `--sandbox`: where the in-memory zone is saved between runs.
    pub sandbox_file: Option<PathBuf>,
    /// The zone's SOA serial when the plan read it.
    pub serial: u32,
    /// A digest of what the plan depends on in the zone: the declared record sets and this
    /// environment's ownership records (not the serial: another environment's records, ACME
    /// challenges or DNSSEC re-signing change it without concerning this plan).
    pub read_digest: String,
}

fn sandbox_file(dir: &Path, zone: &str) -> PathBuf {
    dir.join("dns").join(format!("{zone}.json"))
}

/// Reads the zone and plans its records; `None` when the environment declares no records.
pub async fn plan(
    state: &DesiredState,
    sandbox_dir: Option<&Path>,
    force: bool,
) -> Result<Option<DnsPart>, String> {
    let records: Vec<_> = state
        .resources
        .iter()
        .filter(|r| r.id.provider == Provider::Dns)
        .collect();
    let Some(settings) = state.environment.providers.get("dns") else {
        return Ok(None);
    };
    if records.is_empty() {
        return Ok(None);
    }
    let settings =
        DnsSettings::from_settings(settings).map_err(|e| format!("DNS settings: {e}"))?;
    let zone = settings.zone().to_owned();
    let desired =
        cairn_dns::desired_records(records.iter().copied(), &zone).map_err(|e| e.to_string())?;
    let (backend, file) = match sandbox_dir {
        Some(dir) => {
            let file = sandbox_file(dir, &zone);
            let backend = match std::fs::read_to_string(&file) {
                Ok(text) => {
                    let (serial, sets): (u32, Vec<RecordSet>) = serde_json::from_str(&text)
                        .map_err(|e| format!("{}: {e}", file.display()))?;
                    InMemoryBackend::with_records(&zone, serial, sets)
                }
                Err(_) => InMemoryBackend::new(&zone),
            }
            .map_err(|e| e.to_string())?;
            (Backend::InMemory(backend), Some(file))
        }
        None => (
            Backend::from_settings(&settings, false).map_err(|e| e.to_string())?,
            None,
        ),
    };
    let interest: Vec<RecordKey> = desired.iter().map(RecordSet::key).collect();
    let snapshot = backend
        .read_zone(&interest)
        .await
        .map_err(|e| format!("reading {}: {e}", backend.describe()))?;
    let mut options = cairn_dns::PlanOptions::owned_by(&state.environment.name);
    if matches!(settings, DnsSettings::Manual(_)) {
        options.owner = None;
    }
    options.force = force;
    let plan = cairn_dns::plan(&desired, &snapshot, &options)
        .map_err(|e| format!("planning {}: {e}", backend.describe()))?;
    Ok(Some(DnsPart {
        backend: Arc::new(backend),
        plan,
        sandbox_file: file,
        serial: snapshot.serial,
        read_digest: read_digest(&snapshot.records, &interest, &state.environment.name),
    }))
}

/// SHA-256 of the record sets a plan depends on: the declared ones and the ownership records
/// naming `environment`.
fn read_digest(records: &[RecordSet], interest: &[RecordKey], environment: &str) -> String {
    use sha2::Digest as _;
    let marker = format!("environment={environment}");
    let relevant: Vec<&RecordSet> = records
        .iter()
        .filter(|rs| {
            interest.contains(&rs.key())
                || (rs.name.starts_with("_cairn-owner.")
                    && rs.values.iter().any(|v| v.contains(&marker)))
        })
        .collect();
    let text = serde_json::to_string(&relevant).unwrap_or_default();
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The id of a record set, as the script's resources name it.
pub fn id_of(zone: &str, key: &RecordKey) -> ResourceId {
    ResourceId::other(
        Provider::Dns,
        "DnsRecord",
        Some(zone),
        &format!("{} {}", key.name, key.rtype.as_str()),
    )
}

fn values(rs: &Option<RecordSet>) -> Option<serde_json::Value> {
    rs.as_ref().map(|r| serde_json::json!(r.values))
}

/// The plan's DNS changes, in the common plan's terms.
pub fn changes(part: &DnsPart) -> Vec<Change> {
    part.plan
        .changes
        .iter()
        .map(|c| {
            let action = match c.kind {
                ChangeKind::Create => Action::Create,
                ChangeKind::Update => Action::Update,
                ChangeKind::Delete => Action::Delete,
            };
            let mut fields = Vec::new();
            if c.kind == ChangeKind::Update {
                let (b, a) = (c.before.as_ref(), c.after.as_ref());
                if b.map(|r| &r.values) != a.map(|r| &r.values) {
                    fields.push(FieldChange {
                        path: "values".into(),
                        before: values(&c.before),
                        after: values(&c.after),
                    });
                }
                if b.map(|r| r.ttl) != a.map(|r| r.ttl) {
                    fields.push(FieldChange {
                        path: "ttl".into(),
                        before: b.map(|r| r.ttl.into()),
                        after: a.map(|r| r.ttl.into()),
                    });
                }
            }
            Change {
                id: id_of(&part.plan.zone, &c.key),
                action,
                fields,
                reason: (c.kind != ChangeKind::Create).then(|| c.reason.clone()),
                holds_data: false,
                help: None,
                server_message: None,
                declared_at: None,
            }
        })
        .collect()
}

fn ignored_failure(ignored: &IgnoredChange) -> Failure {
    let mut f = Failure::new(format!(
        "the DNS server accepted the change of {} but does not answer it (a record beside a CNAME is silently ignored)",
        ignored.change.key
    ));
    f.details.push(format!(
        "the server answers: {}",
        if ignored.answered.is_empty() {
            "nothing".to_owned()
        } else {
            ignored.answered.join(", ")
        }
    ));
    f
}

/// One executor node per record set change, so certificates can depend on their records. The
/// nodes of the zone share a [`ZoneBatcher`]: their changes go out as few batched UPDATEs, and
/// each node verifies its own record set. The manual provider has nothing to send: each node
/// says what to create and waits for it.
pub fn nodes(part: &DnsPart, timeout: Duration) -> Vec<Node> {
    let mut plan = part.plan.clone();
    plan.warnings.clear();
    let batcher = Arc::new(ZoneBatcher::new(part.backend.clone(), plan));
    let manual = matches!(*part.backend, Backend::Manual(_));
    part.plan
        .changes
        .iter()
        .map(|change| {
            let mut single = part.plan.clone();
            single.changes = vec![change.clone()];
            single.warnings.clear();
            let (backend, batcher) = (part.backend.clone(), batcher.clone());
            let id = id_of(&part.plan.zone, &change.key);
            let action = match change.kind {
                ChangeKind::Create => Action::Create,
                ChangeKind::Update => Action::Update,
                ChangeKind::Delete => Action::Delete,
            };
            let (node_id, key) = (id.clone(), change.key.clone());
            Node {
                id,
                action,
                depends_on: Vec::new(),
                work: Box::new(move |emit: Emit| {
                    Box::pin(async move {
                        let ignored = if manual {
                            let lines = cairn_dns::manual_instructions(&single);
                            emit(Event::Waiting {
                                id: node_id.clone(),
                                what: format!(
                                    "these records to be created by hand: {}",
                                    lines.join("; ")
                                ),
                            });
                            let report = backend
                                .apply_changes(&single, timeout)
                                .await
                                .map_err(|e| Failure::new(e.to_string()))?;
                            report.ignored.into_iter().next()
                        } else {
                            batcher
                                .apply(&key, timeout)
                                .await
                                .map_err(|e| Failure::new(e.to_string()))?
                        };
                        match ignored {
                            Some(i) => Err(ignored_failure(&i)),
                            None => Ok(()),
                        }
                    })
                }),
            }
        })
        .collect()
}

/// Saves the sandbox zone after an apply.
pub fn save(part: &DnsPart) -> Result<(), String> {
    let (Some(file), Backend::InMemory(zone)) = (&part.sandbox_file, &*part.backend) else {
        return Ok(());
    };
    let text = serde_json::to_string_pretty(&zone.records()).map_err(|e| e.to_string())?;
    cairn_sandbox::files::write_private(file, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", file.display()))
}
