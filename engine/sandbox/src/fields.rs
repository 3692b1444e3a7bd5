//! Field sets in the `FieldsV1` format (`f:name`, `k:{...}`, `v:...`, `.`), computed from
//! values with their schema, and the path operations server-side apply needs.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::schema::{ANY, Kind, ListKind, Schemas};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    /// The path itself is a member (a leaf, or a list element / map created by an update).
    pub member: bool,
    pub children: BTreeMap<String, FieldSet>,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Field(String),
    Key(Map<String, Value>),
    Value(Value),
}

impl Step {
    pub fn parse(s: &str) -> Option<Step> {
        if let Some(f) = s.strip_prefix("f:") {
            Some(Step::Field(f.to_string()))
        } else if let Some(k) = s.strip_prefix("k:") {
            serde_json::from_str::<Map<String, Value>>(k)
                .ok()
                .map(Step::Key)
        } else if let Some(v) = s.strip_prefix("v:") {
            serde_json::from_str::<Value>(v).ok().map(Step::Value)
        } else {
            None
        }
    }
}

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    pub fn from_json(v: &Value) -> FieldSet {
        let mut fs = FieldSet::default();
        if let Some(m) = v.as_object() {
            for (k, c) in m {
                if k == "." {
                    fs.member = true;
                    continue;
                }
                let mut child = FieldSet::from_json(c);
                if child.children.is_empty() {
                    child.member = true;
                }
                fs.children.insert(k.clone(), child);
            }
        }
        fs
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, c) in &self.children {
            m.insert(k.clone(), c.to_json());
        }
        Value::Object(m)
    }

    pub fn union(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (k, c) in &other.children {
            self.children.entry(k.clone()).or_default().union(c);
        }
    }

    /// `self - other`: removes the members of `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            let d = match other.children.get(k) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    /// Every member path, as step strings.
    pub fn members(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.member && !prefix.is_empty() {
            out.push(prefix.clone());
        }
        for (k, c) in &self.children {
            prefix.push(k.clone());
            c.collect(prefix, out);
            prefix.pop();
        }
    }

    pub fn contains(&self, path: &[String]) -> bool {
        match path.split_first() {
            None => self.member,
            Some((h, rest)) => self.children.get(h).is_some_and(|c| c.contains(rest)),
        }
    }

    pub fn insert(&mut self, path: &[String]) {
        match path.split_first() {
            None => self.member = true,
            Some((h, rest)) => self.children.entry(h.clone()).or_default().insert(rest),
        }
    }
}

/// The key string of a list element.
pub fn key_string(item: &Value, keys: &[String]) -> String {
    let mut m = BTreeMap::new();
    for k in keys {
        match item.get(k) {
            Some(v) => {
                m.insert(k.clone(), v.clone());
            }
            None if k == "protocol" => {
                m.insert(k.clone(), Value::String("TCP".into()));
            }
            None => {}
        }
    }
    let mut obj = Map::new();
    for (k, v) in m {
        obj.insert(k, v);
    }
    format!(
        "k:{}",
        serde_json::to_string(&Value::Object(obj)).unwrap_or_default()
    )
}

fn value_string(v: &Value) -> String {
    format!("v:{}", serde_json::to_string(v).unwrap_or_default())
}

/// Server-managed metadata and top-level fields that never appear in field sets.
fn skip_top(path_len: usize, parent_is_meta: bool, k: &str) -> bool {
    (path_len == 0 && matches!(k, "apiVersion" | "kind"))
        || (parent_is_meta
            && matches!(
                k,
                "name"
                    | "namespace"
                    | "uid"
                    | "resourceVersion"
                    | "generation"
                    | "creationTimestamp"
                    | "deletionTimestamp"
                    | "deletionGracePeriodSeconds"
                    | "managedFields"
                    | "selfLink"
            ))
}

/// The fields an apply configuration sets: leaves and list elements.
pub fn fields_of(arena: &Schemas, idx: usize, v: &Value) -> FieldSet {
    let mut fs = FieldSet::default();
    collect_fields(arena, idx, v, &mut fs, 0, false);
    fs
}

fn is_leaf(arena: &Schemas, idx: usize, v: &Value) -> bool {
    let n = arena.node(idx);
    match v {
        Value::Object(m) => {
            m.is_empty() || n.atomic || matches!(n.kind, Kind::Scalar(_) | Kind::Any)
        }
        Value::Array(a) => {
            a.is_empty()
                || matches!(
                    n.kind,
                    Kind::List(ListKind::Atomic) | Kind::Scalar(_) | Kind::Any
                )
        }
        _ => true,
    }
}

fn collect_fields(
    arena: &Schemas,
    idx: usize,
    v: &Value,
    fs: &mut FieldSet,
    depth: usize,
    is_meta: bool,
) {
    let n = arena.node(idx);
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if skip_top(depth, is_meta, k) || child.is_null() {
                    continue;
                }
                let ci = arena.field(idx, k).unwrap_or(ANY);
                let mut sub = FieldSet::default();
                if is_leaf(arena, ci, child) {
                    sub.member = true;
                } else {
                    collect_fields(
                        arena,
                        ci,
                        child,
                        &mut sub,
                        depth + 1,
                        depth == 0 && k == "metadata",
                    );
                }
                if !sub.is_empty() {
                    fs.children.insert(format!("f:{k}"), sub);
                }
            }
        }
        Value::Array(items) => {
            let e = n.elem.unwrap_or(ANY);
            match &n.kind {
                Kind::List(ListKind::Map(keys)) => {
                    for item in items {
                        let mut sub = FieldSet {
                            member: true,
                            ..FieldSet::default()
                        };
                        if !is_leaf(arena, e, item) {
                            collect_fields(arena, e, item, &mut sub, depth + 1, false);
                        }
                        fs.children.insert(key_string(item, keys), sub);
                    }
                }
                Kind::List(ListKind::Set) => {
                    for item in items {
                        fs.children.insert(
                            value_string(item),
                            FieldSet {
                                member: true,
                                ..FieldSet::default()
                            },
                        );
                    }
                }
                _ => fs.member = true,
            }
        }
        _ => fs.member = true,
    }
}

/// The fields an update changed from `old` to `new` (added or modified leaves; maps, lists and
/// list elements that were added are members themselves).
pub fn changed_fields(arena: &Schemas, idx: usize, old: &Value, new: &Value) -> FieldSet {
    let mut fs = FieldSet::default();
    diff_collect(arena, idx, Some(old), new, &mut fs, 0, false);
    fs
}

fn diff_collect(
    arena: &Schemas,
    idx: usize,
    old: Option<&Value>,
    new: &Value,
    fs: &mut FieldSet,
    depth: usize,
    is_meta: bool,
) {
    let n = arena.node(idx);
    let leaf = is_leaf(arena, idx, new);
    if leaf {
        if old != Some(new) {
            fs.member = true;
        }
        return;
    }
    match new {
        Value::Object(m) => {
            if old.is_none() && depth > 0 && matches!(n.kind, Kind::Map) {
                fs.member = true;
            }
            for (k, child) in m {
                if skip_top(depth, is_meta, k) || child.is_null() {
                    continue;
                }
                let ci = arena.field(idx, k).unwrap_or(ANY);
                let mut sub = FieldSet::default();
                diff_collect(
                    arena,
                    ci,
                    old.and_then(|o| o.get(k)),
                    child,
                    &mut sub,
                    depth + 1,
                    depth == 0 && k == "metadata",
                );
                if !sub.is_empty() {
                    fs.children.insert(format!("f:{k}"), sub);
                }
            }
        }
        Value::Array(items) => {
            if old.is_none() {
                fs.member = true;
            }
            let e = n.elem.unwrap_or(ANY);
            match &n.kind {
                Kind::List(ListKind::Map(keys)) => {
                    for item in items {
                        let ks = key_string(item, keys);
                        let old_item = old
                            .and_then(Value::as_array)
                            .and_then(|a| a.iter().find(|o| key_string(o, keys) == ks));
                        let mut sub = FieldSet::default();
                        if old_item.is_none() {
                            sub.member = true;
                        }
                        diff_collect(arena, e, old_item, item, &mut sub, depth + 1, false);
                        if old_item.is_none() {
                            sub.member = true;
                        }
                        if !sub.is_empty() {
                            fs.children.insert(ks, sub);
                        }
                    }
                }
                Kind::List(ListKind::Set) => {
                    for item in items {
                        let had = old
                            .and_then(Value::as_array)
                            .is_some_and(|a| a.contains(item));
                        if !had {
                            fs.children.insert(
                                value_string(item),
                                FieldSet {
                                    member: true,
                                    ..FieldSet::default()
                                },
                            );
                        }
                    }
                }
                _ => {
                    if old != Some(new) {
                        fs.member = true;
                    }
                }
            }
        }
        _ => {}
    }
}

fn find_item(items: &[Value], step: &Step) -> Option<usize> {
    items.iter().position(|item| match step {
        Step::Key(k) => k.iter().all(|(kk, kv)| match item.get(kk) {
            Some(v) => v == kv,
            None => kk == "protocol" && kv == "TCP",
        }),
        Step::Value(v) => item == v,
        Step::Field(_) => false,
    })
}

/// The value one step (`f:name`, `k:{…}`, `v:…`) below `v`, if any; a field costs no copy.
pub fn child<'a>(v: &'a Value, step: &str) -> Option<&'a Value> {
    if let (Some(f), Value::Object(m)) = (step.strip_prefix("f:"), v) {
        return m.get(f);
    }
    let Value::Array(items) = v else {
        return None;
    };
    items.get(find_item(items, &Step::parse(step)?)?)
}

/// The value at a path, if any.
pub fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let Some((h, rest)) = path.split_first() else {
        return Some(v);
    };
    let step = Step::parse(h)?;
    let next = match (&step, v) {
        (Step::Field(f), Value::Object(m)) => m.get(f)?,
        (_, Value::Array(items)) => items.get(find_item(items, &step)?)?,
        _ => return None,
    };
    get_path(next, rest)
}

/// Removes the value at a path; returns whether something was removed.
pub fn remove_path(v: &mut Value, path: &[String]) -> bool {
    let Some((h, rest)) = path.split_first() else {
        return false;
    };
    let Some(step) = Step::parse(h) else {
        return false;
    };
    match (&step, v) {
        (Step::Field(f), Value::Object(m)) => {
            if rest.is_empty() {
                m.shift_remove(f).is_some()
            } else {
                m.get_mut(f).is_some_and(|c| remove_path(c, rest))
            }
        }
        (_, Value::Array(items)) => {
            let Some(i) = find_item(items, &step) else {
                return false;
            };
            if rest.is_empty() {
                items.remove(i);
                true
            } else {
                items.get_mut(i).is_some_and(|c| remove_path(c, rest))
            }
        }
        _ => false,
    }
}

/// A path as the API server prints it in conflicts: `.spec.containers[name="web"].image`.
pub fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for s in path {
        match Step::parse(s) {
            Some(Step::Field(f)) => {
                out.push('.');
                out.push_str(&f);
            }
            Some(Step::Key(k)) => {
                let parts: Vec<String> = k
                    .iter()
                    .map(|(kk, kv)| {
                        format!("{kk}={}", serde_json::to_string(kv).unwrap_or_default())
                    })
                    .collect();
                out.push_str(&format!("[{}]", parts.join(",")));
            }
            Some(Step::Value(v)) => {
                out.push_str(&format!(
                    "[={}]",
                    serde_json::to_string(&v).unwrap_or_default()
                ));
            }
            None => {}
        }
    }
    out
}
