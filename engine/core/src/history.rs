//! Revisions: each apply records the sources its environment was evaluated from (never a
//! secret value) as a Secret in `default`; a rollback evaluates revision N's sources with
//! today's variables, then plans and applies that like any apply.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use cairn_kube::history::Revision;
use cairn_model::{SensitivePart, Value};
use cairn_stdlib::Evaluation;

use crate::error::{Error, Result};
use crate::input::{Context, Script, evaluate, relative};
use crate::target::Target;

/// Whether the script wrote a secret into itself (`sensitive("…")`): its sources are then not
/// recorded, since they would put that secret into the cluster.
pub(crate) fn has_sensitive_literal(value: &Value) -> bool {
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

/// The note of a destroy's revision.
const DESTROY: &str = "destroy";

/// Where an apply's desired state comes from, for its revision.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The script's path as the user gave it.
    pub script: String,
    /// The name the script's text has in the evaluation's sources (differs for a rollback,
    /// evaluated from a temporary copy).
    pub evaluated_as: String,
    /// A note (`rollback to revision 3`, `saved plan made …`).
    pub note: String,
}

impl Origin {
    /// A destroy of the environment of the script at `script`.
    pub fn destroy(script: &Path) -> Self {
        Self::script(script, DESTROY)
    }

    /// Whether this is a destroy's.
    pub fn is_destroy(&self) -> bool {
        self.note == DESTROY
    }

    /// A script evaluated where it is.
    pub fn script(script: &Path, note: &str) -> Self {
        let name = script.display().to_string();
        Self {
            script: name.clone(),
            evaluated_as: name,
            note: note.to_owned(),
        }
    }
}

/// The sources to record, and the note: none when the script holds a sensitive literal.
fn recorded_sources(eval: &Evaluation, origin: &Origin) -> (BTreeMap<String, String>, String) {
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
    if literal {
        let note = [
            origin.note.as_str(),
            "sources not recorded: the script holds a sensitive literal",
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("; ");
        return (BTreeMap::new(), note);
    }
    let mut all = eval.sources.all();
    if let Some(text) = all.remove(&origin.evaluated_as) {
        all.insert(origin.script.clone(), text);
    }
    (all, origin.note.clone())
}

/// What an apply records.
pub struct Applied<'a> {
    /// Who applied (the lock's holder).
    pub author: &'a str,
    /// `N added, N changed, …`.
    pub summary: &'a str,
    /// Whether every step succeeded.
    pub ok: bool,
}

/// Records the apply that just ran as the environment's next revision; its number.
pub async fn record(
    target: &Target,
    eval: &Evaluation,
    origin: &Origin,
    environment: &str,
    applied: &Applied<'_>,
) -> Result<u32> {
    let (sources, note) = recorded_sources(eval, origin);
    let revision = Revision {
        number: 0,
        time: cairn_kube::lock::micro_time(std::time::SystemTime::now()),
        author: applied.author.to_owned(),
        summary: applied.summary.to_owned(),
        outcome: if applied.ok { "succeeded" } else { "failed" }.to_owned(),
        script: origin.script.clone(),
        note,
        sources,
    };
    Ok(cairn_kube::history::record(&target.cluster, environment, revision).await?)
}

/// The environment's revisions, oldest first.
pub async fn list(target: &Target, environment: &str) -> Result<Vec<Revision>> {
    Ok(cairn_kube::history::list(&target.cluster, environment).await?)
}

/// The JSON document of an environment's revisions (`history --json`).
pub fn document(environment: &str, revisions: &[Revision]) -> serde_json::Value {
    serde_json::json!({ "format_version": 1, "environment": environment, "revisions": revisions })
}

/// The revisions for people, newest first: number, time, outcome, summary, author and note.
pub fn table(environment: &str, revisions: &[Revision]) -> String {
    use std::fmt::Write as _;
    if revisions.is_empty() {
        return format!("{environment} has no recorded revision yet: `cairn apply` records one.\n");
    }
    let mut out = format!("Revisions of {environment} (newest first):\n");
    let _ = writeln!(
        out,
        "{:>4}  {:<20}  {:<9}  {:<44}  by",
        "rev", "time", "outcome", "summary"
    );
    for r in revisions.iter().rev() {
        let time = r.time.get(..19).unwrap_or(&r.time).replace('T', " ");
        let note = if r.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.note)
        };
        let _ = writeln!(
            out,
            "{:>4}  {time:<20}  {:<9}  {:<44}  {}{note}",
            r.number, r.outcome, r.summary, r.author
        );
    }
    out
}

/// What a rollback says it does, or the error when revision `to`, evaluated as `eval`, declares
/// another environment than `environment`.
pub fn rolling_back(environment: &str, revision: &Revision, eval: &Evaluation) -> Result<String> {
    let (to, declared) = (revision.number, &eval.state.environment.name);
    if declared != environment {
        let message = format!("revision {to} declares environment {declared}, not {environment}");
        return Err(Error::Revision(message));
    }
    Ok(format!(
        "Rolling {environment} back to revision {to} ({}, by {}: {}).\n",
        revision.time, revision.author, revision.summary
    ))
}

/// Revision `to` of `revisions`, or why there is none.
pub fn find<'a>(revisions: &'a [Revision], environment: &str, to: u32) -> Result<&'a Revision> {
    revisions.iter().find(|r| r.number == to).ok_or_else(|| {
        let known: Vec<String> = revisions.iter().map(|r| r.number.to_string()).collect();
        Error::Revision(format!(
            "{environment} has no revision {to} (recorded: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))
    })
}

/// A private temporary folder for a revision's sources (as confidential as their Secret).
fn private_temp_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "cairn-revision-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| Error::file("create", &dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::file("restrict", &dir, e))?;
    }
    Ok(dir)
}

/// Writes the sources under `dir`; the plugin folders to search (`<dir>/<plugin>/main.rhai`).
fn write_sources(dir: &Path, revision: &Revision) -> Result<Vec<PathBuf>> {
    let mut plugin_path = Vec::new();
    for (name, text) in &revision.sources {
        let file = dir.join(relative(name));
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::file("create", parent, e))?;
            if file.file_name().is_some_and(|f| f == "main.rhai")
                && let Some(plugins) = parent.parent()
                && !plugin_path.contains(&plugins.to_path_buf())
            {
                plugin_path.push(plugins.to_path_buf());
            }
        }
        std::fs::write(&file, text).map_err(|e| Error::file("write", &file, e))?;
    }
    Ok(plugin_path)
}

/// Evaluates a revision's recorded sources with today's variables; also gives the name the
/// script was evaluated as.
pub fn evaluate_revision(
    revision: &Revision,
    env_file: Option<&Path>,
    ctx: &Context,
) -> Result<(Evaluation, String)> {
    if revision.sources.is_empty() {
        return Err(Error::Revision(format!(
            "revision {} has no recorded sources ({})",
            revision.number,
            if revision.note.is_empty() {
                "recorded by an older cairn"
            } else {
                &revision.note
            }
        )));
    }
    let dir = private_temp_dir()?;
    let script = dir.join(relative(&revision.script));
    let result = write_sources(&dir, revision).and_then(|plugin_path| {
        let args = Script {
            path: script.clone(),
            env_file: env_file.map(Path::to_path_buf),
            plugin_path,
        };
        evaluate(&args, ctx)
    });
    let _ = std::fs::remove_dir_all(&dir);
    Ok((result?, script.display().to_string()))
}
