//! A minimal ACME server (HTTP/1.1 over rustls) that accepts accounts and answers every new
//! order with 429 + Retry-After: the client must report it and send nothing more.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cairn_acme::{AcmeClient, CertSettings, IssuerConfig, issue};
use cairn_dns::InMemoryBackend;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

struct FakeAcme {
    base: String,
    ca_file: std::path::PathBuf,
    orders: Arc<AtomicUsize>,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn serve(
    stream: tokio::net::TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    base: String,
    orders: Arc<AtomicUsize>,
    nonces: Arc<AtomicUsize>,
) {
    let Ok(mut tls) = acceptor.accept(stream).await else {
        return;
    };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // one request: headers, then Content-Length bytes
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match tls.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let len: usize = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            match tls.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..end + 4 + len);
        let mut parts = head.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let nonce = format!("nonce-{}", nonces.fetch_add(1, Ordering::Relaxed));
        let (status, extra, body) = match (method, path) {
            ("GET", "/dir") => (
                "200 OK",
                String::new(),
                serde_json::json!({
                    "newNonce": format!("{base}/nonce"),
                    "newAccount": format!("{base}/acct"),
                    "newOrder": format!("{base}/order"),
                })
                .to_string(),
            ),
            ("HEAD", "/nonce") => ("200 OK", String::new(), String::new()),
            ("POST", "/acct") => (
                "201 Created",
                format!("Location: {base}/acct/1\r\n"),
                r#"{"status":"valid"}"#.to_owned(),
            ),
            ("POST", "/order") => {
                orders.fetch_add(1, Ordering::Relaxed);
                (
                    "429 Too Many Requests",
                    "Retry-After: 120\r\nContent-Type: application/problem+json\r\n".to_owned(),
                    r#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new orders recently","status":429}"#
                        .to_owned(),
                )
            }
            _ => ("404 Not Found", String::new(), String::new()),
        };
        let rsp = format!(
            "HTTP/1.1 {status}\r\nReplay-Nonce: {nonce}\r\n{extra}Content-Length: {}\r\nConnection: keep-alive\r\n\r\n{}",
            body.len(),
            if method == "HEAD" { "" } else { body.as_str() }
        );
        if tls.write_all(rsp.as_bytes()).await.is_err() {
            return;
        }
        let _ = tls.flush().await;
    }
}

impl FakeAcme {
    async fn start() -> FakeAcme {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::default();
        ca.distinguished_name
            .push(DnType::CommonName, "fake ACME TLS CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let dir = std::env::temp_dir().join(format!("cairn-fake-acme-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();

        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let orders = Arc::new(AtomicUsize::new(0));
        let nonces = Arc::new(AtomicUsize::new(0));
        let (b, o) = (base.clone(), orders.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(
                    stream,
                    acceptor.clone(),
                    b.clone(),
                    o.clone(),
                    nonces.clone(),
                ));
            }
        });
        FakeAcme {
            base,
            ca_file,
            orders,
            _dir: TempDir(dir),
        }
    }
}

#[tokio::test]
async fn rate_limits_are_reported_with_retry_after_and_never_hammered() {
    let server = FakeAcme::start().await;
    let issuer = IssuerConfig {
        directory: format!("{}/dir", server.base),
        email: None,
        ca_file: Some(server.ca_file.clone()),
    };
    let (client, _) = AcmeClient::create_account(&issuer).await.unwrap();
    let dns = InMemoryBackend::new("example.test").unwrap();
    let desired = CertSettings::new(
        "web",
        "staging",
        &["example.test", "*.example.test"],
        issuer,
    )
    .unwrap();
    let err = issue(&client, &desired, &dns, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(err.is_rate_limited(), "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(
        err.to_string(),
        format!(
            "the ACME server {}/dir is rate limiting this account (retry after 120s): too many new orders recently",
            server.base
        )
    );
    assert_eq!(
        server.orders.load(Ordering::Relaxed),
        1,
        "a 429 is not retried"
    );
    assert!(client.blocked_until().is_some());

    // Until Retry-After has passed, nothing is sent.
    let sent = client.requests_sent();
    let again = issue(&client, &desired, &dns, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(again.is_rate_limited(), "{again}");
    let left = again.retry_after().unwrap();
    assert!(
        left <= Duration::from_secs(120) && left > Duration::from_secs(100),
        "{left:?}"
    );
    assert_eq!(client.requests_sent(), sent);
    assert_eq!(server.orders.load(Ordering::Relaxed), 1);
}
