//! Plugin imports: `import "postgres" as postgres;` loads `plugins/postgres/main.rhai`.
//!
//! This is the script's only access to files: a plugin name is a plain identifier (no path
//! separators, no `..`), looked up in a fixed list of directories.

use std::path::{Path, PathBuf};

use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

use crate::sources::Sources;

/// Resolves plugin names to the `main.rhai` of a plugin folder.
pub struct PluginResolver {
    dirs: Vec<PathBuf>,
    sources: Sources,
}

impl PluginResolver {
    /// A resolver searching `dirs` in order.
    pub fn new(dirs: Vec<PathBuf>, sources: Sources) -> Self {
        Self { dirs, sources }
    }
}

/// How a path is shown in diagnostics: relative to the working directory when inside it.
pub fn display_path(path: &Path) -> String {
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf());
    shown.display().to_string()
}

impl ModuleResolver for PluginResolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        name: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid {
            return Err(Box::new(EvalAltResult::ErrorModuleNotFound(
                name.to_owned(),
                pos,
            )));
        }
        let Some(file) = self
            .dirs
            .iter()
            .map(|d| d.join(name).join("main.rhai"))
            .find(|f| f.is_file())
        else {
            return Err(Box::new(EvalAltResult::ErrorModuleNotFound(
                name.to_owned(),
                pos,
            )));
        };
        let display = display_path(&file);
        let text = std::fs::read_to_string(&file).map_err(|e| {
            Box::new(EvalAltResult::ErrorRuntime(
                format!("cannot read plugin {display}: {e}").into(),
                pos,
            ))
        })?;
        self.sources.insert(&display, &text);
        let mut ast = engine.compile(&text).map_err(|e| {
            Box::new(EvalAltResult::ErrorInModule(
                display.clone(),
                Box::new(e.into()),
                pos,
            ))
        })?;
        ast.set_source(display.as_str());
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(|e| {
            Box::new(EvalAltResult::ErrorInModule(display.clone(), e, pos))
        })?;
        Ok(module.into())
    }
}
