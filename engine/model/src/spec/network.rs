//! Typed specs of networking, DNS, certificates, routes, backups, alerts and smoke checks.
//!
//! Each spec is what one stdlib call declares, once its options are parsed and checked and
//! what it refers to in the environment (namespace, zone, issuer, bucket) is resolved: the
//! lowering turns it into resources without looking anything else up.

use crate::{ResourceId, Value};

/// A DNS record set (`env.dns_a(...)`, `env.dns_record(...)`…).
#[derive(Debug, Clone, PartialEq)]
pub struct DnsRecordSpec {
    /// The zone it belongs to, without a trailing dot.
    pub zone: String,
    /// Its fully qualified name, without a trailing dot.
    pub fqdn: String,
    /// The record type, upper case.
    pub rtype: String,
    /// The values as written.
    pub values: Vec<String>,
    /// Time to live in seconds.
    pub ttl: i64,
}

/// An ACME certificate (`env.certificate(...)`).
#[derive(Debug, Clone, PartialEq)]
pub struct CertificateSpec {
    /// The certificate's name.
    pub name: String,
    /// The host names it covers (wildcards allowed).
    pub names: Vec<String>,
    /// The namespace of its TLS Secret.
    pub namespace: String,
    /// The environment's ACME issuer settings, when it has one.
    pub issuer: Option<Value>,
}

impl CertificateSpec {
    /// The TLS Secret it is stored in.
    pub fn secret_name(&self) -> String {
        format!("{}-tls", self.name)
    }
}

/// An HTTP(S) route through the ingress controller (`env.route(...)`).
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    /// The host name routed.
    pub host: String,
    /// The path prefix.
    pub path: String,
    /// The namespace of the Ingress.
    pub namespace: String,
    /// The environment's ingress class, when it sets one.
    pub ingress_class: Option<String>,
    /// The Service routed to.
    pub service: String,
    /// Its port.
    pub port: i64,
    /// The workload behind the Service.
    pub target: ResourceId,
    /// The certificate serving the host, when TLS is on.
    pub tls: Option<RouteTls>,
}

/// The certificate of a route.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteTls {
    /// Its TLS Secret.
    pub secret_name: String,
    /// The certificate resource.
    pub certificate: ResourceId,
}

/// Where an environment variable's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvSource {
    /// A literal value.
    Plain(String),
    /// A key of a Secret.
    Secret {
        /// The Secret.
        name: String,
        /// The key.
        key: String,
    },
    /// A key of a ConfigMap.
    ConfigMap {
        /// The ConfigMap.
        name: String,
        /// The key.
        key: String,
    },
}

/// One environment variable of a container.
pub type EnvVar = (String, EnvSource);

/// A scheduled backup of a PostgreSQL service and its restore template (`env.backup(...)`).
#[derive(Debug, Clone, PartialEq)]
pub struct BackupSpec {
    /// The backing service's name (`<name>-backup`, `<name>-restore`).
    pub database: String,
    /// The database a restore loads into by default.
    pub target_database: String,
    /// The service's workload, which must be there first.
    pub workload: ResourceId,
    /// The namespace of the CronJobs.
    pub namespace: String,
    /// The cron schedule.
    pub schedule: String,
    /// How long the bucket keeps each backup.
    pub keep_days: i64,
    /// The object key prefix.
    pub prefix: String,
    /// The image with `pg_dump` and `psql`.
    pub image: String,
    /// The image with the `aws` CLI.
    pub upload_image: String,
    /// `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE` from the service.
    pub connection: Vec<EnvVar>,
    /// The environment's backup bucket.
    pub bucket: BackupBucket,
}

/// The bucket backups go to (`backups: s3(...)`).
#[derive(Debug, Clone, PartialEq)]
pub struct BackupBucket {
    /// The bucket's name.
    pub name: String,
    /// Its region.
    pub region: Option<String>,
    /// Its endpoint, when not AWS.
    pub endpoint: Option<String>,
    /// Credentials, when given: the Secret that holds them, the access key id and the secret.
    pub credentials: Option<BucketCredentials>,
}

/// The credentials of the backup bucket, kept in a Secret of the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketCredentials {
    /// The Secret's name (`<environment>-backup-s3`).
    pub secret: String,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Value,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Value,
}

/// An alert rule (`env.alert(...)`).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSpec {
    /// The alert's name.
    pub name: String,
    /// The environment whose label it carries.
    pub environment: String,
    /// The PromQL expression.
    pub expr: String,
    /// How long it must hold.
    pub r#for: String,
    /// Its severity label.
    pub severity: String,
    /// Its summary annotation.
    pub summary: String,
    /// Its description annotation.
    pub description: Option<String>,
}

/// Where an environment's alerts go (`env.alert_route(...)`).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRouteSpec {
    /// The environment whose alerts are routed.
    pub environment: String,
    /// The receiver's settings (`slack(...)`, `email(...)`, `webhook(...)`).
    pub receiver: Value,
}

/// A smoke check (`env.smoke(name, check)`).
#[derive(Debug, Clone, PartialEq)]
pub struct SmokeSpec {
    /// The check's name.
    pub name: String,
    /// The environment.
    pub environment: String,
    /// The namespace of a SQL check's Job.
    pub namespace: String,
    /// What it checks.
    pub check: SmokeCheckSpec,
}

/// What a smoke check does.
#[derive(Debug, Clone, PartialEq)]
pub enum SmokeCheckSpec {
    /// An HTTP(S) GET from where cairn runs.
    Http {
        /// The URL.
        url: String,
        /// The expected status.
        status: i64,
        /// Text the body must contain.
        body: Option<String>,
    },
    /// A TCP connection from where cairn runs.
    Tcp {
        /// The host.
        host: String,
        /// The port.
        port: i64,
    },
    /// A query run by `psql` in a Job.
    Sql(SqlCheckSpec),
}

/// A SQL smoke check.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlCheckSpec {
    /// The backing service's name.
    pub database: String,
    /// The query.
    pub query: String,
    /// The image with `psql`.
    pub image: String,
    /// The connection variables (`PGHOST`…, `PGCONNECT_TIMEOUT`).
    pub connection: Vec<EnvVar>,
    /// The service's workload.
    pub workload: ResourceId,
}

/// A custom resource an operator acts on (`env.object(...)`).
#[derive(Debug, Clone, PartialEq)]
pub struct CustomObjectSpec {
    /// Its `apiVersion`.
    pub api_version: String,
    /// Its kind.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its top-level fields besides `metadata`, in the order given.
    pub fields: Vec<(String, Value)>,
    /// The `metadata` entries given (labels, annotations), in the order given.
    pub metadata: Vec<(String, Value)>,
    /// Whether it holds data (kept when the script drops it).
    pub protected: bool,
}
