//! The plan: what would change, per resource, with field-level detail and redactions.

use cairn_model::ResourceId;
use serde::Serialize;

use crate::diff::FieldChange;

/// What happens to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Nothing: the live resource matches.
    NoOp,
    /// Created.
    Create,
    /// Changed in place.
    Update,
    /// Deleted and created again (an immutable field changed).
    Replace,
    /// Exists without cairn's labels (made by hand or another tool) and is taken over, as the
    /// script or `--adopt` says: cairn takes the declared fields and labels it.
    Adopt,
    /// Deleted: cairn owns it and the script no longer declares it.
    Delete,
    /// Would be deleted, but it is protected (a volume, a bucket): kept.
    Keep,
    /// The server refuses the change in place and cairn will not replace it (it holds data,
    /// or the script has not allowed it): the plan cannot be applied until the script changes.
    Refuse,
}

impl Action {
    /// The plan symbol: `+`, `~`, `-/+`, `-`.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Adopt => "⇐",
            Action::Delete => "-",
            Action::Keep => "!",
            Action::Refuse => "✗",
        }
    }
}

/// One resource's change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The resource.
    pub id: ResourceId,
    /// What happens to it.
    pub action: Action,
    /// Field-level changes for updates and replacements; sensitive values are redacted.
    pub fields: Vec<FieldChange>,
    /// Why (for replacements, protected resources, conflicts, refusals): one readable line,
    /// naming the field and the rule.
    pub reason: Option<String>,
    /// What the user can do about a refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The server's whole answer when it refused a change (its Go dumps included), for
    /// machine output; people read `reason`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_message: Option<String>,
    /// Where the script declares it (`file:line`), for refusals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_at: Option<String>,
    /// Whether it holds data (a volume claim, a namespace with volumes, a bucket, an
    /// operator's database): deleting or replacing it loses that data.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub holds_data: bool,
}

/// The marker shown instead of a sensitive value.
pub const REDACTED: &str = "(sensitive)";

/// A field value as the plan shows it: JSON, cut at 120 characters; `(none)` when absent.
pub fn shown_value(v: &Option<serde_json::Value>) -> String {
    use serde_json::Value as J;
    match v {
        None => "(none)".to_owned(),
        Some(J::String(s)) if s == REDACTED => s.clone(),
        Some(v) => {
            let text = v.to_string();
            if text.len() > 120 {
                format!(
                    "{}…",
                    &text[..text.char_indices().nth(117).map_or(text.len(), |(i, _)| i)]
                )
            } else {
                text
            }
        }
    }
}

/// Everything a plan would do to one environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The environment's name.
    pub environment: String,
    /// Where it runs (a kubeconfig context, or `sandbox`).
    pub target: String,
    /// Changes in apply order; no-ops included.
    pub changes: Vec<Change>,
    /// Resources no provider handles yet, listed so nothing is silently ignored.
    pub unsupported: Vec<ResourceId>,
    /// Things to know about this plan (a sandbox stand-in, an incomplete zone read…).
    pub notes: Vec<String>,
    /// Who-can-reach-whom that applying changes: the connections that open and close between
    /// the live NetworkPolicies and pods and the desired ones (`crate::isolation::changes`).
    pub network: Vec<PathChange>,
}

/// Whether a connection opens or closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PathAction {
    /// Allowed after the apply, not before.
    Open,
    /// Allowed before the apply, not after.
    Close,
}

/// One line of the plan's Network section: `from` can (or no longer can) open connections to
/// `to` on `ports`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PathChange {
    /// Opens or closes.
    pub action: PathAction,
    /// The client, `namespace/name` (or `internet`, an address).
    pub from: String,
    /// The server.
    pub to: String,
    /// The ports that open or close: `TCP 6379`, `TCP 53; UDP 53`, `all`.
    pub ports: String,
    /// The namespace of another environment (`deny_namespaces`) the connection enters or
    /// leaves, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crosses: Option<String>,
}

/// Counts per action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Created.
    pub create: usize,
    /// Changed in place.
    pub update: usize,
    /// Replaced.
    pub replace: usize,
    /// Taken over from another manager.
    #[serde(skip_serializing_if = "is_zero")]
    pub adopt: usize,
    /// Deleted.
    pub delete: usize,
    /// Unchanged.
    pub unchanged: usize,
    /// Protected and kept.
    pub kept: usize,
    /// Refused: the plan cannot be applied.
    #[serde(skip_serializing_if = "is_zero")]
    pub refused: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Plan {
    /// Counts per action.
    /// The plan's last line for people: what it adds, changes, replaces and destroys; that
    /// nothing changes; or that the script declares nothing.
    pub fn summary_line(&self) -> String {
        let s = self.summary();
        let kept = |text: String| if s.kept > 0 { text } else { String::new() };
        if self.has_changes() {
            let adopt = if s.adopt > 0 {
                format!("{} to adopt, ", s.adopt)
            } else {
                String::new()
            };
            format!(
                "Plan: {} to add, {adopt}{} to change, {} to replace, {} to destroy ({} unchanged{}).",
                s.create,
                s.update,
                s.replace,
                s.delete,
                s.unchanged,
                kept(format!(", {} kept", s.kept))
            )
        } else if s.unchanged == 0 && s.kept == 0 && s.refused == 0 {
            format!(
                "Nothing to plan: the script declares no resource for environment {}.",
                self.environment
            )
        } else {
            format!(
                "No {}changes: {} resources match the script{}.",
                if s.refused > 0 { "other " } else { "" },
                s.unchanged,
                kept(format!(" ({} protected resources kept)", s.kept))
            )
        }
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::NoOp => s.unchanged += 1,
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Replace => s.replace += 1,
                Action::Adopt => s.adopt += 1,
                Action::Delete => s.delete += 1,
                Action::Keep => s.kept += 1,
                Action::Refuse => s.refused += 1,
            }
        }
        s
    }

    /// Deletions and replacements of resources that hold data, which the script allowed:
    /// data would be lost, so CI can stop for a human.
    pub fn protected_deletions(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| matches!(c.action, Action::Delete | Action::Replace) && c.holds_data)
    }

    /// Changes the server refuses and cairn will not replace: while there are any, the plan
    /// is not applied at all.
    pub fn refusals(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.action == Action::Refuse)
    }

    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        self.changes
            .iter()
            .any(|c| !matches!(c.action, Action::NoOp | Action::Keep | Action::Refuse))
    }
}
