//! [`S3Client`]: the [`S3Backend`] on S3 itself or an S3-compatible server (moto), with
//! aws-sdk-s3 over rustls + ring.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RequestChecksumCalculation,
    ResponseChecksumValidation, RuntimeComponents, SharedHttpClient,
};
use aws_sdk_s3::error::{BoxError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CreateBucketConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRuleFilter,
    NoncurrentVersionExpiration, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging, VersioningConfiguration,
};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use futures::future::BoxFuture;

use crate::backend::{S3Backend, Tags, newest};
use crate::config::{Encryption, LifecycleRule};
use crate::error::S3Error;
use crate::live::{LiveBucket, LiveRule, ObjectInfo, PublicAccessBlock, Versioning};
use crate::settings::S3Settings;

/// Counts requests sent (each attempt).
#[derive(Debug)]
struct CountRequests(Arc<AtomicU64>);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "cairn-count-requests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A client of S3 or of an S3-compatible server.
#[derive(Debug, Clone)]
pub struct S3Client {
    client: Client,
    region: String,
    endpoint: Option<String>,
    requests: Arc<AtomicU64>,
}

fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

impl S3Client {
    /// Connects with these settings: credentials from the script, or else the standard AWS
    /// environment/profile chain (which is also asked for the region when the script names
    /// none; us-east-1 at last).
    pub async fn new(settings: &S3Settings) -> Result<S3Client, S3Error> {
        let http = http_client();
        let requests = Arc::new(AtomicU64::new(0));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(60))
            .build();
        let mut builder = match &settings.credentials {
            Some(c) => aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .credentials_provider(Credentials::new(
                    c.access_key_id.clone(),
                    c.secret_access_key.clone(),
                    None,
                    None,
                    "cairn-script",
                ))
                .region(Region::new(
                    settings
                        .region
                        .clone()
                        .unwrap_or_else(|| "us-east-1".to_owned()),
                ))
                .http_client(http),
            None => {
                let mut loader =
                    aws_config::defaults(BehaviorVersion::latest()).http_client(http.clone());
                if let Some(r) = &settings.region {
                    loader = loader.region(Region::new(r.clone()));
                }
                let shared = loader.load().await;
                let mut b = aws_sdk_s3::config::Builder::from(&shared).http_client(http);
                if shared.region().is_none() {
                    b = b.region(Region::new("us-east-1"));
                }
                b
            }
        };
        builder = builder
            .timeout_config(timeouts)
            .force_path_style(settings.path_style)
            .interceptor(CountRequests(requests.clone()));
        if let Some(endpoint) = &settings.endpoint {
            // S3-compatible servers do not all understand the newer flexible checksums.
            builder = builder
                .endpoint_url(endpoint)
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        let config = builder.build();
        let region = config
            .region()
            .map(|r| r.as_ref().to_owned())
            .unwrap_or_else(|| "us-east-1".to_owned());
        Ok(S3Client {
            client: Client::from_conf(config),
            region,
            endpoint: settings.endpoint.clone(),
            requests,
        })
    }
}

/// The error code of a failed request, if the server sent one.
fn code<E: ProvideErrorMetadata>(err: &SdkError<E>) -> Option<&str> {
    err.as_service_error().and_then(ProvideErrorMetadata::code)
}

fn failed<E>(op: &'static str, bucket: &str, err: SdkError<E>) -> S3Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = match err.as_service_error() {
        Some(e) => match (e.code(), e.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_owned(),
            _ => DisplayErrorContext(&err).to_string(),
        },
        None => DisplayErrorContext(&err).to_string(),
    };
    S3Error::Request {
        op,
        bucket: bucket.to_owned(),
        message,
    }
}

fn build_error(op: &'static str, bucket: &str, e: impl std::fmt::Display) -> S3Error {
    S3Error::Request {
        op,
        bucket: bucket.to_owned(),
        message: format!("cannot build the request (this is a bug): {e}"),
    }
}

fn days(d: Option<i32>) -> Option<u32> {
    d.and_then(|d| u32::try_from(d).ok())
}

#[allow(deprecated)] // the legacy top-level prefix is still what some servers answer
fn live_rule(r: &aws_sdk_s3::types::LifecycleRule) -> LiveRule {
    let filter = r.filter();
    let prefix = filter
        .and_then(LifecycleRuleFilter::prefix)
        .or(r.prefix())
        .unwrap_or_default()
        .to_owned();
    let filter_other = filter.is_some_and(|f| {
        f.tag().is_some()
            || f.and().is_some()
            || f.object_size_greater_than().is_some()
            || f.object_size_less_than().is_some()
    });
    let expiration = r.expiration();
    let noncurrent = r.noncurrent_version_expiration();
    let other = filter_other
        || !r.transitions().is_empty()
        || !r.noncurrent_version_transitions().is_empty()
        || r.abort_incomplete_multipart_upload().is_some()
        || expiration
            .is_some_and(|e| e.date().is_some() || e.expired_object_delete_marker().is_some())
        || noncurrent.is_some_and(|n| n.newer_noncurrent_versions().is_some());
    LiveRule {
        id: r.id().map(str::to_owned),
        prefix,
        enabled: *r.status() == ExpirationStatus::Enabled,
        expiration_days: days(expiration.and_then(LifecycleExpiration::days)),
        noncurrent_expiration_days: days(
            noncurrent.and_then(NoncurrentVersionExpiration::noncurrent_days),
        ),
        other,
    }
}

impl S3Client {
    async fn read(&self, name: &str) -> Result<Option<LiveBucket>, S3Error> {
        let c = &self.client;
        let head = match c.head_bucket().bucket(name).send().await {
            Ok(h) => h,
            Err(e) if matches!(code(&e), Some("NotFound" | "NoSuchBucket")) => return Ok(None),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                return Ok(None);
            }
            Err(e) => return Err(failed("HeadBucket", name, e)),
        };
        let (versioning, lifecycle, encryption, pab, tags) = futures::join!(
            c.get_bucket_versioning().bucket(name).send(),
            c.get_bucket_lifecycle_configuration().bucket(name).send(),
            c.get_bucket_encryption().bucket(name).send(),
            c.get_public_access_block().bucket(name).send(),
            c.get_bucket_tagging().bucket(name).send(),
        );
        let versioning = match versioning
            .map_err(|e| failed("GetBucketVersioning", name, e))?
            .status()
        {
            Some(BucketVersioningStatus::Enabled) => Versioning::Enabled,
            Some(BucketVersioningStatus::Suspended) => Versioning::Suspended,
            _ => Versioning::Off,
        };
        let lifecycle = match lifecycle {
            Ok(l) => l.rules().iter().map(live_rule).collect(),
            Err(e) if code(&e) == Some("NoSuchLifecycleConfiguration") => Vec::new(),
            Err(e) => return Err(failed("GetBucketLifecycleConfiguration", name, e)),
        };
        let encryption = match encryption {
            Ok(out) => out
                .server_side_encryption_configuration()
                .and_then(|c| c.rules().first())
                .and_then(ServerSideEncryptionRule::apply_server_side_encryption_by_default)
                .map(|d| d.sse_algorithm().as_str().to_owned()),
            Err(e) if code(&e) == Some("ServerSideEncryptionConfigurationNotFoundError") => None,
            Err(e) => return Err(failed("GetBucketEncryption", name, e)),
        };
        let public_access_block = match pab {
            Ok(out) => out
                .public_access_block_configuration()
                .map(|p| PublicAccessBlock {
                    block_public_acls: p.block_public_acls().unwrap_or(false),
                    ignore_public_acls: p.ignore_public_acls().unwrap_or(false),
                    block_public_policy: p.block_public_policy().unwrap_or(false),
                    restrict_public_buckets: p.restrict_public_buckets().unwrap_or(false),
                }),
            Err(e) if code(&e) == Some("NoSuchPublicAccessBlockConfiguration") => None,
            Err(e) => return Err(failed("GetPublicAccessBlock", name, e)),
        };
        let tags = match tags {
            Ok(out) => out
                .tag_set()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect(),
            Err(e) if code(&e) == Some("NoSuchTagSet") => BTreeMap::new(),
            Err(e) => return Err(failed("GetBucketTagging", name, e)),
        };
        Ok(Some(LiveBucket {
            name: name.to_owned(),
            region: head.bucket_region().map(str::to_owned),
            versioning,
            lifecycle,
            encryption,
            public_access_block,
            tags,
        }))
    }

    async fn create(&self, name: &str, region: &str) -> Result<(), S3Error> {
        let mut req = self.client.create_bucket().bucket(name);
        if region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        req.send()
            .await
            .map(|_| ())
            .map_err(|e| failed("CreateBucket", name, e))
    }

    async fn lifecycle(&self, name: &str, rules: &[LifecycleRule]) -> Result<(), S3Error> {
        const OP: &str = "PutBucketLifecycleConfiguration";
        if rules.is_empty() {
            return self
                .client
                .delete_bucket_lifecycle()
                .bucket(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| failed("DeleteBucketLifecycle", name, e));
        }
        let mut out = Vec::new();
        for r in rules {
            let mut b = aws_sdk_s3::types::LifecycleRule::builder()
                .id(r.rule_id())
                .status(ExpirationStatus::Enabled)
                .filter(
                    LifecycleRuleFilter::builder()
                        .prefix(r.prefix.clone())
                        .build(),
                );
            if let Some(d) = r.expiration_days {
                b = b.expiration(
                    LifecycleExpiration::builder()
                        .days(i32::try_from(d).map_err(|e| build_error(OP, name, e))?)
                        .build(),
                );
            }
            if let Some(d) = r.noncurrent_expiration_days {
                b = b.noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(i32::try_from(d).map_err(|e| build_error(OP, name, e))?)
                        .build(),
                );
            }
            out.push(b.build().map_err(|e| build_error(OP, name, e))?);
        }
        let config = BucketLifecycleConfiguration::builder()
            .set_rules(Some(out))
            .build()
            .map_err(|e| build_error(OP, name, e))?;
        self.client
            .put_bucket_lifecycle_configuration()
            .bucket(name)
            .lifecycle_configuration(config)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed(OP, name, e))
    }

    async fn encryption(&self, name: &str, encryption: Encryption) -> Result<(), S3Error> {
        const OP: &str = "PutBucketEncryption";
        let algorithm = match encryption {
            Encryption::Aes256 => ServerSideEncryption::Aes256,
            Encryption::AwsKms => ServerSideEncryption::AwsKms,
        };
        let default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(algorithm)
            .build()
            .map_err(|e| build_error(OP, name, e))?;
        let config = ServerSideEncryptionConfiguration::builder()
            .rules(
                ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(default)
                    .build(),
            )
            .build()
            .map_err(|e| build_error(OP, name, e))?;
        self.client
            .put_bucket_encryption()
            .bucket(name)
            .server_side_encryption_configuration(config)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed(OP, name, e))
    }

    async fn public_access(&self, name: &str, block: bool) -> Result<(), S3Error> {
        if !block {
            return self
                .client
                .delete_public_access_block()
                .bucket(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| failed("DeletePublicAccessBlock", name, e));
        }
        self.client
            .put_public_access_block()
            .bucket(name)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed("PutPublicAccessBlock", name, e))
    }

    async fn tags(&self, name: &str, tags: &BTreeMap<String, String>) -> Result<(), S3Error> {
        const OP: &str = "PutBucketTagging";
        if tags.is_empty() {
            return self
                .client
                .delete_bucket_tagging()
                .bucket(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| failed("DeleteBucketTagging", name, e));
        }
        let set = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| build_error(OP, name, e))?;
        let tagging = Tagging::builder()
            .set_tag_set(Some(set))
            .build()
            .map_err(|e| build_error(OP, name, e))?;
        self.client
            .put_bucket_tagging()
            .bucket(name)
            .tagging(tagging)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed(OP, name, e))
    }

    async fn count(&self, name: &str) -> Result<u64, S3Error> {
        let mut count = 0u64;
        let (mut key, mut version) = (None::<String>, None::<String>);
        loop {
            let out = self
                .client
                .list_object_versions()
                .bucket(name)
                .set_key_marker(key.take())
                .set_version_id_marker(version.take())
                .send()
                .await
                .map_err(|e| failed("ListObjectVersions", name, e))?;
            count += (out.versions().len() + out.delete_markers().len()) as u64;
            if out.is_truncated() != Some(true) {
                return Ok(count);
            }
            key = out.next_key_marker().map(str::to_owned);
            version = out.next_version_id_marker().map(str::to_owned);
            if key.is_none() {
                return Ok(count);
            }
        }
    }

    /// Deletes every version and delete marker, a page (up to 1,000) at a time, the
    /// deletions of a page in parallel.
    async fn empty(&self, name: &str) -> Result<u64, S3Error> {
        let mut deleted = 0u64;
        loop {
            let out = self
                .client
                .list_object_versions()
                .bucket(name)
                .send()
                .await
                .map_err(|e| failed("ListObjectVersions", name, e))?;
            let versions = out
                .versions()
                .iter()
                .map(|v| (v.key(), v.version_id()))
                .chain(
                    out.delete_markers()
                        .iter()
                        .map(|m| (m.key(), m.version_id())),
                );
            let deletions: Vec<_> = versions
                .filter_map(|(key, version)| Some((key?.to_owned(), version.map(str::to_owned))))
                .map(|(key, version)| {
                    self.client
                        .delete_object()
                        .bucket(name)
                        .key(key)
                        .set_version_id(version)
                        .send()
                })
                .collect();
            if deletions.is_empty() {
                return Ok(deleted);
            }
            for r in futures::future::join_all(deletions).await {
                r.map_err(|e| failed("DeleteObject", name, e))?;
                deleted += 1;
            }
        }
    }

    async fn newest(&self, bucket: &str, prefix: &str) -> Result<Option<ObjectInfo>, S3Error> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut best: Option<ObjectInfo> = None;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failed("ListObjectsV2", bucket, e))?;
            let objects: Vec<ObjectInfo> = page
                .contents()
                .iter()
                .filter_map(|o| {
                    Some(ObjectInfo {
                        key: o.key()?.to_owned(),
                        size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                        last_modified: SystemTime::try_from(*o.last_modified()?).ok()?,
                    })
                })
                .collect();
            best = newest(best.iter().chain(objects.iter()));
        }
        Ok(best)
    }
}

fn unit<T, E>(op: &'static str, bucket: &str, r: Result<T, SdkError<E>>) -> Result<(), S3Error>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    r.map(|_| ()).map_err(|e| failed(op, bucket, e))
}

impl S3Backend for S3Client {
    fn describe(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("S3 at {e} ({})", self.region),
            None => format!("S3 ({})", self.region),
        }
    }

    fn default_region(&self) -> String {
        self.region.clone()
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn read_bucket<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<LiveBucket>, S3Error>> {
        Box::pin(self.read(name))
    }

    fn create_bucket<'a>(
        &'a self,
        name: &'a str,
        region: &'a str,
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        Box::pin(self.create(name, region))
    }

    fn put_versioning<'a>(
        &'a self,
        name: &'a str,
        enabled: bool,
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        Box::pin(async move {
            let status = if enabled {
                BucketVersioningStatus::Enabled
            } else {
                BucketVersioningStatus::Suspended
            };
            let r = self
                .client
                .put_bucket_versioning()
                .bucket(name)
                .versioning_configuration(VersioningConfiguration::builder().status(status).build())
                .send()
                .await;
            unit("PutBucketVersioning", name, r)
        })
    }

    fn put_lifecycle<'a>(
        &'a self,
        name: &'a str,
        rules: &'a [LifecycleRule],
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        Box::pin(self.lifecycle(name, rules))
    }

    fn put_encryption<'a>(
        &'a self,
        name: &'a str,
        encryption: Encryption,
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        Box::pin(self.encryption(name, encryption))
    }

    fn put_public_access_block<'a>(
        &'a self,
        name: &'a str,
        block: bool,
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        Box::pin(self.public_access(name, block))
    }

    fn put_tags<'a>(
        &'a self,
        name: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        Box::pin(self.tags(name, tags))
    }

    fn count_objects<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<u64, S3Error>> {
        Box::pin(self.count(name))
    }

    fn empty_bucket<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<u64, S3Error>> {
        Box::pin(self.empty(name))
    }

    fn delete_bucket<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), S3Error>> {
        Box::pin(async move {
            let r = self.client.delete_bucket().bucket(name).send().await;
            unit("DeleteBucket", name, r)
        })
    }

    fn newest_object<'a>(
        &'a self,
        bucket: &'a str,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Option<ObjectInfo>, S3Error>> {
        Box::pin(self.newest(bucket, prefix))
    }

    fn put_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        Box::pin(async move {
            let r = self
                .client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(body))
                .send()
                .await;
            unit("PutObject", bucket, r)
        })
    }

    fn list_buckets(&self) -> BoxFuture<'_, Result<Vec<String>, S3Error>> {
        Box::pin(async move {
            let out = self
                .client
                .list_buckets()
                .send()
                .await
                .map_err(|e| failed("ListBuckets", "-", e))?;
            Ok(out
                .buckets()
                .iter()
                .filter_map(|b| b.name().map(str::to_owned))
                .collect())
        })
    }

    fn bucket_tags<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Tags>, S3Error>> {
        Box::pin(async move {
            match self.client.get_bucket_tagging().bucket(name).send().await {
                Ok(out) => Ok(Some(
                    out.tag_set()
                        .iter()
                        .map(|t| (t.key().to_owned(), t.value().to_owned()))
                        .collect(),
                )),
                Err(e) if code(&e) == Some("NoSuchTagSet") => Ok(Some(BTreeMap::new())),
                Err(e) if code(&e) == Some("NoSuchBucket") => Ok(None),
                Err(e) => Err(failed("GetBucketTagging", name, e)),
            }
        })
    }
}
