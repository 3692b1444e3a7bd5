//! The sandbox's files under `.cairn/sandbox/`: its state, kubeconfig, locks and the background
//! process (`cairn sandbox up|down|serve`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::notice::{Notice, Notify};

/// The directory of the sandbox's state, under the working directory.
pub const SANDBOX_DIR: &str = ".cairn/sandbox";

/// How long a sandbox command waits for another one to finish.
const LOCK_WAIT: Duration = Duration::from_secs(600);

/// Paths of the sandbox.
pub struct Paths {
    /// `.cairn/sandbox`.
    pub dir: PathBuf,
    /// Held by every `--sandbox` command while it runs.
    pub commands_lock: PathBuf,
    /// Held by whoever serves the state: `sandbox serve`, or a command's in-process emulator.
    pub state_lock: PathBuf,
    /// The background sandbox's pid.
    pub pid: PathBuf,
    /// Its kubeconfig, for kubectl.
    pub kubeconfig: PathBuf,
    /// Its state.
    pub state: PathBuf,
    /// Its log.
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
pub fn private_dirs(p: &Paths) -> Result<()> {
    for dir in [p.dir.parent().unwrap_or(&p.dir), &p.dir] {
        cairn_sandbox::files::private_dir(dir).map_err(|e| Error::file("create", dir, e))?;
    }
    Ok(())
}

/// Takes the exclusive lock `path`, waiting (and saying so once) while another process holds
/// it; the lock goes with the returned file.
pub async fn lock(path: &Path, why: &str, notify: &Notify) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::file("open", path, e))?;
    let deadline = Instant::now() + LOCK_WAIT;
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                if !told {
                    notify(Notice::SandboxBusy(format!(
                        "Waiting: {why} ({}).",
                        path.display()
                    )));
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::SandboxBusy {
                    why: why.to_owned(),
                    path: path.to_owned(),
                    secs: LOCK_WAIT.as_secs(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::file("lock", path, e)),
        }
    }
}

/// Starts `cairn sandbox serve` (this binary, or `$CAIRN_BIN`) in the background and waits
/// until it serves; its pid.
pub fn start_background(p: &Paths, ctx: &crate::input::Context) -> Result<u32> {
    let exe = ctx
        .vars
        .get("CAIRN_BIN")
        .map(PathBuf::from)
        .map_or_else(std::env::current_exe, Ok)
        .map_err(|e| Error::SandboxProcess(format!("cannot find the cairn binary: {e}")))?;
    let cwd = &ctx.cwd;
    private_dirs(p)?;
    let _ = std::fs::remove_file(&p.kubeconfig);
    let log = std::fs::File::create(&p.log).map_err(|e| Error::file("create", &p.log, e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| Error::file("open", &p.log, e))?;
    let child = std::process::Command::new(&exe)
        .args(["sandbox", "serve"])
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .stdout(log_err)
        .stderr(log)
        .spawn()
        .map_err(|e| Error::SandboxProcess(format!("cannot start the sandbox: {e}")))?;
    std::fs::write(&p.pid, child.id().to_string()).map_err(|e| Error::file("write", &p.pid, e))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while running(p).is_none() {
        if Instant::now() > deadline {
            return Err(Error::SandboxProcess(format!(
                "the sandbox did not start; see {}",
                p.log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child.id())
}

/// Stops the background sandbox `pid` and waits until it is gone.
pub fn stop_background(p: &Paths, pid: u32) -> Result<()> {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .map_err(|e| Error::SandboxProcess(format!("cannot stop the sandbox: {e}")))?;
    if !status.success() {
        return Err(Error::SandboxProcess(format!(
            "cannot stop the sandbox (pid {pid})"
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while Path::new(&format!("/proc/{pid}")).exists() && running(p).is_some() {
        if Instant::now() > deadline {
            return Err(Error::SandboxProcess(format!(
                "the sandbox (pid {pid}) did not stop"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_file(&p.pid);
    let _ = std::fs::remove_file(&p.kubeconfig);
    Ok(())
}

/// Serves the sandbox's state in the foreground until stopped (`cairn sandbox serve`); the
/// state is this process's while it serves.
pub async fn serve(
    p: &Paths,
    notify: &Notify,
) -> Result<std::result::Result<(), cairn_sandbox::Error>> {
    // A command's in-process emulator that still holds the state finishes first.
    let _state = lock(
        &p.state_lock,
        "a cairn command's in-process sandbox is running",
        notify,
    )
    .await?;
    let config = cairn_sandbox::SandboxConfig {
        state_file: Some(p.state.clone()),
        ..cairn_sandbox::SandboxConfig::default()
    };
    Ok(cairn_sandbox::serve_forever(config, &p.kubeconfig, "sandbox").await)
}
