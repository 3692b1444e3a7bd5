//! Ownership records left behind by a record set deleted by hand are swept by the plan, against
//! BIND9 and the Kubernetes API emulator.

use std::time::Duration;

use cairn_dns::{DnsBackend, DnsChange, DnsPlan, ReadMethod, RecordKey, RecordType};
use cairn_tests::TestCluster;

use crate::harness;

fn script(bind: &harness::Bind, names: &str) -> String {
    format!(
        r#"
let env = environment("shop", #{{
    domain: "shop.{zone}",
    dns: rfc2136(#{{ server: "{server}", zone: "{zone}", key_name: "{key}", key: secret_env("TSIG_KEY") }}),
}});
env.namespace("shop", #{{}});
env.dns_a([{names}], "127.0.0.1");
"#,
        zone = harness::ZONE,
        server = bind.server(),
        key = harness::KEY_NAME,
    )
}

#[test]
fn an_ownership_record_left_by_a_record_deleted_by_hand_is_swept() {
    let bind = harness::Bind::start();
    let cluster = TestCluster::start(cairn_sandbox::SandboxConfig::default());
    let path = cluster.dir.join("shop.rhai");
    let path_text = path.to_string_lossy().into_owned();
    let key = bind.secret_b64();
    let vars = [("TSIG_KEY", key.as_str())];
    std::fs::write(
        &path,
        script(&bind, r#""@", "api", "www", "admin", "status", "mail""#),
    )
    .expect("script");
    let out = cluster.cairn_with(&["apply", &path_text, "--yes"], &vars);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    // The six record nodes shared one signed UPDATE (counted by BIND9).
    let approved = std::fs::read_to_string(bind.dir.join("named.log"))
        .expect("named.log")
        .lines()
        .filter(|l| l.ends_with(&format!("signer \"{}\" approved", harness::KEY_NAME)))
        .count();
    assert_eq!(approved, 1, "UPDATE messages for 6 record sets");
    let own = "_cairn-owner.a.api.shop.example.test";
    assert_eq!(bind.dig(own, "TXT").len(), 1);

    // Someone deletes api's A record set by hand (its ownership record stays), and the script
    // no longer declares it.
    let backend = cairn_dns::Rfc2136Backend::new(bind.config());
    cluster.runtime.block_on(async {
        let key = RecordKey {
            name: "api.shop.example.test".into(),
            rtype: RecordType::A,
        };
        let live = backend.read_zone(&[]).await.expect("zone");
        let by_hand = DnsPlan {
            zone: harness::ZONE.into(),
            owner: None,
            changes: vec![DnsChange {
                kind: cairn_plan::plan::Action::Delete,
                before: live.get(&key).cloned(),
                key,
                after: None,
                reason: "by hand".into(),
            }],
            zone_records_total: 0,
            read_by: ReadMethod::Axfr,
            warnings: Vec::new(),
        };
        backend
            .apply_changes(&by_hand, Duration::from_secs(5))
            .await
            .expect("deleted by hand");
    });
    assert!(bind.dig("api.shop.example.test", "A").is_empty());
    assert_eq!(bind.dig(own, "TXT").len(), 1);
    std::fs::write(&path, script(&bind, r#""@""#)).expect("script");

    let out = cluster.cairn_with(&["plan", &path_text], &vars);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    let line = format!("- DnsRecord/example.test/{own} TXT");
    let at = out
        .stdout
        .find(&line)
        .unwrap_or_else(|| panic!("no {line:?} in:\n{}", out.stdout));
    assert!(
        out.stdout[at..]
            .lines()
            .nth(1)
            .is_some_and(|l| l.trim() == "(orphaned ownership record)"),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout.matches("- DnsRecord").count(),
        5,
        "the 4 record sets no longer declared and the orphan:\n{}",
        out.stdout
    );

    let out = cluster.cairn_with(&["apply", &path_text, "--yes"], &vars);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(bind.dig(own, "TXT").is_empty());
    assert_eq!(
        bind.dig("_cairn-owner.a.shop.example.test", "TXT").len(),
        1,
        "the apex's ownership record stays"
    );
    let out = cluster.cairn_with(&["plan", &path_text], &vars);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
}

/// A script that no longer declares any record: the zone is read all the same, and the
/// environment's last record sets and their ownership records are deleted (a dangling record
/// pointing at a shared address is a subdomain-takeover risk).
#[test]
fn the_last_records_of_an_environment_are_deleted_with_their_ownership() {
    let bind = harness::Bind::start();
    let cluster = TestCluster::start(cairn_sandbox::SandboxConfig::default());
    let path = cluster.dir.join("shop.rhai");
    let path_text = path.to_string_lossy().into_owned();
    let key = bind.secret_b64();
    let vars = [("TSIG_KEY", key.as_str())];
    std::fs::write(&path, script(&bind, r#""@", "api""#)).expect("script");
    let out = cluster.cairn_with(&["apply", &path_text, "--yes"], &vars);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(bind.dig("api.shop.example.test", "A"), ["127.0.0.1"]);
    assert_eq!(
        bind.dig("_cairn-owner.a.api.shop.example.test", "TXT")
            .len(),
        1
    );

    // The script keeps its zone settings and declares no record any more.
    let text = script(&bind, r#""@""#).replace("env.dns_a([\"@\"], \"127.0.0.1\");", "");
    assert!(!text.contains("dns_a"), "{text}");
    std::fs::write(&path, text).expect("script");
    let out = cluster.cairn_with(&["plan", &path_text], &vars);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    for line in [
        "- DnsRecord/example.test/shop.example.test A",
        "- DnsRecord/example.test/api.shop.example.test A",
    ] {
        assert!(out.stdout.contains(line), "no {line:?} in:\n{}", out.stdout);
    }
    // Each record set goes with its ownership record (one change each).
    assert_eq!(
        out.stdout.matches("- DnsRecord").count(),
        2,
        "{}",
        out.stdout
    );

    let out = cluster.cairn_with(&["apply", &path_text, "--yes"], &vars);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for (name, rtype) in [
        ("shop.example.test", "A"),
        ("api.shop.example.test", "A"),
        ("_cairn-owner.a.shop.example.test", "TXT"),
        ("_cairn-owner.a.api.shop.example.test", "TXT"),
    ] {
        assert!(bind.dig(name, rtype).is_empty(), "{name} {rtype} is left");
    }
    // Nothing of the environment's is left in the zone: the next plan has nothing to do.
    let out = cluster.cairn_with(&["plan", &path_text], &vars);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
}
