//! Starts a real BIND9 (`named`) on a free loopback port with a temp dir, a TSIG key, and one
//! primary zone; stops it (process group, reaped) on drop. Shared by the tests and the bench.

#![allow(dead_code, clippy::unwrap_used, clippy::print_stderr)]

use std::io::Write as _;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use cairn_dns::{Rfc2136Config, TsigAlgorithm};

pub const NAMED: &str = "/usr/sbin/named";
pub const ZONE: &str = "cairn.test";
pub const KEY_NAME: &str = "cairn-key";
/// A key the server knows but the zone does not allow to update or transfer.
pub const OTHER_KEY_NAME: &str = "other-key";
pub const OTHER_SECRET: &str = "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMDA=";

/// Options of a test server.
#[derive(Clone)]
pub struct BindOptions {
    /// Allow AXFR with the key (otherwise transfers are refused to everyone).
    pub allow_transfer: bool,
    /// The TSIG algorithm of the key.
    pub algorithm: TsigAlgorithm,
}

impl Default for BindOptions {
    fn default() -> Self {
        BindOptions {
            allow_transfer: true,
            algorithm: TsigAlgorithm::HmacSha256,
        }
    }
}

/// A running `named`.
pub struct Bind {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    pub secret: Vec<u8>,
    pub opts: BindOptions,
}

fn free_port() -> u16 {
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

impl Bind {
    pub fn start() -> Bind {
        Bind::start_with(BindOptions::default())
    }

    pub fn start_with(opts: BindOptions) -> Bind {
        assert!(
            Path::new(NAMED).exists(),
            "BIND9 is not installed ({NAMED} is missing): run scripts/install-test-servers"
        );
        let secret = random_bytes(32);
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let dir = std::env::temp_dir().join(format!("cairn-bind-{}", hex(&random_bytes(8))));
            std::fs::create_dir_all(&dir).unwrap();
            let port = free_port();
            write_config(&dir, port, &secret, &opts);
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
                opts: opts.clone(),
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
            let running = log.lines().any(|l| l.ends_with(" running"));
            if running
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
            algorithm: self.opts.algorithm,
        }
    }

    pub fn secret_b64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.secret)
    }

    /// Runs `nsupdate` (bind9-dnsutils) with the test key: the way an operator changes the zone
    /// by hand, outside cairn.
    pub fn nsupdate(&self, commands: &str) {
        let keyfile = self.dir.join("nsupdate.key");
        std::fs::write(
            &keyfile,
            format!(
                "key \"{KEY_NAME}\" {{ algorithm {}; secret \"{}\"; }};\n",
                self.opts.algorithm.as_str(),
                self.secret_b64()
            ),
        )
        .unwrap();
        let mut child = Command::new("nsupdate")
            .arg("-k")
            .arg(&keyfile)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nsupdate is missing: run scripts/install-test-servers (bind9-dnsutils)");
        let script = format!(
            "server 127.0.0.1 {}\nzone {ZONE}\n{commands}\nsend\n",
            self.port
        );
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nsupdate failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
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
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    /// Stops the server (the port then refuses connections) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn write_config(dir: &Path, port: u16, secret: &[u8], opts: &BindOptions) {
    let d = dir.display();
    let secret = base64::engine::general_purpose::STANDARD.encode(secret);
    let transfer = if opts.allow_transfer {
        format!("key \"{KEY_NAME}\";")
    } else {
        "none;".to_owned()
    };
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
    algorithm {alg};
    secret "{secret}";
}};
key "{OTHER_KEY_NAME}" {{
    algorithm hmac-sha256;
    secret "{OTHER_SECRET}";
}};
zone "{ZONE}" {{
    type primary;
    file "{d}/{ZONE}.db";
    allow-update {{ key "{KEY_NAME}"; }};
    allow-transfer {{ {transfer} }};
}};
"#,
        alg = opts.algorithm.as_str()
    );
    std::fs::write(dir.join("named.conf"), conf).unwrap();
    let zone = format!(
        "$TTL 300\n\
         @ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 300\n\
         @ IN NS ns1.{ZONE}.\n\
         ns1 IN A 127.0.0.1\n"
    );
    std::fs::write(dir.join(format!("{ZONE}.db")), zone).unwrap();
}
