//! What the engine tells people while it works. The engine never prints: it sends notices,
//! and a front end (the CLI's shell) shows them as they come.

/// Something to tell people now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Waiting for another sandbox command (`Waiting: … (path).`).
    SandboxBusy(String),
    /// Waiting for the environment's lock, or taking one a dead process left.
    Lock(String),
}

/// Where notices go.
pub type Notify = dyn Fn(Notice) + Send + Sync;
