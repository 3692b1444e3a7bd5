//! Desired objects against live ones: a local comparison first, then a server-side dry run of
//! every apparent change and of every creation (so a refusal or conflict shows in `plan`, never
//! first in `apply`), and what to do when the server refuses a change in place.
//!
//! A refused change is replaced (deleted and created again) only when nothing is lost: a Job
//! (a run, not data), a Deployment's selector, a Service's address. It is refused — the plan
//! cannot be applied — when the object holds data (a claim, a `holds_data` custom resource)
//! and the script has not said `env.allow_delete`, when it is a StatefulSet and the script has
//! not said `env.allow_replace`, when it is a namespace, and when the server refuses the
//! object itself (not an immutable field).

use cairn_model::validate::Quantity;
use cairn_model::{DesiredState, Resource};
use cairn_plan::diff::{FieldChange, removed_fields, subset_changes};
use cairn_plan::plan::{Action, Change};
use futures::StreamExt;
use serde_json::Value as J;

use crate::kinds::{Catalog, Kind};
use crate::observe::Observed;
use crate::plan::{
    Confirmed, Created, DryRun, PlanOptions, Step, api_of, apply_body, cairn_fields, confirm,
    confirm_create, redact,
};
use crate::refusal::Refusal;
use crate::{Cluster, ENVIRONMENT, KubeError, MANAGED_BY};

/// The plan's steps and changes for the declared objects.
#[derive(Default)]
pub(crate) struct Compared {
    pub steps: Vec<Step>,
    pub changes: Vec<Change>,
    pub notes: Vec<String>,
    /// The workloads the change of a config object they read restarts.
    restarts: crate::config_hash::Restarts,
}

/// A declared object whose fate a dry run decides.
struct Pending<'a> {
    r: &'a Resource,
    kind: Kind,
    body: J,
    live: Option<J>,
    local: Vec<FieldChange>,
}

/// What happens to one object, as the plan shows it.
struct Decision {
    action: Action,
    fields: Vec<FieldChange>,
    reason: Option<String>,
    help: Option<String>,
    server_message: Option<String>,
    /// The body to apply instead of the declared one (fields left to a controller).
    body: Option<J>,
    /// Applied with force: fields people changed by hand, taken back.
    force: bool,
}

impl Decision {
    fn plain(action: Action, fields: Vec<FieldChange>, reason: Option<String>) -> Decision {
        Decision {
            action,
            fields,
            reason,
            help: None,
            server_message: None,
            body: None,
            force: false,
        }
    }

    /// Refused by cairn itself (not the server): another environment's object, or one to adopt.
    fn blocked(fields: Vec<FieldChange>, reason: String, help: String) -> Decision {
        Decision {
            help: Some(help),
            ..Decision::plain(Action::Refuse, fields, Some(reason))
        }
    }

    /// A replacement the server's refusal calls for, saying why.
    fn replace(r: &Refusal, fields: Vec<FieldChange>, reason: String) -> Decision {
        Decision {
            server_message: Some(r.message.clone()),
            ..Decision::plain(Action::Replace, fields, Some(reason))
        }
    }

    fn refused(r: &Refusal, fields: Vec<FieldChange>, help: String) -> Decision {
        Decision {
            help: Some(help),
            server_message: Some(r.message.clone()),
            ..Decision::plain(Action::Refuse, fields, Some(r.summary()))
        }
    }
}

/// The body cairn applies for each desired object, built on every core (a body is pure work
/// on the script's values: nothing is read or written).
fn bodies_of(
    desired: &[&Resource],
    generated: &std::collections::BTreeMap<u32, String>,
) -> Result<std::collections::BTreeMap<cairn_model::ResourceId, J>, KubeError> {
    crate::par::map(desired, |r| Ok((r.id.clone(), apply_body(r, generated)?)))
        .into_iter()
        .collect()
}

/// Each declared object's live object (`None`: there is none) and what differs: the changed
/// fields, and whether fields cairn applied before are no longer declared.
fn differences<'o>(
    desired: &[&Resource],
    bodies: &std::collections::BTreeMap<cairn_model::ResourceId, J>,
    observed: &'o Observed,
) -> Vec<Option<(&'o J, Vec<FieldChange>, bool)>> {
    static NO_BODY: J = J::Null;
    crate::par::map(desired, |r| {
        let live = observed.objects.get(&r.id)?;
        let body = bodies.get(&r.id).unwrap_or(&NO_BODY);
        let removed = cairn_fields(live).is_some_and(|f| !removed_fields(f, body).is_empty());
        Some((live, subset_changes(body, live), removed))
    })
}

pub(crate) async fn compare(
    cluster: &Cluster,
    state: &DesiredState,
    desired: &[&Resource],
    catalog: &Catalog,
    observed: &Observed,
    generated: &std::collections::BTreeMap<u32, String>,
    options: &PlanOptions,
) -> Result<Compared, KubeError> {
    let force = options.force_conflicts;
    let mut out = Compared::default();
    let mut pending = Vec::new();
    let mut bodies = bodies_of(desired, generated)?;
    out.restarts = crate::config_hash::stamp(&mut bodies, observed);
    let differences = differences(desired, &bodies, observed);
    for (r, difference) in desired.iter().zip(differences) {
        let kind = catalog
            .get(&r.id.kind)
            .ok_or_else(|| KubeError::UnsupportedKind(r.id.kind.clone()))?;
        let body = bodies.remove(&r.id).unwrap_or(J::Null);
        let Some((live, local, removed)) = difference else {
            pending.push(Pending {
                r,
                kind,
                body,
                live: None,
                local: Vec::new(),
            });
            continue;
        };
        if local.is_empty() && !removed {
            out.push(
                r,
                kind,
                body,
                Decision::plain(Action::NoOp, Vec::new(), None),
            );
        } else {
            pending.push(Pending {
                r,
                kind,
                body,
                live: Some(live.clone()),
                local,
            });
        }
    }
    // Each object's dry run and what follows from its answer (a claim's class, an existing
    // object's owner) run together, as many at once as the cluster's bound on requests in
    // flight lets go.
    let decided: Vec<_> = futures::stream::iter(pending.into_iter().map(|p| async move {
        let decision = decide(cluster, state, &p, force, options).await;
        (p, decision)
    }))
    .buffer_unordered(cluster.requests_in_flight())
    .collect()
    .await;
    let mut unverified = 0;
    for (p, decision) in decided {
        let (decision, verified) = decision?;
        unverified += usize::from(!verified);
        out.push(p.r, p.kind, p.body, decision);
    }
    if unverified > 0 {
        out.notes.push(format!(
            "{unverified} new object(s) could not be dry-run: their namespace or custom resource definition is created by this plan"
        ));
    }
    Ok(out)
}

/// What to do with one object that may change: its dry run, then the decision its answer
/// calls for; `false` when a new object could not be dry-run.
async fn decide(
    cluster: &Cluster,
    state: &DesiredState,
    p: &Pending<'_>,
    force: bool,
    options: &PlanOptions,
) -> Result<(Decision, bool), KubeError> {
    let decision = match &p.live {
        Some(live) => {
            let c = confirm(cluster, &p.kind, &p.r.id, &p.body, live, force).await?;
            updated(cluster, state, p, c).await
        }
        None => match confirm_create(cluster, &p.kind, &p.r.id, &p.body).await? {
            Created::Unverifiable => {
                return Ok((Decision::plain(Action::Create, Vec::new(), None), false));
            }
            Created::Exists => existing(cluster, state, p, options).await?,
            c => created(c),
        },
    };
    Ok((decision, true))
}

impl Compared {
    fn push(&mut self, r: &Resource, kind: Kind, body: J, mut d: Decision) {
        redact(&kind.kind, &mut d.fields);
        let changed = self.restarts.changed.get(&r.id);
        if let Some(why) = crate::config_hash::explain(&mut d.fields, changed) {
            d.reason = Some(match d.reason.take() {
                Some(other) => format!("{why}; {other}"),
                None => why,
            });
        }
        self.changes.push(Change {
            id: r.id.clone(),
            action: d.action,
            fields: d.fields,
            reason: d.reason,
            help: d.help,
            server_message: d.server_message,
            declared_at: (d.action == Action::Refuse)
                .then(|| r.span.as_ref().map(|s| format!("{}:{}", s.file, s.line)))
                .flatten(),
            holds_data: r.protected || holds_data(&r.id.kind),
        });
        self.steps.push(Step {
            id: r.id.clone(),
            action: d.action,
            kind,
            body: Some(d.body.unwrap_or(body)),
            depends_on: r.depends_on.clone(),
            force: d.force,
        });
    }
}

/// Built-in kinds whose objects are data: a claim, a volume.
fn holds_data(kind: &str) -> bool {
    matches!(kind, "PersistentVolumeClaim" | "PersistentVolume")
}

fn conflict_reason(message: &str) -> String {
    format!("{message}; apply with --force-conflicts to take these fields over")
}

fn created(c: Created) -> Decision {
    match c {
        Created::Accepted | Created::Unverifiable | Created::Exists => {
            Decision::plain(Action::Create, Vec::new(), None)
        }
        Created::Refused(r) => Decision::refused(
            &r,
            Vec::new(),
            "the server refuses to create it as the script declares it: change the script"
                .to_owned(),
        ),
    }
}

async fn updated(
    cluster: &Cluster,
    state: &DesiredState,
    p: &Pending<'_>,
    c: Confirmed,
) -> Decision {
    match c {
        Confirmed::Same => Decision::plain(Action::NoOp, Vec::new(), None),
        Confirmed::Changed(fields) => Decision::plain(Action::Update, fields, None),
        Confirmed::Conflict(m, causes) => {
            match resolve_conflict(cluster, state, p, &causes).await {
                Ok(Some(d)) => d,
                Ok(None) => Decision::plain(Action::Update, Vec::new(), Some(conflict_reason(&m))),
                Err(e) => Decision::plain(
                    Action::Update,
                    Vec::new(),
                    Some(format!("{}; {e}", conflict_reason(&m))),
                ),
            }
        }
        Confirmed::Refused(r) => refused(cluster, state, p, &r).await,
    }
}

/// A conflict with people's tools or controllers only: the controllers' fields left out of
/// the body, people's taken back by a forced dry run whose result the plan shows. `None` when
/// another tool owns a field (then only `--force-conflicts` takes it).
async fn resolve_conflict(
    cluster: &Cluster,
    state: &DesiredState,
    p: &Pending<'_>,
    causes: &[crate::conflicts::Cause],
) -> Result<Option<Decision>, KubeError> {
    use crate::conflicts::{Owner, left, owner, strip, taken_back};
    let leave_to = &state.environment.leave_to;
    let by = |o: Owner| causes.iter().filter(move |c| owner(c, leave_to) == o);
    if causes.is_empty() || by(Owner::Other).next().is_some() {
        return Ok(None);
    }
    let Some(live) = &p.live else {
        return Ok(None);
    };
    let mut body = p.body.clone();
    let controllers: Vec<_> = by(Owner::Controller).collect();
    for c in &controllers {
        strip(&mut body, &c.field);
    }
    let people: Vec<_> = by(Owner::Person).collect();
    let force = !people.is_empty();
    let mut reasons = Vec::new();
    if force {
        reasons.push(taken_back(&people));
    }
    if !controllers.is_empty() {
        reasons.push(left(&controllers));
    }
    let confirmed = confirm(cluster, &p.kind, &p.r.id, &body, live, force).await?;
    let (action, fields) = match confirmed {
        Confirmed::Same => (Action::NoOp, Vec::new()),
        Confirmed::Changed(fields) => (Action::Update, fields),
        // Still refused or in conflict: shown as the server says.
        Confirmed::Refused(_) | Confirmed::Conflict(..) => return Ok(None),
    };
    let reason = (action != Action::NoOp).then(|| reasons.join("; "));
    Ok(Some(Decision {
        body: Some(body),
        force,
        ..Decision::plain(action, fields, reason)
    }))
}

/// A change the server refuses in place: replaced when nothing is lost or the script allows
/// it, refused otherwise.
async fn refused(
    cluster: &Cluster,
    state: &DesiredState,
    p: &Pending<'_>,
    r: &Refusal,
) -> Decision {
    let id = &p.r.id;
    let allowed = |list: &[String]| list.iter().any(|a| *a == id.to_string());
    let fields = p.local.clone();
    let what = r.summary();
    if id.kind == "Namespace" {
        let help = "a namespace is never replaced: everything in it would be deleted; keep the field as it is".to_owned();
        return Decision::refused(r, fields, help);
    }
    if id.kind == "CustomResourceDefinition" {
        let help = "a CustomResourceDefinition is never replaced: deleting it deletes every resource of its kind, in every namespace; keep the field as it is".to_owned();
        return Decision::refused(r, fields, help);
    }
    // A claim always holds data; one declared with its own `allow_delete: true` (not
    // protected) may be replaced, as the script says, and still counts as losing data.
    let claim = id.kind == "PersistentVolumeClaim";
    if p.r.protected || holds_data(&id.kind) {
        let replaceable = r.immutable() || r.code == 403;
        let permitted = allowed(&state.environment.allow_delete) || (claim && !p.r.protected);
        if replaceable && permitted {
            let reason = format!(
                "{what}: replaced, as the script allows with env.allow_delete: its data is lost"
            );
            return Decision::replace(r, fields, reason);
        }
        let help = data_help(cluster, p, r).await;
        return Decision::refused(r, fields, help);
    }
    if !r.immutable() {
        let help =
            "the server refuses the object as the script declares it: change the script".to_owned();
        return Decision::refused(r, fields, help);
    }
    // An operator's resource: what deleting it makes the operator do is unknown to cairn.
    if crate::kinds::kind(&id.kind).is_none() {
        if allowed(&state.environment.allow_replace) {
            let reason = format!(
                "{what}: the {} will be deleted and created again, as the script allows with env.allow_replace",
                id.kind
            );
            return Decision::replace(r, fields, reason);
        }
        let help = format!(
            "an operator's {kind} cannot change this in place, and what deleting it makes the operator do (drop a database, a volume) is not cairn's to guess: env.allow_replace(\"{kind}\", \"{}\") deletes it and creates it again; declare it with holds_data: true if it holds data",
            id.name,
            kind = id.kind
        );
        return Decision::refused(r, fields, help);
    }
    if id.kind == "StatefulSet" {
        if allowed(&state.environment.allow_replace) {
            let reason = format!(
                "{what}: the StatefulSet will be deleted with its pods orphaned and created again; its volume claims are kept"
            );
            return Decision::replace(r, fields, reason);
        }
        let help = format!(
            "a StatefulSet's {} cannot change in place (only replicas, template, updateStrategy, minReadySeconds and persistentVolumeClaimRetentionPolicy can); env.allow_replace(\"StatefulSet\", \"{}\") deletes it keeping its pods and volume claims and creates it again (existing claims keep their size)",
            changed_spec_fields(&p.local),
            id.name
        );
        return Decision::refused(r, fields, help);
    }
    let reason = format!("{what}: the {} will be deleted and created again", id.kind);
    Decision::replace(r, fields, reason)
}

/// `spec.volumeClaimTemplates, spec.serviceName`: the spec fields a local comparison found
/// changed, outside those a StatefulSet may change.
fn changed_spec_fields(local: &[FieldChange]) -> String {
    const MUTABLE: &[&str] = &[
        "replicas",
        "template",
        "updateStrategy",
        "minReadySeconds",
        "persistentVolumeClaimRetentionPolicy",
    ];
    let mut out: Vec<String> = Vec::new();
    for f in local {
        let top = f.path.split(['.', '[']).take(2).collect::<Vec<_>>();
        if let [first, second] = top.as_slice()
            && *first == "spec"
            && !MUTABLE.contains(second)
        {
            let name = format!("spec.{second}");
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    if out.is_empty() {
        "spec".to_owned()
    } else {
        out.join(", ")
    }
}

fn quantity_change(local: &[FieldChange], suffix: &str) -> Option<(Quantity, Quantity)> {
    let f = local.iter().find(|f| f.path.ends_with(suffix))?;
    let q = |v: &Option<J>| Quantity::parse(v.as_ref()?.as_str()?).ok();
    Some((q(&f.before)?, q(&f.after)?))
}

/// What the user can do about a refused change to something that holds data.
async fn data_help(cluster: &Cluster, p: &Pending<'_>, r: &Refusal) -> String {
    let id = &p.r.id;
    let replace = format!(
        "env.allow_delete(\"{}\", \"{}\") would replace it, and its data would be lost",
        id.kind, id.name
    );
    if id.kind != "PersistentVolumeClaim" {
        return format!(
            "it holds data: keep the field as it is, or migrate to a new one; {replace}"
        );
    }
    let live = p.live.as_ref();
    let text = |ptr: &str| {
        live.and_then(|l| l.pointer(ptr))
            .and_then(J::as_str)
            .unwrap_or("")
    };
    let class = text("/spec/storageClassName").to_owned();
    let bound = text("/status/phase") == "Bound";
    let why = match quantity_change(&p.local, "resources.requests.storage") {
        Some((before, after)) if after < before => "a claim cannot shrink".to_owned(),
        Some(_) if !bound => format!(
            "the claim cannot grow before it is bound (StorageClass {class} binds it when a pod first uses it), and an unbound claim's spec cannot change"
        ),
        Some(_) => match expansion(cluster, &class).await {
            None => format!("the claim cannot grow: StorageClass {class} does not exist"),
            Some(_) => format!(
                "the claim cannot grow: StorageClass {class} does not allow volume expansion"
            ),
        },
        None => format!(
            "a claim's spec cannot change once it is created ({})",
            r.summary()
        ),
    };
    format!("{why}; keep the size, or declare a new claim and migrate the data; {replace}")
}

/// Whether a StorageClass allows expansion (`None`: it does not exist). One GET, asked only
/// when a claim's resize is refused.
async fn expansion(cluster: &Cluster, class: &str) -> Option<bool> {
    use k8s_openapi::api::storage::v1::StorageClass;
    if class.is_empty() {
        return None;
    }
    let api: kube::Api<StorageClass> = kube::Api::all(cluster.client.clone());
    let sc = api.get_opt(class).await.ok()??;
    Some(sc.allow_volume_expansion == Some(true))
}

/// A declared object that is already there without this environment's labels: another
/// environment's (refused: cairn never changes it), or nobody's — made with kubectl or another
/// tool — which is adopted only when the script (`env.adopt`) or `--adopt` says so.
async fn existing(
    cluster: &Cluster,
    state: &DesiredState,
    p: &Pending<'_>,
    options: &PlanOptions,
) -> Result<Decision, KubeError> {
    let id = &p.r.id;
    let api = api_of(cluster, &p.kind, id);
    let live = api
        .get_opt(&id.name)
        .await
        .map_err(|e| KubeError::api(format!("get {id}"), e))?;
    let Some(live) = live else {
        return Ok(Decision::plain(Action::Create, Vec::new(), None));
    };
    let live = serde_json::to_value(&live).map_err(|e| KubeError::Internal(e.to_string()))?;
    let label = |k: &str| {
        live.pointer("/metadata/labels")
            .and_then(|l| l.get(k))
            .and_then(J::as_str)
    };
    let env = &state.environment.name;
    if label(MANAGED_BY) == Some("cairn") {
        let owner = label(ENVIRONMENT).unwrap_or("(none)");
        let reason = format!(
            "belongs to environment {owner}: cairn never changes another environment's objects"
        );
        let help = if id.kind == "Namespace" {
            format!(
                "give environment {env} a namespace of its own, or declare what it needs in {owner}"
            )
        } else {
            format!(
                "rename it in this script, or declare it in one environment only ({owner} or {env})"
            )
        };
        return Ok(Decision::blocked(Vec::new(), reason, help));
    }
    // The fields the script would take, and those it would leave to their managers.
    let after = match crate::plan::dry_run(cluster, &p.kind, id, &p.body, true).await? {
        DryRun::Accepted(after) => after,
        DryRun::NotFound | DryRun::Conflict(..) => {
            return Ok(Decision::plain(Action::Create, Vec::new(), None));
        }
        DryRun::Refused(r) => {
            let help = "the server refuses the object as the script declares it: change the script";
            return Ok(Decision::refused(&r, Vec::new(), help.to_owned()));
        }
    };
    let fields = cairn_plan::diff::object_changes(&live, &after);
    let mut reason = format!(
        "exists without cairn's labels (written by {})",
        other_managers(&live).join(", ")
    );
    let left = left_to_others(&live, &p.body);
    if !left.is_empty() {
        reason.push_str(&format!(
            "; fields the script does not declare stay with them: {}",
            left.join(", ")
        ));
    }
    let allowed = options.adopt || state.environment.adopt.iter().any(|a| *a == id.to_string());
    if allowed {
        return Ok(Decision::plain(Action::Adopt, fields, Some(reason)));
    }
    let help = format!(
        "cairn never takes an object over implicitly: env.adopt(\"{}\", \"{}\") in the script, or `--adopt`, takes it over",
        id.kind, id.name
    );
    Ok(Decision::blocked(fields, reason, help))
}

/// The field managers of a live object, other than cairn and the cluster's controllers.
fn other_managers(live: &J) -> Vec<String> {
    let mut out: Vec<String> = managed_entries(live)
        .filter_map(|e| e.get("manager").and_then(J::as_str).map(str::to_owned))
        .collect();
    out.dedup();
    if out.is_empty() {
        out.push("an unknown client".to_owned());
    }
    out
}

fn managed_entries(live: &J) -> impl Iterator<Item = &J> {
    live.pointer("/metadata/managedFields")
        .and_then(J::as_array)
        .into_iter()
        .flatten()
        .filter(|e| {
            let m = e.get("manager").and_then(J::as_str).unwrap_or("");
            e.get("subresource").and_then(J::as_str) != Some("status")
                && m != crate::FIELD_MANAGER
                && !crate::plan::CONTROLLER_MANAGERS.contains(&m)
        })
}

/// Fields other managers own that the script does not declare: they stay after adoption.
fn left_to_others(live: &J, body: &J) -> Vec<String> {
    let mut out: Vec<String> = managed_entries(live)
        .filter_map(|e| e.get("fieldsV1"))
        .flat_map(|f| removed_fields(f, body))
        .filter(|p| !p.contains("last-applied-configuration"))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statefulset_fields_outside_the_mutable_ones_are_named() {
        let f = |p: &str| FieldChange {
            path: p.into(),
            before: None,
            after: None,
        };
        let local = [
            f("spec.volumeClaimTemplates[data].spec.resources.requests.storage"),
            f("spec.replicas"),
            f("spec.serviceName"),
        ];
        assert_eq!(
            changed_spec_fields(&local),
            "spec.volumeClaimTemplates, spec.serviceName"
        );
        assert_eq!(changed_spec_fields(&[]), "spec");
    }
}
