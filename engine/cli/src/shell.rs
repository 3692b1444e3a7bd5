//! The CLI's shell: where it reads its environment and writes its output ([`Io`]), its exit
//! codes, its one error type, and the engine's notices printed as they come.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use cairn_engine::{Notice, Notify};

/// Writes to standard output; a failed write fails the command (`?`).
macro_rules! out {
    ($io:expr, $($arg:tt)*) => {
        write!($io.out, $($arg)*).map_err($crate::shell::CliError::Output)
    };
}

/// Writes a line to standard output; a failed write fails the command (`?`).
macro_rules! outln {
    ($io:expr, $($arg:tt)*) => {
        writeln!($io.out, $($arg)*).map_err($crate::shell::CliError::Output)
    };
}

/// Writes to standard error; a failed write fails the command (`?`).
macro_rules! err {
    ($io:expr, $($arg:tt)*) => {
        write!($io.err, $($arg)*).map_err($crate::shell::CliError::Output)
    };
}

/// Writes a line to standard error; a failed write fails the command (`?`).
macro_rules! errln {
    ($io:expr, $($arg:tt)*) => {
        writeln!($io.err, $($arg)*).map_err($crate::shell::CliError::Output)
    };
}

/// Exit code: success, no changes.
pub const EXIT_OK: i32 = 0;
/// Exit code: an error (bad input, failed check, failed step).
pub const EXIT_ERROR: i32 = 1;
/// Exit code of `plan`: there are changes (of `drift`: something changed outside cairn).
pub const EXIT_CHANGES: i32 = 2;
/// Exit code of `plan`: the changes delete data (a volume, a namespace, a bucket) the script
/// allowed to delete; CI should stop for a human.
pub const EXIT_PROTECTED: i32 = 3;

/// Why a command failed (its message is printed as `error: …`).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] cairn_engine::Error),
    /// Output could not be written.
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
}

/// Where the CLI reads its environment and writes its output.
pub struct Io<'a> {
    /// Standard output.
    pub out: &'a mut dyn Write,
    /// Standard error.
    pub err: &'a mut dyn Write,
    /// The process environment.
    pub vars: BTreeMap<String, String>,
    /// Whether to use colour.
    pub color: bool,
    /// Whether standard output is a terminal (a live progress view instead of log lines).
    pub terminal: bool,
    /// A terminal to ask for confirmation on; `None` when there is none.
    pub input: Option<&'a mut dyn std::io::BufRead>,
    /// The working directory (where `.cairn/` lives).
    pub cwd: PathBuf,
}

impl Io<'_> {
    /// The engine's view of where the command runs.
    pub(crate) fn context(&self) -> cairn_engine::input::Context {
        cairn_engine::input::Context {
            vars: self.vars.clone(),
            cwd: self.cwd.clone(),
        }
    }
}

/// Prints a notice: lock waits on standard output for people, on standard error when standard
/// output carries JSON lines.
fn show(io: &mut Io<'_>, notice: Notice, json: bool) -> Result<(), CliError> {
    match notice {
        Notice::Lock(line) if !json => outln!(io, "{line}"),
        Notice::SandboxBusy(line) | Notice::Lock(line) => errln!(io, "{line}"),
    }
}

/// Prints one JSON line: a document or an event; all JSON on standard output is JSON lines.
pub(crate) fn json_line(io: &mut Io<'_>, event: &serde_json::Value) -> Result<(), CliError> {
    let text = serde_json::to_string(event).unwrap_or_default();
    outln!(io, "{text}")
}

/// A file that cannot be created or written.
pub(crate) fn file_error(
    action: &'static str,
    path: &std::path::Path,
    source: std::io::Error,
) -> CliError {
    cairn_engine::Error::File {
        action,
        path: path.to_owned(),
        source,
    }
    .into()
}

/// Runs the future `make` builds with a [`Notify`], printing its notices while it runs. The
/// future always runs to its end (it may hold a lock); a failed write is reported after it.
pub(crate) async fn with_notices<F, T>(
    io: &mut Io<'_>,
    json: bool,
    make: impl FnOnce(Arc<Notify>) -> F,
) -> Result<T, CliError>
where
    F: Future<Output = T>,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Notice>();
    let notify: Arc<Notify> = Arc::new(move |n| {
        let _ = tx.send(n);
    });
    let run = make(notify);
    tokio::pin!(run);
    let mut written = Ok(());
    let result = loop {
        tokio::select! {
            result = &mut run => break result,
            Some(n) = rx.recv() => written = written.and_then(|()| show(io, n, json)),
        }
    };
    while let Ok(n) = rx.try_recv() {
        written = written.and_then(|()| show(io, n, json));
    }
    written.map(|()| result)
}
