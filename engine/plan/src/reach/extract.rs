//! The analysis' inputs from a desired state, and the peers outside it that matter.

use cairn_model::{DesiredState, Resource, Value};

use super::eval::Inputs;
use super::model::{Cidr, ContainerPort, Labels, Namespace, Peer, Protocol};
use super::policy::{Policy, Problem, ReachError};

/// The pod template of a workload, by kind, and the path to it.
fn pod_template(r: &Resource) -> Option<(&'static str, &Value)> {
    let (path, at): (&[&str], &str) = match r.id.kind.as_str() {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            (&["spec", "template"], "spec.template.")
        }
        "CronJob" => (
            &["spec", "jobTemplate", "spec", "template"],
            "spec.jobTemplate.spec.template.",
        ),
        "Pod" => return Some(("", &r.body)),
        _ => return None,
    };
    r.body.pointer(path).map(|t| (at, t))
}

fn object_name(r: &Resource) -> String {
    match &r.id.scope {
        Some(ns) => format!("{} {ns}/{}", r.id.kind, r.id.name),
        None => format!("{} {}", r.id.kind, r.id.name),
    }
}

fn err(r: &Resource, field: String, problem: Problem) -> ReachError {
    ReachError {
        object: object_name(r),
        field,
        problem,
    }
}

/// String labels at `path`; other values (a sensitive one too) are an error naming the key.
fn labels_at(r: &Resource, v: &Value, path: &str) -> Result<Labels, ReachError> {
    let mut out = Labels::new();
    let Some(map) = v.as_object() else {
        return Ok(out);
    };
    for (k, v) in map {
        let s = v
            .as_str()
            .ok_or_else(|| err(r, format!("{path}.{k}"), Problem::Expected("a string")))?;
        out.insert(k.clone(), s.to_owned());
    }
    Ok(out)
}

fn items<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = (usize, &'a Value)> {
    v.get(key)
        .map(Value::as_array)
        .unwrap_or_default()
        .iter()
        .enumerate()
}

fn container_ports(
    r: &Resource,
    spec: &Value,
    prefix: &str,
) -> Result<Vec<ContainerPort>, ReachError> {
    let mut out = Vec::new();
    for (i, c) in items(spec, "containers") {
        for (j, p) in items(c, "ports") {
            out.push(container_port(
                r,
                p,
                &format!("{prefix}.containers[{i}].ports[{j}]"),
            )?);
        }
    }
    Ok(out)
}

fn container_port(r: &Resource, p: &Value, field: &str) -> Result<ContainerPort, ReachError> {
    let number = p
        .get("containerPort")
        .and_then(Value::as_int)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            let field = format!("{field}.containerPort");
            err(r, field, Problem::Expected("a port number"))
        })?;
    let protocol = match p.get("protocol").and_then(Value::as_str) {
        None => Protocol::Tcp,
        Some(s) => Protocol::parse(s).ok_or_else(|| {
            let field = format!("{field}.protocol");
            err(r, field, Problem::Protocol(s.to_owned()))
        })?,
    };
    Ok(ContainerPort {
        name: p.get("name").and_then(Value::as_str).map(str::to_owned),
        number,
        protocol,
    })
}

fn workload(r: &Resource, at: &str, template: &Value) -> Result<Peer, ReachError> {
    let ns = r.id.scope.as_deref().unwrap_or("default");
    let meta_labels = template
        .pointer(&["metadata", "labels"])
        .unwrap_or(&Value::Null);
    let labels = labels_at(r, meta_labels, &format!("{at}metadata.labels"))?;
    let mut peer = Peer::workload(ns, &r.id.name, &r.id.kind, labels);
    let spec = template.get("spec").unwrap_or(&Value::Null);
    peer.ports = container_ports(r, spec, &format!("{at}spec"))?;
    Ok(peer)
}

impl Inputs {
    /// The namespaces (with their labels), workloads (their pod templates' labels and
    /// container ports) and NetworkPolicies of a desired state, in its order. A malformed
    /// policy or workload is left out and returned as an error: the API server would refuse
    /// it, and the checks report it.
    pub fn from_state(state: &DesiredState) -> (Inputs, Vec<ReachError>) {
        let mut inputs = Inputs::new();
        let mut errors = Vec::new();
        for r in state.kube_objects() {
            match r.id.kind.as_str() {
                "Namespace" => {
                    match labels_at(
                        r,
                        r.body
                            .pointer(&["metadata", "labels"])
                            .unwrap_or(&Value::Null),
                        "metadata.labels",
                    ) {
                        Ok(labels) => {
                            inputs.add_namespace(&r.id.name, labels);
                        }
                        Err(e) => errors.push(e),
                    }
                }
                "NetworkPolicy" => match Policy::from_value(&r.body, r.id.scope.as_deref()) {
                    Ok(p) => {
                        inputs.add_policy(p);
                    }
                    Err(e) => errors.push(e),
                },
                _ => {
                    if let Some((at, template)) = pod_template(r) {
                        match workload(r, at, template) {
                            Ok(p) => {
                                inputs.add_peer(p);
                            }
                            Err(e) => errors.push(e),
                        }
                    }
                }
            }
        }
        (inputs, errors)
    }

    /// Adds peers that live outside the desired state (another environment's workloads, the
    /// ingress controller, kube-dns, the internet) and their namespaces' labels (a namespace
    /// not given gets only its name label).
    pub fn with_outside(
        mut self,
        namespaces: impl IntoIterator<Item = Namespace>,
        peers: impl IntoIterator<Item = Peer>,
    ) -> Self {
        for ns in namespaces {
            self.add_namespace(&ns.name, ns.labels);
        }
        for p in peers {
            self.add_peer(p);
        }
        self
    }
}

/// kube-dns (CoreDNS) in `kube-system`: `k8s-app=kube-dns`, ports `dns` 53/UDP and
/// `dns-tcp` 53/TCP.
pub fn kube_dns() -> Peer {
    Peer::workload(
        "kube-system",
        "kube-dns",
        "Deployment",
        Labels::from([("k8s-app".to_owned(), "kube-dns".to_owned())]),
    )
    .with_port(Some("dns"), 53, Protocol::Udp)
    .with_port(Some("dns-tcp"), 53, Protocol::Tcp)
}

/// An ingress controller in `namespace` (`kube-system` for k3s' Traefik, `ingress-nginx`),
/// labelled `app.kubernetes.io/name=NAME`: the source of the traffic routed to workloads.
pub fn ingress_controller(namespace: &str, name: &str) -> Peer {
    Peer::workload(
        namespace,
        name,
        "Deployment",
        Labels::from([("app.kubernetes.io/name".to_owned(), name.to_owned())]),
    )
}

/// An address outside the cluster, by name (`internet` → a public address such as
/// `1.1.1.1`).
pub fn external(name: &str, address: &str) -> Option<Peer> {
    Cidr::parse(address, true).map(|a| Peer::external(name, a))
}
