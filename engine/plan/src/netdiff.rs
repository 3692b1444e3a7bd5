//! The plan's Network section: who can reach whom before the apply (the live namespaces,
//! NetworkPolicies and pod templates the plan read) against after it (the desired state), both
//! analyzed by [`crate::isolation::analyze`] with the same peers outside (kube-dns, the
//! ingress controller, the internet, a pod in each denied namespace). Each pair whose allowed
//! ports differ is a connection that opens or closes; one that enters or leaves a denied
//! namespace says so. Nothing when reachability does not change.

use cairn_model::{DesiredState, Resource, ResourceId, Value};

use crate::isolation::{self, Isolation};
use crate::plan::{PathAction, PathChange};
use crate::reach::PortSet;

/// Kinds whose live objects the analysis reads.
const NETWORK_KINDS: &[&str] = &[
    "Namespace",
    "NetworkPolicy",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Pod",
];

/// A JSON value as a model value (plain strings: only labels, selectors and ports are read).
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

/// What the analysis needs of a live object, and nothing else (no environment variable, no
/// Secret data): a namespace's or policy's whole body less status; a workload's pod template
/// labels and container ports.
fn network_body(kind: &str, live: &serde_json::Value) -> Option<Value> {
    match kind {
        "Namespace" => Some(serde_json::json!({ "metadata": { "labels": live.pointer("/metadata/labels") } })),
        "NetworkPolicy" => Some(serde_json::json!({ "metadata": live.get("metadata"), "spec": live.get("spec") })),
        _ => {
            let at = match kind {
                "CronJob" => "/spec/jobTemplate/spec/template",
                "Pod" => "",
                _ => "/spec/template",
            };
            let template = live.pointer(at)?;
            let containers: Vec<serde_json::Value> = template
                .pointer("/spec/containers")
                .and_then(serde_json::Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .map(|c| serde_json::json!({ "ports": c.get("ports").cloned().unwrap_or_default() }))
                        .collect()
                })
                .unwrap_or_default();
            let pod = serde_json::json!({
                "metadata": { "labels": template.pointer("/metadata/labels") },
                "spec": { "containers": containers },
            });
            Some(match kind {
                "CronJob" => serde_json::json!({ "spec": { "jobTemplate": { "spec": { "template": pod } } } }),
                "Pod" => pod,
                _ => serde_json::json!({ "spec": { "template": pod } }),
            })
        }
    }
    .map(|j| value(&j))
}

/// The desired state with its Kubernetes objects replaced by the live ones that bear on the
/// network: what reaches what before the apply.
pub fn live_state<'a>(
    desired: &DesiredState,
    live: impl IntoIterator<Item = (&'a ResourceId, &'a serde_json::Value)>,
) -> DesiredState {
    let mut state = desired.clone();
    state.resources = live
        .into_iter()
        .filter(|(id, _)| NETWORK_KINDS.contains(&id.kind.as_str()))
        .filter_map(|(id, obj)| {
            Some(Resource {
                id: id.clone(),
                body: network_body(&id.kind, obj)?,
                depends_on: Vec::new(),
                protected: false,
                span: None,
                field_spans: Default::default(),
            })
        })
        .collect();
    state.network.deny_namespaces = denied_by(&state);
    state.normalize();
    state
}

/// The namespaces the `block-*` isolation policies of a state keep out (the `NotIn` values of
/// their namespace selectors): the live side's denied namespaces.
fn denied_by(state: &DesiredState) -> Vec<String> {
    let mut out: Vec<String> = state
        .kube_objects()
        .filter(|r| r.id.kind == "NetworkPolicy" && r.id.name.starts_with("block-"))
        .flat_map(|r| {
            r.body
                .pointer(&["spec", "ingress"])
                .map(Value::as_array)
                .unwrap_or_default()
        })
        .flat_map(|rule| rule.get("from").map(Value::as_array).unwrap_or_default())
        .filter_map(|peer| peer.pointer(&["namespaceSelector", "matchExpressions"]))
        .flat_map(Value::as_array)
        .filter(|e| e.get("operator").and_then(Value::as_str) == Some("NotIn"))
        .flat_map(|e| e.get("values").map(Value::as_array).unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The connections that open and close from `before` (the live state) to `after` (the
/// desired one), for pairs with an end in the environment's namespace: in the matrix's order,
/// each pair's opening before its closing.
pub fn changes(after: &DesiredState, before: &DesiredState) -> Vec<PathChange> {
    // The namespaces denied before or after, on both sides: a connection to one that the
    // script no longer denies is flagged too.
    let mut denied = after.network.deny_namespaces.clone();
    denied.extend(before.network.deny_namespaces.iter().cloned());
    denied.sort();
    denied.dedup();
    let with_denied = |s: &DesiredState| {
        let mut s = s.clone();
        s.network.deny_namespaces.clone_from(&denied);
        s
    };
    let (after, before) = (with_denied(after), with_denied(before));
    let (Some(a), Some(b)) = (isolation::analyze(&after), isolation::analyze(&before)) else {
        return Vec::new();
    };
    let mut peers: Vec<&str> = a.reach.peers().iter().map(String::as_str).collect();
    for p in b.reach.peers() {
        if !peers.contains(&p.as_str()) {
            peers.push(p);
        }
    }
    let own = format!("{}/", a.namespace);
    let mut out = Vec::new();
    for from in &peers {
        for to in &peers {
            if !from.starts_with(&own) && !to.starts_with(&own) {
                continue;
            }
            let (now, then) = (allowed(&a, from, to), allowed(&b, from, to));
            let crosses = crossing(&a, from, to);
            for (action, ports) in [
                (PathAction::Open, now.minus(&then)),
                (PathAction::Close, then.minus(&now)),
            ] {
                if !ports.is_empty() {
                    out.push(PathChange {
                        action,
                        from: (*from).to_owned(),
                        to: (*to).to_owned(),
                        ports: ports.to_string(),
                        crosses: crosses.clone(),
                    });
                }
            }
        }
    }
    out
}

fn allowed(iso: &Isolation, from: &str, to: &str) -> PortSet {
    iso.reach
        .pair(from, to)
        .map_or_else(PortSet::none, |p| p.allowed.clone())
}

/// The denied namespace a connection enters or leaves.
fn crossing(iso: &Isolation, from: &str, to: &str) -> Option<String> {
    iso.denied
        .iter()
        .find(|d| {
            let prefix = format!("{d}/");
            from.starts_with(&prefix) || to.starts_with(&prefix)
        })
        .cloned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_live_workload_keeps_only_its_pod_labels_and_ports() {
        let live = serde_json::json!({
            "metadata": { "name": "api", "namespace": "staging", "labels": { "a": "b" } },
            "spec": { "replicas": 2, "template": {
                "metadata": { "labels": { "app.kubernetes.io/name": "api" } },
                "spec": { "containers": [{ "name": "api", "image": "x:1",
                    "env": [{ "name": "TOKEN", "value": "not-for-the-analysis" }],
                    "ports": [{ "containerPort": 8000, "protocol": "TCP" }] }] } } },
            "status": { "readyReplicas": 2 },
        });
        let body = network_body("Deployment", &live).unwrap().to_json();
        assert_eq!(
            body,
            serde_json::json!({ "spec": { "template": {
                "metadata": { "labels": { "app.kubernetes.io/name": "api" } },
                "spec": { "containers": [{ "ports": [{ "containerPort": 8000, "protocol": "TCP" }] }] } } } })
        );
        // Secrets and ConfigMaps are never read.
        assert!(!NETWORK_KINDS.contains(&"Secret") && !NETWORK_KINDS.contains(&"ConfigMap"));
    }

    #[test]
    fn the_denied_namespaces_of_the_live_side_come_from_its_block_policies() {
        let mut state = DesiredState::default();
        state.environment.namespace = Some("staging".to_owned());
        let id = ResourceId::kube("NetworkPolicy", Some("staging"), "block-production");
        let live = serde_json::json!({
            "metadata": { "name": "block-production", "namespace": "staging" },
            "spec": { "podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{ "from": [{
                "namespaceSelector": { "matchExpressions": [{ "key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["production", "robson"] }] } }] }] },
        });
        let state = live_state(&state, [(&id, &live)]);
        assert_eq!(state.network.deny_namespaces, ["production", "robson"]);
        assert_eq!(state.resources.len(), 1);
    }
}
