//! Applying a plan: a dependency graph walked in parallel, each step applied with server-side
//! apply and then waited on until it is ready; failures are explained and stop only the steps
//! that depend on them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_model::ResourceId;
use cairn_plan::plan::Action;
use kube::api::{DeleteParams, Patch, PropagationPolicy};
use serde_json::Value as J;
use tokio::task::JoinSet;

use crate::explain::{Failure, pod_problems, replica_failure, selector_of};
use crate::plan::{KubePlan, Step, api_of, patch_params};
use crate::{Cluster, kinds};

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// How long one step may take to become ready.
    pub timeout: Duration,
    /// How many steps run at once.
    pub concurrency: usize,
    /// How often readiness is polled.
    pub poll: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            concurrency: 8,
            poll: Duration::from_millis(250),
        }
    }
}

/// Progress of an apply, as it happens.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A step started.
    Started { id: ResourceId, action: Action },
    /// A step is applied and waits for readiness.
    Waiting { id: ResourceId, what: String },
    /// A step finished.
    Done {
        id: ResourceId,
        action: Action,
        elapsed_ms: u128,
    },
    /// A step failed.
    Failed { id: ResourceId, failure: Failure },
    /// A step did not run because a dependency failed.
    Skipped { id: ResourceId, because: ResourceId },
}

/// The outcome of an apply.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ApplyReport {
    /// Steps that succeeded.
    pub done: Vec<(ResourceId, Action)>,
    /// Steps that failed, with why.
    pub failed: Vec<(ResourceId, Failure)>,
    /// Steps not run because a dependency failed.
    pub skipped: Vec<ResourceId>,
}

impl ApplyReport {
    /// Whether everything succeeded.
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty()
    }
}

type Emit = Arc<dyn Fn(Event) + Send + Sync>;

/// Applies `plan` to `cluster`, reporting progress through `emit`.
pub async fn apply(
    cluster: &Cluster,
    plan: &KubePlan,
    options: &ApplyOptions,
    emit: Emit,
) -> ApplyReport {
    let mut report = ApplyReport::default();
    let in_plan: BTreeSet<ResourceId> = plan.steps.iter().map(|s| s.id.clone()).collect();
    let mut state: BTreeMap<ResourceId, Outcome> = BTreeMap::new();
    for s in &plan.steps {
        if matches!(s.action, Action::NoOp | Action::Keep) {
            state.insert(s.id.clone(), Outcome::Done);
        }
    }
    let (forward, deletes): (Vec<&Step>, Vec<&Step>) = plan
        .steps
        .iter()
        .filter(|s| !matches!(s.action, Action::NoOp | Action::Keep))
        .partition(|s| s.action != Action::Delete);
    run_graph(
        cluster,
        &forward,
        &in_plan,
        &mut state,
        plan.force_conflicts,
        options,
        &emit,
        &mut report,
    )
    .await;
    // Deletions go last, dependents before what they depend on (reverse apply rank), and only
    // when everything else went through.
    if report.failed.is_empty() {
        let mut by_rank: BTreeMap<std::cmp::Reverse<u8>, Vec<&Step>> = BTreeMap::new();
        for s in deletes {
            by_rank
                .entry(std::cmp::Reverse(s.id.rank))
                .or_default()
                .push(s);
        }
        for (_, group) in by_rank {
            let empty = BTreeSet::new();
            run_graph(
                cluster,
                &group,
                &empty,
                &mut state,
                false,
                options,
                &emit,
                &mut report,
            )
            .await;
        }
    } else {
        for s in deletes {
            report.skipped.push(s.id.clone());
        }
    }
    if let Some(inventory) = &plan.inventory {
        write_inventory(cluster, inventory, &report).await;
    }
    report
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Done,
    Failed,
}

#[allow(clippy::too_many_arguments)]
async fn run_graph(
    cluster: &Cluster,
    steps: &[&Step],
    in_plan: &BTreeSet<ResourceId>,
    state: &mut BTreeMap<ResourceId, Outcome>,
    force: bool,
    options: &ApplyOptions,
    emit: &Emit,
    report: &mut ApplyReport,
) {
    let mut pending: Vec<&Step> = steps.to_vec();
    let mut running: JoinSet<(ResourceId, Action, Instant, Result<(), Failure>)> = JoinSet::new();
    loop {
        // Start every step whose dependencies are done; skip those whose dependencies failed.
        let mut i = 0;
        while i < pending.len() {
            let step = pending[i];
            let deps: Vec<&ResourceId> = step
                .depends_on
                .iter()
                .filter(|d| in_plan.contains(*d) && **d != step.id)
                .collect();
            if let Some(failed) = deps
                .iter()
                .find(|d| state.get(**d) == Some(&Outcome::Failed))
            {
                emit(Event::Skipped {
                    id: step.id.clone(),
                    because: (*failed).clone(),
                });
                report.skipped.push(step.id.clone());
                state.insert(step.id.clone(), Outcome::Failed);
                pending.remove(i);
                continue;
            }
            let ready = deps.iter().all(|d| state.get(*d) == Some(&Outcome::Done));
            if ready && running.len() < options.concurrency {
                let step = pending.remove(i);
                emit(Event::Started {
                    id: step.id.clone(),
                    action: step.action,
                });
                let (cluster, step, options, emit) =
                    (cluster.clone(), step.clone(), options.clone(), emit.clone());
                running.spawn(async move {
                    let start = Instant::now();
                    let result = run_step(&cluster, &step, force, &options, &emit).await;
                    (step.id, step.action, start, result)
                });
                continue;
            }
            i += 1;
        }
        let Some(joined) = running.join_next().await else {
            // Nothing runs and nothing can start: a dependency cycle or a dependency on a
            // step that never ran.
            for step in pending.drain(..) {
                let because = step
                    .depends_on
                    .first()
                    .cloned()
                    .unwrap_or_else(|| step.id.clone());
                report.failed.push((
                    step.id.clone(),
                    Failure::new(format!(
                        "never started: it waits for {because}, which cannot complete first"
                    )),
                ));
                state.insert(step.id.clone(), Outcome::Failed);
            }
            return;
        };
        match joined {
            Ok((id, action, start, Ok(()))) => {
                emit(Event::Done {
                    id: id.clone(),
                    action,
                    elapsed_ms: start.elapsed().as_millis(),
                });
                report.done.push((id.clone(), action));
                state.insert(id, Outcome::Done);
            }
            Ok((id, _, _, Err(failure))) => {
                emit(Event::Failed {
                    id: id.clone(),
                    failure: failure.clone(),
                });
                report.failed.push((id.clone(), failure));
                state.insert(id, Outcome::Failed);
            }
            Err(e) => report.failed.push((
                ResourceId::kube("Unknown", None, "task"),
                Failure::new(format!("a step panicked: {e}; this is a bug")),
            )),
        }
    }
}

fn api_failure(what: &str, err: kube::Error) -> Failure {
    match err {
        kube::Error::Api(s) if s.code == 409 => {
            let mut f = Failure::new(format!("{what}: {}", s.message));
            f.details.push("another field manager owns these fields; re-run with --force-conflicts to take them over".to_owned());
            f
        }
        kube::Error::Api(s) => Failure::new(format!("{what}: {} ({})", s.message, s.code)),
        other => Failure::new(format!("{what}: {other}")),
    }
}

async fn run_step(
    cluster: &Cluster,
    step: &Step,
    force: bool,
    options: &ApplyOptions,
    emit: &Emit,
) -> Result<(), Failure> {
    let api = api_of(cluster, step.kind, &step.id);
    match step.action {
        Action::Delete => {
            let params = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..DeleteParams::default()
            };
            match api.delete(&step.id.name, &params).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                Err(e) => Err(api_failure(&format!("delete {}", step.id), e)),
            }
        }
        Action::Replace => {
            let params = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Foreground),
                ..DeleteParams::default()
            };
            match api.delete(&step.id.name, &params).await {
                Ok(_) | Err(kube::Error::Api(_)) => {}
                Err(e) => return Err(api_failure(&format!("delete {} to replace it", step.id), e)),
            }
            emit(Event::Waiting {
                id: step.id.clone(),
                what: "the old object to be gone".to_owned(),
            });
            let deadline = Instant::now() + options.timeout;
            loop {
                match api.get_opt(&step.id.name).await {
                    Ok(None) => break,
                    Ok(Some(_)) if Instant::now() < deadline => {
                        tokio::time::sleep(options.poll).await
                    }
                    Ok(Some(_)) => {
                        return Err(Failure::new(format!(
                            "{} was not deleted within {:?}",
                            step.id, options.timeout
                        )));
                    }
                    Err(e) => return Err(api_failure(&format!("get {}", step.id), e)),
                }
            }
            apply_and_wait(cluster, step, force, options, emit).await
        }
        _ => apply_and_wait(cluster, step, force, options, emit).await,
    }
}

async fn apply_and_wait(
    cluster: &Cluster,
    step: &Step,
    force: bool,
    options: &ApplyOptions,
    emit: &Emit,
) -> Result<(), Failure> {
    let api = api_of(cluster, step.kind, &step.id);
    let Some(body) = &step.body else {
        return Ok(());
    };
    api.patch(
        &step.id.name,
        &patch_params(force, false),
        &Patch::Apply(body),
    )
    .await
    .map_err(|e| api_failure(&format!("apply {}", step.id), e))?;
    let what = match step.kind.kind {
        "Deployment" | "StatefulSet" | "DaemonSet" => "rollout",
        "Job" => "completion",
        "CustomResourceDefinition" => "established",
        "Namespace" => "active",
        _ => return Ok(()),
    };
    emit(Event::Waiting {
        id: step.id.clone(),
        what: what.to_owned(),
    });
    wait_ready(cluster, step, options).await
}

fn num(v: &J, path: &str) -> i64 {
    v.pointer(path).and_then(J::as_i64).unwrap_or(0)
}

fn condition(v: &J, kind: &str) -> Option<(String, String)> {
    let c = v
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(J::as_str) == Some(kind))?;
    Some((
        c.get("status")
            .and_then(J::as_str)
            .unwrap_or_default()
            .to_owned(),
        c.get("message")
            .and_then(J::as_str)
            .unwrap_or_default()
            .to_owned(),
    ))
}

/// `Ok(true)` ready, `Ok(false)` not yet, `Err` failed.
fn readiness(kind: &str, obj: &J) -> Result<bool, Failure> {
    let generation = num(obj, "/metadata/generation");
    let observed = num(obj, "/status/observedGeneration");
    let replicas = obj
        .pointer("/spec/replicas")
        .and_then(J::as_i64)
        .unwrap_or(1);
    match kind {
        "Deployment" => {
            if let Some(f) = replica_failure(obj) {
                return Err(f);
            }
            if let Some((status, message)) = condition(obj, "Progressing")
                && status == "False"
                && message.contains("progress deadline")
            {
                return Err(Failure::new(format!("rollout stalled: {message}")));
            }
            Ok(observed >= generation
                && num(obj, "/status/updatedReplicas") == replicas
                && num(obj, "/status/availableReplicas") == replicas
                && num(obj, "/status/replicas") == replicas)
        }
        "StatefulSet" => {
            let revisions_match = match (
                obj.pointer("/status/currentRevision"),
                obj.pointer("/status/updateRevision"),
            ) {
                (Some(c), Some(u)) => c == u,
                _ => true,
            };
            Ok(observed >= generation
                && num(obj, "/status/readyReplicas") == replicas
                && revisions_match)
        }
        "Job" => {
            if let Some((status, _)) = condition(obj, "Complete")
                && status == "True"
            {
                return Ok(true);
            }
            if let Some((status, message)) = condition(obj, "Failed")
                && status == "True"
            {
                return Err(Failure::new(format!("the job failed: {message}")));
            }
            Ok(false)
        }
        "CustomResourceDefinition" => {
            Ok(condition(obj, "Established").is_some_and(|(s, _)| s == "True"))
        }
        "Namespace" => Ok(obj.pointer("/status/phase").and_then(J::as_str) == Some("Active")),
        _ => Ok(true),
    }
}

async fn wait_ready(cluster: &Cluster, step: &Step, options: &ApplyOptions) -> Result<(), Failure> {
    let api = api_of(cluster, step.kind, &step.id);
    let start = Instant::now();
    let mut polls = 0u32;
    loop {
        let obj = api
            .get(&step.id.name)
            .await
            .map_err(|e| api_failure(&format!("get {}", step.id), e))?;
        let obj =
            serde_json::to_value(&obj).map_err(|e| Failure::new(format!("{e}; this is a bug")))?;
        let ns = step.id.scope.clone().unwrap_or_default();
        match readiness(step.kind.kind, &obj) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(mut f) => {
                if let Some(sel) = selector_of(&obj)
                    && let Some(pods) = pod_problems(cluster, &ns, &sel).await
                {
                    f.details.extend(pods.details);
                    f.logs = f.logs.or(pods.logs);
                }
                return Err(f);
            }
        }
        polls += 1;
        // Now and then, look at the pods: a crash loop or an image that cannot be pulled will
        // not fix itself by waiting.
        if polls.is_multiple_of(4)
            && kinds::kind(step.kind.kind).is_some_and(|k| k.namespaced)
            && let Some(sel) = selector_of(&obj)
            && let Some(f) = pod_problems(cluster, &ns, &sel).await
        {
            return Err(f);
        }
        if start.elapsed() > options.timeout {
            let mut f = Failure::new(format!(
                "{} was not ready after {}s",
                step.id,
                options.timeout.as_secs()
            ));
            if let Some(sel) = selector_of(&obj)
                && let Some(pods) = pod_problems(cluster, &ns, &sel).await
            {
                f.details.push(pods.message);
                f.details.extend(pods.details);
                f.logs = pods.logs;
            }
            return Err(f);
        }
        tokio::time::sleep(options.poll).await;
    }
}

async fn write_inventory(cluster: &Cluster, inventory: &J, report: &ApplyReport) {
    // Kinds whose deletion did not go through stay listed, so the next plan finds them.
    let mut body = inventory.clone();
    let mut kinds: BTreeSet<String> = body
        .pointer("/data/kinds")
        .and_then(J::as_str)
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    for (id, _) in &report.failed {
        kinds.insert(id.kind.clone());
    }
    for id in &report.skipped {
        kinds.insert(id.kind.clone());
    }
    if let Some(data) = body.pointer_mut("/data") {
        *data = serde_json::json!({ "kinds": kinds.into_iter().collect::<Vec<_>>().join(",") });
    }
    let Some(kind) = kinds::kind("ConfigMap") else {
        return;
    };
    let Some(ns) = body
        .pointer("/metadata/namespace")
        .and_then(J::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let id = ResourceId::kube("ConfigMap", Some(&ns), crate::INVENTORY);
    let _ = api_of(cluster, kind, &id)
        .patch(
            crate::INVENTORY,
            &patch_params(true, false),
            &Patch::Apply(&body),
        )
        .await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn recorded(name: &str) -> J {
        let path = format!(
            "{}/../sandbox/testdata/kube-api/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).unwrap();
        let exchange: J = serde_json::from_str(&text).unwrap();
        exchange["response"]["body"].clone()
    }

    #[test]
    fn a_deployment_rejected_by_a_quota_fails_with_the_quota_message() {
        let err = readiness("Deployment", &recorded("405-quota-ns-deployment")).unwrap_err();
        assert!(
            err.message.contains(
                "exceeded quota: pod-count, requested: pods=1, used: pods=1, limited: pods=1"
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_deployment_without_ready_pods_is_not_ready_yet() {
        // Recorded on a cluster without a scheduler: pods stay Pending.
        assert_eq!(
            readiness("Deployment", &recorded("150-deployment-after-5s")),
            Ok(false)
        );
        assert_eq!(readiness("Job", &recorded("154-job-after-5s")), Ok(false));
    }

    #[test]
    fn an_established_crd_and_an_active_namespace_are_ready() {
        assert_eq!(
            readiness("Namespace", &recorded("100-apply-namespace")),
            Ok(true)
        );
        let crd = recorded("602-crd-status-2");
        assert_eq!(readiness("CustomResourceDefinition", &crd), Ok(true));
    }
}
