//! cairn's Rhai standard library: the environment language.
//!
//! [`evaluate_file`] runs an environment script in a sandboxed [`rhai::Engine`] (no file or
//! network access other than plugin imports, bounded operations, call depth and sizes) and
//! returns the [`DesiredState`] it declares together with every [`Diagnostic`] found on the way.
//! Scripts only *declare*: each stdlib call records resources into a shared builder, validating
//! names, quantities, schedules and DNS names as it goes, and pointing every problem at the
//! script span that caused it.
//!
//! This is the only crate that knows Rhai. Rhai positions become [`Span`]s in exactly one place
//! ([`sources::Sources::span`]).

mod api;
mod builder;
mod convert;
mod custom;
mod docs;
mod k8s;
mod network;
mod opts;
mod resolver;
mod smoke;
mod sources;
mod types;
mod workloads;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cairn_model::{DesiredState, Diagnostic};

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
}

impl Evaluation {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Evaluates the environment script at `path`.
///
/// Plugins are resolved from the `plugins/` folder of the project (the nearest ancestor of the
/// script that has one), then from [`EvalOptions::plugin_path`].
pub fn evaluate_file(path: &Path, options: &EvalOptions) -> Evaluation {
    let display = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut dirs = Vec::new();
            if let Some(root) = project_root(path) {
                dirs.push(root.join("plugins"));
            }
            dirs.extend(options.plugin_path.iter().cloned());
            evaluate(&display, &text, &dirs, options)
        }
        Err(err) => Evaluation {
            state: DesiredState::default(),
            diagnostics: vec![Diagnostic::error(
                "unreadable-script",
                format!("cannot read {display}: {err}"),
            )],
            sources: Sources::default(),
        },
    }
}

/// Evaluates script text named `name`, resolving plugins from `plugin_dirs` in order.
pub fn evaluate(
    name: &str,
    text: &str,
    plugin_dirs: &[PathBuf],
    options: &EvalOptions,
) -> Evaluation {
    let sources = Sources::default();
    sources.insert(name, text);
    let builder = Arc::new(Mutex::new(builder::Builder::new(options.vars.clone())));
    let engine = api::engine(&builder, &sources, name, plugin_dirs, &options.limits);
    let mut diagnostics = Vec::new();
    match engine.compile(text) {
        Ok(mut ast) => {
            ast.set_source(name);
            if let Err(err) = engine.run_ast(&ast) {
                diagnostics.push(api::runtime_diagnostic(&sources, name, &err));
            }
        }
        Err(err) => diagnostics.push(api::parse_diagnostic(&sources, name, &err)),
    }
    let (state, mut found) = builder::finish(&builder);
    found.append(&mut diagnostics);
    Evaluation {
        state,
        diagnostics: found,
        sources,
    }
}

fn project_root(script: &Path) -> Option<PathBuf> {
    let start = std::path::absolute(script).ok()?;
    let mut dir = start.parent();
    while let Some(d) = dir {
        if d.join("plugins").is_dir() {
            return Some(d.to_path_buf());
        }
        dir = d.parent();
    }
    None
}
