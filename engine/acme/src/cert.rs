//! Reading certificates: PEM chains, the leaf's names and validity; RFC 3339 times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

use crate::AcmeError;

/// What cairn reads from a certificate chain's leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafInfo {
    /// The DNS subjectAltNames, lower case, sorted.
    pub names: Vec<String>,
    /// Not valid before.
    pub not_before: SystemTime,
    /// Not valid after.
    pub not_after: SystemTime,
    /// The issuer's distinguished name, as text.
    pub issuer: String,
}

fn time_of(ts: i64) -> SystemTime {
    match u64::try_from(ts) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => UNIX_EPOCH - Duration::from_secs(ts.unsigned_abs()),
    }
}

/// The DER certificates of a PEM text, in order.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, AcmeError> {
    let mut out = Vec::new();
    for p in Pem::iter_from_buffer(pem) {
        let p = p.map_err(|e| AcmeError::Certificate(format!("not a PEM certificate: {e}")))?;
        if p.label == "CERTIFICATE" {
            out.push(p.contents);
        }
    }
    if out.is_empty() {
        return Err(AcmeError::Certificate(
            "no certificate in the PEM text".into(),
        ));
    }
    Ok(out)
}

/// Reads the first certificate (the leaf) of a PEM chain.
pub fn read_leaf(chain_pem: &[u8]) -> Result<LeafInfo, AcmeError> {
    let ders = pem_certificates(chain_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&ders[0])
        .map_err(|e| AcmeError::Certificate(format!("the leaf certificate cannot be read: {e}")))?;
    let mut names = Vec::new();
    let san = cert.subject_alternative_name().map_err(|e| {
        AcmeError::Certificate(format!("the subjectAltName extension cannot be read: {e}"))
    })?;
    if let Some(san) = san {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                names.push(d.trim_end_matches('.').to_ascii_lowercase());
            }
        }
    }
    names.sort();
    names.dedup();
    let validity = cert.validity();
    Ok(LeafInfo {
        names,
        not_before: time_of(validity.not_before.timestamp()),
        not_after: time_of(validity.not_after.timestamp()),
        issuer: cert.issuer().to_string(),
    })
}

/// A time as RFC 3339 UTC text (`2026-01-02T03:04:05Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("@{secs}"))
}

/// Whole days from `now` to `t` (negative when `t` is past), rounded down.
pub fn days_until(t: SystemTime, now: SystemTime) -> i64 {
    match t.duration_since(now) {
        Ok(d) => i64::try_from(d.as_secs() / 86_400).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs().div_ceil(86_400)).unwrap_or(i64::MAX),
    }
}
