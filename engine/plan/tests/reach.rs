//! The reachability analysis on a real rendered environment, on the peers outside it, and on
//! malformed policies.

use std::path::Path;

use cairn_model::{DesiredState, Resource, ResourceId, Sensitive, SensitivePart, Value};
use cairn_plan::reach::{
    Inputs, Labels, Namespace, Peer, Policy, Problem, Protocol, Verdict, explain, external,
    ingress_controller, kube_dns,
};

fn value(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map_or_else(|| Value::Float(n.as_f64().unwrap_or_default()), Value::Int),
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(value).collect()),
        serde_json::Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), value(v))).collect())
        }
    }
}

fn yaml(text: &str) -> Value {
    value(&serde_saphyr::from_str::<serde_json::Value>(text).expect("YAML"))
}

fn resource(body: Value) -> Resource {
    let kind = body.get("kind").and_then(Value::as_str).expect("kind");
    let ns = body
        .pointer(&["metadata", "namespace"])
        .and_then(Value::as_str);
    let name = body
        .pointer(&["metadata", "name"])
        .and_then(Value::as_str)
        .expect("name");
    Resource {
        id: ResourceId::kube(kind, ns, name),
        body: body.clone(),
        depends_on: Vec::new(),
        protected: false,
        span: None,
        field_spans: Default::default(),
    }
}

/// The Namespace, NetworkPolicies and workloads `cairn render staging` gives.
fn staging() -> DesiredState {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/netpol/environments/staging.yaml");
    let text = std::fs::read_to_string(path).expect("staging.yaml");
    let mut state = DesiredState::default();
    for doc in text.split("\n---\n").skip(1) {
        state.resources.push(resource(yaml(doc)));
    }
    state.normalize();
    state
}

/// Staging with what lives around it: kube-dns, Traefik in kube-system, the internet, a
/// production backend, and a pod in the denied `robson` namespace that claims to be staging.
fn staging_and_around() -> Inputs {
    let (inputs, errors) = Inputs::from_state(&staging());
    assert_eq!(errors, vec![]);
    let env = |e: &str| Labels::from([("cairn.dev/environment".to_owned(), e.to_owned())]);
    inputs.with_outside(
        [Namespace::new("robson", env("robson"))],
        vec![
            kube_dns(),
            ingress_controller("kube-system", "traefik"),
            external("internet", "1.1.1.1").expect("address"),
            Peer::workload(
                "production",
                "backend-production",
                "Deployment",
                env("production"),
            ),
            Peer::workload("robson", "impostor", "Deployment", env("staging")),
        ],
    )
}

#[test]
fn staging_reaches_what_it_uses_and_nothing_else() {
    let reach = staging_and_around().analyze();
    let allowed = |from: &str, to: &str, port: u16, p: Protocol| {
        reach.verdict(from, to, port, p).expect("peers") == Verdict::Allowed
    };
    let tcp = Protocol::Tcp;
    assert!(allowed(
        "staging/backend-staging",
        "staging/postgres-staging",
        5432,
        tcp
    ));
    assert!(allowed(
        "kube-system/traefik",
        "staging/backend-staging",
        8000,
        tcp
    ));
    assert!(!allowed(
        "kube-system/traefik",
        "staging/backend-staging",
        8001,
        tcp
    ));
    assert!(allowed(
        "staging/backend-staging",
        "kube-system/kube-dns",
        53,
        Protocol::Udp
    ));
    assert!(allowed("staging/backend-staging", "internet", 443, tcp));
    assert!(!allowed("staging/backend-staging", "internet", 80, tcp));
    assert!(!allowed(
        "staging/backend-staging",
        "production/backend-production",
        8000,
        tcp
    ));
    assert_eq!(
        reach.verdict("robson/impostor", "staging/postgres-staging", 5432, tcp),
        Some(Verdict::Blocked {
            egress: None,
            ingress: Some(vec![
                "staging/block-robson".to_owned(),
                "staging/default-deny-all-ingress".to_owned()
            ]),
        })
    );
    insta::assert_snapshot!("staging-pairs", reach.describe());
    insta::assert_snapshot!("staging-5432-tcp", reach.truth_table(5432, tcp));
}

#[test]
fn policy_types_default_as_the_api_server_does() {
    let only_rules = yaml(
        "metadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  egress:\n  - ports: [{port: 53, protocol: UDP}]\n",
    );
    let p = Policy::from_value(&only_rules, None).expect("policy");
    assert_eq!(p.ingress, Some(vec![]), "Ingress is always implied");
    assert_eq!(
        p.egress.as_ref().map(Vec::len),
        Some(1),
        "Egress when egress rules exist"
    );
    let no_egress =
        yaml("metadata: {name: p, namespace: x}\nspec: {podSelector: {}, egress: []}\n");
    let p = Policy::from_value(&no_egress, None).expect("policy");
    assert_eq!((p.ingress.is_some(), p.egress.is_some()), (true, false));
    let types_win = yaml(
        "metadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  ingress: []\n",
    );
    let p = Policy::from_value(&types_win, None).expect("policy");
    assert_eq!((p.ingress.is_some(), p.egress.is_some()), (false, true));
}

fn two_pods(policies: &[&str]) -> Inputs {
    let mut inputs = Inputs::new();
    let labels = |n: &str| Labels::from([("pod".to_owned(), n.to_owned())]);
    inputs.add_peer(Peer::workload("x", "a", "Pod", labels("a")));
    inputs.add_peer(
        Peer::workload("x", "b", "Pod", labels("b"))
            .with_port(Some("http"), 8080, Protocol::Tcp)
            .with_port(Some("metrics"), 9090, Protocol::Tcp),
    );
    inputs.add_peer(external("outside", "203.0.113.0/24").expect("block"));
    for p in policies {
        inputs.add_policy(Policy::from_value(&yaml(p), None).expect("policy"));
    }
    inputs
}

#[test]
fn end_port_ranges_and_named_ports_open_what_they_name() {
    let reach = two_pods(&[
        "metadata: {name: range, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: b}}\n  ingress:\n  - ports: [{port: 8000, endPort: 8100}, {port: metrics}]\n",
        "metadata: {name: out, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - ports: [{port: http}]\n  - to: [{ipBlock: {cidr: 203.0.113.0/24, except: [203.0.113.128/25]}}]\n",
    ])
    .analyze();
    let pair = reach.pair("x/a", "x/b").expect("pair");
    assert_eq!(pair.ingress.allowed.to_string(), "TCP 8000-8100,9090");
    assert_eq!(pair.egress.allowed.to_string(), "TCP 8080");
    assert_eq!(pair.allowed.to_string(), "TCP 8080");
    assert_eq!(
        reach.verdict("x/a", "x/b", 9090, Protocol::Tcp),
        Some(Verdict::Blocked {
            egress: Some(vec!["x/out".to_owned()]),
            ingress: None
        })
    );
    // Part of the outside block is excepted, so the block as a whole is not reachable; a
    // named port never matches an address outside the cluster.
    assert_eq!(
        reach
            .pair("x/a", "outside")
            .expect("pair")
            .allowed
            .to_string(),
        "none"
    );
    insta::assert_snapshot!("two-pods", reach.describe());
}

#[test]
fn malformed_policies_are_errors_naming_the_field() {
    let cases: &[(&str, &str, Problem)] = &[
        (
            "spec: {podSelector: {}, policyTypes: [Sideways]}",
            "spec.policyTypes[0]",
            Problem::PolicyType("Sideways".into()),
        ),
        (
            "spec: {podSelector: {}, ingress: [{ports: [{port: 80, protocol: ICMP}]}]}",
            "spec.ingress[0].ports[0].protocol",
            Problem::Protocol("ICMP".into()),
        ),
        (
            "spec: {podSelector: {}, ingress: [{ports: [{port: 0}]}]}",
            "spec.ingress[0].ports[0].port",
            Problem::PortRange(0),
        ),
        (
            "spec: {podSelector: {}, ingress: [{ports: [{port: 70000}]}]}",
            "spec.ingress[0].ports[0].port",
            Problem::PortRange(70000),
        ),
        (
            "spec: {podSelector: {}, ingress: [{ports: [{port: 90, endPort: 80}]}]}",
            "spec.ingress[0].ports[0].endPort",
            Problem::EndBelowPort { port: 90, end: 80 },
        ),
        (
            "spec: {podSelector: {}, ingress: [{ports: [{port: http, endPort: 80}]}]}",
            "spec.ingress[0].ports[0].endPort",
            Problem::EndPortWithoutNumber,
        ),
        (
            "spec: {podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.0.0.0/33}}]}]}",
            "spec.egress[0].to[0].ipBlock.cidr",
            Problem::Cidr("10.0.0.0/33".into()),
        ),
        (
            "spec: {podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]}",
            "spec.egress[0].to[0]",
            Problem::Peer,
        ),
        (
            "spec: {podSelector: {}, egress: [{to: [{}]}]}",
            "spec.egress[0].to[0]",
            Problem::Peer,
        ),
        (
            "spec: {podSelector: {matchExpressions: [{key: k, operator: Near, values: [v]}]}}",
            "spec.podSelector.matchExpressions[0].operator",
            Problem::Operator("Near".into()),
        ),
        (
            "spec: {podSelector: {matchExpressions: [{key: k, operator: In}]}}",
            "spec.podSelector.matchExpressions[0].values",
            Problem::Values("In", "needs values"),
        ),
        (
            "spec: {podSelector: {matchExpressions: [{key: k, operator: Exists, values: [v]}]}}",
            "spec.podSelector.matchExpressions[0].values",
            Problem::Values("Exists", "takes no values"),
        ),
        (
            "spec: {podSelector: {matchLabels: {app: [web]}}}",
            "spec.podSelector.matchLabels.app",
            Problem::Expected("a string"),
        ),
        (
            "spec: {podSelector: {}, ingress: {from: []}}",
            "spec.ingress",
            Problem::Expected("a list"),
        ),
    ];
    let nameless = yaml("metadata: {namespace: x}\nspec: {podSelector: {}}\n");
    let err = Policy::from_value(&nameless, None).expect_err("nameless");
    assert_eq!(
        err.to_string(),
        "NetworkPolicy x/?: metadata.name: expected a name"
    );
    for (spec, field, problem) in cases {
        let body = yaml(&format!("metadata: {{name: bad, namespace: x}}\n{spec}\n"));
        let err = Policy::from_value(&body, None).expect_err(spec);
        assert_eq!(
            (err.field.as_str(), &err.problem),
            (*field, problem),
            "{spec}"
        );
        assert_eq!(err.object, "NetworkPolicy x/bad");
    }
}

#[test]
fn a_desired_state_with_a_malformed_object_reports_it_and_analyzes_the_rest() {
    let mut state = staging();
    let mut secret = Sensitive::default();
    secret.parts.push(SensitivePart::Env {
        var: "TOKEN".into(),
        value: "hunter2".into(),
    });
    let bad = yaml(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: staging}\nspec:\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web}]}\n",
    );
    let mut bad = resource(bad);
    if let Some(Value::Object(labels)) = bad
        .body
        .pointer(&["spec", "template", "metadata", "labels"])
        .cloned()
    {
        let mut labels = labels;
        labels.insert("token".into(), Value::Sensitive(secret));
        let mut template_meta = Value::object();
        template_meta.insert("labels", Value::Object(labels));
        let mut template = bad
            .body
            .pointer(&["spec", "template"])
            .cloned()
            .expect("template");
        template.insert("metadata", template_meta);
        let mut spec = bad.body.get("spec").cloned().expect("spec");
        spec.insert("template", template);
        bad.body.insert("spec", spec);
    }
    state.resources.push(bad);
    state.resources.push(resource(yaml(
        "kind: NetworkPolicy\nmetadata: {name: broken, namespace: staging}\nspec: {podSelector: {}, policyTypes: [Sideways]}\n",
    )));
    state.normalize();
    let (inputs, errors) = Inputs::from_state(&state);
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "NetworkPolicy staging/broken: spec.policyTypes[0]: unknown policy type \"Sideways\" (Ingress or Egress)",
            "Deployment staging/web: spec.template.metadata.labels.token: expected a string",
        ]
    );
    assert!(!format!("{errors:?}").contains("hunter2"));
    assert_eq!(inputs.policies().len(), 10);
    assert!(inputs.peers().iter().all(|p| p.name != "web"));
    assert!(inputs.namespaces().any(|n| {
        n.name == "staging"
            && n.labels
                .get("kubernetes.io/metadata.name")
                .map(String::as_str)
                == Some("staging")
    }));
}

#[test]
fn a_pair_whose_sides_open_different_ports_names_both() {
    let inputs = two_pods(&[
        "metadata: {name: in-8000, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: b}}\n  ingress: [{ports: [{port: 8000}]}]\n",
        "metadata: {name: out-9090, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress: [{ports: [{port: 9090}]}]\n",
    ]);
    let reach = inputs.analyze();
    let pair = reach.pair("x/a", "x/b").expect("pair");
    assert_eq!(
        explain("x/a", "x/b", pair),
        "blocked: egress of x/a allows TCP 9090 (x/out-9090), ingress of x/b allows TCP 8000 (x/in-8000)"
    );
    assert_eq!(
        pair.verdict(9090, Protocol::Tcp),
        Verdict::Blocked {
            egress: None,
            ingress: Some(vec!["x/in-8000".to_owned()])
        }
    );
    assert_eq!(
        reach.truth_table(8000, Protocol::Tcp),
        "-       x/a     x/b     outside\nx/a     X       X       X\nx/b     .       .       .\noutside .       .       .\n"
    );
}

#[test]
fn peers_of_one_name_are_told_apart_by_kind() {
    let mut inputs = Inputs::new();
    inputs.add_peer(Peer::workload("x", "web", "Deployment", Labels::new()));
    inputs.add_peer(Peer::workload("x", "web", "CronJob", Labels::new()));
    inputs.add_peer(Peer::workload("x", "db", "StatefulSet", Labels::new()));
    let reach = inputs.analyze();
    assert_eq!(
        reach.peers(),
        ["x/web (Deployment)", "x/web (CronJob)", "x/db"]
    );
    assert!(
        reach
            .pair("x/web (CronJob)", "x/db")
            .is_some_and(|p| p.allowed.is_all())
    );
}

#[test]
fn a_workload_port_that_is_no_number_is_an_error_at_its_path() {
    let mut state = DesiredState::default();
    state.resources.push(resource(yaml(
        "kind: CronJob\nmetadata: {name: report, namespace: x}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        metadata: {labels: {app: report}}\n        spec: {containers: [{name: r, ports: [{containerPort: http}]}]}\n",
    )));
    state.resources.push(resource(yaml(
        "kind: Deployment\nmetadata: {name: web, namespace: x}\nspec:\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: w, ports: [{containerPort: 53, protocol: udp}]}]}\n",
    )));
    state.normalize();
    let (inputs, errors) = Inputs::from_state(&state);
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "Deployment x/web: spec.template.spec.containers[0].ports[0].protocol: unknown protocol \"udp\" (TCP, UDP or SCTP)",
            "CronJob x/report: spec.jobTemplate.spec.template.spec.containers[0].ports[0].containerPort: expected a port number",
        ]
    );
    assert!(inputs.peers().is_empty());
}
