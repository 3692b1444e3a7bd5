//! `cairn history` and `cairn rollback`: the revisions each apply records in the cluster, and
//! applying an earlier one again.
//!
//! A revision keeps the sources the environment was evaluated from, never a secret value.
//! Rolling back evaluates revision N's sources with today's variables (the CI's secrets),
//! then plans and applies that like any apply: plan first, confirmation, lock, a new revision.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use cairn_kube::history::Revision;
use cairn_model::{SensitivePart, Value};

use crate::live::{
    ApplyArgs, LiveArgs, Target, close, confirm, connect, evaluate_checked, make_plan, print_plan,
    run_apply, runtime, take_lock,
};
use crate::{EXIT_ERROR, EXIT_OK, Io, ScriptArgs};

/// Whether the script wrote a secret into itself (`sensitive("…")`): its sources are then not
/// recorded, since they would put that secret into the cluster.
fn has_sensitive_literal(value: &Value) -> bool {
    match value {
        Value::Sensitive(s) => s
            .parts
            .iter()
            .any(|p| matches!(p, SensitivePart::Literal(_))),
        Value::Array(items) => items.iter().any(has_sensitive_literal),
        Value::Object(map) => map.values().any(has_sensitive_literal),
        _ => false,
    }
}

/// Where an apply's desired state comes from, for its revision.
pub(crate) struct Origin {
    /// The script's path as the user gave it.
    pub(crate) script: String,
    /// The name the script's text has in the evaluation's sources (differs for a rollback,
    /// evaluated from a temporary copy).
    pub(crate) evaluated_as: String,
    /// A note (`rollback to revision 3`, `saved plan made …`).
    pub(crate) note: String,
}

impl Origin {
    /// A script evaluated where it is.
    pub(crate) fn script(script: &Path, note: &str) -> Self {
        let name = script.display().to_string();
        Self {
            script: name.clone(),
            evaluated_as: name,
            note: note.to_owned(),
        }
    }
}

/// Records the apply that just ran as the environment's next revision.
pub(crate) async fn record(
    target: &Target,
    eval: &cairn_stdlib::Evaluation,
    origin: &Origin,
    environment: &str,
    author: &str,
    summary: &str,
    ok: bool,
) -> Result<u32, String> {
    let state = &eval.state;
    let literal = state
        .resources
        .iter()
        .any(|r| has_sensitive_literal(&r.body))
        || state
            .environment
            .providers
            .values()
            .any(has_sensitive_literal);
    let mut note = origin.note.clone();
    let sources = if literal {
        note = [
            note.as_str(),
            "sources not recorded: the script holds a sensitive literal",
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("; ");
        BTreeMap::new()
    } else {
        let mut all = eval.sources.all();
        if let Some(text) = all.remove(&origin.evaluated_as) {
            all.insert(origin.script.clone(), text);
        }
        all
    };
    let script = origin.script.clone();
    let revision = Revision {
        number: 0,
        time: cairn_kube::lock::micro_time(std::time::SystemTime::now()),
        author: author.to_owned(),
        summary: summary.to_owned(),
        outcome: if ok { "succeeded" } else { "failed" }.to_owned(),
        script,
        note,
        sources,
    };
    cairn_kube::history::record(&target.cluster, environment, revision)
        .await
        .map_err(|e| e.to_string())
}

/// `cairn history`: the environment's revisions, newest first.
pub fn history(io: &mut Io<'_>, script: &ScriptArgs, live: &LiveArgs) -> Result<i32, String> {
    let Some(eval) = evaluate_checked(io, script)? else {
        return Ok(EXIT_ERROR);
    };
    let env = eval.state.environment.name.clone();
    let rt = runtime()?;
    let revisions = rt.block_on(async {
        let target = connect(io, live, &eval.state.environment).await?;
        let result = cairn_kube::history::list(&target.cluster, &env)
            .await
            .map_err(|e| e.to_string());
        close(target).await?;
        result
    })?;
    if live.json {
        let doc = serde_json::json!({ "environment": env, "revisions": revisions });
        let _ = writeln!(
            io.out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
        return Ok(EXIT_OK);
    }
    if revisions.is_empty() {
        let _ = writeln!(
            io.out,
            "{env} has no recorded revision yet: `cairn apply` records one."
        );
        return Ok(EXIT_OK);
    }
    let _ = writeln!(io.out, "Revisions of {env} (newest first):");
    let _ = writeln!(
        io.out,
        "{:>4}  {:<20}  {:<9}  {:<44}  by",
        "rev", "time", "outcome", "summary"
    );
    for r in revisions.iter().rev() {
        let time = r.time.get(..19).unwrap_or(&r.time).replace('T', " ");
        let _ = writeln!(
            io.out,
            "{:>4}  {time:<20}  {:<9}  {:<44}  {}{}",
            r.number,
            r.outcome,
            r.summary,
            r.author,
            if r.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", r.note)
            }
        );
    }
    Ok(EXIT_OK)
}

/// Only the plain parts of a recorded path (no root, no `..`): it is written under a temporary
/// directory.
fn relative(name: &str) -> PathBuf {
    Path::new(name)
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p),
            _ => None,
        })
        .collect()
}

/// Evaluates a revision's recorded sources with today's variables; also gives the name the
/// script was evaluated as.
pub(crate) fn evaluate_revision(
    io: &mut Io<'_>,
    revision: &Revision,
    env_file: Option<&Path>,
) -> Result<Option<(cairn_stdlib::Evaluation, String)>, String> {
    if revision.sources.is_empty() {
        return Err(format!(
            "revision {} has no recorded sources ({})",
            revision.number,
            if revision.note.is_empty() {
                "recorded by an older cairn"
            } else {
                &revision.note
            }
        ));
    }
    let dir = std::env::temp_dir().join(format!(
        "cairn-revision-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    // Private: a revision's sources are as confidential as the Secret they came from.
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot restrict {}: {e}", dir.display()))?;
    }
    let script = dir.join(relative(&revision.script));
    let result = (|| {
        let mut plugin_path = Vec::new();
        for (name, text) in &revision.sources {
            let file = dir.join(relative(name));
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
                // `<dir>/<plugin>/main.rhai`: its folder of plugins is searched too.
                if file.file_name().is_some_and(|f| f == "main.rhai")
                    && let Some(plugins) = parent.parent()
                    && !plugin_path.contains(&plugins.to_path_buf())
                {
                    plugin_path.push(plugins.to_path_buf());
                }
            }
            std::fs::write(&file, text)
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        }
        let args = ScriptArgs {
            script: script.clone(),
            env_file: env_file.map(Path::to_path_buf),
            plugin_path,
        };
        evaluate_checked(io, &args)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(result?.map(|eval| (eval, script.display().to_string())))
}

/// `cairn rollback --to N`: plans revision N's state against the live one, confirms, applies.
pub fn rollback(
    io: &mut Io<'_>,
    script: &ScriptArgs,
    live: &LiveArgs,
    args: &ApplyArgs,
    to: u32,
) -> Result<i32, String> {
    let Some(current) = evaluate_checked(io, script)? else {
        return Ok(EXIT_ERROR);
    };
    let env = current.state.environment.name.clone();
    let rt = runtime()?;
    rt.block_on(async {
        let target = connect(io, live, &current.state.environment).await?;
        let code = async {
            let revisions = cairn_kube::history::list(&target.cluster, &env)
                .await
                .map_err(|e| e.to_string())?;
            let Some(revision) = revisions.iter().find(|r| r.number == to) else {
                let known: Vec<String> = revisions.iter().map(|r| r.number.to_string()).collect();
                return Err(format!(
                    "{env} has no revision {to} (recorded: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ));
            };
            if revision.outcome != "succeeded" {
                let _ = writeln!(
                    io.err,
                    "warning: revision {to} was an apply that failed; rolling back to it may fail the same way"
                );
            }
            let Some((eval, evaluated_as)) =
                evaluate_revision(io, revision, script.env_file.as_deref())?
            else {
                return Ok(EXIT_ERROR);
            };
            if eval.state.environment.name != env {
                return Err(format!(
                    "revision {to} declares environment {}, not {env}",
                    eval.state.environment.name
                ));
            }
            let _ = writeln!(
                io.out,
                "Rolling {env} back to revision {to} ({}, by {}: {}).\n",
                revision.time, revision.author, revision.summary
            );
            let Some(held) = take_lock(io, &target, &env, args).await else {
                return Ok(EXIT_ERROR);
            };
            let result = async {
                let plan = make_plan(io, &target, &eval, live).await?;
                print_plan(io, &plan.plan, live);
                if let Some(code) = crate::live::refused(io, &plan.plan) {
                    return Ok(code);
                }
                if !plan.plan.has_changes() {
                    cairn_kube::finish(&target.cluster, &plan.kube, &Default::default()).await;
                    let _ = writeln!(io.out, "Nothing to do: {env} already matches revision {to}.");
                    return Ok(EXIT_OK);
                }
                if !confirm(io, &plan.plan, args.yes) {
                    return Ok(EXIT_ERROR);
                }
                let origin = Origin {
                    script: revision.script.clone(),
                    evaluated_as,
                    note: format!("rollback to revision {to}"),
                };
                run_apply(io, &target, &eval, &plan, live, args, &origin, &held.identity).await
            }
            .await;
            held.release().await;
            result
        }
        .await;
        close(target).await?;
        code
    })
}
