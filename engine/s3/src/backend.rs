//! Where buckets live: S3 itself (or an S3-compatible server such as moto), or an in-memory
//! stand-in for `--sandbox`. Both implement [`S3Backend`].

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::config::{Encryption, LifecycleRule};
use crate::error::S3Error;
use crate::live::{LiveBucket, LiveRule, ObjectInfo, PublicAccessBlock, Versioning};

/// A bucket's tags, key to value.
pub type Tags = BTreeMap<String, String>;

/// The operations cairn needs from S3. Every method is one request or a paginated listing.
pub trait S3Backend: Send + Sync {
    /// Where the buckets live, for messages (`http://127.0.0.1:5000 (us-east-1)`, `sandbox`).
    fn describe(&self) -> String;
    /// The region new buckets are created in when the desired bucket names none.
    fn default_region(&self) -> String;
    /// Requests made so far.
    fn requests(&self) -> u64;
    /// The bucket's configuration, `None` when it does not exist. "Not configured" answers
    /// count as empty.
    fn read_bucket<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<LiveBucket>, S3Error>>;
    /// Creates a bucket in `region` (a location constraint unless us-east-1).
    fn create_bucket<'a>(
        &'a self,
        name: &'a str,
        region: &'a str,
    ) -> BoxFuture<'a, Result<(), S3Error>>;
    /// Enables or suspends versioning.
    fn put_versioning<'a>(
        &'a self,
        name: &'a str,
        enabled: bool,
    ) -> BoxFuture<'a, Result<(), S3Error>>;
    /// Replaces the lifecycle rules (none: removes the configuration).
    fn put_lifecycle<'a>(
        &'a self,
        name: &'a str,
        rules: &'a [LifecycleRule],
    ) -> BoxFuture<'a, Result<(), S3Error>>;
    /// Sets the default encryption.
    fn put_encryption<'a>(
        &'a self,
        name: &'a str,
        encryption: Encryption,
    ) -> BoxFuture<'a, Result<(), S3Error>>;
    /// Blocks all public access (`false`: removes the block).
    fn put_public_access_block<'a>(
        &'a self,
        name: &'a str,
        block: bool,
    ) -> BoxFuture<'a, Result<(), S3Error>>;
    /// Replaces the tags (none: removes them).
    fn put_tags<'a>(
        &'a self,
        name: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), S3Error>>;
    /// Object versions and delete markers in the bucket.
    fn count_objects<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<u64, S3Error>>;
    /// Deletes an (empty) bucket.
    fn delete_bucket<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), S3Error>>;
    /// Deletes every object version and delete marker in the bucket (a destroy with
    /// `--delete-data`); how many went.
    fn empty_bucket<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<u64, S3Error>>;
    /// The most recently written object under `prefix` (all pages listed).
    fn newest_object<'a>(
        &'a self,
        bucket: &'a str,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Option<ObjectInfo>, S3Error>>;
    /// Writes an object (tests, and the sandbox's stand-in backups).
    fn put_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), S3Error>>;
    /// The names of all buckets the credentials can see.
    fn list_buckets(&self) -> BoxFuture<'_, Result<Vec<String>, S3Error>>;
    /// A bucket's tags alone (one request; `None`: no such bucket).
    fn bucket_tags<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Tags>, S3Error>>;
}

/// One bucket of the in-memory backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemBucket {
    /// Its configuration.
    pub config: LiveBucket,
    /// Its current objects by key.
    pub objects: BTreeMap<String, ObjectInfo>,
    /// Noncurrent versions and delete markers (versioned buckets only).
    pub noncurrent: u64,
}

/// An in-memory S3 for `--sandbox` and tests: the same API, checked the way S3 checks it
/// (a bucket holding objects cannot be deleted).
#[derive(Debug, Default)]
pub struct InMemoryS3 {
    buckets: Mutex<BTreeMap<String, MemBucket>>,
    requests: AtomicU64,
}

fn no_bucket(op: &'static str, bucket: &str) -> S3Error {
    S3Error::Request {
        op,
        bucket: bucket.to_owned(),
        message: "NoSuchBucket: the specified bucket does not exist".to_owned(),
    }
}

impl InMemoryS3 {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store with these buckets (as saved by [`InMemoryS3::snapshot`]).
    pub fn with_buckets(buckets: BTreeMap<String, MemBucket>) -> Self {
        Self {
            buckets: Mutex::new(buckets),
            requests: AtomicU64::new(0),
        }
    }

    /// Everything it holds, to be saved between runs.
    pub fn snapshot(&self) -> BTreeMap<String, MemBucket> {
        self.lock().clone()
    }

    /// Writes an object with a chosen time (tests of backup freshness).
    pub fn put_object_at(
        &self,
        bucket: &str,
        key: &str,
        size: u64,
        last_modified: SystemTime,
    ) -> Result<(), S3Error> {
        self.with("PutObject", bucket, |b| {
            let info = ObjectInfo {
                key: key.to_owned(),
                size,
                last_modified,
            };
            if b.objects.insert(key.to_owned(), info).is_some()
                && b.config.versioning != Versioning::Off
            {
                b.noncurrent += 1;
            }
            Ok(())
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, MemBucket>> {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn with<T>(
        &self,
        op: &'static str,
        bucket: &str,
        f: impl FnOnce(&mut MemBucket) -> Result<T, S3Error>,
    ) -> Result<T, S3Error> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut buckets = self.lock();
        let b = buckets
            .get_mut(bucket)
            .ok_or_else(|| no_bucket(op, bucket))?;
        f(b)
    }
}

fn ready<'a, T: Send + 'a>(r: Result<T, S3Error>) -> BoxFuture<'a, Result<T, S3Error>> {
    Box::pin(futures::future::ready(r))
}

impl S3Backend for InMemoryS3 {
    fn describe(&self) -> String {
        "the sandbox's in-memory S3".to_owned()
    }

    fn default_region(&self) -> String {
        "us-east-1".to_owned()
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn read_bucket<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<LiveBucket>, S3Error>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        ready(Ok(self.lock().get(name).map(|b| b.config.clone())))
    }

    fn create_bucket<'a>(
        &'a self,
        name: &'a str,
        region: &'a str,
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut buckets = self.lock();
        if buckets.contains_key(name) {
            return ready(Err(S3Error::Request {
                op: "CreateBucket",
                bucket: name.to_owned(),
                message: "BucketAlreadyOwnedByYou: the bucket already exists".to_owned(),
            }));
        }
        buckets.insert(
            name.to_owned(),
            MemBucket {
                config: LiveBucket::empty(name, Some(region)),
                objects: BTreeMap::new(),
                noncurrent: 0,
            },
        );
        ready(Ok(()))
    }

    fn put_versioning<'a>(
        &'a self,
        name: &'a str,
        enabled: bool,
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        ready(self.with("PutBucketVersioning", name, |b| {
            b.config.versioning = if enabled {
                Versioning::Enabled
            } else {
                Versioning::Suspended
            };
            Ok(())
        }))
    }

    fn put_lifecycle<'a>(
        &'a self,
        name: &'a str,
        rules: &'a [LifecycleRule],
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        ready(self.with("PutBucketLifecycleConfiguration", name, |b| {
            b.config.lifecycle = rules
                .iter()
                .map(|r| LiveRule {
                    id: Some(r.rule_id()),
                    prefix: r.prefix.clone(),
                    enabled: true,
                    expiration_days: r.expiration_days,
                    noncurrent_expiration_days: r.noncurrent_expiration_days,
                    other: false,
                })
                .collect();
            Ok(())
        }))
    }

    fn put_encryption<'a>(
        &'a self,
        name: &'a str,
        encryption: Encryption,
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        ready(self.with("PutBucketEncryption", name, |b| {
            b.config.encryption = Some(encryption.as_str().to_owned());
            Ok(())
        }))
    }

    fn put_public_access_block<'a>(
        &'a self,
        name: &'a str,
        block: bool,
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        ready(self.with("PutPublicAccessBlock", name, |b| {
            b.config.public_access_block = block.then(|| PublicAccessBlock::all(true));
            Ok(())
        }))
    }

    fn put_tags<'a>(
        &'a self,
        name: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        ready(self.with("PutBucketTagging", name, |b| {
            b.config.tags = tags.clone();
            Ok(())
        }))
    }

    fn count_objects<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<u64, S3Error>> {
        ready(self.with("ListObjectVersions", name, |b| {
            Ok(b.objects.len() as u64 + b.noncurrent)
        }))
    }

    fn empty_bucket<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<u64, S3Error>> {
        ready(self.with("DeleteObject", name, |b| {
            let n = b.objects.len() as u64 + b.noncurrent;
            b.objects.clear();
            b.noncurrent = 0;
            Ok(n)
        }))
    }

    fn delete_bucket<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), S3Error>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut buckets = self.lock();
        let result = match buckets.get(name) {
            None => Err(no_bucket("DeleteBucket", name)),
            Some(b) if !b.objects.is_empty() || b.noncurrent > 0 => Err(S3Error::Request {
                op: "DeleteBucket",
                bucket: name.to_owned(),
                message: "BucketNotEmpty: the bucket you tried to delete is not empty".to_owned(),
            }),
            Some(_) => {
                buckets.remove(name);
                Ok(())
            }
        };
        ready(result)
    }

    fn newest_object<'a>(
        &'a self,
        bucket: &'a str,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Option<ObjectInfo>, S3Error>> {
        ready(self.with("ListObjectsV2", bucket, |b| {
            Ok(newest(
                b.objects.values().filter(|o| o.key.starts_with(prefix)),
            ))
        }))
    }

    fn put_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        ready(self.put_object_at(bucket, key, body.len() as u64, SystemTime::now()))
    }

    fn list_buckets(&self) -> BoxFuture<'_, Result<Vec<String>, S3Error>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        ready(Ok(self.lock().keys().cloned().collect()))
    }

    fn bucket_tags<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Tags>, S3Error>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        ready(Ok(self.lock().get(name).map(|b| b.config.tags.clone())))
    }
}

/// The newest of some objects (the greatest key among equally recent ones, so that
/// timestamped keys written in the same second still order).
pub(crate) fn newest<'a>(objects: impl Iterator<Item = &'a ObjectInfo>) -> Option<ObjectInfo> {
    objects
        .max_by(|a, b| {
            a.last_modified
                .cmp(&b.last_modified)
                .then_with(|| a.key.cmp(&b.key))
        })
        .cloned()
}
