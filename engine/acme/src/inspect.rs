//! What to do with a certificate: compare the existing TLS Secret with the desired names and
//! the renewal threshold.

use std::fmt;
use std::time::SystemTime;

use base64::Engine as _;
use serde::Serialize;

use cairn_plan::plan::Action;

use crate::CertSettings;
use crate::cert::{days_until, read_leaf, rfc3339};

/// Why a certificate must be issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum IssueReason {
    /// There is no TLS Secret (or it has no certificate).
    Missing,
    /// The certificate's names are not the desired ones.
    NamesChanged {
        /// Desired names the certificate lacks.
        added: Vec<String>,
        /// Names of the certificate no longer desired.
        removed: Vec<String>,
    },
    /// The certificate expires within the renewal threshold (negative: expired).
    ExpiresIn {
        /// Whole days left.
        days: i64,
    },
    /// The Secret or its certificate cannot be read.
    Invalid(String),
}

impl fmt::Display for IssueReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IssueReason::Missing => f.write_str("missing"),
            IssueReason::NamesChanged { added, removed } => {
                f.write_str("names changed")?;
                let parts: Vec<String> = added
                    .iter()
                    .map(|n| format!("+{n}"))
                    .chain(removed.iter().map(|n| format!("-{n}")))
                    .collect();
                if !parts.is_empty() {
                    write!(f, " ({})", parts.join(", "))?;
                }
                Ok(())
            }
            IssueReason::ExpiresIn { days } if *days < 0 => {
                write!(f, "expired {} days ago", -days)
            }
            IssueReason::ExpiresIn { days } => write!(f, "expires in {days} days"),
            IssueReason::Invalid(why) => write!(f, "invalid: {why}"),
        }
    }
}

/// The state of one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertStatus {
    /// What to do: [`Action::NoOp`] (same names and enough time left), [`Action::Create`]
    /// (issue a missing one) or [`Action::Update`] (renew it).
    pub action: Action,
    /// Why it is issued; `None` when nothing is done.
    pub reason: Option<IssueReason>,
    /// The existing certificate's notAfter, when there is one.
    #[serde(serialize_with = "ser_time")]
    pub not_after: Option<SystemTime>,
    /// The existing certificate's DNS names (empty when there is none).
    pub names: Vec<String>,
}

fn ser_time<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

impl CertStatus {
    /// The plan line: `no change (expires 2026-…)` or `renew: expires in 12 days`.
    pub fn describe(&self) -> String {
        match (&self.reason, self.not_after) {
            (None, Some(t)) => format!("no change (valid until {})", rfc3339(t)),
            (None, None) => "no change".to_owned(),
            (Some(IssueReason::Missing), _) => "issue: missing".to_owned(),
            (Some(r), _) => format!("renew: {r}"),
        }
    }
}

/// A missing certificate is created; any other reason renews it.
fn action_for(reason: &IssueReason) -> Action {
    if *reason == IssueReason::Missing {
        Action::Create
    } else {
        Action::Update
    }
}

/// Reads `tls.crt` of an existing `kubernetes.io/tls` Secret (as the API returns it: base64
/// in `data`) and decides whether `desired` needs issuing: same names and more than
/// `renew_before_days` days left → [`Action::NoOp`].
pub fn inspect(
    existing_tls_secret: Option<&serde_json::Value>,
    desired: &CertSettings,
    now: SystemTime,
    renew_before_days: u32,
) -> CertStatus {
    let issue = |reason| CertStatus {
        action: action_for(&reason),
        reason: Some(reason),
        not_after: None,
        names: Vec::new(),
    };
    let Some(secret) = existing_tls_secret else {
        return issue(IssueReason::Missing);
    };
    if let Some(t) = secret.get("type").and_then(|t| t.as_str())
        && t != "kubernetes.io/tls"
    {
        return issue(IssueReason::Invalid(format!(
            "the Secret has type {t}, not kubernetes.io/tls"
        )));
    }
    let Some(crt) = secret
        .get("data")
        .and_then(|d| d.get("tls.crt"))
        .and_then(|c| c.as_str())
    else {
        return issue(IssueReason::Missing);
    };
    let pem = match base64::engine::general_purpose::STANDARD.decode(crt.trim()) {
        Ok(p) => p,
        Err(_) => return issue(IssueReason::Invalid("tls.crt is not base64".into())),
    };
    let leaf = match read_leaf(&pem) {
        Ok(l) => l,
        Err(e) => return issue(IssueReason::Invalid(e.to_string())),
    };
    let added: Vec<String> = desired
        .names
        .iter()
        .filter(|n| !leaf.names.contains(n))
        .cloned()
        .collect();
    let removed: Vec<String> = leaf
        .names
        .iter()
        .filter(|n| !desired.names.contains(n))
        .cloned()
        .collect();
    let days = days_until(leaf.not_after, now);
    let reason = if !added.is_empty() || !removed.is_empty() {
        Some(IssueReason::NamesChanged { added, removed })
    } else if !leaf
        .not_after
        .duration_since(now)
        .is_ok_and(|left| left.as_secs() > u64::from(renew_before_days) * 86_400)
    {
        Some(IssueReason::ExpiresIn { days })
    } else {
        None
    };
    CertStatus {
        action: reason.as_ref().map_or(Action::NoOp, action_for),
        reason,
        not_after: Some(leaf.not_after),
        names: leaf.names,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{IssuerConfig, LocalCa, tls_secret_manifest};

    const DAY: Duration = Duration::from_secs(86_400);

    fn desired(names: &[&str]) -> CertSettings {
        CertSettings::new(
            "web",
            "staging",
            names,
            IssuerConfig::new(crate::LETS_ENCRYPT_STAGING),
        )
        .unwrap()
    }

    /// A TLS Secret as the API returns it, with a certificate valid `days` from `now`.
    fn secret(names: &[&str], now: SystemTime, days: u64) -> serde_json::Value {
        let ca = LocalCa::generate("test CA").unwrap();
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let issued = ca.issue(&names, now, DAY * days as u32).unwrap();
        tls_secret_manifest("staging", "web-tls", &issued)
    }

    #[test]
    fn no_change_with_same_names_and_time_left() {
        let now = SystemTime::now();
        let s = secret(&["*.example.com", "example.com"], now, 90);
        let d = desired(&["example.com", "*.example.com"]);
        let st = inspect(Some(&s), &d, now, 30);
        assert_eq!(st.action, Action::NoOp);
        assert_eq!(st.names, ["*.example.com", "example.com"]);
        assert_eq!(days_until(st.not_after.unwrap(), now), 89);
        assert!(
            st.describe().starts_with("no change (valid until "),
            "{}",
            st.describe()
        );
    }

    #[test]
    fn renews_when_expiring_or_expired() {
        let now = SystemTime::now();
        let s = secret(&["example.com"], now, 20);
        let st = inspect(Some(&s), &desired(&["example.com"]), now, 30);
        assert_eq!(st.reason, Some(IssueReason::ExpiresIn { days: 19 }));
        assert_eq!(st.describe(), "renew: expires in 19 days");
        // 90 days left renews only with a threshold of 90 or more
        let s = secret(&["example.com"], now, 90);
        assert_eq!(
            inspect(Some(&s), &desired(&["example.com"]), now, 88).action,
            Action::NoOp
        );
        assert_eq!(
            inspect(Some(&s), &desired(&["example.com"]), now, 90).reason,
            Some(IssueReason::ExpiresIn { days: 89 })
        );
        // seen 100 days later, it expired 10 days ago
        let st = inspect(Some(&s), &desired(&["example.com"]), now + DAY * 100, 30);
        assert_eq!(st.reason, Some(IssueReason::ExpiresIn { days: -10 }));
        assert_eq!(st.describe(), "renew: expired 10 days ago");
    }

    #[test]
    fn names_changed_missing_and_invalid() {
        let now = SystemTime::now();
        let s = secret(&["example.com", "old.example.com"], now, 90);
        let st = inspect(
            Some(&s),
            &desired(&["example.com", "*.example.com"]),
            now,
            30,
        );
        assert_eq!(
            st.reason,
            Some(IssueReason::NamesChanged {
                added: vec!["*.example.com".into()],
                removed: vec!["old.example.com".into()],
            })
        );
        assert_eq!(
            st.describe(),
            "renew: names changed (+*.example.com, -old.example.com)"
        );
        let d = desired(&["example.com"]);
        assert_eq!(
            inspect(None, &d, now, 30).reason,
            Some(IssueReason::Missing)
        );
        assert_eq!(inspect(None, &d, now, 30).describe(), "issue: missing");
        let empty = serde_json::json!({"type": "kubernetes.io/tls", "data": {}});
        assert_eq!(
            inspect(Some(&empty), &d, now, 30).reason,
            Some(IssueReason::Missing)
        );
        let junk = serde_json::json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "bm90IGEgY2VydA=="}});
        assert!(matches!(
            inspect(Some(&junk), &d, now, 30).reason,
            Some(IssueReason::Invalid(_))
        ));
        let opaque = serde_json::json!({"type": "Opaque", "data": {}});
        assert!(matches!(
            inspect(Some(&opaque), &d, now, 30).reason,
            Some(IssueReason::Invalid(m)) if m.contains("Opaque")
        ));
    }

    #[test]
    fn tls_secret_has_cert_manager_keys_labels_and_annotations() {
        let now = SystemTime::now();
        let s = secret(&["example.com", "*.example.com"], now, 90);
        assert_eq!(s["type"], "kubernetes.io/tls");
        assert_eq!(s["metadata"]["namespace"], "staging");
        assert_eq!(s["metadata"]["name"], "web-tls");
        assert_eq!(
            s["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "cairn"
        );
        let ann = &s["metadata"]["annotations"];
        assert_eq!(ann[crate::ANNOTATION_NAMES], "*.example.com,example.com");
        assert!(
            ann[crate::ANNOTATION_NOT_AFTER]
                .as_str()
                .unwrap()
                .ends_with('Z')
        );
        assert_eq!(ann[crate::ANNOTATION_ISSUER], crate::LOCAL_CA_DESCRIPTION);
        let key = base64::engine::general_purpose::STANDARD
            .decode(s["data"]["tls.key"].as_str().unwrap())
            .unwrap();
        assert!(String::from_utf8(key).unwrap().contains("PRIVATE KEY"));
    }
}
