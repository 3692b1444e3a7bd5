//! cairn's Kubernetes provider.
//!
//! - [`Cluster`]: a connection chosen like kubectl does (`KUBECONFIG`, a context), or handed a
//!   kubeconfig (the sandbox).
//! - [`plan()`]: reads the live state with one LIST per kind and label selector, compares on the
//!   fields cairn manages, and confirms each apparent change with a server-side dry run, so that
//!   server defaults never show up as changes.
//! - [`apply()`]: walks the plan's dependency graph, applies with server-side apply (field
//!   manager `cairn`), independent steps in parallel, waits for readiness (rollouts, Jobs,
//!   CRDs), prunes what cairn owns and the script no longer declares, and explains failures.
//! - [`run_job()`]: a one-off Job run to completion, with its pod's log (smoke checks' SQL).
//!
//! Sensitive values (Secret data) exist only in the in-memory apply bodies; the [`Plan`] that is
//! printed or saved holds redacted field changes.

mod apply;
mod cluster;
mod compare;
mod config_hash;
mod conflicts;
mod explain;
pub use explain::why_not_ready;
pub mod history;
pub mod job;
pub mod kinds;
pub mod lock;
mod observe;
mod par;
mod plan;
pub mod refusal;
mod secrets;
pub mod throttle;
mod watch;

pub use apply::{ApplyOptions, apply, finish, nodes, readiness};
pub use cairn_apply::{Event, Failure, Report};
pub use cluster::Cluster;
pub use job::{JobRun, run_job};
pub use plan::{Destroy, EXPIRES_AT, KubePlan, PlanOptions, expires_at, live_objects, plan};

/// Field manager name cairn applies with.
pub const FIELD_MANAGER: &str = "cairn";
/// Label marking objects cairn manages.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label naming the environment an object belongs to.
pub const ENVIRONMENT: &str = "cairn.dev/environment";
/// Name of the per-environment inventory ConfigMap.
pub const INVENTORY: &str = "cairn-inventory";

/// The inventory ConfigMap of an environment: `cairn-inventory` in its own namespace,
/// `cairn-inventory-<env>` in a namespace it shares with the environment that owns it.
pub fn inventory_name(env: &cairn_model::EnvironmentMeta) -> String {
    if env.namespace_owner.is_some() {
        format!("{INVENTORY}-{}", env.name)
    } else {
        INVENTORY.to_owned()
    }
}

/// What can go wrong talking to a cluster.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The kubeconfig could not be loaded or the cluster reached.
    #[error("cannot connect to the cluster: {0}")]
    Connect(String),
    /// The API server refused a request.
    #[error("{what}: {message}")]
    Api {
        /// The request (`list Deployments in staging`, `apply Deployment/staging/web`).
        what: String,
        /// The server's message.
        message: String,
        /// The HTTP status code, when there is one.
        code: Option<u16>,
    },
    /// The environment's inventory was written on another cluster (its namespace was copied or
    /// restored here).
    #[error(
        "environment {env} was applied on cluster {recorded} (the uid of its kube-system namespace, recorded in {INVENTORY}), and this cluster is {current}: refusing to plan or apply it here; pass --accept-cluster if this cluster is meant to take it over (a restore from backup)"
    )]
    OtherCluster {
        env: String,
        recorded: String,
        current: String,
    },
    /// The script puts its objects in a namespace another environment owns, and that
    /// environment is not the one it names.
    #[error(
        "namespace {namespace} {actual}; the script says environment {said} owns it (owned_by)"
    )]
    NamespaceOwner {
        namespace: String,
        said: String,
        /// `is owned by environment X`, `is not cairn's`, `does not exist yet`.
        actual: String,
    },
    /// The script declares a kind cairn cannot handle yet.
    #[error("kind {0} is not supported yet")]
    UnsupportedKind(String),
    /// The script declares a custom kind whose API the cluster does not serve.
    #[error("the cluster does not serve {api_version} {kind}: {hint}")]
    NotServed {
        /// `acid.zalan.do/v1`.
        api_version: String,
        /// `postgresql`.
        kind: String,
        /// What to install.
        hint: String,
    },
    /// Two declared objects share a kind name with different API versions.
    #[error("kind {kind} is declared with two API versions, {first} and {second}; use one")]
    KindClash {
        /// The kind.
        kind: String,
        /// One API version.
        first: String,
        /// The other.
        second: String,
    },
    /// Another apply holds the environment's lock.
    #[error(
        "environment {environment} is locked by {holder} (since {since}; the lock expires in {expires_in}s unless renewed)"
    )]
    Locked {
        /// The environment.
        environment: String,
        /// Who holds it.
        holder: String,
        /// Since when.
        since: String,
        /// Seconds until it expires.
        expires_in: i64,
    },
    /// Something that should not happen.
    #[error("{0}; this is a bug")]
    Internal(String),
}

impl KubeError {
    pub(crate) fn api(what: impl Into<String>, err: kube::Error) -> Self {
        match err {
            kube::Error::Api(status) => KubeError::Api {
                what: what.into(),
                message: status.message.clone(),
                code: Some(status.code),
            },
            other => KubeError::Api {
                what: what.into(),
                message: other.to_string(),
                code: None,
            },
        }
    }
}
