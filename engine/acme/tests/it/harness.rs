//! Starts a real BIND9 (`named`, a TSIG key, one zone open to signed updates) and a real
//! Pebble (ACME test server, its TLS certificate from a CA made here, DNS-01 validated against
//! the BIND9) on free loopback ports, each in a temp dir; stops them (reaped) on drop. Shared by
//! the tests and the benchmark.

#![allow(dead_code, clippy::unwrap_used, clippy::print_stderr)]

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use cairn_dns::{Rfc2136Config, TsigAlgorithm};

pub const NAMED: &str = "/usr/sbin/named";
pub const PEBBLE: &str = "/usr/bin/pebble";
pub const ZONE: &str = "example.test";
pub const KEY_NAME: &str = "cairn-acme-key";

pub fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() && port > 1024 {
            return port;
        }
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random::<u8>()).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cairn-{what}-{}", hex(&random_bytes(8))));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stop_child(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A running `named` serving [`ZONE`].
pub struct Bind {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    pub secret: Vec<u8>,
}

impl Bind {
    pub fn start() -> Bind {
        assert!(
            Path::new(NAMED).exists(),
            "BIND9 is not installed ({NAMED} is missing): run scripts/install-test-servers"
        );
        let secret = random_bytes(32);
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let dir = temp_dir("acme-bind");
            let port = free_port();
            write_bind_config(&dir, port, &secret);
            let log = std::fs::File::create(dir.join("named.log")).unwrap();
            let child = Command::new(NAMED)
                .args(["-g", "-4", "-c"])
                .arg(dir.join("named.conf"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {NAMED}: {e}; run scripts/install-test-servers")
                });
            let mut bind = Bind {
                child: Some(child),
                port,
                dir,
                secret: secret.clone(),
            };
            if bind.wait_ready() {
                return bind;
            }
            last_log = std::fs::read_to_string(bind.dir.join("named.log")).unwrap_or_default();
            drop(bind);
        }
        panic!("named did not start; its log:\n{last_log}");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && child.try_wait().ok().flatten().is_some()
            {
                return false;
            }
            let log = std::fs::read_to_string(self.dir.join("named.log")).unwrap_or_default();
            if log.lines().any(|l| l.ends_with(" running"))
                && log.contains("all zones loaded")
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        false
    }

    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn config(&self) -> Rfc2136Config {
        Rfc2136Config {
            server: self.server(),
            zone: ZONE.to_owned(),
            key_name: KEY_NAME.to_owned(),
            key: self.secret.clone(),
            algorithm: TsigAlgorithm::HmacSha256,
        }
    }

    pub fn secret_b64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.secret)
    }

    /// `dig +short` against the server: an outside view of what it answers.
    pub fn dig(&self, name: &str, rtype: &str) -> Vec<String> {
        let out = Command::new("dig")
            .args([
                "+short",
                "+norecurse",
                "-p",
                &self.port.to_string(),
                "@127.0.0.1",
                name,
                rtype,
            ])
            .output()
            .expect("dig is missing: run scripts/install-test-servers (bind9-dnsutils)");
        assert!(out.status.success(), "dig failed: {out:?}");
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    /// Every record of the zone (AXFR with the key), as zone file lines.
    pub fn axfr(&self) -> Vec<String> {
        let out = Command::new("dig")
            .args([
                "+nocmd",
                "+nostats",
                "+noall",
                "+answer",
                "-p",
                &self.port.to_string(),
                "-y",
                &format!("hmac-sha256:{KEY_NAME}:{}", self.secret_b64()),
                "@127.0.0.1",
                ZONE,
                "AXFR",
            ])
            .output()
            .expect("dig is missing: run scripts/install-test-servers (bind9-dnsutils)");
        assert!(out.status.success(), "dig failed: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Stops the server (the port then refuses connections) and reaps it.
    pub fn stop(&mut self) {
        stop_child(&mut self.child);
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.join("named.log")).unwrap_or_default();
            eprintln!("--- named.log of the failed test ---\n{log}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write_bind_config(dir: &Path, port: u16, secret: &[u8]) {
    let d = dir.display();
    let secret = base64::engine::general_purpose::STANDARD.encode(secret);
    let conf = format!(
        r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    check-integrity no;
}};
controls {{ }};
key "{KEY_NAME}" {{
    algorithm hmac-sha256;
    secret "{secret}";
}};
zone "{ZONE}" {{
    type primary;
    file "{d}/{ZONE}.db";
    allow-update {{ key "{KEY_NAME}"; }};
    allow-transfer {{ key "{KEY_NAME}"; }};
}};
"#
    );
    std::fs::write(dir.join("named.conf"), conf).unwrap();
    let zone = format!(
        "$TTL 300\n\
         @ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 300\n\
         @ IN NS ns1.{ZONE}.\n\
         ns1 IN A 127.0.0.1\n\
         @ IN A 127.0.0.1\n"
    );
    std::fs::write(dir.join(format!("{ZONE}.db")), zone).unwrap();
}

/// Options of a test Pebble.
#[derive(Clone, Default)]
pub struct PebbleOptions {
    /// `PEBBLE_WFE_NONCEREJECT`: the percentage of good nonces rejected.
    pub nonce_reject: u8,
}

/// A running Pebble.
pub struct Pebble {
    child: Option<Child>,
    pub port: u16,
    pub mgmt_port: u16,
    pub dir: PathBuf,
}

impl Pebble {
    /// Starts Pebble validating DNS-01 against `dns_port` on 127.0.0.1.
    pub fn start(dns_port: u16, opts: PebbleOptions) -> Pebble {
        assert!(
            Path::new(PEBBLE).exists(),
            "Pebble is not installed ({PEBBLE} is missing): run scripts/install-test-servers"
        );
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let dir = temp_dir("pebble");
            write_pebble_tls(&dir);
            let port = free_port();
            let mgmt_port = free_port();
            let conf = serde_json::json!({
                "pebble": {
                    "listenAddress": format!("127.0.0.1:{port}"),
                    "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
                    "certificate": dir.join("cert.pem"),
                    "privateKey": dir.join("key.pem"),
                    "httpPort": free_port(),
                    "tlsPort": free_port(),
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": false
                }
            });
            std::fs::write(dir.join("pebble.json"), conf.to_string()).unwrap();
            let log = std::fs::File::create(dir.join("pebble.log")).unwrap();
            let child = Command::new(PEBBLE)
                .arg("-config")
                .arg(dir.join("pebble.json"))
                .arg("-dnsserver")
                .arg(format!("127.0.0.1:{dns_port}"))
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", opts.nonce_reject.to_string())
                .env("PEBBLE_AUTHZREUSE", "0")
                .env_remove("SSL_CERT_FILE")
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {PEBBLE}: {e}; run scripts/install-test-servers")
                });
            let mut pebble = Pebble {
                child: Some(child),
                port,
                mgmt_port,
                dir,
            };
            if pebble.wait_ready() {
                return pebble;
            }
            last_log = pebble.log();
            drop(pebble);
        }
        panic!("pebble did not start; its log:\n{last_log}");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && child.try_wait().ok().flatten().is_some()
            {
                return false;
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && TcpStream::connect(("127.0.0.1", self.mgmt_port)).is_ok()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        false
    }

    /// The directory URL (one host name, always `127.0.0.1`).
    pub fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.port)
    }

    /// The CA of Pebble's own TLS certificate (what a client must trust).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pebble.log")).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        stop_child(&mut self.child);
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- pebble.log of the failed test ---\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A CA and a leaf for `localhost`, `127.0.0.1`, `::1` signed by it (rustls does not take a
/// self-signed leaf as its own trust anchor).
fn write_pebble_tls(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "cairn test Pebble TLS CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .unwrap()
    .signed_by(&key, &issuer)
    .unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

/// BIND9 and a Pebble that validates against it.
pub struct Servers {
    pub bind: Bind,
    pub pebble: Pebble,
}

impl Servers {
    pub fn start(opts: PebbleOptions) -> Servers {
        let bind = Bind::start();
        let pebble = Pebble::start(bind.port, opts);
        Servers { bind, pebble }
    }

    pub fn issuer(&self) -> cairn_acme::IssuerConfig {
        cairn_acme::IssuerConfig {
            directory: self.pebble.directory(),
            email: Some("ops@example.test".to_owned()),
            ca_file: Some(self.pebble.ca_file()),
        }
    }

    pub fn dns(&self) -> cairn_dns::Rfc2136Backend {
        cairn_dns::Rfc2136Backend::new(self.bind.config())
    }
}
