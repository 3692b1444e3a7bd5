//! `cairn destroy` of a preview environment, through the CLI, against real servers: BIND9 (its
//! A records and ownership TXT records), Pebble (its certificate), moto (its backup bucket) and
//! the Kubernetes API emulator, read back with Debian's kubectl. Nothing may be left.

use cairn_s3::S3Backend as _;
use cairn_tests::TestCluster;

use crate::harness;
use crate::ownership::kubectl;
use crate::s3_harness::Moto;

fn preview_script(servers: &harness::Servers, moto: &Moto) -> String {
    format!(
        r#"
import "postgres" as postgres;
import "redis" as redis;

let pr = env_var("PR_NUMBER");
let name = "pr-" + pr;
let env = environment(name, #{{
    domain: name + ".{zone}",
    dns: rfc2136(#{{ server: "{server}", zone: "{zone}", key_name: "{key}", key: secret_env("TSIG_KEY") }}),
    acme: acme(#{{ directory: "{directory}", email: "ops@{zone}", ca_file: "{ca}" }}),
    backups: s3(#{{ bucket: name + "-backups", region: "us-east-1", endpoint: "{s3}", path_style: true,
        access_key_id: secret_env("S3_KEY_ID"), secret_access_key: secret_env("S3_SECRET") }}),
}});
env.namespace(name, #{{}});
let db = postgres::instance(env, "db", #{{ storage: "1Gi", database: "app", user: "app" }});
let cache = redis::instance(env, "cache", #{{ storage: "1Gi" }});
let migrate = env.job("migrate-" + env_var("GIT_SHA"), #{{
    image: "ghcr.io/acme/web:1", command: ["/migrate"], env: [db.url_env("DATABASE_URL")] }});
let web = env.deployment("web", #{{ image: "ghcr.io/acme/web:1", port: 80,
    env: [db.url_env("DATABASE_URL"), cache.url_env("REDIS_URL")], after: [migrate] }});
env.dns_a(["@"], "127.0.0.1");
let tls = env.certificate(name, [env.domain]);
env.route(env.domain, web, #{{ tls: tls }});
env.backup(db, #{{ schedule: "0 2 * * *", keep_days: 7, prefix: "postgres/" }});
"#,
        zone = harness::ZONE,
        server = servers.bind.server(),
        key = harness::KEY_NAME,
        directory = servers.pebble.directory(),
        ca = servers.pebble.ca_file().display(),
        s3 = moto.endpoint,
    )
}

/// What kubectl finds of the environment, in every namespace, of every kind cairn writes.
fn left_in_cluster(cluster: &TestCluster) -> Vec<String> {
    let kinds = "namespaces,resourcequotas,limitranges,networkpolicies,serviceaccounts,roles,\
                 rolebindings,secrets,configmaps,persistentvolumeclaims,services,deployments,\
                 statefulsets,daemonsets,jobs,cronjobs,ingresses";
    let out = kubectl(
        cluster,
        &[
            "get",
            kinds,
            "--all-namespaces",
            "-l",
            "cairn.dev/environment=pr-7",
            "-o",
            "name",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The names of kind `kind` kubectl lists in namespace `ns` (all of them, cairn's or not).
fn names(cluster: &TestCluster, kind: &str, ns: &str) -> Vec<String> {
    let out = kubectl(cluster, &["get", kind, "-n", ns, "-o", "name"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_preview_environment_is_destroyed_and_nothing_is_left() {
    let servers = harness::Servers::start(harness::PebbleOptions::default());
    let moto = Moto::start();
    let cluster = TestCluster::start(cairn_sandbox::SandboxConfig {
        pod_start_delay: std::time::Duration::from_millis(20),
        ..Default::default()
    });
    let path = cluster.write("preview.rhai", &preview_script(&servers, &moto));
    let key = servers.bind.secret_b64();
    let creds = moto.settings().credentials.expect("credentials");
    let vars = [
        ("TSIG_KEY", key.as_str()),
        ("PR_NUMBER", "7"),
        ("S3_KEY_ID", creds.access_key_id.as_str()),
        ("S3_SECRET", creds.secret_access_key.as_str()),
    ];
    let plugins = cairn_tests::root()
        .join("plugins")
        .to_string_lossy()
        .into_owned();
    let apply = [
        "apply",
        &path,
        "--yes",
        "--timeout",
        "60",
        "--plugin-path",
        &plugins,
    ];
    let out = cluster.cairn_with(&apply, &vars);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let mut second = vars.to_vec();
    second.push(("GIT_SHA", "second"));
    let out = cluster.cairn_with(&apply, &second);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(!servers.bind.dig("pr-7.example.test", "A").is_empty());
    assert!(!left_in_cluster(&cluster).is_empty());
    // A backup in the bucket: data.
    let s3 = cluster.runtime.block_on(moto.client());
    cluster
        .runtime
        .block_on(s3.put_object("pr-7-backups", "postgres/1.sql.gz", b"dump".to_vec()))
        .expect("backup written");

    // Without --delete-data: everything but the data (claims, bucket, the namespace around
    // the claims) goes, DNS records with their ownership records.
    let destroy = ["destroy", &path, "--yes", "--plugin-path", &plugins];
    let out = cluster.cairn_with(&destroy, &second);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for kept in [
        "! PersistentVolumeClaim/pr-7/db-data",
        "! Namespace/pr-7",
        "! Bucket/pr-7-backups",
    ] {
        assert!(out.stdout.contains(kept), "{kept} in:\n{}", out.stdout);
    }
    assert!(
        out.stdout.contains("- Deployment/pr-7/web"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Destroy complete:"), "{}", out.stdout);
    assert!(servers.bind.dig("pr-7.example.test", "A").is_empty());
    assert!(
        servers
            .bind
            .axfr()
            .iter()
            .all(|r| !r.contains("pr-7.example.test")),
        "{:?}",
        servers.bind.axfr()
    );
    let left = left_in_cluster(&cluster);
    assert!(
        left.iter().all(|o| o.starts_with("persistentvolumeclaim/")
            || o.starts_with("namespace/")
            || o.starts_with("configmap/cairn-inventory")),
        "{left:?}"
    );
    assert!(names(&cluster, "deployments", "pr-7").is_empty());
    assert!(names(&cluster, "ingresses", "pr-7").is_empty());

    // --delete-data with no terminal to confirm on: refused, nothing deleted.
    let with_data = [
        "destroy",
        &path,
        "--yes",
        "--delete-data",
        "--plugin-path",
        &plugins,
    ];
    let out = cluster.cairn_with(&with_data, &second);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("confirm at a terminal"),
        "{}",
        out.stderr
    );
    assert!(!names(&cluster, "persistentvolumeclaims", "pr-7").is_empty());
    // A wrong name typed: cancelled.
    let out = cluster.cairn_answering(&with_data, &second, Some("pr-8\n"));
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Destroy cancelled"), "{}", out.stdout);

    // The environment's name typed: the data goes, the namespace last, the bucket with its
    // objects, the inventory, and the earlier revisions.
    let out = cluster.cairn_answering(&with_data, &second, Some("pr-7\n"));
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("- Namespace/pr-7"), "{}", out.stdout);
    assert!(
        out.stdout.contains("- Bucket/pr-7-backups"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("earlier revision(s) of the environment were removed"),
        "{}",
        out.stderr
    );
    assert_eq!(left_in_cluster(&cluster), Vec::<String>::new());
    let out = kubectl(&cluster, &["get", "namespace", "pr-7"]);
    assert!(!out.status.success(), "the namespace is gone");
    let buckets = cluster
        .runtime
        .block_on(s3.list_buckets())
        .expect("buckets");
    assert!(!buckets.contains(&"pr-7-backups".to_owned()), "{buckets:?}");
    let revisions: Vec<String> = names(&cluster, "secrets", "default")
        .into_iter()
        .filter(|n| n.contains("cairn-revision-pr-7-"))
        .collect();
    assert_eq!(
        revisions.len(),
        1,
        "only the destroy's revision: {revisions:?}"
    );
    let leases = names(&cluster, "leases", "default");
    assert!(leases.iter().all(|l| !l.contains("pr-7")), "{leases:?}");
    let out = cluster.cairn_with(&["history", &path, "--plugin-path", &plugins], &second);
    assert!(out.stdout.contains("destroy: "), "{}", out.stdout);

    // Again: nothing to destroy.
    let out = cluster.cairn_with(&destroy, &second);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Nothing to destroy"), "{}", out.stdout);
}

/// A preview with a lifetime: `destroy --expired` leaves it alone until its inventory's time is
/// past, then destroys it; `ephemeral: true` lets its data go without a confirmation.
#[test]
fn an_expired_ephemeral_preview_is_destroyed_with_its_data_without_asking() {
    let cluster = TestCluster::start(cairn_sandbox::SandboxConfig::default());
    let path = cluster.write(
        "pr.rhai",
        r#"
let env = environment("pr-9", #{ expires: "7d", ephemeral: true });
env.namespace("pr-9", #{});
let data = env.volume_claim("cache-data", #{ storage: "1Gi" });
env.statefulset("cache", #{ image: "redis:7.2-alpine", port: 6379, volumes: #{ "/data": data } });
"#,
    );
    let out = cluster.cairn(&["apply", &path, "--yes", "--timeout", "60"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let expired = ["destroy", &path, "--expired", "--delete-data", "--yes"];
    let out = cluster.cairn(&expired);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("Environment pr-9 expires in 6d 23h")
            || out.stdout.contains("Environment pr-9 expires in 7d 0h"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("not destroyed"), "{}", out.stdout);
    assert!(!names(&cluster, "persistentvolumeclaims", "pr-9").is_empty());
    let out = cluster.cairn(&["status", &path]);
    assert!(
        out.stdout.contains("✓ lifetime of pr-9: expires in"),
        "{}",
        out.stdout
    );

    // What a destroy would do, without --delete-data: the data and its namespace kept.
    let out = cluster.cairn(&["destroy", &path, "--dry-run"]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    insta::assert_snapshot!("destroy-dry-run", out.stdout);

    // A week later (the inventory's time set back by hand, as if it were).
    let out = kubectl(
        &cluster,
        &[
            "patch",
            "configmap",
            "cairn-inventory",
            "-n",
            "pr-9",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"expires-at":"2026-01-01T00:00:00.000000Z"}}"#,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cluster.cairn(&["status", &path]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("! stale lifetime of pr-9: expired")
            && out.stdout.contains("`cairn destroy --expired` removes it"),
        "{}",
        out.stdout
    );
    let out = cluster.cairn(&expired);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("expired"), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("- PersistentVolumeClaim/pr-9/cache-data"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("- Namespace/pr-9"), "{}", out.stdout);
    let out = kubectl(&cluster, &["get", "namespace", "pr-9"]);
    assert!(!out.status.success(), "the namespace is gone");
}
