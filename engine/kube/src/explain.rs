//! Explaining why a workload is not ready: pod phases and waiting reasons, the last log lines
//! of a crash-looping container, the quota and the numbers when a ResourceQuota rejects pods.

use cairn_apply::Failure;
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
        .all()
        .iter()
        .filter(|p| {
            wanted.iter().all(|(k, v)| {
                p.pointer("/metadata/labels")
                    .and_then(|l| l.get(*k))
                    .and_then(J::as_str)
                    == Some(*v)
            })
        })
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
    let mut failure: Option<Failure> = None;
    let mut details = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.as_ref();
        let phase = status
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Unknown".to_owned());
        // A pod the scheduler cannot place (unbound claims, no room, taints) says why.
        let unscheduled = status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False");
        if let Some(c) = unscheduled {
            let why = c.message.clone().unwrap_or_default();
            details.push(format!("pod {name}: {phase}, not scheduled: {why}"));
            // Often passing (a claim being bound): a reason to give when the wait runs out,
            // not one to stop waiting for.
            if !fatal_only {
                failure.get_or_insert_with(|| {
                    Failure::new(format!("pod {name} cannot be scheduled: {why}"))
                });
            }
        }
        for cs in status
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default()
        {
            let Some(waiting) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
                continue;
            };
            let reason = waiting.reason.clone().unwrap_or_default();
            let message = waiting.message.clone().unwrap_or_default();
            details.push(format!(
                "pod {name}: {phase}, container {} waiting: {reason}{}{}",
                cs.name,
                if message.is_empty() { "" } else { ": " },
                message
            ));
            if failure.is_some() {
                continue;
            }
            match reason.as_str() {
                "CrashLoopBackOff" => {
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
                    let logs = match api.logs(&name, &params).await {
                        Ok(text) => Some(text),
                        Err(_) => api
                            .logs(
                                &name,
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
                    failure = Some(f);
                }
                "ErrImagePull"
                | "ImagePullBackOff"
                | "InvalidImageName"
                | "CreateContainerConfigError"
                | "CreateContainerError" => {
                    failure = Some(Failure::new(format!(
                        "container {} of pod {name} cannot start: {reason}{}{}",
                        cs.name,
                        if message.is_empty() { "" } else { ": " },
                        message
                    )));
                }
                _ => {}
            }
        }
    }
    failure.map(|mut f| {
        f.details = details;
        f
    })
}

/// A `ReplicaFailure` condition (pods rejected, for example by a ResourceQuota).
pub(crate) fn replica_failure(obj: &J) -> Option<Failure> {
    let conditions = obj.pointer("/status/conditions")?.as_array()?;
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
    let labels = obj.pointer("/spec/selector/matchLabels")?.as_object()?;
    Some(
        labels
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
            .collect::<Vec<_>>()
            .join(","),
    )
}
