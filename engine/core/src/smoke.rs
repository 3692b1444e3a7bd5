//! Smoke checks (`env.smoke(...)`): run by `apply` once every other step succeeded, and by
//! `status` on demand. HTTP(S) and TCP checks run from where cairn runs (hyper + rustls with
//! ring, the platform's roots); a SQL check runs `psql` in a Job in the environment and reports
//! the Job's log when it fails. Each outcome says what was expected and what came back.
//!
//! Under `--sandbox` nothing answers for the environment: the emulator serves no Ingress host,
//! Service or pod, and its pods run no program. A check of such a target, and every SQL check,
//! is reported as not run on the sandbox (neither passed nor failed); an HTTP or TCP check of a
//! loopback address (something on this machine) runs as anywhere.

use std::time::Duration;

use bytes::Bytes;
use cairn_kube::Cluster;
use cairn_model::{DesiredState, Provider, Resource};
use http_body_util::{BodyExt, Empty, Limited};
use serde::Serialize;
use serde_json::Value as J;

/// How long an HTTP check or a TCP connect may take.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a response body is read (a health endpoint answers with little).
const BODY_LIMIT: usize = 1 << 20;
/// How much of an unexpected body is shown.
const BODY_SHOWN: usize = 200;

/// What became of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// It ran and got what it expected.
    Passed,
    /// It ran and did not.
    Failed,
    /// The sandbox cannot answer it, so it did not run.
    NotRun,
}

/// The result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The check's name in the script.
    pub name: String,
    /// False only when it failed (a check not run on the sandbox did not fail).
    pub ok: bool,
    /// Passed, failed, or not run on the sandbox.
    pub verdict: Verdict,
    /// What was checked and, when it failed, what was expected and what came back.
    pub detail: String,
    /// A failed SQL check's Job log (last lines).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
}

impl Outcome {
    /// The outcome for people (`✓ name: detail`, the log indented below).
    pub fn human(&self) -> String {
        let o = self;
        let mark = match o.verdict {
            Verdict::Passed => "✓",
            Verdict::Failed => "✗",
            Verdict::NotRun => "-",
        };
        let mut s = format!("  {mark} {}: {}\n", o.name, o.detail);
        if !o.logs.is_empty() {
            s.push_str("      log:\n");
            for line in &o.logs {
                s.push_str(&format!("        {line}\n"));
            }
        }
        s
    }

    fn new(name: &str, verdict: Verdict, detail: String) -> Self {
        Self {
            name: name.to_owned(),
            ok: verdict != Verdict::Failed,
            verdict,
            detail,
            logs: Vec::new(),
        }
    }

    fn pass(name: &str, detail: String) -> Self {
        Self::new(name, Verdict::Passed, detail)
    }

    fn fail(name: &str, detail: String) -> Self {
        Self::new(name, Verdict::Failed, detail)
    }
}

/// The last line `apply` prints about its checks: how many passed, failed, did not run.
pub fn summary(outcomes: &[Outcome]) -> String {
    let count = |v: Verdict| outcomes.iter().filter(|o| o.verdict == v).count();
    let (passed, failed, not_run) = (
        count(Verdict::Passed),
        count(Verdict::Failed),
        count(Verdict::NotRun),
    );
    let mut s = match (failed, not_run) {
        (0, 0) => format!("All {passed} smoke checks passed."),
        (0, _) => format!("{passed} smoke check(s) passed"),
        _ => format!("{failed} of {} smoke checks failed", outcomes.len()),
    };
    if not_run > 0 {
        s.push_str(&format!(
            "{}{not_run} not run on the sandbox (it serves no pod, Service or Ingress host and runs no SQL).",
            if failed > 0 { "; " } else { ", " }
        ));
    }
    s
}

/// Whether `host` is this machine (a loopback address or `localhost`).
fn loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Why a check cannot run on the sandbox; `None` when it can (its target is on this machine).
fn not_on_sandbox(body: &J) -> Option<&'static str> {
    let str_of = |k: &str| body.get(k).and_then(J::as_str).unwrap_or_default();
    let host = match str_of("check") {
        "http" => str_of("url").parse::<http::Uri>().ok()?.host()?.to_owned(),
        "tcp" => str_of("host").to_owned(),
        "sql" => return Some("the sandbox's pods run no program, so no Job can run psql"),
        _ => return None,
    };
    (!loopback(&host)).then_some("the sandbox serves no pod, Service or Ingress host")
}

/// What the plan says about the sandbox: on the sandbox, which smoke checks will not run; on a
/// cluster, workloads whose `sandbox.simulate` option only the sandbox understands.
pub fn sandbox_notes(state: &DesiredState, sandbox: bool) -> Vec<String> {
    if sandbox {
        let checks = declared(state);
        let not_run: Vec<&str> = checks
            .iter()
            .filter(|r| not_on_sandbox(&r.body.to_json()).is_some())
            .map(|r| r.id.name.as_str())
            .collect();
        if not_run.is_empty() {
            return Vec::new();
        }
        return vec![format!(
            "smoke checks not run on the sandbox: {} ({} of {}; the sandbox serves no pod, Service or Ingress host and runs no SQL)",
            not_run.join(", "),
            not_run.len(),
            checks.len()
        )];
    }
    let simulated = |r: &&Resource| {
        let j = r.body.to_json();
        ["/spec/template", "/spec/jobTemplate/spec/template"]
            .iter()
            .any(|p| {
                j.pointer(&format!("{p}/metadata/annotations/{SIMULATE}"))
                    .is_some()
            })
    };
    state
        .kube_objects()
        .filter(simulated)
        .map(|r| {
            format!(
                "{}: `sandbox: #{{ simulate }}` only affects the sandbox; this cluster ignores it",
                r.id
            )
        })
        .collect()
}

/// The pod annotation the sandbox reads to simulate a failure (`sandbox.simulate`), escaped as
/// a JSON pointer segment.
const SIMULATE: &str = "sandbox.cairn.dev~1outcome";

/// The smoke checks the script declares.
pub fn declared(state: &DesiredState) -> Vec<&Resource> {
    state
        .resources
        .iter()
        .filter(|r| r.id.provider == Provider::Smoke)
        .collect()
}

/// Runs every declared check, in name order; `timeout` bounds a SQL check's Job. On the
/// `sandbox`, a check it cannot answer is not run.
pub async fn run_all(
    cluster: &Cluster,
    state: &DesiredState,
    timeout: Duration,
    sandbox: bool,
) -> Vec<Outcome> {
    let mut out = Vec::new();
    for r in declared(state) {
        let why = sandbox.then(|| not_on_sandbox(&r.body.to_json())).flatten();
        out.push(match why {
            Some(why) => Outcome::new(
                &r.id.name,
                Verdict::NotRun,
                format!("not run on the sandbox: {why}"),
            ),
            None => run(cluster, r, timeout).await,
        });
    }
    out
}

async fn run(cluster: &Cluster, check: &Resource, timeout: Duration) -> Outcome {
    let body = check.body.to_json();
    let name = check.id.name.as_str();
    let str_of = |k: &str| body.get(k).and_then(J::as_str).unwrap_or_default();
    match str_of("check") {
        "http" => {
            let status = body
                .get("status")
                .and_then(J::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(200);
            let expect_body = body.get("body").and_then(J::as_str);
            http_check(name, str_of("url"), status, expect_body).await
        }
        "tcp" => {
            let port = body
                .get("port")
                .and_then(J::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0);
            tcp_check(name, str_of("host"), port).await
        }
        "sql" => {
            let job = body.get("job").cloned().unwrap_or(J::Null);
            sql_check(
                cluster,
                name,
                str_of("database"),
                str_of("query"),
                job,
                timeout,
            )
            .await
        }
        other => Outcome::fail(
            name,
            format!("unknown kind of smoke check `{other}`; this is a bug"),
        ),
    }
}

/// An error and its causes, as one line (`client error (Connect): tcp connect error: …`).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn shown(body: &str) -> String {
    let mut s: String = body.chars().take(BODY_SHOWN).collect();
    if body.chars().count() > BODY_SHOWN {
        s.push('…');
    }
    format!("{s:?}")
}

/// `GET url` must answer `status`, with a body containing `expect_body` when given.
pub async fn http_check(name: &str, url: &str, status: u16, expect_body: Option<&str>) -> Outcome {
    let expected = match expect_body {
        Some(b) => format!("status {status} and a body containing {b:?}"),
        None => format!("status {status}"),
    };
    let what = format!("GET {url}");
    let answer = tokio::time::timeout(NETWORK_TIMEOUT, get(url)).await;
    let (got_status, got_body) = match answer {
        Err(_) => {
            return Outcome::fail(
                name,
                format!(
                    "{what}: expected {expected}, got no answer within {}s",
                    NETWORK_TIMEOUT.as_secs()
                ),
            );
        }
        Ok(Err(e)) => {
            return Outcome::fail(name, format!("{what}: expected {expected}, got {e}"));
        }
        Ok(Ok(answer)) => answer,
    };
    let status_ok = got_status == status;
    let body_ok = expect_body.is_none_or(|b| got_body.contains(b));
    if status_ok && body_ok {
        Outcome::pass(name, format!("{what}: {expected}"))
    } else {
        Outcome::fail(
            name,
            format!(
                "{what}: expected {expected}, got status {got_status} with body {}",
                shown(&got_body)
            ),
        )
    }
}

/// Why a GET got no usable answer (for the outcome's "got …").
#[derive(Debug, thiserror::Error)]
enum GetError {
    #[error("an invalid URL: {0}")]
    Url(#[source] http::uri::InvalidUri),
    #[error("no TLS with the platform's roots: {0}")]
    Tls(#[source] std::io::Error),
    #[error("an invalid request: {0}")]
    Request(#[source] http::Error),
    #[error("no answer: {0}")]
    NoAnswer(String),
    #[error("status {status} but the body could not be read: {reason}")]
    Body { status: u16, reason: String },
}

async fn get(url: &str) -> Result<(u16, String), GetError> {
    let uri: http::Uri = url.parse().map_err(GetError::Url)?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_platform_verifier(provider)
        .map_err(GetError::Tls)?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Empty<Bytes>>(connector);
    let request = http::Request::get(uri)
        .header(http::header::USER_AGENT, "cairn-smoke-check")
        .body(Empty::new())
        .map_err(GetError::Request)?;
    let response = client
        .request(request)
        .await
        .map_err(|e| GetError::NoAnswer(chain(&e)))?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), BODY_LIMIT)
        .collect()
        .await
        .map_err(|e| GetError::Body {
            status,
            reason: e.to_string(),
        })?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A TCP connection to `host:port` must open.
pub async fn tcp_check(name: &str, host: &str, port: u16) -> Outcome {
    let what = format!("connect to {host}:{port}");
    match tokio::time::timeout(
        NETWORK_TIMEOUT,
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    {
        Ok(Ok(_)) => Outcome::pass(name, format!("{what}: open")),
        Ok(Err(e)) => Outcome::fail(
            name,
            format!("{what}: expected the connection to open, got: {e}"),
        ),
        Err(_) => Outcome::fail(
            name,
            format!(
                "{what}: expected the connection to open, got no answer within {}s",
                NETWORK_TIMEOUT.as_secs()
            ),
        ),
    }
}

/// The check's Job must complete.
async fn sql_check(
    cluster: &Cluster,
    name: &str,
    database: &str,
    query: &str,
    mut job: J,
    timeout: Duration,
) -> Outcome {
    // A fresh name for every run: Jobs are immutable and a failed one is kept for a while.
    let suffix: u32 = rand::random::<u32>() & 0xf_ffff;
    if let Some(n) = job.pointer_mut("/metadata/name") {
        let base = n.as_str().unwrap_or("smoke").to_owned();
        *n = J::String(format!("{base}-{suffix:05x}"));
    }
    let job_name = job
        .pointer("/metadata/name")
        .and_then(J::as_str)
        .unwrap_or_default()
        .to_owned();
    let what = format!("{query:?} on {database} (Job {job_name})");
    match cairn_kube::run_job(cluster, &job, timeout).await {
        Ok(run) if run.succeeded => Outcome::pass(name, format!("{what}: completed")),
        Ok(run) => Outcome {
            logs: run.logs,
            ..Outcome::fail(
                name,
                format!(
                    "{what}: expected the query to succeed, got: {}",
                    run.message
                ),
            )
        },
        Err(e) => Outcome::fail(name, format!("{what}: {e}")),
    }
}

/// An outcome's detail with a failed Job's log on the lines below (for `status`).
pub fn with_log(o: &Outcome) -> String {
    let mut s = o.detail.clone();
    for line in &o.logs {
        s.push_str("\n      | ");
        s.push_str(line);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_checks_of_this_machine_run_on_the_sandbox() {
        let http = |url: &str| serde_json::json!({ "check": "http", "url": url });
        let tcp = |host: &str| serde_json::json!({ "check": "tcp", "host": host, "port": 80 });
        for runs in [
            http("http://127.0.0.1:8080/health"),
            http("http://[::1]:8080/"),
            http("http://LOCALHOST/"),
            tcp("127.0.0.2"),
            tcp("::1"),
        ] {
            assert_eq!(not_on_sandbox(&runs), None, "{runs}");
        }
        for not_run in [
            http("https://api.demo.example.com/health"),
            http("http://10.0.0.1/"),
            tcp("web.demo.svc.cluster.local"),
            serde_json::json!({ "check": "sql", "database": "pg" }),
        ] {
            assert!(not_on_sandbox(&not_run).is_some(), "{not_run}");
        }
    }
}
