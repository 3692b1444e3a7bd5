//! `cairn sandbox up|down|status`: the embedded Kubernetes API emulator as a background
//! process, with a kubeconfig for kubectl, its state kept under `.cairn/sandbox/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::live::SANDBOX_DIR;
use crate::{EXIT_ERROR, EXIT_OK, Io};

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

/// Paths of the background sandbox.
pub struct Paths {
    pub dir: PathBuf,
    /// Held by every `--sandbox` command while it runs.
    pub commands_lock: PathBuf,
    /// Held by whoever serves the state: `sandbox serve`, or a command's in-process emulator.
    pub state_lock: PathBuf,
    pub pid: PathBuf,
    pub kubeconfig: PathBuf,
    pub state: PathBuf,
    pub log: PathBuf,
}

/// The sandbox paths under `cwd`.
pub fn paths(cwd: &Path) -> Paths {
    let dir = cwd.join(SANDBOX_DIR);
    Paths {
        commands_lock: dir.join("commands.lock"),
        state_lock: dir.join("state.lock"),
        pid: dir.join("pid"),
        kubeconfig: dir.join("kubeconfig"),
        state: dir.join("state.json"),
        log: dir.join("sandbox.log"),
        dir,
    }
}

/// The pid of the running background sandbox, if one runs: the pid file names a live process
/// that is `cairn sandbox serve` (a stale file may name any process by now).
pub fn running(p: &Paths) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(&p.pid).ok()?.trim().parse().ok()?;
    if !cairn_kube::lock::alive(pid) {
        return None;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let serving = args
        .windows(2)
        .any(|w| w[0] == b"sandbox" && w[1] == b"serve");
    (serving && p.kubeconfig.exists()).then_some(pid)
}

/// `.cairn` and `.cairn/sandbox`, readable by their owner only (the state holds every Secret).
pub fn private_dirs(p: &Paths) -> Result<(), String> {
    for dir in [p.dir.parent().unwrap_or(&p.dir), &p.dir] {
        cairn_sandbox::files::private_dir(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// How long a sandbox command waits for another one to finish.
const LOCK_WAIT: Duration = Duration::from_secs(600);

/// Takes the exclusive lock `path`, waiting (and saying so once) while another process holds
/// it; the lock goes with the returned file.
pub fn lock(io: &mut Io<'_>, path: &Path, why: &str) -> Result<std::fs::File, String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let deadline = Instant::now() + LOCK_WAIT;
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                if !told {
                    let _ = writeln!(io.err, "Waiting: {why} ({}).", path.display());
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "{why} ({}) for more than {} s; try again when it is done",
                    path.display(),
                    LOCK_WAIT.as_secs()
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
    }
}

pub fn run(io: &mut Io<'_>, action: &SandboxAction) -> Result<i32, String> {
    let p = paths(&io.cwd);
    match action {
        SandboxAction::Status => {
            match running(&p) {
                Some(pid) => {
                    let _ = writeln!(
                        io.out,
                        "sandbox running (pid {pid}); kubeconfig: {}",
                        p.kubeconfig.display()
                    );
                }
                None => {
                    let _ = writeln!(io.out, "sandbox not running");
                }
            }
            Ok(EXIT_OK)
        }
        SandboxAction::Up => {
            if let Some(pid) = running(&p) {
                let _ = writeln!(
                    io.out,
                    "sandbox already running (pid {pid}); kubeconfig: {}",
                    p.kubeconfig.display()
                );
                return Ok(EXIT_OK);
            }
            private_dirs(&p)?;
            let _ = std::fs::remove_file(&p.kubeconfig);
            let exe = io
                .vars
                .get("CAIRN_BIN")
                .map(PathBuf::from)
                .map_or_else(std::env::current_exe, Ok)
                .map_err(|e| format!("cannot find the cairn binary: {e}"))?;
            let log = std::fs::File::create(&p.log)
                .map_err(|e| format!("cannot create {}: {e}", p.log.display()))?;
            let child = std::process::Command::new(exe)
                .args(["sandbox", "serve"])
                .current_dir(&io.cwd)
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot start the sandbox: {e}"))?;
            std::fs::write(&p.pid, child.id().to_string())
                .map_err(|e| format!("cannot write {}: {e}", p.pid.display()))?;
            let deadline = Instant::now() + Duration::from_secs(15);
            while running(&p).is_none() {
                if Instant::now() > deadline {
                    return Err(format!(
                        "the sandbox did not start; see {}",
                        p.log.display()
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = writeln!(
                io.out,
                "sandbox running (pid {}); for kubectl: export KUBECONFIG={}",
                child.id(),
                p.kubeconfig.display()
            );
            Ok(EXIT_OK)
        }
        SandboxAction::Down => {
            let Some(pid) = running(&p) else {
                let _ = writeln!(io.out, "sandbox not running");
                return Ok(EXIT_OK);
            };
            let status = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .map_err(|e| format!("cannot stop the sandbox: {e}"))?;
            if !status.success() {
                return Err(format!("cannot stop the sandbox (pid {pid})"));
            }
            let deadline = Instant::now() + Duration::from_secs(15);
            while std::path::Path::new(&format!("/proc/{pid}")).exists() && running(&p).is_some() {
                if Instant::now() > deadline {
                    return Err(format!("the sandbox (pid {pid}) did not stop"));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = std::fs::remove_file(&p.pid);
            let _ = std::fs::remove_file(&p.kubeconfig);
            let _ = writeln!(
                io.out,
                "sandbox stopped; its state stays in {}",
                p.state.display()
            );
            Ok(EXIT_OK)
        }
        SandboxAction::Serve => {
            // The state is this process's while it serves; a command's in-process emulator
            // that still holds it finishes first.
            let _state = lock(
                io,
                &p.state_lock,
                "a cairn command's in-process sandbox is running",
            )?;
            let config = cairn_sandbox::SandboxConfig {
                state_file: Some(p.state.clone()),
                ..cairn_sandbox::SandboxConfig::default()
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            match rt.block_on(cairn_sandbox::serve_forever(
                config,
                &p.kubeconfig,
                "sandbox",
            )) {
                Ok(()) => Ok(EXIT_OK),
                Err(e) => {
                    let _ = writeln!(io.err, "error: the sandbox stopped: {e}");
                    Ok(EXIT_ERROR)
                }
            }
        }
    }
}
