//! DNS records, an ACME certificate and the Ingress that uses it, applied as one dependency
//! graph against real servers: BIND9 (RFC 2136 + TSIG), Pebble (ACME, DNS-01 validated against
//! that BIND9) and the Kubernetes API emulator.

use cairn_tests::TestCluster;

use crate::harness;

fn dig(bind: &harness::Bind, name: &str, rtype: &str) -> Vec<String> {
    bind.dig(name, rtype)
}

#[test]
fn records_then_certificate_then_ingress_against_bind_and_pebble() {
    let servers = harness::Servers::start(harness::PebbleOptions::default());
    let cluster = TestCluster::start(cairn_sandbox::SandboxConfig {
        pod_start_delay: std::time::Duration::from_millis(50),
        ..Default::default()
    });
    let script = format!(
        r#"
let env = environment("shop", #{{
    domain: "shop.{zone}",
    dns: rfc2136(#{{ server: "{server}", zone: "{zone}", key_name: "{key}", key: secret_env("TSIG_KEY") }}),
    acme: acme(#{{ directory: "{directory}", email: "ops@{zone}", ca_file: "{ca}" }}),
}});
env.namespace("shop", #{{}});
env.dns_a(["@", "api"], "127.0.0.1");
let tls = env.certificate("shop", [env.domain, "*." + env.domain]);
let web = env.deployment("web", #{{ image: "nginx:1.27", port: 80, ready: http_get("/", 80) }});
env.route("api.shop.{zone}", web, #{{ tls: tls }});
"#,
        zone = harness::ZONE,
        server = servers.bind.server(),
        key = harness::KEY_NAME,
        directory = servers.pebble.directory(),
        ca = servers.pebble.ca_file().display(),
    );
    let path = cluster.dir.join("shop.rhai");
    std::fs::write(&path, script).expect("script");
    let path = path.to_string_lossy().into_owned();
    let key = servers.bind.secret_b64();
    let vars = [("TSIG_KEY", key.as_str())];

    let out = cluster.cairn_with(&["plan", &path], &vars);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("+ Certificate/shop/shop"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("+ DnsRecord/example.test/api.shop.example.test A"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("Not planned yet"), "{}", out.stdout);

    let out = cluster.cairn_with(&["apply", &path, "--yes", "--timeout", "60"], &vars);
    assert_eq!(
        out.code,
        0,
        "{}\n{}\npebble:\n{}",
        out.stdout,
        out.stderr,
        servers.pebble.log()
    );
    let log = &out.stdout;
    let at = |needle: &str| {
        log.find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{log}"))
    };
    // A records → challenge → certificate → TLS Secret → Ingress.
    assert!(
        at("✓ DnsRecord/example.test/api.shop.example.test A") < at("+ Certificate/shop/shop …"),
        "{log}"
    );
    assert!(
        at("✓ Certificate/shop/shop") < at("+ Ingress/shop/api.shop.example.test …"),
        "{log}"
    );

    assert_eq!(
        dig(&servers.bind, "api.shop.example.test", "A"),
        vec!["127.0.0.1".to_owned()]
    );
    assert!(
        dig(&servers.bind, "_acme-challenge.shop.example.test", "TXT").is_empty(),
        "challenge records are removed"
    );
    let secret = cluster.runtime.block_on(async {
        let client = cairn_tests::kube_client(&cluster).await;
        let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
            kube::Api::namespaced(client, "shop");
        api.get("shop-tls").await.expect("the TLS Secret exists")
    });
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = secret.data.expect("data");
    assert!(data.contains_key("tls.crt") && data.contains_key("tls.key"));

    let out = cluster.cairn_with(&["plan", &path], &vars);
    assert_eq!(
        out.code, 0,
        "a second plan is empty:\n{}\n{}",
        out.stdout, out.stderr
    );
}
