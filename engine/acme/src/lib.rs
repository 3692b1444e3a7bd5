//! cairn's certificate provider: ACME (RFC 8555) DNS-01 issuance with instant-acme.
//!
//! Desired certificates come from the model's `acme` / `Certificate` resources
//! ([`CertSettings::from_resource`], [`desired_certificates`]). For each one:
//!
//! 1. [`inspect`] reads the existing `kubernetes.io/tls` Secret (the leaf's subjectAltNames and
//!    notAfter) and says whether to issue, and why ([`IssueReason`]: missing, names changed,
//!    expires in N days, invalid).
//! 2. [`AcmeClient`] holds the ACME account. The account (its private key) is data the engine
//!    stores in a Kubernetes Secret ([`AccountSecret`], [`account_secret_manifest`]); this
//!    crate never talks to Kubernetes.
//! 3. [`issue`] orders the names (wildcards allowed), writes the DNS-01 TXT records through
//!    cairn's DNS provider ([`cairn_dns::DnsBackend`], owned by [`CHALLENGE_OWNER`]), checks
//!    that the authoritative server answers them, asks for validation, finalizes with a new
//!    ECDSA P-256 key and downloads the chain; the challenge records are removed afterwards,
//!    also on failure. Rejected nonces are retried; a rate limit (429 / `rateLimited`) stops
//!    with its Retry-After ([`AcmeError::RateLimited`]) and blocks the client until then; the
//!    block is remembered across runs in the account Secret's annotation ([`RateLimitBlock`]).
//! 4. [`tls_secret_manifest`] makes the TLS Secret (`tls.crt`, `tls.key`, as cert-manager).
//!
//! Under `--sandbox`, [`LocalCa`] issues certificates itself, without any network.
//!
//! All TLS is rustls with ring. The library never prints; keys never appear in `Debug`.

mod cert;
mod client;
mod error;
mod inspect;
mod issue;
mod local_ca;
mod provider;
mod ratelimit;
mod secret;
mod settings;

pub use cert::{LeafInfo, days_until, pem_certificates, read_leaf, rfc3339};
pub use client::{
    ACCOUNT_SECRET_KEY, ACCOUNT_SECRET_NAME, ANNOTATION_DIRECTORY, AccountSecret, AcmeClient,
    account_secret_manifest, account_secret_manifest_with,
};
pub use error::AcmeError;
pub use inspect::{CertStatus, IssueReason, inspect};
pub use issue::{
    CHALLENGE_OWNER, CHALLENGE_TTL, CLEANUP_TIMEOUT, Issued, challenge_name, issue,
    remove_challenge_records,
};
pub use local_ca::{LOCAL_CA_DESCRIPTION, LocalCa};
pub use provider::{AcmeProvider, CertPart, CertsError, kept_secrets};
pub use ratelimit::{ANNOTATION_RATE_LIMIT, DEFAULT_RATE_LIMIT_WAIT, RateLimitBlock};
pub use secret::{
    ANNOTATION_ISSUER, ANNOTATION_NAMES, ANNOTATION_NOT_AFTER, MANAGED_BY, tls_secret_manifest,
};
pub use settings::{
    CertSettings, DEFAULT_RENEW_BEFORE_DAYS, IssuerConfig, KeyAlgorithm, LETS_ENCRYPT_PRODUCTION,
    LETS_ENCRYPT_STAGING, desired_certificates, normalize_names,
};
