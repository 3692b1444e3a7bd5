//! What commands start from besides a good script: variables files, files given to `apply`
//! that are neither plans nor scripts, and broken scripts through every command that reads one
//! (never a panic, never a step towards the cluster).

use std::collections::BTreeMap;
use std::path::Path;

use cairn_tests::{Output, cairn_in, ci_vars, root, temp_dir};

const SCRIPT: &str = r#"let env = environment("inputs", #{});
env.namespace("inputs", #{});
env.config_map("settings", #{
    MODE: env_var("APP_MODE"),
    GREETING: env_var("GREETING"),
    RAW: env_var("RAW"),
    WORKERS: 3,
    RATIO: 0.5,
    DEBUG: false,
});
env.secret("db", #{ PASSWORD: secret_env("DB_PASSWORD") });
"#;

/// The process environment of these tests: none of the script's variables.
fn vars() -> BTreeMap<String, String> {
    let mut vars = ci_vars();
    for k in ["APP_MODE", "GREETING", "RAW", "DB_PASSWORD"] {
        vars.remove(k);
    }
    vars
}

fn run(dir: &Path, args: &[&str]) -> Output {
    cairn_in(dir, args, vars())
}

#[test]
fn a_variables_file_is_read_as_dotenv_does() {
    let dir = temp_dir("env-file-good");
    let script = dir.join("inputs.rhai");
    std::fs::write(&script, SCRIPT).expect("script");
    let env = dir.join("vars.env");
    std::fs::write(
        &env,
        "# the CI's variables\n\nexport APP_MODE=staging # inline comment\nGREETING=\"hello \\\"you\\\"\"\nRAW='a $B \\n c'\nDB_PASSWORD=pw-from-file\n",
    )
    .expect("env file");
    let (script, env) = (script.to_string_lossy(), env.to_string_lossy());
    let out = run(&dir, &["check", &script, "--env-file", &env]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let out = run(&dir, &["render", &script, "--env-file", &env]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let yaml = &out.stdout;
    for line in [
        "MODE: staging",
        r#"GREETING: hello "you""#,
        r"RAW: a $B \n c",
        r#"WORKERS: "3""#,
        r#"RATIO: "0.5""#,
        r#"DEBUG: "false""#,
    ] {
        assert!(yaml.contains(line), "no {line:?} in:\n{yaml}");
    }
    assert!(!yaml.contains("pw-from-file"), "a secret rendered:\n{yaml}");
}

#[test]
fn a_malformed_variables_file_is_an_error_naming_the_file_and_line() {
    let dir = temp_dir("env-file-bad");
    let script = dir.join("inputs.rhai");
    std::fs::write(&script, SCRIPT).expect("script");
    let env = dir.join("vars.env");
    std::fs::write(
        &env,
        "APP_MODE=staging\nDB_PASSWORD hunter2-not-shown\nGREETING=\"unclosed-s3cr3t\nRAW='ok' trailing-t0ken\n2BAD=x\n",
    )
    .expect("env file");
    let (script, env) = (script.to_string_lossy(), env.to_string_lossy());
    let out = run(
        &dir,
        &["check", &script, "--env-file", &env, "--format", "json"],
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let diags: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("JSON");
    let messages: Vec<&str> = diags
        .iter()
        .filter(|d| d["code"] == "invalid-env-file")
        .filter_map(|d| d["message"].as_str())
        .collect();
    assert_eq!(
        messages,
        [
            format!("{env}:2: not `KEY=VALUE`: there is no `=` on the line"),
            format!(
                "{env}:3: the value of `GREETING` opens a quote (\") that the line does not close"
            ),
            format!(
                "{env}:4: the value of `RAW` goes on after its closing quote ('); only a `# comment` may follow"
            ),
            format!(
                "{env}:5: \"2BAD\" is not a variable name (letters, digits and `_`, not starting with a digit)"
            ),
        ]
    );
    for args in [
        vec!["check", &script, "--env-file", &env],
        vec!["render", &script, "--env-file", &env],
        vec!["plan", "--sandbox", &script, "--env-file", &env],
        vec!["apply", "--sandbox", "--yes", &script, "--env-file", &env],
    ] {
        let out = run(&dir, &args);
        assert_eq!(out.code, 1, "{args:?}:\n{}\n{}", out.stdout, out.stderr);
        let text = format!("{}{}", out.stdout, out.stderr);
        assert_eq!(
            text.matches("invalid-env-file").count(),
            4,
            "{args:?}: {text}"
        );
        for line in 2..=5 {
            assert!(
                text.contains(&format!("{env}:{line}: ")),
                "{args:?}: no line {line} in\n{text}"
            );
        }
        for value in ["hunter2", "s3cr3t", "t0ken"] {
            assert!(
                !text.contains(value),
                "{args:?} shows a value of the file:\n{text}"
            );
        }
    }
    assert!(
        !dir.join(".cairn").exists(),
        "plan or apply went on to the sandbox"
    );
}

#[test]
fn apply_refuses_a_file_that_is_neither_a_plan_nor_a_script() {
    let dir = temp_dir("apply-file");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("file");
        path.to_string_lossy().into_owned()
    };
    let cases = [
        (
            write("plan.json", b""),
            "is an empty file: neither a plan file nor a script",
        ),
        (
            write("plan", b"  \n\n"),
            "is an empty file: neither a plan file nor a script",
        ),
        (
            write("cut.json", b"{\"cairn_saved_plan\": 1, \"cairn_ver"),
            "is not a cairn plan file",
        ),
        (write("other.json", b"[1, 2]"), "is not a cairn plan file"),
        (
            write("not-a-plan.json", b"{\"name\": \"x\"}"),
            "is not a cairn plan file",
        ),
        (
            write("binary", &[0xff, 0xfe, 0x00, 0x41]),
            "is neither a plan file nor a script: it is not UTF-8 text",
        ),
    ];
    for (path, expected) in &cases {
        let out = run(&dir, &["apply", "--sandbox", "--yes", path]);
        assert_eq!(out.code, 1, "{path}:\n{}\n{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains(&format!("{path} {expected}")),
            "{path}: {expected:?} not in\n{}",
            out.stderr
        );
    }
    // An empty script is a script: it declares no environment, and nothing is planned.
    let empty = write("empty.rhai", b"");
    for args in [
        vec!["check", &empty],
        vec!["render", &empty],
        vec!["plan", "--sandbox", &empty],
        vec!["apply", "--sandbox", "--yes", &empty],
    ] {
        let out = run(&dir, &args);
        assert_eq!(out.code, 1, "{args:?}:\n{}\n{}", out.stdout, out.stderr);
        let text = format!("{}{}", out.stdout, out.stderr);
        assert!(text.contains("missing-environment"), "{args:?}: {text}");
        assert!(
            text.contains(&format!(
                "{empty} declares no environment: the script is empty"
            )),
            "{args:?}: {text}"
        );
        assert!(!text.contains("Lease"), "{args:?}: {text}");
    }
    assert!(
        !dir.join(".cairn").exists(),
        "plan or apply went on to the sandbox"
    );
}

/// The corpus's new problems go through render, plan and apply too: each refuses with the
/// same diagnostics as `check`, before any sandbox is started; none panics.
#[test]
fn broken_scripts_stop_every_command_before_the_cluster() {
    let dir = temp_dir("broken-commands");
    let fixtures = root().join("tests/fixtures/errors");
    for (name, code) in [
        ("invalid-replicas", "invalid-option"),
        ("config-map-value", "invalid-option"),
        ("impossible-schedule", "invalid-schedule"),
        ("probe-port", "probe-port-not-exposed"),
        ("no-environment", "missing-environment"),
        ("exceeds-limit-range", "exceeds-limit-range"),
        ("tls-secret-collision", "tls-secret-collision"),
    ] {
        let path = fixtures.join(format!("{name}.rhai"));
        let path = path.to_string_lossy();
        let mut commands = vec![
            vec!["check", &*path],
            vec!["plan", "--sandbox", &*path],
            vec!["apply", "--sandbox", "--yes", &*path],
        ];
        // `render` stops at evaluation's diagnostics; the whole-state checks are `check`'s.
        if !matches!(name, "exceeds-limit-range" | "tls-secret-collision") {
            commands.push(vec!["render", &*path]);
        }
        for args in commands {
            let out = run(&dir, &args);
            assert_eq!(out.code, 1, "{args:?}:\n{}\n{}", out.stdout, out.stderr);
            assert!(out.stderr.contains(code), "{args:?}: {}", out.stderr);
        }
    }
    // A script that starts with a byte order mark plans as any other.
    let bom = fixtures.join("warn-bom.rhai");
    let out = run(&dir, &["plan", "--sandbox", &bom.to_string_lossy()]);
    assert_eq!(
        out.code, 2,
        "changes to make:\n{}\n{}",
        out.stdout, out.stderr
    );
    assert!(out.stdout.contains("Deployment/demo/web"), "{}", out.stdout);
}
