//! `cairn plugin list | info | new | test | update`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cairn_stdlib::manifest::{Manifest, PluginError};
use cairn_stdlib::project::{self, Located, PluginSearch, Project, Source};
use clap::Subcommand;

use crate::{CliError, EXIT_ERROR, EXIT_OK, Io, output, report};

#[derive(Subcommand, Debug)]
pub enum PluginAction {
    /// List the plugins this project can import: name, version, source, whether cairn.lock
    /// pins them
    List {
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Show a plugin's description, functions and their parameters
    Info {
        /// The plugin's name
        name: String,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Create a plugin: plugin.toml, main.rhai with a documented function, a fixture, a README
    New {
        /// The plugin's name (lowercase letters, digits, '-' and '_')
        name: String,
        /// The folder to create it in (default: the project's plugins/)
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Evaluate a plugin's fixtures/*.rhai and compare what they render with
    /// fixtures/*.expected
    ///
    /// Exit code 0 when every fixture matches, 1 otherwise (with a diff).
    Test {
        /// A plugin name, or the path of a plugin folder
        plugin: String,
        /// Write the expected files instead of comparing
        #[arg(long)]
        update: bool,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Fetch git plugins again and write cairn.lock (all plugins, or one)
    Update {
        /// Only this plugin
        name: Option<String>,
        #[command(flatten)]
        project: ProjectArgs,
    },
}

#[derive(clap::Args, Debug)]
pub struct ProjectArgs {
    /// The project folder (holding cairn.toml or plugins/); default: the nearest one above the
    /// working directory
    #[arg(long, value_name = "DIR")]
    project: Option<PathBuf>,
    /// Extra plugin directory (also CAIRN_PLUGIN_PATH, separated by ':')
    #[arg(long, value_name = "DIR")]
    plugin_path: Vec<PathBuf>,
}

pub fn run(io: &mut Io<'_>, action: &PluginAction) -> Result<i32, CliError> {
    match action {
        PluginAction::List { project } => list(io, &search(io, project)?),
        PluginAction::Info { name, project } => info(io, &search(io, project)?, name),
        PluginAction::New { name, dir, project } => new(io, project, name, dir.as_deref()),
        PluginAction::Test {
            plugin,
            update,
            project,
        } => test(io, &search(io, project)?, plugin, *update),
        PluginAction::Update { name, project } => {
            let search = search(io, project)?;
            let lock = project::update(&search, name.as_deref())
                .map_err(|e| CliError::Plugin(e.to_string()))?;
            let root = search.project.as_ref().map(|p| p.root.clone());
            for (plugin, entry) in &lock.plugins {
                if name.as_ref().is_some_and(|n| n != plugin) {
                    continue;
                }
                let from = match (&entry.git, &entry.commit) {
                    (Some(git), Some(commit)) => format!("{git}@{commit}"),
                    _ => entry.path.clone().unwrap_or_default(),
                };
                let _ = writeln!(
                    io.out,
                    "locked {plugin} {} ({from}) {}",
                    entry.version, entry.hash
                );
            }
            if let Some(root) = root {
                let _ = writeln!(io.err, "wrote {}", root.join(project::LOCK_FILE).display());
            }
            Ok(EXIT_OK)
        }
    }
}

fn plugin_error(e: &PluginError) -> CliError {
    CliError::Plugin(e.to_string())
}

fn search(io: &Io<'_>, args: &ProjectArgs) -> Result<PluginSearch, CliError> {
    let project = match &args.project {
        Some(dir) => Some(Project::open(dir).map_err(|e| plugin_error(&e))?),
        None => Project::find(&io.cwd).map_err(|e| plugin_error(&e))?,
    };
    let mut dirs = args.plugin_path.clone();
    if let Some(extra) = io.vars.get("CAIRN_PLUGIN_PATH") {
        dirs.extend(
            extra
                .split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        );
    }
    Ok(PluginSearch {
        project,
        dirs,
        cache_dir: cairn_engine::input::cache_dir(&io.vars),
    })
}

fn source_text(located: &Located) -> String {
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

fn list(io: &mut Io<'_>, search: &PluginSearch) -> Result<i32, CliError> {
    let all = search.all(false).map_err(|e| plugin_error(&e))?;
    if all.is_empty() {
        let _ = writeln!(io.err, "no plugins found");
        return Ok(EXIT_OK);
    }
    let lock = search.project.as_ref().and_then(|p| p.lock.as_ref());
    let mut rows = vec![[
        "NAME".to_owned(),
        "VERSION".to_owned(),
        "LOCK".to_owned(),
        "SOURCE".to_owned(),
    ]];
    for located in &all {
        let manifest = Manifest::read(
            &located.dir,
            &located.file_display("plugin.toml"),
            &located.name,
        );
        let version = match &manifest {
            Ok(Some(m)) => m.version.clone(),
            Ok(None) => "-".to_owned(),
            Err(_) => "invalid".to_owned(),
        };
        let locked = match lock {
            None => "no lock file".to_owned(),
            Some(lock) => match lock.plugins.get(&located.name) {
                None => "not locked".to_owned(),
                Some(entry) => match project::content_hash(&located.dir) {
                    Ok(hash) if hash == entry.hash => "locked".to_owned(),
                    Ok(_) => "changed".to_owned(),
                    Err(_) => "unreadable".to_owned(),
                },
            },
        };
        rows.push([located.name.clone(), version, locked, source_text(located)]);
    }
    let widths: Vec<usize> = (0..3)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let _ = writeln!(
            io.out,
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    Ok(EXIT_OK)
}

fn locate(search: &PluginSearch, name: &str) -> Result<Located, CliError> {
    search
        .locate(name, false)
        .map_err(|e| plugin_error(&e))?
        .ok_or_else(|| {
            CliError::Plugin(format!(
                "plugin `{name}` not found (plugins are folders under the project's plugins/, CAIRN_PLUGIN_PATH, or declared in cairn.toml)"
            ))
        })
}

fn info(io: &mut Io<'_>, search: &PluginSearch, name: &str) -> Result<i32, CliError> {
    let located = locate(search, name)?;
    let manifest = Manifest::read(
        &located.dir,
        &located.file_display("plugin.toml"),
        &located.name,
    )
    .map_err(|e| plugin_error(&e))?;
    let text = std::fs::read_to_string(located.dir.join("main.rhai")).map_err(|e| {
        CliError::Plugin(format!(
            "cannot read {}: {e}",
            located.file_display("main.rhai")
        ))
    })?;
    let functions = cairn_stdlib::plugin_functions(&text)
        .map_err(|e| CliError::Plugin(format!("{}: {e}", located.file_display("main.rhai"))))?;
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
    let _ = io.out.write_all(out.as_bytes());
    Ok(EXIT_OK)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn new(
    io: &mut Io<'_>,
    args: &ProjectArgs,
    name: &str,
    dir: Option<&Path>,
) -> Result<i32, CliError> {
    if !valid_name(name) {
        return Err(CliError::Plugin(format!(
            "invalid plugin name `{name}`: use lowercase letters, digits, '-' and '_', starting with a letter"
        )));
    }
    let parent = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            let search = search(io, args)?;
            search
                .project
                .map(|p| p.root.join("plugins"))
                .unwrap_or_else(|| io.cwd.join("plugins"))
        }
    };
    let folder = parent.join(name);
    if folder.exists() {
        return Err(CliError::Plugin(format!(
            "{} already exists",
            folder.display()
        )));
    }
    let ident = name.replace('-', "_");
    let files = [
        ("plugin.toml", scaffold_manifest(name)),
        ("main.rhai", scaffold_main(name)),
        ("fixtures/basic.rhai", scaffold_fixture(name, &ident)),
        ("README.md", scaffold_readme(name, &ident)),
    ];
    for (file, text) in files {
        let path = folder.join(file);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)
                .map_err(|e| CliError::Plugin(format!("cannot create {}: {e}", p.display())))?;
        }
        std::fs::write(&path, text)
            .map_err(|e| CliError::Plugin(format!("cannot write {}: {e}", path.display())))?;
        let _ = writeln!(io.out, "created {}", path.display());
    }
    let _ = writeln!(
        io.err,
        "next: `cairn plugin test {} --update` writes the expected output of its fixture",
        folder.display()
    );
    Ok(EXIT_OK)
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

/// The rendered output of one fixture: its diagnostics, then (without errors) the YAML.
fn fixture_output(eval: &cairn_stdlib::Evaluation) -> Result<String, CliError> {
    let diagnostics = crate::check_diagnostics(eval);
    let mut text = String::new();
    if !diagnostics.is_empty() {
        text.push_str(&report::render(&diagnostics, &eval.sources, false));
    }
    if !diagnostics.iter().any(cairn_model::Diagnostic::is_error) {
        let docs = output::documents(&eval.state, &output::Secrets::Redacted)
            .map_err(|id| cairn_engine::Error::Bug(format!("generated value {id} has no value")))?;
        text.push_str(&output::yaml_stream(&docs));
    }
    Ok(text)
}

fn test(
    io: &mut Io<'_>,
    search: &PluginSearch,
    plugin: &str,
    update: bool,
) -> Result<i32, CliError> {
    let as_path = PathBuf::from(plugin);
    let (name, dir) = if plugin.contains(['/', '.']) || as_path.join("main.rhai").is_file() {
        let dir = std::path::absolute(&as_path).map_err(|e| CliError::Plugin(e.to_string()))?;
        if !dir.join("main.rhai").is_file() {
            return Err(CliError::Plugin(format!(
                "{plugin} is not a plugin folder (no main.rhai)"
            )));
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (name, dir)
    } else {
        let located = locate(search, plugin)?;
        (located.name, located.dir)
    };
    let fixtures_dir = dir.join("fixtures");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&fixtures_dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
                .collect()
        })
        .unwrap_or_default();
    fixtures.sort();
    if fixtures.is_empty() {
        return Err(CliError::Plugin(format!(
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
    let mut failed = 0;
    for fixture in &fixtures {
        let stem = fixture
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let display = format!("{name}/fixtures/{stem}.rhai");
        let text = std::fs::read_to_string(fixture)
            .map_err(|e| CliError::Plugin(format!("cannot read {}: {e}", fixture.display())))?;
        let env_file = fixtures_dir.join(format!("{stem}.env"));
        let vars = if env_file.is_file() {
            cairn_engine::input::parse_env_file(&std::fs::read_to_string(&env_file).map_err(
                |e| CliError::Plugin(format!("cannot read {}: {e}", env_file.display())),
            )?)
        } else {
            BTreeMap::new()
        };
        let options = cairn_stdlib::EvalOptions {
            vars,
            cache_dir: search.cache_dir.clone(),
            ..cairn_stdlib::EvalOptions::default()
        };
        let eval = cairn_stdlib::evaluate(&display, &text, &plugin_dirs, &options);
        let actual = fixture_output(&eval)?;
        let expected_file = fixtures_dir.join(format!("{stem}.expected"));
        if update {
            std::fs::write(&expected_file, &actual).map_err(|e| {
                CliError::Plugin(format!("cannot write {}: {e}", expected_file.display()))
            })?;
            let _ = writeln!(io.out, "updated {display}");
            continue;
        }
        let Ok(expected) = std::fs::read_to_string(&expected_file) else {
            failed += 1;
            let _ = writeln!(
                io.out,
                "FAILED {display}: no {stem}.expected (run with --update to write it)"
            );
            continue;
        };
        if expected == actual {
            let _ = writeln!(io.out, "ok {display}");
        } else {
            failed += 1;
            let diff = similar::TextDiff::from_lines(&expected, &actual);
            let _ = writeln!(io.out, "FAILED {display}: the output differs");
            let _ = write!(
                io.out,
                "{}",
                diff.unified_diff()
                    .context_radius(3)
                    .header(&format!("{stem}.expected"), "rendered")
            );
        }
    }
    if update {
        return Ok(EXIT_OK);
    }
    let _ = writeln!(
        io.out,
        "{}: {} fixtures, {} failed",
        name,
        fixtures.len(),
        failed
    );
    Ok(if failed == 0 { EXIT_OK } else { EXIT_ERROR })
}
