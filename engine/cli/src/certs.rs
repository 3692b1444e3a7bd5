//! The certificate part of `plan` and `apply`: ACME DNS-01 issuance through `cairn-acme`, the
//! TLS Secrets written to the cluster, the local sandbox CA under `--sandbox`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cairn_acme::{AcmeClient, CertSettings, CertStatus, LocalCa};
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
    Ok(Some(CertPart {
        certs,
        sandbox,
        account,
        dns,
        environment: state.environment.name.clone(),
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
                format!(
                    "{} from {}",
                    c.status.describe(),
                    if part.sandbox {
                        cairn_acme::LOCAL_CA_DESCRIPTION.to_owned()
                    } else {
                        c.settings.issuer.describe()
                    }
                )
            });
            Change {
                id: c.id.clone(),
                action,
                fields: Vec::new(),
                reason,
            }
        })
        .collect()
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

/// One node per certificate to issue or renew: DNS-01 challenge, issuance, TLS Secret.
pub fn nodes(part: &CertPart, cluster: &Cluster, timeout: Duration) -> Vec<Node> {
    let client: Arc<Mutex<Option<Arc<AcmeClient>>>> = Arc::default();
    let account = Arc::new(part.account.clone());
    part.certs
        .iter()
        .filter(|c| c.status.action != cairn_acme::Action::NoChange)
        .map(|c| {
            let (settings, cluster, dns, client, account) = (c.settings.clone(), cluster.clone(), part.dns.clone(), client.clone(), account.clone());
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
                            let acme = {
                                let mut guard = client.lock().await;
                                match guard.as_ref() {
                                    Some(c) => c.clone(),
                                    None => {
                                        let (c, created) = AcmeClient::load_or_create(&settings.issuer, account.as_ref().as_ref()).await.map_err(|e| Failure::new(e.to_string()))?;
                                        if let Some(created) = created {
                                            let manifest = with_environment_label(cairn_acme::account_secret_manifest(&settings.namespace, &created), &env);
                                            cluster.apply_object(&manifest).await.map_err(|e| Failure::new(format!("storing the ACME account: {e}")))?;
                                        }
                                        let c = Arc::new(c);
                                        *guard = Some(c.clone());
                                        c
                                    }
                                }
                            };
                            emit(Event::Waiting { id: id.clone(), what: format!("DNS-01 validation by {}", settings.issuer.describe()) });
                            cairn_acme::issue(&acme, &settings, dns.as_ref(), timeout).await.map_err(|e| {
                                let mut f = Failure::new(e.to_string());
                                if let Some(wait) = e.retry_after() {
                                    f.details.push(format!("the issuer asks to retry after {}s; cairn will not retry before", wait.as_secs()));
                                }
                                f
                            })?
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
