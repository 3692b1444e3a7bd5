//! Plugins: where they are found, what state the lock says they are in, scaffolding a new
//! one, and evaluating a plugin's fixtures (`cairn plugin …`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cairn_stdlib::manifest::Manifest;
use cairn_stdlib::project::{self, Located, PluginSearch, Project, Source};

use crate::error::{Error, Result};
use crate::input::Context;

fn plugin_error(e: &cairn_stdlib::manifest::PluginError) -> Error {
    Error::Plugin(e.to_string())
}

/// Where plugins are searched: the project (`project`, else the nearest one above the working
/// directory), extra folders and `CAIRN_PLUGIN_PATH`, the git cache.
pub fn search(
    ctx: &Context,
    project: Option<&Path>,
    plugin_path: &[PathBuf],
) -> Result<PluginSearch> {
    let project = match project {
        Some(dir) => Some(Project::open(dir).map_err(|e| plugin_error(&e))?),
        None => Project::find(&ctx.cwd).map_err(|e| plugin_error(&e))?,
    };
    let mut dirs = plugin_path.to_vec();
    dirs.extend(crate::input::plugin_path_of(&ctx.vars));
    Ok(PluginSearch {
        project,
        dirs,
        cache_dir: crate::input::cache_dir(&ctx.vars),
    })
}

/// Fetches git plugins again and writes `cairn.lock` (all plugins, or `name`).
pub fn update(search: &PluginSearch, name: Option<&str>) -> Result<project::Lock> {
    project::update(search, name).map_err(|e| Error::Plugin(e.to_string()))
}

/// Every plugin the search finds.
pub fn all(search: &PluginSearch) -> Result<Vec<Located>> {
    search.all(false).map_err(|e| plugin_error(&e))
}

/// Where a plugin comes from, for people.
pub fn source_text(located: &Located) -> String {
    match &located.source {
        Source::Dir => located.display.clone(),
        Source::Git { decl, commit } => {
            let at = decl
                .tag
                .as_ref()
                .map(|t| format!(" (tag {t})"))
                .unwrap_or_default();
            let path = decl
                .path
                .as_ref()
                .map(|p| format!(" path {p}"))
                .unwrap_or_default();
            format!("{} @ {commit}{at}{path}", decl.git)
        }
    }
}

/// A plugin's version from its manifest: `-` without one, `invalid` when it does not read.
pub fn version(located: &Located) -> String {
    let manifest = Manifest::read(
        &located.dir,
        &located.file_display("plugin.toml"),
        &located.name,
    );
    match &manifest {
        Ok(Some(m)) => m.version.clone(),
        Ok(None) => "-".to_owned(),
        Err(_) => "invalid".to_owned(),
    }
}

/// Whether `cairn.lock` pins a plugin as it is: `locked`, `changed`, `not locked`, …
pub fn lock_status(search: &PluginSearch, located: &Located) -> String {
    let lock = search.project.as_ref().and_then(|p| p.lock.as_ref());
    match lock {
        None => "no lock file".to_owned(),
        Some(lock) => match lock.plugins.get(&located.name) {
            None => "not locked".to_owned(),
            Some(entry) => match project::content_hash(&located.dir) {
                Ok(hash) if hash == entry.hash => "locked".to_owned(),
                Ok(_) => "changed".to_owned(),
                Err(_) => "unreadable".to_owned(),
            },
        },
    }
}

/// The plugin `name`, or why it is not found.
pub fn locate(search: &PluginSearch, name: &str) -> Result<Located> {
    search
        .locate(name, false)
        .map_err(|e| plugin_error(&e))?
        .ok_or_else(|| {
            Error::Plugin(format!(
                "plugin `{name}` not found (plugins are folders under the project's plugins/, CAIRN_PLUGIN_PATH, or declared in cairn.toml)"
            ))
        })
}

/// A plugin's functions and their parameters.
pub type Functions = Vec<(String, Vec<String>)>;

/// A plugin's manifest (if any) and the functions of its `main.rhai` with their parameters.
pub fn describe(located: &Located) -> Result<(Option<Manifest>, Functions)> {
    let manifest = Manifest::read(
        &located.dir,
        &located.file_display("plugin.toml"),
        &located.name,
    )
    .map_err(|e| plugin_error(&e))?;
    let text = std::fs::read_to_string(located.dir.join("main.rhai")).map_err(|e| {
        Error::Plugin(format!(
            "cannot read {}: {e}",
            located.file_display("main.rhai")
        ))
    })?;
    let functions = cairn_stdlib::plugin_functions(&text)
        .map_err(|e| Error::Plugin(format!("{}: {e}", located.file_display("main.rhai"))))?;
    Ok((manifest, functions.into_iter().collect()))
}

/// What `cairn plugin info` says of a plugin: name, version, source, each function with the
/// options its manifest describes.
pub fn info(search: &PluginSearch, name: &str) -> Result<String> {
    use std::fmt::Write as _;
    let located = locate(search, name)?;
    let (manifest, functions) = describe(&located)?;
    let mut out = String::new();
    match &manifest {
        Some(m) => {
            let _ = writeln!(out, "{} {}", m.name, m.version);
            if !m.description.is_empty() {
                let _ = writeln!(out, "{}", m.description);
            }
            if let Some(min) = &m.min_cairn {
                let _ = writeln!(out, "needs cairn {min} or newer");
            }
        }
        None => {
            let _ = writeln!(out, "{name} (no plugin.toml: options are not checked)");
        }
    }
    let _ = writeln!(out, "source: {}", source_text(&located));
    for (fname, params) in &functions {
        let _ = writeln!(out, "\n{name}::{fname}({})", params.join(", "));
        let Some(spec) = manifest.as_ref().and_then(|m| m.functions.get(fname)) else {
            let _ = writeln!(
                out,
                "  (not described in plugin.toml: options are not checked)"
            );
            continue;
        };
        if !spec.doc.is_empty() {
            let _ = writeln!(out, "  {}", spec.doc);
        }
        if spec.params.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "  options (`{}`):",
            params.last().map_or("options", String::as_str)
        );
        let width = spec.params.keys().map(String::len).max().unwrap_or(0);
        for (pname, p) in &spec.params {
            let status = if p.required {
                "required".to_owned()
            } else if let Some(default) = &p.default {
                format!("default {default}")
            } else {
                "optional".to_owned()
            };
            let doc = if p.doc.is_empty() {
                String::new()
            } else {
                format!(" — {}", p.doc)
            };
            let _ = writeln!(out, "    {pname:width$}  {}, {status}{doc}", p.ty);
        }
    }
    Ok(out)
}

/// The rows of `cairn plugin list`: a header, then name, version, lock state and source.
pub fn rows(search: &PluginSearch, all: &[Located]) -> Vec<[String; 4]> {
    let mut rows = vec![[
        "NAME".to_owned(),
        "VERSION".to_owned(),
        "LOCK".to_owned(),
        "SOURCE".to_owned(),
    ]];
    for located in all {
        rows.push([
            located.name.clone(),
            version(located),
            lock_status(search, located),
            source_text(located),
        ]);
    }
    rows
}

/// Whether `name` may name a plugin.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The files of a new plugin `name`: manifest, main.rhai, a fixture, a README.
pub fn scaffold(name: &str) -> Result<[(&'static str, String); 4]> {
    if !valid_name(name) {
        return Err(Error::Plugin(format!(
            "invalid plugin name `{name}`: use lowercase letters, digits, '-' and '_', starting with a letter"
        )));
    }
    let ident = name.replace('-', "_");
    Ok([
        ("plugin.toml", scaffold_manifest(name)),
        ("main.rhai", scaffold_main(name)),
        ("fixtures/basic.rhai", scaffold_fixture(name, &ident)),
        ("README.md", scaffold_readme(name, &ident)),
    ])
}

fn scaffold_manifest(name: &str) -> String {
    format!(
        r#"name = "{name}"
version = "0.1.0"
description = "What {name} provides"
min_cairn = "{}"

[functions.instance]
doc = "A {name} instance: a Deployment with a Service"
[functions.instance.params]
image = {{ type = "string", required = true, doc = "The container image" }}
replicas = {{ type = "int", default = 1, doc = "How many pods" }}
port = {{ type = "int", default = 8080, doc = "The port the container listens on" }}
cpu = {{ type = "quantity", default = "100m", doc = "CPU per pod" }}
memory = {{ type = "quantity", default = "128Mi", doc = "Memory per pod" }}
"#,
        cairn_stdlib::manifest::CAIRN_VERSION
    )
}

fn scaffold_main(name: &str) -> String {
    format!(
        r#"//! {name}: what this plugin provides.

/// A {name} instance: a Deployment with a Service.
///
/// Its options are described, typed and checked by plugin.toml: the body sees the defaults.
fn instance(env, name, options) {{
    env.deployment(name, #{{
        image: options.image,
        replicas: options.replicas,
        port: options.port,
        ready: http_get("/", options.port),
        resources: #{{ cpu: options.cpu, memory: options.memory }},
    }})
}}
"#
    )
}

fn scaffold_fixture(name: &str, ident: &str) -> String {
    format!(
        r#"// `cairn plugin test {name}` renders this and compares it with basic.expected.
import "{name}" as {ident};

let env = environment("demo", #{{}});
env.namespace("demo", #{{}});
{ident}::instance(env, "{name}", #{{ image: "nginx:1.27" }});
"#
    )
}

fn scaffold_readme(name: &str, ident: &str) -> String {
    format!(
        r#"# {name}

What this plugin provides.

```rhai
import "{name}" as {ident};
let web = {ident}::instance(env, "web", #{{ image: "nginx:1.27", replicas: 2 }});
```

`cairn plugin info {name}` lists its functions and their options (from `plugin.toml`);
`cairn plugin test {name}` renders `fixtures/*.rhai` and compares the output with
`fixtures/*.expected` (`--update` writes them).
"#
    )
}

/// A plugin's fixtures.
pub struct Fixtures {
    /// The plugin's name.
    pub name: String,
    /// Its `fixtures/` folder.
    pub dir: PathBuf,
    /// `fixtures/*.rhai`, sorted.
    pub files: Vec<PathBuf>,
    /// Where its fixtures' imports are searched: the plugin's own folder first.
    plugin_dirs: Vec<PathBuf>,
    cache_dir: Option<PathBuf>,
}

/// The plugin `plugin` names: a folder (a path, or one holding `main.rhai`), else a name to
/// locate.
fn plugin_folder(search: &PluginSearch, plugin: &str) -> Result<(String, PathBuf)> {
    let as_path = PathBuf::from(plugin);
    if plugin.contains(['/', '.']) || as_path.join("main.rhai").is_file() {
        let dir = std::path::absolute(&as_path).map_err(|e| Error::Plugin(e.to_string()))?;
        if !dir.join("main.rhai").is_file() {
            return Err(Error::Plugin(format!(
                "{plugin} is not a plugin folder (no main.rhai)"
            )));
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok((name, dir));
    }
    let located = locate(search, plugin)?;
    Ok((located.name, located.dir))
}

/// The fixtures of `plugin` (a name or a folder).
pub fn fixtures(search: &PluginSearch, plugin: &str) -> Result<Fixtures> {
    let (name, dir) = plugin_folder(search, plugin)?;
    let fixtures_dir = dir.join("fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&fixtures_dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    if files.is_empty() {
        return Err(Error::Plugin(format!(
            "plugin `{name}` has no fixtures ({}/*.rhai)",
            fixtures_dir.display()
        )));
    }
    // The plugin's own folder comes first, so the fixtures import this copy of it.
    let mut plugin_dirs = vec![dir.parent().map(Path::to_path_buf).unwrap_or_default()];
    plugin_dirs.extend(search.dirs.iter().cloned());
    if let Some(project) = &search.project {
        plugin_dirs.push(project.root.join("plugins"));
    }
    Ok(Fixtures {
        name,
        dir: fixtures_dir,
        files,
        plugin_dirs,
        cache_dir: search.cache_dir.clone(),
    })
}

/// One evaluated fixture.
pub struct Fixture {
    /// Its file stem (`basic`).
    pub stem: String,
    /// How it is named in output (`postgres/fixtures/basic.rhai`).
    pub display: String,
    /// The evaluation.
    pub eval: cairn_stdlib::Evaluation,
    /// Its expected output file.
    pub expected_file: PathBuf,
}

impl Fixtures {
    /// Evaluates one fixture, with the variables of its `<stem>.env` if there is one.
    pub fn evaluate(&self, fixture: &Path) -> Result<Fixture> {
        let stem = fixture
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let display = format!("{}/fixtures/{stem}.rhai", self.name);
        let text = std::fs::read_to_string(fixture).map_err(|e| Error::file("read", fixture, e))?;
        let env_file = self.dir.join(format!("{stem}.env"));
        let vars = if env_file.is_file() {
            let text = std::fs::read_to_string(&env_file)
                .map_err(|e| Error::file("read", &env_file, e))?;
            crate::input::parse_env_file(&text)
        } else {
            BTreeMap::new()
        };
        let options = cairn_stdlib::EvalOptions {
            vars,
            cache_dir: self.cache_dir.clone(),
            ..cairn_stdlib::EvalOptions::default()
        };
        let eval = cairn_stdlib::evaluate(&display, &text, &self.plugin_dirs, &options);
        Ok(Fixture {
            expected_file: self.dir.join(format!("{stem}.expected")),
            stem,
            display,
            eval,
        })
    }
}
