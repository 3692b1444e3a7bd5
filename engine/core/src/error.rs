//! The engine's one error type. Every variant has a stable code (the registry of runtime error
//! codes is this enum: one variant, one code, its meaning in the variant's documentation), a
//! [`Kind`] and, where the user can act, help. Only [`Kind::Internal`] errors say "this is a
//! bug". Script problems are not errors: they are [`cairn_model::Diagnostic`]s with their own
//! registry, [`cairn_model::Code`].

use std::path::PathBuf;

use cairn_apply::provider::ProviderError;

/// Who has to act on an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The user: a flag, a script, a plan file, a revision.
    User,
    /// The environment: a cluster, a DNS server, S3, a file, a lock held by someone else.
    Environment,
    /// cairn itself: a bug.
    Internal,
}

/// What went wrong in the engine.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// A file or folder cannot be read, written, created, locked or restricted.
    #[error("cannot {action} {}: {source}", path.display())]
    #[diagnostic(code(cairn::file))]
    File {
        /// `read`, `write`, `create`, `open`, `lock`, `restrict`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The async runtime cannot start.
    #[error("cannot start the async runtime: {0}")]
    #[diagnostic(
        code(cairn::runtime),
        help("the machine is out of threads or file descriptors; check its limits")
    )]
    Runtime(#[source] std::io::Error),
    /// The cluster refused or failed a request, or cannot be reached.
    #[error(transparent)]
    #[diagnostic(code(cairn::cluster))]
    Cluster(#[from] cairn_kube::KubeError),
    /// The in-process sandbox cannot start.
    #[error("cannot start the sandbox: {0}")]
    #[diagnostic(code(cairn::sandbox_start))]
    SandboxStart(#[source] cairn_sandbox::Error),
    /// The in-process sandbox's state cannot be saved.
    #[error("cannot save the sandbox's state: {0}")]
    #[diagnostic(code(cairn::sandbox_save))]
    SandboxSave(#[source] cairn_sandbox::Error),
    /// Another sandbox command holds the sandbox for too long.
    #[error("{why} ({}) for more than {secs} s; try again when it is done", path.display())]
    #[diagnostic(
        code(cairn::sandbox_busy),
        help(
            "wait for the other command, or stop it; `cairn sandbox status` says whether a background sandbox runs"
        )
    )]
    SandboxBusy {
        /// Who holds it.
        why: String,
        /// The lock file.
        path: PathBuf,
        /// How long cairn waited.
        secs: u64,
    },
    /// The background sandbox cannot be started or stopped.
    #[error("{0}")]
    #[diagnostic(code(cairn::sandbox_process))]
    SandboxProcess(String),
    /// `--context` asks for another cluster than the script pins.
    #[error(
        "the script pins cluster context {pinned}{at}, and --context asks for {asked}: refusing to plan or apply this environment on another cluster; contexts in the kubeconfig: {contexts}"
    )]
    #[diagnostic(
        code(cairn::pinned_context),
        help("drop --context, or change the script's kube_context(...) if the environment moved")
    )]
    PinnedContext {
        /// The script's context.
        pinned: String,
        /// Where the script pins it (` (file:line)`), or nothing.
        at: String,
        /// What `--context` asks for.
        asked: String,
        /// The kubeconfig's contexts, comma-separated.
        contexts: String,
    },
    /// The DNS zone cannot be read or planned.
    #[error(transparent)]
    #[diagnostic(code(cairn::dns))]
    Dns(Box<cairn_dns::ZoneError>),
    /// The certificates cannot be planned.
    #[error(transparent)]
    #[diagnostic(code(cairn::certificates))]
    Certificates(Box<cairn_acme::CertsError>),
    /// The buckets cannot be read or planned.
    #[error(transparent)]
    #[diagnostic(code(cairn::buckets))]
    Buckets(Box<cairn_s3::BucketsError>),
    /// A provider failed otherwise.
    #[error(transparent)]
    #[diagnostic(code(cairn::provider))]
    Provider(ProviderError),
    /// A file given as a plan file is not one cairn can apply.
    #[error("{0}")]
    #[diagnostic(code(cairn::plan_file))]
    PlanFile(String),
    /// `apply FILE` was given a flag the plan was not made with.
    #[error(
        "{} was planned with other settings: {conflict}; a plan file is applied where and how it was made (plan again for another target)",
        path.display()
    )]
    #[diagnostic(
        code(cairn::plan_file_flags),
        help("apply the file without those flags, or run `cairn plan -o FILE` again with them")
    )]
    PlannedOtherwise {
        /// The plan file.
        path: PathBuf,
        /// The flag, and what the plan was made with.
        conflict: String,
    },
    /// A plugin cannot be found, read, scaffolded or tested.
    #[error("{0}")]
    #[diagnostic(code(cairn::plugin))]
    Plugin(String),
    /// A revision cannot be rolled back to.
    #[error("{0}")]
    #[diagnostic(code(cairn::revision))]
    Revision(String),
    /// Something cairn should never do happened.
    #[error("{0}; this is a bug")]
    #[diagnostic(
        code(cairn::bug),
        help("please report it with the command and its output")
    )]
    Bug(String),
}

impl Error {
    /// Who has to act on it; only internal errors are bugs.
    pub fn kind(&self) -> Kind {
        match self {
            Error::PinnedContext { .. }
            | Error::PlanFile(_)
            | Error::PlannedOtherwise { .. }
            | Error::Revision(_)
            | Error::Plugin(_) => Kind::User,
            Error::Runtime(_) | Error::Bug(_) => Kind::Internal,
            _ => Kind::Environment,
        }
    }

    /// A file error.
    pub(crate) fn file(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::File {
            action,
            path: path.into(),
            source,
        }
    }
}

/// What the engine's functions return.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<cairn_dns::ZoneError> for Error {
    fn from(e: cairn_dns::ZoneError) -> Self {
        Error::Dns(Box::new(e))
    }
}

impl From<cairn_acme::CertsError> for Error {
    fn from(e: cairn_acme::CertsError) -> Self {
        Error::Certificates(Box::new(e))
    }
}

impl From<cairn_s3::BucketsError> for Error {
    fn from(e: cairn_s3::BucketsError) -> Self {
        Error::Buckets(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use miette::Diagnostic as _;

    #[test]
    fn every_error_has_a_code_and_a_kind() {
        let bug = Error::Bug("generated value 3 has no value".into());
        assert_eq!(bug.kind(), Kind::Internal);
        assert!(bug.to_string().ends_with("; this is a bug"));
        assert_eq!(
            bug.code().map(|c| c.to_string()).as_deref(),
            Some("cairn::bug")
        );
        let pinned = Error::PinnedContext {
            pinned: "prod".into(),
            at: String::new(),
            asked: "staging".into(),
            contexts: "prod, staging".into(),
        };
        assert_eq!(pinned.kind(), Kind::User);
        assert!(pinned.help().is_some());
        assert!(!pinned.to_string().contains("bug"));
        let file = Error::file("read", "x.env", std::io::Error::other("gone"));
        assert_eq!(file.kind(), Kind::Environment);
        assert_eq!(file.to_string(), "cannot read x.env: gone");
        assert!(std::error::Error::source(&file).is_some());
    }
}
