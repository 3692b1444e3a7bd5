//! The built-in kinds cairn manages, so that no discovery round trip is needed for them.

use kube::discovery::ApiResource;

/// A kind cairn knows how to read and write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kind {
    /// `apps/v1`.
    pub api_version: &'static str,
    /// `Deployment`.
    pub kind: &'static str,
    /// `deployments`.
    pub plural: &'static str,
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
        api_version,
        kind,
        plural,
        namespaced,
    }
}

/// Looks a kind up by name.
pub fn kind(kind: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.kind == kind)
}

impl Kind {
    /// The kube-rs description of the kind.
    pub fn api_resource(&self) -> ApiResource {
        let (group, version) = match self.api_version.split_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (String::new(), self.api_version.to_owned()),
        };
        ApiResource {
            group,
            version,
            api_version: self.api_version.to_owned(),
            kind: self.kind.to_owned(),
            plural: self.plural.to_owned(),
        }
    }
}
