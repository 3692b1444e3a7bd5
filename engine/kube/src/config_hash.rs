//! Rollouts follow config: a Deployment, StatefulSet or DaemonSet whose pods read a ConfigMap
//! or Secret the script declares (`envFrom`, `env[].valueFrom`, volumes, projected volumes)
//! carries a digest of that data in its pod template (`cairn.dev/config-hash`), so a change
//! of the data changes the template and restarts the pods — Kubernetes alone never does.
//!
//! The digest is computed from the apply bodies (Secret values revealed) and only ever lives
//! in the body sent to the cluster: the plan shows which object changed ("restart: ConfigMap
//! backend changed"), never the digest, and fingerprints leave it out.

use std::collections::{BTreeMap, BTreeSet};

use cairn_model::ResourceId;
use serde_json::Value as J;

use crate::observe::Observed;

/// The pod-template annotation holding the digest.
pub const CONFIG_HASH: &str = "cairn.dev/config-hash";

/// The kinds whose pods restart when their template changes.
const ROLLED: &[&str] = &["Deployment", "StatefulSet", "DaemonSet"];

/// The ConfigMaps and Secrets a pod spec reads, as ids in `ns`.
fn references(pod: &J, ns: Option<&str>) -> BTreeSet<ResourceId> {
    let mut out = BTreeSet::new();
    let mut add = |kind: &str, name: Option<&J>| {
        if let Some(name) = name.and_then(J::as_str) {
            out.insert(ResourceId::kube(kind, ns, name));
        }
    };
    let containers = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| pod.get(*k).and_then(J::as_array))
        .flatten();
    for c in containers {
        for from in c.get("envFrom").and_then(J::as_array).into_iter().flatten() {
            add("ConfigMap", from.pointer("/configMapRef/name"));
            add("Secret", from.pointer("/secretRef/name"));
        }
        for var in c.get("env").and_then(J::as_array).into_iter().flatten() {
            add("ConfigMap", var.pointer("/valueFrom/configMapKeyRef/name"));
            add("Secret", var.pointer("/valueFrom/secretKeyRef/name"));
        }
    }
    for v in pod
        .get("volumes")
        .and_then(J::as_array)
        .into_iter()
        .flatten()
    {
        add("ConfigMap", v.pointer("/configMap/name"));
        add("Secret", v.pointer("/secret/secretName"));
        let projected = v.pointer("/projected/sources").and_then(J::as_array);
        for source in projected.into_iter().flatten() {
            add("ConfigMap", source.pointer("/configMap/name"));
            add("Secret", source.pointer("/secret/name"));
        }
    }
    out
}

/// The data of a ConfigMap or Secret body, as one comparable value.
fn data(obj: &J) -> J {
    let pick = |k: &str| obj.get(k).cloned().unwrap_or(J::Null);
    J::Array(vec![pick("data"), pick("binaryData")])
}

/// Whether the live object lacks what the desired data says (absent, or a value differs).
fn changed(desired: &J, live: Option<&J>) -> bool {
    let Some(live) = live else {
        return true;
    };
    ["data", "binaryData"].iter().any(|k| {
        let want = desired.get(*k).and_then(J::as_object);
        let have = live.get(*k).and_then(J::as_object);
        want.is_some_and(|w| {
            w.iter()
                .any(|(key, v)| have.and_then(|h| h.get(key)) != Some(v))
        })
    })
}

/// What stamping found for one workload: the config objects whose change restarts it.
#[derive(Debug, Default)]
pub(crate) struct Restarts {
    /// Workload id → `ConfigMap name`/`Secret name` that changed.
    pub changed: BTreeMap<ResourceId, Vec<String>>,
}

/// Puts the digest of the config each workload reads into its pod template, in `bodies`
/// (apply bodies by id). Only objects the script declares count: an operator's Secret is not
/// cairn's to watch.
pub(crate) fn stamp(bodies: &mut BTreeMap<ResourceId, J>, observed: &Observed) -> Restarts {
    use sha2::Digest as _;
    let mut restarts = Restarts::default();
    let workloads: Vec<ResourceId> = bodies
        .keys()
        .filter(|id| ROLLED.contains(&id.kind.as_str()))
        .cloned()
        .collect();
    for id in workloads {
        let Some(pod) = bodies
            .get(&id)
            .and_then(|b| b.pointer("/spec/template/spec"))
        else {
            continue;
        };
        let refs: Vec<ResourceId> = references(pod, id.scope.as_deref())
            .into_iter()
            .filter(|r| bodies.contains_key(r))
            .collect();
        if refs.is_empty() {
            continue;
        }
        let mut hasher = sha2::Sha256::new();
        hasher.update(b"cairn config-hash v1\n");
        let mut changed_refs = Vec::new();
        for r in &refs {
            let body = &bodies[r];
            hasher.update(format!("{r}\n{}\n", data(body)).as_bytes());
            if changed(body, observed.objects.get(r)) {
                changed_refs.push(format!("{} {}", r.kind, r.name));
            }
        }
        let digest = hasher.finalize();
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        if let Some(J::Object(template)) = bodies
            .get_mut(&id)
            .and_then(|b| b.pointer_mut("/spec/template"))
        {
            let meta = template
                .entry("metadata")
                .or_insert_with(|| J::Object(serde_json::Map::new()));
            if let J::Object(meta) = meta {
                let annotations = meta
                    .entry("annotations")
                    .or_insert_with(|| J::Object(serde_json::Map::new()));
                if let J::Object(a) = annotations {
                    a.insert(CONFIG_HASH.to_owned(), J::String(hex));
                }
            }
        }
        if !changed_refs.is_empty() {
            restarts.changed.insert(id, changed_refs);
        }
    }
    restarts
}

/// The field changes of a workload without its digest (never shown), and why it restarts:
/// `restart: ConfigMap backend changed`, or the digest added for the first time. The digest
/// is taken out wherever the comparison put it: its own field, or inside a map the live
/// object lacked altogether (`annotations` added whole).
pub(crate) fn explain(
    fields: &mut Vec<cairn_plan::diff::FieldChange>,
    changed: Option<&Vec<String>>,
) -> Option<String> {
    let mut found = false;
    let mut first = false;
    fields.retain_mut(|f| {
        if f.path.ends_with(CONFIG_HASH) {
            found = true;
            first |= f.before.is_none();
            return false;
        }
        let (had, has) = (scrub(&mut f.before), scrub(&mut f.after));
        if !has {
            return true;
        }
        found = true;
        first |= !had;
        f.before != f.after
    });
    if !found {
        return None;
    }
    Some(match changed {
        Some(objects) => format!("restart: {} changed", objects.join(", ")),
        None if first => {
            "restart: the pods now carry the digest of the config they read (once)".to_owned()
        }
        None => "restart: the config its pods read changed".to_owned(),
    })
}

/// Removes the digest from a shown value (anywhere in it); whether it was there. A map left
/// empty by it is no value at all.
fn scrub(v: &mut Option<J>) -> bool {
    fn remove(v: &mut J) -> bool {
        match v {
            J::Object(m) => {
                let here = m.remove(CONFIG_HASH).is_some();
                let mut below = false;
                for child in m.values_mut() {
                    below |= remove(child);
                }
                here || below
            }
            _ => false,
        }
    }
    let Some(value) = v.as_mut() else {
        return false;
    };
    let was = remove(value);
    if was && value.as_object().is_some_and(serde_json::Map::is_empty) {
        *v = None;
    }
    was
}

/// Leaves the digest out of a live object's fingerprint (a digest of secret data must not
/// leave the cluster, even hashed again).
pub(crate) fn unstamped(obj: &mut J) {
    if let Some(J::Object(a)) = obj.pointer_mut("/spec/template/metadata/annotations") {
        a.remove(CONFIG_HASH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> J {
        json!({"kind": "Deployment", "spec": {"template": {"spec": {
            "containers": [{"name": "web", "envFrom": [{"configMapRef": {"name": "settings"}}],
                "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "P"}}}]}],
            "volumes": [{"name": "v", "configMap": {"name": "not-declared"}}]}}}})
    }

    #[test]
    fn the_digest_is_never_shown_even_inside_a_map_added_whole() {
        use cairn_plan::diff::FieldChange;
        let mut fields = vec![
            FieldChange {
                path: "spec.template.metadata.annotations".into(),
                before: None,
                after: Some(json!({ CONFIG_HASH: "0123456789abcdef" })),
            },
            FieldChange {
                path: "spec.replicas".into(),
                before: Some(json!(2)),
                after: Some(json!(3)),
            },
        ];
        let why = explain(&mut fields, None);
        assert_eq!(fields.len(), 1, "{fields:?}");
        assert_eq!(fields[0].path, "spec.replicas");
        assert!(why.is_some_and(|w| w.contains("(once)")));
        // A map with other annotations keeps them, without the digest.
        let mut fields = vec![FieldChange {
            path: "spec.template.metadata.annotations".into(),
            before: None,
            after: Some(json!({ CONFIG_HASH: "0123456789abcdef", "team": "api" })),
        }];
        explain(&mut fields, None);
        assert_eq!(fields[0].after, Some(json!({ "team": "api" })));
        // The digest's own field, changed: the config changed.
        let mut fields = vec![FieldChange {
            path: format!("spec.template.metadata.annotations.{CONFIG_HASH}"),
            before: Some(json!("a")),
            after: Some(json!("b")),
        }];
        let why = explain(&mut fields, None);
        assert!(fields.is_empty());
        assert_eq!(
            why.as_deref(),
            Some("restart: the config its pods read changed")
        );
    }

    #[test]
    fn a_change_of_the_config_a_workload_reads_changes_its_digest_and_says_which() {
        let web = ResourceId::kube("Deployment", Some("ns"), "web");
        let settings = ResourceId::kube("ConfigMap", Some("ns"), "settings");
        let db = ResourceId::kube("Secret", Some("ns"), "db");
        let mut bodies = BTreeMap::from([
            (web.clone(), deployment()),
            (settings.clone(), json!({"data": {"LEVEL": "info"}})),
            (db.clone(), json!({"data": {"P": "c2VjcmV0"}})),
        ]);
        let mut observed = Observed::default();
        observed
            .objects
            .insert(settings.clone(), json!({"data": {"LEVEL": "info"}}));
        observed
            .objects
            .insert(db.clone(), json!({"data": {"P": "c2VjcmV0"}}));
        let restarts = stamp(&mut bodies, &observed);
        assert!(restarts.changed.is_empty());
        let hash = |b: &BTreeMap<ResourceId, J>| {
            b[&web]["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH].clone()
        };
        let first = hash(&bodies);
        assert!(first.as_str().is_some_and(|h| h.len() == 16));

        let mut again = bodies.clone();
        if let Some(b) = again.get_mut(&web) {
            *b = deployment();
        }
        again.insert(settings.clone(), json!({"data": {"LEVEL": "debug"}}));
        let restarts = stamp(&mut again, &observed);
        assert_ne!(hash(&again), first);
        assert_eq!(
            restarts.changed[&web],
            vec!["ConfigMap settings".to_owned()]
        );
    }
}
