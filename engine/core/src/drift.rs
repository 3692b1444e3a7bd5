//! `drift`: what changed outside cairn since its last apply — a `kubectl edit`, another
//! field manager, a record changed by hand — as opposed to what the script changed and is
//! not applied yet.
//!
//! The baseline is the environment's last successful revision (see `history`): its sources
//! are evaluated with today's variables, and a change in today's plan is drift when the
//! resource is declared the same way in that revision (the live object moved, not the
//! script). Without a revision, a Kubernetes change is drift when the live object carries
//! fields another field manager wrote.

use cairn_kube::history::Revision;
use cairn_model::{DesiredState, ResourceId};
use cairn_plan::plan::{Action, Change};
use serde_json::Value as J;

use crate::error::Result;
use crate::plan::LivePlan;
use crate::target::Target;

/// Field managers that are the cluster's own controllers, not people or other tools.
const CONTROLLERS: &[&str] = &[
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-apiserver",
    "k3s",
];

/// Who, other than cairn and the cluster's controllers, wrote fields of a live object.
fn foreign_managers(live: &J) -> Vec<String> {
    let mut out: Vec<String> = live
        .pointer("/metadata/managedFields")
        .and_then(J::as_array)
        .into_iter()
        .flatten()
        .filter(|f| f.get("subresource").and_then(J::as_str) != Some("status"))
        .filter_map(|f| f.get("manager").and_then(J::as_str))
        .filter(|m| *m != cairn_kube::FIELD_MANAGER && !CONTROLLERS.contains(m))
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// How the state declares a resource (DNS names compare without case, as the zone does).
fn declared(state: &DesiredState, id: &ResourceId) -> Option<J> {
    state.get(id).map(|r| r.body.to_json()).or_else(|| {
        let key = id.to_string().to_ascii_lowercase();
        state
            .resources
            .iter()
            .find(|r| r.id.provider == id.provider && r.id.to_string().to_ascii_lowercase() == key)
            .map(|r| r.body.to_json())
    })
}

/// The alert rules and routes a state declares (the objects they become are derived from them).
fn alerts(state: &DesiredState) -> Vec<J> {
    state
        .resources
        .iter()
        .filter(|r| r.id.provider == cairn_model::Provider::Alerts)
        .map(|r| serde_json::json!([r.id.to_string(), r.body.to_json()]))
        .collect()
}

/// Whether every changed field of a change is a redacted value: a Secret whose values differ
/// (a CI variable rotated, or a hand edit — told apart by who wrote the object).
fn only_sensitive(c: &Change) -> bool {
    !c.fields.is_empty()
        && c.fields.iter().all(|f| {
            [&f.before, &f.after]
                .iter()
                .any(|v| v.as_ref().and_then(J::as_str) == Some(cairn_plan::plan::REDACTED))
        })
}

/// One drifted resource.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Drifted {
    /// The change `apply` would make to put it back.
    #[serde(flatten)]
    pub change: Change,
    /// Field managers other than cairn that wrote the live object.
    pub changed_by: Vec<String>,
}

/// The environment's last successful revision with sources: drift's baseline.
pub async fn baseline(target: &Target, environment: &str) -> Result<Option<Revision>> {
    let revisions = cairn_kube::history::list(&target.cluster, environment).await?;
    Ok(revisions
        .into_iter()
        .rev()
        .find(|r| r.outcome == "succeeded" && !r.sources.is_empty()))
}

/// What drift compared with, for people: the baseline revision, or why there is none.
pub fn compared_with(baseline: Option<&Revision>, evaluated: bool) -> String {
    match baseline {
        Some(r) if !evaluated => format!(
            "revision {} does not evaluate any more; changes are told apart by their field managers",
            r.number
        ),
        Some(r) => format!("revision {} (applied {} by {})", r.number, r.time, r.author),
        None => "the field managers of the live objects (no revision recorded yet)".to_owned(),
    }
}

/// The versioned JSON document of a drift report (`drift --json`).
pub fn document(
    environment: &str,
    target: &str,
    compared_with: &str,
    baseline: Option<&Revision>,
    found: &Found,
) -> serde_json::Value {
    serde_json::json!({
        "format_version": 1,
        "environment": environment,
        "target": target,
        "compared_with": compared_with,
        "baseline_revision": baseline.map(|r| r.number),
        "drift": found.drifted,
        "pending": found.pending,
        "added": found.added,
        "has_drift": !found.drifted.is_empty() || !found.added.is_empty(),
    })
}

/// One drifted resource for people: the plan's lines, then who changed it.
fn drifted_text(out: &mut String, d: &Drifted) {
    use std::fmt::Write as _;
    let c = &d.change;
    let _ = writeln!(out, "  {} {}", c.action.symbol(), c.id);
    let shown = |v: &Option<J>| v.as_ref().map_or("(none)".to_owned(), J::to_string);
    for f in &c.fields {
        let (live, declared) = (shown(&f.before), shown(&f.after));
        let _ = writeln!(out, "      {}: live {live} → declared {declared}", f.path);
    }
    if let Some(reason) = &c.reason {
        let _ = writeln!(out, "      ({reason})");
    }
    if !d.changed_by.is_empty() {
        let _ = writeln!(out, "      (changed by {})", d.changed_by.join(", "));
    } else if c.action == Action::Create {
        let _ = writeln!(out, "      (deleted outside cairn)");
    }
}

/// What drift found, for people: what it compared with, each drifted resource, the counts, the pending changes.
pub fn text(environment: &str, target: &str, compared_with: &str, found: &Found) -> String {
    use std::fmt::Write as _;
    let mut out = format!("Drift of {environment} on {target}, compared with {compared_with}\n\n");
    let (drifted, pending) = (&found.drifted, found.pending.len());
    if drifted.is_empty() && found.added.is_empty() {
        out.push_str("No drift: nothing changed outside cairn.\n");
    } else if !drifted.is_empty() {
        let sub = cairn_plan::plan::Plan {
            environment: environment.to_owned(),
            target: target.to_owned(),
            changes: drifted.iter().map(|d| d.change.clone()).collect(),
            unsupported: Vec::new(),
            notes: Vec::new(),
            network: Vec::new(),
        };
        for d in drifted {
            drifted_text(&mut out, d);
        }
        let s = sub.summary();
        let _ = writeln!(
            out,
            "\nDrift: {} resource(s) changed outside cairn ({} changed, {} deleted, {} added). {}",
            drifted.len(),
            s.update + s.replace,
            s.create,
            s.delete,
            what_apply_does(drifted)
        );
    }
    if !found.added.is_empty() {
        out.push_str("\nAdded outside cairn (not declared, so `cairn apply` leaves them):\n");
        for a in &found.added {
            let _ = writeln!(out, "  + {} {} (by {})", a.id, a.field, a.by);
        }
    }
    if pending > 0 {
        let _ = writeln!(
            out,
            "Not drift: {pending} change(s) of the script not applied yet (see `cairn plan`)."
        );
    }
    out
}

/// Exactly what `cairn apply` does with the drift: puts it back, but fields another tool owns,
/// which only `--force-conflicts` takes.
fn what_apply_does(drifted: &[Drifted]) -> String {
    let forced = drifted
        .iter()
        .filter(|d| {
            d.change
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("--force-conflicts"))
        })
        .count();
    match forced {
        0 => "`cairn apply` puts them back.".to_owned(),
        n if n == drifted.len() => format!(
            "Another tool owns the fields: only `cairn apply --force-conflicts` puts them back ({n})."
        ),
        n => format!(
            "`cairn apply` puts back {}; {n} need `cairn apply --force-conflicts` (another tool owns their fields).",
            drifted.len() - n
        ),
    }
}

/// A field someone added by hand to an object the environment owns (a key in a ConfigMap, an
/// annotation): not declared, so apply leaves it, but drift says it is there.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Added {
    /// The object.
    pub id: ResourceId,
    /// The field (`data.EXTRA`).
    pub field: String,
    /// Who wrote it.
    pub by: String,
}

/// What drift found: the changes of today's plan, told apart.
pub struct Found {
    /// Changed outside cairn.
    pub drifted: Vec<Drifted>,
    /// Changes of the script not applied yet.
    pub pending: Vec<Change>,
    /// Fields added by hand to declared objects.
    pub added: Vec<Added>,
}

/// Fields people's tools wrote on declared objects that the script does not declare.
fn added_by_hand(plan: &LivePlan, state: &DesiredState) -> Vec<Added> {
    let mut out = Vec::new();
    for (id, live) in plan.kube.observed() {
        let Some(declared) = state.get(id).map(|r| r.body.to_json()) else {
            continue;
        };
        let entries = live
            .pointer("/metadata/managedFields")
            .and_then(J::as_array);
        for e in entries.into_iter().flatten() {
            let by = e.get("manager").and_then(J::as_str).unwrap_or_default();
            let foreign = e.get("subresource").and_then(J::as_str) != Some("status")
                && by != cairn_kube::FIELD_MANAGER
                && !CONTROLLERS.contains(&by);
            let Some(fields) = e.get("fieldsV1").filter(|_| foreign) else {
                continue;
            };
            for field in cairn_plan::diff::removed_fields(fields, &declared) {
                if !field.contains("last-applied-configuration") {
                    out.push(Added {
                        id: id.clone(),
                        field,
                        by: by.to_owned(),
                    });
                }
            }
        }
    }
    out
}

/// Tells drift from pending changes in today's plan: a change is drift when the resource is
/// declared the same way in the baseline's state (`base`: the last successful revision,
/// evaluated with today's variables); without a baseline, when another field manager wrote
/// the live object.
pub fn classify(plan: &LivePlan, state: &DesiredState, base: Option<&DesiredState>) -> Found {
    let alerts_changed = base.is_some_and(|base| alerts(base) != alerts(state));
    let mut found = Found {
        drifted: Vec::new(),
        pending: Vec::new(),
        added: added_by_hand(plan, state),
    };
    for c in &plan.plan.changes {
        if matches!(c.action, Action::NoOp | Action::Keep) {
            continue;
        }
        let managers = plan
            .kube
            .live(&c.id)
            .map(foreign_managers)
            .unwrap_or_default();
        let is_drift = match base {
            // A certificate due for renewal is time passing, not drift.
            _ if c.id.provider == cairn_model::Provider::Acme => false,
            // Secret values cannot be compared: drift only when someone else wrote them.
            _ if only_sensitive(c) => !managers.is_empty(),
            Some(base) => match (declared(state, &c.id), declared(base, &c.id)) {
                // Derived objects (alert rules and routes): drift unless the alerts changed.
                (None, None) => !(alerts_changed && c.action != Action::Delete),
                // Declared the same way as when last applied: the live side moved.
                (now, then) => now == then,
            },
            None => !managers.is_empty(),
        };
        if is_drift {
            found.drifted.push(Drifted {
                change: c.clone(),
                changed_by: managers,
            });
        } else {
            found.pending.push(c.clone());
        }
    }
    found
}
