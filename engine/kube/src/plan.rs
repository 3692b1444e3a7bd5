//! Planning: desired objects against live ones, confirmed by server-side dry runs.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use cairn_model::{DesiredState, Resource, ResourceId};
use cairn_plan::diff::{FieldChange, object_changes};
use cairn_plan::plan::{Action, Change, Plan, REDACTED};
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::Value as J;

use crate::kinds::{Catalog, Kind};
use crate::observe::{Observed, Scope, observe};
use crate::refusal::Refusal;
use crate::{Cluster, ENVIRONMENT, FIELD_MANAGER, KubeError, MANAGED_BY};

/// How to plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Take ownership of fields another field manager owns (server-side apply `force`).
    pub force_conflicts: bool,
    /// Take over every declared object that exists without cairn's labels (`--adopt`), as
    /// `env.adopt` does for one.
    pub adopt: bool,
    /// Plan on a cluster other than the one the environment's inventory names.
    pub accept_cluster: bool,
    /// Objects other providers keep in the cluster (Secrets they read and write through the
    /// plan's `SecretStore`): never pruned, though the script does not declare them as
    /// Kubernetes objects.
    pub kept: BTreeSet<ResourceId>,
    /// Plan the removal of everything the environment owns, wherever it is (`cairn destroy`),
    /// rather than the script's objects.
    pub destroy: Option<Destroy>,
}

/// How a destroy treats what holds data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Destroy {
    /// Delete volume claims, data-holding custom resources and the namespace holding them too
    /// (`--delete-data`); otherwise they are kept, with the namespace around them.
    pub delete_data: bool,
}

/// The kinds a destroy reads (besides its inventory's and the script's): every built-in kind
/// cairn writes. Controllers' objects (ReplicaSets, Pods, Events) go with their owners; the
/// lock Lease and CustomResourceDefinitions (shared by every environment) are never a
/// destroy's.
const DESTROYED_KINDS: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "LimitRange",
    "NetworkPolicy",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Service",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "Ingress",
    "HorizontalPodAutoscaler",
    "PrometheusRule",
    "AlertmanagerConfig",
];

/// One step of a Kubernetes plan, with the body to apply (secrets included: never printed).
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub id: ResourceId,
    pub action: Action,
    pub kind: Kind,
    pub body: Option<J>,
    pub depends_on: Vec<ResourceId>,
    /// Applied with force though the plan is not: fields people changed by hand, taken back.
    pub force: bool,
}

/// A plan for the Kubernetes objects of an environment, ready to apply.
#[derive(Debug, Clone)]
pub struct KubePlan {
    /// What would change (printable: sensitive values redacted).
    pub plan: Plan,
    pub(crate) steps: Vec<Step>,
    pub(crate) inventory: Option<J>,
    pub(crate) catalog: Catalog,
    pub(crate) force_conflicts: bool,
    pub(crate) observed: BTreeMap<ResourceId, J>,
    /// The cluster's identity (its kube-system namespace's uid).
    pub identity: String,
}

impl KubePlan {
    /// The live object with this id, as the plan read it (other providers' state kept in
    /// Kubernetes, such as TLS Secrets, is read this way, without a request of its own).
    pub fn live(&self, id: &ResourceId) -> Option<&J> {
        self.observed.get(id)
    }

    /// Every live object the plan read (the environment's, and the declared ones that exist),
    /// by id: what the plan's Network section analyzes as the live side.
    pub fn live_objects(&self) -> impl Iterator<Item = (&ResourceId, &J)> {
        self.observed.iter()
    }

    /// What the plan read, one fingerprint per object: every object the plan covers (`absent`
    /// when it does not exist) and every object cairn manages. A saved plan is applied only
    /// while these are unchanged. Status and controller bookkeeping are left out, so a rollout
    /// progressing or a volume binding is not a change; a Secret is fingerprinted by its
    /// resourceVersion, never by its values.
    pub fn observations(&self) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = self
            .plan
            .changes
            .iter()
            .map(|c| (c.id.to_string(), "absent".to_owned()))
            .collect();
        for (id, obj) in &self.observed {
            let ours = obj
                .pointer("/metadata/labels")
                .and_then(|l| l.get(MANAGED_BY))
                .and_then(J::as_str)
                == Some("cairn");
            let key = id.to_string();
            if ours || out.contains_key(&key) {
                out.insert(key, fingerprint(&id.kind, obj));
            }
        }
        out
    }

    /// Every live object the plan read.
    pub fn observed(&self) -> impl Iterator<Item = (&ResourceId, &J)> {
        self.observed.iter()
    }

    /// The apply bodies, for tests and debugging of cairn itself. They hold secret values.
    pub fn bodies(&self) -> impl Iterator<Item = (&ResourceId, &J)> {
        self.steps
            .iter()
            .filter_map(|s| s.body.as_ref().map(|b| (&s.id, b)))
    }
}

/// Field managers of the cluster's own controllers (real servers, k3s, the sandbox).
pub(crate) const CONTROLLER_MANAGERS: &[&str] =
    &["kube-controller-manager", "k3s", "kube-scheduler"];

/// Annotation prefixes controllers write on objects cairn manages (volume binding, rollout
/// revisions): not a change anyone made.
const CONTROLLER_ANNOTATIONS: &[&str] = &[
    "pv.kubernetes.io/",
    "volume.kubernetes.io/",
    "volume.beta.kubernetes.io/",
    "deployment.kubernetes.io/",
];

/// A fingerprint of what matters in a live object: `rv:N` for a Secret (its values must not
/// leave the cluster, even hashed), otherwise a SHA-256 of the object without what the
/// cluster's controllers keep up to date — status, resourceVersion, generation, their
/// annotations and managed-field entries, a claim's bound volume — and without the times of
/// managed-field entries.
pub fn fingerprint(kind: &str, obj: &J) -> String {
    use sha2::Digest as _;
    let rv = obj
        .pointer("/metadata/resourceVersion")
        .and_then(J::as_str)
        .unwrap_or_default();
    if kind == "Secret" {
        return format!("rv:{rv}");
    }
    let mut o = obj.clone();
    if let Some(map) = o.as_object_mut() {
        map.remove("status");
    }
    crate::config_hash::unstamped(&mut o);
    if kind == "PersistentVolumeClaim"
        && let Some(spec) = o.get_mut("spec").and_then(J::as_object_mut)
    {
        spec.remove("volumeName");
    }
    if let Some(meta) = o.get_mut("metadata").and_then(J::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("generation");
        if let Some(J::Object(annotations)) = meta.get_mut("annotations") {
            annotations.retain(|k, _| !CONTROLLER_ANNOTATIONS.iter().any(|p| k.starts_with(p)));
        }
        if let Some(J::Array(fields)) = meta.get_mut("managedFields") {
            fields.retain(|f| {
                f.get("subresource").and_then(J::as_str) != Some("status")
                    && !f
                        .get("manager")
                        .and_then(J::as_str)
                        .is_some_and(|m| CONTROLLER_MANAGERS.contains(&m))
            });
            for f in fields.iter_mut() {
                if let Some(f) = f.as_object_mut() {
                    f.remove("time");
                }
            }
        }
    }
    let digest = sha2::Sha256::digest(o.to_string().as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod fingerprint_tests {
    use super::fingerprint;
    use serde_json::json;

    #[test]
    fn controllers_bookkeeping_is_not_a_change_but_an_edit_is() {
        let base = json!({
            "metadata": {"name": "data", "resourceVersion": "5", "annotations": {"a": "1"},
                "managedFields": [{"manager": "cairn", "operation": "Apply", "time": "t1", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"resources": {"requests": {"storage": "1Gi"}}},
        });
        let mut bound = base.clone();
        bound["metadata"]["resourceVersion"] = json!("9");
        bound["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] = json!("yes");
        bound["metadata"]["managedFields"][0]["time"] = json!("t2");
        bound["metadata"]["managedFields"]
            .as_array_mut()
            .expect("array")
            .push(json!({"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {}}));
        bound["spec"]["volumeName"] = json!("pv-1");
        bound["status"] = json!({"phase": "Bound"});
        let pvc = |o: &serde_json::Value| fingerprint("PersistentVolumeClaim", o);
        assert_eq!(pvc(&base), pvc(&bound));
        let mut edited = bound.clone();
        edited["metadata"]["annotations"]["a"] = json!("2");
        assert_ne!(pvc(&base), pvc(&edited));
        let mut taken = bound.clone();
        taken["metadata"]["managedFields"]
            .as_array_mut()
            .expect("array")
            .push(json!({"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {}}));
        assert_ne!(pvc(&base), pvc(&taken));
        // A Secret: its resourceVersion only, never a hash of its values.
        let secret = json!({"metadata": {"resourceVersion": "7"}, "data": {"k": "c2VjcmV0"}});
        assert_eq!(fingerprint("Secret", &secret), "rv:7");
    }
}

/// Values of generated passwords: kept from the live Secret that is their home, else new.
pub(crate) fn resolve_generated(
    state: &DesiredState,
    observed: &Observed,
) -> BTreeMap<u32, String> {
    state
        .generated
        .iter()
        .map(|(id, g)| {
            let kept = g.home.as_ref().and_then(|(secret, key)| {
                let (ns, name) = secret.split_once('/')?;
                let live = observed
                    .objects
                    .get(&ResourceId::kube("Secret", Some(ns), name))?;
                let b64 = live.pointer("/data")?.get(key)?.as_str()?;
                let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
                String::from_utf8(bytes).ok()
            });
            (*id, kept.unwrap_or_else(|| g.fresh_value()))
        })
        .collect()
}

/// The body cairn applies for a resource: sensitive values revealed, Secrets as base64 `data`
/// (a `stringData` key removed later would not be deleted on the server).
pub(crate) fn apply_body(r: &Resource, generated: &BTreeMap<u32, String>) -> Result<J, KubeError> {
    let mut body = r
        .body
        .reveal(&|id| generated.get(&id).cloned())
        .map_err(|id| KubeError::Internal(format!("generated value {id} has no value")))?;
    if r.id.kind == "Secret"
        && let J::Object(m) = &mut body
        && let Some(J::Object(string_data)) = m.remove("stringData")
    {
        let data = m
            .entry("data")
            .or_insert_with(|| J::Object(serde_json::Map::new()));
        if let J::Object(data) = data {
            for (k, v) in string_data {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                data.insert(
                    k,
                    J::String(base64::engine::general_purpose::STANDARD.encode(text)),
                );
            }
        }
    }
    Ok(body)
}

/// Hides Secret values in field changes.
pub(crate) fn redact(kind: &str, changes: &mut [FieldChange]) {
    if kind != "Secret" {
        return;
    }
    for c in changes {
        if c.path.starts_with("data") || c.path.starts_with("stringData") {
            let mask = |v: &mut Option<J>| {
                if v.is_some() {
                    *v = Some(J::String(REDACTED.to_owned()));
                }
            };
            mask(&mut c.before);
            mask(&mut c.after);
        }
    }
}

pub(crate) fn cairn_fields(live: &J) -> Option<&J> {
    live.pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|m| {
            m.get("manager").and_then(J::as_str) == Some(FIELD_MANAGER)
                && m.get("operation").and_then(J::as_str) == Some("Apply")
        })?
        .get("fieldsV1")
}

fn api_for(cluster: &Cluster, kind: &Kind, ns: Option<&str>) -> Api<DynamicObject> {
    let ar = kind.api_resource();
    match (kind.namespaced, ns) {
        (true, Some(ns)) => Api::namespaced_with(cluster.client.clone(), ns, &ar),
        _ => Api::all_with(cluster.client.clone(), &ar),
    }
}

pub(crate) fn patch_params(force: bool, dry_run: bool) -> PatchParams {
    let mut p = PatchParams::apply(FIELD_MANAGER);
    if force {
        p = p.force();
    }
    if dry_run {
        p = p.dry_run();
    }
    p
}

pub(crate) fn api_of(cluster: &Cluster, kind: &Kind, id: &ResourceId) -> Api<DynamicObject> {
    api_for(cluster, kind, id.scope.as_deref())
}

/// What a dry run says about an apparent change.
pub(crate) enum Confirmed {
    Same,
    Changed(Vec<FieldChange>),
    Refused(Refusal),
    /// Another manager owns fields the body sets: the server's message and its causes.
    Conflict(String, Vec<crate::conflicts::Cause>),
}

/// What the server answers to a dry-run apply.
pub(crate) enum DryRun {
    Accepted(J),
    NotFound,
    Conflict(String, Vec<crate::conflicts::Cause>),
    Refused(Refusal),
}

pub(crate) async fn dry_run(
    cluster: &Cluster,
    kind: &Kind,
    id: &ResourceId,
    body: &J,
    force: bool,
) -> Result<DryRun, KubeError> {
    let api = api_of(cluster, kind, id);
    let answer = api
        .patch(&id.name, &patch_params(force, true), &Patch::Apply(body))
        .await;
    match answer {
        Ok(obj) => {
            let mut after =
                serde_json::to_value(&obj).map_err(|e| KubeError::Internal(e.to_string()))?;
            if let J::Object(m) = &mut after {
                m.insert("apiVersion".into(), J::String(kind.api_version.to_string()));
                m.insert("kind".into(), J::String(kind.kind.to_string()));
            }
            Ok(DryRun::Accepted(after))
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(DryRun::NotFound),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(DryRun::Conflict(
            s.message.clone(),
            crate::conflicts::causes(&s),
        )),
        Err(kube::Error::Api(s)) => match Refusal::from_status(&s) {
            Some(r) => Ok(DryRun::Refused(r)),
            None => Err(KubeError::api(
                format!("dry-run apply {id}"),
                kube::Error::Api(s),
            )),
        },
        Err(e) => Err(KubeError::api(format!("dry-run apply {id}"), e)),
    }
}

/// A dry run of an apparent change, compared with the live object.
pub(crate) async fn confirm(
    cluster: &Cluster,
    kind: &Kind,
    id: &ResourceId,
    body: &J,
    live: &J,
    force: bool,
) -> Result<Confirmed, KubeError> {
    Ok(match dry_run(cluster, kind, id, body, force).await? {
        DryRun::Accepted(after) => {
            let changes = object_changes(live, &after);
            if changes.is_empty() {
                Confirmed::Same
            } else {
                Confirmed::Changed(changes)
            }
        }
        DryRun::Conflict(m, causes) => Confirmed::Conflict(m, causes),
        DryRun::Refused(r) => Confirmed::Refused(r),
        DryRun::NotFound => {
            return Err(KubeError::Internal(format!(
                "{id} was deleted while the plan was being made: plan again"
            )));
        }
    })
}

/// What a dry run of a creation says.
pub(crate) enum Created {
    Accepted,
    /// The object is there already, without this environment's labels.
    Exists,
    /// Its namespace (or its kind's CRD) is created by this plan: nothing to ask yet.
    Unverifiable,
    Refused(Refusal),
}

/// A dry run of a creation.
pub(crate) async fn confirm_create(
    cluster: &Cluster,
    kind: &Kind,
    id: &ResourceId,
    body: &J,
) -> Result<Created, KubeError> {
    // Asked without force: a conflict says the object exists with other managers' fields.
    // An accepted dry run of a new object has no resourceVersion; of an existing one, its own.
    Ok(match dry_run(cluster, kind, id, body, false).await? {
        DryRun::Accepted(after) => {
            let rv = after
                .pointer("/metadata/resourceVersion")
                .and_then(J::as_str);
            if rv.is_some_and(|rv| !rv.is_empty()) {
                Created::Exists
            } else {
                Created::Accepted
            }
        }
        DryRun::NotFound => Created::Unverifiable,
        DryRun::Conflict(..) => Created::Exists,
        DryRun::Refused(r) => Created::Refused(r),
    })
}

/// The live objects of the environment (one LIST per kind of `state`, and Secrets), without
/// planning anything: what `cairn status` looks at.
pub async fn live_objects(
    cluster: &Cluster,
    state: &DesiredState,
) -> Result<BTreeMap<ResourceId, J>, KubeError> {
    let mut namespaces: BTreeSet<String> = state
        .kube_objects()
        .filter_map(|r| r.id.scope.clone())
        .collect();
    if let Some(ns) = &state.environment.namespace {
        namespaces.insert(ns.clone());
    }
    let mut kinds: BTreeSet<String> = state.kube_objects().map(|r| r.id.kind.clone()).collect();
    kinds.insert("Secret".to_owned());
    let mut catalog = Catalog::for_state(cluster, state).await?;
    Ok(observe(
        cluster,
        &state.environment.name,
        &mut catalog,
        &kinds,
        Scope::In(&namespaces),
    )
    .await?
    .objects)
}

/// Plans the Kubernetes objects of `state` against `cluster`.
pub async fn plan(
    cluster: &Cluster,
    state: &DesiredState,
    options: &PlanOptions,
) -> Result<KubePlan, KubeError> {
    let env = state.environment.name.clone();
    let desired: Vec<&Resource> = state.kube_objects().collect();
    let mut namespaces: BTreeSet<String> =
        desired.iter().filter_map(|r| r.id.scope.clone()).collect();
    if let Some(ns) = &state.environment.namespace {
        namespaces.insert(ns.clone());
    }
    // Custom kinds (an operator's resources) are discovered: one request per group version.
    let mut catalog = Catalog::for_state(cluster, state).await?;
    let mut kinds_wanted = BTreeSet::new();
    for r in &desired {
        kinds_wanted.insert(r.id.kind.clone());
    }
    // Other providers read the Secrets they keep from the Secret LIST.
    if options.kept.iter().any(|id| id.kind == "Secret") {
        kinds_wanted.insert("Secret".to_owned());
    }
    let scope = if options.destroy.is_some() {
        kinds_wanted.extend(DESTROYED_KINDS.iter().map(|k| (*k).to_owned()));
        Scope::Everywhere
    } else {
        Scope::In(&namespaces)
    };
    let (identity, observed) = futures::try_join!(
        cluster.identity(),
        observe(cluster, &env, &mut catalog, &kinds_wanted, scope)
    )?;
    check_identity(state, &observed, &identity, options)?;
    check_namespace_owner(cluster, state).await?;
    let generated = resolve_generated(state, &observed);

    let force = options.force_conflicts;
    let mut found = crate::compare::compare(
        cluster, state, &desired, &catalog, &observed, &generated, options,
    )
    .await?;
    let mut steps = std::mem::take(&mut found.steps);
    let mut changes = std::mem::take(&mut found.changes);
    // What cairn owns and the script no longer declares.
    let desired_ids: BTreeSet<&ResourceId> = desired.iter().map(|r| &r.id).collect();
    for (id, live) in &observed.objects {
        if desired_ids.contains(id) || !prunable(state, options, id, live) {
            continue;
        }
        let (change, step) = prune(cluster, state, &catalog, (id, live), options.destroy).await?;
        changes.push(change);
        steps.push(step);
    }
    hold_namespaces(&mut changes, &mut steps);
    // Kept objects (protected, no longer declared) stay listed, so a later plan still finds
    // them when the script allows their deletion.
    let kept: BTreeSet<String> = changes
        .iter()
        .filter(|c| c.action == Action::Keep)
        .map(|c| catalog.inventory_name(&c.id.kind))
        .collect();
    // A destroy that leaves nothing deletes the inventory too.
    let inventory = if options.destroy.is_some() && kept.is_empty() {
        if let Some((change, mut step)) = inventory_deletion(state, &observed, &catalog) {
            // After the deletions of its rank and above (custom kinds, workloads): if one
            // fails, the inventory stays, so the next destroy still learns the kinds it lists.
            // Lower ranks (built-in kinds a destroy always reads, the namespace) wait for it.
            step.depends_on = steps
                .iter()
                .filter(|s| s.action == Action::Delete && s.id.rank >= step.id.rank)
                .map(|s| s.id.clone())
                .collect();
            changes.push(change);
            steps.push(step);
        }
        None
    } else {
        inventory_body(state, &observed, &catalog, &identity, &kept)
    };
    changes.sort_by_key(|a| order(a.action, &a.id));
    steps.sort_by_key(|a| order(a.action, &a.id));
    // Smoke checks are run after an apply, not applied: they are no provider's to plan.
    let unsupported = state
        .other_resources()
        .filter(|r| r.id.provider != cairn_model::Provider::Smoke)
        .map(|r| r.id.clone())
        .collect();
    Ok(KubePlan {
        plan: Plan {
            environment: env,
            target: cluster.name.clone(),
            changes,
            unsupported,
            notes: found.notes,
            network: Vec::new(),
        },
        steps,
        inventory,
        identity,
        catalog,
        force_conflicts: force,
        observed: observed.objects,
    })
}

/// Whether a live object the script does not declare is this environment's to prune: both of
/// cairn's labels, no owner references, not kept by another provider, not the inventory.
fn prunable(state: &DesiredState, options: &PlanOptions, id: &ResourceId, live: &J) -> bool {
    if options.kept.contains(id)
        || (id.kind == "ConfigMap" && id.name == crate::inventory_name(&state.environment))
    {
        return false;
    }
    let env = state.environment.name.as_str();
    let labels = live.pointer("/metadata/labels");
    let ours = labels.and_then(|l| l.get(MANAGED_BY)).and_then(J::as_str) == Some("cairn")
        && labels.and_then(|l| l.get(ENVIRONMENT)).and_then(J::as_str) == Some(env);
    let owned_by_other = live
        .pointer("/metadata/ownerReferences")
        .and_then(J::as_array)
        .is_some_and(|o| !o.is_empty());
    ours && !owned_by_other
}

/// The plan row and step of an owned object no longer declared: deleted, or kept when it holds
/// data the script does not allow to delete (or a namespace still holding such things). A
/// destroy deletes data only with `--delete-data`, and always a namespace left empty.
async fn prune(
    cluster: &Cluster,
    state: &DesiredState,
    catalog: &Catalog,
    (id, live): (&ResourceId, &J),
    destroy: Option<Destroy>,
) -> Result<(Change, Step), KubeError> {
    let kind = catalog
        .get(&id.kind)
        .ok_or_else(|| KubeError::UnsupportedKind(id.kind.clone()))?;
    let script_allows = state
        .environment
        .allow_delete
        .iter()
        .any(|a| *a == id.to_string());
    // Custom resources that hold data (an operator's database) carry cairn's annotation.
    let annotated = live
        .pointer("/metadata/annotations/cairn.dev~1protected")
        .and_then(J::as_str)
        == Some("true");
    // A namespace holds whatever is in it: always data, and kept even when allowed while
    // anything cairn would not delete lives there.
    let data = id.kind == "PersistentVolumeClaim" || annotated || id.kind == "Namespace";
    let (allowed, claims_go) = match destroy {
        None => (script_allows, false),
        Some(d) => (id.kind == "Namespace" || d.delete_data, d.delete_data),
    };
    let held = if allowed && id.kind == "Namespace" {
        kept_in_namespace(cluster, state, &id.name, destroy.map(|_| claims_go)).await?
    } else {
        None
    };
    let (action, reason) = if let Some(why) = held {
        (
            Action::Keep,
            format!(
                "{why}: cairn deletes a namespace only when nothing it may not delete is left in it"
            ),
        )
    } else if !allowed && data {
        let how = match destroy {
            Some(_) => "`cairn destroy --delete-data` deletes it".to_owned(),
            None => format!(
                "cairn never deletes it unless the script says env.allow_delete(\"{}\", \"{}\")",
                id.kind, id.name
            ),
        };
        (Action::Keep, format!("holds data: {how}"))
    } else if destroy.is_some() {
        (Action::Delete, "the environment is destroyed".to_owned())
    } else {
        (Action::Delete, "no longer declared".to_owned())
    };
    let change = Change {
        id: id.clone(),
        action,
        fields: Vec::new(),
        reason: Some(reason),
        holds_data: data,
        declared_at: None,
        help: None,
        server_message: None,
    };
    let step = Step {
        id: id.clone(),
        action,
        kind,
        body: None,
        depends_on: Vec::new(),
        force: false,
    };
    Ok((change, step))
}

/// A namespace about to be deleted while something of the environment is kept in it (a claim,
/// a data-holding custom resource): deleting the namespace would delete what is kept, so the
/// namespace is kept too.
fn hold_namespaces(changes: &mut [Change], steps: &mut [Step]) {
    let kept_in: BTreeSet<String> = changes
        .iter()
        .filter(|c| c.action == Action::Keep && c.id.kind != "Namespace")
        .filter_map(|c| c.id.scope.clone())
        .collect();
    for c in changes.iter_mut() {
        if c.id.kind == "Namespace" && c.action == Action::Delete && kept_in.contains(&c.id.name) {
            c.action = Action::Keep;
            c.reason = Some(
                "it holds data that is kept: cairn deletes a namespace only when nothing it may not delete is left in it"
                    .to_owned(),
            );
        }
    }
    for s in steps.iter_mut() {
        if s.id.kind == "Namespace" && s.action == Action::Delete && kept_in.contains(&s.id.name) {
            s.action = Action::Keep;
        }
    }
}

/// The deletion of the environment's inventory ConfigMap, when a destroy leaves nothing.
fn inventory_deletion(
    state: &DesiredState,
    observed: &Observed,
    catalog: &Catalog,
) -> Option<(Change, Step)> {
    let name = crate::inventory_name(&state.environment);
    let id = observed
        .objects
        .keys()
        .find(|id| id.kind == "ConfigMap" && id.name == name)?
        .clone();
    let kind = catalog.get("ConfigMap")?;
    let change = Change {
        id: id.clone(),
        action: Action::Delete,
        fields: Vec::new(),
        reason: Some("the environment's inventory: nothing of it is left".to_owned()),
        holds_data: false,
        declared_at: None,
        help: None,
        server_message: None,
    };
    let step = Step {
        id,
        action: Action::Delete,
        kind,
        body: None,
        depends_on: Vec::new(),
        force: false,
    };
    Some((change, step))
}

/// Apply order: creations and updates by rank, then deletions in reverse rank.
fn order(action: Action, id: &ResourceId) -> (u8, i32, ResourceId) {
    match action {
        Action::Delete | Action::Keep => (1, -i32::from(id.rank), id.clone()),
        _ => (0, i32::from(id.rank), id.clone()),
    }
}

/// Why a namespace about to be deleted must stay, if it must: volume claims that are not
/// going (the script does not allow it, or `destroy` — `Some(true)` with `--delete-data` — does
/// not cover them: another environment's, hand-made), other environments living in it (their
/// inventories), or objects cairn does not own (a destroy takes nothing by surprise). A few
/// LISTs, made only for a namespace that is about to go.
async fn kept_in_namespace(
    cluster: &Cluster,
    state: &DesiredState,
    ns: &str,
    destroy: Option<bool>,
) -> Result<Option<String>, KubeError> {
    let claims_go = destroy == Some(true);
    use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim};
    let env = &state.environment;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), ns);
    let claims = claims
        .list(&kube::api::ListParams::default())
        .await
        .map_err(|e| KubeError::api(format!("list the claims in namespace {ns}"), e))?;
    let may_go = |c: &PersistentVolumeClaim| {
        let name = c.metadata.name.as_deref().unwrap_or_default();
        let id = ResourceId::kube("PersistentVolumeClaim", Some(ns), name);
        let labels = c.metadata.labels.as_ref();
        let ours = labels.and_then(|l| l.get(MANAGED_BY)).map(String::as_str) == Some("cairn")
            && labels.and_then(|l| l.get(ENVIRONMENT)) == Some(&env.name);
        env.allow_delete.iter().any(|a| *a == id.to_string()) || (claims_go && ours)
    };
    let held: Vec<String> = claims
        .items
        .iter()
        .filter(|c| !may_go(c))
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    if !held.is_empty() {
        return Ok(Some(format!(
            "it holds volume claims {} ({})",
            if destroy.is_some() {
                "that are kept"
            } else {
                "the script does not allow to delete"
            },
            held.join(", ")
        )));
    }
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), ns);
    let ours = kube::api::ListParams::default().labels(&format!("{MANAGED_BY}=cairn"));
    let maps = maps
        .list(&ours)
        .await
        .map_err(|e| KubeError::api(format!("list cairn's ConfigMaps in namespace {ns}"), e))?;
    let others: Vec<String> = maps
        .items
        .iter()
        .filter(|m| {
            m.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with(crate::INVENTORY))
        })
        .filter_map(|m| m.metadata.labels.as_ref()?.get(ENVIRONMENT).cloned())
        .filter(|e| *e != env.name)
        .collect();
    if !others.is_empty() {
        return Ok(Some(format!(
            "other environments live in it ({})",
            others.join(", ")
        )));
    }
    let foreign = foreign_objects(cluster, &env.name, ns).await?;
    Ok((!foreign.is_empty()).then(|| {
        format!(
            "it holds objects cairn does not own ({}): delete them or take them over with env.adopt first",
            foreign.join(", ")
        )
    }))
}

/// Objects in `ns` that are not `env`'s, of the kinds people make by hand, leaving out what
/// the cluster makes itself (objects with owners, the root CA ConfigMap, service-account
/// tokens). At most a few names.
async fn foreign_objects(cluster: &Cluster, env: &str, ns: &str) -> Result<Vec<String>, KubeError> {
    const KINDS: &[&str] = &[
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "CronJob",
        "Service",
        "Secret",
        "ConfigMap",
    ];
    let mut out = Vec::new();
    for name in KINDS {
        let kind = crate::kinds::kind(name)
            .ok_or_else(|| KubeError::UnsupportedKind((*name).to_owned()))?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(cluster.client.clone(), ns, &kind.api_resource());
        let list = api
            .list(&kube::api::ListParams::default())
            .await
            .map_err(|e| KubeError::api(format!("list {} in {ns}", kind.plural), e))?;
        for obj in list.items {
            let meta = &obj.metadata;
            let labels = meta.labels.as_ref();
            let ours = labels.and_then(|l| l.get(ENVIRONMENT)).map(String::as_str) == Some(env);
            let owned = meta
                .owner_references
                .as_ref()
                .is_some_and(|o| !o.is_empty());
            let object_name = meta.name.clone().unwrap_or_default();
            let made_by_cluster = object_name == "kube-root-ca.crt"
                || obj.data.get("type").and_then(J::as_str)
                    == Some("kubernetes.io/service-account-token");
            if !ours && !owned && !made_by_cluster {
                out.push(format!("{name}/{object_name}"));
            }
        }
    }
    out.truncate(5);
    Ok(out)
}

/// The inventory ConfigMap: which kinds the environment has, so that pruning finds objects
/// of kinds the script no longer declares at all. `None` when it is already up to date.
/// For an environment in a namespace another one owns: that the namespace is there and owned by
/// the environment the script names. One GET, only then.
async fn check_namespace_owner(cluster: &Cluster, state: &DesiredState) -> Result<(), KubeError> {
    use k8s_openapi::api::core::v1::Namespace;
    let (Some(ns), Some(said)) = (
        &state.environment.namespace,
        &state.environment.namespace_owner,
    ) else {
        return Ok(());
    };
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    let live = api
        .get_opt(ns)
        .await
        .map_err(|e| KubeError::api(format!("get namespace {ns}"), e))?;
    let labels = live.as_ref().and_then(|n| n.metadata.labels.as_ref());
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    let actual = match (live.is_some(), label(MANAGED_BY), label(ENVIRONMENT)) {
        (false, _, _) => "does not exist yet: apply its environment first".to_owned(),
        (true, Some("cairn"), Some(owner)) if owner == said => return Ok(()),
        (true, Some("cairn"), Some(owner)) => format!("is owned by environment {owner}"),
        _ => "is not cairn's".to_owned(),
    };
    Err(KubeError::NamespaceOwner {
        namespace: ns.clone(),
        said: said.clone(),
        actual,
    })
}

/// Refuses an environment whose inventory was written on another cluster.
fn check_identity(
    state: &DesiredState,
    observed: &Observed,
    identity: &str,
    options: &PlanOptions,
) -> Result<(), KubeError> {
    let Some(ns) = &state.environment.namespace else {
        return Ok(());
    };
    let recorded = observed
        .objects
        .get(&ResourceId::kube(
            "ConfigMap",
            Some(ns),
            &crate::inventory_name(&state.environment),
        ))
        .and_then(|cm| cm.pointer("/data/cluster"))
        .and_then(J::as_str);
    match recorded {
        Some(r) if r != identity && !options.accept_cluster => Err(KubeError::OtherCluster {
            env: state.environment.name.clone(),
            recorded: r.to_owned(),
            current: identity.to_owned(),
        }),
        _ => Ok(()),
    }
}

fn inventory_body(
    state: &DesiredState,
    observed: &Observed,
    catalog: &Catalog,
    identity: &str,
    kept: &BTreeSet<String>,
) -> Option<J> {
    let ns = state.environment.namespace.clone()?;
    let kinds: BTreeSet<String> = state
        .kube_objects()
        .map(|r| catalog.inventory_name(&r.id.kind))
        .chain(kept.iter().cloned())
        .collect();
    let kinds = kinds.into_iter().collect::<Vec<_>>().join(",");
    let name = crate::inventory_name(&state.environment);
    let id = ResourceId::kube("ConfigMap", Some(&ns), &name);
    let current = |key: &str| {
        observed
            .objects
            .get(&id)
            .and_then(|cm| cm.pointer(&format!("/data/{key}")))
            .and_then(J::as_str)
    };
    // An environment with a lifetime expires that long after its last apply: every apply
    // writes the new time.
    let expires_at = state.environment.expires.map(|ttl| {
        crate::lock::micro_time(std::time::SystemTime::now() + std::time::Duration::from_secs(ttl))
    });
    if current("kinds") == Some(kinds.as_str())
        && current("cluster") == Some(identity)
        && expires_at.is_none()
        && current(EXPIRES_AT).is_none()
    {
        return None;
    }
    let mut data = serde_json::json!({ "kinds": kinds, "cluster": identity });
    if let (Some(at), J::Object(map)) = (expires_at, &mut data) {
        map.insert(EXPIRES_AT.to_owned(), J::String(at));
    }
    Some(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": { MANAGED_BY: "cairn", ENVIRONMENT: state.environment.name },
        },
        "data": data,
    }))
}

/// The inventory's key for when the environment expires (RFC 3339, UTC).
pub const EXPIRES_AT: &str = "expires-at";

/// When the environment expires, as its inventory says (RFC 3339), if it has a lifetime.
pub async fn expires_at(
    cluster: &Cluster,
    env: &cairn_model::EnvironmentMeta,
) -> Result<Option<String>, KubeError> {
    use k8s_openapi::api::core::v1::ConfigMap;
    let Some(ns) = &env.namespace else {
        return Ok(None);
    };
    let name = crate::inventory_name(env);
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), ns);
    let map = api
        .get_opt(&name)
        .await
        .map_err(|e| KubeError::api(format!("get the inventory {ns}/{name}"), e))?;
    Ok(map.and_then(|m| m.data?.get(EXPIRES_AT).cloned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cairn_model::{Sensitive, SensitivePart, Value};

    #[test]
    fn a_namespace_holding_kept_data_is_kept_too() {
        let change = |kind: &str, ns: Option<&str>, name: &str, action: Action| Change {
            id: ResourceId::kube(kind, ns, name),
            action,
            fields: Vec::new(),
            reason: None,
            holds_data: true,
            declared_at: None,
            help: None,
            server_message: None,
        };
        let mut changes = vec![
            change("postgresql", Some("pr-1"), "db", Action::Keep),
            change("Namespace", None, "pr-1", Action::Delete),
            change("Namespace", None, "pr-2", Action::Delete),
        ];
        let kind = crate::kinds::kind("Namespace").cloned().unwrap();
        let mut steps: Vec<Step> = changes
            .iter()
            .map(|c| Step {
                id: c.id.clone(),
                action: c.action,
                kind: kind.clone(),
                body: None,
                depends_on: Vec::new(),
                force: false,
            })
            .collect();
        hold_namespaces(&mut changes, &mut steps);
        assert_eq!(changes[1].action, Action::Keep);
        assert_eq!(steps[1].action, Action::Keep);
        assert!(
            changes[1]
                .reason
                .as_deref()
                .unwrap()
                .contains("holds data that is kept")
        );
        assert_eq!(changes[2].action, Action::Delete, "pr-2 holds nothing");
    }

    #[test]
    fn secrets_are_applied_as_base64_data_with_generated_values() {
        let mut body = Value::obj([
            ("apiVersion", Value::str("v1")),
            ("kind", Value::str("Secret")),
            ("metadata", Value::obj([("name", Value::str("db"))])),
        ]);
        body.insert(
            "stringData",
            Value::obj([
                ("USER", Value::str("app")),
                (
                    "PASSWORD",
                    Value::Sensitive(Sensitive::from_part(SensitivePart::Generated {
                        id: 7,
                        length: 8,
                    })),
                ),
            ]),
        );
        let r = Resource {
            id: ResourceId::kube("Secret", Some("ns"), "db"),
            body,
            depends_on: vec![],
            protected: false,
            span: None,
            field_spans: Default::default(),
        };
        let generated = BTreeMap::from([(7, "s3cr3tpw".to_owned())]);
        let applied = apply_body(&r, &generated).unwrap();
        assert!(applied.get("stringData").is_none());
        assert_eq!(applied["data"]["USER"], "YXBw");
        assert_eq!(applied["data"]["PASSWORD"], "czNjcjN0cHc=");
    }

    #[test]
    fn secret_values_are_redacted_in_changes() {
        let mut changes = vec![FieldChange {
            path: "data.PASSWORD".into(),
            before: Some(J::String("b2xk".into())),
            after: Some(J::String("bmV3".into())),
        }];
        redact("Secret", &mut changes);
        assert_eq!(changes[0].before, Some(J::String(REDACTED.into())));
        assert_eq!(changes[0].after, Some(J::String(REDACTED.into())));
    }
}
