//! Rate limits remembered across runs.
//!
//! When the ACME server answers 429 / `rateLimited`, the block (until when, for which names,
//! why) is written into an annotation of the ACME account Secret ([`ANNOTATION_RATE_LIMIT`]).
//! The next run's plan shows it, and apply does not contact the server before it has passed:
//! the server asked the account to wait, so the block holds for every certificate ordered with
//! that account. Once it has passed, issuance proceeds and the annotation is removed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::AcmeError;
use crate::cert::rfc3339;

/// Annotation of the account Secret: the last rate limit the ACME server answered (JSON:
/// `{"until": RFC 3339, "names": [...], "reason": "..."}`).
pub const ANNOTATION_RATE_LIMIT: &str = "cairn.dev/acme-rate-limit";

/// How long to wait after a rate-limit answer without a Retry-After.
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(3600);

/// A rate limit the ACME server answered: nothing is sent to it before `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitBlock {
    /// Until when (RFC 3339, UTC).
    pub until: String,
    /// The names of the certificate whose request was refused.
    pub names: Vec<String>,
    /// The server's explanation.
    pub reason: String,
}

impl RateLimitBlock {
    /// The block a rate-limit error asks for (`None`: not a rate limit): until `now` plus its
    /// Retry-After ([`DEFAULT_RATE_LIMIT_WAIT`] when the server did not say).
    pub fn from_error(
        err: &AcmeError,
        names: &[String],
        now: SystemTime,
    ) -> Option<RateLimitBlock> {
        let reason = rate_limit_detail(err)?;
        let wait = err.retry_after().unwrap_or(DEFAULT_RATE_LIMIT_WAIT);
        // Whole seconds, rounded up, so the block never ends before the server's.
        let until = now + wait + Duration::from_millis(999);
        let secs = until.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Some(RateLimitBlock {
            until: rfc3339(UNIX_EPOCH + Duration::from_secs(secs)),
            names: names.to_vec(),
            reason,
        })
    }

    /// The block recorded on an account Secret (as the API returns it), if any and readable.
    pub fn from_account_secret(secret: &Value) -> Option<RateLimitBlock> {
        let text = secret
            .pointer("/metadata/annotations")?
            .get(ANNOTATION_RATE_LIMIT)?
            .as_str()?;
        serde_json::from_str(text).ok()
    }

    /// The annotation's value.
    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// When the block ends (`None`: unreadable, treated as ended).
    pub fn until_time(&self) -> Option<SystemTime> {
        parse_rfc3339_utc(&self.until)
    }

    /// Whether the block still holds at `now`.
    pub fn is_active(&self, now: SystemTime) -> bool {
        self.until_time().is_some_and(|t| t > now)
    }

    /// `blocked by the ACME rate limit until T (reason; hit ordering a, b)`.
    pub fn describe(&self) -> String {
        let mut why = self.reason.clone();
        if !self.names.is_empty() {
            why.push_str(&format!("; hit ordering {}", self.names.join(", ")));
        }
        format!(
            "blocked by the ACME rate limit until {} ({why})",
            self.until
        )
    }
}

fn rate_limit_detail(err: &AcmeError) -> Option<String> {
    match err {
        AcmeError::RateLimited { detail, .. } => Some(detail.clone()),
        AcmeError::CleanupFailed { error, .. } => rate_limit_detail(error),
        _ => None,
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (what [`rfc3339`] writes for UTC times).
fn parse_rfc3339_utc(s: &str) -> Option<SystemTime> {
    let (date, rest) = s.split_once('T')?;
    let rest = rest.strip_suffix('Z')?;
    let mut d = date.splitn(3, '-');
    let (y, m, day) = (d.next()?, d.next()?, d.next()?);
    let mut t = rest.splitn(3, ':');
    let (h, min, sec) = (t.next()?, t.next()?, t.next()?);
    let sec = sec.split('.').next()?;
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let date = time::Date::from_calendar_date(y.parse().ok()?, month, day.parse().ok()?).ok()?;
    let clock = time::Time::from_hms(h.parse().ok()?, min.parse().ok()?, sec.parse().ok()?).ok()?;
    let ts = time::PrimitiveDateTime::new(date, clock)
        .assume_utc()
        .unix_timestamp();
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(ts).ok()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_through_the_annotation() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let err = AcmeError::RateLimited {
            directory: "https://acme.test/dir".into(),
            detail: "too many new orders recently".into(),
            retry_after: Some(Duration::from_secs(120)),
        };
        let names = vec!["*.example.test".to_owned(), "example.test".to_owned()];
        let block = RateLimitBlock::from_error(&err, &names, now).unwrap();
        assert_eq!(block.until, "2027-01-15T08:02:00Z");
        assert_eq!(block.until_time(), Some(now + Duration::from_secs(120)));
        assert!(block.is_active(now + Duration::from_secs(119)));
        assert!(!block.is_active(now + Duration::from_secs(120)));
        assert_eq!(
            block.describe(),
            "blocked by the ACME rate limit until 2027-01-15T08:02:00Z (too many new orders recently; hit ordering *.example.test, example.test)"
        );
        let secret = serde_json::json!({
            "metadata": { "annotations": { ANNOTATION_RATE_LIMIT: block.to_annotation() } }
        });
        assert_eq!(RateLimitBlock::from_account_secret(&secret), Some(block));
        assert_eq!(
            RateLimitBlock::from_account_secret(&serde_json::json!({"metadata": {}})),
            None
        );
        // no Retry-After: an hour
        let err = AcmeError::RateLimited {
            directory: "d".into(),
            detail: "slow down".into(),
            retry_after: None,
        };
        let block = RateLimitBlock::from_error(&err, &[], now).unwrap();
        assert_eq!(block.until_time(), Some(now + DEFAULT_RATE_LIMIT_WAIT));
        assert!(RateLimitBlock::from_error(&AcmeError::Settings("x".into()), &[], now).is_none());
        assert_eq!(parse_rfc3339_utc("2026-13-01T00:00:00Z"), None);
    }
}
