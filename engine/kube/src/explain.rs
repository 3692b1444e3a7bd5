//! Explaining why a workload is not ready: pod phases and waiting reasons, the last log lines
//! of a crash-looping container, the quota and the numbers when a ResourceQuota rejects pods.

use cairn_model::JsonPath as _;
use std::collections::{BTreeMap, BTreeSet};

use cairn_apply::Failure;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use serde_json::Value as J;

use crate::Cluster;

/// What is wrong with the pods `selector` matches, from a watch of the namespace's pods (no
/// request, but for the log of a crash-looping container). `fatal_only`: only what waiting
/// will not fix (a crash loop, an image that cannot be pulled), not a pod still unscheduled.
pub(crate) async fn watched_pod_problems(
    cluster: &Cluster,
    watches: &crate::watch::Watches,
    namespace: &str,
    selector: &str,
    fatal_only: bool,
) -> Option<Failure> {
    let feed = watches.pods(namespace)?;
    let wanted: Vec<(&str, &str)> = selector
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let pods: Vec<k8s_openapi::api::core::v1::Pod> = feed
        .matching(&wanted)
        .iter()
        .filter_map(|p| serde_json::from_value((**p).clone()).ok())
        .collect();
    let api = Api::namespaced(cluster.client.clone(), namespace);
    explain_pods(&api, &pods, fatal_only).await
}

async fn explain_pods(
    api: &Api<k8s_openapi::api::core::v1::Pod>,
    pods: &[k8s_openapi::api::core::v1::Pod],
    fatal_only: bool,
) -> Option<Failure> {
    let mut found = Findings::default();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Unknown".to_owned());
        found.scheduling(pod, &name, &phase, fatal_only);
        found.containers(api, pod, &name, &phase).await;
    }
    if !found.held.is_empty() {
        let ns = pods
            .first()
            .and_then(|p| p.metadata.namespace.clone())
            .unwrap_or_default();
        let claims = claim_details(api.clone().into_client(), &ns, &found.held).await;
        found.details.extend(claims);
    }
    found.failure.map(|mut f| {
        f.details = found.details;
        f
    })
}

/// What the pods say, in pod order: the first failure, and a line for each problem seen.
#[derive(Default)]
struct Findings {
    failure: Option<Failure>,
    details: Vec<String>,
    /// The claims of the pods that cannot be scheduled, each described once.
    held: BTreeSet<String>,
}

impl Findings {
    /// A pod the scheduler cannot place (unbound claims, no room, taints) says why; one no
    /// scheduler looked at names the scheduler it waits for.
    fn scheduling(&mut self, pod: &Pod, name: &str, phase: &str, fatal_only: bool) {
        let unscheduled = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False");
        if let Some(c) = unscheduled {
            let why = c.message.clone().unwrap_or_default();
            self.details
                .push(format!("pod {name}: {phase}, not scheduled: {why}"));
            // Often passing (a claim being bound): a reason to give when the wait runs out,
            // not one to stop waiting for.
            if !fatal_only {
                self.failure.get_or_insert_with(|| {
                    Failure::new(format!("pod {name} cannot be scheduled: {why}"))
                });
                self.held.extend(claims_of(pod));
            }
        } else if !fatal_only && never_scheduled(pod) {
            let scheduler = pod
                .spec
                .as_ref()
                .and_then(|s| s.scheduler_name.clone())
                .unwrap_or_else(|| "default-scheduler".to_owned());
            self.details.push(format!(
                "pod {name}: {phase}, never looked at by a scheduler ({scheduler})"
            ));
            self.failure.get_or_insert_with(|| {
                Failure::new(format!(
                    "pod {name} was never scheduled: no scheduler answered; is {} running?",
                    if scheduler == "default-scheduler" {
                        "the cluster's kube-scheduler".to_owned()
                    } else {
                        format!("the scheduler {scheduler} the pod asks for")
                    }
                ))
            });
        }
    }

    /// Containers that wait: crash loops (with their last logs) and containers that cannot
    /// start are failures.
    async fn containers(
        &mut self,
        api: &Api<k8s_openapi::api::core::v1::Pod>,
        pod: &Pod,
        name: &str,
        phase: &str,
    ) {
        for cs in pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default()
        {
            let running = cs.state.as_ref().and_then(|s| s.running.as_ref()).is_some();
            if running && !cs.ready && phase == "Running" {
                self.not_ready(pod, name, &cs.name);
                continue;
            }
            let Some(waiting) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
                continue;
            };
            let reason = waiting.reason.clone().unwrap_or_default();
            let message = waiting.message.clone().unwrap_or_default();
            let sep = if message.is_empty() { "" } else { ": " };
            self.details.push(format!(
                "pod {name}: {phase}, container {} waiting: {reason}{sep}{message}",
                cs.name
            ));
            if self.failure.is_some() {
                continue;
            }
            match reason.as_str() {
                "CrashLoopBackOff" => self.failure = Some(crash_loop(api, name, &cs).await),
                "ErrImagePull"
                | "ImagePullBackOff"
                | "InvalidImageName"
                | "CreateContainerConfigError"
                | "CreateContainerError" => {
                    self.failure = Some(Failure::new(format!(
                        "container {} of pod {name} cannot start: {reason}{sep}{message}",
                        cs.name
                    )));
                }
                _ => {}
            }
        }
    }
}

impl Findings {
    /// A container that runs but is not ready: its readiness probe fails (named from the
    /// pod's spec).
    fn not_ready(&mut self, pod: &Pod, name: &str, container: &str) {
        let spec = pod.spec.as_ref();
        let probe = spec
            .and_then(|s| s.containers.iter().find(|c| c.name == container))
            .and_then(|c| c.readiness_probe.as_ref())
            .map(probe_text)
            .unwrap_or_else(|| "its readiness probe".to_owned());
        let line = format!("pod {name}: Running, container {container} not ready: {probe} fails");
        self.details.push(line.clone());
        if self.failure.is_none() {
            self.failure = Some(Failure::new(format!(
                "container {container} of pod {name} runs but is not ready: {probe} fails"
            )));
        }
    }
}

/// `the readiness probe (HTTP GET /health on port 8000)`.
fn probe_text(p: &k8s_openapi::api::core::v1::Probe) -> String {
    let port = |p: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString| match p {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => n.to_string(),
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
    };
    if let Some(h) = &p.http_get {
        let path = h.path.as_deref().unwrap_or("/");
        return format!(
            "the readiness probe (HTTP GET {path} on port {})",
            port(&h.port)
        );
    }
    if let Some(t) = &p.tcp_socket {
        return format!(
            "the readiness probe (TCP connect to port {})",
            port(&t.port)
        );
    }
    "the readiness probe".to_owned()
}

/// A crash-looping container, with its last exit code and the last 20 lines of its previous
/// run's logs (or of the current run's, when there was none).
async fn crash_loop(
    api: &Api<k8s_openapi::api::core::v1::Pod>,
    name: &str,
    cs: &k8s_openapi::api::core::v1::ContainerStatus,
) -> Failure {
    let exit = cs
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| {
            format!(
                " (last exit code {}, {} restarts)",
                t.exit_code, cs.restart_count
            )
        })
        .unwrap_or_default();
    let mut f = Failure::new(format!(
        "container {} of pod {name} is crash-looping{exit}",
        cs.name
    ));
    let params = LogParams {
        container: Some(cs.name.clone()),
        previous: true,
        tail_lines: Some(20),
        ..LogParams::default()
    };
    let logs = match api.logs(name, &params).await {
        Ok(text) => Some(text),
        Err(_) => api
            .logs(
                name,
                &LogParams {
                    previous: false,
                    ..params
                },
            )
            .await
            .ok(),
    };
    if let Some(text) = logs {
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let start = lines.len().saturating_sub(20);
        f.logs = Some((format!("{name}/{}", cs.name), lines[start..].to_vec()));
    }
    f
}

/// The claims a pod mounts.
fn claims_of(pod: &Pod) -> impl Iterator<Item = String> + '_ {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.clone())
}

/// Whether no scheduler has looked at a pod: no node, and no `PodScheduled` condition at all.
fn never_scheduled(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    let has_node = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
    let looked_at = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "PodScheduled"));
    phase == "Pending" && !has_node && !looked_at
}

/// What holds the claims of pods that cannot be scheduled: each claim not bound yet, its
/// StorageClass (whether it exists, its provisioner and binding mode) and the claim's last
/// events. Made only when a wait has run out: a GET per claim and per class, and one LIST of
/// the namespace's claim events.
async fn claim_details(client: kube::Client, ns: &str, claims: &BTreeSet<String>) -> Vec<String> {
    use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim};
    use k8s_openapi::api::storage::v1::StorageClass;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let classes: Api<StorageClass> = Api::all(client.clone());
    let events: Api<Event> = Api::namespaced(client, ns);
    let params =
        kube::api::ListParams::default().fields("involvedObject.kind=PersistentVolumeClaim");
    let events = events
        .list(&params)
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let mut described: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for claim in claims {
        let Ok(pvc) = pvcs.get(claim).await else {
            out.push(format!("claim {claim}: not found"));
            continue;
        };
        let phase = pvc.status.and_then(|s| s.phase).unwrap_or_default();
        if phase == "Bound" {
            continue;
        }
        let about_class = match pvc.spec.and_then(|s| s.storage_class_name) {
            None => "no StorageClass, and none is the cluster's default".to_owned(),
            Some(c) => match described.get(&c) {
                Some(d) => d.clone(),
                None => {
                    let d = describe_class(&classes, &c).await;
                    described.insert(c, d.clone());
                    d
                }
            },
        };
        out.push(format!("claim {claim}: {phase}, {about_class}"));
        let about: Vec<&Event> = events
            .iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(claim.as_str()))
            .collect();
        for e in about.iter().rev().take(3) {
            out.push(format!(
                "claim {claim}: {} {}: {}",
                e.type_.as_deref().unwrap_or("Normal"),
                e.reason.as_deref().unwrap_or_default(),
                e.message.as_deref().unwrap_or_default()
            ));
        }
    }
    out
}

/// A StorageClass in a few words, or that it does not exist.
async fn describe_class(
    classes: &Api<k8s_openapi::api::storage::v1::StorageClass>,
    name: &str,
) -> String {
    match classes.get(name).await {
        Ok(sc) => format!(
            "StorageClass {name} (provisioner {}, binding {})",
            sc.provisioner,
            sc.volume_binding_mode.as_deref().unwrap_or("Immediate")
        ),
        Err(_) => format!("StorageClass {name}, which does not exist"),
    }
}

/// Why a workload that is not ready is not (`cairn status`): its `ReplicaFailure`, else what
/// its pods say (one LIST of them). `None` when nothing explains it (a rollout in progress).
pub async fn why_not_ready(cluster: &Cluster, obj: &J) -> Option<Failure> {
    if let Some(f) = replica_failure(obj) {
        return Some(f);
    }
    let ns = obj.at("/metadata/namespace")?.as_str()?;
    let selector = selector_of(obj)?;
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), ns);
    let pods = api
        .list(&kube::api::ListParams::default().labels(&selector))
        .await
        .ok()?;
    explain_pods(&api, &pods.items, false).await
}

/// A `ReplicaFailure` condition (pods rejected, for example by a ResourceQuota).
pub(crate) fn replica_failure(obj: &J) -> Option<Failure> {
    let conditions = obj.at("/status/conditions")?.as_array()?;
    let c = conditions.iter().find(|c| {
        c.get("type").and_then(J::as_str) == Some("ReplicaFailure")
            && c.get("status").and_then(J::as_str) == Some("True")
    })?;
    let message = c.get("message").and_then(J::as_str).unwrap_or_default();
    let mut f = Failure::new(format!("pods are rejected: {message}"));
    if message.contains("exceeded quota") {
        f.details.push("the namespace's ResourceQuota does not leave room for these pods: raise the quota, or lower requests or replicas (`cairn check` computes the totals)".to_owned());
    }
    Some(f)
}

/// A label selector string from a workload's `spec.selector.matchLabels`.
pub(crate) fn selector_of(obj: &J) -> Option<String> {
    let labels = obj.at("/spec/selector/matchLabels")?.as_object()?;
    Some(
        labels
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
            .collect::<Vec<_>>()
            .join(","),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pod(v: J) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_pending_pod_no_scheduler_looked_at_is_told_apart() {
        let waiting = pod(serde_json::json!({
            "metadata": {"name": "web-1"},
            "spec": {"containers": [], "schedulerName": "default-scheduler"},
            "status": {"phase": "Pending"}
        }));
        assert!(never_scheduled(&waiting));
        let refused = pod(serde_json::json!({
            "metadata": {"name": "web-1"},
            "spec": {"containers": []},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient cpu."}]}
        }));
        assert!(!never_scheduled(&refused));
        let placed = pod(serde_json::json!({
            "metadata": {"name": "web-1"},
            "spec": {"containers": [], "nodeName": "n1"},
            "status": {"phase": "Pending"}
        }));
        assert!(!never_scheduled(&placed));
    }
}
