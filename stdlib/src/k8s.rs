//! Kubernetes manifests as model values: metadata, containers, pod templates, and the
//! network policies derived from what the script declared.

use cairn_model::{ResourceId, Value};

use crate::builder::Builder;
use crate::types::{EnvValue, Workload};

/// Label every object cairn manages carries.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label naming the environment an object belongs to.
pub const ENVIRONMENT: &str = "cairn.dev/environment";
/// Label selecting a workload's pods.
pub const NAME: &str = "app.kubernetes.io/name";

/// `apiVersion`, `kind` and `metadata` of an object.
pub fn object(api_version: &str, kind: &str, name: &str, namespace: Option<&str>) -> Value {
    let mut metadata = Value::obj([("name", Value::str(name))]);
    if let Some(ns) = namespace {
        metadata.insert("namespace", Value::str(ns));
    }
    Value::obj([
        ("apiVersion", Value::str(api_version)),
        ("kind", Value::str(kind)),
        ("metadata", metadata),
    ])
}

/// Adds cairn's labels to an object and to the pod templates inside it.
pub fn stamp(body: &mut Value, env: &str) {
    fn label(target: &mut Value, path: &[&str], env: &str, managed: bool) {
        let Value::Object(map) = target else { return };
        let Some((first, rest)) = path.split_first() else {
            if managed {
                map.insert(MANAGED_BY.into(), Value::str("cairn"));
            }
            map.insert(ENVIRONMENT.into(), Value::str(env));
            return;
        };
        let next = map.entry((*first).to_owned()).or_insert_with(Value::object);
        label(next, rest, env, managed);
    }
    label(body, &["metadata", "labels"], env, true);
    let templates: &[&[&str]] = &[
        &["spec", "template", "metadata", "labels"],
        &[
            "spec",
            "jobTemplate",
            "spec",
            "template",
            "metadata",
            "labels",
        ],
    ];
    for path in templates {
        let parent = &path[..path.len() - 3];
        if body
            .pointer(parent)
            .is_some_and(|v| v.get(path[path.len() - 3]).is_some())
        {
            label(body, path, env, false);
        }
    }
}

pub use cairn_model::spec::workloads::{Container, Resources};

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| Value::str(s.as_str())).collect())
}

/// The container's manifest.
pub fn container(c: &Container) -> Value {
    let mut out = Value::obj([
        ("name", Value::str(c.name.as_str())),
        ("image", Value::str(c.image.as_str())),
    ]);
    if !c.command.is_empty() {
        out.insert("command", strings(&c.command));
    }
    if !c.args.is_empty() {
        out.insert("args", strings(&c.args));
    }
    if !c.ports.is_empty() {
        out.insert("ports", container_ports(&c.ports));
    }
    if !c.env.is_empty() {
        out.insert(
            "env",
            Value::Array(c.env.iter().map(|(n, v)| env_var(n, v)).collect()),
        );
    }
    if let Some(resources) = resources(&c.resources) {
        out.insert("resources", resources);
    }
    if let Some(p) = &c.readiness {
        out.insert("readinessProbe", p.clone());
    }
    if let Some(p) = &c.liveness {
        out.insert("livenessProbe", p.clone());
    }
    if !c.mounts.is_empty() {
        out.insert("volumeMounts", volume_mounts(&c.mounts));
    }
    out
}

/// A container's `ports`.
fn container_ports(ports: &[(String, i64)]) -> Value {
    Value::Array(
        ports
            .iter()
            .map(|(name, port)| {
                Value::obj([
                    ("name", Value::str(name.as_str())),
                    ("containerPort", Value::Int(*port)),
                    ("protocol", Value::str("TCP")),
                ])
            })
            .collect(),
    )
}

/// One entry of a container's `env`.
fn env_var(name: &str, value: &EnvValue) -> Value {
    match value {
        EnvValue::Plain(v) => Value::obj([
            ("name", Value::str(name)),
            ("value", Value::str(v.as_str())),
        ]),
        EnvValue::Ref(r) => {
            let source = if r.kind == "Secret" {
                "secretKeyRef"
            } else {
                "configMapKeyRef"
            };
            Value::obj([
                ("name", Value::str(name)),
                (
                    "valueFrom",
                    Value::obj([(
                        source,
                        Value::obj([
                            ("name", Value::str(r.name.as_str())),
                            ("key", Value::str(r.key.as_str())),
                        ]),
                    )]),
                ),
            ])
        }
    }
}

/// A container's `resources`, if it has any requests or limits.
fn resources(r: &Resources) -> Option<Value> {
    let pairs = |cpu: &Option<String>, memory: &Option<String>| {
        let mut m = Value::object();
        if let Some(cpu) = cpu {
            m.insert("cpu", Value::str(cpu.as_str()));
        }
        if let Some(memory) = memory {
            m.insert("memory", Value::str(memory.as_str()));
        }
        m
    };
    let requests = pairs(&r.request_cpu, &r.request_memory);
    let limits = pairs(&r.limit_cpu, &r.limit_memory);
    let mut resources = Value::object();
    if requests.as_object().is_some_and(|m| !m.is_empty()) {
        resources.insert("requests", requests);
    }
    if limits.as_object().is_some_and(|m| !m.is_empty()) {
        resources.insert("limits", limits);
    }
    resources
        .as_object()
        .is_some_and(|m| !m.is_empty())
        .then_some(resources)
}

/// A container's `volumeMounts`.
fn volume_mounts(mounts: &[(String, String)]) -> Value {
    Value::Array(
        mounts
            .iter()
            .map(|(name, path)| {
                Value::obj([
                    ("name", Value::str(name.as_str())),
                    ("mountPath", Value::str(path.as_str())),
                ])
            })
            .collect(),
    )
}

/// The labels that select a workload's pods: its name, or what its operator labels them with.
fn pods_of(w: &crate::types::Workload) -> Value {
    match &w.pods {
        Some(labels) => Value::Object(
            labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::str(v.as_str())))
                .collect(),
        ),
        None => selector(&w.name),
    }
}

/// Selector labels of a workload's pods.
pub fn selector(name: &str) -> Value {
    Value::obj([(NAME, Value::str(name))])
}

/// A pod template.
pub fn pod_template(
    name: &str,
    containers: Vec<Value>,
    volumes: Vec<Value>,
    pull_secrets: &[String],
    restart_policy: Option<&str>,
) -> Value {
    let mut spec = Value::obj([("containers", Value::Array(containers))]);
    if !volumes.is_empty() {
        spec.insert("volumes", Value::Array(volumes));
    }
    if !pull_secrets.is_empty() {
        spec.insert(
            "imagePullSecrets",
            Value::Array(
                pull_secrets
                    .iter()
                    .map(|s| Value::obj([("name", Value::str(s.as_str()))]))
                    .collect(),
            ),
        );
    }
    if let Some(policy) = restart_policy {
        spec.insert("restartPolicy", Value::str(policy));
    }
    Value::obj([
        ("metadata", Value::obj([("labels", selector(name))])),
        ("spec", spec),
    ])
}

fn policy(name: &str, ns: &str, pod_selector: Value, types: &[&str]) -> Value {
    let mut body = object("networking.k8s.io/v1", "NetworkPolicy", name, Some(ns));
    body.insert(
        "spec",
        Value::obj([
            ("podSelector", pod_selector),
            (
                "policyTypes",
                Value::Array(types.iter().map(|t| Value::str(*t)).collect()),
            ),
        ]),
    );
    body
}

fn ports_of(ports: &[i64]) -> Value {
    Value::Array(
        ports
            .iter()
            .map(|p| Value::obj([("protocol", Value::str("TCP")), ("port", Value::Int(*p))]))
            .collect(),
    )
}

fn match_labels(labels: Value) -> Value {
    Value::obj([("matchLabels", labels)])
}

fn namespace_peer(name: &str) -> Value {
    Value::obj([(
        "namespaceSelector",
        match_labels(Value::obj([(
            "kubernetes.io/metadata.name",
            Value::str(name),
        )])),
    )])
}

/// Isolation policies of a namespace: default deny both ways, a block of other environments'
/// namespaces, DNS, and HTTPS egress to addresses outside the cluster.
pub fn isolation_policies(
    ns: &str,
    env: &str,
    deny_namespaces: &[String],
    egress_ports: &[i64],
    cluster_cidrs: &[String],
) -> Vec<(String, Value)> {
    let all = Value::object;
    let mut out = vec![
        (
            "default-deny-all-ingress".to_owned(),
            policy("default-deny-all-ingress", ns, all(), &["Ingress"]),
        ),
        (
            "default-deny-all-egress".to_owned(),
            policy("default-deny-all-egress", ns, all(), &["Egress"]),
        ),
    ];
    out.push(same_environment_policy(ns, env, deny_namespaces));
    out.push(("allow-dns".to_owned(), dns_policy(ns)));
    if !egress_ports.is_empty() {
        out.push((
            "allow-internet".to_owned(),
            internet_policy(ns, egress_ports, cluster_cidrs),
        ));
    }
    out
}

/// Pods of this environment may reach each other, from no namespace it must not talk to.
fn same_environment_policy(ns: &str, env: &str, deny_namespaces: &[String]) -> (String, Value) {
    let name = if deny_namespaces.is_empty() {
        "allow-same-environment".to_owned()
    } else {
        format!("block-{}", deny_namespaces.join("-"))
    };
    let mut p = policy(&name, ns, Value::object(), &["Ingress"]);
    let (operator, values) = if deny_namespaces.is_empty() {
        ("In", Value::from(vec![ns]))
    } else {
        ("NotIn", Value::from(deny_namespaces.to_vec()))
    };
    let from = Value::obj([
        (
            "namespaceSelector",
            Value::obj([(
                "matchExpressions",
                Value::Array(vec![Value::obj([
                    ("key", Value::str("kubernetes.io/metadata.name")),
                    ("operator", Value::str(operator)),
                    ("values", values),
                ])]),
            )]),
        ),
        (
            "podSelector",
            match_labels(Value::obj([(ENVIRONMENT, Value::str(env))])),
        ),
    ]);
    if let Value::Object(spec) = p.get("spec").cloned().unwrap_or_default() {
        let mut spec = Value::Object(spec);
        spec.insert(
            "ingress",
            Value::Array(vec![Value::obj([("from", Value::Array(vec![from]))])]),
        );
        p.insert("spec", spec);
    }
    (name, p)
}

/// Egress to the cluster's DNS in kube-system.
fn dns_policy(ns: &str) -> Value {
    let mut dns = policy("allow-dns", ns, Value::object(), &["Egress"]);
    let mut spec = dns.get("spec").cloned().unwrap_or_default();
    spec.insert(
        "egress",
        Value::Array(vec![Value::obj([
            ("to", Value::Array(vec![namespace_peer("kube-system")])),
            (
                "ports",
                Value::Array(vec![
                    Value::obj([("protocol", Value::str("UDP")), ("port", Value::Int(53))]),
                    Value::obj([("protocol", Value::str("TCP")), ("port", Value::Int(53))]),
                ]),
            ),
        ])]),
    );
    dns.insert("spec", spec);
    dns
}

/// Egress to `egress_ports` anywhere outside the cluster's networks.
fn internet_policy(ns: &str, egress_ports: &[i64], cluster_cidrs: &[String]) -> Value {
    let mut internet = policy("allow-internet", ns, Value::object(), &["Egress"]);
    let mut spec = internet.get("spec").cloned().unwrap_or_default();
    let mut block = Value::obj([("cidr", Value::str("0.0.0.0/0"))]);
    if !cluster_cidrs.is_empty() {
        block.insert("except", Value::from(cluster_cidrs.to_vec()));
    }
    spec.insert(
        "egress",
        Value::Array(vec![Value::obj([
            ("to", Value::Array(vec![Value::obj([("ipBlock", block)])])),
            ("ports", ports_of(egress_ports)),
        ])]),
    );
    internet.insert("spec", spec);
    internet
}

/// Whether the namespace's pods are isolated: its default-deny policies are declared, or
/// another environment owns it (and may isolate it).
fn isolated(b: &Builder, ns: &str) -> bool {
    let denied = b.resources.iter().any(|r| {
        r.id.kind == "NetworkPolicy"
            && r.id.scope.as_deref() == Some(ns)
            && r.id.name.starts_with("default-deny-all-")
    });
    denied || b.env.as_ref().is_some_and(|e| e.namespace_owner.is_some())
}

/// `allow-<name>-to-deps`: egress of a workload's pods to the pods it connects to.
fn egress_policy(policy_name: &str, ns: &str, name: &str, peers: &[Workload]) -> Value {
    let mut p = policy(policy_name, ns, match_labels(selector(name)), &["Egress"]);
    let mut egress = Vec::new();
    for peer in peers {
        let ports: Vec<i64> = peer.ports.iter().map(|(_, p)| *p).collect();
        egress.push(Value::obj([
            (
                "to",
                Value::Array(vec![Value::obj([(
                    "podSelector",
                    match_labels(pods_of(peer)),
                )])]),
            ),
            ("ports", ports_of(&ports)),
        ]));
    }
    let mut spec = p.get("spec").cloned().unwrap_or_default();
    spec.insert("egress", Value::Array(egress));
    p.insert("spec", spec);
    p
}

/// `allow-<prober>-probes`: egress of a prober's pods alone (a blackbox exporter) to TCP 443
/// outside the cluster's networks, where the routes' public names resolve.
fn probe_policy(policy_name: &str, ns: &str, prober: &Workload, cluster_cidrs: &[String]) -> Value {
    let mut p = policy(policy_name, ns, match_labels(pods_of(prober)), &["Egress"]);
    let mut block = Value::obj([("cidr", Value::str("0.0.0.0/0"))]);
    if !cluster_cidrs.is_empty() {
        block.insert("except", Value::from(cluster_cidrs.to_vec()));
    }
    let mut spec = p.get("spec").cloned().unwrap_or_default();
    spec.insert(
        "egress",
        Value::Array(vec![Value::obj([
            ("to", Value::Array(vec![Value::obj([("ipBlock", block)])])),
            ("ports", ports_of(&[443])),
        ])]),
    );
    p.insert("spec", spec);
    p
}

/// `allow-ingress-to-<name>`: the ingress controller's namespace to a routed workload's port.
fn ingress_policy(policy_name: &str, ns: &str, name: &str, port: i64, from_ns: &str) -> Value {
    let mut p = policy(policy_name, ns, match_labels(selector(name)), &["Ingress"]);
    let mut spec = p.get("spec").cloned().unwrap_or_default();
    spec.insert(
        "ingress",
        Value::Array(vec![Value::obj([
            ("from", Value::Array(vec![namespace_peer(from_ns)])),
            ("ports", ports_of(&[port])),
        ])]),
    );
    p.insert("spec", spec);
    p
}

/// Network policies that follow from the script: each workload may reach the backing services
/// whose settings it uses (and the peers plugins and `env.allow` declare), and the ingress
/// controller may reach each routed workload.
///
/// Only in an isolated namespace (or one another environment owns): elsewhere nothing is
/// blocked, and a policy selecting a pod would isolate it (its DNS and every other connection
/// closed but the ones listed).
pub fn derive_network_policies(b: &mut Builder) {
    let Some(ns) = b.env.as_ref().and_then(|e| e.namespace.clone()) else {
        return;
    };
    if !isolated(b, &ns) {
        return;
    }
    let mut derived = Vec::new();
    for (name, (_, peers)) in &b.peers {
        let policy_name = format!("allow-{name}-to-deps");
        let p = egress_policy(&policy_name, &ns, name, peers);
        derived.push((policy_name, p));
    }
    for (name, (_, port)) in &b.exposed {
        let policy_name = format!("allow-ingress-to-{name}");
        let p = ingress_policy(&policy_name, &ns, name, *port, &b.ingress_namespace);
        derived.push((policy_name, p));
    }
    if !crate::hosts::tls_hosts(&b.resources).is_empty() {
        for (prober, _) in &b.probers {
            let policy_name = format!("allow-{}-probes", prober.name);
            let p = probe_policy(&policy_name, &ns, prober, &b.cluster_cidrs);
            derived.push((policy_name, p));
        }
    }
    let ns_id = ResourceId::kube("Namespace", None, &ns);
    for (name, body) in derived {
        let id = ResourceId::kube("NetworkPolicy", Some(&ns), &name);
        b.add(id, body, vec![ns_id.clone()], false, None);
    }
}
