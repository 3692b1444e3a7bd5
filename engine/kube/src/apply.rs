//! Applying a plan: a dependency graph walked in parallel, each step applied with server-side
//! apply and then waited on until it is ready; failures are explained and stop only the steps
//! that depend on them.

use cairn_model::JsonPath as _;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cairn_apply::{Emit, Event, Failure, Node, Report};
use cairn_model::ResourceId;
use cairn_plan::plan::Action;
use kube::api::{DeleteParams, Patch, PropagationPolicy};
use serde_json::Value as J;

use crate::explain::{replica_failure, selector_of, watched_pod_problems};
use crate::plan::{KubePlan, Step, api_of, patch_params};
use crate::watch::Watches;
use crate::{Cluster, kinds};

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// How long one step may take to become ready.
    pub timeout: Duration,
    /// How many steps run at once (a step waiting for readiness counts for none); the
    /// cluster's bound on requests in flight is set apart
    /// ([`Cluster::set_requests_in_flight`]).
    pub concurrency: usize,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            concurrency: crate::throttle::DEFAULT_REQUESTS_IN_FLIGHT,
        }
    }
}

/// The executor's nodes for a Kubernetes plan: creations, updates and replacements with their
/// dependencies; deletions after all of them, dependents first (reverse apply rank).
pub fn nodes(cluster: &Cluster, plan: &KubePlan, options: &ApplyOptions) -> Vec<Node> {
    // A plan with a refusal applies nothing, whoever calls this.
    if refused(plan) {
        return Vec::new();
    }
    let force = plan.force_conflicts;
    let active: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| !matches!(s.action, Action::NoOp | Action::Keep | Action::Refuse))
        .collect();
    let mut out = deletion_barriers(&active);
    let watches = Watches::new(cluster, &plan.plan.environment);
    for step in active {
        let depends_on = if step.action == Action::Delete {
            // Its rank's barrier, and whatever else it must outlast (the inventory).
            let mut deps = vec![barrier_id(step.id.rank)];
            deps.extend(step.depends_on.iter().cloned());
            deps
        } else {
            step.depends_on.clone()
        };
        out.push(step_node(
            cluster, step, depends_on, options, &watches, force,
        ));
    }
    // One silent node per unchanged workload: it waits until the object is ready, failing
    // (with the explanation of its pods) when it is not. So an apply, also one with no change,
    // succeeds only when everything the environment runs is healthy.
    let unchanged = plan
        .steps
        .iter()
        .filter(|s| s.action == Action::NoOp && CHECKED.contains(&s.kind.kind.as_ref()));
    for step in unchanged {
        out.push(step_node(
            cluster,
            step,
            Vec::new(),
            options,
            &watches,
            false,
        ));
    }
    out
}

/// The kinds whose health an apply checks though they do not change: a rollout that never
/// became ready, a crash loop, a failed Job.
const CHECKED: &[&str] = &["Deployment", "StatefulSet", "Job"];

/// The executor node of one step.
fn step_node(
    cluster: &Cluster,
    step: &Step,
    depends_on: Vec<ResourceId>,
    options: &ApplyOptions,
    watches: &std::sync::Arc<Watches>,
    force: bool,
) -> Node {
    let (cluster, step_owned, options) = (cluster.clone(), step.clone(), options.clone());
    // Fields people changed by hand are taken back even when the plan is not forced.
    let force = force || step.force;
    let watches = std::sync::Arc::clone(watches);
    Node {
        id: step.id.clone(),
        action: step.action,
        depends_on,
        work: Box::new(move |emit: Emit| {
            Box::pin(async move {
                let how = How {
                    force,
                    options: &options,
                    emit: &emit,
                    watches: &watches,
                };
                run_step(&cluster, &step_owned, &how).await
            })
        }),
    }
}

/// Whether the server or cairn refused a step: then nothing of the plan is applied.
fn refused(plan: &KubePlan) -> bool {
    plan.steps.iter().any(|s| s.action == Action::Refuse)
}

/// The id of the barrier the deletions of `rank` wait for.
fn barrier_id(rank: u8) -> ResourceId {
    ResourceId::kube("cairn.dev/deletions", None, &format!("rank-{rank}"))
}

/// Deletions run after every other change, dependents first (higher apply ranks first): the
/// deletions of a rank wait for one barrier, which waits for the deletions of the next higher
/// rank (and its barrier), the highest for every change. Linear in size, where each deletion
/// listing every change and every higher deletion was quadratic.
fn deletion_barriers(active: &[&Step]) -> Vec<Node> {
    let forward: Vec<ResourceId> = active
        .iter()
        .filter(|s| s.action != Action::Delete)
        .map(|s| s.id.clone())
        .collect();
    let mut by_rank: std::collections::BTreeMap<u8, Vec<ResourceId>> = Default::default();
    for s in active.iter().filter(|s| s.action == Action::Delete) {
        by_rank.entry(s.id.rank).or_default().push(s.id.clone());
    }
    let mut out = Vec::new();
    let mut before = forward;
    for (rank, ids) in by_rank.into_iter().rev() {
        let id = barrier_id(rank);
        out.push(cairn_apply::barrier(id.clone(), before));
        before = ids;
        before.push(id);
    }
    out
}

/// Applies `plan` to `cluster`, reporting progress through `emit`, then records the
/// environment's inventory.
pub async fn apply(
    cluster: &Cluster,
    plan: &KubePlan,
    options: &ApplyOptions,
    emit: Emit,
) -> Report {
    if refused(plan) {
        let failed = plan
            .steps
            .iter()
            .filter(|s| s.action == Action::Refuse)
            .map(|s| {
                (
                    s.id.clone(),
                    Failure::new("refused: the plan applies nothing"),
                )
            })
            .collect();
        return Report {
            failed,
            ..Report::default()
        };
    }
    let report =
        cairn_apply::execute(nodes(cluster, plan, options), options.concurrency, emit).await;
    finish(cluster, plan, &report).await;
    report
}

/// What follows an apply: the inventory, listing the kinds the environment has (and those
/// whose deletion did not go through, so the next plan finds them).
pub async fn finish(cluster: &Cluster, plan: &KubePlan, report: &Report) {
    if let Some(inventory) = &plan.inventory {
        write_inventory(cluster, plan, inventory, report).await;
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

/// How the steps of one apply run.
struct How<'a> {
    force: bool,
    options: &'a ApplyOptions,
    emit: &'a Emit,
    watches: &'a Watches,
}

async fn run_step(cluster: &Cluster, step: &Step, how: &How<'_>) -> Result<(), Failure> {
    match step.action {
        // Nothing to write: the step only checks that its object is ready.
        Action::NoOp => wait_ready(cluster, step, how, None).await,
        // Dependents go in the background; the step is done once the object is gone.
        Action::Delete => {
            delete_and_wait(cluster, step, how, PropagationPolicy::Background, true).await
        }
        Action::Replace => {
            // A StatefulSet goes without its pods, which the new one adopts (its claims are
            // never deleted); anything else with its dependents (a Job's pods) first.
            let propagation = if step.kind.kind == "StatefulSet" {
                PropagationPolicy::Orphan
            } else {
                PropagationPolicy::Foreground
            };
            delete_and_wait(cluster, step, how, propagation, false).await?;
            apply_and_wait(cluster, step, how, how.force).await
        }
        // An adopted object's declared fields are taken from whichever manager had them.
        Action::Adopt => apply_and_wait(cluster, step, how, true).await,
        _ => apply_and_wait(cluster, step, how, how.force).await,
    }
}

/// Deletes the step's object and waits until the watch of its kind sees it gone (finalizers
/// run: a claim's protection, a foreground deletion's dependents), so what depends on its
/// absence (the next rank's deletions, the creation of a replacement) starts only then.
/// `let_go`: once the server has accepted the deletion, the step gives its slot back (a
/// deletion only; a replacement still has its write to make).
async fn delete_and_wait(
    cluster: &Cluster,
    step: &Step,
    how: &How<'_>,
    propagation: PropagationPolicy,
    let_go: bool,
) -> Result<(), Failure> {
    let params = DeleteParams {
        propagation_policy: Some(propagation),
        ..DeleteParams::default()
    };
    let feed = how.watches.objects(&step.kind, step.id.scope.as_deref());
    let mut changes = feed.subscribe(&step.id.name);
    match api_of(cluster, &step.kind, &step.id)
        .delete(&step.id.name, &params)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(api_failure(&format!("delete {}", step.id), e)),
    }
    if let_go {
        (how.emit)(Event::Accepted {
            id: step.id.clone(),
        });
    }
    let deadline = Instant::now() + how.options.timeout;
    let mut told = false;
    // The watch has listed once its first change came (or it is already gone from it).
    while !feed.listed() || feed.get(&step.id.name).is_some() {
        if !told && feed.listed() {
            // Still there after the delete: finalizers are running.
            told = true;
            (how.emit)(Event::Waiting {
                id: step.id.clone(),
                what: "the object to be gone".to_owned(),
            });
        }
        if !feed.changed(&mut changes, deadline).await && Instant::now() >= deadline {
            return Err(gone_too_late(step, &feed, how.options.timeout));
        }
    }
    Ok(())
}

/// Why an object is still there when the wait for its deletion ran out: its finalizers.
fn gone_too_late(step: &Step, feed: &crate::watch::Feed, timeout: Duration) -> Failure {
    let mut f = Failure::new(format!(
        "{} was not gone {}s after its deletion",
        step.id,
        timeout.as_secs()
    ));
    let finalizers: Vec<String> = feed
        .get(&step.id.name)
        .and_then(|o| o.at("/metadata/finalizers").cloned())
        .and_then(|f| serde_json::from_value(f).ok())
        .unwrap_or_default();
    if !finalizers.is_empty() {
        f.details.push(format!(
            "it waits for its finalizers: {} (a claim is kept while a pod uses it; a foreground deletion waits for its dependents)",
            finalizers.join(", ")
        ));
    }
    // A namespace says what it still waits for in its conditions (content, finalizers).
    let conditions = feed
        .get(&step.id.name)
        .and_then(|o| o.at("/status/conditions").cloned())
        .and_then(|c| c.as_array().cloned())
        .unwrap_or_default();
    for c in conditions {
        if c.get("status").and_then(J::as_str) == Some("True")
            && let Some(message) = c.get("message").and_then(J::as_str)
        {
            f.details.push(message.to_owned());
        }
    }
    f
}

async fn apply_and_wait(
    cluster: &Cluster,
    step: &Step,
    how: &How<'_>,
    force: bool,
) -> Result<(), Failure> {
    let Some(body) = &step.body else {
        return Ok(());
    };
    let what = match step.kind.kind.as_ref() {
        "Deployment" | "StatefulSet" | "DaemonSet" => Some("rollout"),
        "Job" => Some("completion"),
        "CustomResourceDefinition" => Some("established"),
        "Namespace" => Some("active"),
        _ => None,
    };
    // The watch of its kind starts listing while the write goes out.
    if what.is_some() {
        how.watches.objects(&step.kind, step.id.scope.as_deref());
    }
    let written = write(cluster, step, body, force)
        .await
        .map_err(|e| api_failure(&format!("apply {}", step.id), e))?;
    let Some(what) = what else {
        return Ok(());
    };
    (how.emit)(Event::Waiting {
        id: step.id.clone(),
        what: what.to_owned(),
    });
    wait_ready(cluster, step, how, written.metadata.generation).await
}

/// What an apply's answer is read for: the generation it produced. The rest of the object is
/// skipped, not built: the watch of its kind brings it whole when it matters.
#[derive(serde::Deserialize)]
struct Written {
    metadata: WrittenMeta,
}

#[derive(serde::Deserialize)]
struct WrittenMeta {
    #[serde(default)]
    generation: Option<i64>,
}

/// The server-side apply of a step's body.
async fn write(
    cluster: &Cluster,
    step: &Step,
    body: &J,
    force: bool,
) -> Result<Written, kube::Error> {
    let request = step
        .kind
        .request(step.id.scope.as_deref())
        .patch(
            &step.id.name,
            &patch_params(force, false),
            &Patch::Apply(body),
        )
        .map_err(kube::Error::BuildRequest)?;
    cluster.client.request(request).await
}

fn num(v: &J, path: &str) -> i64 {
    v.at(path).and_then(J::as_i64).unwrap_or(0)
}

fn condition(v: &J, kind: &str) -> Option<(String, String)> {
    let c = v
        .at("/status/conditions")?
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
pub fn readiness(kind: &str, obj: &J) -> Result<bool, Failure> {
    let generation = num(obj, "/metadata/generation");
    let observed = num(obj, "/status/observedGeneration");
    let replicas = obj.at("/spec/replicas").and_then(J::as_i64).unwrap_or(1);
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
                obj.at("/status/currentRevision"),
                obj.at("/status/updateRevision"),
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
        "Namespace" => Ok(obj.at("/status/phase").and_then(J::as_str) == Some("Active")),
        _ => Ok(true),
    }
}

/// Waits until the step's object is ready, as the watch of its kind sees it (no request of
/// its own); now and then the watched pods are looked at, since a crash loop or an image that
/// cannot be pulled does not fix itself by waiting. `written` is the generation the write
/// produced: a version the watch saw before it (its list can predate the write) is not the one
/// to judge.
async fn wait_ready(
    cluster: &Cluster,
    step: &Step,
    how: &How<'_>,
    written: Option<i64>,
) -> Result<(), Failure> {
    let (options, watches) = (how.options, how.watches);
    let feed = watches.objects(&step.kind, step.id.scope.as_deref());
    let mut changes = feed.subscribe(&step.id.name);
    let ns = step.id.scope.clone().unwrap_or_default();
    let deadline = Instant::now() + options.timeout;
    // Looks at the pods come after 1 s, then 2, 4 and every 8 s: a crash loop shows within
    // seconds, and thousands of waiting steps do not each scan the pods every second.
    let mut look = Duration::from_secs(1);
    let mut next_look = Instant::now() + look;
    loop {
        let obj = feed.get(&step.id.name).filter(|o| {
            written.is_none_or(|g| o.at("/metadata/generation").and_then(J::as_i64) >= Some(g))
        });
        if let Some(obj) = &obj {
            match readiness(&step.kind.kind, obj) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(mut f) => {
                    if let Some(pods) = pods_of(cluster, watches, step, obj, &ns, false).await {
                        f.details.extend(pods.details);
                        f.logs = f.logs.or(pods.logs);
                    }
                    return Err(f);
                }
            }
            if Instant::now() >= next_look {
                look = (look * 2).min(Duration::from_secs(8));
                next_look = Instant::now() + look;
                if let Some(f) = pods_of(cluster, watches, step, obj, &ns, true).await {
                    return Err(f);
                }
            }
        }
        if Instant::now() >= deadline {
            let mut f = Failure::new(format!(
                "{} was not ready after {}s",
                step.id,
                options.timeout.as_secs()
            ));
            if let Some(obj) = &obj
                && let Some(pods) = pods_of(cluster, watches, step, obj, &ns, false).await
            {
                f.details.push(pods.message);
                f.details.extend(pods.details);
                f.logs = pods.logs;
            }
            return Err(f);
        }
        feed.changed(&mut changes, deadline.min(next_look)).await;
    }
}

/// What is wrong with a workload's pods, from the watch of its namespace's pods.
async fn pods_of(
    cluster: &Cluster,
    watches: &Watches,
    step: &Step,
    obj: &J,
    ns: &str,
    fatal_only: bool,
) -> Option<Failure> {
    if !step.kind.namespaced {
        return None;
    }
    let selector = selector_of(obj)?;
    watched_pod_problems(cluster, watches, ns, &selector, fatal_only).await
}

async fn write_inventory(cluster: &Cluster, plan: &KubePlan, inventory: &J, report: &Report) {
    // Kinds whose deletion did not go through stay listed, so the next plan finds them.
    let mut body = inventory.clone();
    let mut kinds: BTreeSet<String> = body
        .at("/data/kinds")
        .and_then(J::as_str)
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    // Only Kubernetes kinds: a failed certificate or DNS record is no kind to list.
    let kube = |id: &&ResourceId| id.provider == cairn_model::Provider::Kube;
    for id in report.failed.iter().map(|(id, _)| id).filter(kube) {
        kinds.insert(plan.catalog.inventory_name(&id.kind));
    }
    for id in report.skipped.iter().filter(kube) {
        kinds.insert(plan.catalog.inventory_name(&id.kind));
    }
    if let Some(J::Object(data)) = body.at_mut("/data") {
        let kinds = kinds.into_iter().collect::<Vec<_>>().join(",");
        data.insert("kinds".to_owned(), J::String(kinds));
    }
    let Some(kind) = kinds::kind("ConfigMap") else {
        return;
    };
    let Some(ns) = body
        .at("/metadata/namespace")
        .and_then(J::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let name = body
        .at("/metadata/name")
        .and_then(J::as_str)
        .unwrap_or(crate::INVENTORY)
        .to_owned();
    let id = ResourceId::kube("ConfigMap", Some(&ns), &name);
    let _ = api_of(cluster, kind, &id)
        .patch(&name, &patch_params(true, false), &Patch::Apply(&body))
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
