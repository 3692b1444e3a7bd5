//! The kinds cairn reads and writes: the built-in ones, known without a discovery round trip,
//! and custom kinds (an operator's `postgresql`, `Cluster`…) learnt from the desired state and
//! the inventory through one discovery request per API group version.

use std::borrow::Cow;
use std::collections::BTreeMap;

use cairn_model::DesiredState;
use kube::discovery::ApiResource;
use serde_json::Value as J;

use crate::{Cluster, KubeError};

/// A kind cairn knows how to read and write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kind {
    /// `apps/v1`.
    pub api_version: Cow<'static, str>,
    /// `Deployment`.
    pub kind: Cow<'static, str>,
    /// `deployments`.
    pub plural: Cow<'static, str>,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
}

const KINDS: &[Kind] = &[
    k("v1", "Namespace", "namespaces", false),
    k(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
    ),
    k("v1", "ResourceQuota", "resourcequotas", true),
    k("v1", "LimitRange", "limitranges", true),
    k(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
    ),
    k("v1", "ServiceAccount", "serviceaccounts", true),
    k("rbac.authorization.k8s.io/v1", "Role", "roles", true),
    k(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    k("v1", "Secret", "secrets", true),
    k("v1", "ConfigMap", "configmaps", true),
    k(
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
    ),
    k("v1", "Service", "services", true),
    k("apps/v1", "Deployment", "deployments", true),
    k("apps/v1", "StatefulSet", "statefulsets", true),
    k("apps/v1", "DaemonSet", "daemonsets", true),
    k("apps/v1", "ReplicaSet", "replicasets", true),
    k("batch/v1", "Job", "jobs", true),
    k("batch/v1", "CronJob", "cronjobs", true),
    k("networking.k8s.io/v1", "Ingress", "ingresses", true),
    k(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    k("coordination.k8s.io/v1", "Lease", "leases", true),
    k("v1", "Pod", "pods", true),
    k("v1", "Event", "events", true),
    k(
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        "prometheusrules",
        true,
    ),
    k(
        "monitoring.coreos.com/v1alpha1",
        "AlertmanagerConfig",
        "alertmanagerconfigs",
        true,
    ),
];

const fn k(
    api_version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> Kind {
    Kind {
        api_version: Cow::Borrowed(api_version),
        kind: Cow::Borrowed(kind),
        plural: Cow::Borrowed(plural),
        namespaced,
    }
}

/// Looks a kind up by name.
pub fn kind(kind: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.kind == kind)
}

/// The operator that usually brings an API group, for the error when the cluster lacks it.
fn operator_of(group: &str) -> Option<&'static str> {
    Some(match group {
        "acid.zalan.do" => "the postgres-operator (Zalando)",
        "postgresql.cnpg.io" => "CloudNativePG",
        "monitoring.coreos.com" => "the Prometheus operator",
        "cert-manager.io" => "cert-manager",
        "traefik.io" | "traefik.containo.us" => "Traefik's CRDs",
        "networking.istio.io" | "security.istio.io" => "Istio",
        "argoproj.io" => "Argo CD",
        _ => return None,
    })
}

/// The kinds of one plan: the built-in ones and the custom kinds the cluster serves.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    custom: BTreeMap<String, Kind>,
}

impl Catalog {
    /// A built-in kind or a custom kind already discovered, by kind name.
    pub fn get(&self, name: &str) -> Option<Kind> {
        kind(name)
            .cloned()
            .or_else(|| self.custom.get(name).cloned())
    }

    /// How a kind is written in the inventory: its name when built in, `kind.group/version`
    /// otherwise, so that a later plan can discover it again to prune it.
    pub fn inventory_name(&self, name: &str) -> String {
        match (kind(name), self.custom.get(name)) {
            (None, Some(k)) => format!("{}.{}", k.kind, k.api_version),
            _ => name.to_owned(),
        }
    }

    /// Learns the custom kinds of `state` (one discovery request per API group version).
    /// A kind the cluster does not serve is an error naming what to install.
    pub async fn for_state(cluster: &Cluster, state: &DesiredState) -> Result<Self, KubeError> {
        let mut wanted: BTreeMap<String, String> = BTreeMap::new();
        for r in state.kube_objects() {
            if kind(&r.id.kind).is_some() {
                continue;
            }
            let api_version = r
                .body
                .get("apiVersion")
                .and_then(cairn_model::Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if let Some(other) = wanted.get(&r.id.kind)
                && *other != api_version
            {
                return Err(KubeError::KindClash {
                    kind: r.id.kind.clone(),
                    first: other.clone(),
                    second: api_version,
                });
            }
            wanted.insert(r.id.kind.clone(), api_version);
        }
        let mut catalog = Self::default();
        let mut documents: BTreeMap<String, Option<J>> = BTreeMap::new();
        for (name, api_version) in wanted {
            let found = catalog
                .discover(cluster, &mut documents, &api_version, &name)
                .await?;
            if !found {
                let group = api_version.split_once('/').map_or("", |(g, _)| g);
                let hint = operator_of(group).map_or_else(
                    || {
                        "install the operator or the CustomResourceDefinition that defines it"
                            .to_owned()
                    },
                    |op| format!("install {op}"),
                );
                return Err(KubeError::NotServed {
                    api_version,
                    kind: name,
                    hint,
                });
            }
        }
        Ok(catalog)
    }

    /// Learns the kinds an inventory lists as `kind.group/version`; a kind the cluster no
    /// longer serves has no objects left to read, and is skipped.
    pub async fn learn_inventory(
        &mut self,
        cluster: &Cluster,
        names: &[String],
    ) -> Result<Vec<String>, KubeError> {
        let mut documents = BTreeMap::new();
        let mut out = Vec::new();
        for entry in names {
            if kind(entry).is_some() || self.custom.contains_key(entry) {
                out.push(entry.clone());
                continue;
            }
            let Some((name, api_version)) = entry.split_once('.') else {
                return Err(KubeError::UnsupportedKind(entry.clone()));
            };
            // Declared now (possibly at a newer version of its API): read with that version.
            if self.custom.contains_key(name) {
                out.push(name.to_owned());
                continue;
            }
            if self
                .discover(cluster, &mut documents, api_version, name)
                .await?
            {
                out.push(name.to_owned());
            }
        }
        Ok(out)
    }

    async fn discover(
        &mut self,
        cluster: &Cluster,
        documents: &mut BTreeMap<String, Option<J>>,
        api_version: &str,
        name: &str,
    ) -> Result<bool, KubeError> {
        if !api_version.contains('/') {
            // The core group has no custom kinds.
            return Ok(false);
        }
        if !documents.contains_key(api_version) {
            let doc = cluster.discovery(api_version).await?;
            documents.insert(api_version.to_owned(), doc);
        }
        let Some(Some(doc)) = documents.get(api_version) else {
            return Ok(false);
        };
        let resource = doc
            .get("resources")
            .and_then(J::as_array)
            .into_iter()
            .flatten()
            .find(|r| {
                r.get("kind").and_then(J::as_str) == Some(name)
                    && r.get("name")
                        .and_then(J::as_str)
                        .is_some_and(|n| !n.contains('/'))
            });
        let Some(resource) = resource else {
            return Ok(false);
        };
        let plural = resource
            .get("name")
            .and_then(J::as_str)
            .unwrap_or_default()
            .to_owned();
        let namespaced = resource
            .get("namespaced")
            .and_then(J::as_bool)
            .unwrap_or(true);
        self.custom.insert(
            name.to_owned(),
            Kind {
                api_version: Cow::Owned(api_version.to_owned()),
                kind: Cow::Owned(name.to_owned()),
                plural: Cow::Owned(plural),
                namespaced,
            },
        );
        Ok(true)
    }
}

impl Kind {
    /// The kube-rs description of the kind.
    pub fn api_resource(&self) -> ApiResource {
        let (group, version) = match self.api_version.split_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (String::new(), self.api_version.to_string()),
        };
        ApiResource {
            group,
            version,
            api_version: self.api_version.to_string(),
            kind: self.kind.to_string(),
            plural: self.plural.to_string(),
        }
    }

    /// The requests on this kind's objects in `namespace` (ignored for a cluster-wide kind;
    /// `None`: across all namespaces), for a raw request whose answer is read as it is.
    pub(crate) fn request(&self, namespace: Option<&str>) -> kube::core::Request {
        use kube::Resource as _;
        let scoped = namespace.filter(|_| self.namespaced);
        let url = kube::api::DynamicObject::url_path(&self.api_resource(), scoped);
        kube::core::Request::new(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_kinds_are_named_with_their_group_in_the_inventory() {
        let mut catalog = Catalog::default();
        catalog.custom.insert(
            "postgresql".to_owned(),
            Kind {
                api_version: Cow::Borrowed("acid.zalan.do/v1"),
                kind: Cow::Borrowed("postgresql"),
                plural: Cow::Borrowed("postgresqls"),
                namespaced: true,
            },
        );
        assert_eq!(catalog.inventory_name("Deployment"), "Deployment");
        assert_eq!(
            catalog.inventory_name("postgresql"),
            "postgresql.acid.zalan.do/v1"
        );
        assert_eq!(
            catalog.get("postgresql").map(|k| k.api_resource().plural),
            Some("postgresqls".to_owned())
        );
        assert_eq!(
            catalog.get("StatefulSet").map(|k| k.api_resource().group),
            Some("apps".to_owned())
        );
        assert!(catalog.get("Cluster").is_none());
    }

    #[test]
    fn operators_are_named_for_well_known_groups() {
        assert_eq!(
            operator_of("acid.zalan.do"),
            Some("the postgres-operator (Zalando)")
        );
        assert_eq!(operator_of("postgresql.cnpg.io"), Some("CloudNativePG"));
        assert_eq!(operator_of("example.com"), None);
    }
}
