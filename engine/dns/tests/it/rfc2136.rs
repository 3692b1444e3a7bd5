//! The RFC 2136 provider against BIND9.

use cairn_plan::plan::Action;
use std::time::Duration;

use cairn_dns::{DnsBackend, DnsError, ReadMethod, Rfc2136Backend, TsigAlgorithm, ownership_name};

use crate::harness::{Bind, BindOptions, KEY_NAME, OTHER_KEY_NAME, OTHER_SECRET};
use crate::{ZONE, converge, keys, plan_for, rs, staging};

fn every_type() -> Vec<cairn_dns::RecordSet> {
    let long = format!(
        "v=DKIM1; k=rsa; p={}",
        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA".repeat(8)
    );
    assert!(long.len() > 255);
    vec![
        rs("api", "A", 300, &["192.0.2.10", "192.0.2.11"]),
        rs("api", "AAAA", 300, &["2001:db8::10"]),
        rs("www", "CNAME", 300, &["api.cairn.test."]),
        rs(
            "@",
            "TXT",
            300,
            &["v=spf1 -all", "\"google-site-verification=abc\""],
        ),
        rs("dkim._domainkey", "TXT", 300, &[long.as_str()]),
        rs(
            "@",
            "MX",
            3600,
            &["10 mail.cairn.test.", "20 Mail2.Cairn.Test"],
        ),
        rs("_sip._tcp", "SRV", 300, &["10 5 5060 sip.cairn.test."]),
        rs(
            "@",
            "CAA",
            300,
            &[
                "0 issue \"letsencrypt.org\"",
                "0 iodef \"mailto:ops@cairn.test\"",
            ],
        ),
    ]
}

#[tokio::test]
async fn each_record_type_is_created_updated_and_deleted() {
    let bind = Bind::start();
    let b = Rfc2136Backend::new(bind.config());
    let desired = every_type();

    // create
    let (p, _) = converge(&b, &desired, &staging()).await;
    assert_eq!(p.changes.len(), desired.len());
    assert!(p.changes.iter().all(|c| c.kind == Action::Create));
    assert_eq!(
        bind.dig("api.cairn.test", "A"),
        ["192.0.2.10", "192.0.2.11"]
    );
    assert_eq!(
        bind.dig("cairn.test", "CAA"),
        [
            "0 iodef \"mailto:ops@cairn.test\"",
            "0 issue \"letsencrypt.org\""
        ]
    );
    let dkim = bind.dig("dkim._domainkey.cairn.test", "TXT");
    assert_eq!(dkim.len(), 1);
    assert!(
        dkim[0].starts_with("\"v=DKIM1; k=rsa; p=") && dkim[0].contains("\" \""),
        "split into strings: {dkim:?}"
    );
    assert_eq!(
        bind.dig("_cairn-owner.a.api.cairn.test", "TXT"),
        ["\"heritage=cairn,environment=staging,type=A\""]
    );

    // no change after apply
    let again = plan_for(&b, &desired, &staging()).await.unwrap();
    assert!(again.is_empty(), "second plan: {:?}", again.changes);
    assert_eq!(again.read_by, ReadMethod::Axfr);

    // update every record set (values and TTLs)
    let updated = vec![
        rs("api", "A", 60, &["192.0.2.12"]),
        rs("api", "AAAA", 300, &["2001:db8::10", "2001:DB8::11"]),
        rs("www", "CNAME", 300, &["api2.cairn.test"]),
        rs("@", "TXT", 300, &["v=spf1 include:_spf.cairn.test -all"]),
        rs("dkim._domainkey", "TXT", 300, &[&"x".repeat(600)]),
        rs("@", "MX", 3600, &["5 mail.cairn.test."]),
        rs("_sip._tcp", "SRV", 300, &["10 5 5061 sip.cairn.test."]),
        rs("@", "CAA", 300, &["0 issue \"pki.goog\""]),
    ];
    let (p, _) = converge(&b, &updated, &staging()).await;
    assert_eq!(p.changes.len(), 8);
    assert!(
        p.changes.iter().all(|c| c.kind == Action::Update),
        "{:?}",
        p.changes
    );
    assert_eq!(bind.dig("api.cairn.test", "A"), ["192.0.2.12"]);
    assert_eq!(bind.dig("www.cairn.test", "CNAME"), ["api2.cairn.test."]);
    assert!(plan_for(&b, &updated, &staging()).await.unwrap().is_empty());

    // delete them all (the zone is small, so the threshold is not in the way... but 8 of 10
    // is above it: this test is about deleting, so it raises the threshold)
    let mut opts = staging();
    opts.delete_threshold_percent = 100;
    let (p, _) = converge(&b, &[], &opts).await;
    assert_eq!(p.changes.len(), 8);
    assert!(p.changes.iter().all(|c| c.kind == Action::Delete));
    assert!(bind.dig("api.cairn.test", "A").is_empty());
    assert!(bind.dig("cairn.test", "MX").is_empty());
    let live = b.read_zone(&[]).await.unwrap();
    assert!(
        live.records
            .iter()
            .all(|r| !r.name.starts_with("_cairn-owner")),
        "ownership records left: {:?}",
        live.records
    );
    assert_eq!(
        bind.dig("ns1.cairn.test", "A"),
        ["127.0.0.1"],
        "the zone's own records stay"
    );
}

#[tokio::test]
async fn hmac_sha512_keys_work() {
    let bind = Bind::start_with(BindOptions {
        algorithm: TsigAlgorithm::HmacSha512,
        ..BindOptions::default()
    });
    let b = Rfc2136Backend::new(bind.config());
    let desired = [rs("api", "A", 300, &["192.0.2.1"])];
    converge(&b, &desired, &staging()).await;
    assert_eq!(bind.dig("api.cairn.test", "A"), ["192.0.2.1"]);
    assert!(plan_for(&b, &desired, &staging()).await.unwrap().is_empty());
}

#[tokio::test]
async fn foreign_records_are_never_deleted_or_changed() {
    let bind = Bind::start();
    bind.nsupdate("update add hand.cairn.test. 300 A 192.0.2.50\nupdate add hand.cairn.test. 300 TXT \"by hand\"");
    let b = Rfc2136Backend::new(bind.config());

    // cairn manages api; hand is foreign
    converge(&b, &[rs("api", "A", 300, &["192.0.2.1"])], &staging()).await;

    // declaring hand differently is a conflict, and nothing is sent
    let desired = [
        rs("api", "A", 300, &["192.0.2.1"]),
        rs("hand", "A", 300, &["192.0.2.99"]),
    ];
    let err = plan_for(&b, &desired, &staging()).await.unwrap_err();
    assert!(
        matches!(&err, DnsError::Conflicts { conflicts } if conflicts.len() == 1),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("hand.cairn.test A (not created by cairn)"),
        "{err}"
    );

    // another environment's record set is foreign too
    let prod = Rfc2136Backend::new(bind.config());
    let err = plan_for(
        &prod,
        &[rs("api", "A", 300, &["192.0.2.7"])],
        &cairn_dns::PlanOptions::owned_by("production"),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("owned by environment `staging`"),
        "{err}"
    );

    // no longer declaring anything deletes only what staging owns
    let (p, _) = converge(&b, &[], &staging()).await;
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].key.name, "api.cairn.test");
    assert_eq!(bind.dig("hand.cairn.test", "A"), ["192.0.2.50"]);
    assert_eq!(bind.dig("hand.cairn.test", "TXT"), ["\"by hand\""]);

    // declared identically: no change, and still not deleted afterwards
    let same = [rs("hand", "A", 300, &["192.0.2.50"])];
    assert!(plan_for(&b, &same, &staging()).await.unwrap().is_empty());
    assert!(plan_for(&b, &[], &staging()).await.unwrap().is_empty());

    // forced, cairn takes the record set over (and then owns it)
    let mut forced = staging();
    forced.force = true;
    let (p, _) = converge(&b, &desired[1..], &forced).await;
    assert!(
        p.changes[0].reason.contains("forced take-over"),
        "{:?}",
        p.changes
    );
    assert_eq!(bind.dig("hand.cairn.test", "A"), ["192.0.2.99"]);
    assert_eq!(
        bind.dig("hand.cairn.test", "TXT"),
        ["\"by hand\""],
        "the TXT beside it is still foreign"
    );
}

#[tokio::test]
async fn deleting_past_the_threshold_needs_force() {
    let bind = Bind::start();
    let b = Rfc2136Backend::new(bind.config());
    let desired: Vec<_> = (0..12)
        .map(|i| rs(&format!("h{i}"), "A", 300, &["192.0.2.1"]))
        .collect();
    converge(&b, &desired, &staging()).await;

    // 4 of 14 record sets (12 + NS + ns1) is 28%: allowed
    let (p, _) = converge(&b, &desired[4..], &staging()).await;
    assert_eq!(p.changes.len(), 4);

    // the remaining 8 of 10 is 80%: refused without force, with a distinct error
    let err = plan_for(&b, &[], &staging()).await.unwrap_err();
    let DnsError::DeleteThreshold {
        deletes,
        total,
        threshold_percent,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((*deletes, *total, *threshold_percent), (8, 10, 30));
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(bind.dig("h11.cairn.test", "A"), ["192.0.2.1"]);

    let mut forced = staging();
    forced.force = true;
    let (p, _) = converge(&b, &[], &forced).await;
    assert_eq!(p.changes.len(), 8);
    assert!(bind.dig("h11.cairn.test", "A").is_empty());
}

#[tokio::test]
async fn a_wrong_tsig_key_is_a_clear_error_and_nothing_is_done() {
    let bind = Bind::start();
    let good = Rfc2136Backend::new(bind.config());
    let desired = [rs("api", "A", 300, &["192.0.2.1"])];
    let p = plan_for(&good, &desired, &staging()).await.unwrap();

    let mut cfg = bind.config();
    cfg.key = b"not the right secret, not at all".to_vec();
    let wrong = Rfc2136Backend::new(cfg);
    let err = wrong.read_zone(&keys(&desired)).await.unwrap_err();
    assert!(matches!(err, DnsError::TsigRejected { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&bind.server()) && text.contains(KEY_NAME) && text.contains("BADSIG"),
        "{text}"
    );

    let err = wrong
        .apply_changes(&p, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DnsError::TsigRejected { .. }),
        "not reported as partly done: {err:?}"
    );
    assert!(bind.dig("api.cairn.test", "A").is_empty());

    // an unknown key name
    let mut cfg = bind.config();
    cfg.key_name = "nobody".into();
    let err = Rfc2136Backend::new(cfg)
        .apply_changes(&p, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, DnsError::TsigRejected { .. }), "{err:?}");
    assert!(err.to_string().contains("`nobody`"), "{err}");
    assert!(bind.dig("api.cairn.test", "A").is_empty());
}

#[tokio::test]
async fn a_key_the_zone_does_not_allow_is_refused() {
    let bind = Bind::start();
    let good = Rfc2136Backend::new(bind.config());
    let desired = [rs("api", "A", 300, &["192.0.2.1"])];
    let p = plan_for(&good, &desired, &staging()).await.unwrap();
    let mut cfg = bind.config();
    cfg.key_name = OTHER_KEY_NAME.into();
    cfg.key =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, OTHER_SECRET).unwrap();
    let other = Rfc2136Backend::new(cfg);
    let err = other
        .apply_changes(&p, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, DnsError::Refused { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("refused the update of api.cairn.test A"),
        "{err}"
    );
    assert!(bind.dig("api.cairn.test", "A").is_empty());
}

#[tokio::test]
async fn a_server_that_is_down_is_a_clear_error() {
    let mut bind = Bind::start();
    let b = Rfc2136Backend::new(bind.config()).with_request_timeout(Duration::from_secs(2));
    let desired = [rs("api", "A", 300, &["192.0.2.1"])];
    let p = plan_for(&b, &desired, &staging()).await.unwrap();
    bind.stop();
    let err = b.read_zone(&keys(&desired)).await.unwrap_err();
    assert!(matches!(err, DnsError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&bind.server()), "{err}");
    let err = b
        .apply_changes(&p, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DnsError::Unreachable { .. }),
        "nothing reported as done: {err:?}"
    );
}

#[tokio::test]
async fn a_refused_transfer_falls_back_to_queries() {
    let bind = Bind::start_with(BindOptions {
        allow_transfer: false,
        ..BindOptions::default()
    });
    let b = Rfc2136Backend::new(bind.config());
    let desired = every_type();
    let (p, _) = converge(&b, &desired, &staging()).await;
    assert_eq!(p.read_by, ReadMethod::Queries);
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("zone transfer of cairn.test was refused")),
        "{:?}",
        p.warnings
    );

    let live = b.read_zone(&keys(&desired)).await.unwrap();
    assert_eq!(live.read_by, ReadMethod::Queries);
    assert!(live.serial > 1);
    let own = ownership_name(&desired[0].key());
    assert!(
        live.records.iter().any(|r| r.name == own),
        "ownership records are read too"
    );
    let again = cairn_dns::plan(&desired, &live, &staging()).unwrap();
    assert!(again.is_empty(), "{:?}", again.changes);

    // updates work from a query read as well
    let changed = [rs("api", "A", 300, &["192.0.2.77"])];
    let (p, _) = converge(&b, &changed, &staging()).await;
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].kind, Action::Update);
    assert_eq!(bind.dig("api.cairn.test", "A"), ["192.0.2.77"]);
}

#[tokio::test]
async fn a_record_the_server_ignores_beside_a_cname_is_reported() {
    let bind = Bind::start();
    bind.nsupdate("update add www.cairn.test. 300 CNAME api.cairn.test.");
    let b = Rfc2136Backend::new(bind.config());
    let desired = [
        rs("api", "A", 300, &["192.0.2.1"]),
        rs("www", "A", 300, &["192.0.2.2"]),
    ];
    let p = plan_for(&b, &desired, &staging()).await.unwrap();
    assert_eq!(p.changes.len(), 2);
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("www.cairn.test A") && w.contains("CNAME")),
        "{:?}",
        p.warnings
    );

    let report = b
        .apply_changes(&p, Duration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(report.applied.len(), 1);
    assert_eq!(report.applied[0].key.name, "api.cairn.test");
    assert_eq!(report.ignored.len(), 1, "{report:?}");
    assert_eq!(report.ignored[0].change.key.to_string(), "www.cairn.test A");
    assert!(report.ignored[0].answered.is_empty());
    assert!(!report.is_complete());
    assert!(
        bind.dig("_cairn-owner.a.www.cairn.test", "TXT").is_empty(),
        "no ownership claim is left for what was ignored"
    );
    assert_eq!(
        bind.dig("www.cairn.test", "CNAME"),
        ["api.cairn.test."],
        "the foreign CNAME stays"
    );
}

#[tokio::test]
async fn a_record_set_changed_since_the_plan_is_not_overwritten() {
    let bind = Bind::start();
    let b = Rfc2136Backend::new(bind.config());
    let desired = [
        rs("api", "A", 300, &["192.0.2.1"]),
        rs("race", "A", 300, &["192.0.2.1"]),
    ];
    let p = plan_for(&b, &desired, &staging()).await.unwrap();
    // someone creates `race` between plan and apply
    bind.nsupdate("update add race.cairn.test. 300 A 192.0.2.66");
    let err = b
        .apply_changes(&p, Duration::from_secs(1))
        .await
        .unwrap_err();
    let DnsError::Partial { applied, source } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(applied.len(), 1, "api was applied before: {err}");
    assert!(
        matches!(**source, DnsError::ChangedSincePlan { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("race.cairn.test A changed"),
        "{err}"
    );
    assert_eq!(bind.dig("race.cairn.test", "A"), ["192.0.2.66"]);
    let _ = ZONE;
}
