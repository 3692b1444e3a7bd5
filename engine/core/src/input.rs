//! What a command starts from: a script (or a revision's sources), the variables it reads, and
//! the working directory; evaluated and checked into a desired state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cairn_model::{Code, DesiredState, Diagnostic};
use cairn_stdlib::Evaluation;

use crate::error::{Error, Result};

/// An environment script and what it reads besides itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The script, e.g. `environments/staging.rhai`.
    pub path: PathBuf,
    /// A variables file (`KEY=VALUE` lines); the process environment wins over it.
    pub env_file: Option<PathBuf>,
    /// Extra plugin directories.
    pub plugin_path: Vec<PathBuf>,
}

/// Where a command runs: the process environment and the working directory (`.cairn/`).
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The process environment.
    pub vars: BTreeMap<String, String>,
    /// The working directory.
    pub cwd: PathBuf,
}

/// Parses `KEY=VALUE` lines (comments with `#`, optional quotes, optional `export `).
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_owned(), v.to_owned()))
        })
        .collect()
}

/// The cache root for git plugins: `$CAIRN_CACHE_DIR`, else `$XDG_CACHE_HOME/cairn`, else
/// `~/.cache/cairn` (git plugins go into its `plugins/`).
pub fn cache_dir(vars: &BTreeMap<String, String>) -> Option<PathBuf> {
    let set = |k: &str| vars.get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    set("CAIRN_CACHE_DIR")
        .or_else(|| set("XDG_CACHE_HOME").map(|d| d.join("cairn")))
        .or_else(|| set("HOME").map(|d| d.join(".cache").join("cairn")))
}

/// Extra plugin directories from `CAIRN_PLUGIN_PATH` (`:`-separated).
pub fn plugin_path_of(vars: &BTreeMap<String, String>) -> Vec<PathBuf> {
    vars.get("CAIRN_PLUGIN_PATH")
        .map(|extra| {
            extra
                .split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Evaluates a script with the variables file's and the process's variables.
pub fn evaluate(script: &Script, ctx: &Context) -> Result<Evaluation> {
    let mut vars = BTreeMap::new();
    if let Some(file) = &script.env_file {
        let text = std::fs::read_to_string(file).map_err(|e| Error::file("read", file, e))?;
        vars.extend(parse_env_file(&text));
    }
    vars.extend(ctx.vars.clone());
    let mut plugin_path = script.plugin_path.clone();
    plugin_path.extend(plugin_path_of(&ctx.vars));
    let options = cairn_stdlib::EvalOptions {
        vars,
        plugin_path,
        cache_dir: cache_dir(&ctx.vars),
        ..cairn_stdlib::EvalOptions::default()
    };
    Ok(cairn_stdlib::evaluate_file(&script.path, &options))
}

/// Every diagnostic of an evaluation, evaluation's first, then the plan-time checks of the
/// whole state (only when evaluation got through the script).
pub fn check_diagnostics(eval: &Evaluation) -> Vec<Diagnostic> {
    let mut all = eval.diagnostics.clone();
    if !eval.stopped
        && !eval.diagnostics.iter().any(|d| {
            matches!(
                d.code,
                Code::SyntaxError
                    | Code::ScriptError
                    | Code::ScriptLimit
                    | Code::PluginNotFound
                    | Code::UnreadableScript
            )
        })
    {
        all.extend(cairn_plan::check(&eval.state));
    }
    if eval.state.resources.is_empty() && !all.iter().any(Diagnostic::is_error) {
        all.push(nothing_declared(&eval.state));
    }
    all
}

/// The warning of an environment that declares nothing: it owns nothing to plan or apply,
/// and emptying a script does not tear an environment down.
fn nothing_declared(state: &DesiredState) -> Diagnostic {
    Diagnostic::warning(
        Code::NothingDeclared,
        format!(
            "environment {} declares nothing: no namespace and no resource",
            state.environment.name
        ),
    )
    .help("declare its namespace and what runs in it: with nothing declared, cairn does not look for what the environment already owns")
}

/// Fresh values for the state's generated passwords (`render --show-secrets`: nothing is read
/// from a cluster).
pub fn fresh_generated(state: &DesiredState) -> BTreeMap<u32, String> {
    state
        .generated
        .iter()
        .map(|(id, g)| (*id, g.fresh_value()))
        .collect()
}

/// A script's path relative to nothing: the normal components of a recorded name.
pub(crate) fn relative(name: &str) -> PathBuf {
    Path::new(name)
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(p) => Some(p),
            _ => None,
        })
        .collect()
}
