//! The ACME account and the HTTP client under it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, StatusCode};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AccountCredentials, BodyWrapper, BytesResponse, HttpClient, NewAccount,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::{Value, json};

use crate::secret::MANAGED_BY;
use crate::{AcmeError, IssuerConfig};

/// The key of the account Secret that holds the account (instant-acme's credentials, JSON).
pub const ACCOUNT_SECRET_KEY: &str = "account.json";
/// The default name of the account Secret.
pub const ACCOUNT_SECRET_NAME: &str = "cairn-acme-account";
/// Annotation of the account Secret: the directory the account belongs to.
pub const ANNOTATION_DIRECTORY: &str = "cairn.dev/acme-directory";

/// How many times a request refused with `badNonce` is sent again (on top of instant-acme's
/// own two retries).
pub(crate) const NONCE_RETRIES: u32 = 8;

/// An ACME account's credentials (its id, private key and directory) as JSON: the data the
/// engine keeps in a Kubernetes Secret. Never printed (`Debug` is redacted).
#[derive(Clone, PartialEq, Eq)]
pub struct AccountSecret {
    json: String,
}

impl fmt::Debug for AccountSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountSecret(<redacted>)")
    }
}

impl AccountSecret {
    /// From the JSON text stored earlier.
    pub fn from_json(json: &str) -> Result<AccountSecret, AcmeError> {
        let creds: AccountCredentials = serde_json::from_str(json)
            .map_err(|e| AcmeError::Account(format!("the stored account cannot be read: {e}")))?;
        Self::from_credentials(&creds)
    }

    fn from_credentials(creds: &AccountCredentials) -> Result<AccountSecret, AcmeError> {
        serde_json::to_string(creds)
            .map(|json| AccountSecret { json })
            .map_err(|e| AcmeError::Account(format!("the account cannot be serialized: {e}")))
    }

    /// The JSON text to store (secret: it holds the account's private key).
    pub fn to_json(&self) -> &str {
        &self.json
    }

    /// The directory URL the account was created on, when recorded.
    pub fn directory(&self) -> Option<String> {
        serde_json::from_str::<Value>(&self.json)
            .ok()?
            .get("directory")?
            .as_str()
            .map(str::to_owned)
    }

    fn credentials(&self) -> Result<AccountCredentials, AcmeError> {
        serde_json::from_str(&self.json)
            .map_err(|e| AcmeError::Account(format!("the stored account cannot be read: {e}")))
    }

    /// Reads the account from an account Secret as the API returns it (base64 in `data`).
    pub fn from_secret(secret: &Value) -> Result<AccountSecret, AcmeError> {
        let data = secret
            .get("data")
            .and_then(|d| d.get(ACCOUNT_SECRET_KEY))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                AcmeError::Account(format!("the account Secret has no `{ACCOUNT_SECRET_KEY}`"))
            })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|_| AcmeError::Account(format!("`{ACCOUNT_SECRET_KEY}` is not base64")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| AcmeError::Account(format!("`{ACCOUNT_SECRET_KEY}` is not UTF-8")))?;
        AccountSecret::from_json(&text)
    }
}

/// The Secret that keeps the ACME account (`data."account.json"`, base64), labelled as managed
/// by cairn and annotated with the directory. The key is in the returned body only.
pub fn account_secret_manifest(namespace: &str, account: &AccountSecret) -> Value {
    account_secret_manifest_with(namespace, account, None)
}

/// [`account_secret_manifest`] with a rate limit to remember
/// ([`crate::ANNOTATION_RATE_LIMIT`]); without one, applying it removes a recorded block.
pub fn account_secret_manifest_with(
    namespace: &str,
    account: &AccountSecret,
    rate_limit: Option<&crate::RateLimitBlock>,
) -> Value {
    let mut annotations = serde_json::Map::new();
    if let Some(dir) = account.directory() {
        annotations.insert(ANNOTATION_DIRECTORY.to_owned(), Value::String(dir));
    }
    if let Some(block) = rate_limit {
        annotations.insert(
            crate::ANNOTATION_RATE_LIMIT.to_owned(),
            Value::String(block.to_annotation()),
        );
    }
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": ACCOUNT_SECRET_NAME,
            "namespace": namespace,
            "labels": { MANAGED_BY.0: MANAGED_BY.1 },
            "annotations": annotations,
        },
        "type": "Opaque",
        "data": {
            ACCOUNT_SECRET_KEY: base64::engine::general_purpose::STANDARD.encode(account.to_json()),
        },
    })
}

type Inner = HyperClient<hyper_rustls::HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>;

/// What the HTTP layer saw: requests sent, and the last rate-limit answer's Retry-After.
#[derive(Default)]
pub(crate) struct HttpLog {
    requests: AtomicUsize,
    retry_after: Mutex<Option<Option<Duration>>>,
}

impl HttpLog {
    pub(crate) fn take_retry_after(&self) -> Option<Duration> {
        self.retry_after
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .flatten()
    }
}

/// The HTTP client handed to instant-acme: hyper + rustls (ring), recording Retry-After.
struct RecordingClient {
    inner: Inner,
    log: Arc<HttpLog>,
}

fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

impl HttpClient for RecordingClient {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        self.log.requests.fetch_add(1, Ordering::Relaxed);
        let fut = HttpClient::request(&self.inner, req);
        let log = self.log.clone();
        Box::pin(async move {
            let rsp = fut.await?;
            let status = rsp.parts.status;
            if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
            {
                let after = rsp
                    .parts
                    .headers
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                *log.retry_after
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(after);
            }
            Ok(rsp)
        })
    }
}

fn http_client(issuer: &IssuerConfig, log: Arc<HttpLog>) -> Result<RecordingClient, AcmeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = match &issuer.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                AcmeError::Settings(format!("the ACME CA file {}: {e}", path.display()))
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| {
                    AcmeError::Settings(format!("the ACME CA file {}: {e}", path.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    AcmeError::Settings(format!("the ACME CA file {}: {e}", path.display()))
                })?;
            }
            if roots.is_empty() {
                return Err(AcmeError::Settings(format!(
                    "the ACME CA file {} holds no certificate",
                    path.display()
                )));
            }
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| AcmeError::Settings(format!("TLS: {e}")))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            HttpsConnectorBuilder::new().with_tls_config(config)
        }
        None => HttpsConnectorBuilder::new()
            .with_provider_and_platform_verifier(provider)
            .map_err(|e| AcmeError::Settings(format!("TLS with the platform's roots: {e}")))?,
    };
    let connector = builder.https_only().enable_http1().enable_http2().build();
    Ok(RecordingClient {
        inner: HyperClient::builder(TokioExecutor::new()).build(connector),
        log,
    })
}

/// An ACME account on one directory, ready to order certificates.
pub struct AcmeClient {
    pub(crate) account: Account,
    pub(crate) directory: String,
    pub(crate) log: Arc<HttpLog>,
    blocked_until: Mutex<Option<SystemTime>>,
}

impl fmt::Debug for AcmeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcmeClient")
            .field("directory", &self.directory)
            .finish_non_exhaustive()
    }
}

/// Whether an instant-acme error is a rejected nonce (sent again with a fresh one).
pub(crate) fn is_bad_nonce(e: &instant_acme::Error) -> bool {
    matches!(e, instant_acme::Error::Api(p)
        if p.r#type.as_deref() == Some("urn:ietf:params:acme:error:badNonce"))
}

/// Runs an ACME request again while the server rejects its nonce.
macro_rules! nonce_retry {
    ($e:expr) => {{
        let mut attempt = 0u32;
        loop {
            match $e {
                Err(err)
                    if $crate::client::is_bad_nonce(&err)
                        && attempt < $crate::client::NONCE_RETRIES =>
                {
                    attempt += 1;
                }
                other => break other,
            }
        }
    }};
}
pub(crate) use nonce_retry;

impl AcmeClient {
    fn new(account: Account, directory: &str, log: Arc<HttpLog>) -> AcmeClient {
        AcmeClient {
            account,
            directory: directory.to_owned(),
            log,
            blocked_until: Mutex::new(None),
        }
    }

    /// Registers a new account on the issuer's directory (terms of service agreed, the email
    /// as contact). Returns the client and the account to store.
    pub async fn create_account(
        issuer: &IssuerConfig,
    ) -> Result<(AcmeClient, AccountSecret), AcmeError> {
        let log = Arc::new(HttpLog::default());
        let contact = issuer.email.as_ref().map(|e| format!("mailto:{e}"));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let new = NewAccount {
            contact: &contacts,
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        let (account, creds) = nonce_retry!(
            Account::builder_with_http(Box::new(http_client(issuer, log.clone())?))
                .create(&new, issuer.directory.clone(), None)
                .await
        )
        .map_err(|e| map_error(&issuer.directory, "create the account", e, &log))?;
        let secret = AccountSecret::from_credentials(&creds)?;
        Ok((AcmeClient::new(account, &issuer.directory, log), secret))
    }

    /// Restores a stored account (no request but the directory's).
    pub async fn load_account(
        issuer: &IssuerConfig,
        account: &AccountSecret,
    ) -> Result<AcmeClient, AcmeError> {
        if let Some(dir) = account.directory()
            && dir != issuer.directory
        {
            return Err(AcmeError::Account(format!(
                "the stored account belongs to {dir}, not to {}",
                issuer.directory
            )));
        }
        let log = Arc::new(HttpLog::default());
        let acc = Account::builder_with_http(Box::new(http_client(issuer, log.clone())?))
            .from_credentials(account.credentials()?)
            .await
            .map_err(|e| map_error(&issuer.directory, "read the directory", e, &log))?;
        Ok(AcmeClient::new(acc, &issuer.directory, log))
    }

    /// The account stored in `existing_secret` (an account Secret as the API returns it) when
    /// it belongs to this directory; otherwise a new account, returned to be stored.
    pub async fn load_or_create(
        issuer: &IssuerConfig,
        existing_secret: Option<&Value>,
    ) -> Result<(AcmeClient, Option<AccountSecret>), AcmeError> {
        if let Some(secret) = existing_secret {
            let account = AccountSecret::from_secret(secret)?;
            if account.directory().is_none_or(|d| d == issuer.directory) {
                return Ok((AcmeClient::load_account(issuer, &account).await?, None));
            }
        }
        let (client, account) = AcmeClient::create_account(issuer).await?;
        Ok((client, Some(account)))
    }

    /// The directory URL.
    pub fn directory(&self) -> &str {
        &self.directory
    }

    /// HTTP requests sent so far (nonces, retries and polls included).
    pub fn requests_sent(&self) -> usize {
        self.log.requests.load(Ordering::Relaxed)
    }

    /// Until when the server asked not to be contacted (after a rate-limit answer).
    pub fn blocked_until(&self) -> Option<SystemTime> {
        *self
            .blocked_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Fails without a request while a rate limit's Retry-After has not passed.
    pub(crate) fn check_not_blocked(&self) -> Result<(), AcmeError> {
        if let Some(until) = self.blocked_until()
            && let Ok(left) = until.duration_since(SystemTime::now())
        {
            return Err(AcmeError::RateLimited {
                directory: self.directory.clone(),
                detail: "an earlier request was rate limited; nothing is sent before Retry-After"
                    .into(),
                retry_after: Some(left),
            });
        }
        Ok(())
    }

    /// Maps an instant-acme error; a rate limit blocks this client until its Retry-After
    /// (an hour when the server does not say).
    pub(crate) fn error(&self, step: &str, e: instant_acme::Error) -> AcmeError {
        let err = map_error(&self.directory, step, e, &self.log);
        if let AcmeError::RateLimited { retry_after, .. } = &err {
            let wait = retry_after.unwrap_or(Duration::from_secs(3600));
            *self
                .blocked_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(SystemTime::now() + wait);
        }
        err
    }
}

/// Maps an instant-acme error to an [`AcmeError`], with the Retry-After the HTTP layer saw.
pub(crate) fn map_error(
    directory: &str,
    step: &str,
    e: instant_acme::Error,
    log: &HttpLog,
) -> AcmeError {
    use instant_acme::Error as E;
    match e {
        E::Api(p) => {
            let rate_limited = p.status == Some(429)
                || p.r#type.as_deref() == Some("urn:ietf:params:acme:error:rateLimited");
            let detail = p.detail.clone().unwrap_or_else(|| p.to_string());
            if rate_limited {
                AcmeError::RateLimited {
                    directory: directory.to_owned(),
                    detail,
                    retry_after: log.take_retry_after(),
                }
            } else {
                AcmeError::Server {
                    directory: directory.to_owned(),
                    step: step.to_owned(),
                    detail: p.to_string(),
                    problem_type: p.r#type.clone(),
                }
            }
        }
        E::Timeout(_) => AcmeError::Timeout {
            step: step.to_owned(),
            after: Duration::ZERO,
        },
        E::Hyper(_) | E::Http(_) | E::Other(_) | E::InvalidUri(_) => AcmeError::Unreachable {
            directory: directory.to_owned(),
            detail: error_chain(&e),
        },
        other => AcmeError::Server {
            directory: directory.to_owned(),
            step: step.to_owned(),
            detail: error_chain(&other),
            problem_type: None,
        },
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = inner.source();
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn problem(json: &str) -> instant_acme::Error {
        instant_acme::Error::Api(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn rate_limit_answers_carry_retry_after() {
        let log = HttpLog::default();
        *log.retry_after.lock().unwrap() = Some(Some(Duration::from_secs(120)));
        let e = map_error(
            "https://acme.test/dir",
            "create the order",
            problem(
                r#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many certificates","status":429}"#,
            ),
            &log,
        );
        assert!(e.is_rate_limited());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
        assert_eq!(
            e.to_string(),
            "the ACME server https://acme.test/dir is rate limiting this account (retry after 120s): too many certificates"
        );
        // a 429 without the problem type is a rate limit too
        let e = map_error("d", "s", problem(r#"{"status":429}"#), &log);
        assert!(e.is_rate_limited());
        assert_eq!(e.retry_after(), None);
    }

    #[test]
    fn other_problems_and_nonces() {
        let bad = problem(r#"{"type":"urn:ietf:params:acme:error:badNonce","status":400}"#);
        assert!(is_bad_nonce(&bad));
        let e = map_error(
            "d",
            "finalize the order",
            problem(
                r#"{"type":"urn:ietf:params:acme:error:malformed","detail":"bad CSR","status":400}"#,
            ),
            &HttpLog::default(),
        );
        assert!(!e.is_rate_limited());
        assert!(
            e.to_string()
                .contains("refused the request to finalize the order"),
            "{e}"
        );
        assert!(e.to_string().contains("bad CSR"), "{e}");
    }

    #[test]
    fn retry_after_header_forms() {
        assert_eq!(parse_retry_after(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn account_secret_round_trip_is_redacted() {
        let json = r#"{"id":"https://acme.test/acct/1","key_pkcs8":"AAAA","directory":"https://acme.test/dir"}"#;
        let acc = AccountSecret::from_json(json).unwrap();
        assert_eq!(format!("{acc:?}"), "AccountSecret(<redacted>)");
        assert_eq!(acc.directory().as_deref(), Some("https://acme.test/dir"));
        let m = account_secret_manifest("staging", &acc);
        assert_eq!(m["metadata"]["name"], ACCOUNT_SECRET_NAME);
        assert_eq!(
            m["metadata"]["annotations"][ANNOTATION_DIRECTORY],
            "https://acme.test/dir"
        );
        assert_eq!(
            m["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "cairn"
        );
        let back = AccountSecret::from_secret(&m).unwrap();
        assert_eq!(back, acc);
        assert!(AccountSecret::from_json("{}").is_err());
    }
}
