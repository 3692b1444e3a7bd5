//! Applying a bucket plan: create, put what changed, read back and verify.

use crate::backend::S3Backend;
use crate::config::BucketConfig;
use crate::error::S3Error;
use crate::live::{LiveBucket, ObjectInfo};
use crate::plan::{BucketPlan, plan_bucket};
use cairn_plan::plan::Action;

/// Reads a bucket's live configuration (`None`: it does not exist). One HEAD, then the five
/// configuration reads in parallel; "not configured" answers are empty.
pub async fn read_bucket(
    backend: &dyn S3Backend,
    name: &str,
) -> Result<Option<LiveBucket>, S3Error> {
    backend.read_bucket(name).await
}

/// Applies a create or update plan: creates the bucket (with a location constraint unless
/// us-east-1), puts versioning, lifecycle, encryption, public access block and tags (on an
/// update only the groups that changed), then reads the bucket back and verifies that it
/// matches. Returns the bucket as read back.
pub async fn apply_bucket(
    backend: &dyn S3Backend,
    desired: &BucketConfig,
    plan: &BucketPlan,
) -> Result<LiveBucket, S3Error> {
    desired.validate()?;
    if let Some(conflict) = &plan.conflict {
        return Err(S3Error::Refused(conflict.clone()));
    }
    let name = desired.name.as_str();
    match plan.action {
        Action::Create => {
            let region = desired
                .region
                .clone()
                .unwrap_or_else(|| backend.default_region());
            backend.create_bucket(name, &region).await?;
        }
        Action::Update | Action::Adopt => {}
        Action::NoOp => {
            return backend
                .read_bucket(name)
                .await?
                .ok_or_else(|| S3Error::Verify {
                    bucket: name.to_owned(),
                    fields: vec!["the bucket no longer exists".to_owned()],
                });
        }
        Action::Delete | Action::Keep | Action::Replace | Action::Refuse => {
            return Err(S3Error::Refused(format!(
                "bucket {name}: a {:?} plan is carried out by delete_bucket, not apply_bucket",
                plan.action
            )));
        }
    }
    // A create plan lists every field that differs from a new, unconfigured bucket; an
    // update only those that changed. Only those are put.
    if plan.touches("versioning") {
        backend.put_versioning(name, desired.versioning).await?;
    }
    if plan.touches("lifecycle") {
        backend.put_lifecycle(name, &desired.lifecycle).await?;
    }
    if plan.touches("encryption") {
        backend.put_encryption(name, desired.encryption).await?;
    }
    if plan.touches("block_public_access") {
        backend
            .put_public_access_block(name, desired.block_public_access)
            .await?;
    }
    if plan.touches("tags") {
        backend.put_tags(name, &desired.tags).await?;
    }
    let live = backend.read_bucket(name).await?;
    let check = plan_bucket(desired, live.as_ref());
    match live {
        Some(live) if check.action == Action::NoOp => Ok(live),
        _ => Err(S3Error::Verify {
            bucket: name.to_owned(),
            fields: check.fields.iter().map(|f| f.path.clone()).collect(),
        }),
    }
}

/// Carries out a deletion plan: only a [`Action::Delete`] plan (allowed by the script),
/// and only if the bucket is still empty.
pub async fn delete_bucket(backend: &dyn S3Backend, plan: &BucketPlan) -> Result<(), S3Error> {
    if plan.action != Action::Delete {
        return Err(S3Error::Refused(format!(
            "bucket {} is not planned for deletion: {}",
            plan.bucket,
            plan.reason.as_deref().unwrap_or("it is protected")
        )));
    }
    let count = backend.count_objects(&plan.bucket).await?;
    if count > 0 {
        return Err(S3Error::NotEmpty {
            bucket: plan.bucket.clone(),
            count,
        });
    }
    backend.delete_bucket(&plan.bucket).await
}

/// Deletes a bucket planned for deletion with its data (a destroy with `--delete-data`): its
/// object versions first, then the bucket.
pub async fn purge_bucket(backend: &dyn S3Backend, plan: &BucketPlan) -> Result<(), S3Error> {
    if plan.action != Action::Delete {
        return delete_bucket(backend, plan).await;
    }
    backend.empty_bucket(&plan.bucket).await?;
    backend.delete_bucket(&plan.bucket).await
}

/// The most recently written object under `prefix` (every page of the listing).
pub async fn newest_object(
    backend: &dyn S3Backend,
    bucket: &str,
    prefix: &str,
) -> Result<Option<ObjectInfo>, S3Error> {
    backend.newest_object(bucket, prefix).await
}
