//! cairn in CI: saved plans, the protected-deletion exit code, history and rollback, drift,
//! progress output and the dependency graph — against the Kubernetes API emulator.

use cairn_sandbox::SandboxConfig;
use cairn_tests::{TestCluster, kube_client, root, secret_values};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};

fn shop(replicas: i64, level: &str) -> String {
    format!(
        r#"
let env = environment("shop", #{{}});
env.namespace("shop", #{{
    quota: #{{ requests_cpu: "4", requests_memory: "8Gi" }},
    container_defaults: #{{ cpu: "200m", memory: "128Mi", request_cpu: "100m", request_memory: "64Mi" }},
}});
let settings = env.config_map("settings", #{{ MODE: "one", LEVEL: "{level}" }});
let creds = env.secret("creds", #{{ PASSWORD: generate_password(20), TOKEN: secret_env("GHCR_TOKEN") }});
let data = env.volume_claim("data", #{{ storage: "1Gi" }});
env.deployment("web", #{{
    image: "nginx:1.27", replicas: {replicas}, port: 80, ready: http_get("/", 80),
    env: [settings, creds],
    resources: #{{ cpu: "100m", memory: "64Mi" }},
}});
"#
    )
}

fn config() -> SandboxConfig {
    SandboxConfig {
        pod_start_delay: std::time::Duration::from_millis(20),
        ..SandboxConfig::default()
    }
}

/// Changes a ConfigMap the way `kubectl edit` does: a merge patch by another field manager.
fn edit_config_map(cluster: &TestCluster, name: &str, key: &str, value: &str) {
    cluster.runtime.block_on(async {
        let client = kube_client(cluster).await;
        let api: Api<ConfigMap> = Api::namespaced(client, "shop");
        let patch = serde_json::json!({ "data": { key: value } });
        api.patch(
            name,
            &PatchParams {
                field_manager: Some("kubectl-edit".to_owned()),
                ..PatchParams::default()
            },
            &Patch::Merge(&patch),
        )
        .await
        .expect("edited");
    });
}

fn replicas(cluster: &TestCluster) -> i32 {
    cluster.runtime.block_on(async {
        let client = kube_client(cluster).await;
        let api: Api<Deployment> = Api::namespaced(client, "shop");
        api.get("web")
            .await
            .expect("web")
            .spec
            .replicas
            .expect("replicas")
    })
}

#[test]
fn a_saved_plan_applies_exactly_and_holds_no_secret() {
    let cluster = TestCluster::start(config());
    let script = cluster.write("shop.rhai", &shop(2, "info"));
    let file = cluster.dir.join("plan.cairn");
    let file = file.to_str().expect("utf-8");
    let out = cluster.cairn(&["plan", &script, "-o", file]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("Saved this plan"), "{}", out.stderr);

    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(file).expect("plan file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(file).expect("plan file");
    for secret in secret_values() {
        assert!(
            !text.contains(&secret),
            "a secret value is in the plan file"
        );
    }
    let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(doc["cairn_saved_plan"], 1);
    assert_eq!(doc["observed"]["Deployment/shop/web"], "absent");
    assert_eq!(doc["plan"]["environment"], "shop");

    // Never silently elsewhere: another target on the command line is refused (without the
    // test cluster's --kubeconfig, which --sandbox contradicts).
    let out = cairn_tests::cairn(&["apply", file, "--sandbox"], cairn_tests::ci_vars());
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("was planned with other settings: --sandbox"),
        "{}",
        out.stderr
    );
    let out = cluster.cairn(&["apply", file, "--accept-cluster"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("was planned with other settings: --accept-cluster (not planned with it)"),
        "{}",
        out.stderr
    );

    // Applied as saved: no question asked, the same plan carried out.
    let out = cluster.cairn(&["apply", file]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("Applying the saved plan of shop on test made"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Apply complete: 8 added"),
        "{}",
        out.stdout
    );
    assert_eq!(replicas(&cluster), 2);

    // Applying it twice is refused: what it read has changed (it was applied).
    let out = cluster.cairn(&["apply", file]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("Deployment/shop/web was created since the plan was made"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_saved_plan_is_refused_after_a_concurrent_change() {
    let cluster = TestCluster::start(config());
    let v1 = cluster.write("shop.rhai", &shop(2, "info"));
    assert_eq!(cluster.cairn(&["apply", &v1, "--yes"]).code, 0);
    let v2 = cluster.write("shop.rhai", &shop(3, "info"));
    let file = cluster.dir.join("plan.cairn");
    let file = file.to_str().expect("utf-8");
    assert_eq!(cluster.cairn(&["plan", &v2, "-o", file]).code, 2);

    // Someone edits an object the plan read.
    edit_config_map(&cluster, "settings", "MODE", "two");
    let out = cluster.cairn(&["apply", file]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("refusing to apply")
            && out
                .stderr
                .contains("ConfigMap/shop/settings changed since the plan was made"),
        "{}",
        out.stderr
    );
    assert_eq!(replicas(&cluster), 2, "nothing was applied");

    // A new plan of the same script, applied right away, goes through.
    assert_eq!(
        cluster
            .cairn(&["plan", &v2, "-o", file, "--force-conflicts"])
            .code,
        2
    );
    let out = cluster.cairn(&["apply", file]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(replicas(&cluster), 3);

    // The script changing after the plan is refused too.
    assert_eq!(cluster.cairn(&["plan", &v2, "-o", file]).code, 0);
    cluster.write("shop.rhai", &shop(4, "info"));
    let out = cluster.cairn(&["apply", file]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("changed since the plan was made"),
        "{}",
        out.stderr
    );
    assert_eq!(replicas(&cluster), 3);
}

#[test]
fn deleting_a_volume_the_script_allows_to_delete_has_its_own_exit_code() {
    let cluster = TestCluster::start(config());
    let v1 = cluster.write("shop.rhai", &shop(1, "info"));
    assert_eq!(cluster.cairn(&["apply", &v1, "--yes"]).code, 0);
    let without = shop(1, "info").replace(
        "let data = env.volume_claim(\"data\", #{ storage: \"1Gi\" });",
        "",
    );
    // Not allowed: kept, an ordinary plan.
    let v2 = cluster.write("v2.rhai", &without);
    let out = cluster.cairn(&["plan", &v2]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("! PersistentVolumeClaim/shop/data"),
        "{}",
        out.stdout
    );
    // Allowed: the plan deletes data, exit code 3.
    let v3 = cluster.write(
        "v3.rhai",
        &format!("{without}\nenv.allow_delete(\"PersistentVolumeClaim\", \"data\");\n"),
    );
    let out = cluster.cairn(&["plan", &v3]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("- PersistentVolumeClaim/shop/data"),
        "{}",
        out.stdout
    );
    let json = cluster.cairn(&["plan", &v3, "--json"]);
    assert_eq!(json.code, 3);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(doc["deletes_data"], true);
    let json = cluster.cairn(&["plan", &v2, "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(doc["deletes_data"], false);
}

#[test]
fn history_lists_applies_and_rollback_restores_an_earlier_revision() {
    let cluster = TestCluster::start(config());
    let v1 = cluster.write("shop.rhai", &shop(2, "info"));
    assert_eq!(cluster.cairn(&["apply", &v1, "--yes"]).code, 0);
    let v2 = cluster.write("shop.rhai", &shop(3, "debug"));
    let out = cluster.cairn(&["apply", &v2, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("Recorded as revision 2"),
        "{}",
        out.stderr
    );

    let out = cluster.cairn(&["history", &v2, "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let revisions = doc["revisions"].as_array().expect("revisions");
    assert_eq!(revisions.len(), 2);
    assert_eq!(
        revisions[0]["summary"],
        "8 added, 0 changed, 0 replaced, 0 destroyed"
    );
    assert_eq!(
        revisions[1]["summary"],
        "0 added, 2 changed, 0 replaced, 0 destroyed"
    );
    assert_eq!(revisions[1]["outcome"], "succeeded");
    assert!(
        revisions[1]["author"]
            .as_str()
            .is_some_and(|a| a.contains("pid")),
        "{doc}"
    );
    let human = cluster.cairn(&["history", &v2]);
    assert!(
        human.stdout.contains("Revisions of shop (newest first):"),
        "{}",
        human.stdout
    );

    // Revisions are Secrets in `default`, and no secret value went into them.
    let stored = cluster.runtime.block_on(async {
        let client = kube_client(&cluster).await;
        let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client, "default");
        let items = api.list(&Default::default()).await.expect("list").items;
        items
            .iter()
            .filter(|s| {
                s.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("cairn-revision-"))
            })
            .flat_map(|s| s.data.clone().unwrap_or_default())
            .map(|(k, v)| format!("{k}={}\n", String::from_utf8_lossy(&v.0)))
            .collect::<String>()
    });
    assert!(stored.contains("revision=2"), "{stored}");
    assert!(stored.contains("sources.json="), "{stored}");
    for secret in secret_values() {
        assert!(!stored.contains(&secret), "a secret value is in a revision");
    }

    // Rollback shows the plan back to revision 1, applies it, and records it.
    let out = cluster.cairn(&["rollback", &v2, "--to", "1", "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("Rolling shop back to revision 1"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("spec.replicas: 3 → 2"),
        "{}",
        out.stdout
    );
    assert_eq!(replicas(&cluster), 2);
    let out = cluster.cairn(&["history", &v2, "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(doc["revisions"][2]["note"], "rollback to revision 1");
    // The live state is revision 1's: a plan of revision 1's script has nothing to do.
    let v1 = cluster.write("shop.rhai", &shop(2, "info"));
    assert_eq!(cluster.cairn(&["plan", &v1]).code, 0);

    let out = cluster.cairn(&["rollback", &v1, "--to", "9", "--yes"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("shop has no revision 9 (recorded: 1, 2, 3)"),
        "{}",
        out.stderr
    );
}

#[test]
fn drift_reports_changes_made_outside_cairn_only() {
    let cluster = TestCluster::start(config());
    let v1 = cluster.write("shop.rhai", &shop(2, "info"));
    assert_eq!(cluster.cairn(&["apply", &v1, "--yes"]).code, 0);
    let out = cluster.cairn(&["drift", &v1]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("No drift"), "{}", out.stdout);

    // A script change not applied yet is not drift.
    let v2 = cluster.write("shop.rhai", &shop(3, "info"));
    let out = cluster.cairn(&["drift", &v2]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("Not drift: 1 change(s) of the script"),
        "{}",
        out.stdout
    );

    // A hand edit is, named with who made it.
    edit_config_map(&cluster, "settings", "LEVEL", "trace");
    let out = cluster.cairn(&["drift", &v2]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("~ ConfigMap/shop/settings"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("(changed by kubectl-edit)"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("Deployment/shop/web"),
        "{}",
        out.stdout
    );
    let json = cluster.cairn(&["drift", &v2, "--json"]);
    assert_eq!(json.code, 2);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(doc["drift"][0]["id"]["name"], "settings");
    assert_eq!(doc["drift"][0]["changed_by"][0], "kubectl-edit");
    assert_eq!(doc["pending"][0]["id"]["name"], "web");

    // An object deleted by hand is drift too; apply puts everything back.
    cluster.runtime.block_on(async {
        let client = kube_client(&cluster).await;
        let api: Api<ConfigMap> = Api::namespaced(client, "shop");
        api.delete("settings", &Default::default())
            .await
            .expect("deleted");
    });
    let out = cluster.cairn(&["drift", &v1]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("+ ConfigMap/shop/settings"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("(deleted outside cairn)"),
        "{}",
        out.stdout
    );
    assert_eq!(cluster.cairn(&["apply", &v1, "--yes"]).code, 0);
    assert_eq!(cluster.cairn(&["drift", &v1]).code, 0);
}

#[test]
fn progress_without_a_terminal_is_a_line_per_event() {
    let cluster = TestCluster::start(config());
    let v1 = cluster.write("shop.rhai", &shop(1, "info"));
    let out = cluster.cairn(&["apply", &v1, "--yes", "--parallelism", "1"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let progress: String = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Applying to"))
        .map(|l| format!("{l}\n"))
        .collect();
    insta::with_settings!({ filters => vec![(r"\(\d+\.\ds\)", "(…s)")] }, {
        insta::assert_snapshot!("apply-progress-lines", progress);
    });
    let json = cluster.cairn(&[
        "apply",
        &cluster.write("v2.rhai", &shop(2, "info")),
        "--yes",
        "--json",
    ]);
    assert_eq!(json.code, 0, "{}\n{}", json.stdout, json.stderr);
    let events: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .filter(|l| l.starts_with("{\""))
        .map(|l| serde_json::from_str(l).expect("an event is one JSON object"))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds.len(), events.len(), "{}", json.stdout);
    // Only JSON lines: the plan first, the summary last, events between.
    assert_eq!(events.len(), json.stdout.lines().count(), "{}", json.stdout);
    assert_eq!(kinds.first(), Some(&"plan"), "{kinds:?}");
    assert_eq!(events[0]["plan"]["format_version"], 1);
    assert_eq!(kinds.last(), Some(&"summary"), "{kinds:?}");
    let summary = &events[events.len() - 1];
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["exit_code"], 0, "{summary}");
    assert_eq!(summary["plan"]["update"], 1, "{summary}");
    assert!(
        kinds.contains(&"started") && kinds.contains(&"done"),
        "{kinds:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "done" && e["id"]["name"] == "web"),
        "{}",
        json.stdout
    );
}

#[test]
fn the_graph_renders_as_dot_mermaid_and_svg() {
    let script = root().join("environments/staging.rhai");
    let script = script.to_str().expect("utf-8");
    let env_file = root().join("environments/example.env");
    let env_file = env_file.to_str().expect("utf-8");
    let run = |format: &str| {
        let out = cairn_tests::cairn(
            &["graph", script, "--env-file", env_file, "--format", format],
            cairn_tests::ci_vars(),
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout
    };
    let mermaid = run("mermaid");
    insta::assert_snapshot!("graph-staging-mermaid", mermaid);
    let dot = run("dot");
    assert!(dot.starts_with("digraph \"cairn: staging\""), "{dot}");
    let svg = run("svg");
    let nodes = mermaid.lines().filter(|l| l.contains("[\"")).count();
    let edges = mermaid.lines().filter(|l| l.contains("-->")).count();
    assert!(nodes > 40 && edges > 40, "{nodes} nodes, {edges} edges");
    assert_eq!(svg.matches("<rect").count(), nodes);
    assert_eq!(svg.matches("marker-end").count(), edges);
    assert_eq!(dot.matches(" -> ").count(), edges);
    assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
}

#[test]
fn the_github_actions_example_uses_commands_cairn_has_and_sets_what_the_scripts_read() {
    let text =
        std::fs::read_to_string(root().join("docs/ci/github-actions.yml")).expect("the example");
    let doc: serde_json::Value = serde_saphyr::from_str(&text).expect("valid YAML");
    let keys = |v: &serde_json::Value| -> Vec<String> {
        v.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let global = keys(&doc["env"]);
    let known = cairn_tests::ci_vars();
    let mut checked_scripts = 0;
    let mut subcommands = std::collections::BTreeSet::new();
    for (name, job) in doc["jobs"].as_object().expect("jobs") {
        let mut vars = global.clone();
        vars.extend(keys(&job["env"]));
        let runs: Vec<&str> = job["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter_map(|s| s["run"].as_str())
            .collect();
        let mut scripts = std::collections::BTreeSet::new();
        // Variables a step sets for the command itself (`PR_NUMBER=… cairn destroy …`).
        for run in &runs {
            for word in run.split_whitespace() {
                if let Some((name, _)) = word.split_once('=')
                    && !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                {
                    vars.push(name.to_owned());
                }
            }
        }
        for run in &runs {
            for (i, _) in run.match_indices("cairn ") {
                if let Some(word) = run[i + 6..].split_whitespace().next()
                    && word.chars().all(|c| c.is_ascii_lowercase())
                {
                    subcommands.insert(word.to_owned());
                }
            }
            for part in run.split(|c: char| c.is_whitespace() || c == '"') {
                if part.starts_with("environments/")
                    && part.ends_with(".rhai")
                    && !part.contains('$')
                {
                    scripts.insert(part.to_owned());
                }
            }
        }
        // Each script the job touches checks clean with only the variables the job sets.
        for script in scripts {
            let env: std::collections::BTreeMap<String, String> = vars
                .iter()
                .map(|k| {
                    (
                        k.clone(),
                        known.get(k).cloned().unwrap_or_else(|| "x".to_owned()),
                    )
                })
                .collect();
            let path = root().join(&script);
            let out = cairn_tests::cairn(&["check", path.to_str().expect("utf-8")], env);
            assert_eq!(out.code, 0, "job {name}: {script}:\n{}", out.stderr);
            checked_scripts += 1;
        }
    }
    assert!(checked_scripts >= 5, "{checked_scripts}");
    for sub in [
        "check", "plan", "apply", "status", "drift", "history", "destroy",
    ] {
        assert!(subcommands.contains(sub), "{subcommands:?}");
    }
    for sub in &subcommands {
        let out = cairn_tests::cairn(&[sub.as_str(), "--help"], Default::default());
        assert_eq!(out.code, 0, "cairn {sub} --help:\n{}", out.stderr);
    }
}

#[test]
fn a_dns_record_changed_by_hand_is_drift() {
    let dir = cairn_tests::temp_dir("dns-drift");
    let staging = root().join("environments/staging.rhai");
    let staging = staging.to_string_lossy();
    let run = |args: &[&str]| cairn_tests::cairn_in(&dir, args, cairn_tests::ci_vars());
    let out = run(&["apply", "--sandbox", &staging, "--yes", "--timeout", "120"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let out = run(&["drift", "--sandbox", &staging]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);

    // Someone points the API's A record elsewhere, in the zone itself.
    let zone = dir.join(".cairn/sandbox/dns/rbx.ia.br.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&zone).expect("zone")).expect("JSON");
    let record = doc[1]
        .as_array_mut()
        .expect("records")
        .iter_mut()
        .find(|r| r["name"] == "api.staging.rbx.ia.br" && r["rtype"] == "A")
        .expect("the API's A record");
    record["values"] = serde_json::json!(["203.0.113.9"]);
    doc[0] = serde_json::json!(doc[0].as_u64().expect("serial") + 1);
    std::fs::write(&zone, doc.to_string()).expect("zone written");

    let out = run(&["drift", "--sandbox", &staging]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("~ DnsRecord/rbx.ia.br/api.staging.rbx.ia.br A"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("values: live [\"203.0.113.9\"] → declared [\"158.220.116.31\"]"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Drift: 1 resource(s)"),
        "{}",
        out.stdout
    );
}

/// A revision records the plugins' manifests with their code: rolling back restores a default
/// that only `plugin.toml` held.
#[test]
fn rollback_restores_what_a_plugin_manifest_said() {
    let cluster = TestCluster::start(config());
    let plugin = cluster.dir.join("plugins/tiny");
    std::fs::create_dir_all(&plugin).expect("plugin dir");
    let manifest = |level: &str| {
        format!(
            "name = \"tiny\"\nversion = \"0.1.0\"\ndescription = \"a settings ConfigMap\"\nmin_cairn = \"0.1.0\"\n\n\
             [functions.settings]\ndoc = \"settings\"\n[functions.settings.params]\n\
             level = {{ type = \"string\", default = \"{level}\", doc = \"log level\" }}\n"
        )
    };
    std::fs::write(plugin.join("plugin.toml"), manifest("info")).expect("manifest");
    std::fs::write(
        plugin.join("main.rhai"),
        "fn settings(env, name, options) { env.config_map(name, #{ LEVEL: options.level }) }\n",
    )
    .expect("plugin");
    let script = cluster.write("shop.rhai",
        "import \"tiny\" as tiny;\nlet env = environment(\"shop\", #{});\nenv.namespace(\"shop\", #{});\ntiny::settings(env, \"settings\", #{});\n",
    );
    let level = || {
        cluster.runtime.block_on(async {
            let client = kube_client(&cluster).await;
            let api: Api<ConfigMap> = Api::namespaced(client, "shop");
            api.get("settings")
                .await
                .expect("settings")
                .data
                .expect("data")["LEVEL"]
                .clone()
        })
    };
    let out = cluster.cairn(&["apply", &script, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(level(), "info");
    std::fs::write(plugin.join("plugin.toml"), manifest("debug")).expect("manifest");
    let out = cluster.cairn(&["apply", &script, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(level(), "debug");
    let out = cluster.cairn(&["rollback", &script, "--to", "1", "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(level(), "info");
}
