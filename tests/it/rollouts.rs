//! Rollouts follow config: a change of a ConfigMap or Secret a Deployment reads restarts it,
//! and the plan says why without ever showing the digest.

use cairn_tests::TestCluster;

use crate::ownership::kubectl;

fn script(level: &str) -> String {
    format!(
        r#"
let env = environment("roll", #{{}});
env.namespace("roll", #{{}});
let settings = env.config_map("settings", #{{ LEVEL: "{level}" }});
let creds = env.secret("creds", #{{ TOKEN: secret_env("ROLL_TOKEN") }});
env.deployment("web", #{{ image: "nginx:1.27", port: 80, env: [settings, creds] }});
"#
    )
}

fn template_hash(cluster: &TestCluster) -> String {
    let out = kubectl(
        cluster,
        &[
            "get",
            "deployment",
            "web",
            "-n",
            "roll",
            "-o",
            r"jsonpath={.spec.template.metadata.annotations.cairn\.dev/config-hash}",
        ],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_config_or_secret_change_restarts_the_workload_that_reads_it() {
    let cluster = TestCluster::start(cairn_sandbox::SandboxConfig::default());
    let path = cluster.write("roll.rhai", &script("info"));
    let token = [("ROLL_TOKEN", "first-token-VALUE")];
    let out = cluster.cairn_with(&["apply", &path, "--yes"], &token);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let first = template_hash(&cluster);
    assert_eq!(first.len(), 16, "{first:?}");
    let out = cluster.cairn_with(&["plan", &path], &token);
    assert_eq!(out.code, 0, "no change, no restart: {}", out.stdout);

    // The ConfigMap changes: the Deployment restarts, and the plan says why.
    std::fs::write(&path, script("debug")).expect("script");
    let out = cluster.cairn_with(&["plan", &path], &token);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("~ Deployment/roll/web"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("restart: ConfigMap settings changed"),
        "{}",
        out.stdout
    );
    let out = cluster.cairn_with(&["apply", &path, "--yes"], &token);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let second = template_hash(&cluster);
    assert_ne!(second, first);

    // The Secret's value changes: a restart too, and no format shows the digest or the value.
    let token = [("ROLL_TOKEN", "second-token-VALUE")];
    let saved = cluster.dir.join("roll.plan");
    let saved_text = saved.to_string_lossy().into_owned();
    let out = cluster.cairn_with(&["plan", &path, "-o", &saved_text], &token);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("restart: Secret creds changed"),
        "{}",
        out.stdout
    );
    let json = cluster.cairn_with(&["plan", &path, "--json"], &token);
    let file = std::fs::read_to_string(&saved).expect("plan file");
    for text in [&out.stdout, &json.stdout, &file] {
        assert!(!text.contains("second-token-VALUE"));
        assert!(!text.contains(&second), "the digest is never shown");
        assert!(!text.contains("config-hash"), "{text}");
    }
    let out = cluster.cairn_with(&["apply", &saved_text], &token);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_ne!(template_hash(&cluster), second);
    let out = cluster.cairn_with(&["plan", &path], &token);
    assert_eq!(out.code, 0, "converged: {}", out.stdout);
}
