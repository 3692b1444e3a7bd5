//! The certificate provider as the engine sees it: each declared certificate's TLS Secret (read
//! by the cluster's plan, through a [`SecretStore`]) inspected; one node per certificate to
//! issue or renew (DNS-01 challenge, issuance, TLS Secret); the ACME account and the rate limit
//! it remembers kept in the account Secret. Under the sandbox a local CA stands in.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cairn_apply::provider::{Part, Provider, ProviderError, SecretStore, StepOptions};
use cairn_apply::{Emit, Event, Failure, Node};
use cairn_dns::{Backend, DnsSettings};
use cairn_model::{DesiredState, Provider as Kind, ResourceId};
use cairn_plan::plan::{Action, Change};
use futures::future::BoxFuture;
use serde_json::Value as J;
use tokio::sync::Mutex;

use crate::{
    ACCOUNT_SECRET_NAME, AccountSecret, AcmeClient, AcmeError, CertSettings, CertStatus,
    LOCAL_CA_DESCRIPTION, LocalCa, RateLimitBlock,
};

/// Why the certificates could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// A `Certificate` resource is invalid.
    #[error("certificate {name}: {source}")]
    Certificate {
        /// The certificate.
        name: String,
        /// Why.
        #[source]
        source: Box<AcmeError>,
    },
    /// The environment's `dns:` settings are invalid.
    #[error("DNS settings: {0}")]
    DnsSettings(#[source] cairn_dns::DnsError),
    /// The DNS backend for challenges cannot be made.
    #[error(transparent)]
    Dns(#[from] cairn_dns::DnsError),
}

/// The Secrets certificates keep in the cluster (their TLS Secrets and the ACME account while
/// there are certificates): the cluster's plan keeps them instead of pruning them.
pub fn kept_secrets(state: &DesiredState) -> Vec<ResourceId> {
    let mut out = Vec::new();
    for r in state
        .resources
        .iter()
        .filter(|r| r.id.kind == "Certificate")
    {
        if let (Some(ns), Some(secret)) = (
            r.id.scope.as_deref(),
            r.body
                .get("secret_name")
                .and_then(cairn_model::Value::as_str),
        ) {
            out.push(ResourceId::kube("Secret", Some(ns), secret));
            out.push(ResourceId::kube("Secret", Some(ns), ACCOUNT_SECRET_NAME));
        }
    }
    out
}

/// The certificate provider.
pub struct AcmeProvider {
    /// Where TLS and account Secrets are read from and written to.
    pub secrets: Arc<dyn SecretStore>,
    /// Where challenge records go: the zone the DNS provider planned, if any.
    pub dns: Option<Arc<Backend>>,
    /// Under the sandbox: a local CA issues, nothing is asked of an ACME server.
    pub sandbox: bool,
}

/// One declared certificate and what the plan found.
struct Cert {
    id: ResourceId,
    settings: CertSettings,
    status: CertStatus,
    depends_on: Vec<ResourceId>,
}

/// The environment's certificates.
pub struct CertPart {
    certs: Vec<Cert>,
    sandbox: bool,
    /// The ACME account Secret as it is in the cluster, if any.
    account: Option<J>,
    /// Where challenge records go.
    dns: Option<Arc<Backend>>,
    secrets: Arc<dyn SecretStore>,
    /// The rate limit recorded on the account Secret by an earlier run, if any.
    rate_limit: Option<RateLimitBlock>,
}

impl AcmeProvider {
    /// Inspects the TLS Secret of every declared certificate; `None` when the environment
    /// declares no certificate.
    pub fn plan_certs(&self, state: &DesiredState) -> Result<Option<CertPart>, CertsError> {
        let resources: Vec<_> = state
            .resources
            .iter()
            .filter(|r| r.id.provider == Kind::Acme && r.id.kind == "Certificate")
            .collect();
        if resources.is_empty() {
            return Ok(None);
        }
        let now = SystemTime::now();
        let mut certs = Vec::new();
        let mut account = None;
        for r in resources {
            let settings =
                CertSettings::from_resource(r).map_err(|source| CertsError::Certificate {
                    name: r.id.name.clone(),
                    source: Box::new(source),
                })?;
            let secret = self
                .secrets
                .observed(&settings.namespace, &settings.secret_name);
            let status =
                crate::inspect(secret.as_ref(), &settings, now, settings.renew_before_days);
            if account.is_none() {
                account = self
                    .secrets
                    .observed(&settings.namespace, ACCOUNT_SECRET_NAME);
            }
            certs.push(Cert {
                id: r.id.clone(),
                settings,
                status,
                depends_on: r.depends_on.clone(),
            });
        }
        let rate_limit = account
            .as_ref()
            .and_then(RateLimitBlock::from_account_secret);
        Ok(Some(CertPart {
            certs,
            sandbox: self.sandbox,
            account,
            dns: self.challenge_zone(state)?,
            secrets: self.secrets.clone(),
            rate_limit,
        }))
    }

    /// The zone challenge records go to: the DNS provider's, else one made from the settings
    /// (never under the sandbox).
    fn challenge_zone(&self, state: &DesiredState) -> Result<Option<Arc<Backend>>, CertsError> {
        if let Some(d) = &self.dns {
            return Ok(Some(d.clone()));
        }
        if self.sandbox {
            return Ok(None);
        }
        let Some(settings) = state.environment.providers.get("dns") else {
            return Ok(None);
        };
        let settings = DnsSettings::from_settings(settings).map_err(CertsError::DnsSettings)?;
        Ok(Some(Arc::new(Backend::from_settings(&settings, false)?)))
    }
}

impl Provider for AcmeProvider {
    fn kind(&self) -> Kind {
        Kind::Acme
    }

    fn plan<'a>(
        &'a self,
        state: &'a DesiredState,
    ) -> BoxFuture<'a, Result<Option<Box<dyn Part>>, ProviderError>> {
        Box::pin(async move {
            let part = self.plan_certs(state)?;
            Ok(part.map(|p| Box::new(p) as Box<dyn Part>))
        })
    }
}

impl CertPart {
    /// The rate limit recorded by an earlier run, while it holds (never under the sandbox).
    fn active_block(&self) -> Option<&RateLimitBlock> {
        self.rate_limit
            .as_ref()
            .filter(|b| !self.sandbox && b.is_active(SystemTime::now()))
    }

    fn row(&self, c: &Cert) -> Change {
        let reason = (c.status.action != Action::NoOp).then(|| {
            let mut r = format!(
                "{} from {}",
                c.status.describe(),
                if self.sandbox {
                    LOCAL_CA_DESCRIPTION.to_owned()
                } else {
                    c.settings.issuer.describe()
                }
            );
            if let Some(block) = self.active_block() {
                r.push_str("; ");
                r.push_str(&block.describe());
            }
            r
        });
        Change {
            id: c.id.clone(),
            action: c.status.action,
            fields: Vec::new(),
            reason,
            holds_data: false,
            help: None,
            server_message: None,
            declared_at: None,
        }
    }
}

impl Part for CertPart {
    fn kind(&self) -> Kind {
        Kind::Acme
    }

    fn changes(&self) -> Vec<Change> {
        self.certs.iter().map(|c| self.row(c)).collect()
    }

    /// `certificate X: blocked by the ACME rate limit until T (reason)` for every certificate
    /// to issue while a recorded rate limit holds; under the sandbox, what stands in.
    fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = match self.active_block() {
            Some(block) => self
                .certs
                .iter()
                .filter(|c| c.status.action != Action::NoOp)
                .map(|c| format!("certificate {}: {}", c.settings.name, block.describe()))
                .collect(),
            None => Vec::new(),
        };
        if self.sandbox {
            notes.push(format!(
                "certificates: {LOCAL_CA_DESCRIPTION} stands in for the ACME issuer"
            ));
        }
        notes
    }

    /// One node per certificate to issue or renew: DNS-01 challenge, issuance, TLS Secret.
    /// While a rate limit recorded on the account Secret holds, a node fails at once without
    /// contacting the ACME server; a rate limit hit here is recorded there for the next runs.
    fn nodes(&self, steps: &StepOptions) -> Vec<Node> {
        let shared = Arc::new(Shared {
            client: Mutex::new(None),
            account: Mutex::new(
                self.account
                    .as_ref()
                    .and_then(|a| AccountSecret::from_secret(a).ok()),
            ),
            account_secret: self.account.clone(),
            rate_limit: Mutex::new(self.rate_limit.clone()),
            secrets: self.secrets.clone(),
        });
        self.certs
            .iter()
            .filter(|c| c.status.action != Action::NoOp)
            .map(|c| {
                let step = Step {
                    id: c.id.clone(),
                    settings: c.settings.clone(),
                    dns: self.dns.clone(),
                    shared: shared.clone(),
                    sandbox: self.sandbox,
                    timeout: steps.timeout,
                };
                Node {
                    id: c.id.clone(),
                    action: c.status.action,
                    depends_on: c.depends_on.clone(),
                    work: Box::new(move |emit: Emit| Box::pin(step.run(emit))),
                }
            })
            .collect()
    }

    /// Certificates are read with the cluster's Secrets: the cluster's fingerprints cover them.
    fn observations(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}

/// Why a rate limit could not be recorded on the account Secret.
#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error("no ACME account to record it on")]
    NoAccount,
    #[error("writing the ACME account Secret: {0}")]
    Write(#[source] ProviderError),
}

/// What the certificate nodes of one apply share about the ACME account.
struct Shared {
    client: Mutex<Option<Arc<AcmeClient>>>,
    /// The account, to write the account Secret again with or without a rate limit.
    account: Mutex<Option<AccountSecret>>,
    /// The account Secret as the plan read it.
    account_secret: Option<J>,
    /// The rate limit in force (recorded by an earlier run or hit in this one).
    rate_limit: Mutex<Option<RateLimitBlock>>,
    secrets: Arc<dyn SecretStore>,
}

impl Shared {
    /// Writes the account Secret with `block` (or without any), and remembers it.
    async fn record(
        &self,
        namespace: &str,
        block: Option<RateLimitBlock>,
    ) -> Result<(), RecordError> {
        let account = self.account.lock().await.clone();
        *self.rate_limit.lock().await = block.clone();
        let Some(account) = account else {
            return Err(RecordError::NoAccount);
        };
        let manifest = crate::account_secret_manifest_with(namespace, &account, block.as_ref());
        self.secrets.put(manifest).await.map_err(RecordError::Write)
    }

    /// The ACME client of the account, made once per apply (the account is created and
    /// stored when there is none). A recorded rate limit that has passed is cleared then.
    async fn client(&self, settings: &CertSettings) -> Result<Arc<AcmeClient>, Failure> {
        let mut guard = self.client.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let (c, created) =
            AcmeClient::load_or_create(&settings.issuer, self.account_secret.as_ref())
                .await
                .map_err(|e| Failure::new(e.to_string()))?;
        if let Some(created) = created {
            let manifest = crate::account_secret_manifest(&settings.namespace, &created);
            self.secrets
                .put(manifest)
                .await
                .map_err(|e| Failure::new(format!("storing the ACME account: {e}")))?;
            *self.account.lock().await = Some(created);
        } else {
            let passed = self.rate_limit.lock().await.is_some();
            if passed {
                self.record(&settings.namespace, None)
                    .await
                    .map_err(|e| Failure::new(e.to_string()))?;
            }
        }
        let c = Arc::new(c);
        *guard = Some(c.clone());
        Ok(c)
    }
}

/// One certificate's step.
struct Step {
    id: ResourceId,
    settings: CertSettings,
    dns: Option<Arc<Backend>>,
    shared: Arc<Shared>,
    sandbox: bool,
    timeout: Duration,
}

impl Step {
    async fn run(self, emit: Emit) -> Result<(), Failure> {
        let issued = if self.sandbox {
            let ca =
                LocalCa::generate("cairn sandbox CA").map_err(|e| Failure::new(e.to_string()))?;
            ca.issue(
                &self.settings.names,
                SystemTime::now(),
                Duration::from_secs(90 * 86_400),
            )
            .map_err(|e| Failure::new(e.to_string()))?
        } else {
            self.issue(&emit).await?
        };
        let secret = crate::tls_secret_manifest(
            &self.settings.namespace,
            &self.settings.secret_name,
            &issued,
        );
        self.shared
            .secrets
            .put(secret)
            .await
            .map_err(|e| Failure::new(format!("storing the certificate: {e}")))
    }

    /// Issues through ACME, unless a recorded rate limit holds; a rate limit hit is recorded.
    async fn issue(&self, emit: &Emit) -> Result<crate::Issued, Failure> {
        let settings = &self.settings;
        let Some(dns) = &self.dns else {
            return Err(Failure::new(
                "certificates need a DNS provider for their DNS-01 challenges: set `dns:` in environment(...)",
            ));
        };
        let blocked = self
            .shared
            .rate_limit
            .lock()
            .await
            .clone()
            .filter(|b| b.is_active(SystemTime::now()));
        if let Some(block) = blocked {
            return Err(Failure::new(format!(
                "certificate {}: {}; cairn does not contact {} before then",
                settings.name,
                block.describe(),
                settings.issuer.directory
            )));
        }
        let acme = self.shared.client(settings).await?;
        emit(Event::Waiting {
            id: self.id.clone(),
            what: format!("DNS-01 validation by {}", settings.issuer.describe()),
        });
        match crate::issue(&acme, settings, dns.as_ref(), self.timeout).await {
            Ok(issued) => Ok(issued),
            Err(e) => Err(self.rate_limited(e).await),
        }
    }

    /// The failure of an issuance; a rate limit is recorded on the account Secret.
    async fn rate_limited(&self, e: AcmeError) -> Failure {
        let settings = &self.settings;
        let mut f = Failure::new(e.to_string());
        let Some(block) = RateLimitBlock::from_error(&e, &settings.names, SystemTime::now()) else {
            return f;
        };
        let until = block.until.clone();
        match self.shared.record(&settings.namespace, Some(block)).await {
            Ok(()) => f.details.push(format!(
                "recorded on Secret {}/{ACCOUNT_SECRET_NAME}: no run contacts the ACME server for it before {until}",
                settings.namespace
            )),
            Err(why) => f.details.push(format!(
                "cairn will not retry before {until}; the rate limit could not be recorded for the next runs: {why}"
            )),
        }
        f
    }
}
