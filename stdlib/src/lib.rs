//! cairn's Rhai standard library: the environment language.
//!
//! [`evaluate_file`] runs an environment script in a sandboxed [`rhai::Engine`] (no file or
//! network access other than plugin imports, bounded operations, call depth and sizes) and
//! returns the [`DesiredState`] it declares together with every [`Diagnostic`] found on the way.
//! Scripts only *declare*: each stdlib call records resources into a shared builder, validating
//! names, quantities, schedules and DNS names as it goes, and pointing every problem at the
//! script span that caused it.
//!
//! This is the only crate that knows Rhai. Rhai positions become [`Span`](cairn_model::Span)s in exactly one place
//! ([`sources::Sources::span`]).

mod api;
mod builder;
mod convert;
mod custom;
mod docs;
mod hosts;
mod k8s;
mod lower;
pub mod manifest;
mod network;
mod opts;
mod params;
mod paths;
pub mod project;
mod resolver;
mod smoke;
mod sources;
mod types;
mod workloads;

use cairn_model::Code;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cairn_model::{DesiredState, Diagnostic, Span};

pub use docs::{FunctionDoc, function_docs};
pub use sources::Sources;

/// Inputs of an evaluation besides the script itself.
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    /// The process environment the script may read through `env_var` and `secret_env`
    /// (usually the CI's variables). Injected, so tests and evaluation stay deterministic.
    pub vars: BTreeMap<String, String>,
    /// Extra directories searched for plugins after the project's `plugins/`.
    pub plugin_path: Vec<PathBuf>,
    /// Where git plugins are cached (`$CAIRN_CACHE_DIR`, else `~/.cache/cairn`); git
    /// plugins cannot be fetched without one.
    pub cache_dir: Option<PathBuf>,
    /// Sandbox limits.
    pub limits: Limits,
}

/// Bounds that make any script terminate quickly.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum number of Rhai operations.
    pub max_operations: u64,
    /// Maximum function call depth.
    pub max_call_levels: usize,
    /// Maximum string length in bytes.
    pub max_string_size: usize,
    /// Maximum array length.
    pub max_array_size: usize,
    /// Maximum object map size.
    pub max_map_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_operations: 5_000_000,
            max_call_levels: 64,
            max_string_size: 1 << 20,
            max_array_size: 10_000,
            max_map_size: 10_000,
        }
    }
}

/// The result of evaluating a script: what it declares and what is wrong with it.
#[derive(Debug)]
pub struct Evaluation {
    /// The declared state (possibly partial when there are errors).
    pub state: DesiredState,
    /// Every problem found, in the order found.
    pub diagnostics: Vec<Diagnostic>,
    /// The text of the script and of every plugin it loaded, for rendering diagnostics.
    pub sources: Sources,
    /// Whether evaluation stopped before the end of the script (a script error, a sandbox
    /// limit, a plugin that cannot load or be called): the state is partial.
    pub stopped: bool,
}

impl Evaluation {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Evaluates the environment script at `path`.
///
/// Plugins are resolved from the project of the script (the nearest ancestor with a
/// `cairn.toml` or a `plugins/` folder: its git plugins, then its `plugins/`), then from
/// [`EvalOptions::plugin_path`]. When the project has a `cairn.lock`, every imported plugin
/// must match it.
pub fn evaluate_file(path: &Path, options: &EvalOptions) -> Evaluation {
    let display = path.display().to_string();
    let failed = |code: Code, message: String, help: Option<String>| {
        let mut d = Diagnostic::error(code, message);
        if let Some(help) = help {
            d = d.help(help);
        }
        Evaluation {
            state: DesiredState::default(),
            diagnostics: vec![d],
            sources: Sources::default(),
            stopped: true,
        }
    };
    let text = match std::fs::read_to_string(path) {
        // A UTF-8 byte order mark (some Windows editors write one) is not part of the script:
        // spans count from the text after it, as the rendered snippet shows it.
        Ok(text) => match text.strip_prefix('\u{feff}') {
            Some(rest) => rest.to_owned(),
            None => text,
        },
        Err(err) => {
            return failed(
                Code::UnreadableScript,
                format!("cannot read {display}: {err}"),
                None,
            );
        }
    };
    let project = match project::Project::find(path) {
        Ok(project) => project,
        Err(e) => return failed(e.code, e.message, e.help),
    };
    let search = project::PluginSearch {
        project,
        dirs: options.plugin_path.clone(),
        cache_dir: options.cache_dir.clone(),
    };
    let mut eval = evaluate_with(&display, &text, &search, options);
    if !eval.stopped && eval.state.environment.name.is_empty() && !eval.has_errors() {
        eval.diagnostics.push(no_environment(&display, &text));
    }
    eval
}

/// The error of an environment script that never calls `environment(...)` (an empty one
/// too): it has no name to plan, lock or record under, so every command stops there.
fn no_environment(display: &str, text: &str) -> Diagnostic {
    let help = "start the script with `let env = environment(\"staging\", #{});`, then declare the namespace and what runs in it on `env`";
    let mut offset = 0;
    let mut first = None;
    for (n, l) in text.split_inclusive('\n').enumerate() {
        if !l.trim().is_empty() && !l.trim_start().starts_with("//") {
            first = Some((n, l.trim_end().len()));
            break;
        }
        offset += l.len();
    }
    let Some((line, len)) = first else {
        return Diagnostic::error(
            Code::MissingEnvironment,
            format!("{display} declares no environment: the script is empty"),
        )
        .help(help);
    };
    let span = Span {
        file: display.to_owned(),
        offset,
        len,
        line: u32::try_from(line + 1).unwrap_or(u32::MAX),
        col: 1,
    };
    Diagnostic::error(
        Code::MissingEnvironment,
        "the script declares no environment: it never calls environment(...)",
    )
    .at(Some(span))
    .label("the script starts here without environment(...)")
    .help(help)
}

/// Evaluates script text named `name`, resolving plugins from `plugin_dirs` in order (no
/// project: no `cairn.toml`, no lock).
pub fn evaluate(
    name: &str,
    text: &str,
    plugin_dirs: &[PathBuf],
    options: &EvalOptions,
) -> Evaluation {
    let search = project::PluginSearch {
        project: None,
        dirs: plugin_dirs.to_vec(),
        cache_dir: options.cache_dir.clone(),
    };
    evaluate_with(name, text, &search, options)
}

fn evaluate_with(
    name: &str,
    text: &str,
    plugins: &project::PluginSearch,
    options: &EvalOptions,
) -> Evaluation {
    let sources = Sources::default();
    sources.insert(name, text);
    let builder = Arc::new(Mutex::new(builder::Builder::new(options.vars.clone())));
    let engine = api::engine(&builder, &sources, name, plugins, &options.limits);
    let mut diagnostics = Vec::new();
    let mut stopped = false;
    match engine.compile(text) {
        Ok(mut ast) => {
            ast.set_source(name);
            if let Err(err) = engine.run_ast(&ast) {
                stopped = true;
                if !params::is_reported(&err) {
                    diagnostics.push(api::runtime_diagnostic(&sources, name, &err));
                }
            }
        }
        Err(err) => {
            stopped = true;
            diagnostics.push(api::parse_diagnostic(&sources, name, &err));
        }
    }
    let (state, mut found) = builder::finish(&builder);
    found.append(&mut diagnostics);
    Evaluation {
        state,
        diagnostics: found,
        sources,
        stopped,
    }
}

/// A plugin's `main.rhai` does not parse (Rhai's message, with its position).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PluginParseError(pub String);

/// The public functions a plugin's `main.rhai` defines: name and parameter names, in order of
/// definition. For `cairn plugin info` and `cairn plugin test`.
pub fn plugin_functions(text: &str) -> Result<Vec<(String, Vec<String>)>, PluginParseError> {
    let mut engine = rhai::Engine::new_raw();
    engine.set_max_expr_depths(128, 64);
    let ast = engine
        .compile(text)
        .map_err(|e| PluginParseError(e.to_string()))?;
    Ok(ast
        .iter_functions()
        .filter(|f| f.access != rhai::FnAccess::Private)
        // Closures (`|acc, x| …`) are compiled as functions named `anon$…`: not the plugin's.
        .filter(|f| !f.name.starts_with("anon$"))
        .map(|f| {
            (
                f.name.to_owned(),
                f.params.iter().map(|p| (*p).to_owned()).collect(),
            )
        })
        .collect())
}
