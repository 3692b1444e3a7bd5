//! The isolation check on the staging render the reachability analysis was written against
//! (`testdata/netpol/environments/staging.yaml`, before the backup CronJobs had a policy): the
//! gap its author found is a `path-blocked` error naming both ends and the blocking policies;
//! a policy letting a denied namespace in is an `isolation-breach`; a malformed one is reported.

use std::path::Path as FsPath;

use cairn_model::{
    Code, DesiredState, Diagnostic, NetworkIntent, OutsidePath, Path, Resource, ResourceId, Value,
};
use cairn_plan::isolation;

fn value(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n.as_i64().map_or(Value::Null, Value::Int),
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(value).collect()),
        serde_json::Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), value(v))).collect())
        }
    }
}

fn resource(text: &str) -> Resource {
    let body = value(&serde_saphyr::from_str::<serde_json::Value>(text).expect("YAML"));
    let at = |path: &[&str]| {
        body.pointer(path)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let kind = at(&["kind"]).expect("kind");
    let name = at(&["metadata", "name"]).expect("name");
    Resource {
        id: ResourceId::kube(&kind, at(&["metadata", "namespace"]).as_deref(), &name),
        body,
        depends_on: Vec::new(),
        protected: false,
        span: None,
        field_spans: Default::default(),
    }
}

fn path(from: &str, to: &str, port: u16, protocol: &str) -> Path {
    Path {
        from: format!("staging/{from}"),
        to: to.to_owned(),
        port,
        protocol: protocol.to_owned(),
        why: format!("{from} uses it"),
        span: None,
    }
}

fn staging(paths: Vec<Path>) -> DesiredState {
    let file =
        FsPath::new(env!("CARGO_MANIFEST_DIR")).join("testdata/netpol/environments/staging.yaml");
    let text = std::fs::read_to_string(file).expect("staging.yaml");
    let mut state = DesiredState::default();
    state.environment.name = "staging".to_owned();
    state.environment.namespace = Some("staging".to_owned());
    for doc in text.split("\n---\n").skip(1) {
        state.resources.push(resource(doc));
    }
    state.network = NetworkIntent {
        paths,
        deny_namespaces: vec!["robson".to_owned()],
        isolate_span: None,
        ingress: ("kube-system".to_owned(), "traefik".to_owned()),
        outside: Vec::new(),
    };
    state.normalize();
    state
}

fn messages(diagnostics: &[Diagnostic], code: Code) -> Vec<String> {
    diagnostics
        .iter()
        .filter(|d| d.code == code)
        .map(|d| d.message.clone())
        .collect()
}

#[test]
fn the_backup_gap_is_a_blocked_path_naming_both_ends_and_the_policies() {
    let state = staging(vec![
        path("backend-staging", "staging/postgres-staging", 5432, "TCP"),
        path("backend-staging", "kube-system/kube-dns", 53, "UDP"),
        path(
            "postgres-staging-backup",
            "staging/postgres-staging",
            5432,
            "TCP",
        ),
        Path {
            from: "kube-system/traefik".to_owned(),
            ..path("x", "staging/backend-staging", 8000, "TCP")
        },
    ]);
    let out = cairn_plan::check(&state);
    assert_eq!(
        messages(&out, Code::PathBlocked),
        vec![
            "postgres-staging-backup cannot reach postgres-staging:5432 (postgres-staging-backup uses it): egress of postgres-staging-backup is blocked by staging/allow-dns, staging/allow-internet, staging/default-deny-all-egress"
        ],
        "{out:#?}"
    );
    let blocked = out
        .iter()
        .find(|d| d.code == Code::PathBlocked)
        .expect("one");
    assert!(blocked.is_error());
    assert!(
        blocked.help.as_deref().is_some_and(
            |h| h.contains("env.allow(postgres-staging-backup, postgres-staging, 5432)")
        ),
        "{blocked:?}"
    );
    assert!(messages(&out, Code::IsolationBreach).is_empty(), "{out:#?}");
    let iso = isolation::analyze(&state).expect("a namespace");
    assert_eq!(iso.paths.len(), 4);
    assert_eq!(
        isolation::denied_lines(&iso),
        vec!["staging ↛ robson, robson ↛ staging"]
    );
}

#[test]
fn a_policy_letting_a_denied_namespace_in_is_a_breach() {
    let mut state = staging(Vec::new());
    state.resources.push(resource(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: from-robson, namespace: staging}\nspec:\n  podSelector: {matchLabels: {app.kubernetes.io/name: backend-staging}}\n  policyTypes: [Ingress]\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: robson}}}]\n    ports: [{port: 8000}]\n",
    ));
    state.normalize();
    let out = cairn_plan::check(&state);
    assert_eq!(
        messages(&out, Code::IsolationBreach),
        vec![
            "robson/* can reach staging/backend-staging (TCP 8000), but the environment denies namespace `robson`"
        ],
        "{out:#?}"
    );
    let iso = isolation::analyze(&state).expect("a namespace");
    assert_eq!(
        isolation::denied_lines(&iso),
        vec!["staging ↛ robson, robson → (1 open) staging"]
    );
}

#[test]
fn a_malformed_policy_is_reported_and_the_rest_analyzed() {
    let mut state = staging(vec![path(
        "backend-staging",
        "staging/postgres-staging",
        5432,
        "TCP",
    )]);
    state.resources.push(resource(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: broken, namespace: staging}\nspec: {podSelector: {}, policyTypes: [Sideways]}\n",
    ));
    state.normalize();
    let out = cairn_plan::check(&state);
    assert_eq!(
        messages(&out, Code::MalformedNetworkPolicy),
        vec![
            "NetworkPolicy staging/broken: spec.policyTypes[0]: unknown policy type \"Sideways\" (Ingress or Egress)"
        ]
    );
    assert!(messages(&out, Code::PathBlocked).is_empty(), "{out:#?}");
}

fn outside(host: &str, address: Option<&str>, port: u16) -> OutsidePath {
    OutsidePath {
        from: "staging/backend-staging".to_owned(),
        host: host.to_owned(),
        address: address.map(str::to_owned),
        port,
        why: "scrape job `node`".to_owned(),
        span: None,
    }
}

#[test]
fn an_address_outside_the_cluster_is_held_to_the_egress_of_its_client() {
    // staging lets every pod out on 443 to 0.0.0.0/0 but the cluster's ranges.
    let mut state = staging(Vec::new());
    state.network.outside = vec![
        outside("203.0.113.7", Some("203.0.113.7"), 443),
        outside("203.0.113.7", Some("203.0.113.7"), 9100),
        outside("10.42.0.9", Some("10.42.0.9"), 443),
        outside("logs.example.com", None, 443),
        outside("node.example.com", None, 9100),
    ];
    let out = cairn_plan::check(&state);
    assert_eq!(
        messages(&out, Code::PathBlocked),
        vec![
            "backend-staging cannot reach 203.0.113.7:9100 (scrape job `node`): egress of backend-staging is blocked by staging/allow-backend-staging-to-deps, staging/allow-dns, staging/allow-internet, staging/default-deny-all-egress",
            "backend-staging cannot reach 10.42.0.9:443 (scrape job `node`): egress of backend-staging is blocked by staging/allow-backend-staging-to-deps, staging/allow-dns, staging/allow-internet, staging/default-deny-all-egress",
        ],
        "{out:#?}"
    );
    let unproven: Vec<&Diagnostic> = out
        .iter()
        .filter(|d| d.code == Code::PathUnproven)
        .collect();
    assert_eq!(unproven.len(), 1, "{out:#?}");
    assert!(!unproven[0].is_error());
    assert!(
        unproven[0]
            .message
            .starts_with("backend-staging may not reach node.example.com:9100"),
        "{}",
        unproven[0].message
    );
    assert!(
        unproven[0]
            .help
            .as_deref()
            .is_some_and(|h| h.contains("allow_egress_ports: [9100]")),
        "{:?}",
        unproven[0].help
    );
    // The addresses are peers of the matrix, each once.
    let iso = isolation::analyze(&state).expect("a namespace");
    let peers = iso.reach.peers();
    assert_eq!(peers.iter().filter(|p| *p == "203.0.113.7").count(), 1);
    assert_eq!(iso.outside.len(), 5);
}
