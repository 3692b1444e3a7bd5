//! Rendering the example environments: snapshots, determinism, secrets.

use cairn_tests::{cairn, ci_vars, root, secret_values};

fn render(env: &str, extra: &[&str]) -> String {
    let script = root().join("environments").join(format!("{env}.rhai"));
    let script = script.to_string_lossy();
    let mut args = vec!["render", script.as_ref()];
    args.extend_from_slice(extra);
    let out = cairn(&args, ci_vars());
    assert_eq!(out.code, 0, "render {env} failed:\n{}", out.stderr);
    assert!(
        out.stderr.is_empty(),
        "render {env} reported:\n{}",
        out.stderr
    );
    out.stdout
}

#[test]
fn staging_renders_as_snapshot() {
    insta::assert_snapshot!("staging.yaml", render("staging", &[]));
}

#[test]
fn production_renders_as_snapshot() {
    insta::assert_snapshot!("production.yaml", render("production", &[]));
}

#[test]
fn staging_renders_as_json_too() {
    let text = render("staging", &["--format", "json"]);
    let docs: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let yaml_docs = render("staging", &[]).matches("\n---\n").count() + 1;
    assert_eq!(docs.as_array().map(Vec::len), Some(yaml_docs));
}

#[test]
fn rendering_is_byte_for_byte_deterministic() {
    for env in ["staging", "production"] {
        let first = render(env, &[]);
        for _ in 0..3 {
            assert_eq!(first, render(env, &[]), "{env} rendered differently");
        }
    }
}

#[test]
fn render_to_a_directory_writes_one_file_per_object() {
    let dir = std::env::temp_dir().join(format!("cairn-render-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_s = dir.to_string_lossy().into_owned();
    let stream = render("staging", &[]);
    let script = root().join("environments/staging.rhai");
    let out = cairn(
        &["render", &script.to_string_lossy(), "-o", &dir_s],
        ci_vars(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    files.sort();
    assert_eq!(files.len(), stream.matches("---\n").count());
    let joined: String = files
        .iter()
        .map(|f| format!("---\n{}", std::fs::read_to_string(f).expect("file")))
        .collect();
    assert_eq!(joined, stream);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn secrets_never_appear_unless_asked() {
    let redacted = format!(
        "{}{}",
        render("staging", &[]),
        render("production", &["--format", "json"])
    );
    for secret in secret_values() {
        assert!(
            !redacted.contains(&secret),
            "secret value {secret:?} leaked into render output"
        );
    }
    assert!(redacted.contains("<sensitive: $BINANCE_TESTNET_KEY>"));
    assert!(redacted.contains("<sensitive: generated, 50 chars>"));
    let shown = render("staging", &["--show-secrets"]);
    assert!(shown.contains("testnet-key-VALUE-1"));
    assert!(!shown.contains("<sensitive"));
}

#[test]
fn staging_has_what_the_seeds_describe() {
    let yaml = render("staging", &[]);
    for needle in [
        "requests.cpu: \"4\"",
        "requests.memory: 8Gi",
        "limits.memory: 16Gi",
        "persistentvolumeclaims: \"10\"",
        "name: default-deny-all-ingress",
        "name: default-deny-all-egress",
        "name: block-robson",
        "name: allow-dns",
        "name: allow-internet",
        "name: allow-backend-staging-to-deps",
        "name: allow-ingress-to-backend-staging",
        "image: paradedb/paradedb:0.13.4",
        "name: RBS_SECRET_KEY",
        "name: SECRET_KEY",
        "name: RBS_PG_PASSWORD",
        "name: RBS_REDIS_URL",
        "name: RBS_RABBITMQ_URL",
        "schedule: \"*/1 * * * *\"",
        "- name: ghcr-secret",
        "bucket: rbx-backup-staging",
        "expiration_days: 7",
        "slack_channel: \"#staging-alerts\"",
        "- \"*.staging.rbx.ia.br\"",
    ] {
        assert!(yaml.contains(needle), "staging render lacks {needle:?}");
    }
}
