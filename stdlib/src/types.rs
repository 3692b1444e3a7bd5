//! The values scripts hold: handles to declared resources and typed settings.

use std::collections::BTreeMap;

pub use cairn_model::spec::workloads::{EnvValue, KeyRef};
use cairn_model::{ResourceId, Sensitive, Value};

/// The environment returned by `environment(...)`.
#[derive(Debug, Clone)]
pub struct EnvHandle {
    pub name: String,
    pub domain: String,
}

/// A declared Secret.
#[derive(Debug, Clone)]
pub struct SecretHandle {
    pub name: String,
    pub keys: Vec<String>,
    pub id: ResourceId,
}

/// A declared ConfigMap.
#[derive(Debug, Clone)]
pub struct ConfigHandle {
    pub name: String,
    pub keys: Vec<String>,
}

/// A sensitive string in a script: printing it shows a placeholder.
#[derive(Debug, Clone)]
pub struct SensitiveStr(pub Sensitive);

/// A declared workload (Deployment, StatefulSet, Job) or a port of one, usable as a route
/// target, a dependency (`after`) and a network peer.
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    pub id: ResourceId,
    /// The Service in front of it, if any.
    pub service: Option<String>,
    /// Named ports (`http`, `amqp`, …) and numbers.
    pub ports: Vec<(String, i64)>,
    /// The port a route to this target uses.
    pub route_port: Option<i64>,
    /// The Service's port for each named port whose Service port differs from the
    /// container's (`port: 80, target_port: 8000`).
    pub service_ports: Vec<(String, i64)>,
    /// The labels of its pods when they are not selected by its name (pods an operator makes).
    pub pods: Option<Vec<(String, String)>>,
}

/// A declared PersistentVolumeClaim.
#[derive(Debug, Clone)]
pub struct VolumeHandle {
    pub name: String,
    pub id: ResourceId,
}

/// A declared certificate.
#[derive(Debug, Clone)]
pub struct CertHandle {
    pub name: String,
    pub secret_name: String,
    pub names: Vec<String>,
    pub id: ResourceId,
}

/// A set of environment variables, possibly tied to a backing service whose pods the
/// workload that uses them will talk to.
#[derive(Debug, Clone, Default)]
pub struct EnvSet {
    pub vars: Vec<(String, EnvValue)>,
    pub peer: Option<Workload>,
}

/// A backing service made by a plugin: connection settings and the workload behind them.
#[derive(Debug, Clone)]
pub struct Component {
    pub name: String,
    pub host: String,
    pub port: i64,
    /// Connection variables without prefix (`HOST`, `PORT`, `USER`, `PASSWORD`, `DATABASE`).
    pub vars: Vec<(String, EnvValue)>,
    /// The secret key holding the connection URL, if any.
    pub url: Option<KeyRef>,
    pub workload: Workload,
    /// Extra route targets by name (`management`).
    pub endpoints: BTreeMap<String, i64>,
    /// Whatever else the plugin wants to expose (database name, secret…), as a Rhai map.
    pub extra: rhai::Map,
    /// The Jobs that belong to it (an init Job, a seed), for `after: [crdb.jobs[0]]`.
    pub jobs: Vec<Workload>,
}

/// A typed settings value: `kube_context(...)`, `rfc2136(...)`, `letsencrypt(...)`, `s3(...)`,
/// `slack(...)`, a probe.
#[derive(Debug, Clone)]
pub struct Tagged {
    pub kind: &'static str,
    pub value: Value,
}

/// What a script value is, as scripts call it ("a component", "a workload", "a map"), for
/// messages: never a Rust path.
pub fn script_type(v: &rhai::Dynamic) -> &'static str {
    if v.is_unit() {
        "()"
    } else if v.is_string() {
        "a string"
    } else if v.is_int() {
        "an integer"
    } else if v.is_float() {
        "a number"
    } else if v.is_bool() {
        "a boolean"
    } else if v.is_map() {
        "a map"
    } else if v.is_array() {
        "an array"
    } else if v.is::<Component>() {
        "a component"
    } else if v.is::<Workload>() {
        "a workload"
    } else if v.is::<SecretHandle>() {
        "a secret"
    } else if v.is::<ConfigHandle>() {
        "a config map"
    } else if v.is::<VolumeHandle>() {
        "a volume claim"
    } else if v.is::<CertHandle>() {
        "a certificate"
    } else if v.is::<KeyRef>() {
        "a secret key reference"
    } else if v.is::<SensitiveStr>() {
        "a sensitive value"
    } else if v.is::<EnvSet>() {
        "a set of environment variables"
    } else if v.is::<EnvHandle>() {
        "an environment"
    } else if v.is::<Tagged>() {
        "a setting"
    } else if v.is_fnptr() {
        "a function"
    } else {
        "a value of another type"
    }
}
