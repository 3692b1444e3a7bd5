//! Typed specs of namespaces, settings, secrets, volumes and workloads.
//!
//! The stdlib's bindings parse a script's options into these (quantities already canonical,
//! names already checked, problems already reported at the caller's span); its lowering turns
//! them into Kubernetes objects. Plain data: no Rhai, no IO.

use std::collections::BTreeMap;

use crate::{Sensitive, Value};

/// A reference to one key of a Secret or ConfigMap, for an environment variable.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRef {
    /// `Secret` or `ConfigMap`.
    pub kind: &'static str,
    /// The Secret's or ConfigMap's name.
    pub name: String,
    /// The key.
    pub key: String,
}

/// The value of one environment variable.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvValue {
    /// Plain text.
    Plain(String),
    /// A key of a Secret or ConfigMap.
    Ref(KeyRef),
}

/// Resource requests and limits, canonical quantities.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// `requests.cpu`.
    pub request_cpu: Option<String>,
    /// `requests.memory`.
    pub request_memory: Option<String>,
    /// `limits.cpu`.
    pub limit_cpu: Option<String>,
    /// `limits.memory`.
    pub limit_memory: Option<String>,
}

/// A container as the script describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Container {
    /// The container's name (the workload's).
    pub name: String,
    /// The image reference.
    pub image: String,
    /// The entrypoint, if overridden.
    pub command: Vec<String>,
    /// The arguments, if overridden.
    pub args: Vec<String>,
    /// Named ports.
    pub ports: Vec<(String, i64)>,
    /// Environment variables, in order.
    pub env: Vec<(String, EnvValue)>,
    /// Requests and limits.
    pub resources: Resources,
    /// The readiness probe, as a manifest fragment.
    pub readiness: Option<Value>,
    /// The liveness probe, as a manifest fragment.
    pub liveness: Option<Value>,
    /// Volume mounts: volume name and path.
    pub mounts: Vec<(String, String)>,
}

/// A volume claim's size, class and access mode (`env.volume_claim` and a StatefulSet's
/// `volume_claims`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimSpec {
    /// The claim's name.
    pub name: String,
    /// The canonical storage size.
    pub storage: String,
    /// The storage class, if any.
    pub class: Option<String>,
    /// The access mode (`ReadWriteOnce`…).
    pub access: String,
}

/// A volume of a pod.
#[derive(Debug, Clone, PartialEq)]
pub enum PodVolume {
    /// A PersistentVolumeClaim, named like the claim.
    Claim(String),
    /// A ConfigMap's keys as files.
    ConfigMap {
        /// The volume's name.
        volume: String,
        /// The ConfigMap's name.
        name: String,
        /// Mounted only when it exists (a config map made outside the script).
        optional: bool,
    },
    /// A Secret's keys as files.
    Secret {
        /// The volume's name.
        volume: String,
        /// The Secret's name.
        name: String,
        /// Mounted only when it exists (a Secret cairn makes at plan time, such as the
        /// Alertmanager configuration).
        optional: bool,
    },
}

/// The pod-level options of a workload.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSpec {
    /// The workload's name, which labels its pods.
    pub name: String,
    /// Its one container.
    pub container: Container,
    /// The pod's volumes.
    pub volumes: Vec<PodVolume>,
    /// Names of image pull Secrets.
    pub pull_secrets: Vec<String>,
    /// `Never` for Jobs and CronJobs.
    pub restart_policy: Option<&'static str>,
    /// Per-pod volume claims of a StatefulSet (`volumeClaimTemplates`).
    pub claim_templates: Vec<ClaimSpec>,
    /// `sandbox: #{ simulate }`: the failure its pods have on the sandbox (the emulator's
    /// `sandbox.cairn.dev/outcome` annotation: `crashloop`, `image-pull-error`).
    pub simulate: Option<&'static str>,
    /// Containers running beside the main one (`sidecars`: an exporter, a proxy).
    pub sidecars: Vec<Container>,
    /// Containers run to completion, in order, before the others start (`init`).
    pub init_containers: Vec<Container>,
    /// The pods' annotations (`prometheus.io/scrape`…), in the script's order.
    pub annotations: Vec<(String, String)>,
    /// The pods' labels besides the one that selects them, in the script's order.
    pub labels: Vec<(String, String)>,
    /// The ServiceAccount the pods run as (`service_account`), when not the default.
    pub service_account: Option<String>,
}

/// What kind of workload a pod runs in, with that kind's own options.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkloadKind {
    /// A Deployment.
    Deployment {
        /// Its replica count; `None` when an autoscaler sets it (`autoscale`).
        replicas: Option<i64>,
    },
    /// A StatefulSet.
    StatefulSet {
        /// Its replica count; `None` when an autoscaler sets it (`autoscale`).
        replicas: Option<i64>,
    },
    /// A Job.
    Job {
        /// Its `backoffLimit`.
        backoff_limit: i64,
    },
    /// A CronJob.
    CronJob {
        /// The cron schedule.
        schedule: String,
        /// Whether it is suspended.
        suspend: bool,
        /// `Allow`, `Forbid` or `Replace`.
        concurrency: String,
        /// Its jobs' `backoffLimit`.
        backoff_limit: i64,
    },
}

/// A namespace's network isolation (`isolate`).
#[derive(Debug, Clone, PartialEq)]
pub struct IsolationSpec {
    /// Namespaces whose pods may not reach this one.
    pub deny_namespaces: Vec<String>,
    /// Ports pods may reach outside the cluster.
    pub egress_ports: Vec<i64>,
    /// The cluster's pod and service networks, excluded from that egress.
    pub cluster_cidrs: Vec<String>,
    /// Whether the namespace's pods may reach each other.
    pub allow_within: bool,
}

/// Canonical quantities (or counts) under their Kubernetes keys (`requests.cpu`, `memory`…).
pub type Quantities = Vec<(&'static str, String)>;

/// A namespace with its quota, container defaults and isolation (`env.namespace`).
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceSpec {
    /// The namespace's name.
    pub name: String,
    /// Its labels besides `name`, in the script's order.
    pub labels: Vec<(String, String)>,
    /// The ResourceQuota's `hard` limits (Kubernetes keys), when a quota is given.
    pub quota: Option<Quantities>,
    /// The LimitRange's container limits (`default`, `defaultRequest`, `max`, `min`, each
    /// with `cpu` and `memory`), when defaults are given.
    pub container_defaults: Option<Vec<(&'static str, Quantities)>>,
    /// Its isolation, when given.
    pub isolation: Option<IsolationSpec>,
}

/// A Secret (`env.secret`): its type and its values, plain or sensitive.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretSpec {
    /// The Secret's name.
    pub name: String,
    /// Its type (`Opaque`, `kubernetes.io/basic-auth`…).
    pub kind: String,
    /// Its `stringData`, by key.
    pub data: BTreeMap<String, Value>,
}

/// An image pull Secret for a private registry (`env.registry_secret`).
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrySecretSpec {
    /// The Secret's name.
    pub name: String,
    /// The registry host.
    pub server: String,
    /// The user name.
    pub username: String,
    /// The password or token, kept sensitive.
    pub password: Sensitive,
}

/// A ConfigMap of plain strings (`env.config_map`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigMapSpec {
    /// The ConfigMap's name.
    pub name: String,
    /// Its `data`, by key.
    pub data: BTreeMap<String, Value>,
}

/// The bucket an environment's backups write to (`backups: s3(...)`).
#[derive(Debug, Clone, PartialEq)]
pub struct BucketSpec {
    /// The bucket's name.
    pub bucket: String,
    /// The environment it belongs to (tagged on the bucket).
    pub environment: String,
    /// The `s3(...)` setting: `region`, `endpoint`, `path_style`, `tags`.
    pub settings: Value,
    /// Expiration rules: key prefix and days.
    pub rules: Vec<(String, i64)>,
}

/// `autoscale: #{ min, max, cpu }`: a HorizontalPodAutoscaler keeps the workload's replicas
/// between `min` and `max`, aiming at `cpu` percent of the pods' CPU requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoscaleSpec {
    /// The fewest replicas (at least 1).
    pub min: i64,
    /// The most replicas (at least `min`).
    pub max: i64,
    /// The target average CPU utilization, in percent of the requests.
    pub cpu: i64,
}
