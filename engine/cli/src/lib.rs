//! The `cairn` command line: argument parsing, output formats, exit codes.
//!
//! Commands stay thin: they call the stdlib to evaluate, the planner to check, and format what
//! comes back. This crate is the only one that prints; everything goes through [`Io`], so the
//! whole CLI runs in-process in tests.

#[macro_use]
mod shell;
mod args;
mod destroy;
mod drift;
mod history;
mod live;
mod plugin;
mod progress;
mod report;
mod sandbox;
mod show;
mod status;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

pub use report::render as render_diagnostics;
pub use shell::{CliError, EXIT_CHANGES, EXIT_ERROR, EXIT_OK, EXIT_PROTECTED, Io};

use args::ScriptArgs;

#[derive(Parser, Debug)]
#[command(
    name = "cairn",
    version,
    about = "Environments as Rhai scripts, planned and applied against live infrastructure"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Format {
    Yaml,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the complete desired state of an environment, offline
    Render {
        #[command(flatten)]
        script: ScriptArgs,
        /// Output format
        #[arg(long, value_enum, default_value = "yaml")]
        format: Format,
        /// Write one file per object into this directory instead of printing
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        output: Option<PathBuf>,
        /// Print sensitive values instead of placeholders (generated passwords are fresh ones)
        #[arg(long)]
        show_secrets: bool,
    },
    /// Validate an environment offline and report every problem at once
    Check {
        #[command(flatten)]
        script: ScriptArgs,
        /// Report format
        #[arg(long, value_enum, default_value = "human")]
        format: ReportFormat,
        /// Then print who can reach whom (the network policies' matrix)
        #[arg(long)]
        network: bool,
    },
    /// Show what applying the script would change in the live environment
    ///
    /// Exit code 0 when nothing would change, 2 when something would, 3 when it would delete
    /// data the script allowed to delete (volumes, namespaces, buckets), 1 on error.
    Plan {
        #[command(flatten)]
        script: ScriptArgs,
        #[command(flatten)]
        live: args::LiveArgs,
        #[command(flatten)]
        output: args::PlanOutput,
    },
    /// Plan, confirm, then apply in dependency order, waiting for readiness
    ///
    /// Given a plan file written by `cairn plan -o FILE` instead of a script, applies exactly
    /// that plan without asking again, and refuses if anything it read has changed since.
    Apply {
        #[command(flatten)]
        script: ScriptArgs,
        #[command(flatten)]
        live: args::LiveArgs,
        #[command(flatten)]
        apply: args::ApplyArgs,
    },
    /// Is the environment healthy now: rollouts, certificate expiry, backup freshness
    ///
    /// Exit code 0 when everything is healthy, 1 otherwise (for scheduled CI checks).
    Status {
        #[command(flatten)]
        script: ScriptArgs,
        #[command(flatten)]
        live: args::ReadArgs,
    },
    /// Report what changed outside cairn since its last apply (kubectl edit, another tool, a
    /// record changed by hand)
    ///
    /// Exit code 0 when nothing drifted, 2 when something did, 1 on error.
    Drift {
        #[command(flatten)]
        script: ScriptArgs,
        #[command(flatten)]
        live: args::ReadArgs,
    },
    /// List the revisions recorded by each apply: time, author or CI run, summary
    History {
        #[command(flatten)]
        script: ScriptArgs,
        #[command(flatten)]
        live: args::ReadArgs,
    },
    /// Plan and apply an earlier revision again (with the plan first, as for apply)
    Rollback {
        #[command(flatten)]
        script: ScriptArgs,
        #[command(flatten)]
        live: args::LiveArgs,
        #[command(flatten)]
        apply: args::ApplyArgs,
        /// The revision to go back to (see `cairn history`)
        #[arg(long, value_name = "N")]
        to: u32,
    },
    /// Show the dependency graph apply follows, as dot, Mermaid or SVG (no Graphviz needed)
    Graph {
        #[command(flatten)]
        script: ScriptArgs,
        /// Output format
        #[arg(long, value_enum, default_value = "dot")]
        format: args::GraphFormat,
        /// Write to this file instead of printing
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        /// Draw who can reach whom (the network policies) instead of the dependencies
        #[arg(long)]
        network: bool,
    },
    /// Delete everything the environment owns: workloads, services, secrets, DNS records,
    /// certificates, its inventory and its namespace (the data only with --delete-data)
    ///
    /// Exit code 0 when everything planned was deleted, 1 on error or when cancelled, 3 when
    /// --delete-data needs a confirmation no terminal can give.
    Destroy {
        #[command(flatten)]
        script: ScriptArgs,
        #[command(flatten)]
        live: args::LiveArgs,
        #[command(flatten)]
        apply: args::ApplyArgs,
        #[command(flatten)]
        destroy: destroy::DestroyArgs,
    },
    /// Remove an environment's apply lock (left by a crashed run), after confirmation
    Unlock {
        #[command(flatten)]
        script: ScriptArgs,
        #[command(flatten)]
        target: args::TargetArgs,
        /// Do not ask
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Run the embedded Kubernetes API emulator in the background (state under .cairn/)
    Sandbox {
        #[command(subcommand)]
        action: sandbox::SandboxAction,
    },
    /// Plugins: list, inspect, scaffold, test against their fixtures, lock
    Plugin {
        #[command(subcommand)]
        action: plugin::PluginAction,
    },
    /// List the functions environment scripts can call, with examples
    Docs {
        /// Only functions whose name, parameters or documentation contain every word of this
        filter: Option<String>,
    },
    /// Print a completion script for a shell, e.g. `source <(cairn completions bash)`
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Write the man pages: cairn.1 and one per subcommand (cairn-plan.1, …)
    Man {
        /// The folder to write them to (created if need be)
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
    },
}

impl Command {
    /// The live arguments of a command that talks to a cluster.
    fn live(&self) -> Option<&args::LiveArgs> {
        match self {
            Command::Plan { live, .. }
            | Command::Apply { live, .. }
            | Command::Rollback { live, .. }
            | Command::Destroy { live, .. } => Some(live),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum ReportFormat {
    Human,
    Json,
}

/// Prints a usage error (exit 1: 2 means "there are changes" to CI scripts), or `--help`.
fn usage(io: &mut Io<'_>, e: &clap::Error) -> i32 {
    let text = if io.color {
        e.render().ansi().to_string()
    } else {
        e.render().to_string()
    };
    let target: &mut dyn Write = if e.use_stderr() { io.err } else { io.out };
    let _ = write!(target, "{text}");
    if e.use_stderr() { EXIT_ERROR } else { EXIT_OK }
}

/// `cairn completions SHELL`, made in memory first: clap_complete panics when a write fails.
fn completions(io: &mut Io<'_>, shell: clap_complete::Shell) -> Result<i32, CliError> {
    let (mut cmd, mut text) = (<Cli as clap::CommandFactory>::command(), Vec::new());
    clap_complete::generate(shell, &mut cmd, "cairn", &mut text);
    io.out.write_all(&text).map_err(CliError::Output)?;
    Ok(EXIT_OK)
}

/// Runs the CLI with `args` (including the program name) and returns the exit code.
pub fn run<I, T>(args: I, io: &mut Io<'_>) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    // One TLS stack: rustls with ring. Installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return usage(io, &e),
    };
    let plan = matches!(cli.command, Command::Plan { .. });
    if let Some(conflict) = cli.command.live().and_then(|l| l.conflict(plan)) {
        let _ = writeln!(io.err, "error: {conflict}");
        return EXIT_ERROR;
    }
    let result = match cli.command {
        Command::Render {
            script,
            format,
            output,
            show_secrets,
        } => render(io, &script, format, output.as_deref(), show_secrets),
        Command::Check {
            script,
            format,
            network,
        } => check(io, &script, format, network),
        Command::Docs { filter } => docs(io, filter.as_deref()),
        Command::Plan {
            script,
            live,
            output,
        } => live::plan(io, &script, &live, &output),
        Command::Apply {
            script,
            live,
            apply,
        } => live::apply(io, &script, &live, &apply),
        Command::Sandbox { action } => sandbox::run(io, &action),
        Command::Status { script, live } => status::status(io, &script, &live),
        Command::Unlock {
            script,
            target,
            yes,
        } => live::unlock(io, &script, &target, yes),
        Command::Destroy {
            script,
            live,
            apply,
            destroy,
        } => destroy::destroy(io, &script, &live, &apply, &destroy),
        Command::Drift { script, live } => drift::drift(io, &script, &live),
        Command::History { script, live } => history::history(io, &script, &live),
        Command::Rollback {
            script,
            live,
            apply,
            to,
        } => history::rollback(io, &script, &live, &apply, to),
        Command::Graph {
            script,
            format,
            output,
            network,
        } => graph(io, &script, format, output.as_deref(), network),
        Command::Plugin { action } => plugin::run(io, &action),
        Command::Completions { shell } => completions(io, shell),
        Command::Man { out } => man(io, &out),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            // Nothing is left to report a failed write of the error itself to.
            let _ = writeln!(io.err, "error: {message}");
            EXIT_ERROR
        }
    }
}

fn evaluate(io: &Io<'_>, args: &ScriptArgs) -> Result<cairn_stdlib::Evaluation, CliError> {
    Ok(cairn_engine::input::evaluate(
        &args.script(),
        &io.context(),
    )?)
}

fn render(
    io: &mut Io<'_>,
    args: &ScriptArgs,
    format: Format,
    output: Option<&Path>,
    show_secrets: bool,
) -> Result<i32, CliError> {
    let eval = evaluate(io, args)?;
    if !eval.diagnostics.is_empty() {
        err!(
            io,
            "{}",
            report::render(&eval.diagnostics, &eval.sources, io.color)
        )?;
    }
    if eval.has_errors() {
        return Ok(EXIT_ERROR);
    }
    let generated = cairn_engine::input::fresh_generated(&eval.state);
    let secrets = if show_secrets {
        cairn_engine::render::Secrets::Revealed(&generated)
    } else {
        cairn_engine::render::Secrets::Redacted
    };
    let docs = cairn_engine::render::documents(&eval.state, &secrets)
        .map_err(|id| cairn_engine::Error::Bug(format!("generated value {id} has no value")))?;
    let format = match format {
        Format::Yaml => cairn_engine::render::Format::Yaml,
        Format::Json => cairn_engine::render::Format::Json,
    };
    match output {
        None => {
            let text = cairn_engine::render::stream(&docs, format);
            io.out
                .write_all(text.as_bytes())
                .map_err(CliError::Output)?;
        }
        Some(dir) => {
            let n = cairn_engine::render::write_dir(dir, &docs, format)?;
            errln!(io, "wrote {n} files to {}", dir.display())?;
        }
    }
    Ok(EXIT_OK)
}

/// Evaluates and checks a script: every diagnostic, evaluation's first.
pub fn check_diagnostics(eval: &cairn_stdlib::Evaluation) -> Vec<cairn_model::Diagnostic> {
    cairn_engine::input::check_diagnostics(eval)
}

fn check(
    io: &mut Io<'_>,
    args: &ScriptArgs,
    format: ReportFormat,
    network: bool,
) -> Result<i32, CliError> {
    let eval = evaluate(io, args)?;
    let all = check_diagnostics(&eval);
    match format {
        ReportFormat::Human => {
            if all.is_empty() {
                outln!(
                    io,
                    "{}: {} resources, no problems",
                    args.script.display(),
                    eval.state.resources.len()
                )?;
            } else {
                err!(io, "{}", report::render(&all, &eval.sources, io.color))?;
            }
        }
        ReportFormat::Json => {
            outln!(io, "{}", serde_json::to_string(&all).unwrap_or_default())?;
        }
    }
    if let Some(matrix) = network.then(|| cairn_engine::graph::network_text(&eval.state)) {
        outln!(
            io,
            "\n{}",
            matrix
                .as_deref()
                .unwrap_or("no namespace: no network matrix")
        )?;
    }
    Ok(if all.iter().any(cairn_model::Diagnostic::is_error) {
        EXIT_ERROR
    } else {
        EXIT_OK
    })
}

fn graph(
    io: &mut Io<'_>,
    args: &ScriptArgs,
    format: args::GraphFormat,
    output: Option<&Path>,
    network: bool,
) -> Result<i32, CliError> {
    let eval = evaluate(io, args)?;
    if eval.has_errors() {
        let diagnostics = check_diagnostics(&eval);
        err!(
            io,
            "{}",
            report::render(&diagnostics, &eval.sources, io.color)
        )?;
        return Ok(EXIT_ERROR);
    }
    let format = match format {
        args::GraphFormat::Dot => cairn_engine::graph::Format::Dot,
        args::GraphFormat::Mermaid => cairn_engine::graph::Format::Mermaid,
        args::GraphFormat::Svg => cairn_engine::graph::Format::Svg,
    };
    let text = if network {
        cairn_engine::graph::draw_network(&eval.state, format).unwrap_or_default()
    } else {
        cairn_engine::graph::draw(&eval.state, format)
    };
    match output {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| shell::file_error("write", path, e))?
        }
        None => {
            out!(io, "{text}")?;
        }
    }
    Ok(EXIT_OK)
}

fn docs(io: &mut Io<'_>, filter: Option<&str>) -> Result<i32, CliError> {
    for f in cairn_stdlib::function_docs() {
        if filter.is_some_and(|query| !f.matches(query)) {
            continue;
        }
        outln!(io, "## {}({})\n\n{}\n", f.name, f.params.join(", "), f.doc)?;
    }
    Ok(EXIT_OK)
}

/// `cairn man`: writes cairn.1 and a page per subcommand, at every level (cairn-plugin-list.1).
fn man(io: &mut Io<'_>, dir: &Path) -> Result<i32, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| shell::file_error("create", dir, e))?;
    let cmd = <Cli as clap::CommandFactory>::command();
    clap_mangen::generate_to(cmd, dir).map_err(|e| shell::file_error("write", dir, e))?;
    errln!(io, "wrote the man pages to {}", dir.display())?;
    Ok(EXIT_OK)
}
