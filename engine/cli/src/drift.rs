//! `cairn drift`: what changed outside cairn since its last apply — a `kubectl edit`, another
//! field manager, a record changed by hand — as opposed to what the script changed and is
//! not applied yet.
//!
//! The baseline is the environment's last successful revision (see `history`): its sources
//! are evaluated with today's variables, and a change in today's plan is drift when the
//! resource is declared the same way in that revision (the live object moved, not the
//! script). Without a revision, a Kubernetes change is drift when the live object carries
//! fields another field manager wrote.

use cairn_model::{DesiredState, ResourceId};
use cairn_plan::plan::{Action, Change, Plan};
use serde_json::Value as J;

use crate::live::{LiveArgs, LivePlan, close, connect, evaluate_checked, make_plan, runtime};
use crate::{EXIT_CHANGES, EXIT_ERROR, EXIT_OK, Io, ScriptArgs};

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
#[derive(serde::Serialize)]
struct Drifted<'a> {
    #[serde(flatten)]
    change: &'a Change,
    /// Field managers other than cairn that wrote the live object.
    changed_by: Vec<String>,
}

/// `cairn drift`: exit 0 when nothing drifted, 2 when something did, 1 on error.
pub fn drift(io: &mut Io<'_>, script: &ScriptArgs, live: &LiveArgs) -> Result<i32, String> {
    let Some(eval) = evaluate_checked(io, script)? else {
        return Ok(EXIT_ERROR);
    };
    let env = eval.state.environment.name.clone();
    let rt = runtime()?;
    let (plan, baseline) = rt.block_on(async {
        let target = connect(io, live, &eval.state.environment).await?;
        let result = async {
            let plan = make_plan(io, &target, &eval, live).await?;
            let revisions = cairn_kube::history::list(&target.cluster, &env)
                .await
                .map_err(|e| e.to_string())?;
            let last = revisions
                .into_iter()
                .rev()
                .find(|r| r.outcome == "succeeded" && !r.sources.is_empty());
            Ok::<(LivePlan, _), String>((plan, last))
        }
        .await;
        close(target).await?;
        result
    })?;
    // The baseline: the last successful revision, evaluated with today's variables. When it
    // no longer evaluates (a variable gone, a plugin moved), the field managers decide.
    let mut fallback_note = None;
    let base_state = match &baseline {
        Some(rev) => match crate::history::evaluate_revision(io, rev, script.env_file.as_deref()) {
            Ok(Some((eval, _))) => Some(eval.state),
            Ok(None) | Err(_) => {
                fallback_note = Some(format!(
                    "revision {} does not evaluate any more; changes are told apart by their field managers",
                    rev.number
                ));
                None
            }
        },
        None => None,
    };
    let alerts_changed = base_state
        .as_ref()
        .is_some_and(|base| alerts(base) != alerts(&eval.state));
    let mut drifted = Vec::new();
    let mut pending = Vec::new();
    for c in &plan.plan.changes {
        if matches!(c.action, Action::NoOp | Action::Keep) {
            continue;
        }
        let managers = plan
            .kube
            .live(&c.id)
            .map(foreign_managers)
            .unwrap_or_default();
        let is_drift = match &base_state {
            // A certificate due for renewal is time passing, not drift.
            _ if c.id.provider == cairn_model::Provider::Acme => false,
            // Secret values cannot be compared: drift only when someone else wrote them.
            _ if only_sensitive(c) => !managers.is_empty(),
            Some(base) => match (declared(&eval.state, &c.id), declared(base, &c.id)) {
                // Derived objects (alert rules and routes): drift unless the alerts changed.
                (None, None) => !(alerts_changed && c.action != Action::Delete),
                // Declared the same way as when last applied: the live side moved.
                (now, then) => now == then,
            },
            None => !managers.is_empty(),
        };
        if is_drift {
            drifted.push(Drifted {
                change: c,
                changed_by: managers,
            });
        } else {
            pending.push(c);
        }
    }
    let compared_with = match (&baseline, &fallback_note) {
        (Some(_), Some(note)) => note.clone(),
        (Some(r), None) => format!("revision {} (applied {} by {})", r.number, r.time, r.author),
        (None, _) => "the field managers of the live objects (no revision recorded yet)".to_owned(),
    };
    if live.json {
        let doc = serde_json::json!({
            "format_version": 1,
            "environment": env,
            "target": plan.plan.target,
            "compared_with": compared_with,
            "baseline_revision": baseline.as_ref().map(|r| r.number),
            "drift": drifted,
            "pending": pending,
            "has_drift": !drifted.is_empty(),
        });
        let _ = writeln!(
            io.out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
    } else {
        let _ = writeln!(
            io.out,
            "Drift of {env} on {}, compared with {compared_with}\n",
            plan.plan.target
        );
        if drifted.is_empty() {
            let _ = writeln!(io.out, "No drift: nothing changed outside cairn.");
        } else {
            let sub = Plan {
                environment: env.clone(),
                target: plan.plan.target.clone(),
                changes: drifted.iter().map(|d| d.change.clone()).collect(),
                unsupported: Vec::new(),
                notes: Vec::new(),
            };
            // The plan's lines, each followed by who changed it.
            for d in &drifted {
                let c = d.change;
                let _ = writeln!(io.out, "  {} {}", c.action.symbol(), c.id);
                for f in &c.fields {
                    let _ = writeln!(
                        io.out,
                        "      {}: live {} → declared {}",
                        f.path,
                        f.before.as_ref().map_or("(none)".to_owned(), J::to_string),
                        f.after.as_ref().map_or("(none)".to_owned(), J::to_string)
                    );
                }
                if c.fields.is_empty()
                    && let Some(reason) = &c.reason
                {
                    let _ = writeln!(io.out, "      ({reason})");
                }
                if !d.changed_by.is_empty() {
                    let _ = writeln!(io.out, "      (changed by {})", d.changed_by.join(", "));
                } else if c.action == Action::Create {
                    let _ = writeln!(io.out, "      (deleted outside cairn)");
                }
            }
            let s = sub.summary();
            let _ = writeln!(
                io.out,
                "\nDrift: {} resource(s) changed outside cairn ({} changed, {} deleted, {} added). `cairn apply` puts them back.",
                drifted.len(),
                s.update + s.replace,
                s.create,
                s.delete
            );
        }
        if !pending.is_empty() {
            let _ = writeln!(
                io.out,
                "Not drift: {} change(s) of the script not applied yet (see `cairn plan`).",
                pending.len()
            );
        }
    }
    Ok(if drifted.is_empty() {
        EXIT_OK
    } else {
        EXIT_CHANGES
    })
}
