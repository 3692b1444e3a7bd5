//! cairn-s3 against a real moto server 5.1.22 (and the in-memory stand-in).
#![allow(clippy::unwrap_used)]

mod harness;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cairn_model::{DesiredState, EnvironmentMeta, Resource, Sensitive, SensitivePart, Value};
use cairn_plan::plan::Action;
use cairn_s3::{
    BucketConfig, Freshness, InMemoryS3, S3Backend, S3Client, S3Error, S3Settings, Versioning,
    allowed_age, apply_bucket, bucket_id, delete_bucket, freshness, newest_object, plan_bucket,
    read_bucket,
};
use harness::Moto;

fn body(bucket: &str, days: i64) -> Value {
    Value::obj([
        ("bucket", Value::str(bucket)),
        ("versioning", Value::Bool(true)),
        ("encryption", Value::str("AES256")),
        ("block_public_access", Value::Bool(true)),
        (
            "lifecycle",
            Value::Array(vec![Value::obj([
                ("prefix", Value::str("postgres/")),
                ("expiration_days", Value::Int(days)),
                ("noncurrent_expiration_days", Value::Int(days)),
            ])]),
        ),
        (
            "tags",
            Value::obj([
                ("app.kubernetes.io/managed-by", Value::str("cairn")),
                ("cairn.dev/environment", Value::str("staging")),
            ]),
        ),
    ])
}

fn config(bucket: &str, days: i64) -> BucketConfig {
    BucketConfig::from_value(bucket, &body(bucket, days)).expect("valid config")
}

fn state(bodies: Vec<(&str, Value)>, allow_delete: &[&str]) -> DesiredState {
    DesiredState {
        environment: EnvironmentMeta {
            name: "staging".into(),
            allow_delete: allow_delete
                .iter()
                .map(|b| bucket_id(b).to_string())
                .collect(),
            ..EnvironmentMeta::default()
        },
        resources: bodies
            .into_iter()
            .map(|(name, body)| Resource {
                id: bucket_id(name),
                body,
                depends_on: Vec::new(),
                protected: true,
                span: None,
                field_spans: BTreeMap::new(),
            })
            .collect(),
        generated: BTreeMap::new(),
        network: Default::default(),
    }
}

async fn converge(backend: &dyn S3Backend, desired: &BucketConfig) {
    let live = read_bucket(backend, &desired.name).await.expect("read");
    let plan = plan_bucket(desired, live.as_ref());
    apply_bucket(backend, desired, &plan).await.expect("apply");
}

#[tokio::test]
async fn create_update_no_change() {
    let moto = Moto::start();
    let client = moto.client().await;
    let desired = config("acme-backup-staging", 7);

    assert_eq!(read_bucket(&client, &desired.name).await.unwrap(), None);
    let plan = plan_bucket(&desired, None);
    assert_eq!(plan.action, Action::Create);
    let live = apply_bucket(&client, &desired, &plan)
        .await
        .expect("create");
    assert_eq!(live.versioning, Versioning::Enabled);
    assert_eq!(live.encryption.as_deref(), Some("AES256"));
    assert_eq!(live.lifecycle.len(), 1);
    assert_eq!(live.lifecycle[0].expiration_days, Some(7));
    assert_eq!(live.lifecycle[0].noncurrent_expiration_days, Some(7));
    assert_eq!(live.tags.len(), 2);

    // A plan after apply is empty, and costs one read: HEAD + five configuration reads.
    let before = moto.requests();
    let live = read_bucket(&client, &desired.name).await.unwrap();
    assert_eq!(moto.requests() - before, 6);
    let plan = plan_bucket(&desired, live.as_ref());
    assert_eq!(plan.action, Action::NoOp, "{:?}", plan.fields);

    // An update: a tag added, one changed, block public access turned off.
    let mut changed = desired.clone();
    changed.tags.insert("team".into(), "ops".into());
    changed
        .tags
        .insert("cairn.dev/environment".into(), "staging-2".into());
    changed.block_public_access = false;
    let plan = plan_bucket(&changed, live.as_ref());
    assert_eq!(plan.action, Action::Update);
    let paths: Vec<&str> = plan.fields.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "block_public_access",
            "tags[cairn.dev/environment]",
            "tags[team]"
        ]
    );
    let before = moto.requests();
    let live = apply_bucket(&client, &changed, &plan)
        .await
        .expect("update");
    // Two puts (public access block, tags) and the read back: nothing else is sent.
    assert_eq!(moto.requests() - before, 2 + 6);
    assert_eq!(live.public_access_block, None);
    assert_eq!(plan_bucket(&changed, Some(&live)).action, Action::NoOp);
}

#[tokio::test]
async fn retention_change_shows_exactly_that_field() {
    let moto = Moto::start();
    let client = moto.client().await;
    converge(&client, &config("retention-test", 7)).await;

    let mut desired = config("retention-test", 7);
    desired.lifecycle[0].expiration_days = Some(30);
    let live = read_bucket(&client, "retention-test").await.unwrap();
    let plan = plan_bucket(&desired, live.as_ref());
    assert_eq!(plan.action, Action::Update);
    assert_eq!(plan.fields.len(), 1, "{:?}", plan.fields);
    let f = &plan.fields[0];
    assert_eq!(f.path, "lifecycle[postgres/].expiration_days");
    assert_eq!(f.before, Some(7.into()));
    assert_eq!(f.after, Some(30.into()));
    let live = apply_bucket(&client, &desired, &plan).await.expect("apply");
    assert_eq!(live.lifecycle[0].expiration_days, Some(30));
    assert_eq!(live.lifecycle[0].noncurrent_expiration_days, Some(7));

    // Both retentions 7 → 30, as the backup's keep_days changes them.
    let desired = config("retention-test", 30);
    let plan = plan_bucket(&desired, Some(&live));
    let paths: Vec<&str> = plan.fields.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["lifecycle[postgres/].noncurrent_expiration_days"]);

    // A second prefix, then dropping the first.
    let mut two = desired.clone();
    two.lifecycle.push(cairn_s3::LifecycleRule {
        prefix: "redis/".into(),
        expiration_days: Some(3),
        noncurrent_expiration_days: None,
    });
    converge(&client, &two).await;
    let mut only_redis = two.clone();
    only_redis.lifecycle.remove(0);
    let live = read_bucket(&client, "retention-test").await.unwrap();
    let plan = plan_bucket(&only_redis, live.as_ref());
    let paths: Vec<&str> = plan.fields.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["lifecycle[postgres/]"]);
    let live = apply_bucket(&client, &only_redis, &plan).await.unwrap();
    assert_eq!(live.lifecycle.len(), 1);
    assert_eq!(live.lifecycle[0].prefix, "redis/");
}

#[tokio::test]
async fn versioning_on_and_suspended() {
    let moto = Moto::start();
    let client = moto.client().await;
    let mut desired = config("versioning-test", 7);
    desired.versioning = false;
    converge(&client, &desired).await;
    let live = read_bucket(&client, "versioning-test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.versioning, Versioning::Off);

    desired.versioning = true;
    let plan = plan_bucket(&desired, Some(&live));
    assert_eq!(plan.fields.len(), 1);
    assert_eq!(plan.fields[0].path, "versioning");
    assert_eq!(plan.fields[0].before, None);
    assert_eq!(plan.fields[0].after, Some("Enabled".into()));
    let live = apply_bucket(&client, &desired, &plan).await.unwrap();
    assert_eq!(live.versioning, Versioning::Enabled);

    desired.versioning = false;
    let plan = plan_bucket(&desired, Some(&live));
    assert_eq!(plan.fields[0].after, Some("Suspended".into()));
    let live = apply_bucket(&client, &desired, &plan).await.unwrap();
    assert_eq!(live.versioning, Versioning::Suspended);
}

#[tokio::test]
async fn deleting_a_non_empty_bucket_is_refused() {
    let moto = Moto::start();
    let client: Arc<dyn S3Backend> = Arc::new(moto.client().await);
    converge(&*client, &config("old-backups", 7)).await;
    client
        .put_object(
            "old-backups",
            "postgres/2024-01-01.sql.gz",
            b"dump".to_vec(),
        )
        .await
        .unwrap();

    // Allowed, but it holds an object.
    let st = state(vec![], &["old-backups"]);
    let err = cairn_s3::plan_removed(&st, &*client, &["old-backups".to_owned()])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        S3Error::NotEmpty {
            bucket: "old-backups".into(),
            count: 1
        }
    );
    assert!(err.to_string().contains("holds 1 object"), "{err}");

    // A deletion planned while empty is refused at apply time if objects arrived since.
    converge(&*client, &config("late-writes", 7)).await;
    let steps = cairn_s3::plan_removed(
        &state(vec![], &["late-writes"]),
        &*client,
        &["late-writes".to_owned()],
    )
    .await
    .unwrap();
    assert_eq!(steps[0].plan.action, Action::Delete);
    client
        .put_object("late-writes", "x", b"x".to_vec())
        .await
        .unwrap();
    let err = delete_bucket(&*client, &steps[0].plan).await.unwrap_err();
    assert!(matches!(err, S3Error::NotEmpty { count: 1, .. }), "{err}");
    assert!(
        read_bucket(&*client, "late-writes")
            .await
            .unwrap()
            .is_some()
    );

    // Empty and allowed: deleted, through the executor.
    converge(&*client, &config("empty-one", 7)).await;
    let steps = cairn_s3::plan_removed(
        &state(vec![], &["empty-one"]),
        &*client,
        &["empty-one".to_owned()],
    )
    .await
    .unwrap();
    let changes = cairn_s3::changes(&steps);
    assert_eq!(changes[0].action, Action::Delete);
    let report = cairn_apply::execute(cairn_s3::nodes(&client, &steps), 4, Arc::new(|_| {})).await;
    assert!(report.ok(), "{report:?}");
    assert!(read_bucket(&*client, "empty-one").await.unwrap().is_none());
    assert!(
        read_bucket(&*client, "old-backups")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn deleting_without_permission_is_refused() {
    let moto = Moto::start();
    let client = moto.client().await;
    converge(&client, &config("kept-backups", 7)).await;
    let st = state(vec![], &[]);
    let steps = cairn_s3::plan_removed(&st, &client, &["kept-backups".to_owned()])
        .await
        .unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].plan.action, Action::Keep);
    assert!(
        steps[0]
            .plan
            .reason
            .as_deref()
            .unwrap()
            .contains("env.allow_delete(\"Bucket\", \"kept-backups\")")
    );
    let changes = cairn_s3::changes(&steps);
    assert_eq!(changes[0].action, Action::Keep);
    assert!(cairn_s3::nodes(&(Arc::new(client.clone()) as Arc<dyn S3Backend>), &steps).is_empty());
    let err = delete_bucket(&client, &steps[0].plan).await.unwrap_err();
    assert!(matches!(err, S3Error::Refused(_)), "{err}");
    assert!(
        read_bucket(&client, "kept-backups")
            .await
            .unwrap()
            .is_some()
    );

    // A bucket not tagged as this environment's is not considered at all.
    let mut foreign = config("someone-elses", 7);
    foreign
        .tags
        .insert("cairn.dev/environment".into(), "production".into());
    converge(&client, &foreign).await;
    let steps = cairn_s3::plan_removed(
        &state(vec![], &["someone-elses"]),
        &client,
        &["someone-elses".to_owned()],
    )
    .await
    .unwrap();
    assert!(steps.is_empty());
}

#[tokio::test]
async fn invalid_values_are_rejected_before_any_request() {
    let moto = Moto::start();
    let client: Arc<dyn S3Backend> = Arc::new(moto.client().await);
    let mut zero = body("zero-retention", 7);
    zero.insert(
        "lifecycle",
        Value::Array(vec![Value::obj([
            ("prefix", Value::str("postgres/")),
            ("expiration_days", Value::Int(0)),
        ])]),
    );
    let mut dup = body("dup-prefixes", 7);
    dup.insert(
        "lifecycle",
        Value::Array(vec![
            Value::obj([
                ("prefix", Value::str("a/")),
                ("expiration_days", Value::Int(1)),
            ]),
            Value::obj([
                ("prefix", Value::str("a/")),
                ("expiration_days", Value::Int(2)),
            ]),
        ]),
    );
    let mut status = body("bad-versioning", 7);
    status.insert("versioning", Value::str("Enabledd"));
    let st = state(
        vec![
            ("zero-retention", zero),
            ("dup-prefixes", dup),
            ("Bad_Name", body("Bad_Name", 7)),
            ("bad-versioning", status),
        ],
        &[],
    );
    let err = match cairn_s3::plan(&st, client.clone()).await {
        Err(e) => e,
        Ok(_) => panic!("invalid buckets were planned"),
    };
    let S3Error::Invalid(list) = &err else {
        panic!("{err}")
    };
    let fields: Vec<(&str, &str)> = list
        .iter()
        .map(|i| (i.bucket.as_str(), i.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("zero-retention", "lifecycle[postgres/].expiration_days"),
            ("dup-prefixes", "lifecycle[a/].prefix"),
            ("Bad_Name", "bucket"),
            ("bad-versioning", "versioning"),
        ]
    );
    let text = err.to_string();
    assert!(
        text.contains("retention must be at least 1 day (got 0)"),
        "{text}"
    );
    assert!(text.contains("duplicate prefix \"a/\""), "{text}");
    assert_eq!(client.requests(), 0);
    assert_eq!(moto.requests(), 0, "moto saw a request");

    // apply_bucket validates too: a config made in code never reaches the server.
    let mut bad = config("zero-retention", 7);
    bad.lifecycle[0].expiration_days = Some(0);
    let plan = plan_bucket(&bad, None);
    assert!(matches!(
        apply_bucket(&*client, &bad, &plan).await,
        Err(S3Error::Invalid(_))
    ));
    assert_eq!(moto.requests(), 0, "moto saw a request");

    // And against a closed port the error is still the validation error.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let nowhere = S3Client::new(&S3Settings::local(&format!("http://127.0.0.1:{closed}")))
        .await
        .unwrap();
    assert!(matches!(
        apply_bucket(&nowhere, &bad, &plan).await,
        Err(S3Error::Invalid(_))
    ));
    assert_eq!(nowhere.requests(), 0);
}

#[tokio::test]
async fn backup_freshness() {
    let moto = Moto::start();
    let client = moto.client().await;
    converge(&client, &config("fresh-backups", 7)).await;
    let allowed = allowed_age("0 2 * * *").unwrap();
    assert_eq!(allowed, Duration::from_secs(26 * 3600));

    assert_eq!(
        newest_object(&client, "fresh-backups", "postgres/")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        freshness(None, SystemTime::now(), allowed),
        Freshness::Missing
    );

    // More than one page (1000 keys) under the prefix, and one object outside it.
    let keys: Vec<String> = (0..1003)
        .map(|i| format!("postgres/2024-01-01T00-00-{i:04}.sql.gz"))
        .collect();
    use futures::StreamExt;
    futures::stream::iter(keys.iter())
        .for_each_concurrent(16, |k| {
            let client = &client;
            async move {
                client
                    .put_object("fresh-backups", k, b"x".to_vec())
                    .await
                    .expect("put");
            }
        })
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let written = SystemTime::now();
    client
        .put_object(
            "fresh-backups",
            "postgres/2024-01-02T02-00-00.sql.gz",
            vec![7; 2048],
        )
        .await
        .unwrap();
    client
        .put_object("fresh-backups", "redis/zzz-newer.rdb", b"r".to_vec())
        .await
        .unwrap();

    let newest = newest_object(&client, "fresh-backups", "postgres/")
        .await
        .unwrap()
        .expect("a backup");
    assert_eq!(newest.key, "postgres/2024-01-02T02-00-00.sql.gz");
    assert_eq!(newest.size, 2048);
    let skew = Duration::from_secs(5);
    assert!(newest.last_modified + skew >= written && newest.last_modified <= written + skew);

    assert!(matches!(
        freshness(Some(&newest), SystemTime::now(), allowed),
        Freshness::Fresh { .. }
    ));
    // A day later it is still fresh; 27 hours later it is stale.
    let at = |h: u64| newest.last_modified + Duration::from_secs(h * 3600);
    assert!(matches!(
        freshness(Some(&newest), at(25), allowed),
        Freshness::Fresh { .. }
    ));
    assert_eq!(
        freshness(Some(&newest), at(27), allowed),
        Freshness::Stale {
            age: Duration::from_secs(27 * 3600),
            allowed
        }
    );
    // An hourly backup is stale after 2 hours.
    let hourly = allowed_age("0 * * * *").unwrap();
    assert!(matches!(
        freshness(Some(&newest), at(3), hourly),
        Freshness::Stale { .. }
    ));
}

#[tokio::test]
async fn settings_from_the_script_and_the_executor() {
    let moto = Moto::start();
    let backups = Value::obj([
        ("bucket", Value::str("acme-backup-staging")),
        ("region", Value::str("us-east-1")),
        ("endpoint", Value::str(moto.endpoint.as_str())),
        ("path_style", Value::Bool(true)),
        ("access_key_id", Value::str("AKIDEXAMPLE")),
        (
            "secret_access_key",
            Value::Sensitive(Sensitive::from_part(SensitivePart::Literal(
                "wJalrXUtnFEMI".into(),
            ))),
        ),
    ]);
    let settings = S3Settings::from_settings(&backups).unwrap();
    assert!(!format!("{settings:?}").contains("wJalrXUtnFEMI"));
    let backend = cairn_s3::connect(&settings).await.unwrap();
    assert!(backend.describe().contains(&moto.endpoint));

    let mut st = state(
        vec![("acme-backup-staging", body("acme-backup-staging", 7))],
        &[],
    );
    st.environment.providers.insert("backups".into(), backups);
    let part = cairn_s3::plan(&st, backend.clone()).await.unwrap();
    let changes = cairn_s3::changes(&part.steps);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].action, Action::Create);
    assert_eq!(changes[0].id.to_string(), "Bucket/acme-backup-staging");
    let report =
        cairn_apply::execute(cairn_s3::nodes(&backend, &part.steps), 4, Arc::new(|_| {})).await;
    assert!(report.ok(), "{report:?}");

    let again = cairn_s3::plan(&st, backend.clone()).await.unwrap();
    assert!(
        cairn_s3::changes(&again.steps)
            .iter()
            .all(|c| c.action == Action::NoOp)
    );
    assert!(cairn_s3::nodes(&backend, &again.steps).is_empty());
}

#[tokio::test]
async fn moto_accepts_what_cairn_refuses() {
    // The reason cairn validates itself: moto takes a retention of 0 days.
    let moto = Moto::start();
    let client = moto.client().await;
    converge(&client, &config("lenient-server", 7)).await;
    let rule = cairn_s3::LifecycleRule {
        prefix: "postgres/".into(),
        expiration_days: Some(0),
        noncurrent_expiration_days: None,
    };
    client
        .put_lifecycle("lenient-server", std::slice::from_ref(&rule))
        .await
        .expect("moto accepts Days=0");
    let live = read_bucket(&client, "lenient-server")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.lifecycle[0].expiration_days, Some(0));
    // cairn's plan puts the 7 days back.
    let plan = plan_bucket(&config("lenient-server", 7), Some(&live));
    assert_eq!(plan.fields[0].path, "lifecycle[postgres/].expiration_days");
}

#[tokio::test]
async fn sandbox_in_memory_backend() {
    let mem = Arc::new(InMemoryS3::new());
    let backend: Arc<dyn S3Backend> = mem.clone();
    let st = state(vec![("sandbox-backups", body("sandbox-backups", 7))], &[]);
    let part = cairn_s3::plan(&st, backend.clone()).await.unwrap();
    assert_eq!(part.steps[0].plan.action, Action::Create);
    let report =
        cairn_apply::execute(cairn_s3::nodes(&backend, &part.steps), 4, Arc::new(|_| {})).await;
    assert!(report.ok(), "{report:?}");
    let again = cairn_s3::plan(&st, backend.clone()).await.unwrap();
    assert_eq!(again.steps[0].plan.action, Action::NoOp);

    // Retention change, same fields as against moto.
    let st30 = state(vec![("sandbox-backups", body("sandbox-backups", 30))], &[]);
    let part = cairn_s3::plan(&st30, backend.clone()).await.unwrap();
    let paths: Vec<&str> = part.steps[0]
        .plan
        .fields
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "lifecycle[postgres/].expiration_days",
            "lifecycle[postgres/].noncurrent_expiration_days"
        ]
    );

    // Freshness with controlled times, and the snapshot round trip.
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    mem.put_object_at("sandbox-backups", "postgres/a.sql.gz", 10, t0)
        .unwrap();
    mem.put_object_at(
        "sandbox-backups",
        "postgres/b.sql.gz",
        20,
        t0 + Duration::from_secs(3600),
    )
    .unwrap();
    let newest = newest_object(&*backend, "sandbox-backups", "postgres/")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(newest.key, "postgres/b.sql.gz");
    let allowed = allowed_age("0 2 * * *").unwrap();
    assert_eq!(
        freshness(Some(&newest), t0 + Duration::from_secs(26 * 3600), allowed),
        Freshness::Fresh {
            age: Duration::from_secs(25 * 3600)
        }
    );
    assert_eq!(
        freshness(Some(&newest), t0 + Duration::from_secs(28 * 3600), allowed),
        Freshness::Stale {
            age: Duration::from_secs(27 * 3600),
            allowed
        }
    );
    let restored = InMemoryS3::with_buckets(mem.snapshot());
    assert_eq!(restored.snapshot(), mem.snapshot());

    // Deletion: kept without permission, refused with objects.
    let steps = cairn_s3::plan_removed(
        &state(vec![], &["sandbox-backups"]),
        &*backend,
        &["sandbox-backups".to_owned()],
    )
    .await;
    assert!(matches!(steps, Err(S3Error::NotEmpty { count: 2, .. })));
}

#[tokio::test]
async fn owned_buckets_backup_status_and_regions() {
    let moto = Moto::start();
    let client = moto.client().await;
    converge(&client, &config("ours-staging", 7)).await;
    let mut prod = config("ours-production", 7);
    prod.tags
        .insert("cairn.dev/environment".into(), "production".into());
    converge(&client, &prod).await;
    let mut untagged = config("not-cairns", 7);
    untagged.tags.clear();
    converge(&client, &untagged).await;
    assert_eq!(
        cairn_s3::owned_buckets(&client, "staging").await.unwrap(),
        ["ours-staging"]
    );

    // Backup status: missing, then fresh, then stale a day and a half later.
    let status = cairn_s3::backup_status(
        &client,
        "ours-staging",
        "postgres/",
        "0 2 * * *",
        SystemTime::now(),
    )
    .await
    .unwrap();
    assert_eq!(status.freshness, Freshness::Missing);
    client
        .put_object("ours-staging", "postgres/one.sql.gz", b"dump".to_vec())
        .await
        .unwrap();
    let now = SystemTime::now();
    let status = cairn_s3::backup_status(&client, "ours-staging", "postgres/", "0 2 * * *", now)
        .await
        .unwrap();
    assert!(matches!(status.freshness, Freshness::Fresh { .. }));
    assert_eq!(status.newest.as_ref().unwrap().size, 4);
    let later = now + Duration::from_secs(36 * 3600);
    let status = cairn_s3::backup_status(&client, "ours-staging", "postgres/", "0 2 * * *", later)
        .await
        .unwrap();
    assert!(matches!(status.freshness, Freshness::Stale { .. }));
    let err = cairn_s3::backup_status(&client, "ours-staging", "postgres/", "0 2 * *", now)
        .await
        .unwrap_err();
    assert!(matches!(err, S3Error::Schedule(_)), "{err}");

    // A bucket created with a location constraint; asking for another region is a conflict
    // apply refuses.
    let mut eu = config("eu-backups", 7);
    eu.region = Some("eu-central-1".into());
    converge(&client, &eu).await;
    let live = read_bucket(&client, "eu-backups").await.unwrap().unwrap();
    assert_eq!(live.region.as_deref(), Some("eu-central-1"));
    let mut moved = eu.clone();
    moved.region = Some("eu-west-1".into());
    let plan = plan_bucket(&moved, Some(&live));
    assert!(plan.conflict.is_some());
    let err = apply_bucket(&client, &moved, &plan).await.unwrap_err();
    assert!(matches!(err, S3Error::Refused(_)), "{err}");
}
