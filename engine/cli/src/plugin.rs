//! `cairn plugin list | info | new | test | update`.

use std::path::{Path, PathBuf};

use cairn_engine::plugins;
use cairn_stdlib::project::{self, PluginSearch};
use clap::Subcommand;

use crate::report;
use crate::shell::{CliError, EXIT_ERROR, EXIT_OK, Io};

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
            let lock = plugins::update(&search, name.as_deref())?;
            let root = search.project.as_ref().map(|p| p.root.clone());
            for (plugin, entry) in &lock.plugins {
                if name.as_ref().is_some_and(|n| n != plugin) {
                    continue;
                }
                let from = match (&entry.git, &entry.commit) {
                    (Some(git), Some(commit)) => format!("{git}@{commit}"),
                    _ => entry.path.clone().unwrap_or_default(),
                };
                outln!(
                    io,
                    "locked {plugin} {} ({from}) {}",
                    entry.version,
                    entry.hash
                )?;
            }
            if let Some(root) = root {
                errln!(io, "wrote {}", root.join(project::LOCK_FILE).display())?;
            }
            Ok(EXIT_OK)
        }
    }
}

fn search(io: &Io<'_>, args: &ProjectArgs) -> Result<PluginSearch, CliError> {
    Ok(plugins::search(
        &io.context(),
        args.project.as_deref(),
        &args.plugin_path,
    )?)
}

fn list(io: &mut Io<'_>, search: &PluginSearch) -> Result<i32, CliError> {
    let all = plugins::all(search)?;
    if all.is_empty() {
        errln!(io, "no plugins found")?;
        return Ok(EXIT_OK);
    }
    let rows = plugins::rows(search, &all);
    let widths: Vec<usize> = (0..3)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for row in rows {
        outln!(
            io,
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )?;
    }
    Ok(EXIT_OK)
}

fn info(io: &mut Io<'_>, search: &PluginSearch, name: &str) -> Result<i32, CliError> {
    let text = plugins::info(search, name)?;
    out!(io, "{text}")?;
    Ok(EXIT_OK)
}

fn new(
    io: &mut Io<'_>,
    args: &ProjectArgs,
    name: &str,
    dir: Option<&Path>,
) -> Result<i32, CliError> {
    let files = plugins::scaffold(name)?;
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
        let exists = format!("{} already exists", folder.display());
        return Err(cairn_engine::Error::Plugin(exists).into());
    }
    for (file, text) in files {
        let path = folder.join(file);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(|e| crate::shell::file_error("create", p, e))?;
        }
        std::fs::write(&path, text).map_err(|e| crate::shell::file_error("write", &path, e))?;
        outln!(io, "created {}", path.display())?;
    }
    errln!(
        io,
        "next: `cairn plugin test {} --update` writes the expected output of its fixture",
        folder.display()
    )?;
    Ok(EXIT_OK)
}

/// The rendered output of one fixture: its diagnostics, then (without errors) the YAML.
fn fixture_output(eval: &cairn_stdlib::Evaluation) -> Result<String, CliError> {
    let diagnostics = cairn_engine::input::check_diagnostics(eval);
    let mut text = String::new();
    if !diagnostics.is_empty() {
        text.push_str(&report::render(&diagnostics, &eval.sources, false));
    }
    if !diagnostics.iter().any(cairn_model::Diagnostic::is_error) {
        let docs =
            cairn_engine::render::documents(&eval.state, &cairn_engine::render::Secrets::Redacted)
                .map_err(|id| {
                    cairn_engine::Error::Bug(format!("generated value {id} has no value"))
                })?;
        text.push_str(&cairn_engine::render::yaml_stream(&docs));
    }
    Ok(text)
}

/// Whether one fixture renders as expected; prints `ok`, or `FAILED` with a diff.
fn compare(io: &mut Io<'_>, f: &plugins::Fixture, actual: &str) -> Result<bool, CliError> {
    let Ok(expected) = std::fs::read_to_string(&f.expected_file) else {
        outln!(
            io,
            "FAILED {}: no {}.expected (run with --update to write it)",
            f.display,
            f.stem
        )?;
        return Ok(false);
    };
    if expected == actual {
        outln!(io, "ok {}", f.display)?;
        return Ok(true);
    }
    let diff = similar::TextDiff::from_lines(expected.as_str(), actual);
    outln!(io, "FAILED {}: the output differs", f.display)?;
    out!(
        io,
        "{}",
        diff.unified_diff()
            .context_radius(3)
            .header(&format!("{}.expected", f.stem), "rendered")
    )?;
    Ok(false)
}

fn test(
    io: &mut Io<'_>,
    search: &PluginSearch,
    plugin: &str,
    update: bool,
) -> Result<i32, CliError> {
    let fixtures = plugins::fixtures(search, plugin)?;
    let mut failed = 0;
    for file in &fixtures.files {
        let f = fixtures.evaluate(file)?;
        let actual = fixture_output(&f.eval)?;
        if update {
            std::fs::write(&f.expected_file, &actual)
                .map_err(|e| crate::shell::file_error("write", &f.expected_file, e))?;
            outln!(io, "updated {}", f.display)?;
        } else if !compare(io, &f, &actual)? {
            failed += 1;
        }
    }
    if update {
        return Ok(EXIT_OK);
    }
    outln!(
        io,
        "{}: {} fixtures, {} failed",
        fixtures.name,
        fixtures.files.len(),
        failed
    )?;
    Ok(if failed == 0 { EXIT_OK } else { EXIT_ERROR })
}
