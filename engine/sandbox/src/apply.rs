//! Server-side apply: merging an applied configuration into the live object, field ownership
//! in `metadata.managedFields`, conflicts, and the bookkeeping of Update operations.

use cairn_model::JsonPath as _;
use serde_json::{Map, Value, json};

use crate::fields::{
    self, FieldSet, changed_fields, display_path, fields_of, get_path, key_string,
};
use crate::schema::{ANY, Kind, ListKind, Schemas};
use crate::util::{self, ApiError};

#[derive(Debug, Clone)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub fields: FieldSet,
    pub subresource: Option<String>,
}

pub fn read_entries(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj.at("/metadata/managedFields").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .map(|e| {
            let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            Entry {
                manager: s("manager"),
                operation: s("operation"),
                api_version: s("apiVersion"),
                time: s("time"),
                fields: FieldSet::from_json(e.get("fieldsV1").unwrap_or(&Value::Null)),
                subresource: e
                    .get("subresource")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }
        })
        .collect()
}

pub fn write_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.fields.is_empty());
    entries.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then(p.time.cmp(&q.time))
            .then(p.manager.cmp(&q.manager))
            .then(p.api_version.cmp(&q.api_version))
            .then(p.subresource.cmp(&q.subresource))
    });
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut m = Map::new();
            m.insert("manager".into(), json!(e.manager));
            m.insert("operation".into(), json!(e.operation));
            m.insert("apiVersion".into(), json!(e.api_version));
            m.insert("time".into(), json!(e.time));
            m.insert("fieldsType".into(), json!("FieldsV1"));
            m.insert("fieldsV1".into(), e.fields.to_json());
            if let Some(s) = &e.subresource {
                m.insert("subresource".into(), json!(s));
            }
            Value::Object(m)
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.shift_remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Merges an applied configuration into the live object.
pub fn merge(arena: &Schemas, idx: usize, live: &Value, cfg: &Value) -> Value {
    let n = arena.node(idx);
    match (live, cfg) {
        (Value::Object(l), Value::Object(c)) if !n.atomic && !matches!(n.kind, Kind::Scalar(_)) => {
            let mut out = l.clone();
            for (k, cv) in c {
                // An explicit null clears the field (structured-merge-diff sets it to null, and
                // the Go types drop it): how a defaulted block nobody owns is removed.
                if cv.is_null() {
                    out.shift_remove(k);
                    continue;
                }
                let ci = arena.field(idx, k).unwrap_or(ANY);
                let merged = match l.get(k) {
                    Some(lv) => merge(arena, ci, lv, cv),
                    None => cv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => {
            let e = n.elem.unwrap_or(ANY);
            match &n.kind {
                Kind::List(ListKind::Map(keys)) => {
                    let mut out = l.clone();
                    for ci in c {
                        let ks = key_string(ci, keys);
                        match out.iter().position(|o| key_string(o, keys) == ks) {
                            Some(p) => out[p] = merge(arena, e, &out[p], ci),
                            None => out.push(ci.clone()),
                        }
                    }
                    Value::Array(out)
                }
                Kind::List(ListKind::Set) => {
                    let mut out = l.clone();
                    for ci in c {
                        if !out.contains(ci) {
                            out.push(ci.clone());
                        }
                    }
                    Value::Array(out)
                }
                _ => cfg.clone(),
            }
        }
        _ => cfg.clone(),
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Some(t) = target.as_object_mut() {
                for (k, v) in p {
                    if v.is_null() {
                        t.shift_remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// Strategic merge patch (the common subset: maps merge, lists with a merge key merge by key,
/// `null` deletes, `$patch: delete` removes a list element).
pub fn strategic_patch(arena: &Schemas, idx: usize, target: &mut Value, patch: &Value) {
    let n = arena.node(idx);
    if let (Some(t), Value::Object(p)) = (target.as_object_mut(), patch) {
        {
            for (k, v) in p {
                if k.starts_with('$') {
                    continue;
                }
                if v.is_null() {
                    t.shift_remove(k);
                    continue;
                }
                let ci = arena.field(idx, k).unwrap_or(ANY);
                match t.get_mut(k) {
                    Some(tv) => strategic_patch(arena, ci, tv, v),
                    None => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
            return;
        }
    }
    if let (Value::Array(t), Value::Array(p), Kind::List(ListKind::Map(keys))) =
        (&mut *target, patch, &n.kind)
    {
        let e = n.elem.unwrap_or(ANY);
        for item in p {
            let ks = key_string(item, keys);
            let pos = t.iter().position(|o| key_string(o, keys) == ks);
            let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
            match (pos, delete) {
                (Some(i), true) => {
                    t.remove(i);
                }
                (Some(i), false) => strategic_patch(arena, e, &mut t[i], item),
                (None, false) => t.push(item.clone()),
                (None, true) => {}
            }
        }
        return;
    }
    *target = patch.clone();
}

/// The body of the object without server-managed metadata, for comparisons.
pub fn comparable(v: &Value) -> Value {
    let mut c = v.clone();
    if let Some(m) = c.get_mut("metadata").and_then(Value::as_object_mut) {
        m.shift_remove("managedFields");
        m.shift_remove("resourceVersion");
    }
    c
}

/// Whether two versions of an object are the same but for their bookkeeping (managed fields
/// and resource version): `comparable(a) == comparable(b)`, without copying either.
pub fn same_but_bookkeeping(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let skip = |k: &str| k == "managedFields" || k == "resourceVersion";
    let same_meta = |x: Option<&Value>, y: Option<&Value>| match (
        x.and_then(Value::as_object),
        y.and_then(Value::as_object),
    ) {
        (Some(x), Some(y)) => {
            x.iter().filter(|(k, _)| !skip(k)).count() == y.iter().filter(|(k, _)| !skip(k)).count()
                && x.iter()
                    .filter(|(k, _)| !skip(k))
                    .all(|(k, v)| y.get(k) == Some(v))
        }
        _ => x == y,
    };
    a.len() == b.len()
        && a.iter().all(|(k, v)| {
            if k == "metadata" {
                same_meta(Some(v), b.get(k))
            } else {
                b.get(k) == Some(v)
            }
        })
}

/// Result of computing an apply.
pub struct Applied {
    pub object: Value,
    pub entries: Vec<Entry>,
}

/// Merges `cfg` into `live` for `manager`, resolving ownership. `live` is `Null` for a create.
pub fn apply(
    arena: &Schemas,
    idx: usize,
    live: &Value,
    cfg: &Value,
    manager: &str,
    api_version: &str,
    force: bool,
) -> Result<Applied, ApiError> {
    let applied = fields_of(arena, idx, cfg);
    let mut entries = read_entries(live);
    let base = if live.is_null() {
        Value::Object(Map::new())
    } else {
        comparable(live)
    };
    let mut merged = merge(arena, idx, &base, cfg);

    // Conflicts with other managers that own a field this apply changes.
    let mut conflicts: Vec<(usize, Vec<String>)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.manager == manager {
            continue;
        }
        let overlap = applied.intersection(&e.fields);
        for p in overlap.members() {
            if get_path(&base, &p) != get_path(&merged, &p) {
                conflicts.push((i, p));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&entries, &conflicts));
    }
    for (i, p) in &conflicts {
        let mut one = FieldSet::default();
        one.insert(p);
        if let Some(e) = entries.get_mut(*i) {
            e.fields = e.fields.difference(&one);
        }
    }

    // Fields this manager applied before and no longer applies, owned by nobody else.
    let previous = entries
        .iter()
        .find(|e| e.manager == manager && e.operation == "Apply")
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut others = FieldSet::default();
    for e in &entries {
        if !(e.manager == manager && e.operation == "Apply") {
            others.union(&e.fields);
        }
    }
    let removed = previous.difference(&applied);
    for p in removed.members() {
        if !others.contains(&p) {
            fields::remove_path(&mut merged, &p);
        }
    }

    let now = util::now();
    match entries
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Apply")
    {
        Some(e) => {
            if e.fields != applied || e.api_version != api_version {
                e.time = now;
            }
            e.fields = applied;
            e.api_version = api_version.to_string();
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version: api_version.to_string(),
            time: now,
            fields: applied,
            subresource: None,
        }),
    }
    Ok(Applied {
        object: merged,
        entries,
    })
}

fn conflict_error(entries: &[Entry], conflicts: &[(usize, Vec<String>)]) -> ApiError {
    let who = |i: usize| {
        let e = &entries[i];
        let sub = e
            .subresource
            .as_deref()
            .map(|s| format!(" with subresource \"{s}\""))
            .unwrap_or_default();
        if e.operation == "Apply" {
            format!("conflict with \"{}\"{sub}", e.manager)
        } else {
            format!(
                "conflict with \"{}\"{sub} using {}",
                e.manager, e.api_version
            )
        }
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(i, p)| {
            json!({"reason": "FieldManagerConflict", "message": who(*i), "field": display_path(p)})
        })
        .collect();
    let message = if conflicts.len() == 1 {
        let (i, p) = &conflicts[0];
        format!(
            "Apply failed with 1 conflict: {}: {}",
            who(*i),
            display_path(p)
        )
    } else {
        let mut s = format!("Apply failed with {} conflicts: ", conflicts.len());
        let mut groups: Vec<(usize, Vec<String>)> = Vec::new();
        for (i, p) in conflicts {
            match groups.iter_mut().find(|(g, _)| g == i) {
                Some((_, ps)) => ps.push(display_path(p)),
                None => groups.push((*i, vec![display_path(p)])),
            }
        }
        let parts: Vec<String> = groups
            .iter()
            .map(|(i, ps)| {
                let w = who(*i).replacen("conflict with", "conflicts with", 1);
                format!("{w}:\n- {}", ps.join("\n- "))
            })
            .collect();
        s.push_str(&parts.join("\n"));
        s
    };
    ApiError::new(409, "Conflict", message).with_details(json!({"causes": causes}))
}

/// Records an Update operation by `manager` that turned `old` into `new`.
#[allow(clippy::too_many_arguments)]
pub fn record_update(
    arena: &Schemas,
    idx: usize,
    old: &Value,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
) {
    let mut entries = read_entries(old);
    // Field sets never hold the bookkeeping (managed fields, resource version), so the objects
    // are compared as they are.
    let changed = changed_fields(arena, idx, old, new);
    for e in &mut entries {
        if !(e.manager == manager && e.operation == "Update") {
            e.fields = e.fields.difference(&changed);
        }
        e.fields = retain_existing(&e.fields, Some(old), Some(new));
    }
    if !changed.is_empty() {
        let now = util::now();
        match entries.iter_mut().find(|e| {
            e.manager == manager
                && e.operation == "Update"
                && e.subresource.as_deref() == subresource
                && e.api_version == api_version
        }) {
            Some(e) => {
                e.fields.union(&changed);
                e.time = now;
            }
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: api_version.to_string(),
                time: now,
                fields: changed,
                subresource: subresource.map(str::to_string),
            }),
        }
    }
    write_entries(new, entries);
}

/// Drops the members of `fs` whose path existed in `old` and no longer exists in `new`
/// (`old` and `new` are the values at the set's path, walked down together).
fn retain_existing(fs: &FieldSet, old: Option<&Value>, new: Option<&Value>) -> FieldSet {
    let mut out = FieldSet {
        member: fs.member,
        children: Default::default(),
    };
    for (k, c) in &fs.children {
        let (o, n) = (
            old.and_then(|v| fields::child(v, k)),
            new.and_then(|v| fields::child(v, k)),
        );
        if n.is_some() || o.is_none() {
            let r = retain_existing(c, o, n);
            if !r.is_empty() {
                out.children.insert(k.clone(), r);
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bookkeeping_is_all_that_same_but_bookkeeping_ignores() {
        let a = json!({"metadata": {"name": "x", "resourceVersion": "1", "managedFields": [1]},
            "data": {"k": "v"}});
        let b = json!({"metadata": {"name": "x", "resourceVersion": "2"}, "data": {"k": "v"}});
        assert!(same_but_bookkeeping(&a, &b));
        assert_eq!(comparable(&a), comparable(&b));
        for c in [
            json!({"metadata": {"name": "y", "resourceVersion": "1"}, "data": {"k": "v"}}),
            json!({"metadata": {"name": "x", "labels": {}}, "data": {"k": "v"}}),
            json!({"metadata": {"name": "x"}, "data": {"k": "w"}}),
            json!({"metadata": {"name": "x"}, "data": {"k": "v"}, "status": {}}),
            json!({"data": {"k": "v"}}),
        ] {
            assert!(!same_but_bookkeeping(&a, &c), "{c}");
            assert_ne!(comparable(&a), comparable(&c), "{c}");
        }
    }
}
