//! What every provider gives the engine: the trait the Kubernetes, DNS, ACME and S3 providers
//! implement in their own crates, in the shape of jj's backends (one trait, real and in-memory
//! implementations behind it). The engine plans each provider's part of the desired state,
//! puts their rows into one plan, runs their nodes as one graph, and keeps what they observed
//! for saved plans.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use cairn_model::{DesiredState, Provider as Kind};
use cairn_plan::plan::Change;
use futures::future::BoxFuture;
use serde_json::Value as J;

use crate::Node;

/// Any provider's error, kept whole (its source chain) for the engine's error.
pub type ProviderError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A provider: plans its part of a desired state against what it observes.
pub trait Provider: Send + Sync {
    /// Which resources are its own (`Resource::id.provider`).
    fn kind(&self) -> Kind;

    /// Reads what it needs and plans; `None` when the state declares nothing of it.
    fn plan<'a>(
        &'a self,
        state: &'a DesiredState,
    ) -> BoxFuture<'a, Result<Option<Box<dyn Part>>, ProviderError>>;
}

/// A provider's planned part: its plan rows, what it says in the plan header, the steps that
/// carry it out, and what it observed.
pub trait Part: Send + Sync {
    /// Which resources are its own.
    fn kind(&self) -> Kind;

    /// Its rows of the plan, in the order they are shown (no-ops included).
    fn changes(&self) -> Vec<Change>;

    /// Lines for the plan header: where it lives, what stands in for it, its warnings.
    fn notes(&self) -> Vec<String>;

    /// The executor nodes that carry its changes out; a node's id is its plan row's.
    fn nodes(&self, steps: &StepOptions) -> Vec<Node>;

    /// What it read, one fingerprint per thing (`DnsZone/…`, `Bucket/…`): a saved plan is
    /// applied only while these are unchanged. Never a secret value, even hashed.
    fn observations(&self) -> BTreeMap<String, String>;

    /// An in-memory twin's state to keep between sandbox runs: the file and its contents.
    fn twin_state(&self) -> Result<Option<TwinState>, ProviderError> {
        Ok(None)
    }
}

/// How steps run.
#[derive(Debug, Clone, Copy)]
pub struct StepOptions {
    /// How long one step may take.
    pub timeout: Duration,
}

/// An in-memory twin's saved state (the sandbox's zone, its buckets).
pub struct TwinState {
    /// Where it is kept.
    pub file: PathBuf,
    /// What to write there.
    pub contents: String,
}

/// The cluster's Secrets, as other providers keep state in them (certificates, the ACME
/// account): what the plan read, and a way to write one. The Kubernetes provider implements it;
/// the providers using it know nothing of Kubernetes beyond a Secret manifest.
pub trait SecretStore: Send + Sync {
    /// The Secret `namespace/name` as the plan read it (`None`: it does not exist).
    fn observed(&self, namespace: &str, name: &str) -> Option<J>;

    /// Writes a Secret manifest (server-side apply), labelled as the environment's own.
    fn put<'a>(&'a self, manifest: J) -> BoxFuture<'a, Result<(), ProviderError>>;
}
