//! Errors of the DNS provider: each says what happened and names the server, key or record.

use crate::RecordKey;

/// A record set the plan would change although cairn does not own it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The record set.
    pub key: RecordKey,
    /// Who owns it: `None` when no ownership record exists (created outside cairn),
    /// otherwise the cairn environment that owns it.
    pub owner: Option<String>,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.owner {
            Some(o) => write!(f, "{} (owned by environment `{o}`)", self.key),
            None => write!(f, "{} (not created by cairn)", self.key),
        }
    }
}

/// What went wrong. Messages are lowercase phrases naming the server, key or record.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DnsError {
    /// The environment's DNS settings are incomplete or wrong.
    #[error("invalid DNS settings: {0}")]
    Settings(String),

    /// A record (desired or read) cannot be understood.
    #[error("invalid record {what}: {reason}")]
    InvalidRecord {
        /// The record, value or name.
        what: String,
        /// Why.
        reason: String,
    },

    /// The server did not accept the TSIG key (NOTAUTH with BADSIG/BADKEY/BADTIME, or a
    /// response whose signature does not verify).
    #[error(
        "DNS server {server} rejected TSIG key `{key_name}` ({detail}): check the key name, secret and algorithm"
    )]
    TsigRejected {
        /// `host:port` of the server.
        server: String,
        /// The key's name.
        key_name: String,
        /// The response code or verification failure.
        detail: String,
    },

    /// The server refused the request (for example an update the key is not allowed to make).
    #[error(
        "DNS server {server} refused {what}: is TSIG key `{key_name}` allowed to update (allow-update) and transfer (allow-transfer) the zone?"
    )]
    Refused {
        /// `host:port` of the server.
        server: String,
        /// What was asked.
        what: String,
        /// The key the request was signed with.
        key_name: String,
    },

    /// The server answered with an error code.
    #[error("DNS server {server} answered {rcode} to {what}")]
    ServerError {
        /// `host:port` of the server.
        server: String,
        /// What was asked.
        what: String,
        /// The response code.
        rcode: String,
    },

    /// A prerequisite of an update failed: the record set changed since the plan was made.
    #[error("record set {key} changed on {server} since the plan was made ({rcode}); plan again")]
    ChangedSincePlan {
        /// `host:port` of the server.
        server: String,
        /// The record set.
        key: RecordKey,
        /// YXRRSET or NXRRSET.
        rcode: String,
    },

    /// The server could not be reached or did not answer in time.
    #[error("DNS server {server} is unreachable: {detail}")]
    Unreachable {
        /// `host:port` of the server.
        server: String,
        /// Connection refused, timeout…
        detail: String,
    },

    /// The plan would change record sets cairn does not own.
    #[error(
        "{} record set(s) are not owned by this environment and would be changed: {}; use --force to take them over",
        conflicts.len(),
        conflicts.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    Conflicts {
        /// The record sets.
        conflicts: Vec<Conflict>,
    },

    /// The plan would delete more of the zone than the threshold allows.
    #[error(
        "the plan would delete {deletes} of the {total} record sets of zone {zone} (more than {threshold_percent}%); use --force to delete them"
    )]
    DeleteThreshold {
        /// The zone.
        zone: String,
        /// Record sets the plan deletes.
        deletes: usize,
        /// Record sets in the zone.
        total: usize,
        /// The threshold.
        threshold_percent: u8,
    },

    /// The authoritative servers did not answer the expected records in time (manual provider).
    #[error("timed out after {seconds}s waiting for {server} to answer: {}", missing.join("; "))]
    NotPropagated {
        /// The nameservers asked.
        server: String,
        /// Seconds waited.
        seconds: u64,
        /// What is still missing or different.
        missing: Vec<String>,
    },

    /// Several changes of one apply were rejected, each for its own reason.
    #[error("{} changes were rejected: {}", failures.len(), failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Rejected {
        /// Why each was rejected.
        failures: Vec<DnsError>,
    },

    /// Some changes were applied before an error stopped the rest.
    #[error("{source}; {} change(s) had been applied before: {}", applied.len(), applied.join(", "))]
    Partial {
        /// The changes that were applied and verified.
        applied: Vec<String>,
        /// What stopped the rest.
        #[source]
        source: Box<DnsError>,
    },

    /// Something that cannot happen did.
    #[error("internal error in the DNS provider: {0}; this is a bug")]
    Internal(String),
}
