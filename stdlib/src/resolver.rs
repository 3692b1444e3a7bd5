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

/// How a plugin file is shown in diagnostics: relative to the folder that holds the plugin
/// directory (`plugins/postgres/main.rhai`), whatever the working directory.
pub fn display_path(dir: &Path, file: &Path) -> String {
    dir.parent()
        .and_then(|base| file.strip_prefix(base).ok())
        .unwrap_or(file)
        .display()
        .to_string()
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
        let Some((dir, file)) = self
            .dirs
            .iter()
            .map(|d| (d, d.join(name).join("main.rhai")))
            .find(|(_, f)| f.is_file())
        else {
            return Err(Box::new(EvalAltResult::ErrorModuleNotFound(
                name.to_owned(),
                pos,
            )));
        };
        let display = display_path(dir, &file);
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
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(display.clone(), e, pos)))?;
        Ok(module.into())
    }
}
