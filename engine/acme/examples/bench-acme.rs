//! One ACME issuance (app + wildcard, DNS-01 through cairn-dns) timed against a local Pebble
//! validating against a local BIND9 (both started here, on loopback); with `--certbot`, the
//! same issuance by Debian's certbot + certbot-dns-rfc2136 against the same servers.
//!
//! `cargo run --release -p cairn-acme --example bench-acme [-- ROUNDS] [--certbot]`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

#[path = "../tests/it/harness.rs"]
mod harness;

use std::process::Command;
use std::time::{Duration, Instant};

use cairn_acme::{AcmeClient, CertSettings, issue};
use harness::{KEY_NAME, PebbleOptions, Servers, ZONE};

fn summary(times: &mut [f64]) -> String {
    times.sort_by(f64::total_cmp);
    format!(
        "median {:.3}s, min {:.3}s, max {:.3}s over {} rounds",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len()
    )
}

fn certbot(s: &Servers, rounds: usize) -> Vec<f64> {
    let dir = s.bind.dir.join("certbot");
    std::fs::create_dir_all(&dir).unwrap();
    let creds = dir.join("rfc2136.ini");
    std::fs::write(
        &creds,
        format!(
            "dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = {}\ndns_rfc2136_name = {KEY_NAME}\ndns_rfc2136_secret = {}\ndns_rfc2136_algorithm = HMAC-SHA256\n",
            s.bind.port,
            s.bind.secret_b64()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&creds, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let base = |cmd: &mut Command| {
        cmd.env("REQUESTS_CA_BUNDLE", s.pebble.ca_file())
            .env_remove("SSL_CERT_FILE")
            .args(["--non-interactive", "--agree-tos", "-m", "ops@example.test"])
            .arg("--server")
            .arg(s.pebble.directory())
            .arg("--config-dir")
            .arg(dir.join("config"))
            .arg("--work-dir")
            .arg(dir.join("work"))
            .arg("--logs-dir")
            .arg(dir.join("logs"));
    };
    let run = |cmd: &mut Command| {
        let out = cmd
            .output()
            .expect("certbot is missing: apt-get install -y certbot python3-certbot-dns-rfc2136");
        assert!(
            out.status.success(),
            "certbot failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let mut reg = Command::new("certbot");
    reg.arg("register");
    base(&mut reg);
    run(&mut reg);
    let mut times = Vec::new();
    for _ in 0..rounds {
        let mut cmd = Command::new("certbot");
        cmd.args(["certonly", "--force-renewal", "--cert-name", "bench"])
            .args(["--key-type", "ecdsa", "--dns-rfc2136"])
            .arg("--dns-rfc2136-credentials")
            .arg(&creds)
            .args(["--dns-rfc2136-propagation-seconds", "0"])
            .args(["-d", ZONE, "-d", &format!("*.{ZONE}")]);
        base(&mut cmd);
        let t = Instant::now();
        run(&mut cmd);
        times.push(t.elapsed().as_secs_f64());
    }
    times
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(5);
    let s = Servers::start(PebbleOptions::default());
    let t = Instant::now();
    let (client, _) = AcmeClient::create_account(&s.issuer()).await.unwrap();
    println!(
        "cairn: account created in {:.3}s",
        t.elapsed().as_secs_f64()
    );
    let desired =
        CertSettings::new("web", "bench", &[ZONE, &format!("*.{ZONE}")], s.issuer()).unwrap();
    let dns = s.dns();
    let mut times = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        issue(&client, &desired, &dns, Duration::from_secs(60))
            .await
            .unwrap();
        times.push(t.elapsed().as_secs_f64());
    }
    let cairn_median = {
        let mut t = times.clone();
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    println!(
        "cairn: issuance of {ZONE} + *.{ZONE} (order, 2 DNS-01 challenges through RFC 2136, validation, finalize, download, cleanup): {}",
        summary(&mut times)
    );
    if args.iter().any(|a| a == "--certbot") {
        let mut times = certbot(&s, rounds);
        let line = summary(&mut times);
        println!("certbot + certbot-dns-rfc2136 (propagation 0s, process start included): {line}");
        println!(
            "ratio certbot / cairn (medians): {:.1}x",
            times[times.len() / 2] / cairn_median
        );
    }
}
