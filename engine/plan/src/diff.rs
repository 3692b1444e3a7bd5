//! Field-level comparison of Kubernetes objects, on the fields cairn manages.
//!
//! - [`subset_changes`]: what in the desired object differs from the live one, looking only at
//!   the fields the desired object sets (lists of named things — containers, env, ports,
//!   volumes — are matched by their keys, not by position).
//! - [`removed_fields`]: fields cairn's field manager owns on the live object (from
//!   `managedFields`) that the desired object no longer sets: a server-side apply would remove
//!   them.
//! - [`object_changes`]: the full difference between the live object and the object a
//!   server-side dry run says it would become, ignoring what the server maintains itself.

use serde_json::Value as J;

/// One changed field. `before`/`after` are `None` when the field is absent on that side.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FieldChange {
    /// A readable path: `spec.template.spec.containers[web].env[DEBUG].value`.
    pub path: String,
    /// The live value.
    pub before: Option<J>,
    /// The value after the change.
    pub after: Option<J>,
}

/// The keys identifying the items of a list field, or `None` for lists compared whole.
fn list_keys(field: &str, items: &[J]) -> Option<&'static [&'static str]> {
    let first = items.iter().find(|i| i.is_object())?;
    let has = |k: &str| first.get(k).is_some();
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => &["name"],
        "volumeMounts" => &["mountPath"],
        "conditions" => &["type"],
        "ports" if has("containerPort") => &["containerPort", "protocol"],
        "ports" if has("port") => &["port", "protocol"],
        _ => return None,
    })
}

fn key_of(item: &J, keys: &[&str]) -> String {
    let parts: Vec<String> = keys
        .iter()
        .filter_map(|k| item.get(*k))
        .map(|v| match v {
            J::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    parts.join("/")
}

fn matches_key(item: &J, desired: &J, keys: &[&str]) -> bool {
    keys.iter().all(|k| match (item.get(*k), desired.get(*k)) {
        (Some(a), Some(b)) => a == b,
        // A key field the desired item leaves out takes its default (protocol TCP).
        (Some(J::String(p)), None) if *k == "protocol" => p == "TCP",
        (None, None) => true,
        _ => false,
    })
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// Differences of `desired` against `live`, on the fields `desired` sets.
pub fn subset_changes(desired: &J, live: &J) -> Vec<FieldChange> {
    let mut out = Vec::new();
    subset(desired, Some(live), "", "", &mut out);
    out
}

fn subset(desired: &J, live: Option<&J>, path: &str, field: &str, out: &mut Vec<FieldChange>) {
    match (desired, live) {
        (J::Object(d), Some(J::Object(l))) => {
            for (k, dv) in d {
                subset(dv, l.get(k), &join(path, k), k, out);
            }
        }
        (J::Array(d), Some(J::Array(l))) => match list_keys(field, d) {
            Some(keys) => {
                for item in d {
                    let name = key_of(item, keys);
                    let found = l.iter().find(|li| matches_key(li, item, keys));
                    subset(item, found, &format!("{path}[{name}]"), "", out);
                }
            }
            None => {
                let same = d.len() == l.len()
                    && d.iter().zip(l).all(|(dv, lv)| {
                        let mut inner = Vec::new();
                        subset(dv, Some(lv), path, field, &mut inner);
                        inner.is_empty()
                    });
                if !same {
                    out.push(FieldChange {
                        path: path.to_owned(),
                        before: live.cloned(),
                        after: Some(desired.clone()),
                    });
                }
            }
        },
        (d, Some(l)) if scalar_eq(d, l) => {}
        (d, l) => {
            // An empty desired map or list matches an absent live one.
            let empty = matches!(d, J::Object(m) if m.is_empty())
                || matches!(d, J::Array(a) if a.is_empty());
            if !(empty && l.is_none()) {
                out.push(FieldChange {
                    path: path.to_owned(),
                    before: l.cloned(),
                    after: Some(d.clone()),
                });
            }
        }
    }
}

fn scalar_eq(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Fields cairn's manager owns on the live object (its `fieldsV1`) that `desired` no longer
/// sets, as readable paths.
pub fn removed_fields(fields_v1: &J, desired: &J) -> Vec<String> {
    let mut out = Vec::new();
    owned(fields_v1, Some(desired), "", &mut out);
    out
}

fn owned(fields: &J, desired: Option<&J>, path: &str, out: &mut Vec<String>) {
    let J::Object(map) = fields else { return };
    for (key, sub) in map {
        if key == "." {
            continue;
        }
        if let Some(name) = key.strip_prefix("f:") {
            let next = desired.and_then(|d| d.get(name));
            let p = join(path, name);
            match next {
                None => out.push(p),
                Some(d) => owned(sub, Some(d), &p, out),
            }
        } else if let Some(k) = key.strip_prefix("k:") {
            let Ok(J::Object(want)) = serde_json::from_str::<J>(k) else {
                continue;
            };
            let keys: Vec<&str> = want.keys().map(String::as_str).collect();
            let want = J::Object(want.clone());
            let item = desired
                .and_then(J::as_array)
                .and_then(|items| items.iter().find(|i| matches_key(&want, i, &keys)));
            let label = key_of(&want, &keys);
            let p = format!("{path}[{label}]");
            match item {
                None => out.push(p),
                Some(i) => owned(sub, Some(i), &p, out),
            }
        } else if let Some(v) = key.strip_prefix("v:") {
            let Ok(value) = serde_json::from_str::<J>(v) else {
                continue;
            };
            let present = desired
                .and_then(J::as_array)
                .is_some_and(|items| items.contains(&value));
            if !present {
                out.push(format!("{path}[{v}]"));
            }
        }
    }
}

/// Metadata the server maintains; never a change cairn makes.
const VOLATILE_METADATA: &[&str] = &[
    "resourceVersion",
    "managedFields",
    "generation",
    "creationTimestamp",
    "uid",
    "selfLink",
];

/// The full difference from `before` (live) to `after` (a dry run's result), without status
/// and server-maintained metadata.
pub fn object_changes(before: &J, after: &J) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let strip = |v: &J| {
        let mut v = v.clone();
        if let J::Object(m) = &mut v {
            m.remove("status");
            if let Some(J::Object(meta)) = m.get_mut("metadata") {
                for k in VOLATILE_METADATA {
                    meta.remove(*k);
                }
            }
        }
        v
    };
    full(&strip(before), &strip(after), "", "", &mut out);
    out
}

fn full(before: &J, after: &J, path: &str, field: &str, out: &mut Vec<FieldChange>) {
    match (before, after) {
        (J::Object(b), J::Object(a)) => {
            for (k, av) in a {
                match b.get(k) {
                    Some(bv) => full(bv, av, &join(path, k), k, out),
                    None => out.push(FieldChange {
                        path: join(path, k),
                        before: None,
                        after: Some(av.clone()),
                    }),
                }
            }
            for (k, bv) in b {
                if !a.contains_key(k) {
                    out.push(FieldChange {
                        path: join(path, k),
                        before: Some(bv.clone()),
                        after: None,
                    });
                }
            }
        }
        (J::Array(b), J::Array(a)) => match list_keys(field, a).or_else(|| list_keys(field, b)) {
            Some(keys) => {
                for item in a {
                    let name = key_of(item, keys);
                    match b.iter().find(|bi| matches_key(bi, item, keys)) {
                        Some(bi) => full(bi, item, &format!("{path}[{name}]"), "", out),
                        None => out.push(FieldChange {
                            path: format!("{path}[{name}]"),
                            before: None,
                            after: Some(item.clone()),
                        }),
                    }
                }
                for item in b {
                    if !a.iter().any(|ai| matches_key(ai, item, keys)) {
                        out.push(FieldChange {
                            path: format!("{path}[{}]", key_of(item, keys)),
                            before: Some(item.clone()),
                            after: None,
                        });
                    }
                }
            }
            None => {
                if b != a {
                    out.push(FieldChange {
                        path: path.to_owned(),
                        before: Some(before.clone()),
                        after: Some(after.clone()),
                    });
                }
            }
        },
        (b, a) if scalar_eq(b, a) => {}
        (b, a) => out.push(FieldChange {
            path: path.to_owned(),
            before: Some(b.clone()),
            after: Some(a.clone()),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_of_named_things_match_by_name() {
        let desired = json!({"spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]}]}});
        let live = json!({"spec": {"containers": [{"name": "web", "imagePullPolicy": "IfNotPresent", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]}]}});
        let changes = subset_changes(&desired, &live);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, "spec.containers[web].env[B].value");
        assert_eq!(changes[0].before, Some(json!("3")));
    }

    #[test]
    fn ports_match_with_defaulted_protocol() {
        let desired = json!({"ports": [{"port": 80, "targetPort": 80}]});
        let live = json!({"ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]});
        assert!(subset_changes(&desired, &live).is_empty());
    }

    #[test]
    fn owned_fields_no_longer_desired_are_removals() {
        let fields = json!({"f:metadata": {"f:labels": {"f:tier": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:env": {"k:{\"name\":\"DEBUG\"}": {".": {}, "f:name": {}, "f:value": {}}}}}}});
        let desired = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "web", "env": []}]}});
        assert_eq!(
            removed_fields(&fields, &desired),
            vec![
                "metadata.labels.tier".to_owned(),
                "spec.containers[web].env[DEBUG]".to_owned()
            ]
        );
    }

    #[test]
    fn full_changes_ignore_server_metadata_and_status() {
        let before = json!({"metadata": {"resourceVersion": "1", "labels": {"a": "1"}}, "spec": {"replicas": 2}, "status": {"x": 1}});
        let after = json!({"metadata": {"resourceVersion": "2", "labels": {"a": "1"}}, "spec": {"replicas": 3}});
        let changes = object_changes(&before, &after);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, "spec.replicas");
    }
}
