//! Lowering of workload specs: namespaces, secrets, config maps, volumes, workloads and their
//! Services. Pure: every function takes a spec (or plain data) and returns manifests.

use cairn_model::spec::workloads::{
    AutoscaleSpec, BucketSpec, ClaimSpec, ConfigMapSpec, IsolationSpec, NamespaceSpec, PodSpec,
    PodVolume, Quantities, RegistrySecretSpec, SecretSpec, WorkloadKind,
};
use cairn_model::{Provider, ResourceId, Value};

use crate::convert;
use crate::k8s;

/// The `spec` of a volume claim: access mode, size and class.
fn claim_spec(c: &ClaimSpec) -> Value {
    let mut spec = Value::obj([
        ("accessModes", Value::from(vec![c.access.clone()])),
        (
            "resources",
            Value::obj([(
                "requests",
                Value::obj([("storage", Value::str(c.storage.as_str()))]),
            )]),
        ),
    ]);
    if let Some(class) = &c.class {
        spec.insert("storageClassName", Value::str(class.as_str()));
    }
    spec
}

/// A PersistentVolumeClaim in namespace `ns`.
pub fn volume_claim(ns: &str, c: &ClaimSpec) -> Value {
    let mut body = k8s::object("v1", "PersistentVolumeClaim", &c.name, Some(ns));
    body.insert("spec", claim_spec(c));
    body
}

/// One entry of a StatefulSet's `volumeClaimTemplates`.
fn claim_template(c: &ClaimSpec) -> Value {
    Value::obj([
        ("apiVersion", Value::str("v1")),
        ("kind", Value::str("PersistentVolumeClaim")),
        (
            "metadata",
            Value::obj([("name", Value::str(c.name.as_str()))]),
        ),
        ("spec", claim_spec(c)),
    ])
}

/// One entry of a pod's `volumes`.
fn pod_volume(v: &PodVolume) -> Value {
    match v {
        PodVolume::Claim(name) => Value::obj([
            ("name", Value::str(name.as_str())),
            (
                "persistentVolumeClaim",
                Value::obj([("claimName", Value::str(name.as_str()))]),
            ),
        ]),
        PodVolume::ConfigMap {
            volume,
            name,
            optional,
        } => {
            let mut cm = Value::obj([("name", Value::str(name.as_str()))]);
            if *optional {
                cm.insert("optional", Value::Bool(true));
            }
            Value::obj([("name", Value::str(volume.as_str())), ("configMap", cm)])
        }
        PodVolume::Secret {
            volume,
            name,
            optional,
        } => {
            let mut secret = Value::obj([("secretName", Value::str(name.as_str()))]);
            if *optional {
                secret.insert("optional", Value::Bool(true));
            }
            Value::obj([("name", Value::str(volume.as_str())), ("secret", secret)])
        }
    }
}

/// A workload's pod template.
pub fn pod_template(p: &PodSpec) -> Value {
    let mut containers = vec![k8s::container(&p.container)];
    containers.extend(p.sidecars.iter().map(k8s::container));
    let mut template = k8s::pod_template(
        &p.name,
        containers,
        p.volumes.iter().map(pod_volume).collect(),
        &p.pull_secrets,
        p.restart_policy,
    );
    if !p.init_containers.is_empty()
        && let Some(spec) = child(&mut template, "spec")
    {
        let init = p.init_containers.iter().map(k8s::container).collect();
        spec.insert("initContainers", Value::Array(init));
    }
    if let Some(sa) = &p.service_account
        && let Some(spec) = child(&mut template, "spec")
    {
        spec.insert("serviceAccountName", Value::str(sa.as_str()));
    }
    pod_metadata(&mut template, p);
    simulated(&mut template, p);
    template
}

/// `sandbox: #{ simulate }`: the emulator's outcome annotation, beside the pods' own.
fn simulated(template: &mut Value, p: &PodSpec) {
    let (Some(outcome), Some(meta)) = (p.simulate, child(template, "metadata")) else {
        return;
    };
    let annotation = ("sandbox.cairn.dev/outcome", Value::str(outcome));
    match child(meta, "annotations") {
        Some(annotations) => {
            annotations.insert(annotation.0, annotation.1);
        }
        None => meta.insert("annotations", Value::obj([annotation])),
    }
}

/// The member `key` of an object, to change it.
fn child<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    match v {
        Value::Object(map) => map.get_mut(key),
        _ => None,
    }
}

/// The pods' own labels and annotations, beside the label that selects them.
fn pod_metadata(template: &mut Value, p: &PodSpec) {
    let Some(meta) = child(template, "metadata") else {
        return;
    };
    if !p.labels.is_empty()
        && let Some(labels) = child(meta, "labels")
    {
        for (k, v) in &p.labels {
            labels.insert(k.clone(), Value::str(v.as_str()));
        }
    }
    if !p.annotations.is_empty() {
        let annotations = p
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), Value::str(v.as_str())))
            .collect();
        meta.insert("annotations", Value::Object(annotations));
    }
}

/// The Deployment, StatefulSet, Job or CronJob running a pod.
pub fn workload(ns: &str, kind: &WorkloadKind, pod: &PodSpec) -> Value {
    let name = pod.name.as_str();
    let template = pod_template(pod);
    let selector = || Value::obj([("matchLabels", k8s::selector(name))]);
    let (api_version, kind_name, spec) = match kind {
        WorkloadKind::Deployment { replicas } => {
            let mut spec = Value::obj([("selector", selector()), ("template", template)]);
            // Autoscaled: the replicas are the autoscaler's, never in what cairn applies.
            if let Some(n) = replicas {
                spec.insert("replicas", Value::Int(*n));
            }
            ("apps/v1", "Deployment", spec)
        }
        WorkloadKind::StatefulSet { replicas } => {
            let mut spec = Value::obj([
                ("serviceName", Value::str(name)),
                ("selector", selector()),
                ("template", template),
            ]);
            if let Some(n) = replicas {
                spec.insert("replicas", Value::Int(*n));
            }
            if !pod.claim_templates.is_empty() {
                let templates = pod.claim_templates.iter().map(claim_template).collect();
                spec.insert("volumeClaimTemplates", Value::Array(templates));
            }
            ("apps/v1", "StatefulSet", spec)
        }
        WorkloadKind::Job { backoff_limit } => (
            "batch/v1",
            "Job",
            Value::obj([
                ("backoffLimit", Value::Int(*backoff_limit)),
                ("template", template),
            ]),
        ),
        WorkloadKind::CronJob { .. } => ("batch/v1", "CronJob", cronjob_spec(kind, template)),
    };
    let mut body = k8s::object(api_version, kind_name, name, Some(ns));
    body.insert("spec", spec);
    body
}

/// The HorizontalPodAutoscaler (autoscaling/v2) of an autoscaled workload: its replicas
/// between `min` and `max`, at `cpu` percent of the pods' CPU requests.
pub fn autoscaler(ns: &str, kind: &str, name: &str, a: &AutoscaleSpec) -> Value {
    let mut body = k8s::object("autoscaling/v2", "HorizontalPodAutoscaler", name, Some(ns));
    let target = Value::obj([
        ("apiVersion", Value::str("apps/v1")),
        ("kind", Value::str(kind)),
        ("name", Value::str(name)),
    ]);
    let utilization = Value::obj([
        ("type", Value::str("Utilization")),
        ("averageUtilization", Value::Int(a.cpu)),
    ]);
    let metric = Value::obj([
        ("type", Value::str("Resource")),
        (
            "resource",
            Value::obj([("name", Value::str("cpu")), ("target", utilization)]),
        ),
    ]);
    body.insert(
        "spec",
        Value::obj([
            ("scaleTargetRef", target),
            ("minReplicas", Value::Int(a.min)),
            ("maxReplicas", Value::Int(a.max)),
            ("metrics", Value::Array(vec![metric])),
        ]),
    );
    body
}

/// A CronJob's `spec`.
fn cronjob_spec(kind: &WorkloadKind, template: Value) -> Value {
    let WorkloadKind::CronJob {
        schedule,
        suspend,
        concurrency,
        backoff_limit,
    } = kind
    else {
        return Value::object();
    };
    Value::obj([
        ("schedule", Value::str(schedule.as_str())),
        ("suspend", Value::Bool(*suspend)),
        ("concurrencyPolicy", Value::str(concurrency.as_str())),
        ("successfulJobsHistoryLimit", Value::Int(3)),
        ("failedJobsHistoryLimit", Value::Int(1)),
        (
            "jobTemplate",
            Value::obj([(
                "spec",
                Value::obj([
                    ("backoffLimit", Value::Int(*backoff_limit)),
                    ("template", template),
                ]),
            )]),
        ),
    ])
}

/// The Service in front of a workload's ports.
/// `ports` are (name, the Service's port, the container's).
pub fn service(ns: &str, name: &str, ports: &[(String, i64, i64)]) -> Value {
    let ports = ports
        .iter()
        .map(|(pname, port, target)| {
            Value::obj([
                ("name", Value::str(pname.as_str())),
                ("port", Value::Int(*port)),
                ("targetPort", Value::Int(*target)),
                ("protocol", Value::str("TCP")),
            ])
        })
        .collect();
    let mut body = k8s::object("v1", "Service", name, Some(ns));
    body.insert(
        "spec",
        Value::obj([
            ("selector", k8s::selector(name)),
            ("ports", Value::Array(ports)),
        ]),
    );
    body
}

/// A ServiceAccount with a Role reading `groups` (API group → resources) in namespace `ns`,
/// and the RoleBinding between them, each by kind.
pub fn service_account(
    ns: &str,
    name: &str,
    groups: &std::collections::BTreeMap<&'static str, Vec<String>>,
) -> Vec<(&'static str, Value)> {
    let account = k8s::object("v1", "ServiceAccount", name, Some(ns));
    let rules = groups
        .iter()
        .map(|(group, resources)| {
            Value::obj([
                ("apiGroups", Value::from(vec![(*group).to_owned()])),
                ("resources", Value::from(resources.clone())),
                ("verbs", Value::from(vec!["get", "list", "watch"])),
            ])
        })
        .collect();
    let rbac = "rbac.authorization.k8s.io/v1";
    let mut role = k8s::object(rbac, "Role", name, Some(ns));
    role.insert("rules", Value::Array(rules));
    let mut binding = k8s::object(rbac, "RoleBinding", name, Some(ns));
    binding.insert(
        "roleRef",
        Value::obj([
            ("apiGroup", Value::str("rbac.authorization.k8s.io")),
            ("kind", Value::str("Role")),
            ("name", Value::str(name)),
        ]),
    );
    binding.insert(
        "subjects",
        Value::Array(vec![Value::obj([
            ("kind", Value::str("ServiceAccount")),
            ("name", Value::str(name)),
            ("namespace", Value::str(ns)),
        ])]),
    );
    vec![
        ("ServiceAccount", account),
        ("Role", role),
        ("RoleBinding", binding),
    ]
}

/// A Secret with `stringData`./// A Secret with `stringData`.
pub fn secret(ns: &str, spec: &SecretSpec) -> Value {
    let mut body = k8s::object("v1", "Secret", &spec.name, Some(ns));
    body.insert("type", Value::str(spec.kind.as_str()));
    body.insert("stringData", Value::Object(spec.data.clone()));
    body
}

/// An image pull Secret for `server`, its password kept sensitive inside the config JSON.
pub fn registry_secret(ns: &str, spec: &RegistrySecretSpec) -> Value {
    let head = convert::plain(&format!(
        "{{\"auths\":{{{}:{{\"username\":{},\"password\":\"",
        serde_json::Value::String(spec.server.clone()),
        serde_json::Value::String(spec.username.clone())
    ));
    let config = convert::concat(
        &convert::concat(&head, &spec.password),
        &convert::plain("\"}}}"),
    );
    let mut body = k8s::object("v1", "Secret", &spec.name, Some(ns));
    body.insert("type", Value::str("kubernetes.io/dockerconfigjson"));
    body.insert(
        "stringData",
        Value::obj([(".dockerconfigjson", Value::Sensitive(config))]),
    );
    body
}

/// A ConfigMap of plain strings.
pub fn config_map(ns: &str, spec: &ConfigMapSpec) -> Value {
    let mut body = k8s::object("v1", "ConfigMap", &spec.name, Some(ns));
    body.insert("data", Value::Object(spec.data.clone()));
    body
}

/// The versioned, encrypted, private bucket backups write to, with its expiration rules.
pub fn bucket(spec: &BucketSpec) -> (ResourceId, Value) {
    let settings = &spec.settings;
    let mut tags = Value::obj([
        ("app.kubernetes.io/managed-by", Value::str("cairn")),
        (
            "cairn.dev/environment",
            Value::str(spec.environment.as_str()),
        ),
    ]);
    if let Some(Value::Object(extra)) = settings.get("tags") {
        for (k, v) in extra {
            tags.insert(k.clone(), v.clone());
        }
    }
    let lifecycle = spec
        .rules
        .iter()
        .map(|(prefix, days)| {
            Value::obj([
                ("prefix", Value::str(prefix.as_str())),
                ("expiration_days", Value::Int(*days)),
                ("noncurrent_expiration_days", Value::Int(*days)),
            ])
        })
        .collect();
    let mut body = Value::obj([
        ("bucket", Value::str(spec.bucket.as_str())),
        ("versioning", Value::Bool(true)),
        ("encryption", Value::str("AES256")),
        ("block_public_access", Value::Bool(true)),
        ("lifecycle", Value::Array(lifecycle)),
        ("tags", tags),
    ]);
    for key in ["region", "endpoint", "path_style"] {
        if let Some(v) = settings.get(key) {
            body.insert(key, v.clone());
        }
    }
    let id = ResourceId::other(Provider::S3, "Bucket", None, &spec.bucket);
    (id, body)
}

/// The Namespace and, as declared, its ResourceQuota, LimitRange and isolation policies.
pub fn namespace(spec: &NamespaceSpec, env: &str) -> Vec<(ResourceId, Value)> {
    let name = spec.name.as_str();
    let mut ns = k8s::object("v1", "Namespace", name, None);
    let mut labels = Value::obj([("name", Value::str(name))]);
    for (k, v) in &spec.labels {
        labels.insert(k.clone(), Value::str(v.as_str()));
    }
    if let Value::Object(meta) = ns.get("metadata").cloned().unwrap_or_default() {
        let mut meta = Value::Object(meta);
        meta.insert("labels", labels);
        ns.insert("metadata", meta);
    }
    let mut objects = vec![(ResourceId::kube("Namespace", None, name), ns)];
    if let Some(quota) = &spec.quota {
        objects.push(resource_quota(name, quota));
    }
    if let Some(defaults) = &spec.container_defaults {
        objects.push(limit_range(name, defaults));
    }
    if let Some(isolation) = &spec.isolation {
        objects.extend(isolation_policies(name, env, isolation));
    }
    objects
}

/// The ResourceQuota `<ns>-quota`.
fn resource_quota(ns: &str, quota: &[(&'static str, String)]) -> (ResourceId, Value) {
    let mut hard = Value::object();
    for (key, value) in quota {
        hard.insert(*key, Value::str(value.as_str()));
    }
    let qname = format!("{ns}-quota");
    let mut body = k8s::object("v1", "ResourceQuota", &qname, Some(ns));
    body.insert("spec", Value::obj([("hard", hard)]));
    (ResourceId::kube("ResourceQuota", Some(ns), &qname), body)
}

/// The LimitRange `<ns>-limits`.
fn limit_range(ns: &str, defaults: &[(&'static str, Quantities)]) -> (ResourceId, Value) {
    let mut limit = Value::obj([("type", Value::str("Container"))]);
    for (field, pairs) in defaults {
        if pairs.is_empty() {
            continue;
        }
        let mut pair = Value::object();
        for (key, value) in pairs {
            pair.insert(*key, Value::str(value.as_str()));
        }
        limit.insert(*field, pair);
    }
    let lname = format!("{ns}-limits");
    let mut body = k8s::object("v1", "LimitRange", &lname, Some(ns));
    body.insert("spec", Value::obj([("limits", Value::Array(vec![limit]))]));
    (ResourceId::kube("LimitRange", Some(ns), &lname), body)
}

/// The namespace's isolation policies, and `allow-within-namespace` when asked for.
fn isolation_policies(ns: &str, env: &str, i: &IsolationSpec) -> Vec<(ResourceId, Value)> {
    let mut out: Vec<(ResourceId, Value)> = k8s::isolation_policies(
        ns,
        env,
        &i.deny_namespaces,
        &i.egress_ports,
        &i.cluster_cidrs,
    )
    .into_iter()
    .map(|(pname, body)| (ResourceId::kube("NetworkPolicy", Some(ns), &pname), body))
    .collect();
    if i.allow_within {
        // Clustered services (CockroachDB nodes, Redis replicas and Sentinels, Prometheus
        // scraping) talk among themselves inside the namespace.
        let pname = "allow-within-namespace";
        let mut p = k8s::object("networking.k8s.io/v1", "NetworkPolicy", pname, Some(ns));
        p.insert(
            "spec",
            Value::obj([
                ("podSelector", Value::object()),
                ("policyTypes", Value::from(vec!["Egress"])),
                (
                    "egress",
                    Value::Array(vec![Value::obj([(
                        "to",
                        Value::Array(vec![Value::obj([("podSelector", Value::object())])]),
                    )])]),
                ),
            ]),
        );
        out.push((ResourceId::kube("NetworkPolicy", Some(ns), pname), p));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use cairn_model::spec::workloads::{Container, EnvValue, KeyRef};

    use super::*;

    fn pod(claims: Vec<ClaimSpec>) -> PodSpec {
        PodSpec {
            name: "db".to_owned(),
            container: Container {
                name: "db".to_owned(),
                image: "postgres:17".to_owned(),
                env: vec![(
                    "PASSWORD".to_owned(),
                    EnvValue::Ref(KeyRef {
                        kind: "Secret",
                        name: "db".to_owned(),
                        key: "PASSWORD".to_owned(),
                    }),
                )],
                mounts: vec![("files-init".to_owned(), "/init".to_owned())],
                ..Container::default()
            },
            simulate: None,
            volumes: vec![PodVolume::ConfigMap {
                volume: "files-init".to_owned(),
                name: "init".to_owned(),
                optional: true,
            }],
            pull_secrets: vec!["ghcr".to_owned()],
            restart_policy: None,
            claim_templates: claims,
            sidecars: Vec::new(),
            init_containers: Vec::new(),
            annotations: Vec::new(),
            labels: Vec::new(),
            service_account: None,
        }
    }

    #[test]
    fn a_statefulset_has_its_claim_templates_and_pod_template() {
        let claim = ClaimSpec {
            name: "data".to_owned(),
            storage: "1Gi".to_owned(),
            class: None,
            access: "ReadWriteOnce".to_owned(),
        };
        let body = workload(
            "demo",
            &WorkloadKind::StatefulSet { replicas: Some(3) },
            &pod(vec![claim]),
        );
        let spec = body.get("spec").unwrap();
        assert_eq!(spec.get("serviceName"), Some(&Value::str("db")));
        assert_eq!(spec.get("replicas"), Some(&Value::Int(3)));
        let templates = spec.get("volumeClaimTemplates").unwrap().as_array();
        assert_eq!(
            templates[0].pointer(&["spec", "resources", "requests", "storage"]),
            Some(&Value::str("1Gi"))
        );
        let pod_spec = spec.pointer(&["template", "spec"]).unwrap();
        assert_eq!(
            pod_spec.pointer(&["volumes"]).unwrap().as_array()[0]
                .pointer(&["configMap", "optional"]),
            Some(&Value::Bool(true))
        );
        assert_eq!(
            pod_spec.pointer(&["imagePullSecrets"]).unwrap().as_array()[0].get("name"),
            Some(&Value::str("ghcr"))
        );
    }

    #[test]
    fn a_deployment_has_no_claim_templates() {
        let body = workload(
            "demo",
            &WorkloadKind::Deployment { replicas: Some(1) },
            &pod(Vec::new()),
        );
        assert_eq!(body.get("kind"), Some(&Value::str("Deployment")));
        assert!(body.pointer(&["spec", "volumeClaimTemplates"]).is_none());
        assert!(body.pointer(&["spec", "serviceName"]).is_none());
    }

    #[test]
    fn a_namespace_lowers_to_its_quota_limits_and_policies() {
        let spec = NamespaceSpec {
            name: "demo".to_owned(),
            labels: vec![("team".to_owned(), "data".to_owned())],
            quota: Some(vec![("requests.cpu", "4".to_owned())]),
            container_defaults: Some(vec![
                ("default", Vec::new()),
                ("max", vec![("cpu", "2".to_owned())]),
            ]),
            isolation: Some(IsolationSpec {
                deny_namespaces: Vec::new(),
                egress_ports: Vec::new(),
                cluster_cidrs: Vec::new(),
                allow_within: true,
            }),
        };
        let objects = namespace(&spec, "demo");
        let names: Vec<String> = objects.iter().map(|(id, _)| id.to_string()).collect();
        assert_eq!(names.len(), 8, "{names:?}");
        let (_, ns) = &objects[0];
        assert_eq!(
            ns.pointer(&["metadata", "labels", "team"]),
            Some(&Value::str("data"))
        );
        let (_, limits) = &objects[2];
        let limit = &limits.pointer(&["spec", "limits"]).unwrap().as_array()[0];
        assert!(limit.get("default").is_none());
        assert_eq!(limit.pointer(&["max", "cpu"]), Some(&Value::str("2")));
        assert!(
            names.last().unwrap().ends_with("allow-within-namespace"),
            "{names:?}"
        );
    }
}
