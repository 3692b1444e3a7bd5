//! The reachability analysis held to the Kubernetes network-policy e2e suite
//! (kubernetes/kubernetes `test/e2e/network/netpol/network_policy.go`): each file of
//! `testdata/netpol/` is one e2e test — its pods (namespaces x, y, z; pods labelled
//! `pod=NAME`, one container port `serve-PORT-PROTOCOL` per port and protocol), the policies
//! of each step, and the truth table the test expects for each probe. The suite ignores a
//! pod's connections to itself (`ignoreLoopback`: network plugins differ there); the analysis
//! evaluates them as any other pair and they are compared too: the tables' loopback cells
//! follow from the same Expect calls.

use std::collections::BTreeMap;
use std::path::Path;

use cairn_model::Value;
use cairn_plan::reach::{Cidr, Inputs, Labels, Peer, Policy, Protocol};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    name: String,
    source: String,
    pods: Vec<String>,
    ports: Vec<u16>,
    protocols: Vec<String>,
    #[serde(default)]
    ips: BTreeMap<String, String>,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
struct Step {
    #[serde(default)]
    what: Option<String>,
    #[serde(default)]
    namespace_labels: BTreeMap<String, Labels>,
    #[serde(default)]
    pod_labels: BTreeMap<String, Labels>,
    policies: Vec<serde_json::Value>,
    probes: Vec<Probe>,
}

#[derive(Deserialize)]
struct Probe {
    port: u16,
    protocol: String,
    expect: String,
}

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

fn protocol(s: &str) -> Protocol {
    Protocol::parse(s).unwrap_or_else(|| panic!("protocol {s}"))
}

/// The e2e model: namespaces x, y, z; the case's pods with their labels, ports and addresses.
fn pods(case: &Case) -> (BTreeMap<String, Labels>, Vec<Peer>) {
    let namespaces = ["x", "y", "z"]
        .map(|n| (n.to_owned(), Labels::new()))
        .into_iter()
        .collect();
    let peers = case
        .pods
        .iter()
        .map(|id| {
            let (ns, name) = id.split_once('/').expect("ns/pod");
            let labels = Labels::from([("pod".to_owned(), name.to_owned())]);
            let mut peer = Peer::workload(ns, name, "Pod", labels);
            for port in &case.ports {
                for p in &case.protocols {
                    let port_name = format!("serve-{port}-{}", p.to_lowercase());
                    peer = peer.with_port(Some(&port_name), *port, protocol(p));
                }
            }
            peer.address = case
                .ips
                .get(id)
                .map(|ip| Cidr::parse(ip, true).expect("pod address"));
            peer
        })
        .collect();
    (namespaces, peers)
}

fn grid(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// The cells that differ.
fn differences(expected: &str, actual: &str) -> Vec<String> {
    let (e, a) = (grid(expected), grid(actual));
    assert_eq!(e.first(), a.first(), "the same peers, in the same order");
    let mut out = Vec::new();
    for (row_e, row_a) in e.iter().zip(&a).skip(1) {
        for (j, (ce, ca)) in row_e.iter().zip(row_a).enumerate().skip(1) {
            if ce != ca {
                out.push(format!(
                    "{} -> {}: expected {ce}, got {ca}",
                    row_e[0], e[0][j]
                ));
            }
        }
    }
    out
}

fn run(case: &Case) -> Vec<String> {
    let (mut namespaces, mut peers) = pods(case);
    let mut failures = Vec::new();
    for (i, step) in case.steps.iter().enumerate() {
        for (ns, labels) in &step.namespace_labels {
            namespaces
                .entry(ns.clone())
                .or_default()
                .extend(labels.clone());
        }
        for (id, labels) in &step.pod_labels {
            let peer = peers.iter_mut().find(|p| &p.id() == id).expect("pod");
            peer.labels.extend(labels.clone());
        }
        let mut inputs = Inputs::new();
        for (ns, labels) in &namespaces {
            inputs.add_namespace(ns, labels.clone());
        }
        for p in &peers {
            inputs.add_peer(p.clone());
        }
        for p in &step.policies {
            let policy = Policy::from_value(&value(p), None)
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            inputs.add_policy(policy);
        }
        let reach = inputs.analyze();
        for probe in &step.probes {
            let actual = reach.truth_table(probe.port, protocol(&probe.protocol));
            for d in differences(&probe.expect, &actual) {
                failures.push(format!(
                    "{} [step {} {}] {} {}: {d}\nexpected:\n{}actual:\n{actual}",
                    case.name,
                    i + 1,
                    step.what.as_deref().unwrap_or(""),
                    probe.protocol,
                    probe.port,
                    probe.expect
                ));
            }
        }
    }
    failures
}

#[test]
fn the_e2e_suite_truth_tables_hold() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/netpol");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata/netpol")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let (mut cases, mut probes, mut failures) = (0, 0, Vec::new());
    for file in &files {
        let text = std::fs::read_to_string(file).expect("case file");
        let case: Case =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            case.source.contains("test/e2e/network/netpol") || case.source.starts_with("cairn"),
            "{}: cite the source",
            file.display()
        );
        cases += 1;
        probes += case.steps.iter().map(|s| s.probes.len()).sum::<usize>();
        failures.extend(run(&case));
    }
    assert!(cases >= 30, "{cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {probes} probes in {cases} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
