use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::{Span, Value};

/// Which provider owns a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// A Kubernetes object.
    Kube,
    /// A DNS record set.
    Dns,
    /// An ACME certificate.
    Acme,
    /// An S3 bucket.
    S3,
    /// Alert rules and their routing.
    Alerts,
    /// Smoke checks: run after an apply and by `cairn status`, never applied.
    Smoke,
}

impl Provider {
    /// The provider's name as it appears in ids.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Kube => "kube",
            Provider::Dns => "dns",
            Provider::Acme => "acme",
            Provider::S3 => "s3",
            Provider::Alerts => "alerts",
            Provider::Smoke => "smoke",
        }
    }
}

/// The stable identity of a resource: two declarations with the same id are the same thing.
///
/// Ordering puts Kubernetes objects first, in the order they must be applied.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ResourceId {
    /// Owner of the resource.
    pub provider: Provider,
    /// Apply rank within the provider (lower first); not part of the displayed id.
    #[serde(skip)]
    pub rank: u8,
    /// Kind, such as `Deployment`, `DnsRecord`, `Certificate`, `Bucket`.
    pub kind: String,
    /// Namespace (Kubernetes), zone (DNS) or `None`.
    pub scope: Option<String>,
    /// The resource's name (for DNS: the owner name and record type).
    pub name: String,
}

impl ResourceId {
    /// A Kubernetes object id; the rank follows the apply order of kinds.
    pub fn kube(kind: &str, namespace: Option<&str>, name: &str) -> Self {
        Self {
            provider: Provider::Kube,
            rank: kube_rank(kind),
            kind: kind.to_owned(),
            scope: namespace.map(str::to_owned),
            name: name.to_owned(),
        }
    }

    /// A non-Kubernetes resource id.
    pub fn other(provider: Provider, kind: &str, scope: Option<&str>, name: &str) -> Self {
        Self {
            provider,
            rank: 0,
            kind: kind.to_owned(),
            scope: scope.map(str::to_owned),
            name: name.to_owned(),
        }
    }
}

/// The order in which Kubernetes kinds are applied (deletions go in reverse).
pub fn kube_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "CustomResourceDefinition" => 1,
        "ResourceQuota" | "LimitRange" | "NetworkPolicy" => 2,
        "ServiceAccount" | "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding" => 3,
        "Secret" | "ConfigMap" => 4,
        "PersistentVolumeClaim" => 5,
        "Service" => 6,
        "StatefulSet" | "Deployment" | "DaemonSet" => 7,
        "Job" | "CronJob" => 8,
        "Ingress" | "PodDisruptionBudget" | "HorizontalPodAutoscaler" => 9,
        _ => 10,
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.scope {
            Some(scope) => write!(f, "{}/{}/{}", self.kind, scope, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// One declared resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resource {
    /// Its identity.
    pub id: ResourceId,
    /// Its content: a Kubernetes manifest, or the provider's own description.
    pub body: Value,
    /// Resources that must be applied (and ready) before this one.
    pub depends_on: Vec<ResourceId>,
    /// Stateful resources (volumes, buckets, databases) are never deleted unless the script
    /// allows it.
    pub protected: bool,
    /// The script call that declared it.
    pub span: Option<Span>,
    /// Finer spans inside the declaration, by what they point at (`env/NAME`, `schedule`…).
    #[serde(skip)]
    pub field_spans: BTreeMap<String, Span>,
}

/// A password cairn generates once and keeps: where it lives decides how it is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeneratedSecret {
    /// Length in characters.
    pub length: u32,
    /// The Secret (`namespace/name`) and key that hold it alone, once the script stored it.
    pub home: Option<(String, String)>,
    /// Where `generate_password` was called.
    pub span: Option<Span>,
}

impl GeneratedSecret {
    /// A new value: random letters and digits (no look-alikes), `length` of them.
    pub fn fresh_value(&self) -> String {
        use rand::Rng;
        const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
        let mut rng = rand::rng();
        (0..self.length)
            .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
            .collect()
    }
}

/// Environment-wide settings declared by `environment(name, #{ ... })`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct EnvironmentMeta {
    /// The environment's name (`staging`).
    pub name: String,
    /// Its namespace, once declared.
    pub namespace: Option<String>,
    /// The environment that owns the namespace, when it is another one
    /// (`env.namespace(name, #{ owned_by: "staging" })`): this one declares only its own objects
    /// inside, never the namespace, its quota, limits or isolation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_owner: Option<String>,
    /// Its base domain, if any.
    pub domain: Option<String>,
    /// The kubeconfig context to use, if the script names one.
    pub kube_context: Option<String>,
    /// Where the script pins it.
    #[serde(skip)]
    pub kube_context_at: Option<crate::Span>,
    /// Provider settings (DNS server, ACME directory, S3 endpoint…), sensitive values included.
    pub providers: BTreeMap<String, Value>,
    /// Protected resources the script allows cairn to delete, as `Kind/scope/name` ids.
    pub allow_delete: Vec<String>,
    /// Objects the script allows cairn to delete and create again when the server refuses a
    /// change in place (a StatefulSet's volumeClaimTemplates), as `Kind/scope/name` ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_replace: Vec<String>,
    /// Objects that exist without cairn's labels (made with kubectl, another tool) the script
    /// takes over, as `Kind/scope/name` ids (`Kind/name` for cluster-wide kinds).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub adopt: Vec<String>,
    /// Secrets an operator makes (not cairn) that workloads read: `namespace/name` → keys.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub external_secrets: BTreeMap<String, Vec<String>>,
    /// How long the environment lives after its last apply (`expires: "7d"`), in seconds: a
    /// preview environment `cairn destroy --expired` removes once it is past.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// Its data may go with it (`ephemeral: true`, a preview's): `cairn destroy --delete-data`
    /// deletes its claims and buckets without asking for each.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ephemeral: bool,
    /// Field managers whose fields cairn never takes (`leave_to: ["argocd"]`), besides the
    /// cluster's controllers: they are left out of what it applies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leave_to: Vec<String>,
}

/// What an environment script evaluates to.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DesiredState {
    /// The environment's settings.
    pub environment: EnvironmentMeta,
    /// All resources, in a stable order (sorted by id).
    pub resources: Vec<Resource>,
    /// Generated passwords by id.
    pub generated: BTreeMap<u32, GeneratedSecret>,
    /// The connections the script implies and the namespaces it must not reach (derived from
    /// the script like the network policies; not part of the digest).
    #[serde(skip)]
    pub network: crate::NetworkIntent,
}

impl DesiredState {
    /// Sorts resources into their stable order.
    pub fn normalize(&mut self) {
        self.resources.sort_by(|a, b| a.id.cmp(&b.id));
    }

    /// Kubernetes objects, in apply order.
    pub fn kube_objects(&self) -> impl Iterator<Item = &Resource> {
        self.resources
            .iter()
            .filter(|r| r.id.provider == Provider::Kube)
    }

    /// Everything that is not a Kubernetes object.
    pub fn other_resources(&self) -> impl Iterator<Item = &Resource> {
        self.resources
            .iter()
            .filter(|r| r.id.provider != Provider::Kube)
    }

    /// Looks a resource up by id.
    pub fn get(&self, id: &ResourceId) -> Option<&Resource> {
        self.resources.iter().find(|r| &r.id == id)
    }
}
