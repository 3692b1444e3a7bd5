//! Where an environment is planned and applied: a cluster from a kubeconfig, or the sandbox
//! (the background one, or an emulator started in-process for the command), with the sandbox's
//! in-memory DNS, CA and S3 beside it.

use std::path::PathBuf;

use cairn_kube::Cluster;
use cairn_model::EnvironmentMeta;

use crate::error::{Error, Result};
use crate::input::Context;
use crate::notice::Notify;
use crate::sandbox;

/// Which cluster to talk to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetSpec {
    /// The sandbox, with its state under `.cairn/sandbox/` of the working directory.
    pub sandbox: bool,
    /// The kubeconfig file (default: `KUBECONFIG`, then `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: the script's `kube_context(...)`, then the current).
    pub context: Option<String>,
}

/// A connected target, and the sandbox behind it if any.
pub struct Target {
    /// The cluster.
    pub cluster: Cluster,
    /// Under the sandbox: the folder of its state (in-memory zone and buckets live there).
    pub sandbox_dir: Option<PathBuf>,
    sandbox: Option<cairn_sandbox::Sandbox>,
    /// The sandbox's locks, held until the command ends (dropping the files unlocks them).
    _locks: Vec<std::fs::File>,
}

/// The async runtime commands run on.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// Connects to the sandbox: the background one when it runs, else an emulator in-process.
async fn connect_sandbox(ctx: &Context, notify: &Notify) -> Result<Target> {
    let paths = sandbox::paths(&ctx.cwd);
    sandbox::private_dirs(&paths)?;
    let sandbox_dir = Some(paths.dir.clone());
    // One sandbox command at a time: its zone and buckets are files too.
    let commands = sandbox::lock(
        &paths.commands_lock,
        "another cairn command uses the sandbox",
        notify,
    )
    .await?;
    // A sandbox started with `cairn sandbox up` owns the state: talk to it.
    if sandbox::running(&paths).is_some() {
        let cluster = Cluster::connect(Some(&paths.kubeconfig), Some("sandbox")).await?;
        return Ok(Target {
            cluster,
            sandbox_dir,
            sandbox: None,
            _locks: vec![commands],
        });
    }
    let state = sandbox::lock(
        &paths.state_lock,
        "the background sandbox is starting",
        notify,
    )
    .await?;
    let config = cairn_sandbox::SandboxConfig {
        state_file: Some(paths.dir.join("state.json")),
        ..cairn_sandbox::SandboxConfig::default()
    };
    let emulator = cairn_sandbox::Sandbox::start(config)
        .await
        .map_err(Error::SandboxStart)?;
    let cluster =
        Cluster::from_kubeconfig_yaml(&emulator.kubeconfig_yaml("sandbox"), "sandbox").await?;
    Ok(Target {
        cluster,
        sandbox_dir,
        sandbox: Some(emulator),
        _locks: vec![commands, state],
    })
}

/// Connects to the target an environment is planned on. A context the script pins is never
/// overridden by `--context`.
pub async fn connect(
    ctx: &Context,
    spec: &TargetSpec,
    env: &EnvironmentMeta,
    notify: &Notify,
) -> Result<Target> {
    if spec.sandbox {
        return connect_sandbox(ctx, notify).await;
    }
    let script_context = env.kube_context.as_deref();
    let path = spec.kubeconfig.clone().or_else(|| {
        ctx.vars
            .get("KUBECONFIG")
            .and_then(|k| k.split(':').find(|p| !p.is_empty()))
            .map(PathBuf::from)
    });
    if let (Some(asked), Some(pinned)) = (spec.context.as_deref(), script_context)
        && asked != pinned
    {
        let at = env
            .kube_context_at
            .as_ref()
            .map(|s| format!(" ({}:{})", s.file, s.line))
            .unwrap_or_default();
        return Err(Error::PinnedContext {
            pinned: pinned.to_owned(),
            at,
            asked: asked.to_owned(),
            contexts: Cluster::contexts(path.as_deref()).join(", "),
        });
    }
    let context = spec.context.as_deref().or(script_context);
    let cluster = Cluster::connect(path.as_deref(), context).await?;
    Ok(Target {
        cluster,
        sandbox_dir: None,
        sandbox: None,
        _locks: Vec::new(),
    })
}

impl Target {
    /// Ends the command's use of the target: an in-process sandbox saves its state and stops.
    pub async fn close(self) -> Result<()> {
        if let Some(sandbox) = self.sandbox {
            sandbox.shutdown().await.map_err(Error::SandboxSave)?;
        }
        Ok(())
    }

    /// Whether this is the sandbox.
    pub fn is_sandbox(&self) -> bool {
        self.sandbox_dir.is_some()
    }
}
