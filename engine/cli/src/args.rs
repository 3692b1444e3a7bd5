//! The arguments commands share: the script, where and how to plan, how to apply.

use std::path::PathBuf;
use std::time::Duration;

use cairn_engine::apply::ApplyOptions;
use cairn_engine::plan::PlanOptions;
use cairn_engine::saved::Invocation;
use cairn_engine::target::TargetSpec;

#[derive(clap::Args, Debug, Clone)]
pub(crate) struct ScriptArgs {
    /// The environment script, e.g. environments/staging.rhai
    pub(crate) script: PathBuf,
    /// Read variables (KEY=VALUE lines) from this file, as if the CI had set them; variables
    /// already set in the environment win
    #[arg(long, value_name = "FILE")]
    pub(crate) env_file: Option<PathBuf>,
    /// Extra plugin directory (also CAIRN_PLUGIN_PATH, separated by ':')
    #[arg(long, value_name = "DIR")]
    pub(crate) plugin_path: Vec<PathBuf>,
}

impl ScriptArgs {
    /// The engine's script.
    pub(crate) fn script(&self) -> cairn_engine::input::Script {
        cairn_engine::input::Script {
            path: self.script.clone(),
            env_file: self.env_file.clone(),
            plugin_path: self.plugin_path.clone(),
        }
    }

    /// The arguments of an engine script.
    pub(crate) fn of(script: &cairn_engine::input::Script) -> Self {
        Self {
            script: script.path.clone(),
            env_file: script.env_file.clone(),
            plugin_path: script.plugin_path.clone(),
        }
    }
}

/// Where: a cluster (kubeconfig and context) or the sandbox.
#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// Use the embedded Kubernetes API emulator, with state kept under .cairn/ in the working
    /// directory, instead of a real cluster
    #[arg(long, conflicts_with_all = ["kubeconfig", "context"])]
    pub sandbox: bool,
    /// The kubeconfig file (default: KUBECONFIG, then ~/.kube/config)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: the script's kube_context(...), then the current one)
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// Where, and `--json`: the commands that read a live environment and report on it.
#[derive(clap::Args, Debug, Clone)]
pub struct ReadArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print one JSON document on one line (the schemas are in docs/)
    #[arg(long)]
    pub json: bool,
}

/// Where and how to plan or apply.
#[derive(clap::Args, Debug, Clone)]
pub struct LiveArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print the plan as JSON (the same as `--format json`)
    #[arg(long)]
    pub json: bool,
    /// Output format of the plan: human (the default), json, markdown (a pull-request
    /// comment), or html (plan only: the report, to `-o FILE` instead of a saved plan, or stdout)
    #[arg(long, value_enum)]
    pub format: Option<PlanFormat>,
    /// Take over fields another field manager owns (server-side apply force)
    #[arg(long)]
    pub force_conflicts: bool,
    /// Take over declared objects that exist without cairn's labels (made with kubectl or
    /// another tool), as `env.adopt(kind, name)` does for one
    #[arg(long)]
    pub adopt: bool,
    /// Plan and apply on a cluster other than the one the environment's inventory names (a
    /// restore from backup onto a new cluster)
    #[arg(long)]
    pub accept_cluster: bool,
    /// Allow deleting more than 30 % of a DNS zone's records, and taking over records another
    /// owner created
    #[arg(long)]
    pub force: bool,
}

/// How a plan is printed.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFormat {
    /// For people at a terminal.
    Human,
    /// The versioned JSON document (`docs/plan-schema.json`).
    Json,
    /// A Markdown summary for pull-request comments.
    Markdown,
    /// The HTML report: one self-contained page (`plan` only).
    Html,
}

/// Options of `plan` only.
#[derive(clap::Args, Debug, Clone)]
pub struct PlanOutput {
    /// Also save the plan to this file, for `cairn apply FILE` (no secret values; mode 0600)
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also write the plan's HTML report (one self-contained page) to this file
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// Options of `apply` only.
#[derive(clap::Args, Debug, Clone)]
pub struct ApplyArgs {
    /// Apply without asking for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// How long one step may take to become ready, in seconds
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
    /// How long to wait for another apply of the same environment to finish, in seconds
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub lock_timeout: u64,
    /// How many requests to the cluster may be in flight at once; a step waiting for a
    /// rollout holds none, and a 429 from the server is waited out and sent again
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,
}

impl TargetArgs {
    /// Where to plan.
    pub(crate) fn spec(&self) -> TargetSpec {
        TargetSpec {
            sandbox: self.sandbox,
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        }
    }
}

impl LiveArgs {
    /// How to plan.
    pub(crate) fn options(&self) -> PlanOptions {
        PlanOptions {
            force_conflicts: self.force_conflicts,
            adopt: self.adopt,
            accept_cluster: self.accept_cluster,
            force: self.force,
        }
    }

    /// Flags that contradict each other (clap checks the others): `--json` with another
    /// `--format`; `--format html` but for `plan`.
    pub(crate) fn conflict(&self, plan: bool) -> Option<String> {
        if !plan && self.format == Some(PlanFormat::Html) {
            return Some("--format html is the report of `cairn plan` only".to_owned());
        }
        let format = self
            .format
            .filter(|f| *f != PlanFormat::Json && self.json)?;
        let name = clap::ValueEnum::to_possible_value(&format)?;
        Some(format!(
            "--json contradicts --format {}: give one of them",
            name.get_name()
        ))
    }

    /// The arguments a plan file was made with; output options from the command line.
    pub(crate) fn of_saved(inv: &Invocation, output: &LiveArgs) -> LiveArgs {
        LiveArgs {
            target: TargetArgs {
                sandbox: inv.target.sandbox,
                kubeconfig: inv.target.kubeconfig.clone(),
                context: inv.target.context.clone(),
            },
            json: output.json,
            format: output.format,
            force_conflicts: inv.options.force_conflicts,
            adopt: inv.options.adopt,
            accept_cluster: inv.options.accept_cluster,
            force: inv.options.force,
        }
    }
}

impl ApplyArgs {
    pub(crate) fn options(&self) -> ApplyOptions {
        ApplyOptions {
            timeout: Duration::from_secs(self.timeout),
            parallelism: usize::from(self.parallelism),
        }
    }
}

/// Output formats of `cairn graph`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// Graphviz dot.
    Dot,
    /// A Mermaid flowchart (renders in GitHub Markdown).
    Mermaid,
    /// A standalone SVG image.
    Svg,
}
