//! The manual provider, with BIND9 playing the registrar's nameserver and `nsupdate` playing
//! the user who types the records into the registrar's form.

use cairn_plan::plan::Action;
use std::time::Duration;

use cairn_dns::{
    DnsBackend, DnsError, ManualBackend, ManualConfig, PlanOptions, manual_instructions,
};

use crate::harness::Bind;
use crate::{ZONE, plan_for, rs};

fn manual() -> PlanOptions {
    PlanOptions {
        owner: None,
        delete_threshold_percent: 30,
        force: false,
    }
}

#[tokio::test]
async fn manual_zone_says_what_to_create_and_waits_for_it() {
    let bind = Bind::start();
    bind.nsupdate("update add old.cairn.test. 300 A 192.0.2.1");
    let b = ManualBackend::new(ManualConfig {
        zone: ZONE.into(),
        nameservers: vec![bind.server()],
    });
    let desired = [
        rs("api", "A", 300, &["192.0.2.10"]),
        rs("old", "A", 300, &["192.0.2.2"]),
    ];
    let p = plan_for(&b, &desired, &manual()).await.unwrap();
    assert_eq!(
        p.changes.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [Action::Update, Action::Create]
    );
    let steps = manual_instructions(&p);
    assert_eq!(
        steps,
        [
            "replace:\n  old.cairn.test. 300 IN A 192.0.2.1\nwith:\n  old.cairn.test. 300 IN A 192.0.2.2",
            "create:\n  api.cairn.test. 300 IN A 192.0.2.10",
        ]
    );

    // nobody acts: a timeout that says what is missing
    let err = b
        .apply_changes(&p, Duration::from_millis(300))
        .await
        .unwrap_err();
    let DnsError::NotPropagated { missing, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(missing.len(), 2, "{err}");
    assert!(err.to_string().contains("has no api.cairn.test A"), "{err}");

    // the user creates the records while cairn waits
    let waiting = b.apply_changes(&p, Duration::from_secs(10));
    let acting = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        bind.nsupdate(
            "update delete old.cairn.test. A\nupdate add old.cairn.test. 300 A 192.0.2.2\nupdate add api.cairn.test. 300 A 192.0.2.10",
        );
    };
    let (report, ()) = tokio::join!(waiting, acting);
    let report = report.unwrap();
    assert_eq!(report.applied.len(), 2);
    assert_eq!(report.instructions, steps);
    assert!(plan_for(&b, &desired, &manual()).await.unwrap().is_empty());
}

#[tokio::test]
async fn sandbox_zone_behaves_like_the_server() {
    let settings = cairn_dns::DnsSettings::Manual(ManualConfig {
        zone: ZONE.into(),
        nameservers: vec![],
    });
    let z = cairn_dns::Backend::from_settings(&settings, true).unwrap();
    assert_eq!(z.describe(), "zone cairn.test (in-memory sandbox zone)");
    let desired = [
        rs("api", "A", 300, &["192.0.2.1"]),
        rs("@", "MX", 300, &["10 mail.cairn.test."]),
    ];
    let p = plan_for(&z, &desired, &crate::staging()).await.unwrap();
    let report = z.apply_changes(&p, Duration::from_secs(1)).await.unwrap();
    assert_eq!(report.applied.len(), 2);
    assert!(
        plan_for(&z, &desired, &crate::staging())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(p.read_by, cairn_dns::ReadMethod::InMemory);
}
