//! Where the CLI meets the engine's notices: an engine future runs while what it says is
//! printed as it comes.

use std::future::Future;
use std::sync::Arc;

use cairn_engine::{Notice, Notify};

use crate::Io;

fn show(io: &mut Io<'_>, notice: Notice) {
    match notice {
        Notice::SandboxBusy(line) => {
            let _ = writeln!(io.err, "{line}");
        }
        Notice::Lock(line) => {
            let _ = writeln!(io.out, "{line}");
        }
    }
}

/// Runs the future `make` builds with a [`Notify`], printing its notices while it runs.
pub(crate) async fn with_notices<F, T>(io: &mut Io<'_>, make: impl FnOnce(Arc<Notify>) -> F) -> T
where
    F: Future<Output = T>,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Notice>();
    let notify: Arc<Notify> = Arc::new(move |n| {
        let _ = tx.send(n);
    });
    let run = make(notify);
    tokio::pin!(run);
    let result = loop {
        tokio::select! {
            result = &mut run => break result,
            Some(n) = rx.recv() => show(io, n),
        }
    };
    while let Ok(n) = rx.try_recv() {
        show(io, n);
    }
    result
}
