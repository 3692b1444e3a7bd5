//! The cluster's Secrets as other providers keep state in them ([`SecretStore`]): read from
//! the plan's Secret LIST, written by server-side apply with the environment's labels.

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_apply::provider::{ProviderError, SecretStore};
use futures::future::BoxFuture;
use serde_json::Value as J;

use crate::{Cluster, ENVIRONMENT, KubePlan, MANAGED_BY};

/// The Secrets a plan read, and the cluster to write them to.
struct PlannedSecrets {
    cluster: Cluster,
    environment: String,
    observed: BTreeMap<(String, String), J>,
}

impl KubePlan {
    /// The cluster's Secrets as this plan read them, writable as `environment`'s own.
    pub fn secret_store(&self, cluster: &Cluster, environment: &str) -> Arc<dyn SecretStore> {
        let observed = self
            .observed
            .iter()
            .filter(|(id, _)| id.kind == "Secret")
            .filter_map(|(id, obj)| {
                let ns = id.scope.clone()?;
                Some(((ns, id.name.clone()), obj.clone()))
            })
            .collect();
        Arc::new(PlannedSecrets {
            cluster: cluster.clone(),
            environment: environment.to_owned(),
            observed,
        })
    }
}

/// Labels a manifest as cairn's and the environment's.
fn with_environment_label(mut body: J, env: &str) -> J {
    if let Some(labels) = body
        .pointer_mut("/metadata/labels")
        .and_then(J::as_object_mut)
    {
        labels.insert(ENVIRONMENT.into(), J::String(env.to_owned()));
        labels.insert(MANAGED_BY.into(), J::String("cairn".to_owned()));
    }
    body
}

impl SecretStore for PlannedSecrets {
    fn observed(&self, namespace: &str, name: &str) -> Option<J> {
        self.observed
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    fn put<'a>(&'a self, manifest: J) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            let body = with_environment_label(manifest, &self.environment);
            self.cluster.apply_object(&body).await?;
            Ok(())
        })
    }
}
