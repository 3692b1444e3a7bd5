//! What a bucket looks like on the server, in plain types.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// A bucket's versioning state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Versioning {
    /// Never enabled.
    Off,
    /// Enabled.
    Enabled,
    /// Enabled once, then suspended.
    Suspended,
}

impl Versioning {
    /// The S3 status name (`None` for a bucket that was never versioned).
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Versioning::Off => None,
            Versioning::Enabled => Some("Enabled"),
            Versioning::Suspended => Some("Suspended"),
        }
    }
}

/// A lifecycle rule as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRule {
    /// The rule id.
    pub id: Option<String>,
    /// Its prefix (from the filter, or the legacy top-level prefix; empty: the whole bucket).
    pub prefix: String,
    /// Whether the rule is enabled.
    pub enabled: bool,
    /// Expiration of current versions, in days.
    pub expiration_days: Option<u32>,
    /// Expiration of noncurrent versions, in days.
    pub noncurrent_expiration_days: Option<u32>,
    /// The rule has conditions or actions cairn does not manage (tag or size filters,
    /// transitions, an expiration date, multipart upload cleanup…): applying replaces it.
    pub other: bool,
}

/// The four settings of a public access block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    /// BlockPublicAcls.
    pub block_public_acls: bool,
    /// IgnorePublicAcls.
    pub ignore_public_acls: bool,
    /// BlockPublicPolicy.
    pub block_public_policy: bool,
    /// RestrictPublicBuckets.
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// All four on, or all four off.
    pub fn all(on: bool) -> Self {
        Self {
            block_public_acls: on,
            ignore_public_acls: on,
            block_public_policy: on,
            restrict_public_buckets: on,
        }
    }
}

/// A bucket's live configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveBucket {
    /// Its name.
    pub name: String,
    /// The region the server says it lives in, when it says.
    pub region: Option<String>,
    /// Versioning.
    pub versioning: Versioning,
    /// Lifecycle rules (empty when none is configured).
    pub lifecycle: Vec<LiveRule>,
    /// Default encryption algorithm (`None` when not configured).
    pub encryption: Option<String>,
    /// Public access block (`None` when not configured).
    pub public_access_block: Option<PublicAccessBlock>,
    /// Tags (empty when none).
    pub tags: BTreeMap<String, String>,
}

impl LiveBucket {
    /// A new, unconfigured bucket.
    pub fn empty(name: &str, region: Option<&str>) -> Self {
        Self {
            name: name.to_owned(),
            region: region.map(str::to_owned),
            versioning: Versioning::Off,
            lifecycle: Vec::new(),
            encryption: None,
            public_access_block: None,
            tags: BTreeMap::new(),
        }
    }
}

/// One object, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written.
    pub last_modified: SystemTime,
}
