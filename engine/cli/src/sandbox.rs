//! `cairn sandbox up|down|status`: the embedded Kubernetes API emulator as a background
//! process, with a kubeconfig for kubectl, its state kept under `.cairn/sandbox/` (the
//! engine's `sandbox`).

use cairn_engine::sandbox::{self, Paths};

use crate::shell::{CliError, EXIT_ERROR, EXIT_OK, Io, with_notices};

/// What to do with the background sandbox.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum SandboxAction {
    /// Start the sandbox in the background and write .cairn/sandbox/kubeconfig
    Up,
    /// Stop the background sandbox (its state is kept)
    Down,
    /// Say whether the sandbox runs, and where
    Status,
    /// Run the sandbox in the foreground (what `up` starts)
    #[command(hide = true)]
    Serve,
}

fn up(io: &mut Io<'_>, p: &Paths) -> Result<i32, CliError> {
    if let Some(pid) = sandbox::running(p) {
        outln!(
            io,
            "sandbox already running (pid {pid}); kubeconfig: {}",
            p.kubeconfig.display()
        )?;
        return Ok(EXIT_OK);
    }
    let pid = sandbox::start_background(p, &io.context())?;
    outln!(
        io,
        "sandbox running (pid {pid}); for kubectl: export KUBECONFIG={}",
        p.kubeconfig.display()
    )?;
    Ok(EXIT_OK)
}

fn down(io: &mut Io<'_>, p: &Paths) -> Result<i32, CliError> {
    let Some(pid) = sandbox::running(p) else {
        outln!(io, "sandbox not running")?;
        return Ok(EXIT_OK);
    };
    sandbox::stop_background(p, pid)?;
    outln!(
        io,
        "sandbox stopped; its state stays in {}",
        p.state.display()
    )?;
    Ok(EXIT_OK)
}

fn serve(io: &mut Io<'_>, p: &Paths) -> Result<i32, CliError> {
    let rt = cairn_engine::target::runtime()?;
    let served = rt.block_on(with_notices(io, false, |notify| async move {
        sandbox::serve(p, &*notify).await
    }))??;
    match served {
        Ok(()) => Ok(EXIT_OK),
        Err(e) => {
            errln!(io, "error: the sandbox stopped: {e}")?;
            Ok(EXIT_ERROR)
        }
    }
}

pub fn run(io: &mut Io<'_>, action: &SandboxAction) -> Result<i32, CliError> {
    let p = sandbox::paths(&io.cwd);
    match action {
        SandboxAction::Status => {
            let text = match sandbox::running(&p) {
                Some(pid) => format!(
                    "running (pid {pid}); kubeconfig: {}",
                    p.kubeconfig.display()
                ),
                None => "not running".to_owned(),
            };
            outln!(io, "sandbox {text}")?;
            Ok(EXIT_OK)
        }
        SandboxAction::Up => up(io, &p),
        SandboxAction::Down => down(io, &p),
        SandboxAction::Serve => serve(io, &p),
    }
}
