//! Errors of the S3 provider.

use std::fmt;

/// One invalid value of a desired bucket, found before any request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The bucket (as declared, possibly itself invalid).
    pub bucket: String,
    /// The field: `bucket`, `lifecycle[backups/postgres].expiration_days`, `tags[team]`…
    pub field: String,
    /// What is wrong, lowercase, no trailing dot.
    pub message: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bucket {}: {}: {}",
            self.bucket, self.field, self.message
        )
    }
}

/// Everything that can go wrong planning or applying buckets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3Error {
    /// Desired values cairn refuses to send (S3-compatible servers may accept them).
    #[error("{}", join(.0))]
    Invalid(Vec<Invalid>),
    /// The environment's `backups: s3(...)` settings are unusable.
    #[error("S3 settings: {0}")]
    Settings(String),
    /// A backup schedule that is not a cron expression.
    #[error("backup schedule: {0}")]
    Schedule(#[source] crate::freshness::ScheduleError),
    /// A request failed.
    #[error("{op} {bucket}: {message}")]
    Request {
        /// The S3 operation (`PutBucketLifecycleConfiguration`).
        op: &'static str,
        /// The bucket.
        bucket: String,
        /// The server's code and message, or the transport error.
        message: String,
    },
    /// A protected bucket the script does not allow to delete.
    #[error("{0}")]
    Refused(String),
    /// A bucket that still holds objects is never deleted.
    #[error(
        "bucket {bucket} holds {count} object(s) (versions included); cairn never deletes a bucket that holds objects: empty it first"
    )]
    NotEmpty {
        /// The bucket.
        bucket: String,
        /// Object versions and delete markers it holds.
        count: u64,
    },
    /// After an apply, the bucket read back does not match the desired configuration.
    #[error("bucket {bucket} does not match after apply: {}", .fields.join(", "))]
    Verify {
        /// The bucket.
        bucket: String,
        /// The fields that still differ.
        fields: Vec<String>,
    },
}

fn join(items: &[Invalid]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
