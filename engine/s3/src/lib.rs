//! cairn's S3 provider: the environment's backup buckets, and backup freshness.
//!
//! - [`BucketConfig`]: the desired bucket, read from a `Bucket` resource and validated before
//!   any request (S3-compatible servers accept what AWS refuses, such as a retention of 0 days).
//! - [`S3Backend`]: S3 itself or an S3-compatible server ([`S3Client`], aws-sdk-s3 over rustls
//!   with ring), or the in-memory stand-in of `--sandbox` ([`InMemoryS3`]).
//! - [`read_bucket`] → [`LiveBucket`]; the pure [`plan_bucket`] / [`plan_delete`] →
//!   [`BucketPlan`] with field-level changes; [`apply_bucket`] (then read back and verified),
//!   [`delete_bucket`] (never a bucket that holds objects, never without the script's
//!   `allow_delete`).
//! - [`plan`] / [`plan_removed`] for a whole [`DesiredState`], [`changes`] for the printable
//!   plan, [`nodes`] for the executor.
//! - [`newest_object`] and the pure [`freshness`] with [`allowed_age`] (from the backup's cron
//!   schedule) for `cairn status`.
//!
//! No AWS SDK type crosses this crate's API; the library never prints.

mod apply;
mod backend;
mod client;
mod config;
mod error;
mod freshness;
mod live;
mod plan;
mod provider;
mod settings;

use std::sync::Arc;

use cairn_apply::{Emit, Failure, Node};
use cairn_model::{DesiredState, Provider, ResourceId};
use cairn_plan::plan::{Action, Change};

pub use apply::{apply_bucket, delete_bucket, newest_object, purge_bucket, read_bucket};
pub use backend::{InMemoryS3, MemBucket, S3Backend};
pub use client::S3Client;
pub use config::{BucketConfig, Encryption, LifecycleRule, MAX_TAGS, bucket_name, region_name};
pub use error::{Invalid, S3Error};
pub use freshness::{Cron, Freshness, SLACK, ScheduleError, allowed_age, freshness, largest_gap};
pub use live::{LiveBucket, LiveRule, ObjectInfo, PublicAccessBlock, Versioning};
pub use plan::{BucketPlan, normalize_region, plan_bucket, plan_delete};
pub use provider::{Buckets, BucketsError, S3Provider, open_sandbox};
pub use settings::{S3Settings, StaticCredentials};

/// The tag keys that mark a bucket as cairn's, and whose environment it belongs to.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// See [`MANAGED_BY`].
pub const ENVIRONMENT: &str = "cairn.dev/environment";

/// The id of a bucket resource.
pub fn bucket_id(name: &str) -> ResourceId {
    ResourceId::other(Provider::S3, "Bucket", None, name)
}

/// The S3 backend of an environment: the sandbox's in-memory store, or a client built from
/// the `backups: s3(...)` setting.
pub async fn connect(settings: &S3Settings) -> Result<Arc<dyn S3Backend>, S3Error> {
    Ok(Arc::new(S3Client::new(settings).await?))
}

/// The buckets a state declares, validated; every problem of every bucket is reported.
pub fn desired_buckets(state: &DesiredState) -> Result<Vec<BucketConfig>, S3Error> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for r in &state.resources {
        if r.id.provider != Provider::S3 || r.id.kind != "Bucket" {
            continue;
        }
        match BucketConfig::from_resource(r) {
            Ok(c) => out.push(c),
            Err(S3Error::Invalid(list)) => problems.extend(list),
            Err(other) => return Err(other),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(S3Error::Invalid(problems))
    }
}

/// Whether the script allows deleting a bucket (`env.allow_delete("Bucket", NAME)`).
pub fn delete_allowed(state: &DesiredState, name: &str) -> bool {
    let id = bucket_id(name).to_string();
    state.environment.allow_delete.contains(&id)
}

/// One bucket's step: the desired configuration (none for a deletion) and its plan.
#[derive(Debug, Clone)]
pub struct BucketStep {
    /// What the script declares.
    pub desired: Option<BucketConfig>,
    /// What would change.
    pub plan: BucketPlan,
    /// The live configuration the plan read (`None`: the bucket does not exist).
    pub live: Option<LiveBucket>,
    /// A destroy with `--delete-data`: its objects are deleted before the bucket.
    pub purge: bool,
}

/// The S3 part of an environment's plan.
#[derive(Clone)]
pub struct S3Part {
    /// Where the buckets live.
    pub backend: Arc<dyn S3Backend>,
    /// One step per bucket, in name order.
    pub steps: Vec<BucketStep>,
}

/// Validates every declared bucket (before any request), then reads each and plans it.
pub async fn plan(state: &DesiredState, backend: Arc<dyn S3Backend>) -> Result<S3Part, S3Error> {
    let desired = desired_buckets(state)?;
    let reads =
        futures::future::join_all(desired.iter().map(|d| backend.read_bucket(&d.name))).await;
    let mut steps = Vec::new();
    for (d, live) in desired.into_iter().zip(reads) {
        let live = live?;
        let plan = plan_bucket(&d, live.as_ref());
        steps.push(BucketStep {
            desired: Some(d),
            plan,
            live,
            purge: false,
        });
    }
    steps.sort_by(|a, b| a.plan.bucket.cmp(&b.plan.bucket));
    Ok(S3Part { backend, steps })
}

/// Plans the deletion of buckets the script no longer declares. `candidates` are the names
/// cairn applied before (from its inventory); only a bucket that still exists and is tagged
/// as this environment's is considered. Kept unless the script allows the deletion; an error
/// if it is allowed but holds objects.
pub async fn plan_removed(
    state: &DesiredState,
    backend: &dyn S3Backend,
    candidates: &[String],
) -> Result<Vec<BucketStep>, S3Error> {
    let declared: Vec<String> = desired_buckets(state)?
        .into_iter()
        .map(|b| b.name)
        .collect();
    let mut steps = Vec::new();
    for name in candidates {
        if declared.contains(name) {
            continue;
        }
        let Some(live) = backend.read_bucket(name).await? else {
            continue;
        };
        let ours = live.tags.get(MANAGED_BY).map(String::as_str) == Some("cairn")
            && live.tags.get(ENVIRONMENT) == Some(&state.environment.name);
        if !ours {
            continue;
        }
        let allowed = delete_allowed(state, name);
        let count = if allowed {
            backend.count_objects(name).await?
        } else {
            0
        };
        steps.push(BucketStep {
            desired: None,
            plan: plan_delete(&live, allowed, count)?,
            live: Some(live),
            purge: false,
        });
    }
    Ok(steps)
}

/// Plans a destroy's buckets: every bucket tagged as the environment's, kept — or, with
/// `delete_data`, deleted with every object in it (the plan says how many).
pub async fn plan_destroyed(
    state: &DesiredState,
    backend: &dyn S3Backend,
    delete_data: bool,
) -> Result<Vec<BucketStep>, S3Error> {
    let mut steps = Vec::new();
    for name in owned_buckets(backend, &state.environment.name).await? {
        let Some(live) = backend.read_bucket(&name).await? else {
            continue;
        };
        let plan = if delete_data {
            let count = backend.count_objects(&name).await?;
            let mut plan = plan_delete(&live, true, 0)?;
            plan.reason = Some(format!(
                "the environment is destroyed with its data: {count} object version(s) deleted with it"
            ));
            plan
        } else {
            let mut plan = plan_delete(&live, false, 0)?;
            plan.reason = Some("holds data: `cairn destroy --delete-data` deletes it".to_owned());
            plan
        };
        steps.push(BucketStep {
            desired: None,
            plan,
            live: Some(live),
            purge: delete_data,
        });
    }
    Ok(steps)
}

/// The buckets tagged as this environment's (`app.kubernetes.io/managed-by: cairn`,
/// `cairn.dev/environment: ENV`): candidates for [`plan_removed`] when there is no inventory.
/// One ListBuckets, then one GetBucketTagging per bucket.
pub async fn owned_buckets(
    backend: &dyn S3Backend,
    environment: &str,
) -> Result<Vec<String>, S3Error> {
    let mut out = Vec::new();
    for name in backend.list_buckets().await? {
        let Some(tags) = backend.bucket_tags(&name).await? else {
            continue;
        };
        if tags.get(MANAGED_BY).map(String::as_str) == Some("cairn")
            && tags.get(ENVIRONMENT).map(String::as_str) == Some(environment)
        {
            out.push(name);
        }
    }
    Ok(out)
}

/// One backup's state, for `cairn status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupStatus {
    /// The bucket.
    pub bucket: String,
    /// The key prefix the backup writes under.
    pub prefix: String,
    /// The newest object under the prefix.
    pub newest: Option<ObjectInfo>,
    /// Its freshness at `now`.
    pub freshness: Freshness,
}

/// The newest backup under `prefix` and its freshness at `now`, for a backup on `schedule`
/// (a cron expression: the allowed age is [`allowed_age`]).
pub async fn backup_status(
    backend: &dyn S3Backend,
    bucket: &str,
    prefix: &str,
    schedule: &str,
    now: std::time::SystemTime,
) -> Result<BackupStatus, S3Error> {
    let allowed = allowed_age(schedule).map_err(S3Error::Schedule)?;
    let newest = backend.newest_object(bucket, prefix).await?;
    Ok(BackupStatus {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        freshness: freshness(newest.as_ref(), now, allowed),
        newest,
    })
}

/// The buckets' changes in the common plan's terms (no-ops included).
pub fn changes(steps: &[BucketStep]) -> Vec<Change> {
    steps
        .iter()
        .map(|s| Change {
            id: bucket_id(&s.plan.bucket),
            action: s.plan.action,
            fields: if s.plan.action == Action::Create {
                Vec::new()
            } else {
                s.plan.fields.clone()
            },
            reason: s.plan.reason.clone(),
            holds_data: true,
            help: None,
            server_message: None,
            declared_at: None,
        })
        .collect()
}

/// One executor node per bucket that changes (creates, updates, deletions).
pub fn nodes(backend: &Arc<dyn S3Backend>, steps: &[BucketStep]) -> Vec<Node> {
    steps
        .iter()
        .filter(|s| s.plan.has_changes())
        .map(|s| {
            let backend = backend.clone();
            let step = s.clone();
            Node {
                id: bucket_id(&s.plan.bucket),
                action: s.plan.action,
                depends_on: Vec::new(),
                work: Box::new(move |_emit: Emit| {
                    Box::pin(async move {
                        let result = match &step.desired {
                            Some(d) => apply_bucket(&*backend, d, &step.plan).await.map(|_| ()),
                            None if step.purge => purge_bucket(&*backend, &step.plan).await,
                            None => delete_bucket(&*backend, &step.plan).await,
                        };
                        result.map_err(|e| Failure::new(e.to_string()))
                    })
                }),
            }
        })
        .collect()
}
