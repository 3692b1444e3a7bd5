//! The DNS provider as the engine sees it: reads the environment's zone, plans its record
//! sets, and gives one executor node per changed record set (the nodes of a zone share one
//! [`ZoneBatcher`]). Under the sandbox an [`InMemoryBackend`] kept in a file stands in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cairn_apply::provider::{Part, Provider, ProviderError, StepOptions, TwinState};
use cairn_apply::{Emit, Event, Failure, Node};
use cairn_model::{DesiredState, Provider as Kind, ResourceId};
use cairn_plan::diff::FieldChange;
use cairn_plan::plan::{Action, Change};
use futures::future::BoxFuture;

use crate::{
    Backend, DnsBackend, DnsError, DnsPlan, DnsSettings, IgnoredChange, InMemoryBackend, RecordKey,
    RecordSet, ZoneBatcher,
};

/// Why the DNS part could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    /// The environment's `dns:` settings are invalid.
    #[error("DNS settings: {0}")]
    Settings(#[source] DnsError),
    /// The declared records are invalid, or the backend cannot be made.
    #[error(transparent)]
    Dns(#[from] DnsError),
    /// The sandbox's saved zone cannot be read.
    #[error("{}: {source}", file.display())]
    SandboxFile {
        /// The file.
        file: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The zone cannot be read.
    #[error("reading {backend}: {source}")]
    Read {
        /// The backend, described.
        backend: String,
        /// Why.
        #[source]
        source: DnsError,
    },
    /// The plan cannot be made (a delete threshold, another owner's records).
    #[error("planning {backend}: {source}")]
    Plan {
        /// The backend, described.
        backend: String,
        /// Why.
        #[source]
        source: DnsError,
    },
}

/// The DNS provider: where the zone lives (the environment's settings, or the sandbox's
/// in-memory zone) and how to plan it.
pub struct DnsProvider {
    /// Under the sandbox: the folder its zone files live in.
    pub sandbox_dir: Option<PathBuf>,
    /// Allow deleting more than the threshold of the zone, and taking over others' records.
    pub force: bool,
}

/// The DNS zone of an environment: where it lives and what would change.
pub struct DnsPart {
    /// The zone's backend (shared with the certificates' DNS-01 challenges).
    pub backend: Arc<Backend>,
    /// What would change.
    pub plan: DnsPlan,
    /// Under the sandbox: where the in-memory zone is saved between runs.
    sandbox_file: Option<PathBuf>,
    /// The zone's SOA serial when the plan read it.
    serial: u32,
    /// A digest of what the plan depends on in the zone: the declared record sets and this
    /// environment's ownership records (not the serial: another environment's records, ACME
    /// challenges or DNSSEC re-signing change it without concerning this plan).
    read_digest: String,
    /// The plan's rows: one per declared record set (no-ops included) and per deletion.
    rows: Vec<Change>,
}

fn sandbox_file(dir: &Path, zone: &str) -> PathBuf {
    dir.join("dns").join(format!("{zone}.json"))
}

fn sandbox_backend(file: &Path, zone: &str) -> Result<InMemoryBackend, ZoneError> {
    let backend = match std::fs::read_to_string(file) {
        Ok(text) => {
            let (serial, sets): (u32, Vec<RecordSet>) =
                serde_json::from_str(&text).map_err(|source| ZoneError::SandboxFile {
                    file: file.to_owned(),
                    source,
                })?;
            InMemoryBackend::with_records(zone, serial, sets)
        }
        Err(_) => InMemoryBackend::new(zone),
    };
    Ok(backend?)
}

impl DnsProvider {
    /// Reads the zone and plans its records; `None` when the environment declares no records.
    pub async fn plan_zone(&self, state: &DesiredState) -> Result<Option<DnsPart>, ZoneError> {
        let records: Vec<_> = state
            .resources
            .iter()
            .filter(|r| r.id.provider == Kind::Dns)
            .collect();
        let Some(settings) = state.environment.providers.get("dns") else {
            return Ok(None);
        };
        let settings = match DnsSettings::from_settings(settings) {
            Ok(s) => s,
            // Settings only checked where records are declared, as before.
            Err(_) if records.is_empty() => return Ok(None),
            Err(e) => return Err(ZoneError::Settings(e)),
        };
        if records.is_empty() && matches!(settings, DnsSettings::Manual(_)) {
            // Nobody's records are told apart in a zone edited by hand.
            return Ok(None);
        }
        let zone = settings.zone().to_owned();
        let desired = crate::desired_records(records.iter().copied(), &zone)?;
        let part = self.plan_records(state, &settings, &desired).await?;
        // With no record declared, the zone is read for the records the environment still
        // owns there (its last one removed): a part only when some are to be deleted.
        Ok(part.filter(|p| !desired.is_empty() || !p.plan.changes.is_empty()))
    }

    /// Reads the zone (the declared record sets; the whole zone for deletions) and plans.
    async fn plan_records(
        &self,
        state: &DesiredState,
        settings: &DnsSettings,
        desired: &[RecordSet],
    ) -> Result<Option<DnsPart>, ZoneError> {
        let zone = settings.zone().to_owned();
        let (backend, file) = match &self.sandbox_dir {
            Some(dir) => {
                let file = sandbox_file(dir, &zone);
                (
                    Backend::InMemory(sandbox_backend(&file, &zone)?),
                    Some(file),
                )
            }
            None => (Backend::from_settings(settings, false)?, None),
        };
        let interest: Vec<RecordKey> = desired.iter().map(RecordSet::key).collect();
        let snapshot = backend
            .read_zone(&interest)
            .await
            .map_err(|source| ZoneError::Read {
                backend: backend.describe(),
                source,
            })?;
        if desired.is_empty() && snapshot.read_by == crate::ReadMethod::Queries {
            // Without a zone transfer nothing but declared record sets can be read.
            return Ok(None);
        }
        let mut options = crate::PlanOptions::owned_by(&state.environment.name);
        if matches!(settings, DnsSettings::Manual(_)) {
            options.owner = None;
        }
        options.force = self.force;
        let plan = crate::plan(desired, &snapshot, &options).map_err(|source| ZoneError::Plan {
            backend: backend.describe(),
            source,
        })?;
        let rows = rows(state, &plan);
        Ok(Some(DnsPart {
            backend: Arc::new(backend),
            sandbox_file: file,
            serial: snapshot.serial,
            read_digest: read_digest(&snapshot.records, &interest, &state.environment.name),
            plan,
            rows,
        }))
    }
}

impl Provider for DnsProvider {
    fn kind(&self) -> Kind {
        Kind::Dns
    }

    fn plan<'a>(
        &'a self,
        state: &'a DesiredState,
    ) -> BoxFuture<'a, Result<Option<Box<dyn Part>>, ProviderError>> {
        Box::pin(async move {
            let part = self.plan_zone(state).await?;
            Ok(part.map(|p| Box::new(p) as Box<dyn Part>))
        })
    }
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
        Kind::Dns,
        "DnsRecord",
        Some(zone),
        &format!("{} {}", key.name, key.rtype.as_str()),
    )
}

fn values(rs: &Option<RecordSet>) -> Option<serde_json::Value> {
    rs.as_ref().map(|r| serde_json::json!(r.values))
}

/// The field changes of an update: the values and the TTL.
fn field_changes(c: &crate::DnsChange) -> Vec<FieldChange> {
    let mut fields = Vec::new();
    if c.kind != Action::Update {
        return fields;
    }
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
    fields
}

fn row(id: ResourceId, action: Action) -> Change {
    Change {
        id,
        action,
        fields: Vec::new(),
        reason: None,
        holds_data: false,
        help: None,
        server_message: None,
        declared_at: None,
    }
}

/// The plan's rows: a no-op for each declared record set that does not change, then the
/// changes.
fn rows(state: &DesiredState, plan: &DnsPlan) -> Vec<Change> {
    let changed: Vec<Change> = plan
        .changes
        .iter()
        .map(|c| Change {
            fields: field_changes(c),
            reason: (c.kind != Action::Create).then(|| c.reason.clone()),
            ..row(id_of(&plan.zone, &c.key), c.kind)
        })
        .collect();
    let changed_ids: std::collections::BTreeSet<String> = changed
        .iter()
        .map(|c| c.id.to_string().to_ascii_lowercase())
        .collect();
    let mut out: Vec<Change> = state
        .resources
        .iter()
        .filter(|r| r.id.provider == Kind::Dns)
        .filter(|r| !changed_ids.contains(&r.id.to_string().to_ascii_lowercase()))
        .map(|r| row(r.id.clone(), Action::NoOp))
        .collect();
    out.extend(changed);
    out
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

impl DnsPart {
    /// The node of one record set change.
    fn node(
        &self,
        change: &crate::DnsChange,
        batcher: &Arc<ZoneBatcher<Backend>>,
        timeout: Duration,
    ) -> Node {
        let mut single = self.plan.clone();
        single.changes = vec![change.clone()];
        single.warnings.clear();
        let (backend, batcher) = (self.backend.clone(), batcher.clone());
        let manual = matches!(*self.backend, Backend::Manual(_));
        let id = id_of(&self.plan.zone, &change.key);
        let (node_id, key) = (id.clone(), change.key.clone());
        Node {
            id,
            action: change.kind,
            depends_on: Vec::new(),
            work: Box::new(move |emit: Emit| {
                Box::pin(async move {
                    let ignored = if manual {
                        let lines = crate::manual_instructions(&single);
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
    }
}

impl Part for DnsPart {
    fn kind(&self) -> Kind {
        Kind::Dns
    }

    fn changes(&self) -> Vec<Change> {
        self.rows.clone()
    }

    fn notes(&self) -> Vec<String> {
        std::iter::once(format!("DNS: {}", self.backend.describe()))
            .chain(self.plan.warnings.iter().map(|w| format!("DNS: {w}")))
            .collect()
    }

    /// One node per record set change, so certificates can depend on their records. The nodes
    /// of the zone share a [`ZoneBatcher`]: their changes go out as few batched UPDATEs, and
    /// each node verifies its own record set. The manual provider has nothing to send: each
    /// node says what to create and waits for it.
    fn nodes(&self, steps: &StepOptions) -> Vec<Node> {
        let mut plan = self.plan.clone();
        plan.warnings.clear();
        let batcher = Arc::new(ZoneBatcher::new(self.backend.clone(), plan));
        self.plan
            .changes
            .iter()
            .map(|change| self.node(change, &batcher, steps.timeout))
            .collect()
    }

    fn observations(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(
            format!("DnsZone/{}", self.plan.zone),
            format!("records:{} (serial {})", self.read_digest, self.serial),
        )])
    }

    fn twin_state(&self) -> Result<Option<TwinState>, ProviderError> {
        let (Some(file), Backend::InMemory(zone)) = (&self.sandbox_file, &*self.backend) else {
            return Ok(None);
        };
        Ok(Some(TwinState {
            file: file.clone(),
            contents: serde_json::to_string_pretty(&zone.records())?,
        }))
    }
}
