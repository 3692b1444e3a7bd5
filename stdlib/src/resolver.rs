//! Plugin imports: `import "postgres" as postgres;` loads the `main.rhai` of the plugin folder
//! `postgres`, found by [`PluginSearch`] (a git repository declared in `cairn.toml`, the
//! project's `plugins/`, the plugin path).
//!
//! This is the script's only access to files: a plugin name is a plain identifier (no path
//! separators, no `..`). Loading a plugin checks it against `cairn.lock` (when the project has
//! one) and against the running cairn (`min_cairn`), and makes each function its manifest
//! describes check its options on entry (see [`crate::params`]).

use cairn_model::Code;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use cairn_model::Diagnostic;
use rhai::{Engine, EvalAltResult, FnAccess, Module, ModuleResolver, Position, Scope, Shared};

use crate::api::Ctx;
use crate::manifest::{CAIRN_VERSION, Manifest, PluginError};
use crate::params::{self, CHECK_FN, Manifests};
use crate::project::{self, Located, PluginSearch};

/// Resolves plugin names to the `main.rhai` of a plugin folder.
pub struct PluginResolver {
    search: PluginSearch,
    ctx: Ctx,
    manifests: Manifests,
    loaded: Mutex<BTreeMap<String, Shared<Module>>>,
    /// The plugins being loaded, outermost first: an import of one of them is a cycle.
    loading: Mutex<Vec<String>>,
}

impl PluginResolver {
    /// A resolver looking plugins up with `search`, reporting into `ctx`'s evaluation and
    /// recording manifests into `manifests`.
    pub fn new(search: PluginSearch, ctx: &Ctx, manifests: &Manifests) -> Self {
        Self {
            search,
            ctx: ctx.clone(),
            manifests: manifests.clone(),
            loaded: Mutex::new(BTreeMap::new()),
            loading: Mutex::new(Vec::new()),
        }
    }

    fn loading_mut(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.loading.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `rbx → postgres → rbx` when `name` is being loaded already.
    fn cycle_to(&self, name: &str) -> Option<String> {
        let loading = self.loading_mut();
        let start = loading.iter().position(|n| n == name)?;
        let mut chain: Vec<&str> = loading[start..].iter().map(String::as_str).collect();
        chain.push(name);
        Some(chain.join(" → "))
    }

    /// Records a plugin problem at the import and stops evaluation.
    fn fail(&self, error: PluginError, source: Option<&str>, pos: Position) -> Box<EvalAltResult> {
        let import = self.ctx.sources.span(source.unwrap_or(&self.ctx.main), pos);
        let mut d = Diagnostic::error(error.code, error.message);
        d = match error.span {
            Some(span) => d.at(Some(span)).label("here"),
            None => d.at(import).label("imported here"),
        };
        if let Some(help) = error.help {
            d = d.help(help);
        }
        self.ctx.report1(d);
        params::reported(pos)
    }

    fn load(
        &self,
        engine: &Engine,
        located: &Located,
        pos: Position,
    ) -> Result<Shared<Module>, Result<PluginError, Box<EvalAltResult>>> {
        project::verify(&self.search, located).map_err(Ok)?;
        let manifest_display = located.file_display("plugin.toml");
        let manifest =
            Manifest::read(&located.dir, &manifest_display, &located.name).map_err(|e| {
                if e.span.is_some()
                    && let Ok(text) = std::fs::read_to_string(located.dir.join("plugin.toml"))
                {
                    self.ctx.sources.insert(&manifest_display, &text);
                }
                Ok(e)
            })?;
        if let Some(m) = &manifest {
            m.check_cairn_version(CAIRN_VERSION).map_err(Ok)?;
            // Kept with the sources: a revision of the environment records what evaluated it.
            if let Ok(text) = std::fs::read_to_string(located.dir.join("plugin.toml")) {
                self.ctx.sources.insert(&manifest_display, &text);
            }
        }
        let display = located.file_display("main.rhai");
        let text = std::fs::read_to_string(located.dir.join("main.rhai")).map_err(|e| {
            Ok(PluginError::new(
                Code::PluginUnreadable,
                format!("cannot read plugin {display}: {e}"),
            ))
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_owned();
        self.ctx.sources.insert(&display, &text);
        let in_module = |e: Box<EvalAltResult>| {
            Err(Box::new(EvalAltResult::ErrorInModule(
                display.clone(),
                e,
                pos,
            )))
        };
        let checked = match &manifest {
            Some(m) => {
                let ast = engine.compile(&text).map_err(|e| in_module(e.into()))?;
                with_checks(&ast, &text, m, &manifest_display).map_err(Ok)?
            }
            None => text.clone(),
        };
        let mut ast = engine.compile(&checked).map_err(|e| in_module(e.into()))?;
        ast.set_source(display.as_str());
        if let Some(m) = manifest {
            crate::network::learn_metrics(&self.ctx, &m);
            self.manifests.insert(&located.name, m);
        }
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(in_module)?;
        Ok(module.into())
    }
}

/// The plugin's text with a check of the options at the start of each function its manifest
/// describes, inserted right after the function's `{` so no line moves.
fn with_checks(
    ast: &rhai::AST,
    text: &str,
    manifest: &Manifest,
    manifest_display: &str,
) -> Result<String, PluginError> {
    let mut inserts = Vec::new();
    for name in manifest.functions.keys() {
        let defs: Vec<_> = ast
            .iter_fn_def()
            .filter(|f| f.name.as_str() == name && f.access != FnAccess::Private)
            .collect();
        if defs.is_empty() {
            return Err(PluginError::new(
                Code::InvalidPluginManifest,
                format!(
                    "{manifest_display} describes the function `{name}`, which main.rhai does not define (or makes private)"
                ),
            ));
        }
        for def in defs {
            let Some(options) = def.params.last() else {
                return Err(PluginError::new(
                    Code::InvalidPluginManifest,
                    format!(
                        "{manifest_display} describes the options of `{name}`, which takes no parameters"
                    ),
                ));
            };
            let pos = def.body.start_position();
            let offset = pos
                .line()
                .and_then(|line| offset_of(text, line, pos.position().unwrap_or(1)))
                .and_then(|at| text[at..].find('{').map(|brace| at + brace + 1))
                .ok_or_else(|| {
                    PluginError::new(
                        Code::InvalidPluginManifest,
                        format!("cannot find the body of `{name}` in main.rhai; this is a bug"),
                    )
                })?;
            inserts.push((
                offset,
                format!(
                    " {options} = {CHECK_FN}({:?}, {:?}, {options});",
                    manifest.name, name
                ),
            ));
        }
    }
    inserts.sort();
    let mut out = text.to_owned();
    for (offset, code) in inserts.into_iter().rev() {
        out.insert_str(offset, &code);
    }
    Ok(out)
}

/// The byte offset of a 1-based line and character column.
fn offset_of(text: &str, line: usize, col: usize) -> Option<usize> {
    let mut start = 0;
    for _ in 1..line {
        start += text[start..].find('\n')? + 1;
    }
    let rest = &text[start..];
    let within = rest
        .char_indices()
        .nth(col.saturating_sub(1))
        .map_or(rest.len(), |(i, _)| i);
    Some(start + within)
}

impl ModuleResolver for PluginResolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
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
        if let Some(module) = self
            .loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
        {
            return Ok(module.clone());
        }
        let located = match self.search.locate(name, false) {
            Ok(Some(located)) => located,
            Ok(None) => {
                return Err(Box::new(EvalAltResult::ErrorModuleNotFound(
                    name.to_owned(),
                    pos,
                )));
            }
            Err(e) => return Err(self.fail(e, source, pos)),
        };
        if let Some(cycle) = self.cycle_to(name) {
            let error = PluginError {
                code: Code::PluginImportCycle,
                message: format!("plugin import cycle: {cycle}"),
                span: None,
                help: Some(
                    "plugins cannot import each other in a circle: move what both need into a third plugin".to_owned(),
                ),
            };
            return Err(self.fail(error, source, pos));
        }
        self.loading_mut().push(name.to_owned());
        let result = self.load(engine, &located, pos);
        self.loading_mut().pop();
        match result {
            Ok(module) => {
                self.loaded
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(name.to_owned(), module.clone());
                Ok(module)
            }
            Err(Ok(problem)) => Err(self.fail(problem, source, pos)),
            Err(Err(err)) => Err(err),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::PathBuf;

    use crate::{EvalOptions, Evaluation, evaluate};

    const MANIFEST: &str = r#"
name = "kv"
version = "1.2.3"
description = "A key-value store"
min_cairn = "0.1.0"

[functions.instance]
doc = "A store"
[functions.instance.params]
image = { type = "string", default = "kv:1", doc = "The image" }
storage = { type = "quantity", default = "1Gi", doc = "Size of the data volume" }
replicas = { type = "int", default = 1 }
database = { type = "string", required = true, doc = "The database to create" }
schedule = { type = "cron" }
"#;

    const MAIN: &str = r#"
/// A store.
fn instance(env, name, options) {
    env.config_map(name, #{ IMAGE: options.image, STORAGE: options.storage,
                        REPLICAS: options.replicas.to_string(), DATABASE: options.database });
    name
}
"#;

    fn plugin_dir(manifest: &str, main: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cairn-resolver-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(dir.join("kv")).unwrap();
        std::fs::write(dir.join("kv/plugin.toml"), manifest).unwrap();
        std::fs::write(dir.join("kv/main.rhai"), main).unwrap();
        dir
    }

    fn run(call: &str) -> Evaluation {
        let dir = plugin_dir(MANIFEST, MAIN);
        let script = format!(
            "import \"kv\" as kv;\nlet env = environment(\"demo\", #{{}});\nenv.namespace(\"demo\", #{{}});\n{call}\n"
        );
        let e = evaluate(
            "s.rhai",
            &script,
            std::slice::from_ref(&dir),
            &EvalOptions::default(),
        );
        std::fs::remove_dir_all(&dir).unwrap();
        e
    }

    fn codes(e: &Evaluation) -> Vec<(&str, String, u32, u32)> {
        e.diagnostics
            .iter()
            .map(|d| {
                let span = d.span.clone().unwrap();
                (d.code.as_str(), d.message.clone(), span.line, span.col)
            })
            .collect()
    }

    #[test]
    fn defaults_are_filled_in_for_the_plugin_body() {
        let e = run("kv::instance(env, \"kv\", #{ database: \"app\" });");
        assert!(e.diagnostics.is_empty(), "{:?}", e.diagnostics);
        let config = e
            .state
            .resources
            .iter()
            .find(|r| r.id.kind == "ConfigMap" && r.id.name == "kv")
            .unwrap();
        let text = serde_json::to_string(&config.body.to_json()).unwrap();
        assert!(text.contains(r#""IMAGE":"kv:1""#), "{text}");
        assert!(text.contains(r#""STORAGE":"1Gi""#), "{text}");
        assert!(text.contains(r#""REPLICAS":"1""#), "{text}");
    }

    #[test]
    fn unknown_options_get_a_did_you_mean_at_the_caller() {
        let e = run("kv::instance(env, \"kv\", #{ database: \"app\", storag: \"2Gi\" });");
        assert_eq!(
            codes(&e),
            [(
                "unknown-option",
                "kv::instance has no option `storag`".to_owned(),
                4,
                45
            )]
        );
        assert_eq!(
            e.diagnostics[0].help.as_deref(),
            Some("did you mean `storage`?")
        );
        assert!(!e.stopped);
    }

    #[test]
    fn wrong_types_and_invalid_values_are_errors_at_the_caller() {
        let e = run(
            "kv::instance(env, \"kv\", #{ database: \"app\", replicas: \"two\", storage: \"10GB\", schedule: \"daily\" });",
        );
        let found = codes(&e);
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(
            found[0].1,
            "option `replicas` of kv::instance must be an integer, found a string"
        );
        assert_eq!(found[1].0, "invalid-schedule");
        assert_eq!(found[2].0, "invalid-quantity");
        assert!(found.iter().all(|f| f.2 == 4), "{found:?}");
        // The defaults stand in for the invalid values, and evaluation goes on.
        assert!(!e.stopped);
    }

    #[test]
    fn a_missing_required_option_stops_the_call() {
        let e = run("kv::instance(env, \"kv\", #{});\nthrow \"not reached\";");
        assert_eq!(
            codes(&e),
            [(
                "missing-option",
                "kv::instance needs the option `database`".to_owned(),
                4,
                5
            )]
        );
        assert!(e.stopped);
        assert!(
            e.diagnostics[0]
                .help
                .as_deref()
                .unwrap()
                .contains("The database to create")
        );
    }

    #[test]
    fn a_plugin_newer_than_cairn_is_refused_at_the_import() {
        let dir = plugin_dir(&MANIFEST.replace("0.1.0", "99.0.0"), MAIN);
        let e = evaluate(
            "s.rhai",
            "import \"kv\" as kv;\n",
            std::slice::from_ref(&dir),
            &EvalOptions::default(),
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let found = codes(&e);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "plugin-needs-newer-cairn");
        assert_eq!(found[0].2, 1);
        assert!(e.stopped);
    }

    #[test]
    fn a_manifest_describing_a_missing_function_is_refused() {
        let dir = plugin_dir(
            &MANIFEST.replace("functions.instance", "functions.cluster"),
            MAIN,
        );
        let e = evaluate(
            "s.rhai",
            "import \"kv\" as kv;\n",
            std::slice::from_ref(&dir),
            &EvalOptions::default(),
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(e.diagnostics.len(), 1, "{:?}", e.diagnostics);
        assert_eq!(e.diagnostics[0].code, "invalid-plugin-manifest");
        assert!(e.diagnostics[0].message.contains("`cluster`"));
    }

    #[test]
    fn errors_inside_the_plugin_keep_their_lines() {
        let main = "fn instance(env, name, options) {\n    let x = 1;\n    nope(x)\n}\n";
        let dir = plugin_dir(MANIFEST, main);
        let e = evaluate(
            "s.rhai",
            "import \"kv\" as kv;\nkv::instance((), \"kv\", #{ database: \"d\" });\n",
            std::slice::from_ref(&dir),
            &EvalOptions::default(),
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(e.diagnostics.len(), 1, "{:?}", e.diagnostics);
        let msg = &e.diagnostics[0].message;
        assert!(msg.contains("nope"), "{msg}");
        let span = e.diagnostics[0].span.clone().unwrap();
        assert!(span.file.ends_with("kv/main.rhai"), "{span:?}");
        assert_eq!((span.line, span.col), (3, 5));
    }
}
