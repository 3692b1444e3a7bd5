//! A rate limit of the ACME server remembered across runs: Pebble behind a proxy that answers
//! new orders with 429 + Retry-After while told to, BIND9 for the DNS-01 challenges, and the
//! Kubernetes API emulator holding the account Secret.

#![allow(clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use cairn_acme::{ANNOTATION_RATE_LIMIT, RateLimitBlock};
use cairn_tests::TestCluster;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::harness;

const RETRY_AFTER_SECS: u64 = 8;
const DETAIL: &str = "too many new orders recently";

/// A TLS proxy in front of Pebble (with Pebble's own certificate, so clients trust it through
/// Pebble's CA): one request per connection, passed through unless `limit` is set and the
/// request is a new order, which is then answered 429 with a Retry-After.
struct LimitingProxy {
    port: u16,
    limit: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
}

fn read_request(stream: &mut impl std::io::Read) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let len: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < end + 4 + len {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = buf[end + 4..end + 4 + len].to_vec();
    Some((head, body))
}

impl LimitingProxy {
    fn start(pebble: &harness::Pebble) -> LimitingProxy {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(pebble.dir.join("cert.pem"))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let key = PrivateKeyDer::from_pem_file(pebble.dir.join("key.pem")).unwrap();
        let server = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(pebble.ca_file()).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let client = Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = pebble.port;
        let limit = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (l, r) = (limit.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (server, client, l, r) = (server.clone(), client.clone(), l.clone(), r.clone());
                std::thread::spawn(move || {
                    let Ok(conn) = rustls::ServerConnection::new(server) else {
                        return;
                    };
                    let mut tls = rustls::StreamOwned::new(conn, stream);
                    let Some((head, body)) = read_request(&mut tls) else {
                        return;
                    };
                    r.fetch_add(1, Ordering::SeqCst);
                    let mut first = head.split_whitespace();
                    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
                    if l.load(Ordering::SeqCst) && method == "POST" && path == "/order-plz" {
                        let problem = format!(
                            r#"{{"type":"urn:ietf:params:acme:error:rateLimited","detail":"{DETAIL}","status":429}}"#
                        );
                        let rsp = format!(
                            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {RETRY_AFTER_SECS}\r\nContent-Type: application/problem+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{problem}",
                            problem.len()
                        );
                        let _ = tls.write_all(rsp.as_bytes());
                        let _ = tls.flush();
                        tls.conn.send_close_notify();
                        let _ = tls.flush();
                        return;
                    }
                    // Pass through, one request per connection.
                    let head: String = head
                        .lines()
                        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                        .map(|l| format!("{l}\r\n"))
                        .collect();
                    let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                        return;
                    };
                    let name = ServerName::try_from("127.0.0.1").unwrap();
                    let Ok(conn) = rustls::ClientConnection::new(client, name) else {
                        return;
                    };
                    let mut up = rustls::StreamOwned::new(conn, up);
                    let mut req = format!("{head}Connection: close\r\n\r\n").into_bytes();
                    req.extend_from_slice(&body);
                    if up.write_all(&req).is_err() || up.flush().is_err() {
                        return;
                    }
                    let mut rsp = Vec::new();
                    let _ = up.read_to_end(&mut rsp);
                    let _ = tls.write_all(&rsp);
                    let _ = tls.flush();
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                });
            }
        });
        LimitingProxy {
            port,
            limit,
            requests,
        }
    }

    fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.port)
    }
}

#[test]
fn a_rate_limit_is_remembered_until_its_retry_after_has_passed() {
    let servers = harness::Servers::start(harness::PebbleOptions::default());
    let proxy = LimitingProxy::start(&servers.pebble);
    let cluster = TestCluster::start(cairn_sandbox::SandboxConfig::default());
    let script = format!(
        r#"
let env = environment("shop", #{{
    domain: "shop.{zone}",
    dns: rfc2136(#{{ server: "{server}", zone: "{zone}", key_name: "{key}", key: secret_env("TSIG_KEY") }}),
    acme: acme(#{{ directory: "{directory}", email: "ops@{zone}", ca_file: "{ca}" }}),
}});
env.namespace("shop", #{{}});
env.dns_a(["@"], "127.0.0.1");
env.certificate("shop", [env.domain]);
"#,
        zone = harness::ZONE,
        server = servers.bind.server(),
        key = harness::KEY_NAME,
        directory = proxy.directory(),
        ca = servers.pebble.ca_file().display(),
    );
    let path = cluster.dir.join("shop.rhai");
    std::fs::write(&path, script).expect("script");
    let path = path.to_string_lossy().into_owned();
    let key = servers.bind.secret_b64();
    let vars = [("TSIG_KEY", key.as_str())];
    let account_secret = || {
        cluster.runtime.block_on(async {
            let client = cairn_tests::kube_client(&cluster).await;
            let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
                kube::Api::namespaced(client, "shop");
            api.get("cairn-acme-account")
                .await
                .expect("the account Secret exists")
        })
    };
    let recorded = || {
        let secret = account_secret();
        let value = serde_json::to_value(&secret).unwrap();
        RateLimitBlock::from_account_secret(&value)
    };

    // 1. The server rate limits the order: the apply fails and the block is recorded.
    proxy.limit.store(true, Ordering::SeqCst);
    let out = cluster.cairn_with(&["apply", &path, "--yes", "--timeout", "60"], &vars);
    assert_ne!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "rate limiting this account (retry after {RETRY_AFTER_SECS}s): {DETAIL}"
        )),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let block = recorded().expect("the rate limit is recorded on the account Secret");
    assert_eq!(block.names, ["shop.example.test"]);
    assert_eq!(block.reason, DETAIL);
    let until = block.until_time().unwrap();
    let left = until.duration_since(SystemTime::now()).unwrap();
    assert!(
        left <= Duration::from_secs(RETRY_AFTER_SECS + 1),
        "{left:?}"
    );
    assert!(
        account_secret()
            .metadata
            .annotations
            .unwrap()
            .contains_key(ANNOTATION_RATE_LIMIT)
    );

    // 2. The next plan says so.
    let out = cluster.cairn_with(&["plan", &path], &vars);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    let note = format!(
        "certificate shop: blocked by the ACME rate limit until {} ({DETAIL}; hit ordering shop.example.test)",
        block.until
    );
    assert!(
        out.stdout.contains(&note),
        "{note}\nnot in:\n{}",
        out.stdout
    );

    // 3. Before T, apply fails at once without a request to the ACME server.
    let before = proxy.requests.load(Ordering::SeqCst);
    let out = cluster.cairn_with(&["apply", &path, "--yes", "--timeout", "60"], &vars);
    assert_ne!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "certificate shop: blocked by the ACME rate limit until {}",
            block.until
        )),
        "{}",
        out.stdout
    );
    assert!(
        SystemTime::now() < until,
        "the machine was too slow to check the block before it ended"
    );
    assert_eq!(
        proxy.requests.load(Ordering::SeqCst),
        before,
        "the ACME server was contacted while blocked"
    );

    // 4. Once T has passed, issuance proceeds and the annotation is cleared.
    proxy.limit.store(false, Ordering::SeqCst);
    if let Ok(wait) = until.duration_since(SystemTime::now()) {
        std::thread::sleep(wait + Duration::from_millis(200));
    }
    let out = cluster.cairn_with(&["apply", &path, "--yes", "--timeout", "60"], &vars);
    assert_eq!(
        out.code,
        0,
        "{}\n{}\npebble:\n{}",
        out.stdout,
        out.stderr,
        servers.pebble.log()
    );
    assert!(proxy.requests.load(Ordering::SeqCst) > before);
    assert_eq!(recorded(), None, "the annotation is cleared");
    let out = cluster.cairn_with(&["plan", &path], &vars);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("rate limit"), "{}", out.stdout);
}
