//! Storage as a k3s cluster has it: the `local-path` StorageClass (k3s's default: provisioner
//! `rancher.io/local-path`, `WaitForFirstConsumer`, no volume expansion), the DefaultStorageClass
//! and PersistentVolumeClaimResize admission plugins, the PV binder (static volumes matched by
//! class, size and access modes; dynamic ones provisioned when the scheduler picks a node for
//! the first pod that uses the claim), expansion where the class allows it, and reclaiming a
//! volume whose claim is gone.
//!
//! Rules from kubernetes/kubernetes: `plugin/pkg/admission/storage/storageclass/setdefault`,
//! `plugin/pkg/admission/storage/persistentvolume/resize/admission.go`,
//! `pkg/controller/volume/persistentvolume` (binder annotations) and the recordings 905–910.

use cairn_model::JsonPath as _;
use std::sync::Arc;

use cairn_model::validate::Quantity;
use serde_json::{Value, json};

use crate::controllers::KCM;
use crate::registry::ResourceType;
use crate::store::{State, WriteOpts, meta_str};
use crate::util::{self, ApiError};

/// k3s's default StorageClass.
pub const LOCAL_PATH: &str = "local-path";
const LOCAL_PATH_PROVISIONER: &str = "rancher.io/local-path";
const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";
const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The emulator's one node.
pub const NODE: &str = "sandbox-node";

/// The StorageClass a new k3s cluster has.
pub fn local_path_class() -> Value {
    json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": LOCAL_PATH, "annotations": {DEFAULT_CLASS: "true"}},
        "provisioner": LOCAL_PATH_PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer"
    })
}

fn class_type(st: &State) -> Option<Arc<ResourceType>> {
    st.registry.get("storage.k8s.io", "v1", "storageclasses")
}

fn class_of<'a>(st: &'a State, name: &str) -> Option<&'a Value> {
    if name.is_empty() {
        return None;
    }
    let rt = class_type(st)?;
    st.get(&rt, "", name)
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.at(p).and_then(Value::as_str).unwrap_or("")
}

fn storage(v: &Value, p: &str) -> Option<Quantity> {
    Quantity::parse(v.at(p)?.as_str()?).ok()
}

/// DefaultStorageClass admission: a claim created without `storageClassName` gets the class
/// annotated as the default (when exactly one is).
pub fn default_class(st: &State, pvc: &mut Value) {
    if pvc.at("/spec/storageClassName").is_some() {
        return;
    }
    let Some(rt) = class_type(st) else { return };
    let defaults: Vec<String> = st
        .list_arc(&rt, "")
        .iter()
        .filter(|c| {
            str_at(
                c,
                &format!("/metadata/annotations/{}", DEFAULT_CLASS.replace('/', "~1")),
            ) == "true"
        })
        .map(|c| meta_str(c, "name").to_string())
        .collect();
    if let ([name], Some(spec)) = (
        defaults.as_slice(),
        pvc.get_mut("spec").and_then(Value::as_object_mut),
    ) {
        spec.insert("storageClassName".into(), json!(name));
    }
}

/// PersistentVolumeClaimResize admission, after update validation (so an unbound claim is
/// refused with 422 first, as in 906): a larger request needs a bound claim whose StorageClass
/// allows expansion (910).
pub fn admit_resize(st: &State, old: &Value, new: &Value) -> Result<(), ApiError> {
    let path = "/spec/resources/requests/storage";
    let (Some(before), Some(after)) = (storage(old, path), storage(new, path)) else {
        return Ok(());
    };
    if after <= before {
        return Ok(());
    }
    let name = meta_str(new, "name");
    let forbidden = |why: &str| {
        Err(ApiError::new(
            403,
            "Forbidden",
            format!("persistentvolumeclaims \"{name}\" is forbidden: {why}"),
        )
        .with_details(util::details(name, "", "persistentvolumeclaims", None)))
    };
    if str_at(old, "/status/phase") != "Bound" {
        return forbidden("Only bound persistent volume claims can be expanded");
    }
    let expandable = class_of(st, str_at(new, "/spec/storageClassName"))
        .and_then(|c| c.get("allowVolumeExpansion"))
        .and_then(Value::as_bool)
        == Some(true);
    if !expandable {
        return forbidden(
            "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize",
        );
    }
    Ok(())
}

/// Why a pod cannot be scheduled yet because of its claims (`None`: they are all bound). A
/// claim waiting for its first consumer is given the node here, as the scheduler does; the
/// pod then waits for the provisioner.
pub fn unbound_claims(st: &mut State, pod: &Value) -> Option<String> {
    let pvc_rt = st.registry.get("", "v1", "persistentvolumeclaims")?;
    let ns = meta_str(pod, "namespace").to_string();
    let claims: Vec<String> = pod
        .at("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.at("/persistentVolumeClaim/claimName")?.as_str())
        .map(str::to_string)
        .collect();
    let mut waiting = None;
    for claim in claims {
        let Some(pvc) = st.get(&pvc_rt, &ns, &claim).cloned() else {
            return Some(format!("persistentvolumeclaim \"{claim}\" not found"));
        };
        if crate::controllers::deleting(&pvc) {
            return Some(format!(
                "persistentvolumeclaim \"{claim}\" is being deleted"
            ));
        }
        if str_at(&pvc, "/status/phase") == "Bound" {
            continue;
        }
        let class = class_of(st, str_at(&pvc, "/spec/storageClassName")).cloned();
        let late = class.as_ref().is_some_and(|c| {
            str_at(c, "/volumeBindingMode") == "WaitForFirstConsumer"
                && str_at(c, "/provisioner") != NO_PROVISIONER
        });
        if !late {
            return Some(
                "0/1 nodes are available: 1 pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.".into(),
            );
        }
        if pvc
            .at("/metadata/annotations")
            .and_then(|a| a.get(SELECTED_NODE))
            .is_none()
        {
            st.controller_update(&pvc_rt, &ns, &claim, "kube-scheduler", None, |o| {
                annotate(o, &[(SELECTED_NODE, NODE)]);
            });
        }
        waiting = Some(format!(
            "waiting for volume of claim \"{claim}\" to be provisioned"
        ));
    }
    waiting
}

fn annotate(o: &mut Value, pairs: &[(&str, &str)]) {
    let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let a = meta.entry("annotations").or_insert(json!({}));
    if let Some(a) = a.as_object_mut() {
        for (k, v) in pairs {
            a.insert((*k).to_string(), json!(v));
        }
    }
}

/// One pass of the PV controller over the claims and volumes: new volumes become Available,
/// pending claims are bound (a matching static volume first, else a provisioned one), claims
/// grow where their class allows, and volumes whose claim is gone are reclaimed.
pub fn reconcile(st: &mut State) {
    let (Some(pvc_rt), Some(pv_rt)) = (
        st.registry.get("", "v1", "persistentvolumeclaims"),
        st.registry.get("", "v1", "persistentvolumes"),
    ) else {
        return;
    };
    for pv in st.list_arc(&pv_rt, "") {
        let name = meta_str(&pv, "name").to_string();
        if str_at(&pv, "/status/phase") == "Pending" && pv.at("/spec/claimRef").is_none() {
            set_phase(st, &pv_rt, "", &name, "Available");
        }
        reclaim(st, &pvc_rt, &pv_rt, &pv);
    }
    for pvc in st.list_arc(&pvc_rt, "") {
        if crate::controllers::deleting(&pvc) {
            continue;
        }
        if str_at(&pvc, "/status/phase") == "Bound" {
            expand(st, &pvc_rt, &pv_rt, &pvc);
        } else {
            bind(st, &pvc_rt, &pv_rt, &pvc);
        }
    }
}

fn set_phase(st: &mut State, rt: &ResourceType, ns: &str, name: &str, phase: &str) {
    st.controller_update(rt, ns, name, KCM, Some("status"), |o| {
        o["status"] = json!({"phase": phase});
    });
}

fn access_modes(v: &Value, p: &str) -> Vec<String> {
    v.at(p)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect()
}

/// A volume that satisfies the claim: same class, large enough, every access mode asked for.
fn matches(pv: &Value, pvc: &Value) -> bool {
    let want = storage(pvc, "/spec/resources/requests/storage");
    let has = storage(pv, "/spec/capacity/storage");
    let modes = access_modes(pv, "/spec/accessModes");
    pv.at("/spec/claimRef").is_none()
        && str_at(pv, "/status/phase") == "Available"
        && str_at(pv, "/spec/storageClassName") == str_at(pvc, "/spec/storageClassName")
        && matches!((want, has), (Some(w), Some(h)) if h >= w)
        && access_modes(pvc, "/spec/accessModes")
            .iter()
            .all(|m| modes.contains(m))
}

fn bind(st: &mut State, pvc_rt: &ResourceType, pv_rt: &ResourceType, pvc: &Value) {
    let static_pv = st
        .list_arc(pv_rt, "")
        .into_iter()
        .filter(|pv| matches(pv, pvc))
        .min_by_key(|pv| storage(pv, "/spec/capacity/storage"));
    let (pv_name, provisioner) = match static_pv {
        Some(pv) => (meta_str(&pv, "name").to_string(), None),
        None => {
            let Some(class) = class_of(st, str_at(pvc, "/spec/storageClassName")).cloned() else {
                return;
            };
            let provisioner = str_at(&class, "/provisioner").to_string();
            let late = str_at(&class, "/volumeBindingMode") == "WaitForFirstConsumer";
            let selected = pvc
                .at("/metadata/annotations")
                .and_then(|a| a.get(SELECTED_NODE))
                .is_some();
            if provisioner == NO_PROVISIONER || (late && !selected) {
                return;
            }
            match provision(st, pv_rt, pvc, &class) {
                Some(name) => (name, Some(provisioner)),
                None => return,
            }
        }
    };
    let ns = meta_str(pvc, "namespace").to_string();
    let claim = meta_str(pvc, "name").to_string();
    let claim_ref = json!({"kind": "PersistentVolumeClaim", "namespace": ns, "name": claim,
        "uid": meta_str(pvc, "uid"), "apiVersion": "v1", "resourceVersion": meta_str(pvc, "resourceVersion")});
    st.controller_update(pv_rt, "", &pv_name, KCM, None, |o| {
        o["spec"]["claimRef"] = claim_ref;
    });
    set_phase(st, pv_rt, "", &pv_name, "Bound");
    let Some(pv) = st.get(pv_rt, "", &pv_name).cloned() else {
        return;
    };
    st.controller_update(pvc_rt, &ns, &claim, KCM, None, |o| {
        let mut pairs = vec![
            ("pv.kubernetes.io/bind-completed", "yes"),
            ("pv.kubernetes.io/bound-by-controller", "yes"),
        ];
        if let Some(p) = &provisioner {
            pairs.push(("volume.beta.kubernetes.io/storage-provisioner", p));
            pairs.push(("volume.kubernetes.io/storage-provisioner", p));
        }
        annotate(o, &pairs);
        o["spec"]["volumeName"] = json!(pv_name);
    });
    st.controller_update(pvc_rt, &ns, &claim, KCM, Some("status"), |o| {
        o["status"] = json!({
            "phase": "Bound",
            "accessModes": pv.at("/spec/accessModes").cloned().unwrap_or(json!([])),
            "capacity": pv.at("/spec/capacity").cloned().unwrap_or(json!({})),
        });
    });
}

/// What local-path's provisioner creates for a claim: a hostPath volume on the node.
fn provision(st: &mut State, pv_rt: &ResourceType, pvc: &Value, class: &Value) -> Option<String> {
    let name = format!("pvc-{}", meta_str(pvc, "uid"));
    let ns = meta_str(pvc, "namespace");
    let claim = meta_str(pvc, "name");
    let pv = json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": str_at(class, "/provisioner")}},
        "spec": {
            "capacity": {"storage": str_at(pvc, "/spec/resources/requests/storage")},
            "accessModes": pvc.at("/spec/accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])),
            "hostPath": {"path": format!("/var/lib/rancher/k3s/storage/{name}_{ns}_{claim}"), "type": "DirectoryOrCreate"},
            "persistentVolumeReclaimPolicy": class.get("reclaimPolicy").cloned().unwrap_or(json!("Delete")),
            "storageClassName": meta_str(class, "name"),
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE]}]}]}}
        }
    });
    let opts = WriteOpts {
        manager: "local-path-provisioner",
        dry_run: false,
        subresource: None,
    };
    st.create(pv_rt, "", pv, &opts).ok()?;
    st.controller_update(pv_rt, "", &name, KCM, Some("status"), |o| {
        o["status"] = json!({"phase": "Available"});
    });
    Some(name)
}

/// A bound claim asking for more than it has, in a class that allows expansion: the volume
/// and then the claim's capacity grow (what the resizer and the kubelet do together).
fn expand(st: &mut State, pvc_rt: &ResourceType, pv_rt: &ResourceType, pvc: &Value) {
    let (Some(want), Some(has)) = (
        storage(pvc, "/spec/resources/requests/storage"),
        storage(pvc, "/status/capacity/storage"),
    ) else {
        return;
    };
    if want <= has {
        return;
    }
    let size = str_at(pvc, "/spec/resources/requests/storage").to_string();
    let pv = str_at(pvc, "/spec/volumeName").to_string();
    st.controller_update(pv_rt, "", &pv, KCM, None, |o| {
        o["spec"]["capacity"]["storage"] = json!(size);
    });
    let ns = meta_str(pvc, "namespace").to_string();
    st.controller_update(
        pvc_rt,
        &ns,
        meta_str(pvc, "name"),
        KCM,
        Some("status"),
        |o| {
            o["status"]["capacity"]["storage"] = json!(size);
        },
    );
}

/// A bound volume whose claim is gone: deleted (policy `Delete`) or `Released` (`Retain`).
fn reclaim(st: &mut State, pvc_rt: &ResourceType, pv_rt: &ResourceType, pv: &Value) {
    let Some(claim_ref) = pv.at("/spec/claimRef") else {
        return;
    };
    let live = st.get(
        pvc_rt,
        str_at(claim_ref, "/namespace"),
        str_at(claim_ref, "/name"),
    );
    if live.is_some_and(|c| meta_str(c, "uid") == str_at(claim_ref, "/uid")) {
        return;
    }
    let name = meta_str(pv, "name").to_string();
    if str_at(pv, "/spec/persistentVolumeReclaimPolicy") == "Delete" {
        st.remove(pv_rt, "", &name);
    } else if str_at(pv, "/status/phase") != "Released" {
        set_phase(st, pv_rt, "", &name, "Released");
    }
}
