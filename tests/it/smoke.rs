//! Smoke checks end to end: HTTP and TCP checks against real servers started here, SQL checks
//! as Jobs on the Kubernetes API emulator, run by `apply` and by `status`.

use std::io::{Read, Write};
use std::net::TcpListener;

use cairn_sandbox::{PodOutcome, SandboxConfig};
use cairn_tests::{TestCluster, root};

/// A small HTTP server on a free loopback port: `/health` answers 200 "ok", `/down` 503
/// "unavailable", anything else 200 "degraded". It serves until the test process ends.
pub(crate) fn http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request);
            let path = text.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = match path {
                "/health" => ("200 OK", "ok"),
                "/down" => ("503 Service Unavailable", "unavailable"),
                _ => ("200 OK", "degraded"),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn config() -> SandboxConfig {
    SandboxConfig {
        pod_start_delay: std::time::Duration::from_millis(50),
        ..SandboxConfig::default()
    }
}

fn cli(cluster: &TestCluster, script: &str, args: &[&str]) -> cairn_tests::Output {
    let path = cluster.dir.join("smoke.rhai");
    std::fs::write(&path, script).expect("script written");
    let path = path.to_string_lossy().into_owned();
    let plugins = root().join("plugins").to_string_lossy().into_owned();
    let mut all = vec![args[0], path.as_str()];
    all.extend_from_slice(&args[1..]);
    all.extend(["--plugin-path", &plugins]);
    cluster.cairn(&all)
}

fn environment(checks: &str) -> String {
    format!(
        r#"
import "postgres" as postgres;
let env = environment("sm", #{{}});
env.namespace("sm", #{{}});
let db = postgres::instance(env, "pg", #{{ storage: "1Gi" }});
{checks}
"#
    )
}

#[test]
fn passing_smoke_checks_run_after_apply_and_on_demand() {
    let port = http_server();
    let cluster = TestCluster::start(config());
    let script = environment(&format!(
        r#"
env.smoke("api", http_get("http://127.0.0.1:{port}/health", #{{ status: 200, body: "ok" }}));
env.smoke("api-port", tcp_socket("127.0.0.1", {port}));
env.smoke("db", sql(db));
"#
    ));
    let out = cli(&cluster, &script, &["apply", "--yes", "--timeout", "60"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let history = cli(&cluster, &script, &["history"]);
    assert!(
        history
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("1  ") && l.contains(" succeeded ")),
        "{}",
        history.stdout
    );
    let apply_done = out.stdout.find("Apply complete").expect("apply completes");
    let checks = out.stdout.find("Smoke checks:").expect("checks run");
    assert!(
        checks > apply_done,
        "checks run after the apply:\n{}",
        out.stdout
    );
    for line in [
        format!(
            "✓ api: GET http://127.0.0.1:{port}/health: status 200 and a body containing \"ok\""
        ),
        format!("✓ api-port: connect to 127.0.0.1:{port}: open"),
        "✓ db: \"SELECT 1\" on pg (Job db-smoke-".to_owned(),
        "All 3 smoke checks passed.".to_owned(),
    ] {
        assert!(out.stdout.contains(&line), "{line}\n{}", out.stdout);
    }
    // Smoke checks are not resources to plan: the next plan has nothing to do, and the
    // check's Job (deleted once it completed) never shows up as something to prune.
    let out = cli(&cluster, &script, &["plan"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("smoke"), "{}", out.stdout);
    // `status` runs them on demand.
    let out = cli(&cluster, &script, &["status"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("✓ smoke check api: GET http://127.0.0.1:"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("✓ smoke check db: "), "{}", out.stdout);
    // An apply with no changes still checks.
    let out = cli(&cluster, &script, &["apply", "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("No changes"), "{}", out.stdout);
    assert!(
        out.stdout.contains("All 3 smoke checks passed."),
        "{}",
        out.stdout
    );
    // With --json, one JSON line per check.
    let out = cli(&cluster, &script, &["apply", "--yes", "--json"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let checks: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("smoke_check").cloned())
        .collect();
    let names: Vec<&str> = checks.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["api", "api-port", "db"], "{}", out.stdout);
    assert!(checks.iter().all(|c| c["ok"] == true), "{}", out.stdout);
}

#[test]
fn failing_http_and_tcp_checks_fail_the_apply_with_what_came_back() {
    let port = http_server();
    let closed = closed_port();
    let cluster = TestCluster::start(config());
    let script = environment(&format!(
        r#"
env.smoke("down", http_get("http://127.0.0.1:{port}/down", #{{ status: 200 }}));
env.smoke("degraded", http_get("http://127.0.0.1:{port}/other", #{{ status: 200, body: "ok" }}));
env.smoke("refused", http_get("http://127.0.0.1:{closed}/health", #{{}}));
env.smoke("no-listener", tcp_socket("127.0.0.1", {closed}));
"#
    ));
    let out = cli(&cluster, &script, &["apply", "--yes", "--timeout", "60"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Apply complete"), "{}", out.stdout);
    for line in [
        format!(
            "✗ down: GET http://127.0.0.1:{port}/down: expected status 200, got status 503 with body \"unavailable\""
        ),
        format!(
            "✗ degraded: GET http://127.0.0.1:{port}/other: expected status 200 and a body containing \"ok\", got status 200 with body \"degraded\""
        ),
        format!(
            "✗ refused: GET http://127.0.0.1:{closed}/health: expected status 200, got no answer: "
        ),
        format!(
            "✗ no-listener: connect to 127.0.0.1:{closed}: expected the connection to open, got: "
        ),
    ] {
        assert!(out.stdout.contains(&line), "{line}\n{}", out.stdout);
    }
    let refused = out
        .stdout
        .lines()
        .filter(|l| l.contains("refused") || l.contains("no-listener"))
        .filter(|l| l.to_ascii_lowercase().contains("connection refused"))
        .count();
    assert_eq!(refused, 2, "{}", out.stdout);
    assert!(
        out.stderr.contains("4 of 4 smoke checks failed"),
        "{}",
        out.stderr
    );
    // The apply is recorded as failed: its smoke checks failed.
    let out = cli(&cluster, &script, &["history"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let revision = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("1  "))
        .unwrap_or_else(|| panic!("no revision 1 in:\n{}", out.stdout));
    assert!(revision.contains(" failed "), "{revision}");
    // `status` reports them too, and fails.
    let out = cli(&cluster, &script, &["status"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("✗ smoke check down: GET http://127.0.0.1:"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_failing_sql_check_reports_the_jobs_log() {
    // The psql image's pods fail in the emulator, with psql's complaint in their log.
    let config = SandboxConfig {
        outcomes: vec![(
            "postgres:16-alpine".to_owned(),
            PodOutcome::CrashLoop {
                exit_code: 2,
                logs: vec![
                    "psql: error: connection to server at \"pg\" (10.96.0.12), port 5432 failed: FATAL:  password authentication failed for user \"pg\"".to_owned(),
                ],
            },
        )],
        ..config()
    };
    let cluster = TestCluster::start(config);
    let script = environment(r#"env.smoke("db", sql(db));"#);
    let out = cli(&cluster, &script, &["apply", "--yes", "--timeout", "60"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Apply complete"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("✗ db: \"SELECT 1\" on pg (Job db-smoke-"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "expected the query to succeed, got: the job failed: Job has reached the specified backoff limit"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("password authentication failed for user \"pg\""),
        "the Job's log is shown:\n{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("1 of 1 smoke checks failed"),
        "{}",
        out.stderr
    );
    let out = cli(&cluster, &script, &["status"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("| psql: error: connection to server"),
        "{}",
        out.stdout
    );
}

#[test]
fn invalid_smoke_checks_are_reported_at_the_script() {
    let eval = cairn_stdlib::evaluate(
        "bad.rhai",
        r#"
let env = environment("sm", #{});
env.namespace("sm", #{});
env.smoke("api", http_get("ftp://example.com/health", #{ status: 700, bdy: "ok" }));
env.smoke("port", tcp_socket("not a host", 70000));
env.smoke("Bad_Name", tcp_socket("127.0.0.1", 80));
env.smoke("probe", tcp_socket(80));
"#,
        &[],
        &cairn_stdlib::EvalOptions::default(),
    );
    let found: Vec<(&str, String)> = eval
        .diagnostics
        .iter()
        .map(|d| (d.code.as_str(), d.message.clone()))
        .collect();
    for (code, text) in [
        (
            "invalid-option",
            "`status` must be an HTTP status code (100 to 599), found 700",
        ),
        ("unknown-option", "bdy"),
        (
            "invalid-url",
            "`ftp://example.com/health` is not an http:// or https:// URL",
        ),
        (
            "invalid-address",
            "`not a host` is neither a host name nor an IP address",
        ),
        ("invalid-option", "a TCP port is 1 to 65535, found 70000"),
        ("invalid-name", "Bad_Name"),
        (
            "invalid-smoke-check",
            "env.smoke(\"probe\", ...) takes http_get(url, expect), tcp_socket(host, port) or sql(database)",
        ),
    ] {
        assert!(
            found.iter().any(|(c, m)| *c == code && m.contains(text)),
            "{code}: {text}\n{found:#?}"
        );
    }
    assert!(
        eval.diagnostics.iter().all(|d| d.span.is_some()),
        "{:#?}",
        eval.diagnostics
    );
}

/// The rendered SQL check's container (command and environment, Secret references resolved
/// with `password` for the generated one) run against a real PostgreSQL server.
fn run_sql_check_container(
    pg: &crate::backup_script::Postgres,
    query: &str,
    password: &str,
) -> std::process::Output {
    let script = format!(
        r#"
import "postgres" as postgres;
let env = environment("sm", #{{}});
env.namespace("sm", #{{}});
let db = postgres::instance(env, "pg", #{{ storage: "1Gi", database: "app", user: "app" }});
env.smoke("db", sql(db, #{{ query: "{query}" }}));
"#
    );
    let eval = cairn_stdlib::evaluate(
        "sql.rhai",
        &script,
        &[root().join("plugins")],
        &cairn_stdlib::EvalOptions::default(),
    );
    assert!(!eval.has_errors(), "{:?}", eval.diagnostics);
    let reveal = |kind: &str, name: &str| {
        eval.state
            .resources
            .iter()
            .find(|r| r.id.kind == kind && r.id.name == name)
            .unwrap_or_else(|| panic!("{kind} {name}"))
            .body
            .reveal(&|_| Some(password.to_owned()))
            .expect("revealed")
    };
    let check = reveal("SmokeCheck", "db");
    let container = &check["job"]["spec"]["template"]["spec"]["containers"][0];
    let command: Vec<&str> = container["command"]
        .as_array()
        .expect("a command")
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    assert_eq!(command[0], "psql");
    let mut cmd = std::process::Command::new(command[0]);
    cmd.args(&command[1..])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for e in container["env"].as_array().expect("env") {
        let name = e["name"].as_str().expect("name");
        let value = match e.get("value") {
            Some(v) => v.as_str().expect("a string").to_owned(),
            None => {
                let r = &e["valueFrom"]["secretKeyRef"];
                let secret = reveal("Secret", r["name"].as_str().expect("secret"));
                secret["stringData"][r["key"].as_str().expect("key")]
                    .as_str()
                    .expect("a key of the Secret")
                    .to_owned()
            }
        };
        cmd.env(name, value);
    }
    // The service name resolves only inside the cluster.
    cmd.env("PGHOST", "127.0.0.1")
        .env("PGPORT", pg.port.to_string());
    cmd.output().expect("psql runs")
}

#[test]
fn the_sql_checks_psql_command_runs_against_a_real_postgres() {
    let pg = crate::backup_script::Postgres::start();
    pg.psql(
        "postgres",
        "CREATE ROLE app LOGIN PASSWORD 'right-password'",
    );
    pg.psql("postgres", "CREATE DATABASE app OWNER app");
    let ok = run_sql_check_container(&pg, "SELECT 1", "right-password");
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "1");
    // What a failing check's Job log shows.
    let bad = run_sql_check_container(&pg, "SELECT 1", "wrong-password");
    assert!(!bad.status.success());
    let log = String::from_utf8_lossy(&bad.stderr);
    assert!(
        log.contains("password authentication failed for user \"app\""),
        "{log}"
    );
    let bad = run_sql_check_container(&pg, "SELECT * FROM missing_table", "right-password");
    assert!(!bad.status.success());
    let log = String::from_utf8_lossy(&bad.stderr);
    assert!(
        log.contains("relation \"missing_table\" does not exist"),
        "{log}"
    );
}

/// Under `--sandbox`, checks of the environment's hosts and SQL checks are not run (the plan
/// says so first); a check of a loopback server still runs for real.
#[test]
fn on_the_sandbox_checks_it_cannot_answer_are_not_run_nor_failed() {
    let port = http_server();
    let dir = cairn_tests::temp_dir("smoke-sandbox");
    let script = dir.join("smoke.rhai");
    let checks = format!(
        r#"
env.smoke("local", http_get("http://127.0.0.1:{port}/health", #{{ body: "ok" }}));
env.smoke("api", http_get("https://api.sm.example.com/health", #{{}}));
env.smoke("db", sql(db));
"#
    );
    std::fs::write(&script, environment(&checks)).expect("script");
    let plugins = root().join("plugins").to_string_lossy().into_owned();
    let script = script.to_string_lossy().into_owned();
    let run = |cmd: &[&str]| {
        let mut args = vec![
            cmd[0],
            script.as_str(),
            "--sandbox",
            "--plugin-path",
            &plugins,
        ];
        args.extend_from_slice(&cmd[1..]);
        cairn_tests::cairn_in(&dir, &args, cairn_tests::ci_vars())
    };
    let out = run(&["plan"]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    let header = out.stdout.split("\n\n").next().unwrap_or_default();
    assert!(
        header.contains("smoke checks not run on the sandbox: api, db (2 of 3; the sandbox serves no pod, Service or Ingress host and runs no SQL)"),
        "{header}"
    );
    let out = run(&["apply", "--yes", "--timeout", "60"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for line in [
        "  - api: not run on the sandbox: the sandbox serves no pod, Service or Ingress host",
        "  - db: not run on the sandbox: the sandbox's pods run no program, so no Job can run psql",
        "1 smoke check(s) passed, 2 not run on the sandbox",
    ] {
        assert!(out.stdout.contains(line), "{line}\n{}", out.stdout);
    }
    assert!(
        out.stdout
            .contains(&format!("✓ local: GET http://127.0.0.1:{port}/health")),
        "{}",
        out.stdout
    );
    let out = run(&["status"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("- not run smoke check db: not run on the sandbox"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("checks, all healthy (2 not run on the sandbox)."),
        "{}",
        out.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `sandbox: #{ simulate }` makes a workload's pods fail on the sandbox, as the emulator's
/// annotation; on a cluster the plan says it only affects the sandbox; a bad value is an error
/// at the script.
#[test]
fn a_script_option_simulates_a_crash_loop_on_the_sandbox() {
    let script = |simulate: &str| {
        format!(
            r#"let env = environment("sim", #{{}});
env.namespace("sim", #{{}});
env.deployment("web", #{{ image: "nginx:1.27", sandbox: #{{ simulate: "{simulate}" }} }});
"#
        )
    };
    let dir = cairn_tests::temp_dir("simulate");
    let path = dir.join("sim.rhai");
    std::fs::write(&path, script("crash-loop")).expect("script");
    let path = path.to_string_lossy().into_owned();
    let out = cairn_tests::cairn_in(
        &dir,
        &["apply", &path, "--sandbox", "--yes", "--timeout", "20"],
        cairn_tests::ci_vars(),
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("✗ Deployment/sim/web failed"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("CrashLoopBackOff"), "{}", out.stdout);
    assert!(
        out.stdout.contains("sandbox: container exited with code 1"),
        "the log is shown: {}",
        out.stdout
    );
    // `status` says why the rollout is not ready, not only its counts.
    let out = cairn_tests::cairn_in(
        &dir,
        &["status", &path, "--sandbox"],
        cairn_tests::ci_vars(),
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("rollout Deployment/sim/web"))
        .unwrap_or_default();
    assert!(
        line.contains("ready") && line.contains("crash"),
        "{}",
        out.stdout
    );
    // A cluster that is not the sandbox ignores it, and the plan says so.
    let cluster = TestCluster::start(config());
    let v1 = cluster.write("sim.rhai", &script("image-pull-error"));
    let out = cluster.cairn(&["plan", &v1]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("Deployment/sim/web: `sandbox: #{ simulate }` only affects the sandbox; this cluster ignores it"),
        "{}",
        out.stdout
    );
    let bad = cairn_stdlib::evaluate(
        "bad.rhai",
        &script("oom"),
        &[],
        &cairn_stdlib::EvalOptions::default(),
    );
    let d = bad
        .diagnostics
        .iter()
        .find(|d| d.code.as_str() == "invalid-option")
        .expect("an error");
    assert!(
        d.message.contains(
            "the sandbox cannot simulate `oom`; use \"crash-loop\", \"image-pull-error\" or \"failing-probe\""
        ),
        "{d:?}"
    );
    assert_eq!(d.span.as_ref().map(|s| s.line), Some(3), "{d:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
