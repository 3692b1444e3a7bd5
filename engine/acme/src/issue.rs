//! DNS-01 issuance: order, challenge records through the DNS provider, validation,
//! finalization, download; the challenge records are removed afterwards, also on failure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use cairn_dns::{DnsBackend, DnsError, PlanOptions, RecordKey, RecordSet, RecordType, plan};
use instant_acme::{
    AuthorizationStatus, ChallengeStatus, ChallengeType, Identifier, NewOrder, OrderStatus,
    RetryPolicy,
};
use rcgen::{CertificateParams, DistinguishedName, KeyPair, PKCS_ECDSA_P256_SHA256};

use crate::cert::read_leaf;
use crate::client::{NONCE_RETRIES, is_bad_nonce, nonce_retry};
use crate::{AcmeClient, AcmeError, CertSettings};

/// The owner written in the ownership records of challenge records (the DNS provider's
/// "environment"): challenge records are never confused with an environment's records.
pub const CHALLENGE_OWNER: &str = "acme-challenge";
/// The TTL of challenge records.
pub const CHALLENGE_TTL: u32 = 60;
/// How long the removal of challenge records may take.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

/// An issued certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// The chain, leaf first (PEM).
    pub cert_chain_pem: String,
    /// The leaf's private key (PKCS#8 PEM). Never printed (`Debug` is redacted).
    pub private_key_pem: String,
    /// The leaf's notAfter.
    pub not_after: SystemTime,
    /// The names it was issued for (normalized, sorted).
    pub names: Vec<String>,
    /// Who issued it: the directory URL, or [`crate::LOCAL_CA_DESCRIPTION`].
    pub issuer: String,
    /// Things to know that did not stop issuance (challenge records left behind…).
    pub warnings: Vec<String>,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("names", &self.names)
            .field("not_after", &crate::cert::rfc3339(self.not_after))
            .field("issuer", &self.issuer)
            .field(
                "cert_chain_pem",
                &format_args!("<{} bytes>", self.cert_chain_pem.len()),
            )
            .field("private_key_pem", &format_args!("<redacted>"))
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// The name of the DNS-01 record of a certificate name (`*.example.com` and `example.com`
/// share `_acme-challenge.example.com`).
pub fn challenge_name(name: &str) -> String {
    format!(
        "_acme-challenge.{}",
        name.strip_prefix("*.").unwrap_or(name)
    )
}

fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}"))
}

fn challenge_plan_options() -> PlanOptions {
    PlanOptions {
        owner: Some(CHALLENGE_OWNER.to_owned()),
        // Only the challenge record sets of this order are ever changed (see `change_only`).
        delete_threshold_percent: 100,
        force: false,
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

fn dns_error(zone: &str) -> impl Fn(DnsError) -> AcmeError + '_ {
    move |source| AcmeError::Dns {
        zone: zone.to_owned(),
        source,
    }
}

/// Makes the zone hold exactly `records` at their names (`records` empty: removes the record
/// sets `keys`), changing nothing else; then checks what the server answers.
async fn converge_challenges<B: DnsBackend>(
    dns: &B,
    keys: &[RecordKey],
    records: &[RecordSet],
    timeout: Duration,
) -> Result<(), AcmeError> {
    let zone = dns.zone().to_owned();
    let live = dns.read_zone(keys).await.map_err(dns_error(&zone))?;
    let mut p = plan(records, &live, &challenge_plan_options()).map_err(dns_error(&zone))?;
    // The plan also deletes challenge records of other orders (it sees the whole zone): keep
    // only this order's.
    p.changes.retain(|c| keys.contains(&c.key));
    if !p.changes.is_empty() {
        let report = dns
            .apply_changes(&p, timeout)
            .await
            .map_err(dns_error(&zone))?;
        if !report.is_complete() {
            let what: Vec<String> = report
                .ignored
                .iter()
                .map(|i| i.change.to_string())
                .collect();
            return Err(AcmeError::NotPropagated {
                zone,
                detail: format!("the server accepted but ignored {}", what.join(", ")),
            });
        }
    }
    // What the authoritative server answers now.
    let live = dns.read_zone(keys).await.map_err(dns_error(&zone))?;
    for key in keys {
        let want = records.iter().find(|r| &r.key() == key);
        let got = live.get(key);
        let ok = match (want, got) {
            (Some(w), Some(g)) => w.values.iter().all(|v| g.values.contains(v)),
            (Some(_), None) => false,
            (None, got) => got.is_none(),
        };
        if !ok {
            return Err(AcmeError::NotPropagated {
                zone,
                detail: match want {
                    Some(_) => format!("{key} does not hold the challenge value"),
                    None => format!("{key} is still answered after its removal"),
                },
            });
        }
    }
    Ok(())
}

/// Removes the challenge record sets `keys` written for an order (and their ownership records).
pub async fn remove_challenge_records<B: DnsBackend>(
    dns: &B,
    keys: &[RecordKey],
) -> Result<(), AcmeError> {
    match tokio::time::timeout(
        CLEANUP_TIMEOUT,
        converge_challenges(dns, keys, &[], CLEANUP_TIMEOUT),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(AcmeError::Timeout {
            step: "remove the challenge records".into(),
            after: CLEANUP_TIMEOUT,
        }),
    }
}

struct Progress {
    step: &'static str,
    written: Vec<RecordKey>,
}

/// Issues a certificate for `desired.names` by DNS-01 through `dns` (every name, wildcards
/// included, must be in its zone), within `timeout`.
///
/// The challenge TXT records (`_acme-challenge.<name>`, owned by [`CHALLENGE_OWNER`]) are
/// written through the DNS provider and checked at the authoritative server before the ACME
/// server is asked to validate; they are removed afterwards whatever happened (a failed
/// removal after a successful issuance becomes a warning of [`Issued`]). Rejected nonces are
/// retried; a rate-limit answer stops at once with its Retry-After, and the client sends
/// nothing more until it has passed.
pub async fn issue<B: DnsBackend>(
    client: &AcmeClient,
    desired: &CertSettings,
    dns: &B,
    timeout: Duration,
) -> Result<Issued, AcmeError> {
    client.check_not_blocked()?;
    let zone = dns.zone().to_owned();
    let names = crate::settings::normalize_names(&desired.names)?;
    for n in &names {
        if !in_zone(n.strip_prefix("*.").unwrap_or(n), &zone) {
            return Err(AcmeError::OutsideZone {
                name: n.clone(),
                zone,
            });
        }
    }
    let mut progress = Progress {
        step: "create the order",
        written: Vec::new(),
    };
    let deadline = Instant::now() + timeout;
    let result = match tokio::time::timeout(
        timeout,
        run(client, &names, dns, deadline, &mut progress),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(AcmeError::Timeout {
            step: progress.step.to_owned(),
            after: timeout,
        }),
    };
    let result = result.map_err(|e| match e {
        AcmeError::Timeout { step, .. } => AcmeError::Timeout {
            step,
            after: timeout,
        },
        other => other,
    });
    let cleanup = if progress.written.is_empty() {
        Ok(())
    } else {
        remove_challenge_records(dns, &progress.written).await
    };
    match (result, cleanup) {
        (Ok(issued), Ok(())) => Ok(issued),
        (Ok(mut issued), Err(e)) => {
            issued
                .warnings
                .push(format!("the challenge records could not be removed: {e}"));
            Ok(issued)
        }
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(c)) => Err(AcmeError::CleanupFailed {
            error: Box::new(e),
            cleanup: c.to_string(),
        }),
    }
}

async fn run<B: DnsBackend>(
    client: &AcmeClient,
    names: &[String],
    dns: &B,
    deadline: Instant,
    progress: &mut Progress,
) -> Result<Issued, AcmeError> {
    let identifiers: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
    progress.step = "create the order";
    let mut order = nonce_retry!(client.account.new_order(&NewOrder::new(&identifiers)).await)
        .map_err(|e| client.error("create the order", e))?;

    progress.step = "read the authorizations";
    let challenges = read_challenges(client, &mut order).await?;
    if !challenges.is_empty() {
        progress.step = "write the challenge records";
        write_challenges(dns, &challenges, deadline, progress).await?;
        progress.step = "request validation";
        request_validation(client, &mut order).await?;
    }

    progress.step = "validate the challenges";
    await_ready(client, &mut order, deadline).await?;

    progress.step = "finalize the order";
    let key = finalize(client, &mut order, names).await?;

    progress.step = "download the certificate";
    let poll = RetryPolicy::new()
        .initial_delay(Duration::from_millis(200))
        .backoff(1.5)
        .timeout(remaining(deadline));
    let chain = nonce_retry!(order.poll_certificate(&poll).await)
        .map_err(|e| client.error("download the certificate", e))?;
    let leaf = read_leaf(chain.as_bytes())?;
    Ok(Issued {
        cert_chain_pem: chain,
        private_key_pem: key.serialize_pem(),
        not_after: leaf.not_after,
        names: names.to_vec(),
        issuer: client.directory.clone(),
        warnings: Vec::new(),
    })
}

/// The challenges to answer, of the pending authorizations: (name, record name, value).
async fn read_challenges(
    client: &AcmeClient,
    order: &mut instant_acme::Order,
) -> Result<Vec<(String, String, String)>, AcmeError> {
    let mut attempt = 0;
    loop {
        let mut out: Vec<(String, String, String)> = Vec::new();
        let mut failure = None;
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut authz = match a {
                Ok(a) => a,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            let ident = authz.identifier().to_string();
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(AcmeError::Validation {
                        failures: vec![format!("{ident}: the authorization is {other:?}")],
                    });
                }
            }
            let Some(ch) = authz.challenge(ChallengeType::Dns01) else {
                return Err(AcmeError::Server {
                    directory: client.directory.clone(),
                    step: "read the authorizations".into(),
                    detail: format!("no dns-01 challenge is offered for {ident}"),
                    problem_type: None,
                });
            };
            out.push((
                ident.clone(),
                challenge_name(&ident),
                ch.key_authorization().dns_value(),
            ));
        }
        match failure {
            None => return Ok(out),
            Some(e) if is_bad_nonce(&e) && attempt < NONCE_RETRIES => attempt += 1,
            Some(e) => return Err(client.error("read the authorizations", e)),
        }
    }
}

/// Writes the TXT records of the challenges (one record set per name) and waits until the
/// zone serves them; they are in `progress.written` from before the write, for the cleanup.
async fn write_challenges<B: DnsBackend>(
    dns: &B,
    challenges: &[(String, String, String)],
    deadline: Instant,
    progress: &mut Progress,
) -> Result<(), AcmeError> {
    let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (_, rname, value) in challenges {
        by_name.entry(rname).or_default().push(value);
    }
    let zone = dns.zone().to_owned();
    let records: Vec<RecordSet> = by_name
        .iter()
        .map(|(n, v)| RecordSet::new(n, RecordType::Txt, CHALLENGE_TTL, v))
        .collect::<Result<_, _>>()
        .map_err(dns_error(&zone))?;
    let keys: Vec<RecordKey> = records.iter().map(RecordSet::key).collect();
    progress.written = keys.clone();
    converge_challenges(dns, &keys, &records, remaining(deadline)).await
}

/// Tells the server that each pending dns-01 challenge is ready, once each (a retry after a
/// bad nonce skips those already told).
async fn request_validation(
    client: &AcmeClient,
    order: &mut instant_acme::Order,
) -> Result<(), AcmeError> {
    let mut readied: BTreeSet<String> = BTreeSet::new();
    let mut attempt = 0;
    loop {
        let mut failure = None;
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut authz = match a {
                Ok(a) => a,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            if authz.status != AuthorizationStatus::Pending {
                continue;
            }
            let Some(mut ch) = authz.challenge(ChallengeType::Dns01) else {
                continue;
            };
            if ch.status != ChallengeStatus::Pending || readied.contains(&ch.url) {
                continue;
            }
            let url = ch.url.clone();
            match ch.set_ready().await {
                Ok(()) => {
                    readied.insert(url);
                }
                // The server may validate at once and answer with the failed validation
                // (Pebble does when another authorization already failed the order): that
                // is a validation failure, explained from the order below.
                Err(instant_acme::Error::Api(p))
                    if !matches!(
                        p.r#type.as_deref(),
                        Some("urn:ietf:params:acme:error:badNonce")
                            | Some("urn:ietf:params:acme:error:rateLimited")
                    ) =>
                {
                    readied.insert(url);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        match failure {
            None => return Ok(()),
            Some(e) if is_bad_nonce(&e) && attempt < NONCE_RETRIES => attempt += 1,
            Some(e) => return Err(client.error("request validation", e)),
        }
    }
}

/// Polls the order until it is ready; an invalid one fails with its authorizations' errors.
async fn await_ready(
    client: &AcmeClient,
    order: &mut instant_acme::Order,
    deadline: Instant,
) -> Result<(), AcmeError> {
    let poll = RetryPolicy::new()
        .initial_delay(Duration::from_millis(200))
        .backoff(1.5)
        .timeout(remaining(deadline));
    let status = match nonce_retry!(order.poll_ready(&poll).await) {
        Ok(status) => status,
        // An order made invalid by its authorizations comes back as its problem document.
        Err(instant_acme::Error::Api(p))
            if order.state().status == OrderStatus::Invalid
                && p.r#type.as_deref() != Some("urn:ietf:params:acme:error:rateLimited") =>
        {
            OrderStatus::Invalid
        }
        Err(e) => return Err(client.error("validate the challenges", e)),
    };
    if status != OrderStatus::Ready {
        return Err(validation_failures(client, order).await);
    }
    Ok(())
}

/// Finalizes the order with a request for a new P-256 key, which it returns.
async fn finalize(
    client: &AcmeClient,
    order: &mut instant_acme::Order,
    names: &[String],
) -> Result<KeyPair, AcmeError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| AcmeError::Certificate(format!("the certificate's key: {e}")))?;
    let mut params = CertificateParams::new(names.to_vec())
        .map_err(|e| AcmeError::Certificate(format!("the certificate request: {e}")))?;
    params.distinguished_name = DistinguishedName::new();
    let csr = params
        .serialize_request(&key)
        .map_err(|e| AcmeError::Certificate(format!("the certificate request: {e}")))?;
    nonce_retry!(order.finalize_csr(csr.der()).await)
        .map_err(|e| client.error("finalize the order", e))?;
    Ok(key)
}

/// Why an order became invalid: each authorization's state and its challenge's error.
async fn validation_failures(client: &AcmeClient, order: &mut instant_acme::Order) -> AcmeError {
    let mut failures = Vec::new();
    let mut authzs = order.authorizations();
    while let Some(a) = authzs.next().await {
        let Ok(mut authz) = a else { continue };
        let _ = nonce_retry!(authz.refresh().await.map(|_| ()));
        if authz.status == AuthorizationStatus::Valid {
            continue;
        }
        let ident = authz.identifier().to_string();
        let detail = authz
            .challenges
            .iter()
            .find(|c| c.r#type == ChallengeType::Dns01)
            .and_then(|c| c.error.as_ref())
            .map_or_else(
                || format!("the authorization is {:?}", authz.status),
                |p| p.detail.clone().unwrap_or_else(|| p.to_string()),
            );
        failures.push(format!("{ident}: {detail}"));
    }
    if failures.is_empty() {
        failures.push(format!(
            "the order at {} became invalid without a reason",
            client.directory
        ));
    }
    AcmeError::Validation { failures }
}
