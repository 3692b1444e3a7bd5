//! The server's defaulting of the built-in kinds (what kube-apiserver v1.26 fills in on create
//! and update), and the validation the emulator performs.

use base64::Engine;
use cairn_model::JsonPath as _;
use serde_json::{Map, Value, json};

use crate::registry::ResourceType;

fn obj(v: &mut Value) -> Option<&mut Map<String, Value>> {
    v.as_object_mut()
}

fn set_default(m: &mut Map<String, Value>, k: &str, v: Value) {
    if !m.contains_key(k) || m.get(k).is_some_and(Value::is_null) {
        m.insert(k.into(), v);
    }
}

/// Context for defaults that allocate (cluster IPs).
pub trait Allocator {
    fn cluster_ip(&mut self) -> String;
    fn node_port(&mut self) -> i64;
}

pub fn apply(rt: &ResourceType, v: &mut Value, alloc: &mut dyn Allocator) {
    if rt.custom {
        return;
    }
    let name = v
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(m) = obj(v) else { return };
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => namespace(m, &name),
        ("", "Secret") => secret(m),
        ("", "PersistentVolumeClaim") => pvc(m),
        ("", "PersistentVolume") => persistent_volume(m),
        ("storage.k8s.io", "StorageClass") => {
            set_default(m, "reclaimPolicy", json!("Delete"));
            set_default(m, "volumeBindingMode", json!("Immediate"));
        }
        ("", "Service") => service(m, alloc),
        ("", "Pod") => pod(m),
        ("", "ResourceQuota") => set_default(m, "status", json!({})),
        ("networking.k8s.io", "NetworkPolicy") => network_policy(m),
        ("networking.k8s.io", "Ingress") => {
            set_default(m, "status", json!({"loadBalancer": {}}));
        }
        ("apps", "Deployment") => deployment(m),
        ("apps", "ReplicaSet") => {
            if let Some(spec) = m.get_mut("spec").and_then(obj) {
                set_default(spec, "replicas", json!(1));
                template(spec);
            }
            set_default(m, "status", json!({"replicas": 0}));
        }
        ("apps", "StatefulSet") => stateful_set(m),
        ("batch", "Job") => job(m, &name),
        ("batch", "CronJob") => cron_job(m),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(m),
        _ => {}
    }
}

fn namespace(m: &mut Map<String, Value>, name: &str) {
    if let Some(meta) = m.get_mut("metadata").and_then(obj) {
        let labels = meta.entry("labels").or_insert(json!({}));
        if let Some(l) = obj(labels) {
            l.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    let spec = m.entry("spec").or_insert(json!({}));
    if let Some(s) = obj(spec) {
        set_default(s, "finalizers", json!(["kubernetes"]));
    }
    let status = m.entry("status").or_insert(json!({}));
    if let Some(s) = obj(status) {
        set_default(s, "phase", json!("Active"));
    }
}

/// `stringData` is written into `data`, base64-encoded.
fn secret(m: &mut Map<String, Value>) {
    if let Some(Value::Object(sd)) = m.shift_remove("stringData") {
        let data = m.entry("data").or_insert(json!({}));
        if let Some(d) = obj(data) {
            for (k, val) in sd {
                let s = val.as_str().unwrap_or("").to_string();
                d.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(s)),
                );
            }
        }
    }
    set_default(m, "type", json!("Opaque"));
}

fn pod(m: &mut Map<String, Value>) {
    if let Some(spec) = m.get_mut("spec").and_then(obj) {
        pod_spec(spec);
        set_default(
            spec,
            "tolerations",
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ]),
        );
        set_default(spec, "priority", json!(0));
        set_default(spec, "enableServiceLinks", json!(true));
        set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    }
    let qos = qos_class(m.get("spec").unwrap_or(&Value::Null));
    let status = m.entry("status").or_insert(json!({}));
    if let Some(s) = obj(status) {
        set_default(s, "phase", json!("Pending"));
        set_default(s, "qosClass", json!(qos));
    }
}

fn network_policy(m: &mut Map<String, Value>) {
    if let Some(spec) = m.get_mut("spec").and_then(obj) {
        if !spec.contains_key("policyTypes") {
            let mut t = vec![json!("Ingress")];
            if spec.contains_key("egress") {
                t.push(json!("Egress"));
            }
            spec.insert("policyTypes".into(), Value::Array(t));
        }
        for dir in ["ingress", "egress"] {
            if let Some(rules) = spec.get_mut(dir).and_then(Value::as_array_mut) {
                for r in rules {
                    if let Some(ports) = r.get_mut("ports").and_then(Value::as_array_mut) {
                        for p in ports.iter_mut().filter_map(obj) {
                            set_default(p, "protocol", json!("TCP"));
                        }
                    }
                }
            }
        }
    }
    set_default(m, "status", json!({}));
}

fn deployment(m: &mut Map<String, Value>) {
    if let Some(spec) = m.get_mut("spec").and_then(obj) {
        set_default(spec, "replicas", json!(1));
        template(spec);
        set_default(
            spec,
            "strategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
        );
        if let Some(st) = spec.get_mut("strategy").and_then(obj)
            && st.get("type").and_then(Value::as_str) != Some("Recreate")
        {
            set_default(st, "type", json!("RollingUpdate"));
            let ru = st.entry("rollingUpdate").or_insert(json!({}));
            if let Some(ru) = obj(ru) {
                set_default(ru, "maxUnavailable", json!("25%"));
                set_default(ru, "maxSurge", json!("25%"));
            }
        }
        set_default(spec, "revisionHistoryLimit", json!(10));
        set_default(spec, "progressDeadlineSeconds", json!(600));
    }
    set_default(m, "status", json!({}));
}

fn stateful_set(m: &mut Map<String, Value>) {
    if let Some(spec) = m.get_mut("spec").and_then(obj) {
        set_default(spec, "replicas", json!(1));
        template(spec);
        if let Some(vcts) = spec
            .get_mut("volumeClaimTemplates")
            .and_then(Value::as_array_mut)
        {
            for t in vcts.iter_mut().filter_map(obj) {
                set_default(t, "kind", json!("PersistentVolumeClaim"));
                set_default(t, "apiVersion", json!("v1"));
                let meta = t.entry("metadata").or_insert(json!({}));
                if let Some(meta) = obj(meta) {
                    set_default(meta, "creationTimestamp", Value::Null);
                }
                pvc(t);
            }
        }
        set_default(spec, "podManagementPolicy", json!("OrderedReady"));
        set_default(
            spec,
            "updateStrategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
        );
        set_default(spec, "revisionHistoryLimit", json!(10));
    }
    set_default(m, "status", json!({"replicas": 0, "availableReplicas": 0}));
}

fn job(m: &mut Map<String, Value>, name: &str) {
    let uid = m
        .get("metadata")
        .and_then(|x| x.get("uid"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(meta) = m.get_mut("metadata").and_then(obj) {
        let a = meta.entry("annotations").or_insert(json!({}));
        if let Some(a) = obj(a) {
            set_default(a, "batch.kubernetes.io/job-tracking", json!(""));
        }
    }
    if let Some(spec) = m.get_mut("spec").and_then(obj) {
        set_default(spec, "parallelism", json!(1));
        set_default(spec, "completions", json!(1));
        set_default(spec, "backoffLimit", json!(6));
        if !spec.contains_key("selector") && !uid.is_empty() {
            job_selector(spec, &uid, name);
        }
        template(spec);
        set_default(spec, "completionMode", json!("NonIndexed"));
        set_default(spec, "suspend", json!(false));
    }
    set_default(m, "status", json!({}));
}

/// The selector a Job gets when it has none: its uid, also labelled on its template.
fn job_selector(spec: &mut Map<String, Value>, uid: &str, name: &str) {
    spec.insert(
        "selector".into(),
        json!({"matchLabels": {"controller-uid": uid}}),
    );
    let t = spec.entry("template").or_insert(json!({}));
    if let Some(t) = obj(t) {
        let meta = t.entry("metadata").or_insert(json!({}));
        if let Some(meta) = obj(meta) {
            let l = meta.entry("labels").or_insert(json!({}));
            if let Some(l) = obj(l) {
                l.insert("controller-uid".into(), json!(uid));
                l.insert("job-name".into(), json!(name));
            }
        }
    }
}

fn cron_job(m: &mut Map<String, Value>) {
    if let Some(spec) = m.get_mut("spec").and_then(obj) {
        set_default(spec, "concurrencyPolicy", json!("Allow"));
        set_default(spec, "suspend", json!(false));
        set_default(spec, "successfulJobsHistoryLimit", json!(3));
        set_default(spec, "failedJobsHistoryLimit", json!(1));
        if let Some(jt) = spec.get_mut("jobTemplate").and_then(obj) {
            let meta = jt.entry("metadata").or_insert(json!({}));
            if let Some(meta) = obj(meta) {
                set_default(meta, "creationTimestamp", Value::Null);
            }
            if let Some(js) = jt.get_mut("spec").and_then(obj) {
                template(js);
            }
        }
    }
    set_default(m, "status", json!({}));
}

fn crd(m: &mut Map<String, Value>) {
    if let Some(spec) = m.get_mut("spec").and_then(obj) {
        set_default(spec, "conversion", json!({"strategy": "None"}));
    }
    let stored: Vec<Value> = m
        .get("spec")
        .and_then(|s| s.get("versions"))
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    set_default(
        m,
        "status",
        json!({"conditions": null, "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": stored}),
    );
}

fn pvc(m: &mut Map<String, Value>) {
    if let Some(spec) = m.get_mut("spec").and_then(obj) {
        set_default(spec, "volumeMode", json!("Filesystem"));
    }
    set_default(m, "status", json!({"phase": "Pending"}));
}

/// A PersistentVolume as the server stores it (907): `Retain` unless provisioned, `Pending`
/// until the binder makes it `Available` (its pv-protection finalizer comes with its creation:
/// [`protection_finalizer`]).
fn persistent_volume(m: &mut Map<String, Value>) {
    if let Some(spec) = m.get_mut("spec").and_then(obj) {
        set_default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
        set_default(spec, "volumeMode", json!("Filesystem"));
        if let Some(hp) = spec.get_mut("hostPath").and_then(obj) {
            set_default(hp, "type", json!(""));
        }
    }

    set_default(m, "status", json!({"phase": "Pending"}));
}

fn service(m: &mut Map<String, Value>, alloc: &mut dyn Allocator) {
    let Some(spec) = m.get_mut("spec").and_then(obj) else {
        return;
    };
    set_default(spec, "type", json!("ClusterIP"));
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(obj) {
            set_default(p, "protocol", json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                set_default(p, "targetPort", port);
            }
            if (ty == "NodePort" || ty == "LoadBalancer") && !p.contains_key("nodePort") {
                p.insert("nodePort".into(), json!(alloc.node_port()));
            }
        }
    }
    if ty != "ExternalName" {
        if !spec.contains_key("clusterIP") {
            spec.insert("clusterIP".into(), json!(alloc.cluster_ip()));
        }
        if let Some(ip) = spec.get("clusterIP").cloned() {
            set_default(spec, "clusterIPs", json!([ip]));
        }
        set_default(spec, "ipFamilies", json!(["IPv4"]));
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    set_default(spec, "sessionAffinity", json!("None"));
    if ty == "NodePort" || ty == "LoadBalancer" {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    set_default(m, "status", json!({"loadBalancer": {}}));
}

/// Defaults of `spec.template` (a PodTemplateSpec).
fn template(spec: &mut Map<String, Value>) {
    let t = spec.entry("template").or_insert(json!({}));
    let Some(t) = obj(t) else { return };
    let meta = t.entry("metadata").or_insert(json!({}));
    if let Some(meta) = obj(meta) {
        set_default(meta, "creationTimestamp", Value::Null);
    }
    if let Some(ps) = t.get_mut("spec").and_then(obj) {
        pod_spec(ps);
    }
}

/// `Always` for `:latest` or no tag, else `IfNotPresent`.
pub fn image_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

pub fn pod_spec(ps: &mut Map<String, Value>) {
    for list in ["initContainers", "containers"] {
        if let Some(cs) = ps.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter_map(obj) {
                container(c);
            }
        }
    }
    set_default(ps, "restartPolicy", json!("Always"));
    set_default(ps, "terminationGracePeriodSeconds", json!(30));
    set_default(ps, "dnsPolicy", json!("ClusterFirst"));
    if let Some(sa) = ps.get("serviceAccountName").cloned() {
        set_default(ps, "serviceAccount", sa);
    }
    set_default(ps, "securityContext", json!({}));
    set_default(ps, "schedulerName", json!("default-scheduler"));
    if let Some(vols) = ps.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in vols.iter_mut().filter_map(obj) {
            for k in ["secret", "configMap"] {
                if let Some(s) = v.get_mut(k).and_then(obj) {
                    set_default(s, "defaultMode", json!(420));
                }
            }
            if let Some(p) = v.get_mut("projected").and_then(obj) {
                set_default(p, "defaultMode", json!(420));
            }
        }
    }
}

fn container(c: &mut Map<String, Value>) {
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(obj) {
            set_default(p, "protocol", json!("TCP"));
        }
    }
    if let Some(env) = c.get_mut("env").and_then(Value::as_array_mut) {
        for e in env.iter_mut().filter_map(obj) {
            if let Some(fr) = e
                .get_mut("valueFrom")
                .and_then(obj)
                .and_then(|vf| vf.get_mut("fieldRef"))
                .and_then(obj)
            {
                set_default(fr, "apiVersion", json!("v1"));
            }
        }
    }
    set_default(c, "resources", json!({}));
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(obj) {
            set_default(p, "timeoutSeconds", json!(1));
            set_default(p, "periodSeconds", json!(10));
            set_default(p, "successThreshold", json!(1));
            set_default(p, "failureThreshold", json!(3));
            if let Some(h) = p.get_mut("httpGet").and_then(obj) {
                set_default(h, "scheme", json!("HTTP"));
            }
        }
    }
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    set_default(c, "imagePullPolicy", json!(image_pull_policy(&image)));
}

/// Guaranteed / Burstable / BestEffort.
pub fn qos_class(spec: &Value) -> &'static str {
    let cs: Vec<&Value> = spec
        .get("containers")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut any = false;
    let mut guaranteed = true;
    for c in &cs {
        let req = c.at("/resources/requests").and_then(Value::as_object);
        let lim = c.at("/resources/limits").and_then(Value::as_object);
        if req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for r in ["cpu", "memory"] {
            let l = lim.and_then(|l| l.get(r));
            let q = req.and_then(|q| q.get(r)).or(l);
            if l.is_none() || q != l {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_label)
}

pub type Cause = (String, String, String);

/// Validation of the built-in kinds (the part the emulator knows).
pub fn validate(rt: &ResourceType, v: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let name = v.at("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let label_only = matches!(rt.kind.as_str(), "Namespace" | "Service");
    let ok = if label_only {
        is_label(name)
    } else {
        is_subdomain(name)
    };
    if !ok {
        let msg = if label_only { LABEL_MSG } else { SUBDOMAIN_MSG };
        out.push((
            "FieldValueInvalid".into(),
            format!("Invalid value: \"{name}\": {msg}"),
            "metadata.name".into(),
        ));
    }
    if rt.custom {
        return out;
    }
    // Container resources.
    let templates: &[&str] = match rt.kind.as_str() {
        "Pod" => &["/spec"],
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => {
            &["/spec/template/spec"]
        }
        "CronJob" => &["/spec/jobTemplate/spec/template/spec"],
        _ => &[],
    };
    for t in templates {
        let Some(spec) = v.at(t) else { continue };
        let prefix = t.trim_start_matches('/').replace('/', ".");
        for list in ["initContainers", "containers"] {
            let Some(cs) = spec.get(list).and_then(Value::as_array) else {
                continue;
            };
            for (i, c) in cs.iter().enumerate() {
                resources(c, &format!("{prefix}.{list}[{i}].resources"), &mut out);
            }
        }
    }
    if rt.kind == "CronJob"
        && let Some(s) = v.at("/spec/schedule").and_then(Value::as_str)
        && let Some(msg) = schedule_error(s)
    {
        out.push((
            "FieldValueInvalid".into(),
            format!("Invalid value: \"{s}\": {msg}"),
            "spec.schedule".into(),
        ));
    }
    out
}

fn resources(c: &Value, path: &str, out: &mut Vec<Cause>) {
    use cairn_model::validate::Quantity;
    let get = |k: &str| c.at(&format!("/resources/{k}")).and_then(Value::as_object);
    for k in ["limits", "requests"] {
        if let Some(m) = get(k) {
            for (r, q) in m {
                let s = q.as_str().unwrap_or("");
                if Quantity::parse(s).is_ok_and(|q| q.millis() < 0) {
                    out.push((
                        "FieldValueInvalid".into(),
                        format!("Invalid value: \"{s}\": must be greater than or equal to 0"),
                        format!("{path}.{k}[{r}]"),
                    ));
                }
            }
        }
    }
    if let (Some(req), Some(lim)) = (get("requests"), get("limits")) {
        for (r, q) in req {
            let Some(l) = lim.get(r) else { continue };
            let (Ok(qq), Ok(ll)) = (
                Quantity::parse(q.as_str().unwrap_or("")),
                Quantity::parse(l.as_str().unwrap_or("")),
            ) else {
                continue;
            };
            if qq > ll {
                out.push((
                    "FieldValueInvalid".into(),
                    format!(
                        "Invalid value: \"{}\": must be less than or equal to {r} limit",
                        q.as_str().unwrap_or("")
                    ),
                    format!("{path}.requests"),
                ));
            }
        }
    }
}

/// The robfig/cron message for a bad schedule.
fn schedule_error(s: &str) -> Option<String> {
    if cairn_model::validate::cron_schedule(s).is_ok() {
        return None;
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    let bounds = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)];
    if fields.len() == 5 {
        for (f, (lo, hi)) in fields.iter().zip(bounds) {
            for part in f.split(',') {
                let range = part.split('/').next().unwrap_or("");
                let mut ends = range.split('-');
                let start = ends.next().and_then(|x| x.parse::<i64>().ok());
                let end = ends.next().and_then(|x| x.parse::<i64>().ok()).or(start);
                if let (Some(a), Some(b)) = (start, end) {
                    if a < lo {
                        return Some(format!(
                            "beginning of range ({a}) below minimum ({lo}): {part}"
                        ));
                    }
                    if b > hi {
                        return Some(format!("end of range ({b}) above maximum ({hi}): {part}"));
                    }
                }
            }
        }
        return Some(format!("failed to parse schedule: {s}"));
    }
    Some(format!(
        "expected exactly 5 fields, found {}: {s}",
        fields.len()
    ))
}

/// The finalizer the storage-protection admission plugins put on a new claim
/// (`kubernetes.io/pvc-protection`) or volume (`kubernetes.io/pv-protection`): on creation
/// only, so that one taken away stays away, as on a real server.
pub fn protection_finalizer(rt: &ResourceType, v: &mut Value) {
    let finalizer = match (rt.custom, rt.group.as_str(), rt.kind.as_str()) {
        (false, "", "PersistentVolumeClaim") => "kubernetes.io/pvc-protection",
        (false, "", "PersistentVolume") => "kubernetes.io/pv-protection",
        _ => return,
    };
    let Some(meta) = v.get_mut("metadata").and_then(obj) else {
        return;
    };
    let f = meta.entry("finalizers").or_insert(json!([]));
    if let Some(a) = f.as_array_mut()
        && !a.contains(&json!(finalizer))
    {
        a.push(json!(finalizer));
    }
}

/// The Service registry's `patchAllocatedValues`: an update that leaves out what the server
/// allocated (a PUT of the script's own Service) keeps the cluster IPs and, by port name, the
/// node ports, rather than getting new ones.
pub fn keep_allocated(old: &Value, new: &mut Value) {
    let kind = |v: &Value| {
        v.at("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_owned()
    };
    let (old_type, new_type) = (kind(old), kind(new));
    let Some(spec) = new.get_mut("spec").and_then(obj) else {
        return;
    };
    if old_type != "ExternalName" && new_type != "ExternalName" {
        keep_cluster_ips(old, spec);
    }
    let node_ports = |t: &str| t == "NodePort" || t == "LoadBalancer";
    if node_ports(&old_type) && node_ports(&new_type) {
        keep_node_ports(old, spec);
    }
}

/// The cluster IPs of the old Service, where the new spec leaves them empty.
fn keep_cluster_ips(old: &Value, spec: &mut Map<String, Value>) {
    let empty = |v: Option<&Value>| v.is_none_or(|v| v.is_null() || *v == json!(""));
    if empty(spec.get("clusterIP"))
        && let Some(ip) = old.at("/spec/clusterIP")
    {
        spec.insert("clusterIP".into(), ip.clone());
    }
    let no_ips = spec
        .get("clusterIPs")
        .is_none_or(|v| v.as_array().is_none_or(Vec::is_empty));
    if no_ips && let Some(ips) = old.at("/spec/clusterIPs") {
        spec.insert("clusterIPs".into(), ips.clone());
    }
}

/// The node port of the old port of the same name, for each new port without one (unless
/// another port of the new spec took it).
fn keep_node_ports(old: &Value, spec: &mut Map<String, Value>) {
    let before: Vec<(String, i64)> = old
        .at("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            let port = p.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
            (name.to_owned(), port)
        })
        .collect();
    let in_use: Vec<i64> = spec
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
        .filter(|p| before.iter().any(|(_, b)| b == p))
        .collect();
    for p in spec
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let Some(p) = p.as_object_mut() else { continue };
        if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
            continue;
        }
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if let Some((_, old_port)) = before.iter().find(|(n, _)| *n == name)
            && *old_port != 0
            && !in_use.contains(old_port)
        {
            p.insert("nodePort".into(), json!(old_port));
        }
    }
}
