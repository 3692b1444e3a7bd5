//! The certificate part of `plan` and `apply`: ACME DNS-01 issuance through `cairn-acme`, the
//! TLS Secrets written to the cluster, the local sandbox CA under `--sandbox`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cairn_acme::{AccountSecret, AcmeClient, CertSettings, CertStatus, LocalCa, RateLimitBlock};
use cairn_apply::{Emit, Event, Failure, Node};
use cairn_dns::{Backend, DnsSettings};
use cairn_kube::{Cluster, KubePlan};
use cairn_model::{DesiredState, Provider, ResourceId};
use cairn_plan::plan::{Action, Change};
use serde_json::Value as J;
use tokio::sync::Mutex;

/// One declared certificate and what the plan found.
pub struct Cert {
    pub id: ResourceId,
    pub settings: CertSettings,
    pub status: CertStatus,
    pub depends_on: Vec<ResourceId>,
}

/// The environment's certificates.
pub struct CertPart {
    pub certs: Vec<Cert>,
    pub sandbox: bool,
    /// The ACME account Secret as it is in the cluster, if any.
    pub account: Option<J>,
    /// Where challenge records go.
    pub dns: Option<Arc<Backend>>,
    pub environment: String,
    /// The rate limit recorded on the account Secret by an earlier run, if any.
    pub rate_limit: Option<RateLimitBlock>,
}

/// Inspects the TLS Secret of every declared certificate (read by the Kubernetes plan's
/// Secret LIST); `None` when the environment declares no certificate.
pub fn plan(
    state: &DesiredState,
    kube: &KubePlan,
    dns: Option<Arc<Backend>>,
    sandbox: bool,
) -> Result<Option<CertPart>, String> {
    let resources: Vec<_> = state
        .resources
        .iter()
        .filter(|r| r.id.provider == Provider::Acme && r.id.kind == "Certificate")
        .collect();
    if resources.is_empty() {
        return Ok(None);
    }
    let now = SystemTime::now();
    let mut certs = Vec::new();
    let mut account = None;
    for r in resources {
        let settings = CertSettings::from_resource(r)
            .map_err(|e| format!("certificate {}: {e}", r.id.name))?;
        let secret = kube.live(&ResourceId::kube(
            "Secret",
            Some(&settings.namespace),
            &settings.secret_name,
        ));
        let status = cairn_acme::inspect(secret, &settings, now, settings.renew_before_days);
        if account.is_none() {
            account = kube
                .live(&ResourceId::kube(
                    "Secret",
                    Some(&settings.namespace),
                    cairn_kube::ACME_ACCOUNT_SECRET,
                ))
                .cloned();
        }
        certs.push(Cert {
            id: r.id.clone(),
            settings,
            status,
            depends_on: r.depends_on.clone(),
        });
    }
    let dns = match (dns, sandbox) {
        (Some(d), _) => Some(d),
        (None, true) => None,
        (None, false) => match state.environment.providers.get("dns") {
            Some(settings) => {
                let settings = DnsSettings::from_settings(settings)
                    .map_err(|e| format!("DNS settings: {e}"))?;
                Some(Arc::new(
                    Backend::from_settings(&settings, false).map_err(|e| e.to_string())?,
                ))
            }
            None => None,
        },
    };
    let rate_limit = account
        .as_ref()
        .and_then(RateLimitBlock::from_account_secret);
    Ok(Some(CertPart {
        certs,
        sandbox,
        account,
        dns,
        environment: state.environment.name.clone(),
        rate_limit,
    }))
}

/// The plan's certificate lines.
pub fn changes(part: &CertPart) -> Vec<Change> {
    part.certs
        .iter()
        .map(|c| {
            let action = match &c.status.action {
                cairn_acme::Action::NoChange => Action::NoOp,
                cairn_acme::Action::Issue(cairn_acme::IssueReason::Missing) => Action::Create,
                cairn_acme::Action::Issue(_) => Action::Update,
            };
            let reason = (action != Action::NoOp).then(|| {
                let mut r = format!(
                    "{} from {}",
                    c.status.describe(),
                    if part.sandbox {
                        cairn_acme::LOCAL_CA_DESCRIPTION.to_owned()
                    } else {
                        c.settings.issuer.describe()
                    }
                );
                if let Some(block) = active_block(part) {
                    r.push_str("; ");
                    r.push_str(&block.describe());
                }
                r
            });
            Change {
                id: c.id.clone(),
                action,
                fields: Vec::new(),
                reason,
                holds_data: false,
                help: None,
                server_message: None,
                declared_at: None,
            }
        })
        .collect()
}

/// The rate limit recorded by an earlier run, while it holds (never under `--sandbox`).
fn active_block(part: &CertPart) -> Option<&RateLimitBlock> {
    part.rate_limit
        .as_ref()
        .filter(|b| !part.sandbox && b.is_active(SystemTime::now()))
}

/// Plan notes: `certificate X: blocked by the ACME rate limit until T (reason)` for every
/// certificate to issue while a recorded rate limit holds.
pub fn notes(part: &CertPart) -> Vec<String> {
    let Some(block) = active_block(part) else {
        return Vec::new();
    };
    part.certs
        .iter()
        .filter(|c| c.status.action != cairn_acme::Action::NoChange)
        .map(|c| format!("certificate {}: {}", c.settings.name, block.describe()))
        .collect()
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
}

impl Shared {
    /// Writes the account Secret with `block` (or without any), and remembers it.
    async fn record(
        &self,
        cluster: &Cluster,
        namespace: &str,
        env: &str,
        block: Option<RateLimitBlock>,
    ) -> Result<(), String> {
        let account = self.account.lock().await.clone();
        *self.rate_limit.lock().await = block.clone();
        let Some(account) = account else {
            return Err("no ACME account to record it on".to_owned());
        };
        let manifest = with_environment_label(
            cairn_acme::account_secret_manifest_with(namespace, &account, block.as_ref()),
            env,
        );
        cluster
            .apply_object(&manifest)
            .await
            .map_err(|e| format!("writing the ACME account Secret: {e}"))
    }
}

/// The ACME client of the account, made once per apply (the account is created and stored
/// when there is none). A recorded rate limit that has passed is cleared then.
async fn acme_client(
    shared: &Shared,
    settings: &CertSettings,
    cluster: &Cluster,
    env: &str,
) -> Result<Arc<AcmeClient>, Failure> {
    let mut guard = shared.client.lock().await;
    if let Some(c) = guard.as_ref() {
        return Ok(c.clone());
    }
    let (c, created) = AcmeClient::load_or_create(&settings.issuer, shared.account_secret.as_ref())
        .await
        .map_err(|e| Failure::new(e.to_string()))?;
    if let Some(created) = created {
        let manifest = with_environment_label(
            cairn_acme::account_secret_manifest(&settings.namespace, &created),
            env,
        );
        cluster
            .apply_object(&manifest)
            .await
            .map_err(|e| Failure::new(format!("storing the ACME account: {e}")))?;
        *shared.account.lock().await = Some(created);
    } else {
        let passed = shared.rate_limit.lock().await.is_some();
        if passed {
            shared
                .record(cluster, &settings.namespace, env, None)
                .await
                .map_err(Failure::new)?;
        }
    }
    let c = Arc::new(c);
    *guard = Some(c.clone());
    Ok(c)
}

fn with_environment_label(mut body: J, env: &str) -> J {
    if let Some(labels) = body
        .pointer_mut("/metadata/labels")
        .and_then(J::as_object_mut)
    {
        labels.insert("cairn.dev/environment".into(), J::String(env.to_owned()));
        labels.insert(
            "app.kubernetes.io/managed-by".into(),
            J::String("cairn".to_owned()),
        );
    }
    body
}

/// One node per certificate to issue or renew: DNS-01 challenge, issuance, TLS Secret. While a
/// rate limit recorded on the account Secret holds, a node fails at once without contacting
/// the ACME server; a rate limit hit here is recorded there for the next runs.
pub fn nodes(part: &CertPart, cluster: &Cluster, timeout: Duration) -> Vec<Node> {
    let shared = Arc::new(Shared {
        client: Mutex::new(None),
        account: Mutex::new(
            part.account
                .as_ref()
                .and_then(|a| AccountSecret::from_secret(a).ok()),
        ),
        account_secret: part.account.clone(),
        rate_limit: Mutex::new(part.rate_limit.clone()),
    });
    part.certs
        .iter()
        .filter(|c| c.status.action != cairn_acme::Action::NoChange)
        .map(|c| {
            let (settings, cluster, dns, shared) = (c.settings.clone(), cluster.clone(), part.dns.clone(), shared.clone());
            let (sandbox, env, id) = (part.sandbox, part.environment.clone(), c.id.clone());
            Node {
                id: c.id.clone(),
                action: if c.status.action == cairn_acme::Action::Issue(cairn_acme::IssueReason::Missing) { Action::Create } else { Action::Update },
                depends_on: c.depends_on.clone(),
                work: Box::new(move |emit: Emit| {
                    Box::pin(async move {
                        let issued = if sandbox {
                            let ca = LocalCa::generate("cairn sandbox CA").map_err(|e| Failure::new(e.to_string()))?;
                            ca.issue(&settings.names, SystemTime::now(), Duration::from_secs(90 * 86_400)).map_err(|e| Failure::new(e.to_string()))?
                        } else {
                            let Some(dns) = dns else {
                                return Err(Failure::new("certificates need a DNS provider for their DNS-01 challenges: set `dns:` in environment(...)"));
                            };
                            let blocked = shared.rate_limit.lock().await.clone().filter(|b| b.is_active(SystemTime::now()));
                            if let Some(block) = blocked {
                                return Err(Failure::new(format!(
                                    "certificate {}: {}; cairn does not contact {} before then",
                                    settings.name,
                                    block.describe(),
                                    settings.issuer.directory
                                )));
                            }
                            let acme = acme_client(&shared, &settings, &cluster, &env).await?;
                            emit(Event::Waiting { id: id.clone(), what: format!("DNS-01 validation by {}", settings.issuer.describe()) });
                            match cairn_acme::issue(&acme, &settings, dns.as_ref(), timeout).await {
                                Ok(issued) => issued,
                                Err(e) => {
                                    let mut f = Failure::new(e.to_string());
                                    if let Some(block) = RateLimitBlock::from_error(&e, &settings.names, SystemTime::now()) {
                                        let until = block.until.clone();
                                        match shared.record(&cluster, &settings.namespace, &env, Some(block)).await {
                                            Ok(()) => f.details.push(format!("recorded on Secret {}/{}: no run contacts the ACME server for it before {until}", settings.namespace, cairn_kube::ACME_ACCOUNT_SECRET)),
                                            Err(why) => f.details.push(format!("cairn will not retry before {until}; the rate limit could not be recorded for the next runs: {why}")),
                                        }
                                    }
                                    return Err(f);
                                }
                            }
                        };
                        let secret = with_environment_label(cairn_acme::tls_secret_manifest(&settings.namespace, &settings.secret_name, &issued), &env);
                        cluster.apply_object(&secret).await.map_err(|e| Failure::new(format!("storing the certificate: {e}")))?;
                        Ok(())
                    })
                }),
            }
        })
        .collect()
}
