//! Saved plans: `cairn plan -o FILE` writes what it would do and what it read; `cairn apply
//! FILE` applies exactly that, and refuses, naming the object, when anything it read has
//! changed since.
//!
//! A plan file holds no secret value: the plan is the printable one (sensitive values
//! redacted), the desired state is kept as a digest of its redacted form, Secrets are
//! fingerprinted by resourceVersion. Apply re-evaluates the script with the CI's variables to
//! get the secret values back, then checks that the script, the live state and the plan are
//! what the file says.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cairn_model::DesiredState;
use serde::{Deserialize, Serialize};
use serde_json::Value as J;
use sha2::Digest as _;

use crate::error::{Error, Result};
use crate::input::Script;
use crate::plan::{LivePlan, PlanOptions};
use crate::target::TargetSpec;

/// How a plan was asked for: the script, where, and how. A plan file records it, and is
/// applied with exactly it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The script and its inputs.
    pub script: Script,
    /// Where.
    pub target: TargetSpec,
    /// How.
    pub options: PlanOptions,
}

/// The version of the plan file format.
pub const FORMAT: u32 = 1;

/// A plan file.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    /// The file format's version ([`FORMAT`]).
    pub cairn_saved_plan: u32,
    /// The cairn that wrote it; another version refuses to apply it.
    pub cairn_version: String,
    /// When it was made (RFC 3339, UTC).
    pub created: String,
    /// The script, as given to `plan` (relative to the working directory).
    pub script: PathBuf,
    /// The variables file given to `plan`.
    pub env_file: Option<PathBuf>,
    /// Extra plugin directories given to `plan`.
    pub plugin_path: Vec<PathBuf>,
    /// Planned against the sandbox.
    pub sandbox: bool,
    /// The kubeconfig given to `plan`.
    pub kubeconfig: Option<PathBuf>,
    /// The context given to `plan`.
    pub context: Option<String>,
    /// `--force-conflicts` was given.
    pub force_conflicts: bool,
    /// `--adopt` was given.
    #[serde(default)]
    pub adopt: bool,
    /// `--accept-cluster` was given.
    #[serde(default)]
    pub accept_cluster: bool,
    /// The identity of the cluster planned on (its kube-system namespace's uid): the file is
    /// applied there only, whatever a context name points at by then.
    #[serde(default)]
    pub cluster_identity: String,
    /// `--force` was given.
    pub force: bool,
    /// The environment.
    pub environment: String,
    /// Where it was planned against (context name, or `sandbox`).
    pub target: String,
    /// SHA-256 of the redacted desired state.
    pub desired: String,
    /// What the plan read: one fingerprint per object, zone and bucket.
    pub observed: BTreeMap<String, String>,
    /// The plan, as `plan --json` prints it (sensitive values redacted).
    pub plan: J,
}

/// SHA-256 of the desired state with sensitive values as placeholders and without source
/// positions (a comment added to the script changes nothing).
pub fn desired_digest(state: &DesiredState) -> String {
    let resources: Vec<J> = state
        .resources
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "body": r.body,
                "depends_on": r.depends_on,
                "protected": r.protected,
            })
        })
        .collect();
    let doc = serde_json::json!({ "environment": state.environment, "resources": resources });
    hex(&sha2::Sha256::digest(doc.to_string().as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a plan would do, as compared between the saved plan and the plan made at apply time:
/// each change's resource, action and fields. Notes and reasons may differ (a certificate's
/// "expires in 12 days" is "11 days" the next day); what would be done may not.
fn changes_of(plan: &J) -> (Vec<J>, &J) {
    let changes = plan
        .pointer("/changes")
        .and_then(J::as_array)
        .into_iter()
        .flatten()
        .map(|c| serde_json::json!([c.get("id"), c.get("action"), c.get("fields")]))
        .collect();
    (changes, plan.pointer("/unsupported").unwrap_or(&J::Null))
}

/// Builds the plan file for a plan just made.
pub fn make(inv: &Invocation, state: &DesiredState, plan: &LivePlan) -> Result<SavedPlan> {
    let (script, live, options) = (&inv.script, &inv.target, &inv.options);
    Ok(SavedPlan {
        cairn_saved_plan: FORMAT,
        cairn_version: env!("CARGO_PKG_VERSION").to_owned(),
        created: cairn_kube::lock::micro_time(std::time::SystemTime::now()),
        script: script.path.clone(),
        env_file: script.env_file.clone(),
        plugin_path: script.plugin_path.clone(),
        sandbox: live.sandbox,
        kubeconfig: live.kubeconfig.clone(),
        context: live.context.clone(),
        force_conflicts: options.force_conflicts,
        adopt: options.adopt,
        accept_cluster: options.accept_cluster,
        cluster_identity: plan.cluster_identity().to_owned(),
        force: options.force,
        environment: plan.plan.environment.clone(),
        target: plan.plan.target.clone(),
        desired: desired_digest(state),
        observed: plan.observations(),
        plan: serde_json::to_value(&plan.plan)
            .map_err(|e| Error::Bug(format!("the plan does not serialize: {e}")))?,
    })
}

/// Writes a plan file readable by its owner only.
pub fn write(path: &Path, saved: &SavedPlan) -> Result<()> {
    use std::io::Write as _;
    let text = serde_json::to_string_pretty(saved)
        .map_err(|e| Error::Bug(format!("the plan file does not serialize: {e}")))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| Error::file("write", path, e))?;
    // An existing file keeps its mode on open: make it private too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::file("restrict", path, e))?;
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .map_err(|e| Error::file("write", path, e))
}

/// Reads `path` as a plan file: `None` when it is not one (a script), an error when it is one
/// cairn cannot use or neither.
///
/// A plan file is JSON: text that starts with `{`, or any file named `*.json`. An empty (or
/// blank) file is neither, unless it is named `*.rhai`: then it is an empty script, which
/// evaluation reports. A file that is not UTF-8 text is neither. A file that cannot be read is
/// left to evaluation, which says why.
pub fn read(path: &Path) -> Result<Option<SavedPlan>> {
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(None);
    };
    let named = |ext: &str| path.extension().is_some_and(|e| e == ext);
    let Ok(text) = String::from_utf8(bytes) else {
        return Err(Error::PlanFile(format!(
            "{} is neither a plan file nor a script: it is not UTF-8 text",
            path.display()
        )));
    };
    let body = text.trim_start_matches('\u{feff}').trim();
    if body.is_empty() && !named("rhai") {
        return Err(Error::PlanFile(format!(
            "{} is an empty file: neither a plan file nor a script",
            path.display()
        )));
    }
    if !body.starts_with('{') && !named("json") {
        return Ok(None);
    }
    let doc: J = serde_json::from_str(&text).map_err(|e| {
        Error::PlanFile(format!("{} is not a cairn plan file: {e}", path.display()))
    })?;
    let Some(format) = doc.get("cairn_saved_plan").and_then(J::as_u64) else {
        return Err(Error::PlanFile(format!(
            "{} is not a cairn plan file",
            path.display()
        )));
    };
    if format != u64::from(FORMAT) {
        return Err(Error::PlanFile(format!(
            "{} is a plan file of format {format}; this cairn reads format {FORMAT}",
            path.display()
        )));
    }
    let saved: SavedPlan = serde_json::from_value(doc)
        .map_err(|e| Error::PlanFile(format!("{} is a damaged plan file: {e}", path.display())))?;
    if saved.cairn_version != env!("CARGO_PKG_VERSION") {
        return Err(Error::PlanFile(format!(
            "{} was made by cairn {}; this is cairn {}: plan again with this version",
            path.display(),
            saved.cairn_version,
            env!("CARGO_PKG_VERSION")
        )));
    }
    Ok(Some(saved))
}

/// How a plan file was made.
pub fn invocation_of(saved: &SavedPlan) -> Invocation {
    Invocation {
        script: Script {
            path: saved.script.clone(),
            env_file: saved.env_file.clone(),
            plugin_path: saved.plugin_path.clone(),
        },
        target: TargetSpec {
            sandbox: saved.sandbox,
            kubeconfig: saved.kubeconfig.clone(),
            context: saved.context.clone(),
        },
        options: PlanOptions {
            force_conflicts: saved.force_conflicts,
            adopt: saved.adopt,
            accept_cluster: saved.accept_cluster,
            force: saved.force,
        },
    }
}

/// A target or input flag given to `apply FILE` that differs from the plan's, if any: the file
/// is applied where and how it was planned, never silently elsewhere.
pub fn conflicting_flag(saved: &SavedPlan, given: &Invocation) -> Option<String> {
    let (script, live, options) = (&given.script, &given.target, &given.options);
    let differs = |given: Option<String>, planned: Option<String>, flag: &str| {
        given.filter(|g| Some(g) != planned.as_ref()).map(|g| {
            format!(
                "{flag} {g} (planned with {})",
                planned.unwrap_or_else(|| "none".to_owned())
            )
        })
    };
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    if live.sandbox && !saved.sandbox {
        return Some("--sandbox (planned against a cluster)".to_owned());
    }
    if options.force_conflicts && !saved.force_conflicts {
        return Some("--force-conflicts (not planned with it)".to_owned());
    }
    if options.adopt && !saved.adopt {
        return Some("--adopt (not planned with it)".to_owned());
    }
    if options.force && !saved.force {
        return Some("--force (not planned with it)".to_owned());
    }
    if options.accept_cluster && !saved.accept_cluster {
        return Some("--accept-cluster (not planned with it)".to_owned());
    }
    if !script.plugin_path.is_empty() && script.plugin_path != saved.plugin_path {
        return Some("--plugin-path (planned with other plugin directories)".to_owned());
    }
    differs(
        path(&live.kubeconfig),
        path(&saved.kubeconfig),
        "--kubeconfig",
    )
    .or_else(|| differs(live.context.clone(), saved.context.clone(), "--context"))
    .or_else(|| differs(path(&script.env_file), path(&saved.env_file), "--env-file"))
}

/// Why the plan file no longer describes what apply would do; empty when it still does.
pub fn verify(saved: &SavedPlan, state: &DesiredState, now: &LivePlan) -> Vec<String> {
    let identity = now.cluster_identity();
    let mut problems = Vec::new();
    if !saved.cluster_identity.is_empty() && identity != saved.cluster_identity {
        problems.push(format!(
            "the plan was made on cluster {} ({}), and {} is now cluster {}: a plan is applied on the cluster it was made on",
            saved.cluster_identity, saved.target, now.plan.target, identity
        ));
        return problems;
    }
    if saved.cluster_identity.is_empty() && now.plan.target != saved.target {
        problems.push(format!(
            "the plan was made against {}, this apply would go to {}",
            saved.target, now.plan.target
        ));
        return problems;
    }
    if desired_digest(state) != saved.desired {
        problems.push(format!(
            "{} or what it reads (plugins, variables) changed since the plan was made",
            saved.script.display()
        ));
    }
    let observed = now.observations();
    let keys: std::collections::BTreeSet<&String> =
        saved.observed.keys().chain(observed.keys()).collect();
    for key in keys {
        let before = saved.observed.get(key).map_or("absent", String::as_str);
        let after = observed.get(key).map_or("absent", String::as_str);
        // A zone's serial is shown, not compared: only the records the plan depends on count.
        let what = |s: &str| s.split(" (serial ").next().unwrap_or(s).to_owned();
        if what(before) != what(after) {
            let what = match (before, after) {
                ("absent", _) => "was created".to_owned(),
                (_, "absent") => "was deleted".to_owned(),
                (b, a) if b.starts_with("records:") => {
                    let serial = |s: &str| {
                        s.rsplit_once("(serial ")
                            .map(|(_, v)| v.trim_end_matches(')').to_owned())
                            .unwrap_or_default()
                    };
                    format!(
                        "changed (its records; SOA serial {} → {})",
                        serial(b),
                        serial(a)
                    )
                }
                (b, a) if b.starts_with("rv:") => format!(
                    "changed (resourceVersion {} → {})",
                    &b["rv:".len()..],
                    a.strip_prefix("rv:").unwrap_or(a)
                ),
                _ => "changed".to_owned(),
            };
            problems.push(format!("{key} {what} since the plan was made"));
        }
    }
    if problems.is_empty() {
        let current = serde_json::to_value(&now.plan).unwrap_or_default();
        if changes_of(&current) != changes_of(&saved.plan) {
            problems.push("the plan made now differs from the saved one".to_owned());
        }
    }
    problems
}

/// The summary line of a saved plan, for the apply's first line.
pub fn describe(saved: &SavedPlan) -> String {
    let count = |action: &str| {
        saved
            .plan
            .pointer("/changes")
            .and_then(J::as_array)
            .map_or(0, |c| {
                c.iter()
                    .filter(|c| c.get("action").and_then(J::as_str) == Some(action))
                    .count()
            })
    };
    format!(
        "plan of {} on {} made {}: {} to add, {} to change, {} to replace, {} to destroy",
        saved.environment,
        saved.target,
        saved.created,
        count("create"),
        count("update"),
        count("replace"),
        count("delete")
    )
}
