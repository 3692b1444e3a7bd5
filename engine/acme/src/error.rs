//! Errors of the certificate provider.

use std::time::Duration;

/// What went wrong while reading settings, talking to the ACME server or issuing.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The certificate resource or the issuer settings are not usable.
    #[error("certificate settings: {0}")]
    Settings(String),
    /// The stored ACME account cannot be read.
    #[error("ACME account: {0}")]
    Account(String),
    /// The server answered 429 or `urn:ietf:params:acme:error:rateLimited`: nothing more is
    /// sent to it until `retry_after` has passed.
    #[error("{}", rate_limited_message(directory, detail, *retry_after))]
    RateLimited {
        /// The directory URL.
        directory: String,
        /// The server's explanation.
        detail: String,
        /// How long to wait, from the answer's `Retry-After` (`None`: the server did not say).
        retry_after: Option<Duration>,
    },
    /// The ACME server could not be reached (connection, TLS, HTTP).
    #[error("cannot reach the ACME server {directory}: {detail}")]
    Unreachable {
        /// The directory URL.
        directory: String,
        /// What failed.
        detail: String,
    },
    /// The ACME server refused a request (a problem document other than a rate limit).
    #[error("the ACME server {directory} refused the request to {step}: {detail}")]
    Server {
        /// The directory URL.
        directory: String,
        /// What cairn was doing (`create the order`, `finalize the order`…).
        step: String,
        /// The problem document, in words.
        detail: String,
        /// The problem type (`urn:ietf:params:acme:error:...`), when given.
        problem_type: Option<String>,
    },
    /// The server could not validate the DNS-01 challenges.
    #[error("validation failed: {}", failures.join("; "))]
    Validation {
        /// One line per failed name: the name and the server's reason.
        failures: Vec<String>,
    },
    /// A name cannot be validated through the configured DNS zone.
    #[error("`{name}` is not in the DNS zone {zone}: its challenge record cannot be written")]
    OutsideZone {
        /// The certificate name.
        name: String,
        /// The zone of the DNS provider.
        zone: String,
    },
    /// Writing or reading the challenge records failed.
    #[error("challenge records in zone {zone}: {source}")]
    Dns {
        /// The zone.
        zone: String,
        /// The DNS provider's error.
        #[source]
        source: cairn_dns::DnsError,
    },
    /// The authoritative server does not answer the challenge records that were written.
    #[error("the authoritative server of {zone} does not answer the challenge records: {detail}")]
    NotPropagated {
        /// The zone.
        zone: String,
        /// What is missing.
        detail: String,
    },
    /// The whole issuance took longer than allowed.
    #[error("timed out after {}s while waiting to {step}", after.as_secs())]
    Timeout {
        /// The step that did not finish.
        step: String,
        /// The time allowed for the issuance.
        after: Duration,
    },
    /// A certificate or key could not be built or read.
    #[error("certificate: {0}")]
    Certificate(String),
    /// Issuance failed and the challenge records could not be removed afterwards either.
    #[error("{error}; the challenge records could not be removed either: {cleanup}")]
    CleanupFailed {
        /// Why issuance failed.
        error: Box<AcmeError>,
        /// Why the cleanup failed.
        cleanup: String,
    },
}

fn rate_limited_message(directory: &str, detail: &str, retry_after: Option<Duration>) -> String {
    let wait = match retry_after {
        Some(d) => format!("retry after {}s", d.as_secs()),
        None => "the server gave no Retry-After".to_owned(),
    };
    format!("the ACME server {directory} is rate limiting this account ({wait}): {detail}")
}

impl AcmeError {
    /// The Retry-After of a rate-limit answer (also inside [`AcmeError::CleanupFailed`]).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AcmeError::RateLimited { retry_after, .. } => *retry_after,
            AcmeError::CleanupFailed { error, .. } => error.retry_after(),
            _ => None,
        }
    }

    /// Whether this is a rate-limit answer.
    pub fn is_rate_limited(&self) -> bool {
        match self {
            AcmeError::RateLimited { .. } => true,
            AcmeError::CleanupFailed { error, .. } => error.is_rate_limited(),
            _ => false,
        }
    }
}
