//! End-to-end tests of the certificate provider: a real Pebble validating DNS-01 against a
//! real BIND9, the challenge records written through cairn-dns.

#![allow(clippy::unwrap_used)]

mod harness;
mod ratelimit;

use std::time::{Duration, SystemTime};

use cairn_acme::{
    AccountSecret, AcmeClient, AcmeError, CertSettings, IssueReason, account_secret_manifest,
    days_until, inspect, issue, pem_certificates, read_leaf, tls_secret_manifest,
};
use harness::{PebbleOptions, Servers, ZONE};

const TIMEOUT: Duration = Duration::from_secs(60);

fn app_and_wildcard(s: &Servers) -> CertSettings {
    CertSettings::new("web", "staging", &[ZONE, &format!("*.{ZONE}")], s.issuer()).unwrap()
}

/// No challenge record (nor its ownership record) is left in the zone.
fn assert_no_challenge_records(s: &Servers) {
    assert_eq!(
        s.bind.dig(&format!("_acme-challenge.{ZONE}"), "TXT"),
        Vec::<String>::new()
    );
    let left: Vec<String> = s
        .bind
        .axfr()
        .into_iter()
        .filter(|l| l.contains("acme-challenge"))
        .collect();
    assert!(
        left.is_empty(),
        "challenge records left in the zone: {left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_and_wildcard_issuance_end_to_end() {
    let s = Servers::start(PebbleOptions::default());
    let issuer = s.issuer();
    // A new account, stored as a Secret, then restored from it.
    let (_, account) = AcmeClient::create_account(&issuer).await.unwrap();
    let stored = account_secret_manifest("staging", &account);
    assert!(
        !stored.to_string().contains("BEGIN"),
        "the account key is base64 data"
    );
    let (client, created) = AcmeClient::load_or_create(&issuer, Some(&stored))
        .await
        .unwrap();
    assert!(created.is_none(), "the stored account is reused");
    assert_eq!(AccountSecret::from_secret(&stored).unwrap(), account);

    let desired = app_and_wildcard(&s);
    let dns = s.dns();
    let issued = issue(&client, &desired, &dns, TIMEOUT).await.unwrap();
    assert_eq!(issued.names, [format!("*.{ZONE}"), ZONE.to_owned()]);
    assert!(issued.warnings.is_empty(), "{:?}", issued.warnings);
    assert_eq!(issued.issuer, s.pebble.directory());
    assert!(
        pem_certificates(issued.cert_chain_pem.as_bytes())
            .unwrap()
            .len()
            >= 2
    );
    let leaf = read_leaf(issued.cert_chain_pem.as_bytes()).unwrap();
    assert_eq!(leaf.names, issued.names);
    assert_eq!(leaf.not_after, issued.not_after);
    assert!(issued.private_key_pem.contains("BEGIN PRIVATE KEY"));
    assert_no_challenge_records(&s);

    // The TLS Secret read back: no change with 30 days, renewal with a threshold above the
    // certificate's validity.
    let secret = tls_secret_manifest("staging", "web-tls", &issued);
    let now = SystemTime::now();
    let st = inspect(Some(&secret), &desired, now, 30);
    assert_eq!(st.reason, None, "{}", st.describe());
    assert_eq!(st.names, issued.names);
    let days = days_until(issued.not_after, now);
    assert!(days > 30, "Pebble's certificate is valid {days} days");
    let forced = inspect(
        Some(&secret),
        &desired,
        now,
        u32::try_from(days).unwrap() + 1,
    );
    assert_eq!(forced.reason, Some(IssueReason::ExpiresIn { days }));
    assert_eq!(forced.describe(), format!("renew: expires in {days} days"));
    // Other names → issue again, with the difference.
    let more = CertSettings::new(
        "web",
        "staging",
        &[ZONE, &format!("*.{ZONE}"), "api.other.test"],
        s.issuer(),
    )
    .unwrap();
    assert_eq!(
        inspect(Some(&secret), &more, now, 30).reason,
        Some(IssueReason::NamesChanged {
            added: vec!["api.other.test".into()],
            removed: vec![],
        })
    );

    // The forced renewal: a second issuance with the same account succeeds too.
    let renewed = issue(&client, &desired, &dns, TIMEOUT).await.unwrap();
    assert_ne!(renewed.cert_chain_pem, issued.cert_chain_pem);
    assert_ne!(renewed.private_key_pem, issued.private_key_pem);
    assert_no_challenge_records(&s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuance_succeeds_while_half_the_nonces_are_rejected() {
    let s = Servers::start(PebbleOptions { nonce_reject: 50 });
    let issuer = s.issuer();
    let (client, account) = AcmeClient::create_account(&issuer).await.unwrap();
    assert_eq!(
        account.directory().as_deref(),
        Some(issuer.directory.as_str())
    );
    let desired = app_and_wildcard(&s);
    let dns = s.dns();
    for _ in 0..2 {
        let issued = issue(&client, &desired, &dns, TIMEOUT).await.unwrap();
        assert_eq!(
            read_leaf(issued.cert_chain_pem.as_bytes()).unwrap().names,
            issued.names
        );
        assert_no_challenge_records(&s);
    }
    assert!(
        s.pebble.log().contains("badNonce") || client.requests_sent() > 20,
        "Pebble rejected no nonce"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_validation_is_explained_and_the_records_are_removed() {
    // Pebble asks a DNS server that is not there: the records are written to BIND9 and
    // checked, but validation fails.
    let bind = harness::Bind::start();
    let pebble = harness::Pebble::start(harness::free_port(), PebbleOptions::default());
    let s = Servers { bind, pebble };
    let (client, _) = AcmeClient::create_account(&s.issuer()).await.unwrap();
    let desired = app_and_wildcard(&s);
    let err = issue(&client, &desired, &s.dns(), TIMEOUT)
        .await
        .unwrap_err();
    let AcmeError::Validation { failures } = &err else {
        panic!("expected a validation failure, got {err}");
    };
    assert_eq!(failures.len(), 2, "{err}");
    assert!(err.to_string().starts_with("validation failed: "), "{err}");
    assert!(err.to_string().contains(ZONE), "{err}");
    assert_no_challenge_records(&s);

    // A name outside the zone fails before anything is ordered or written.
    let before = client.requests_sent();
    let outside =
        CertSettings::new("web", "staging", &[ZONE, "www.other.test"], s.issuer()).unwrap();
    let err = issue(&client, &outside, &s.dns(), TIMEOUT)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`www.other.test` is not in the DNS zone example.test: its challenge record cannot be written"
    );
    assert_eq!(client.requests_sent(), before);
    assert_no_challenge_records(&s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_server_down_is_a_clear_error() {
    let mut s = Servers::start(PebbleOptions::default());
    let (client, _) = AcmeClient::create_account(&s.issuer()).await.unwrap();
    let desired = app_and_wildcard(&s);
    let dns = s.dns();
    s.bind.stop();
    let err = issue(&client, &desired, &dns, TIMEOUT).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("challenge records in zone example.test"),
        "{text}"
    );
    assert!(text.contains(&s.bind.server()), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_directory_and_wrong_ca_are_clear_errors() {
    let s = Servers::start(PebbleOptions::default());
    // Pebble's TLS is not signed by the platform's roots.
    let mut issuer = s.issuer();
    issuer.ca_file = None;
    let err = AcmeClient::create_account(&issuer).await.unwrap_err();
    assert!(matches!(err, AcmeError::Unreachable { .. }), "{err}");
    // Nothing listens there.
    let mut issuer = s.issuer();
    issuer.directory = format!("https://127.0.0.1:{}/dir", harness::free_port());
    let err = AcmeClient::create_account(&issuer).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot reach the ACME server https://127.0.0.1:"),
        "{err}"
    );
    // A stored account of another directory is not used: a new one is created.
    let (_, account) = AcmeClient::create_account(&s.issuer()).await.unwrap();
    let mut other = s.issuer();
    other.directory = format!("https://127.0.0.1:{}/dir", s.pebble.port);
    other.directory.push_str("?other");
    assert!(AcmeClient::load_account(&other, &account).await.is_err());
}
