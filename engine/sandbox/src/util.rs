//! Small helpers: timestamps, uids, Status bodies.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde_json::{Map, Value, json};

/// `2026-11-23T08:05:37Z` for a Unix time in seconds.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn now() -> String {
    rfc3339(now_secs())
}

pub fn uid() -> String {
    let mut rng = rand::rng();
    let b: [u8; 16] = rng.random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A random suffix from the alphabet Kubernetes uses for generated names.
pub fn random_suffix(n: usize) -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHA[rng.random_range(0..ALPHA.len())] as char)
        .collect()
}

/// An API error, rendered as a `Status` body.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: Option<&'static str>,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason: Some(reason),
            message: message.into(),
            details: None,
        }
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 500,
            reason: None,
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn with_details(mut self, d: Value) -> ApiError {
        self.details = Some(d);
        self
    }

    /// `deployments.apps "x" not found`.
    pub fn not_found(group: &str, plural: &str, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(plural, group)),
        )
        .with_details(details(name, group, plural, None))
    }

    pub fn already_exists(group: &str, plural: &str, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(plural, group)),
        )
        .with_details(details(name, group, plural, None))
    }

    pub fn conflict(group: &str, plural: &str, name: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(plural, group)
            ),
        )
        .with_details(details(name, group, plural, None))
    }

    /// 422 Invalid with causes `(reason, message, field)`.
    pub fn invalid(
        group: &str,
        kind: &str,
        name: &str,
        causes: Vec<(String, String, String)>,
    ) -> ApiError {
        let parts: Vec<String> = causes.iter().map(|(_, m, f)| format!("{f}: {m}")).collect();
        let summary = if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("[{}]", parts.join(", "))
        };
        let causes_json: Vec<Value> = causes
            .into_iter()
            .map(|(r, m, f)| json!({"reason": r, "message": m, "field": f}))
            .collect();
        let mut d = details(name, group, kind, None);
        if let Some(m) = d.as_object_mut() {
            m.insert("causes".into(), Value::Array(causes_json));
        }
        ApiError::new(
            422,
            "Invalid",
            format!(
                "{} \"{name}\" is invalid: {summary}",
                qualified(kind, group)
            ),
        )
        .with_details(d)
    }

    pub fn status_body(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), json!("Status"));
        m.insert("apiVersion".into(), json!("v1"));
        m.insert("metadata".into(), json!({}));
        m.insert("status".into(), json!("Failure"));
        m.insert("message".into(), json!(self.message));
        if let Some(r) = self.reason {
            m.insert("reason".into(), json!(r));
        }
        if let Some(d) = &self.details {
            m.insert("details".into(), d.clone());
        }
        m.insert("code".into(), json!(self.code));
        Value::Object(m)
    }
}

/// `deployments.apps`, or `configmaps` for the core group.
pub fn qualified(plural: &str, group: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

pub fn details(name: &str, group: &str, kind: &str, uid: Option<&str>) -> Value {
    let mut m = Map::new();
    if !name.is_empty() {
        m.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        m.insert("group".into(), json!(group));
    }
    m.insert("kind".into(), json!(kind));
    if let Some(u) = uid {
        m.insert("uid".into(), json!(u));
    }
    Value::Object(m)
}

/// Puts `kind`, `apiVersion`, `metadata` first, `status` last, like the Go structs.
pub fn order_object(v: Value) -> Value {
    let Value::Object(mut m) = v else { return v };
    let mut out = Map::new();
    for k in ["kind", "apiVersion", "metadata"] {
        if let Some(x) = m.shift_remove(k) {
            out.insert(k.into(), x);
        }
    }
    let status = m.shift_remove("status");
    for (k, x) in m {
        out.insert(k, x);
    }
    if let Some(s) = status {
        out.insert("status".into(), s);
    }
    Value::Object(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_421_137), "2026-11-23T08:05:37Z");
    }
}
