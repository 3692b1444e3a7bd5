//! Every seed environment (`environments/*.rhai`): checks clean, renders as its snapshot, and
//! applies on the sandbox then re-plans with no change. And custom resources (`env.object`):
//! plan, apply and prune of an operator's kind, and the error when the cluster lacks its CRD.

use std::path::Path;

use cairn_sandbox::SandboxConfig;
use cairn_tests::{TestCluster, cairn, cairn_in, ci_vars, root, secret_values};

const ENVIRONMENTS: &[&str] = &[
    "staging",
    "production",
    "rsolv-staging",
    "ventros-staging",
    "spacetime-staging",
    "preview",
];

fn script(env: &str) -> String {
    root()
        .join("environments")
        .join(format!("{env}.rhai"))
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_environment_checks_clean() {
    for env in ENVIRONMENTS {
        let out = cairn(&["check", &script(env)], ci_vars());
        assert_eq!(out.code, 0, "check {env}:\n{}\n{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains("no problems"),
            "check {env}:\n{}\n{}",
            out.stdout,
            out.stderr
        );
        assert!(out.stderr.is_empty(), "check {env}:\n{}", out.stderr);
    }
}

fn render(env: &str) -> String {
    let out = cairn(&["render", &script(env)], ci_vars());
    assert_eq!(out.code, 0, "render {env}:\n{}", out.stderr);
    assert!(out.stderr.is_empty(), "render {env}:\n{}", out.stderr);
    for secret in secret_values() {
        assert!(
            !out.stdout.contains(&secret),
            "render {env} shows a secret value"
        );
    }
    out.stdout
}

#[test]
fn rsolv_staging_renders_as_snapshot() {
    insta::assert_snapshot!("rsolv-staging.yaml", render("rsolv-staging"));
}

#[test]
fn ventros_staging_renders_as_snapshot() {
    insta::assert_snapshot!("ventros-staging.yaml", render("ventros-staging"));
}

#[test]
fn spacetime_staging_renders_as_snapshot() {
    insta::assert_snapshot!("spacetime-staging.yaml", render("spacetime-staging"));
}

/// Parses a rendered YAML stream into its documents.
fn documents(yaml: &str) -> Vec<serde_json::Value> {
    yaml.split("\n---\n")
        .map(|d| d.trim_start_matches("---\n"))
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str(d).expect("rendered YAML parses"))
        .collect()
}

fn find<'a>(docs: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

#[test]
fn rsolv_staging_is_half_of_production() {
    let docs = documents(&render("rsolv-staging"));
    let api = find(&docs, "Deployment", "staging-api");
    assert_eq!(api["spec"]["replicas"], 1, "1 replica (vs 2)");
    let resources = &api["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(resources["limits"]["cpu"], "250m", "250m (vs 500m)");
    assert_eq!(resources["limits"]["memory"], "512Mi", "512Mi (vs 1Gi)");
    let ingress = find(&docs, "Ingress", "api.rsolv-staging.com");
    assert_eq!(
        ingress["spec"]["rules"][0]["host"], "api.rsolv-staging.com",
        "its own domain"
    );
}

#[test]
fn ventros_staging_clones_production_then_sanitizes_before_migrating() {
    let docs = documents(&render("ventros-staging"));
    let db = find(&docs, "postgresql", "ventros-staging");
    assert_eq!(db["apiVersion"], "acid.zalan.do/v1");
    assert_eq!(db["metadata"]["namespace"], "staging");
    assert_eq!(db["spec"]["clone"]["cluster"], "ventros-production");
    assert_eq!(
        db["spec"]["clone"]["timestamp"],
        "2026-11-01T03:00:00+00:00"
    );
    assert_eq!(db["spec"]["enableLogicalBackup"], true);
    assert_eq!(db["spec"]["logicalBackupSchedule"], "0 2 * * *");
    let sql = find(&docs, "ConfigMap", "ventros-staging-sanitize");
    assert!(
        sql["data"]["sanitize.sql"]
            .as_str()
            .is_some_and(|s| s.contains("UPDATE contacts SET")),
        "{sql}"
    );
    let job = find(&docs, "Job", "ventros-staging-sanitize-202611010300");
    let mounts = &job["spec"]["template"]["spec"]["volumes"];
    assert_eq!(
        mounts[0]["configMap"]["name"], "ventros-staging-sanitize",
        "{job}"
    );
    // The application's migration waits for the sanitization (the apply graph), and reads the
    // operator's credentials Secret.
    let state = cairn_stdlib::evaluate_file(
        Path::new(&script("ventros-staging")),
        &cairn_stdlib::EvalOptions {
            vars: ci_vars(),
            ..Default::default()
        },
    );
    let migrate = state
        .state
        .resources
        .iter()
        .find(|r| r.id.to_string() == "Job/staging/ventros-crm-migrate-4f2c9e1")
        .expect("migration job");
    assert!(
        migrate
            .depends_on
            .iter()
            .any(|d| d.to_string() == "Job/staging/ventros-staging-sanitize-202611010300"),
        "{:?}",
        migrate.depends_on
    );
    let migrate_doc = find(&docs, "Job", "ventros-crm-migrate-4f2c9e1");
    let text = migrate_doc.to_string();
    assert!(
        text.contains("crm.ventros-staging.credentials.postgresql.acid.zalan.do"),
        "{text}"
    );
}

#[test]
fn spacetime_staging_has_three_cockroach_nodes_and_redis_with_sentinel() {
    let docs = documents(&render("spacetime-staging"));
    let crdb = find(&docs, "StatefulSet", "cockroachdb");
    assert_eq!(crdb["spec"]["replicas"], 3);
    assert_eq!(
        crdb["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"], "50Gi",
        "half of production's 100GB per node"
    );
    let svc = find(&docs, "Service", "cockroachdb");
    assert_eq!(svc["spec"]["clusterIP"], "None", "headless: {svc}");
    assert_eq!(svc["spec"]["publishNotReadyAddresses"], true);
    let init = find(&docs, "ConfigMap", "cockroachdb-init");
    assert!(
        init["data"]["init.sql"]
            .as_str()
            .is_some_and(|s| s.contains("latency_threshold = '100ms'")),
        "{init}"
    );
    let redis = find(&docs, "StatefulSet", "redis");
    assert_eq!(redis["spec"]["replicas"], 3);
    let sentinel = find(&docs, "StatefulSet", "redis-sentinel");
    assert!(
        sentinel
            .to_string()
            .contains("sentinel monitor mymaster redis-0.redis 6379 2"),
        "{sentinel}"
    );
    let prom = find(&docs, "Deployment", "prometheus");
    assert!(
        prom.to_string()
            .contains("--storage.tsdb.retention.time=15d"),
        "{prom}"
    );
    find(&docs, "Deployment", "grafana");
    // Prometheus reads its targets from the file cairn writes at plan time (`env.scrape`).
    let target = find(&docs, "ScrapeTarget", "cockroachdb");
    assert!(
        target.to_string().contains("_status/vars"),
        "cockroach metrics are scraped: {target}"
    );
}

/// The CustomResourceDefinitions an operator's Helm chart would install (schemas reduced to
/// what the tests need).
fn crd(group: &str, kind: &str, plural: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind, "listKind": format!("{kind}List")},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}
    })
}

fn install_operators(cluster: &TestCluster) {
    cluster.runtime.block_on(async {
        let client = cairn_tests::kube_client(cluster).await;
        let api: kube::Api<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        > = kube::Api::all(client);
        for body in [
            crd("acid.zalan.do", "postgresql", "postgresqls"),
            crd("postgresql.cnpg.io", "Cluster", "clusters"),
            crd("postgresql.cnpg.io", "ScheduledBackup", "scheduledbackups"),
        ] {
            let crd = serde_json::from_value(body).expect("crd");
            api.create(&kube::api::PostParams::default(), &crd)
                .await
                .expect("CRD created");
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    });
}

/// A working directory whose `--sandbox` state already has the operators' CRDs.
pub(crate) fn sandbox_with_operators(what: &str) -> std::path::PathBuf {
    let dir = cairn_tests::temp_dir(what);
    let state = dir.join(".cairn/sandbox");
    std::fs::create_dir_all(&state).expect("sandbox dir");
    let cluster = TestCluster::start(SandboxConfig {
        state_file: Some(state.join("state.json")),
        ..SandboxConfig::default()
    });
    install_operators(&cluster);
    drop(cluster);
    dir
}

fn applies_then_replans_clean(env: &str) {
    let dir = sandbox_with_operators(env);
    let path = script(env);
    let out = cairn_in(
        &dir,
        &["apply", "--sandbox", &path, "--yes", "--timeout", "180"],
        ci_vars(),
    );
    assert_eq!(
        out.code, 0,
        "apply {env} failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    assert!(out.stdout.contains("Apply complete"), "{}", out.stdout);
    let out = cairn_in(&dir, &["plan", "--sandbox", &path], ci_vars());
    assert_eq!(
        out.code, 0,
        "a plan of {env} right after apply must show no changes:\n{}\n{}",
        out.stdout, out.stderr
    );
    for secret in secret_values() {
        assert!(!out.stdout.contains(&secret), "plan {env} shows a secret");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn staging_applies_then_replans_clean() {
    applies_then_replans_clean("staging");
}

#[test]
fn production_applies_then_replans_clean() {
    applies_then_replans_clean("production");
}

#[test]
fn rsolv_staging_applies_then_replans_clean() {
    applies_then_replans_clean("rsolv-staging");
}

#[test]
fn ventros_staging_applies_then_replans_clean() {
    applies_then_replans_clean("ventros-staging");
}

#[test]
fn spacetime_staging_applies_then_replans_clean() {
    applies_then_replans_clean("spacetime-staging");
}

fn custom(instances: i64, with_backup: bool) -> String {
    let mut s = format!(
        r#"
let env = environment("crm", #{{}});
env.namespace("crm", #{{}});
env.object("acid.zalan.do/v1", "postgresql", "crm-db", #{{
    metadata: #{{ labels: #{{ team: "crm" }} }},
    spec: #{{ teamId: "crm", numberOfInstances: {instances}, volume: #{{ size: "1Gi" }}, postgresql: #{{ version: "16" }} }},
}});
"#
    );
    if with_backup {
        s.push_str(
            r#"env.object("postgresql.cnpg.io/v1", "ScheduledBackup", "nightly", #{ spec: #{ schedule: "0 0 2 * * *", cluster: #{ name: "crm-db" } } });
"#,
        );
    }
    s
}

#[test]
fn a_custom_resource_is_planned_applied_changed_and_pruned() {
    let cluster = TestCluster::start(SandboxConfig::default());
    install_operators(&cluster);
    let v1 = cluster.write("v1.rhai", &custom(1, true));
    let out = cluster.cairn(&["apply", &v1, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("✓ postgresql/crm/crm-db created"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("✓ ScheduledBackup/crm/nightly created"),
        "{}",
        out.stdout
    );
    cluster.sandbox().clear_requests();
    let out = cluster.cairn(&["plan", &v1]);
    assert_eq!(out.code, 0, "no change after apply:\n{}", out.stdout);
    // A plan with no change: one discovery request per custom group version, one LIST per
    // kind, nothing else.
    let requests: Vec<String> = cluster
        .sandbox()
        .requests()
        .iter()
        .filter(|r| !r.path.starts_with("/version") && r.path != "/api" && r.path != "/apis")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let mut expected = vec![
        "GET /api/v1/namespaces/kube-system",
        "GET /apis/acid.zalan.do/v1",
        "GET /apis/postgresql.cnpg.io/v1",
        "GET /api/v1/namespaces",
        "GET /api/v1/namespaces/crm/configmaps",
        "GET /apis/acid.zalan.do/v1/namespaces/crm/postgresqls",
        "GET /apis/postgresql.cnpg.io/v1/namespaces/crm/scheduledbackups",
    ];
    let mut seen: Vec<&str> = requests.iter().map(String::as_str).collect();
    expected.sort_unstable();
    seen.sort_unstable();
    assert_eq!(seen, expected);

    // One field changes; the backup is no longer declared at all: pruned, found through the
    // inventory, which names the kind with its group.
    let v2 = cluster.write("v2.rhai", &custom(2, false));
    let out = cluster.cairn(&["plan", &v2]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("~ postgresql/crm/crm-db"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("spec.numberOfInstances: 1 → 2"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("- ScheduledBackup/crm/nightly"),
        "{}",
        out.stdout
    );
    let out = cluster.cairn(&["apply", &v2, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let out = cluster.cairn(&["plan", &v2]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);

    // The live objects: the change landed, the backup is gone.
    cluster.runtime.block_on(async {
        let client = cairn_tests::kube_client(&cluster).await;
        let ar = kube::discovery::ApiResource {
            group: "acid.zalan.do".into(),
            version: "v1".into(),
            api_version: "acid.zalan.do/v1".into(),
            kind: "postgresql".into(),
            plural: "postgresqls".into(),
        };
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::namespaced_with(client.clone(), "crm", &ar);
        let db = api.get("crm-db").await.expect("postgresql");
        assert_eq!(db.data["spec"]["numberOfInstances"], 2);
        let ar = kube::discovery::ApiResource {
            group: "postgresql.cnpg.io".into(),
            version: "v1".into(),
            api_version: "postgresql.cnpg.io/v1".into(),
            kind: "ScheduledBackup".into(),
            plural: "scheduledbackups".into(),
        };
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::namespaced_with(client, "crm", &ar);
        let list = api
            .list(&kube::api::ListParams::default())
            .await
            .expect("list");
        assert!(list.items.is_empty(), "the backup was pruned");
    });
}

#[test]
fn a_custom_resource_without_its_crd_fails_the_plan_naming_the_operator() {
    let cluster = TestCluster::start(SandboxConfig::default());
    let v1 = cluster.write("v1.rhai", &custom(1, false));
    let out = cluster.cairn(&["plan", &v1]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(
            "the cluster does not serve acid.zalan.do/v1 postgresql: install the postgres-operator (Zalando)"
        ),
        "{}",
        out.stderr
    );
    let out = cluster.cairn(&["apply", &v1, "--yes"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("does not serve acid.zalan.do/v1 postgresql"),
        "{}",
        out.stderr
    );
}

#[test]
fn env_object_rejects_built_in_apis_bad_kinds_and_names() {
    let dir = cairn_tests::temp_dir("object-errors");
    let path = dir.join("bad.rhai");
    std::fs::write(
        &path,
        r#"
let env = environment("crm", #{});
env.namespace("crm", #{});
env.object("apps/v1", "Deployment", "web", #{ spec: #{} });
env.object("acid.zalan.do/v1", "my-kind", "db", #{ spec: #{} });
env.object("acid.zalan.do/v1", "postgresql", "Bad_Name", #{ spec: #{} });
env.object("acid.zalan.do/v1", "postgresql", "db2", #{ metadata: #{ name: "other" }, spec: #{} });
"#,
    )
    .expect("script");
    let out = cairn(&["check", &path.to_string_lossy()], ci_vars());
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    for expected in [
        "`apps/v1` is a built-in API; use env.deployment",
        "invalid kind `my-kind`",
        "invalid object name \"Bad_Name\"",
        "`metadata.name` of `db2` is cairn's to set",
    ] {
        assert!(out.stderr.contains(expected), "{expected}:\n{}", out.stderr);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_protected_custom_resource_is_kept_until_the_script_allows_its_deletion() {
    let cluster = TestCluster::start(SandboxConfig::default());
    install_operators(&cluster);
    let head = "let env = environment(\"crm\", #{});\nenv.namespace(\"crm\", #{});\n";
    let v1 = cluster.write("v1.rhai",
        &format!(
            "{head}env.object(\"acid.zalan.do/v1\", \"postgresql\", \"crm-db\", #{{ spec: #{{ teamId: \"crm\" }} }}, #{{ holds_data: true }});\n"
        ),
    );
    let out = cluster.cairn(&["apply", &v1, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    // Dropped from the script: kept, with the reason.
    let v2 = cluster.write("v2.rhai", head);
    let out = cluster.cairn(&["apply", &v2, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("! postgresql/crm/crm-db"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("holds data"), "{}", out.stdout);
    let live = |cluster: &TestCluster| {
        cluster.runtime.block_on(async {
            let client = cairn_tests::kube_client(cluster).await;
            let ar = kube::discovery::ApiResource {
                group: "acid.zalan.do".into(),
                version: "v1".into(),
                api_version: "acid.zalan.do/v1".into(),
                kind: "postgresql".into(),
                plural: "postgresqls".into(),
            };
            let api: kube::Api<kube::api::DynamicObject> =
                kube::Api::namespaced_with(client, "crm", &ar);
            api.get_opt("crm-db").await.expect("get").is_some()
        })
    };
    assert!(live(&cluster), "the database is still there");
    // Allowed: deleted.
    let v3 = cluster.write(
        "v3.rhai",
        &format!("{head}env.allow_delete(\"postgresql\", \"crm-db\");\n"),
    );
    // The plan deletes a database: exit code 3, for CI to stop for a human.
    let out = cluster.cairn(&["plan", &v3]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let out = cluster.cairn(&["apply", &v3, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("- postgresql/crm/crm-db"),
        "{}",
        out.stdout
    );
    assert!(!live(&cluster), "the database was deleted");
}

#[test]
fn postgres_cnpg_declares_a_cluster_with_backups_to_s3_and_applies() {
    let cluster = TestCluster::start(SandboxConfig::default());
    install_operators(&cluster);
    let path = cluster.write("cnpg.rhai",
        r#"
import "postgres" as postgres;
let env = environment("shop", #{});
env.namespace("shop", #{ isolate: #{ deny_namespaces: ["production"] } });
let db = postgres::cnpg(env, "shop-db", #{
    instances: 2, storage: "5Gi", database: "shop",
    backup: #{ destination: "s3://shop-backups/cnpg", endpoint: "https://s3.example.com",
               access_key_id: secret_env("CNPG_KEY_ID"), secret_access_key: secret_env("CNPG_SECRET"),
               retention: "14d", schedule: "0 0 3 * * *" },
});
env.deployment("web", #{ image: "nginx:1.27", env: [db.url_env("DATABASE_URL")] });
"#,
    );
    let plugins = root().join("plugins").to_string_lossy().into_owned();
    let vars = [
        ("CNPG_KEY_ID", "AKIA-VALUE-10"),
        ("CNPG_SECRET", "cnpg-secret-VALUE-11"),
    ];
    let mut env_vars = ci_vars();
    env_vars.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let out = cairn(&["render", &path, "--plugin-path", &plugins], env_vars);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        !out.stdout.contains("cnpg-secret-VALUE-11"),
        "a secret leaked"
    );
    let docs = documents(&out.stdout);
    let db = find(&docs, "Cluster", "shop-db");
    assert_eq!(db["apiVersion"], "postgresql.cnpg.io/v1");
    assert_eq!(db["spec"]["instances"], 2);
    assert_eq!(
        db["spec"]["bootstrap"]["initdb"]["secret"]["name"],
        "shop-db-app"
    );
    let store = &db["spec"]["backup"]["barmanObjectStore"];
    assert_eq!(store["destinationPath"], "s3://shop-backups/cnpg");
    assert_eq!(
        store["s3Credentials"]["secretAccessKey"]["name"],
        "shop-db-backup-s3"
    );
    assert_eq!(db["spec"]["backup"]["retentionPolicy"], "14d");
    let scheduled = find(&docs, "ScheduledBackup", "shop-db-daily");
    assert_eq!(scheduled["spec"]["cluster"]["name"], "shop-db");
    // The application reaches the operator's pods through the derived network policy.
    let policy = find(&docs, "NetworkPolicy", "allow-web-to-deps");
    assert_eq!(
        policy["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"]["cnpg.io/cluster"],
        "shop-db"
    );

    let out = cluster.cairn_with(&["apply", &path, "--yes", "--plugin-path", &plugins], &vars);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("✓ Cluster/shop/shop-db created"),
        "{}",
        out.stdout
    );
    let out = cluster.cairn_with(&["plan", &path, "--plugin-path", &plugins], &vars);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
}

#[test]
fn plugin_options_are_checked_where_the_script_calls_them() {
    let dir = cairn_tests::temp_dir("plugin-errors");
    for (script, expected) in [
        (
            r#"postgres::zalando(env, "staging-db", #{ team: "ventros" });"#,
            "the cluster name 'staging-db' must start with its team 'ventros-'",
        ),
        (
            r#"postgres::zalando(env, "ventros-db", #{ clone: #{ cluster: "ventros-prod", timestamp: "2026-01-10 15:00:00" } });"#,
            "needs a time zone",
        ),
        (
            r#"redis::sentinel(env, "cache", #{ sentinels: 2 });"#,
            "2 sentinels cannot fail over safely",
        ),
        (
            r#"cockroachdb::cluster(env, "crdb", #{ nodes: 2 });"#,
            "two nodes cannot keep a quorum",
        ),
        (
            r#"monitoring::stack(env, #{ retention: 3 });"#,
            "monitoring::stack has no option `retention`",
        ),
    ] {
        let path = dir.join("bad.rhai");
        std::fs::write(
            &path,
            format!(
                "import \"postgres\" as postgres;\nimport \"redis\" as redis;\nimport \"cockroachdb\" as cockroachdb;\nimport \"monitoring\" as monitoring;\nlet env = environment(\"x\", #{{}});\nenv.namespace(\"x\", #{{}});\n{script}\n"
            ),
        )
        .expect("script");
        let plugins = root().join("plugins").to_string_lossy().into_owned();
        let out = cairn(
            &["check", &path.to_string_lossy(), "--plugin-path", &plugins],
            ci_vars(),
        );
        assert_eq!(out.code, 1, "{script}:\n{}", out.stderr);
        assert!(out.stderr.contains(expected), "{expected}:\n{}", out.stderr);
        assert!(
            out.stderr.contains("bad.rhai:7:"),
            "points at the call:\n{}",
            out.stderr
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_key_an_operator_secret_does_not_have_is_reported() {
    let dir = cairn_tests::temp_dir("operator-secret");
    let path = dir.join("app.rhai");
    std::fs::write(
        &path,
        r#"
let env = environment("crm", #{});
env.namespace("crm", #{});
let creds = env.operator_secret("app.crm-db.credentials.postgresql.acid.zalan.do", ["username", "password"]);
env.deployment("web", #{ image: "nginx:1.27", env: [#{ DB_USER: creds.key("username"), DB_PASSWORD: creds.key("passwd") }] });
"#,
    )
    .expect("script");
    let out = cairn(&["check", &path.to_string_lossy()], ci_vars());
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("missing-secret-key"), "{}", out.stderr);
    assert!(
        out.stderr.contains("did you mean `password`?"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches("missing-secret-key").count(),
        1,
        "the key it has is fine:\n{}",
        out.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_kind_name_in_two_api_groups_is_refused_before_any_change() {
    let cluster = TestCluster::start(SandboxConfig::default());
    let path = cluster.write(
        "clash.rhai",
        r#"
let env = environment("crm", #{});
env.namespace("crm", #{});
env.object("postgresql.cnpg.io/v1", "Cluster", "db", #{ spec: #{ instances: 1 } });
env.object("example.com/v1", "Cluster", "other", #{ spec: #{} });
"#,
    );
    let out = cluster.cairn(&["plan", &path]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(
            "kind Cluster is declared with two API versions, postgresql.cnpg.io/v1 and example.com/v1"
        ) || out.stderr.contains(
            "kind Cluster is declared with two API versions, example.com/v1 and postgresql.cnpg.io/v1"
        ),
        "{}",
        out.stderr
    );
}

/// rbx staging, ventros staging and spacetime staging all declare namespace `staging`: the
/// first to apply owns it; the others are refused at plan time, at the script line, naming
/// both environments, and apply nothing; rbx staging still plans no change.
#[test]
fn environments_never_take_each_others_namespace() {
    let dir = sandbox_with_operators("shared-namespace");
    let staging = script("staging");
    let out = cairn_in(
        &dir,
        &["apply", "--sandbox", &staging, "--yes", "--timeout", "180"],
        ci_vars(),
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for other in ["ventros-staging", "spacetime-staging"] {
        let path = script(other);
        let plan = cairn_in(&dir, &["plan", "--sandbox", &path], ci_vars());
        assert_eq!(plan.code, 1, "{other}:\n{}\n{}", plan.stdout, plan.stderr);
        let line = format!("✗ Namespace/staging  (declared at {path}:");
        assert!(plan.stdout.contains(&line), "{other}:\n{}", plan.stdout);
        assert!(
            plan.stdout.contains("(belongs to environment staging: cairn never changes another environment's objects)"),
            "{other}:\n{}",
            plan.stdout
        );
        // Both seeds declare the namespace's quota and limits: rbx staging's, refused too.
        for shared in [
            "ResourceQuota/staging/staging-quota",
            "LimitRange/staging/staging-limits",
        ] {
            assert!(
                plan.stdout.contains(&format!("✗ {shared}")),
                "{other}: {shared}\n{}",
                plan.stdout
            );
        }
        let apply = cairn_in(&dir, &["apply", "--sandbox", &path, "--yes"], ci_vars());
        assert_eq!(
            apply.code, 1,
            "{other}:\n{}\n{}",
            apply.stdout, apply.stderr
        );
        assert!(
            apply.stderr.contains("not applying anything"),
            "{}",
            apply.stderr
        );
    }
    // Sharing is said in the script: this environment declares only its own objects there.
    let guest = dir.join("guest.rhai");
    std::fs::write(
        &guest,
        "let env = environment(\"guest\", #{});\nenv.namespace(\"staging\", #{ owned_by: \"staging\" });\nenv.config_map(\"guest-settings\", #{ MODE: \"guest\" });\nenv.deployment(\"guest-web\", #{ image: \"nginx:1.27\", replicas: 1, port: 80, resources: #{ cpu: \"100m\", memory: \"64Mi\" } });\n",
    )
    .expect("script");
    let guest = guest.to_string_lossy().into_owned();
    let plan = cairn_in(&dir, &["plan", "--sandbox", &guest], ci_vars());
    assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        !plan.stdout.contains("Namespace/staging"),
        "{}",
        plan.stdout
    );
    let apply = cairn_in(
        &dir,
        &["apply", "--sandbox", &guest, "--yes", "--timeout", "120"],
        ci_vars(),
    );
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    for script in [&guest, &staging] {
        let again = cairn_in(&dir, &["plan", "--sandbox", script], ci_vars());
        assert_eq!(
            again.code, 0,
            "{script}:\n{}\n{}",
            again.stdout, again.stderr
        );
    }
    // The owner the script names must be the namespace's.
    let wrong = dir.join("wrong.rhai");
    std::fs::write(
        &wrong,
        std::fs::read_to_string(&guest)
            .expect("guest")
            .replace("owned_by: \"staging\"", "owned_by: \"production\"")
            .replace("\"guest\"", "\"wrong\""),
    )
    .expect("script");
    let plan = cairn_in(
        &dir,
        &["plan", "--sandbox", &wrong.to_string_lossy()],
        ci_vars(),
    );
    assert_eq!(plan.code, 1, "{}\n{}", plan.stdout, plan.stderr);
    assert!(plan.stderr.contains("namespace staging is owned by environment staging; the script says environment production owns it"), "{}", plan.stderr);
    // A shared namespace's quota is its owner's to declare.
    std::fs::write(dir.join("bad.rhai"), "let env = environment(\"bad\", #{});\nenv.namespace(\"staging\", #{ owned_by: \"staging\", quota: #{ pods: 5 } });\n").expect("script");
    let bad = dir.join("bad.rhai").to_string_lossy().into_owned();
    let check = cairn_in(&dir, &["check", &bad], ci_vars());
    assert_eq!(check.code, 1);
    assert!(
        check
            .stdout
            .contains("`quota` belongs to the environment that owns namespace")
            || check
                .stderr
                .contains("`quota` belongs to the environment that owns namespace"),
        "{}{}",
        check.stdout,
        check.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An operator's resource whose schema makes a field immutable is not replaced without the
/// script saying so (what deleting it makes the operator do is not cairn's to guess): refused
/// with help, then replaced with `env.allow_replace`.
#[test]
fn an_operators_resource_is_replaced_only_when_the_script_allows_it() {
    let cluster = TestCluster::start(SandboxConfig::default());
    cluster.runtime.block_on(async {
        let client = cairn_tests::kube_client(&cluster).await;
        let api: kube::Api<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        > = kube::Api::all(client);
        let crd = serde_json::json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "databases.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "databases", "singular": "database", "kind": "Database"},
                "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                    "type": "object", "properties": {"spec": {"type": "object", "properties": {
                        "engine": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "field is immutable"}]}}}}}}}]}});
        api.create(&kube::api::PostParams::default(), &serde_json::from_value(crd).expect("crd"))
            .await
            .expect("CRD created");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    });
    let script = |engine: &str, extra: &str| {
        format!(
            "let env = environment(\"crm\", #{{}});\nenv.namespace(\"crm\", #{{}});\nenv.object(\"example.com/v1\", \"Database\", \"main\", #{{ spec: #{{ engine: \"{engine}\" }} }});\n{extra}\n"
        )
    };
    let v1 = cluster.write("v1.rhai", &script("pg", ""));
    let out = cluster.cairn(&["apply", &v1, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let v2 = cluster.write("v2.rhai", &script("mysql", ""));
    let plan = cluster.cairn(&["plan", &v2]);
    assert_eq!(plan.code, 1, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains("✗ Database/crm/main"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("(spec.engine is immutable)"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("env.allow_replace(\"Database\", \"main\")"),
        "{}",
        plan.stdout
    );
    let v3 = cluster.write(
        "v3.rhai",
        &script("mysql", "env.allow_replace(\"Database\", \"main\");"),
    );
    let plan = cluster.cairn(&["plan", &v3]);
    assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains("-/+ Database/crm/main"),
        "{}",
        plan.stdout
    );
    let out = cluster.cairn(&["apply", &v3, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(cluster.cairn(&["plan", &v3]).code, 0);
}
