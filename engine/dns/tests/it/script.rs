//! End to end from a script: the records and settings `cairn-stdlib` declares, applied to
//! BIND9 with the key from the (injected) CI environment.

use std::time::Duration;

use cairn_dns::{DnsBackend, DnsSettings, Rfc2136Backend, desired_records, plan};
use cairn_stdlib::{EvalOptions, evaluate};

use crate::harness::Bind;
use crate::{keys, staging};

#[tokio::test]
async fn records_declared_by_a_script_are_applied_and_stay_applied() {
    let bind = Bind::start();
    let script = format!(
        r#"
let env = environment("staging", #{{
    domain: "staging.cairn.test",
    dns: rfc2136(#{{ server: "{server}", zone: "cairn.test", key_name: "cairn-key", key: secret_env("TSIG_KEY") }}),
}});
env.dns_a(["@", "api"], "192.0.2.10");
env.dns_aaaa("api", "2001:db8::10");
env.dns_cname("www", "staging.cairn.test.");
env.dns_txt("@", "v=spf1 -all");
env.dns_record(#{{ name: "@", type: "MX", values: ["10 mail.cairn.test."], ttl: 3600 }});
env.dns_record(#{{ name: "_sip._tcp", type: "SRV", values: ["10 5 5060 sip.cairn.test."], ttl: 300 }});
env.dns_record(#{{ name: "@", type: "CAA", values: ["0 issue \"letsencrypt.org\""], ttl: 300 }});
"#,
        server = bind.server()
    );
    let mut options = EvalOptions::default();
    options.vars.insert("TSIG_KEY".into(), bind.secret_b64());
    let eval = evaluate("staging.rhai", &script, &[], &options);
    assert!(!eval.has_errors(), "{:?}", eval.diagnostics);

    let settings = DnsSettings::from_settings(&eval.state.environment.providers["dns"]).unwrap();
    let DnsSettings::Rfc2136(cfg) = &settings else {
        panic!("{settings:?}")
    };
    assert_eq!(cfg.key, bind.secret);
    let desired = desired_records(&eval.state.resources, settings.zone()).unwrap();
    assert_eq!(desired.len(), 8, "{desired:?}");

    let b = Rfc2136Backend::new(cfg.clone());
    let live = b.read_zone(&keys(&desired)).await.unwrap();
    let p = plan(&desired, &live, &staging()).unwrap();
    assert_eq!(p.changes.len(), 8);
    let report = b.apply_changes(&p, Duration::from_secs(5)).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(
        bind.dig("www.staging.cairn.test", "CNAME"),
        ["staging.cairn.test."]
    );
    assert_eq!(
        bind.dig("staging.cairn.test", "MX"),
        ["10 mail.cairn.test."]
    );

    let live = b.read_zone(&keys(&desired)).await.unwrap();
    assert!(plan(&desired, &live, &staging()).unwrap().is_empty());
}
