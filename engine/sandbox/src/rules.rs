//! What the API server refuses on an update (and on the create-time checks that a server-side
//! apply can trip over): the immutable fields and update validation of every built-in kind
//! cairn writes, with the field paths, error types and messages of Kubernetes' own validation
//! (`pkg/apis/{core,apps,batch,rbac,storage}/validation/validation.go`, the registry strategies,
//! `apiextensions-apiserver/pkg/apis/apiextensions/validation`), v1.26. A dry run is checked
//! exactly like the write. Recordings 900–923 hold examples.
//!
//! Values in `Invalid value: …` are printed the way Go's `%#v` prints the internal types for
//! the simple cases (strings, numbers, string lists, label selectors, role references); for
//! whole structs (a pod template, a claim's spec) the text is Go-like but not byte-identical
//! (the real one holds pointer addresses): clients must read `field` and the rule after it.

use cairn_model::JsonPath as _;
use serde_json::{Map, Value};

use crate::defaults::Cause;
use crate::registry::ResourceType;

/// `field is immutable`, apimachinery's `FieldImmutableErrorMsg`.
pub const IMMUTABLE: &str = "field is immutable";
const WHEN_IMMUTABLE: &str = "field is immutable when `immutable` is set";
const POD_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";
const STS_FORBIDDEN: &str = "updates to statefulset spec for fields other than 'replicas', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";
const PVC_IMMUTABLE: &str =
    "spec is immutable after creation except resources.requests for bound claims";

fn invalid(field: &str, value: &str, detail: &str) -> Cause {
    (
        "FieldValueInvalid".into(),
        format!("Invalid value: {value}: {detail}"),
        field.into(),
    )
}

fn forbidden(field: &str, detail: &str) -> Cause {
    (
        "FieldValueForbidden".into(),
        format!("Forbidden: {detail}"),
        field.into(),
    )
}

fn at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    v.at(pointer).filter(|x| !x.is_null())
}

fn same(old: &Value, new: &Value, pointer: &str) -> bool {
    at(old, pointer) == at(new, pointer)
}

/// Go's `%q` of a string (JSON's escaping is the same for what names and values hold).
fn quoted(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// A JSON value as a field error prints the field's internal type: apimachinery's
/// `ErrorBody` dereferences pointers and prints a nil one as `"null"`.
fn go(v: Option<&Value>, ty: &str) -> String {
    match v {
        None => NIL.to_owned(),
        Some(Value::String(s)) => quoted(s),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            let items: Vec<String> = a.iter().filter_map(Value::as_str).map(quoted).collect();
            format!("{ty}{{{}}}", items.join(", "))
        }
        Some(other) => go_struct(ty, other),
    }
}

/// A nil pointer in a field error.
const NIL: &str = "\"null\"";

/// A pointer to a struct in a field error: the struct, or [`NIL`].
fn go_pointer(ty: &str, v: Option<&Value>) -> String {
    v.map_or_else(|| NIL.to_owned(), |v| go_struct(ty, v))
}

fn string_map(m: Option<&Value>) -> String {
    match m.and_then(Value::as_object) {
        None => "map[string]string(nil)".to_owned(),
        Some(m) => {
            let mut pairs: Vec<(&String, &Value)> = m.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            let items: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}:{}", quoted(k), quoted(v.as_str().unwrap_or(""))))
                .collect();
            format!("map[string]string{{{}}}", items.join(", "))
        }
    }
}

/// `v1.LabelSelector{MatchLabels:map[string]string{…}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}` (916).
fn label_selector(v: Option<&Value>) -> String {
    let Some(v) = v else { return NIL.into() };
    let exprs = match v.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_owned(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|e| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        quoted(e.get("key").and_then(Value::as_str).unwrap_or("")),
                        quoted(e.get("operator").and_then(Value::as_str).unwrap_or("")),
                        go(e.get("values"), "[]string")
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{exprs}}}",
        string_map(v.get("matchLabels"))
    )
}

/// A Go-like dump of a struct: `Type{Field:value, …}` with exported field names.
fn go_struct(ty: &str, v: &Value) -> String {
    fn field_name(k: &str) -> String {
        let mut c = k.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    }
    fn inner(v: &Value) -> String {
        match v {
            Value::Object(m) => {
                let items: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{}:{}", field_name(k), inner(v)))
                    .collect();
                format!("{{{}}}", items.join(", "))
            }
            Value::Array(a) => {
                let items: Vec<String> = a.iter().map(inner).collect();
                format!("[]{{{}}}", items.join(", "))
            }
            Value::String(s) => quoted(s),
            other => other.to_string(),
        }
    }
    format!("{ty}{}", inner(v))
}

/// Everything the server refuses about `new` replacing `old` (both after defaulting).
pub fn update(rt: &ResourceType, old: &Value, new: &Value) -> Vec<Cause> {
    if rt.custom {
        let mut out = Vec::new();
        crate::schema::transition(&rt.schema.arena, rt.schema.idx, old, new, "", &mut out);
        return out;
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "ConfigMap") => immutable_data(old, new, &["data", "binaryData"]),
        ("", "Secret") => secret(old, new),
        ("", "Service") => service(old, new),
        ("", "PersistentVolumeClaim") => claim(old, new),
        ("", "PersistentVolume") => volume(old, new),
        ("", "ResourceQuota") => quota(old, new),
        ("", "Pod") => pod(old, new),
        ("storage.k8s.io", "StorageClass") => storage_class(old, new),
        ("apps", "Deployment" | "DaemonSet" | "ReplicaSet") => selector(old, new),
        ("apps", "StatefulSet") => stateful_set(old, new),
        ("batch", "Job") => job(old, new),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => role_ref(old, new),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(old, new),
        _ => Vec::new(),
    }
}

/// Checks of one object on its own that a merged server-side apply can fail (917: a defaulted
/// `rollingUpdate` kept beside `type: Recreate`), on create and update alike.
pub fn object(rt: &ResourceType, v: &Value) -> Vec<Cause> {
    if !rt.custom && rt.group == "autoscaling" && rt.kind == "HorizontalPodAutoscaler" {
        return crate::rules_hpa::autoscaler(v);
    }
    if rt.custom || rt.group != "apps" {
        return Vec::new();
    }
    let mut out = Vec::new();
    if rt.kind == "Deployment"
        && at(v, "/spec/strategy/type").and_then(Value::as_str) == Some("Recreate")
        && at(v, "/spec/strategy/rollingUpdate").is_some()
    {
        out.push(forbidden(
            "spec.strategy.rollingUpdate",
            "may not be specified when strategy `type` is 'Recreate'",
        ));
    }
    // `ValidateStatefulSetSpec`: a defaulted `rollingUpdate` kept beside `type: OnDelete`.
    if rt.kind == "StatefulSet"
        && at(v, "/spec/updateStrategy/type").and_then(Value::as_str) == Some("OnDelete")
        && let Some(rolling) = at(v, "/spec/updateStrategy/rollingUpdate")
    {
        let partition = rolling
            .get("partition")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let value = format!(
            "apps.RollingUpdateStatefulSetStrategy{{Partition:{partition}, MaxUnavailable:(*intstr.IntOrString)(nil)}}"
        );
        out.push(invalid(
            "spec.updateStrategy.rollingUpdate",
            &value,
            "only allowed for updateStrategy 'RollingUpdate'",
        ));
    }
    if let Some(labels) = selector_mismatch(v) {
        out.push(invalid(
            "spec.template.metadata.labels",
            &labels,
            "`selector` does not match template `labels`",
        ));
    }
    out
}

/// The template's labels when the workload's `matchLabels` are not all among them.
fn selector_mismatch(v: &Value) -> Option<String> {
    let wanted = at(v, "/spec/selector/matchLabels")?.as_object()?;
    let labels = at(v, "/spec/template/metadata/labels");
    let have = labels.and_then(Value::as_object);
    let ok = wanted
        .iter()
        .all(|(k, val)| have.and_then(|h| h.get(k)) == Some(val));
    (!ok).then(|| string_map(labels))
}

fn immutable_data(old: &Value, new: &Value, fields: &[&str]) -> Vec<Cause> {
    let mut out = Vec::new();
    if at(old, "/immutable").and_then(Value::as_bool) != Some(true) {
        return out;
    }
    if at(new, "/immutable").and_then(Value::as_bool) != Some(true) {
        out.push(forbidden("immutable", WHEN_IMMUTABLE));
    }
    for f in fields {
        let p = format!("/{f}");
        if !same(old, new, &p) {
            out.push(forbidden(f, WHEN_IMMUTABLE));
        }
    }
    out
}

fn secret(old: &Value, new: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    if !same(old, new, "/type") {
        out.push(invalid("type", &go(at(new, "/type"), ""), IMMUTABLE));
    }
    out.extend(immutable_data(old, new, &["data"]));
    out
}

fn service(old: &Value, new: &Value) -> Vec<Cause> {
    let external = |v: &Value| at(v, "/spec/type").and_then(Value::as_str) == Some("ExternalName");
    if external(old) || external(new) {
        return Vec::new();
    }
    // The registry first lines `clusterIPs` up with a changed `clusterIP`
    // (`normalizeClusterIPs`), then validation refuses any change of a set address.
    let old_ips = at(old, "/spec/clusterIPs").and_then(Value::as_array);
    let mut new_ips = at(new, "/spec/clusterIPs")
        .and_then(Value::as_array)
        .cloned();
    if !same(old, new, "/spec/clusterIP")
        && new_ips.as_ref() == old_ips
        && let Some(ip) = at(new, "/spec/clusterIP")
    {
        new_ips = Some(vec![ip.clone()]);
    }
    let mut out = Vec::new();
    let (Some(old_ips), Some(new_ips)) = (old_ips, new_ips) else {
        return out;
    };
    for (i, ip) in old_ips.iter().enumerate() {
        if new_ips.get(i).is_some_and(|n| n != ip) {
            let value = go(Some(&Value::Array(new_ips.clone())), "[]string");
            out.push(invalid(
                &format!("spec.clusterIPs[{i}]"),
                &value,
                "may not change once set",
            ));
        }
    }
    out
}

/// A claim: its spec is fixed at creation but for `volumeName` (set once, by the binder) and,
/// on a bound claim, the storage request, which may only grow.
fn claim(old: &Value, new: &Value) -> Vec<Cause> {
    let mut old_spec = at(old, "/spec").cloned().unwrap_or(Value::Null);
    let mut new_spec = at(new, "/spec").cloned().unwrap_or(Value::Null);
    // The status is the stored one (the registry puts it back before validating).
    let bound = at(old, "/status/phase").and_then(Value::as_str) == Some("Bound");
    // RetroactiveDefaultStorageClass (beta, on in 1.26): a claim without a class may get one.
    let beta_class = at(
        old,
        "/metadata/annotations/volume.beta.kubernetes.io~1storage-class",
    );
    if at(&old_spec, "/storageClassName").is_none()
        && beta_class.is_none()
        && at(&new_spec, "/storageClassName")
            .and_then(Value::as_str)
            .is_some_and(|c| !c.is_empty())
        && let (Some(o), Some(c)) = (old_spec.as_object_mut(), new_spec.get("storageClassName"))
    {
        o.insert("storageClassName".into(), c.clone());
    }
    if at(&old_spec, "/volumeName").is_none()
        && let (Some(o), Some(v)) = (old_spec.as_object_mut(), new_spec.get("volumeName"))
    {
        o.insert("volumeName".into(), v.clone());
    }
    let storage = "/resources/requests/storage";
    if bound && let (Some(o), Some(n)) = (at(&old_spec, storage).cloned(), new_spec.at_mut(storage))
    {
        *n = o;
    }
    let mut out = Vec::new();
    if old_spec != new_spec {
        out.push(forbidden(
            "spec",
            &format!("{PVC_IMMUTABLE}\n{}", spec_diff(&old_spec, &new_spec)),
        ));
    }
    if !same(old, new, "/spec/volumeMode") {
        out.push(invalid(
            "volumeMode",
            &go(at(new, "/spec/volumeMode"), ""),
            IMMUTABLE,
        ));
    }
    let size = |v: &Value| {
        at(v, "/spec/resources/requests/storage")
            .and_then(Value::as_str)
            .and_then(|s| cairn_model::validate::Quantity::parse(s).ok())
    };
    if let (Some(before), Some(after)) = (size(old), size(new))
        && after < before
    {
        out.push(forbidden(
            "spec.resources.requests.storage",
            "field can not be less than previous value",
        ));
    }
    out
}

/// The lines that differ, in the `-`/`+` style of the server's `cmp.Diff` (not its exact text).
fn spec_diff(old: &Value, new: &Value) -> String {
    let lines = |v: &Value| -> Vec<String> {
        serde_json::to_string_pretty(v)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let (a, b) = (lines(old), lines(new));
    let mut out = String::new();
    for l in &a {
        out.push_str(if b.contains(l) {
            "\u{a0}\u{a0}"
        } else {
            "-\u{a0}"
        });
        out.push_str(l);
        out.push('\n');
    }
    for l in b.iter().filter(|l| !a.contains(l)) {
        out.push_str("+\u{a0}");
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// The volume source fields of a PersistentVolumeSpec (`PersistentVolumeSource`, inlined).
const VOLUME_SOURCES: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "csi",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "glusterfs",
    "hostPath",
    "iscsi",
    "local",
    "nfs",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
];

fn volume(old: &Value, new: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let source = |v: &Value| -> Map<String, Value> {
        VOLUME_SOURCES
            .iter()
            .filter_map(|k| at(v, &format!("/spec/{k}")).map(|x| ((*k).to_owned(), x.clone())))
            .collect()
    };
    let (a, b) = (source(old), source(new));
    if a != b {
        out.push(forbidden(
            "spec.persistentvolumesource",
            &format!(
                "spec.persistentvolumesource is immutable after creation\n{}",
                spec_diff(&Value::Object(a), &Value::Object(b))
            ),
        ));
    }
    if !same(old, new, "/spec/volumeMode") {
        out.push(invalid(
            "volumeMode",
            &go(at(new, "/spec/volumeMode"), ""),
            IMMUTABLE,
        ));
    }
    if at(old, "/spec/nodeAffinity").is_some() && !same(old, new, "/spec/nodeAffinity") {
        let value = go_pointer("core.VolumeNodeAffinity", at(new, "/spec/nodeAffinity"));
        out.push(invalid("nodeAffinity", &value, IMMUTABLE));
    }
    out
}

/// `ValidateResourceQuotaUpdate`: the scopes, compared as a set, cannot change; the scope
/// selector is not checked on update.
fn quota(old: &Value, new: &Value) -> Vec<Cause> {
    let scopes = |v: &Value| -> std::collections::BTreeSet<String> {
        at(v, "/spec/scopes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    if scopes(old) == scopes(new) {
        return Vec::new();
    }
    // A slice, not a pointer: a nil one prints as Go's `%#v` has it.
    let value = match at(new, "/spec/scopes") {
        None => "[]core.ResourceQuotaScope(nil)".to_owned(),
        scopes => go(scopes, "[]core.ResourceQuotaScope"),
    };
    vec![invalid("spec.scopes", &value, IMMUTABLE)]
}

fn storage_class(old: &Value, new: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    for (f, msg) in [
        ("parameters", "updates to parameters are forbidden."),
        ("provisioner", "updates to provisioner are forbidden."),
        ("reclaimPolicy", "updates to reclaimPolicy are forbidden."),
    ] {
        if !same(old, new, &format!("/{f}")) {
            out.push(forbidden(f, msg));
        }
    }
    if !same(old, new, "/volumeBindingMode") {
        let value = go(at(new, "/volumeBindingMode"), "");
        out.push(invalid("volumeBindingMode", &value, IMMUTABLE));
    }
    out
}

fn selector(old: &Value, new: &Value) -> Vec<Cause> {
    if same(old, new, "/spec/selector") {
        return Vec::new();
    }
    vec![invalid(
        "spec.selector",
        &label_selector(at(new, "/spec/selector")),
        IMMUTABLE,
    )]
}

/// Only replicas, template, updateStrategy, minReadySeconds and the claim retention policy may
/// change (913, 914): volumeClaimTemplates, serviceName, selector… are fixed.
/// `ValidatePodUpdate`: the new spec, with the fields that may change put back as they were
/// (images, the active deadline, added tolerations, a grace period going from negative to 1),
/// must be the old one.
fn pod(old: &Value, new: &Value) -> Vec<Cause> {
    let (Some(was), Some(is)) = (at(old, "/spec"), at(new, "/spec")) else {
        return Vec::new();
    };
    let mut munged = is.clone();
    for list in ["containers", "initContainers"] {
        let before = was.get(list).and_then(Value::as_array);
        let Some(after) = munged.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        if before.map(Vec::len) != Some(after.len()) {
            continue;
        }
        for (c, b) in after.iter_mut().zip(before.into_iter().flatten()) {
            if let (Some(c), Some(image)) = (c.as_object_mut(), b.get("image")) {
                c.insert("image".into(), image.clone());
            }
        }
    }
    let Some(m) = munged.as_object_mut() else {
        return Vec::new();
    };
    let tolerations_added = {
        let before = was.get("tolerations").and_then(Value::as_array);
        let after = is.get("tolerations").and_then(Value::as_array);
        before
            .into_iter()
            .flatten()
            .all(|t| after.is_some_and(|a| a.contains(t)))
    };
    let grace = |v: &Value| {
        v.get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
    };
    let restore = |m: &mut Map<String, Value>, k: &str| match was.get(k) {
        Some(v) => {
            m.insert(k.to_owned(), v.clone());
        }
        None => {
            m.shift_remove(k);
        }
    };
    restore(m, "activeDeadlineSeconds");
    if tolerations_added {
        restore(m, "tolerations");
    }
    if grace(was).is_some_and(|g| g < 0) && grace(is) == Some(1) {
        restore(m, "terminationGracePeriodSeconds");
    }
    if munged == *was {
        return Vec::new();
    }
    vec![forbidden("spec", POD_FORBIDDEN)]
}

fn stateful_set(old: &Value, new: &Value) -> Vec<Cause> {
    let strip = |v: &Value| -> Map<String, Value> {
        let mut spec = at(v, "/spec")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for k in [
            "replicas",
            "template",
            "updateStrategy",
            "minReadySeconds",
            "persistentVolumeClaimRetentionPolicy",
        ] {
            spec.shift_remove(k);
        }
        spec
    };
    if strip(old) == strip(new) {
        return Vec::new();
    }
    vec![forbidden("spec", STS_FORBIDDEN)]
}

/// A Job is a run: its completions, selector, template, completion mode and pod failure
/// policy are fixed once it exists (902, 903); deadlines, parallelism and suspension may change
/// (904).
fn job(old: &Value, new: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    if !same(old, new, "/spec/completions") {
        out.push(invalid(
            "spec.completions",
            &go(at(new, "/spec/completions"), ""),
            IMMUTABLE,
        ));
    }
    if !same(old, new, "/spec/selector") {
        out.push(invalid(
            "spec.selector",
            &label_selector(at(new, "/spec/selector")),
            IMMUTABLE,
        ));
    }
    if !same(old, new, "/spec/template") {
        let value = go_struct(
            "core.PodTemplateSpec",
            at(new, "/spec/template").unwrap_or(&Value::Null),
        );
        out.push(invalid("spec.template", &value, IMMUTABLE));
    }
    if !same(old, new, "/spec/completionMode") {
        out.push(invalid(
            "spec.completionMode",
            &go(at(new, "/spec/completionMode"), ""),
            IMMUTABLE,
        ));
    }
    if !same(old, new, "/spec/podFailurePolicy") {
        let value = go_pointer("batch.PodFailurePolicy", at(new, "/spec/podFailurePolicy"));
        out.push(invalid("spec.podFailurePolicy", &value, IMMUTABLE));
    }
    out
}

fn role_ref(old: &Value, new: &Value) -> Vec<Cause> {
    if same(old, new, "/roleRef") {
        return Vec::new();
    }
    let s = |k: &str| {
        quoted(
            at(new, &format!("/roleRef/{k}"))
                .and_then(Value::as_str)
                .unwrap_or(""),
        )
    };
    let value = format!(
        "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
        s("apiGroup"),
        s("kind"),
        s("name")
    );
    vec![invalid("roleRef", &value, "cannot change roleRef")]
}

/// An established CRD keeps its group, plural and scope (what its objects are stored under);
/// every stored version must stay in `spec.versions`.
fn crd(old: &Value, new: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    // `validateCustomResourceDefinitionSpecUpdate`: scope and kind once established (they
    // decide the storage), group and plural always (they make the name).
    let established = crate::store::is_established(old);
    for (p, f, always) in [
        ("/spec/scope", "spec.scope", false),
        ("/spec/names/kind", "spec.names.kind", false),
        ("/spec/group", "spec.group", true),
        ("/spec/names/plural", "spec.names.plural", true),
    ] {
        if (always || established) && !same(old, new, p) {
            out.push(invalid(f, &go(at(new, p), ""), IMMUTABLE));
        }
    }
    let versions: Vec<&str> = at(new, "/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .collect();
    let stored = at(old, "/status/storedVersions").and_then(Value::as_array);
    for (i, s) in stored.into_iter().flatten().enumerate() {
        if let Some(s) = s.as_str()
            && !versions.contains(&s)
        {
            out.push(invalid(
                &format!("status.storedVersions[{i}]"),
                &quoted(s),
                "must appear in spec.versions",
            ));
        }
    }
    out
}
