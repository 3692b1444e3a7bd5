//! `destroy`: the removal of everything an environment owns, in every namespace and provider —
//! workloads first, then what they use, DNS records with their ownership records, certificates'
//! Secrets, the inventory, the namespace last — planned from its ownership labels and inventory
//! rather than from the script's objects. What holds data (volume claims, buckets, the
//! namespace around them) is kept unless `--delete-data`, and then each such object the script
//! does not allow to delete needs the user's confirmation ([`unconfirmed`]).
//!
//! The script still says where the environment lives: its name, namespace, DNS zone, bucket
//! settings, cluster. Deletions run as an apply's do, through the same graph, waiting for
//! finalizers by the watches; a destroy records a revision, and one that left nothing removes
//! the environment's earlier revisions.

use cairn_model::{DesiredState, ResourceId};
use cairn_plan::plan::{Action, Plan};

use crate::error::Result;
use crate::plan::{LivePlan, PlanOptions};
use crate::target::Target;

/// How to destroy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestroyOptions {
    /// Delete what holds data too: volume claims, buckets (with their objects), the namespace
    /// holding them.
    pub delete_data: bool,
}

/// The state a destroy plans against: the script's environment (where it lives, its
/// settings, what it allows), without a single object.
pub fn emptied(state: &DesiredState) -> DesiredState {
    DesiredState {
        environment: state.environment.clone(),
        resources: Vec::new(),
        network: cairn_model::NetworkIntent::default(),
        ..state.clone()
    }
}

/// Plans the removal of everything the environment of `state` owns on `target`.
pub async fn plan(
    target: &Target,
    state: &DesiredState,
    options: &PlanOptions,
    destroy: DestroyOptions,
) -> Result<LivePlan> {
    let emptied = emptied(state);
    let kube = cairn_kube::Destroy {
        delete_data: destroy.delete_data,
    };
    let mut live = crate::plan::plan_with(target, &emptied, options, Some(kube)).await?;
    live.plan.notes.insert(0, note(&live.plan, destroy));
    Ok(live)
}

/// The plan header's line on what a destroy deletes and keeps.
fn note(plan: &Plan, destroy: DestroyOptions) -> String {
    let kept = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Keep)
        .count();
    match (kept, destroy.delete_data) {
        (0, true) => {
            "destroy: everything the environment owns is deleted, its data included".to_owned()
        }
        (0, false) => {
            "destroy: everything the environment owns is deleted (it holds no data)".to_owned()
        }
        (n, _) => format!(
            "destroy: {n} object(s) holding data (or the namespace around them) are kept; `cairn destroy --delete-data` deletes them"
        ),
    }
}

/// The data-holding objects a destroy with `--delete-data` would delete though the script
/// does not allow it (`env.allow_delete`): each needs the user's confirmation.
pub fn unconfirmed(plan: &Plan, state: &DesiredState) -> Vec<ResourceId> {
    if state.environment.ephemeral {
        return Vec::new();
    }
    plan.protected_deletions()
        .filter(|c| c.id.kind != "Namespace")
        .filter(|c| {
            !state
                .environment
                .allow_delete
                .iter()
                .any(|a| *a == c.id.to_string())
        })
        .map(|c| c.id.clone())
        .collect()
}

/// Whether the destroy left nothing of the environment (then its earlier revisions go).
pub fn complete(plan: &Plan, report: &cairn_apply::Report) -> bool {
    report.ok() && !plan.changes.iter().any(|c| c.action == Action::Keep)
}

/// The destroy's summary line: `N deleted, N kept`.
pub fn summary(plan: &Plan) -> String {
    let s = plan.summary();
    format!("{} deleted, {} kept", s.delete, s.kept)
}

/// After a destroy that left nothing: removes every revision of `environment` but its own
/// (`revision`); how many went.
pub async fn forget_history(target: &Target, environment: &str, revision: u32) -> Result<usize> {
    Ok(cairn_kube::history::forget(&target.cluster, environment, revision).await?)
}

/// When an environment with a lifetime (`expires: "7d"`) expires.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "expiry", rename_all = "snake_case")]
pub enum Expiry {
    /// The script gives it no lifetime.
    Never,
    /// It has one, but was never applied (or its inventory is gone).
    NotApplied,
    /// Its last apply set this time (RFC 3339, UTC); `seconds` left (negative: past).
    At {
        /// When.
        at: String,
        /// Seconds from now until then; negative once past.
        seconds: i64,
    },
}

impl Expiry {
    /// Whether the environment is past its lifetime.
    pub fn expired(&self) -> bool {
        matches!(self, Expiry::At { seconds, .. } if *seconds <= 0)
    }

    /// For people: `expires in 6d 23h (2026-12-09T10:00:00Z)`, `expired 2h ago (…)`.
    pub fn text(&self) -> String {
        match self {
            Expiry::Never => {
                "no lifetime (environment(..., #{ expires: \"7d\" }) gives one)".to_owned()
            }
            Expiry::NotApplied => "has a lifetime, but was never applied".to_owned(),
            Expiry::At { at, seconds } if *seconds > 0 => {
                format!("expires in {} ({at})", span(*seconds))
            }
            Expiry::At { at, seconds } => format!("expired {} ago ({at})", span(-seconds)),
        }
    }
}

/// `6d 23h`, `2h 5m`, `4m`.
fn span(seconds: i64) -> String {
    let (d, h, m) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
    );
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// When the environment of `state` expires on `target` (its inventory's record).
pub async fn expiry(target: &Target, state: &DesiredState) -> Result<Expiry> {
    if state.environment.expires.is_none() {
        return Ok(Expiry::Never);
    }
    let Some(at) = cairn_kube::expires_at(&target.cluster, &state.environment).await? else {
        return Ok(Expiry::NotApplied);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let then = cairn_kube::lock::parse_time(&at).unwrap_or(now);
    Ok(Expiry::At {
        at,
        seconds: then - now,
    })
}
