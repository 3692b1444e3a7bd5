//! Lowering of network specs: DNS, certificates, routes, backups, alerts, smoke checks and
//! custom resources.

use cairn_model::spec::network::{
    AlertRouteSpec, AlertSpec, BackupSpec, CertificateSpec, CustomObjectSpec, DnsRecordSpec,
    EnvSource, EnvVar, RouteSpec, SmokeCheckSpec, SmokeSpec, SqlCheckSpec,
};
use cairn_model::validate::name_covers;
use cairn_model::{Provider, Resource, ResourceId, Value};

use crate::k8s::{self, Container};
use crate::types::{EnvValue, KeyRef};

/// The dump step of a backup: writes the compressed dump and the object key it goes to.
const DUMP_SCRIPT: &str = include_str!("../scripts/backup-dump.sh");
/// The upload step of a backup.
const UPLOAD_SCRIPT: &str = include_str!("../scripts/backup-upload.sh");
/// The download step of a restore: the chosen backup (`latest`: the newest under the prefix).
const DOWNLOAD_SCRIPT: &str = include_str!("../scripts/restore-download.sh");
/// The load step of a restore, into the target database.
const RESTORE_SCRIPT: &str = include_str!("../scripts/restore-load.sh");

/// The annotation that keeps cairn from pruning an object that holds data.
pub const PROTECTED: &str = "cairn.dev/protected";

/// One resource to add: its id, body and what must be applied first.
#[derive(Debug, Clone)]
pub struct Object {
    pub id: ResourceId,
    pub body: Value,
    pub deps: Vec<ResourceId>,
}

impl Object {
    fn new(id: ResourceId, body: Value, deps: Vec<ResourceId>) -> Object {
        Object { id, body, deps }
    }
}

/// A DNS record set.
pub fn dns_record(spec: &DnsRecordSpec) -> Object {
    let id = ResourceId::other(
        Provider::Dns,
        "DnsRecord",
        Some(&spec.zone),
        &format!("{} {}", spec.fqdn, spec.rtype),
    );
    let body = Value::obj([
        ("zone", Value::str(spec.zone.as_str())),
        ("name", Value::str(spec.fqdn.as_str())),
        ("type", Value::str(spec.rtype.as_str())),
        ("ttl", Value::Int(spec.ttl)),
        (
            "values",
            Value::Array(spec.values.iter().map(|v| Value::str(v.as_str())).collect()),
        ),
    ]);
    Object::new(id, body, Vec::new())
}

/// A certificate; issuance waits for the DNS records of its names among `declared`.
pub fn certificate(spec: &CertificateSpec, declared: &[Resource]) -> Object {
    let ns = &spec.namespace;
    let mut body = Value::obj([
        ("names", Value::from(spec.names.clone())),
        ("namespace", Value::str(ns.as_str())),
        ("secret_name", Value::str(spec.secret_name())),
        ("renew_before_days", Value::Int(30)),
        ("key_algorithm", Value::str("ecdsa-p256")),
    ]);
    if let Some(acme) = &spec.issuer {
        body.insert("issuer", acme.clone());
    }
    let id = ResourceId::other(Provider::Acme, "Certificate", Some(ns), &spec.name);
    // Issuance needs the names' DNS records in place (A records → challenge → certificate).
    let mut deps: Vec<ResourceId> = declared
        .iter()
        .filter(|r| r.id.provider == Provider::Dns)
        .filter(|r| {
            r.body
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|rn| {
                    spec.names
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(rn) || name_covers(n, rn))
                })
        })
        .map(|r| r.id.clone())
        .collect();
    deps.push(ResourceId::kube("Namespace", None, ns));
    Object::new(id, body, deps)
}

/// The Ingress of a route.
pub fn route(spec: &RouteSpec) -> Object {
    let ns = &spec.namespace;
    let backend = Value::obj([(
        "service",
        Value::obj([
            ("name", Value::str(spec.service.as_str())),
            ("port", Value::obj([("number", Value::Int(spec.port))])),
        ]),
    )]);
    let path = Value::obj([
        ("path", Value::str(spec.path.as_str())),
        ("pathType", Value::str("Prefix")),
        ("backend", backend),
    ]);
    let mut body_spec = Value::obj([(
        "rules",
        Value::Array(vec![Value::obj([
            ("host", Value::str(spec.host.as_str())),
            ("http", Value::obj([("paths", Value::Array(vec![path]))])),
        ])]),
    )]);
    if let Some(class) = &spec.ingress_class {
        body_spec.insert("ingressClassName", Value::str(class.as_str()));
    }
    let mut deps = vec![
        ResourceId::kube("Service", Some(ns), &spec.service),
        spec.target.clone(),
    ];
    if let Some(tls) = &spec.tls {
        body_spec.insert(
            "tls",
            Value::Array(vec![Value::obj([
                ("hosts", Value::from(vec![spec.host.as_str()])),
                ("secretName", Value::str(tls.secret_name.as_str())),
            ])]),
        );
        deps.push(tls.certificate.clone());
    }
    let mut body = k8s::object("networking.k8s.io/v1", "Ingress", &spec.host, Some(ns));
    body.insert("spec", body_spec);
    Object::new(
        ResourceId::kube("Ingress", Some(ns), &spec.host),
        body,
        deps,
    )
}

/// An environment variable of a container.
fn env_value(source: &EnvSource) -> EnvValue {
    match source {
        EnvSource::Plain(v) => EnvValue::Plain(v.clone()),
        EnvSource::Secret { name, key } => EnvValue::Ref(KeyRef {
            kind: "Secret",
            name: name.clone(),
            key: key.clone(),
        }),
        EnvSource::ConfigMap { name, key } => EnvValue::Ref(KeyRef {
            kind: "ConfigMap",
            name: name.clone(),
            key: key.clone(),
        }),
    }
}

fn env_values(vars: &[EnvVar]) -> Vec<(String, EnvValue)> {
    vars.iter()
        .map(|(k, v)| (k.clone(), env_value(v)))
        .collect()
}

/// The Secret with the backup bucket's credentials, when the bucket has some.
pub fn backup_credentials(spec: &BackupSpec) -> Option<Object> {
    let creds = spec.bucket.credentials.as_ref()?;
    let ns = &spec.namespace;
    let mut body = k8s::object("v1", "Secret", &creds.secret, Some(ns));
    body.insert("type", Value::str("Opaque"));
    body.insert(
        "stringData",
        Value::obj([
            ("AWS_ACCESS_KEY_ID", creds.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key.clone()),
        ]),
    );
    Some(Object::new(
        ResourceId::kube("Secret", Some(ns), &creds.secret),
        body,
        vec![ResourceId::kube("Namespace", None, ns)],
    ))
}

/// The environment of a backup's containers: the connection, the bucket, its credentials.
fn backup_env(spec: &BackupSpec) -> Vec<EnvVar> {
    let bucket = &spec.bucket;
    let mut env = spec.connection.clone();
    env.push((
        "S3_BUCKET".to_owned(),
        EnvSource::Plain(bucket.name.clone()),
    ));
    env.push((
        "S3_PREFIX".to_owned(),
        EnvSource::Plain(spec.prefix.clone()),
    ));
    if let Some(region) = &bucket.region {
        env.push((
            "AWS_DEFAULT_REGION".to_owned(),
            EnvSource::Plain(region.clone()),
        ));
    }
    if let Some(endpoint) = &bucket.endpoint {
        env.push(("S3_ENDPOINT".to_owned(), EnvSource::Plain(endpoint.clone())));
    }
    if let Some(creds) = &bucket.credentials {
        for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            env.push((
                key.to_owned(),
                EnvSource::Secret {
                    name: creds.secret.clone(),
                    key: key.to_owned(),
                },
            ));
        }
    }
    env
}

/// What a backup's CronJobs wait for: the namespace, the database, the bucket, every Secret
/// and ConfigMap their containers read.
fn backup_deps(spec: &BackupSpec, env: &[EnvVar]) -> Vec<ResourceId> {
    let ns = &spec.namespace;
    let mut deps = vec![
        ResourceId::kube("Namespace", None, ns),
        spec.workload.clone(),
        ResourceId::other(Provider::S3, "Bucket", None, &spec.bucket.name),
    ];
    if let Some(creds) = &spec.bucket.credentials {
        deps.push(ResourceId::kube("Secret", Some(ns), &creds.secret));
    }
    for (_, v) in env {
        match v {
            EnvSource::Secret { name, .. } => deps.push(ResourceId::kube("Secret", Some(ns), name)),
            EnvSource::ConfigMap { name, .. } => {
                deps.push(ResourceId::kube("ConfigMap", Some(ns), name));
            }
            EnvSource::Plain(_) => {}
        }
    }
    deps.sort();
    deps.dedup();
    deps
}

/// A pod template running `init` then `main`, with one empty folder `volume` between them.
fn two_step_template(name: &str, init: &Container, main: &Container, volume: &str) -> Value {
    let mut template = k8s::pod_template(
        name,
        vec![k8s::container(main)],
        vec![Value::obj([
            ("name", Value::str(volume)),
            ("emptyDir", Value::object()),
        ])],
        &[],
        Some("Never"),
    );
    if let Some(Value::Object(spec)) = template.get("spec").cloned() {
        let mut spec = Value::Object(spec);
        spec.insert("initContainers", Value::Array(vec![k8s::container(init)]));
        template.insert("spec", spec);
    }
    template
}

/// A container running a shell script.
fn script_container(
    name: &str,
    image: &str,
    script: &str,
    env: Vec<(String, EnvValue)>,
    volume: &str,
) -> Container {
    Container {
        name: name.to_owned(),
        image: image.to_owned(),
        command: vec!["sh".into(), "-c".into(), script.into()],
        env,
        mounts: vec![(volume.to_owned(), format!("/{volume}"))],
        ..Container::default()
    }
}

/// The backup CronJob, the restore template's ConfigMap and the restore template (a
/// suspended CronJob), after the bucket credentials' Secret (see [`backup_credentials`]).
pub fn backup(spec: &BackupSpec) -> Vec<Object> {
    let env = backup_env(spec);
    let deps = backup_deps(spec, &env);
    vec![
        backup_job(spec, &env, deps.clone()),
        restore_choice(spec),
        restore_job(spec, &env, deps),
    ]
}

fn backup_job(spec: &BackupSpec, env: &[EnvVar], deps: Vec<ResourceId>) -> Object {
    let ns = &spec.namespace;
    let dump = script_container("dump", &spec.image, DUMP_SCRIPT, env_values(env), "backup");
    let upload = script_container(
        "upload",
        &spec.upload_image,
        UPLOAD_SCRIPT,
        env_values(env),
        "backup",
    );
    let name = format!("{}-backup", spec.database);
    let template = two_step_template(&name, &dump, &upload, "backup");
    let mut body = k8s::object("batch/v1", "CronJob", &name, Some(ns));
    body.insert(
        "spec",
        Value::obj([
            ("schedule", Value::str(spec.schedule.as_str())),
            ("concurrencyPolicy", Value::str("Forbid")),
            ("successfulJobsHistoryLimit", Value::Int(3)),
            ("failedJobsHistoryLimit", Value::Int(3)),
            (
                "jobTemplate",
                Value::obj([(
                    "spec",
                    Value::obj([("backoffLimit", Value::Int(2)), ("template", template)]),
                )]),
            ),
        ]),
    );
    let annotations = Value::obj([
        (
            "cairn.dev/backup-bucket",
            Value::str(spec.bucket.name.as_str()),
        ),
        ("cairn.dev/backup-prefix", Value::str(spec.prefix.as_str())),
        (
            "cairn.dev/backup-keep-days",
            Value::str(spec.keep_days.to_string()),
        ),
    ]);
    if let Some(Value::Object(meta)) = body.get("metadata").cloned() {
        let mut meta = Value::Object(meta);
        meta.insert("annotations", annotations);
        body.insert("metadata", meta);
    }
    Object::new(ResourceId::kube("CronJob", Some(ns), &name), body, deps)
}

/// Which backup a restore loads and where: `latest` (the newest under the prefix) into the
/// service's database, until changed by hand.
fn restore_choice(spec: &BackupSpec) -> Object {
    let ns = &spec.namespace;
    let restore = format!("{}-restore", spec.database);
    let mut choice = k8s::object("v1", "ConfigMap", &restore, Some(ns));
    choice.insert(
        "data",
        Value::obj([
            ("BACKUP_KEY", Value::str("latest")),
            ("TARGET_DATABASE", Value::str(spec.target_database.as_str())),
        ]),
    );
    Object::new(
        ResourceId::kube("ConfigMap", Some(ns), &restore),
        choice,
        vec![ResourceId::kube("Namespace", None, ns)],
    )
}

/// The restore template: a suspended CronJob to start by hand
/// (`kubectl create job restore-1 --from=cronjob/<db>-restore`); which backup and which
/// database come from its ConfigMap.
fn restore_job(spec: &BackupSpec, env: &[EnvVar], mut deps: Vec<ResourceId>) -> Object {
    let ns = &spec.namespace;
    let restore = format!("{}-restore", spec.database);
    let mut restore_env = env_values(env);
    for key in ["BACKUP_KEY", "TARGET_DATABASE"] {
        restore_env.push((
            key.to_owned(),
            EnvValue::Ref(KeyRef {
                kind: "ConfigMap",
                name: restore.clone(),
                key: key.to_owned(),
            }),
        ));
    }
    // The download step needs the bucket, not the database's credentials.
    let download_env = restore_env
        .iter()
        .filter(|(k, _)| !k.starts_with("PG") && k != "TARGET_DATABASE")
        .cloned()
        .collect();
    let download = script_container(
        "download",
        &spec.upload_image,
        DOWNLOAD_SCRIPT,
        download_env,
        "restore",
    );
    let load = script_container(
        "restore",
        &spec.image,
        RESTORE_SCRIPT,
        restore_env,
        "restore",
    );
    let template = two_step_template(&restore, &download, &load, "restore");
    let mut body = k8s::object("batch/v1", "CronJob", &restore, Some(ns));
    body.insert(
        "spec",
        Value::obj([
            // Never scheduled: February 31st. Started by hand from this template.
            ("schedule", Value::str("0 0 31 2 *")),
            ("suspend", Value::Bool(true)),
            ("concurrencyPolicy", Value::str("Forbid")),
            (
                "jobTemplate",
                Value::obj([(
                    "spec",
                    Value::obj([("backoffLimit", Value::Int(0)), ("template", template)]),
                )]),
            ),
        ]),
    );
    deps.push(ResourceId::kube("ConfigMap", Some(ns), &restore));
    Object::new(ResourceId::kube("CronJob", Some(ns), &restore), body, deps)
}

/// An alert rule.
pub fn alert(spec: &AlertSpec) -> Object {
    let env = &spec.environment;
    let mut annotations = Value::obj([("summary", Value::str(spec.summary.as_str()))]);
    if let Some(d) = &spec.description {
        annotations.insert("description", Value::str(d.as_str()));
    }
    let body = Value::obj([
        ("alert", Value::str(spec.name.as_str())),
        ("expr", Value::str(spec.expr.as_str())),
        ("for", Value::str(spec.r#for.as_str())),
        (
            "labels",
            Value::obj([
                ("severity", Value::str(spec.severity.as_str())),
                ("environment", Value::str(env.as_str())),
            ]),
        ),
        ("annotations", annotations),
    ]);
    Object::new(
        ResourceId::other(Provider::Alerts, "AlertRule", Some(env), &spec.name),
        body,
        Vec::new(),
    )
}

/// The routing of an environment's alerts.
pub fn alert_route(spec: &AlertRouteSpec) -> Object {
    let env = &spec.environment;
    let body = Value::obj([
        ("receiver", spec.receiver.clone()),
        (
            "matchers",
            Value::obj([("environment", Value::str(env.as_str()))]),
        ),
    ]);
    Object::new(
        ResourceId::other(Provider::Alerts, "AlertRoute", Some(env), "default"),
        body,
        Vec::new(),
    )
}

/// What a smoke check does, as recorded (`check`: `http`, `tcp` or `sql`), without its Job.
pub fn smoke_body(check: &SmokeCheckSpec) -> Value {
    match check {
        SmokeCheckSpec::Http { url, status, body } => {
            let mut value = Value::obj([
                ("check", Value::str("http")),
                ("url", Value::str(url.as_str())),
                ("status", Value::Int(*status)),
            ]);
            if let Some(b) = body {
                value.insert("body", Value::str(b.as_str()));
            }
            value
        }
        SmokeCheckSpec::Tcp { host, port } => Value::obj([
            ("check", Value::str("tcp")),
            ("host", Value::str(host.as_str())),
            ("port", Value::Int(*port)),
        ]),
        SmokeCheckSpec::Sql(sql) => Value::obj([
            ("check", Value::str("sql")),
            ("database", Value::str(sql.database.as_str())),
            ("query", Value::str(sql.query.as_str())),
        ]),
    }
}

/// The name of a SQL smoke check's Job.
pub fn smoke_job_name(check: &str) -> String {
    format!("{check}-smoke")
}

/// A smoke check; a SQL check carries its Job and waits for the database.
pub fn smoke(spec: &SmokeSpec) -> Object {
    let mut body = smoke_body(&spec.check);
    let mut deps = Vec::new();
    if let SmokeCheckSpec::Sql(sql) = &spec.check {
        let job_name = smoke_job_name(&spec.name);
        body.insert(
            "job",
            sql_job(
                &job_name,
                &spec.namespace,
                &spec.environment,
                &spec.name,
                sql,
            ),
        );
        deps.push(sql.workload.clone());
    }
    Object::new(
        ResourceId::other(
            Provider::Smoke,
            "SmokeCheck",
            Some(&spec.environment),
            &spec.name,
        ),
        body,
        deps,
    )
}

/// The Job a SQL check runs (`metadata.name` gets a unique suffix when it runs). It carries the
/// environment's label but not cairn's `managed-by`, so plans never see it.
fn sql_job(job_name: &str, ns: &str, env: &str, check: &str, sql: &SqlCheckSpec) -> Value {
    let container = Container {
        name: "sql".to_owned(),
        image: sql.image.clone(),
        command: vec![
            "psql".into(),
            "-v".into(),
            "ON_ERROR_STOP=1".into(),
            "--no-psqlrc".into(),
            "-tA".into(),
            "-c".into(),
            sql.query.clone(),
        ],
        env: env_values(&sql.connection),
        resources: k8s::Resources {
            request_cpu: Some("50m".to_owned()),
            request_memory: Some("64Mi".to_owned()),
            limit_cpu: Some("200m".to_owned()),
            limit_memory: Some("128Mi".to_owned()),
        },
        ..Container::default()
    };
    let mut template = k8s::pod_template(
        job_name,
        vec![k8s::container(&container)],
        Vec::new(),
        &[],
        Some("Never"),
    );
    let labels = Value::obj([
        (k8s::NAME, Value::str(job_name)),
        (k8s::ENVIRONMENT, Value::str(env)),
    ]);
    template.insert("metadata", Value::obj([("labels", labels)]));
    let mut body = k8s::object("batch/v1", "Job", job_name, Some(ns));
    if let Some(Value::Object(meta)) = body.get("metadata").cloned() {
        let mut meta = Value::Object(meta);
        meta.insert(
            "labels",
            Value::obj([
                ("cairn.dev/smoke", Value::str(check)),
                (k8s::ENVIRONMENT, Value::str(env)),
            ]),
        );
        body.insert("metadata", meta);
    }
    body.insert(
        "spec",
        Value::obj([
            ("backoffLimit", Value::Int(0)),
            ("activeDeadlineSeconds", Value::Int(300)),
            ("ttlSecondsAfterFinished", Value::Int(3600)),
            ("template", template),
        ]),
    );
    body
}

/// A custom resource: its fields, the labels and annotations given, and the protection
/// annotation when it holds data.
pub fn custom_object(spec: &CustomObjectSpec) -> Object {
    let ns = &spec.namespace;
    let mut object = k8s::object(&spec.api_version, &spec.kind, &spec.name, Some(ns));
    for (key, value) in &spec.fields {
        object.insert(key.as_str(), value.clone());
    }
    if !spec.metadata.is_empty() {
        let mut meta = object
            .get("metadata")
            .cloned()
            .unwrap_or_else(Value::object);
        for (k, v) in &spec.metadata {
            meta.insert(k.as_str(), v.clone());
        }
        object.insert("metadata", meta);
    }
    if spec.protected {
        let mut meta = object
            .get("metadata")
            .cloned()
            .unwrap_or_else(Value::object);
        let mut annotations = meta
            .get("annotations")
            .cloned()
            .unwrap_or_else(Value::object);
        annotations.insert(PROTECTED, Value::str("true"));
        meta.insert("annotations", annotations);
        object.insert("metadata", meta);
    }
    Object::new(
        ResourceId::kube(&spec.kind, Some(ns), &spec.name),
        object,
        Vec::new(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cairn_model::spec::network::{BackupBucket, BucketCredentials};

    fn backup_spec() -> BackupSpec {
        BackupSpec {
            database: "pg".to_owned(),
            target_database: "app".to_owned(),
            workload: ResourceId::kube("StatefulSet", Some("demo"), "pg"),
            namespace: "demo".to_owned(),
            schedule: "0 2 * * *".to_owned(),
            keep_days: 7,
            prefix: "pg/".to_owned(),
            image: "postgres:16-alpine".to_owned(),
            upload_image: "amazon/aws-cli:2.22.35".to_owned(),
            connection: vec![
                ("PGHOST".to_owned(), EnvSource::Plain("pg".to_owned())),
                (
                    "PGPASSWORD".to_owned(),
                    EnvSource::Secret {
                        name: "pg-auth".to_owned(),
                        key: "password".to_owned(),
                    },
                ),
            ],
            bucket: BackupBucket {
                name: "demo-backups".to_owned(),
                region: Some("us-east-1".to_owned()),
                endpoint: None,
                credentials: Some(BucketCredentials {
                    secret: "demo-backup-s3".to_owned(),
                    access_key_id: Value::str("id"),
                    secret_access_key: Value::str("secret"),
                }),
            },
        }
    }

    fn env_names(container: &Value) -> Vec<String> {
        container
            .get("env")
            .map(|e| {
                e.as_array()
                    .iter()
                    .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn a_backup_is_a_cronjob_a_restore_choice_and_a_restore_template() {
        let spec = backup_spec();
        let objects = backup(&spec);
        let names: Vec<String> = objects.iter().map(|o| o.id.to_string()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        let job = &objects[0];
        assert!(
            job.deps
                .contains(&ResourceId::kube("Secret", Some("demo"), "pg-auth"))
        );
        assert!(
            job.deps
                .contains(&ResourceId::kube("Secret", Some("demo"), "demo-backup-s3"))
        );
        let pod = |o: &Object| {
            o.body
                .get("spec")
                .and_then(|s| s.get("jobTemplate"))
                .and_then(|t| t.get("spec"))
                .and_then(|s| s.get("template"))
                .and_then(|t| t.get("spec"))
                .cloned()
                .unwrap()
        };
        let dump = pod(job).get("initContainers").unwrap().as_array()[0].clone();
        let command = dump.get("command").unwrap().as_array();
        assert_eq!(command[2].as_str(), Some(DUMP_SCRIPT));
        // The restore's download step reads the bucket, never the database's credentials.
        let restore = &objects[2];
        let download = pod(restore).get("initContainers").unwrap().as_array()[0].clone();
        let vars = env_names(&download);
        assert!(vars.contains(&"BACKUP_KEY".to_owned()), "{vars:?}");
        assert!(
            !vars
                .iter()
                .any(|v| v.starts_with("PG") || v == "TARGET_DATABASE")
        );
        assert!(
            restore
                .deps
                .contains(&ResourceId::kube("ConfigMap", Some("demo"), "pg-restore"))
        );
        let secret = backup_credentials(&spec).unwrap();
        assert_eq!(
            secret.id,
            ResourceId::kube("Secret", Some("demo"), "demo-backup-s3")
        );
    }

    #[test]
    fn a_custom_object_that_holds_data_is_annotated_protected() {
        let spec = CustomObjectSpec {
            api_version: "acid.zalan.do/v1".to_owned(),
            kind: "postgresql".to_owned(),
            name: "db".to_owned(),
            namespace: "demo".to_owned(),
            fields: vec![(
                "spec".to_owned(),
                Value::obj([("teamId", Value::str("demo"))]),
            )],
            metadata: vec![(
                "annotations".to_owned(),
                Value::obj([("team", Value::str("a"))]),
            )],
            protected: true,
        };
        let o = custom_object(&spec);
        let annotations = o
            .body
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .unwrap();
        assert_eq!(annotations.get("team").and_then(Value::as_str), Some("a"));
        assert_eq!(
            annotations.get(PROTECTED).and_then(Value::as_str),
            Some("true")
        );
        assert!(o.body.get("spec").is_some());
    }
}
