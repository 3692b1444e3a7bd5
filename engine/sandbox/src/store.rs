//! The object store: objects by type, namespace and name; the global resourceVersion counter;
//! the write path (defaults, validation, managedFields, generation) and watch events.

use cairn_model::JsonPath as _;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::apply::{self, comparable, record_update, write_entries};
use crate::defaults::{self, Allocator};
use crate::registry::{Registry, ResourceType};
use crate::util::{self, ApiError};
use crate::{rules, schema, volumes};

#[derive(Debug, Clone)]
pub struct Event {
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub rv: u64,
    pub kind: &'static str,
    pub object: Arc<Value>,
}

/// Objects of one type by (namespace, name).
type Bucket = BTreeMap<(String, String), Arc<Value>>;
type Objects = BTreeMap<(String, String), Bucket>;

/// The bytes of an object's etcd key below its type, `namespace/name`: the order a LIST
/// pages in ("rec-ns-quota/web" comes before "rec-ns/web").
fn etcd_order((ns, name): &(String, String)) -> impl Iterator<Item = u8> + '_ {
    ns.bytes().chain(std::iter::once(b'/')).chain(name.bytes())
}

/// One page of a LIST (`Store::list_page`).
#[derive(Debug, Default)]
pub struct ListPage {
    pub items: Vec<Arc<Value>>,
    /// The key of the page's last object, when keys follow it (whether or not they match):
    /// where the next page starts.
    pub last: Option<String>,
    /// How many keys follow the page (matching or not).
    pub remaining: usize,
}

impl ListPage {
    fn collect<'a, K: Copy>(
        entries: impl Iterator<Item = (K, &'a Arc<Value>)>,
        limit: Option<usize>,
        keep: &dyn Fn(&Value) -> bool,
        key: impl Fn(K) -> String,
    ) -> ListPage {
        let mut page = ListPage::default();
        let mut entries = entries.peekable();
        while let Some((k, v)) = entries.next() {
            if !keep(v) {
                continue;
            }
            page.items.push(v.clone());
            if limit.is_some_and(|l| page.items.len() >= l) {
                if entries.peek().is_some() {
                    page.last = Some(key(k));
                }
                break;
            }
        }
        page.remaining = entries.count();
        page
    }
}

/// Where an object is stored: type (group, plural), namespace, name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    pub group: String,
    pub plural: String,
    pub ns: String,
    pub name: String,
}

/// A write the controllers have not looked at yet.
#[derive(Debug, Clone)]
pub struct Change {
    pub key: ObjKey,
    pub uid: String,
    /// Owner uids of the previous and the new version.
    pub owners: Vec<String>,
    pub removed: bool,
    /// A status the object's own controller wrote: nothing for that controller to look at
    /// again (its owners still recompute theirs).
    pub own_status: bool,
}

fn owner_uids(o: &Value) -> impl Iterator<Item = &str> {
    o.at("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("uid").and_then(Value::as_str))
}

pub struct State {
    pub registry: Registry,
    pub objects: Objects,
    pub rv: u64,
    pub history: VecDeque<Event>,
    pub tx: broadcast::Sender<Event>,
    pub next_ip: u32,
    pub next_port: i64,
    pub dirty: bool,
    /// Container logs: (namespace, pod, container) -> lines.
    pub logs: HashMap<(String, String, String), Vec<String>>,
    /// uid -> where the object is stored.
    pub uids: HashMap<String, ObjKey>,
    /// Owner uid -> the objects whose ownerReferences name it.
    pub dependents: HashMap<String, BTreeSet<ObjKey>>,
    /// Writes since the controllers last looked (drained by the controller loop).
    pub changes: Vec<Change>,
}

/// What is persisted.
#[derive(Serialize, Deserialize)]
pub struct Persisted {
    pub resource_version: u64,
    pub next_ip: u32,
    pub objects: Vec<Value>,
}

/// A cheap copy of what is persisted, taken under the lock and serialized outside it.
pub struct Snapshot {
    pub resource_version: u64,
    pub next_ip: u32,
    pub objects: Vec<Arc<Value>>,
}

#[derive(Serialize)]
struct PersistedRef<'a> {
    resource_version: u64,
    next_ip: u32,
    objects: Vec<&'a Value>,
}

impl Snapshot {
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(&PersistedRef {
            resource_version: self.resource_version,
            next_ip: self.next_ip,
            objects: self.objects.iter().map(|o| &**o).collect(),
        })
    }
}

pub struct WriteOpts<'a> {
    pub manager: &'a str,
    pub dry_run: bool,
    pub subresource: Option<&'a str>,
}

struct Alloc<'a> {
    ip: &'a mut u32,
    port: &'a mut i64,
}

impl Allocator for Alloc<'_> {
    fn cluster_ip(&mut self) -> String {
        *self.ip += 1;
        // 10.96.0.0/12: skip .0 and the API server's 10.96.0.1.
        let n = *self.ip + 10;
        format!("10.{}.{}.{}", 96 + (n >> 16) % 16, (n >> 8) & 255, n & 255)
    }
    fn node_port(&mut self) -> i64 {
        *self.port += 1;
        30000 + (*self.port % 2768)
    }
}

pub fn meta_str<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get("metadata")
        .and_then(|m| m.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

impl State {
    pub fn new() -> State {
        let (tx, _) = broadcast::channel(4096);
        let mut s = State {
            registry: Registry::builtin(),
            objects: BTreeMap::new(),
            rv: 1000,
            history: VecDeque::new(),
            tx,
            next_ip: 0,
            next_port: 0,
            dirty: false,
            logs: Default::default(),
            uids: HashMap::new(),
            dependents: HashMap::new(),
            changes: Vec::new(),
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            if let Some(rt) = s.registry.get("", "v1", "namespaces") {
                let _ = s.create(
                    &rt,
                    "",
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                    &WriteOpts {
                        manager: "kube-apiserver",
                        dry_run: false,
                        subresource: None,
                    },
                );
            }
        }
        if let Some(rt) = s.registry.get("storage.k8s.io", "v1", "storageclasses") {
            let _ = s.create(
                &rt,
                "",
                volumes::local_path_class(),
                &WriteOpts {
                    manager: "k3s",
                    dry_run: false,
                    subresource: None,
                },
            );
        }
        s
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            resource_version: self.rv,
            next_ip: self.next_ip,
            objects: self
                .objects
                .values()
                .flat_map(|m| m.values().cloned())
                .collect(),
        }
    }

    pub fn restore(&mut self, p: Persisted) {
        self.objects.clear();
        self.uids.clear();
        self.dependents.clear();
        self.changes.clear();
        self.rv = p.resource_version;
        self.next_ip = p.next_ip;
        // CRDs first, so their types exist.
        for o in &p.objects {
            if o.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition")
                && is_established(o)
            {
                self.registry.add_crd(o);
            }
        }
        for o in p.objects {
            let av = o.get("apiVersion").and_then(Value::as_str).unwrap_or("");
            let kind = o.get("kind").and_then(Value::as_str).unwrap_or("");
            if let Some(rt) = self.registry.by_kind(av, kind) {
                let key = ObjKey {
                    group: rt.group.clone(),
                    plural: rt.plural.clone(),
                    ns: meta_str(&o, "namespace").to_string(),
                    name: meta_str(&o, "name").to_string(),
                };
                let o = Arc::new(o);
                self.index(&key, None, Some(&o));
                self.objects
                    .entry((key.group, key.plural))
                    .or_default()
                    .insert((key.ns, key.name), o);
            }
        }
    }

    /// Keeps the uid and owner indexes in step with a write of `key` from `old` to `new`.
    fn index(&mut self, key: &ObjKey, old: Option<&Value>, new: Option<&Value>) {
        if let Some(o) = old {
            let uid = meta_str(o, "uid");
            if self.uids.get(uid) == Some(key) {
                self.uids.remove(uid);
            }
            for r in owner_uids(o) {
                if let Some(set) = self.dependents.get_mut(r) {
                    set.remove(key);
                    if set.is_empty() {
                        self.dependents.remove(r);
                    }
                }
            }
        }
        if let Some(n) = new {
            let uid = meta_str(n, "uid");
            if !uid.is_empty() {
                self.uids.insert(uid.to_string(), key.clone());
            }
            for r in owner_uids(n) {
                self.dependents
                    .entry(r.to_string())
                    .or_default()
                    .insert(key.clone());
            }
        }
    }

    fn bucket(&self, rt: &ResourceType) -> Option<&Bucket> {
        self.objects.get(&(rt.group.clone(), rt.plural.clone()))
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<&Value> {
        self.get_arc(rt, ns, name).map(|o| &**o)
    }

    pub fn get_arc(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<&Arc<Value>> {
        self.bucket(rt)
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
    }

    /// The object stored under `key`.
    pub fn get_key(&self, key: &ObjKey) -> Option<&Arc<Value>> {
        self.objects
            .get(&(key.group.clone(), key.plural.clone()))
            .and_then(|m| m.get(&(key.ns.clone(), key.name.clone())))
    }

    /// Objects of a type in one namespace (`ns` non-empty), in name order.
    fn in_namespace<'a>(
        m: &'a Bucket,
        ns: &'a str,
    ) -> impl Iterator<Item = (&'a (String, String), &'a Arc<Value>)> + 'a {
        m.range((ns.to_string(), String::new())..)
            .take_while(move |((n, _), _)| n == ns)
    }

    /// One page of a LIST as etcd serves it: the objects `keep` accepts, in key order, from
    /// the key `start` on, until `limit` of them (if any) are found. `start` and the page's
    /// keys are names within one namespace (`Some("")` for a cluster-scoped type), or
    /// `namespace/name` across all namespaces (`None`). Costs what the page covers, not what
    /// the type holds.
    pub fn list_page(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        start: &str,
        limit: Option<usize>,
        keep: &dyn Fn(&Value) -> bool,
    ) -> ListPage {
        let Some(m) = self.bucket(rt) else {
            return ListPage::default();
        };
        if let Some(ns) = ns {
            let from = (ns.to_string(), start.to_string());
            let entries = m
                .range(from..)
                .take_while(|((n, _), _)| n == ns)
                .map(|((_, name), v)| (name.as_str(), v));
            return ListPage::collect(entries, limit, keep, |name| name.to_string());
        }
        let mut all: Vec<_> = m.iter().collect();
        all.sort_by(|(a, _), (b, _)| etcd_order(a).cmp(etcd_order(b)));
        let first = all.partition_point(|(k, _)| etcd_order(k).lt(start.bytes()));
        let entries = all[first..].iter().copied();
        ListPage::collect(entries, limit, keep, |(n, name)| format!("{n}/{name}"))
    }

    /// Objects of a type, in key order (namespace, name); `ns` empty = all namespaces.
    pub fn list_arc(&self, rt: &ResourceType, ns: &str) -> Vec<Arc<Value>> {
        let Some(m) = self.bucket(rt) else {
            return Vec::new();
        };
        if !ns.is_empty() {
            return Self::in_namespace(m, ns).map(|(_, v)| v.clone()).collect();
        }
        let mut items: Vec<(String, Arc<Value>)> = m
            .iter()
            .map(|((n, name), v)| (format!("{n}/{name}"), v.clone()))
            .collect();
        // etcd key order: "rec-ns-quota/web" sorts before "rec-ns/web".
        items.sort_by(|a, b| a.0.cmp(&b.0));
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// Objects of a type, in key order (namespace, name); `ns` empty = all namespaces.
    pub fn list(&self, rt: &ResourceType, ns: &str) -> Vec<Value> {
        self.list_arc(rt, ns)
            .into_iter()
            .map(|o| (*o).clone())
            .collect()
    }

    /// How many objects of a type a namespace holds (`ns` empty = all).
    pub fn count(&self, rt: &ResourceType, ns: &str) -> usize {
        match self.bucket(rt) {
            None => 0,
            Some(m) if ns.is_empty() => m.len(),
            Some(m) => Self::in_namespace(m, ns).count(),
        }
    }

    /// Objects of type `rt` in namespace `ns` whose ownerReferences name `owner_uid`, in name
    /// order (what filtering a LIST of the namespace by owner gives).
    pub fn dependents_in(&self, rt: &ResourceType, ns: &str, owner_uid: &str) -> Vec<Arc<Value>> {
        self.dependents
            .get(owner_uid)
            .into_iter()
            .flatten()
            .filter(|k| k.group == rt.group && k.plural == rt.plural && k.ns == ns)
            .filter_map(|k| self.get_key(k).cloned())
            .collect()
    }

    fn emit(&mut self, rt: &ResourceType, kind: &'static str, object: Arc<Value>) {
        let ev = Event {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: meta_str(&object, "namespace").to_string(),
            rv: self.rv,
            kind,
            object,
        };
        self.history.push_back(ev.clone());
        while self.history.len() > 5000 {
            self.history.pop_front();
        }
        let _ = self.tx.send(ev);
        self.dirty = true;
    }

    fn record_change(&mut self, key: ObjKey, old: Option<&Value>, new: &Value, removed: bool) {
        let mut owners: Vec<String> = old
            .into_iter()
            .flat_map(owner_uids)
            .chain(owner_uids(new))
            .map(str::to_string)
            .collect();
        owners.sort();
        owners.dedup();
        self.changes.push(Change {
            key,
            uid: meta_str(new, "uid").to_string(),
            owners,
            removed,
            own_status: false,
        });
    }

    /// Stores `obj` with a new resourceVersion.
    fn commit(&mut self, rt: &ResourceType, mut obj: Value, kind: &'static str) -> Arc<Value> {
        self.rv += 1;
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("resourceVersion".into(), json!(self.rv.to_string()));
        }
        let obj = util::order_object(obj);
        let key = ObjKey {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            ns: meta_str(&obj, "namespace").to_string(),
            name: meta_str(&obj, "name").to_string(),
        };
        let stored = Arc::new(obj);
        let old = self
            .objects
            .entry((rt.group.clone(), rt.plural.clone()))
            .or_default()
            .insert((key.ns.clone(), key.name.clone()), stored.clone());
        self.index(&key, old.as_deref(), Some(&stored));
        self.record_change(key, old.as_deref(), &stored, false);
        self.emit(rt, kind, stored.clone());
        stored
    }

    /// Removes an object for good.
    pub fn remove(&mut self, rt: &ResourceType, ns: &str, name: &str) -> Option<Arc<Value>> {
        let old = self
            .objects
            .get_mut(&(rt.group.clone(), rt.plural.clone()))?
            .remove(&(ns.to_string(), name.to_string()))?;
        let key = ObjKey {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            ns: ns.to_string(),
            name: name.to_string(),
        };
        self.index(&key, Some(&old), None);
        let mut obj = old;
        self.rv += 1;
        if let Some(m) = Arc::make_mut(&mut obj)
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
        {
            m.insert("resourceVersion".into(), json!(self.rv.to_string()));
        }
        self.record_change(key, None, &obj, true);
        self.emit(rt, "DELETED", obj.clone());
        Some(obj)
    }

    fn check_namespace(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<(), ApiError> {
        if !rt.namespaced {
            return Ok(());
        }
        let Some(nst) = self.registry.get("", "v1", "namespaces") else {
            return Ok(());
        };
        match self.get(&nst, "", ns) {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if n.at("/metadata/deletionTimestamp").is_some() => Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    util::qualified(&rt.plural, &rt.group)
                ),
            )
            .with_details(json!({
                "name": name,
                "kind": rt.plural,
                "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]
            }))),
            Some(_) => Ok(()),
        }
    }

    /// Quantities, defaults, validation: everything between the request body and storage.
    fn prepare(&mut self, rt: &ResourceType, obj: &mut Value, apply: bool) -> Result<(), ApiError> {
        let arena = &rt.schema.arena;
        if schema::normalize_quantities(arena, rt.schema.idx, obj).is_err() {
            let msg = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
            let ns = meta_str(obj, "namespace");
            let name = meta_str(obj, "name");
            return Err(if apply {
                ApiError::internal(format!(
                    "failed to convert new object ({ns}/{name}; {}) to proper version: unable to convert unstructured object to {}: {msg}",
                    rt.gvk_string(),
                    rt.gvk_string()
                ))
            } else {
                ApiError::bad_request(format!(
                    "{} in version \"{}\" cannot be handled as a {}: {msg}",
                    rt.kind, rt.version, rt.kind
                ))
            });
        }
        let mut alloc = Alloc {
            ip: &mut self.next_ip,
            port: &mut self.next_port,
        };
        defaults::apply(rt, obj, &mut alloc);
        if rt.custom {
            schema::apply_defaults(arena, rt.schema.idx, obj);
        }
        let mut causes = defaults::validate(rt, obj);
        causes.extend(rules::object(rt, obj));
        if rt.custom {
            schema::validate(arena, rt.schema.idx, obj, "", &mut causes);
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid(
                &rt.group,
                &rt.kind,
                meta_str(obj, "name"),
                causes,
            ));
        }
        Ok(())
    }

    /// Update validation and the validating admission after it: what the server refuses about
    /// `new` replacing `old` (immutable fields, claim resizes). Status writes are not checked.
    fn admit_update(
        &self,
        rt: &ResourceType,
        old: &Value,
        new: &Value,
        subresource: Option<&str>,
    ) -> Result<(), ApiError> {
        if subresource.is_some() {
            return Ok(());
        }
        let causes = rules::update(rt, old, new);
        if !causes.is_empty() {
            return Err(ApiError::invalid(
                &rt.group,
                &rt.kind,
                meta_str(new, "name"),
                causes,
            ));
        }
        if !rt.custom && rt.group.is_empty() && rt.kind == "PersistentVolumeClaim" {
            volumes::admit_resize(self, old, new)?;
        }
        Ok(())
    }

    /// Mutating admission of a new object (DefaultStorageClass).
    fn admit_create(&self, rt: &ResourceType, obj: &mut Value) {
        if !rt.custom && rt.group.is_empty() && rt.kind == "PersistentVolumeClaim" {
            volumes::default_class(self, obj);
        }
        defaults::protection_finalizer(rt, obj);
    }

    fn fill_new_meta(&self, rt: &ResourceType, obj: &mut Value, ns: &str) {
        if let Some(m) = obj.as_object_mut() {
            m.insert("apiVersion".into(), json!(rt.api_version()));
            m.insert("kind".into(), json!(rt.kind));
            let meta = m.entry("metadata").or_insert(json!({}));
            if let Some(meta) = meta.as_object_mut() {
                if rt.namespaced {
                    meta.insert("namespace".into(), json!(ns));
                } else {
                    meta.shift_remove("namespace");
                }
                meta.insert("uid".into(), json!(util::uid()));
                meta.insert("creationTimestamp".into(), json!(util::now()));
                if rt.generation {
                    meta.insert("generation".into(), json!(1));
                } else {
                    meta.shift_remove("generation");
                }
                meta.shift_remove("resourceVersion");
                meta.shift_remove("managedFields");
            }
        }
    }

    /// POST.
    pub fn create(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        mut obj: Value,
        opts: &WriteOpts,
    ) -> Result<Arc<Value>, ApiError> {
        let mut name = meta_str(&obj, "name").to_string();
        if name.is_empty() {
            let prefix = meta_str(&obj, "generateName").to_string();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    &rt.group,
                    &rt.kind,
                    "",
                    vec![(
                        "FieldValueRequired".into(),
                        "Required value: name or generateName is required".into(),
                        "metadata.name".into(),
                    )],
                ));
            }
            name = format!("{prefix}{}", util::random_suffix(5));
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("name".into(), json!(name));
            }
        }
        self.check_namespace(rt, ns, &name)?;
        if self.get(rt, ns, &name).is_some() {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
        }
        schema::prune_unknown(&rt.schema.arena, rt.schema.idx, &mut obj);
        self.fill_new_meta(rt, &mut obj, ns);
        if rt.group.is_empty() && rt.kind == "Pod" {
            crate::controllers::admit_pod(self, ns, &mut obj)?;
        }
        self.admit_create(rt, &mut obj);
        self.prepare(rt, &mut obj, false)?;
        let old = json!({});
        record_update(
            &rt.schema.arena,
            rt.schema.idx,
            &old,
            &mut obj,
            opts.manager,
            &rt.api_version(),
            None,
        );
        if opts.dry_run {
            return Ok(Arc::new(util::order_object(obj)));
        }
        Ok(self.commit(rt, obj, "ADDED"))
    }

    /// PUT (and the end of PATCH): replaces the object; optimistic concurrency when the body
    /// carries a resourceVersion.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut obj: Value,
        opts: &WriteOpts,
    ) -> Result<Arc<Value>, ApiError> {
        let Some(old) = self.get_arc(rt, ns, name).cloned() else {
            return Err(ApiError::not_found(&rt.group, &rt.plural, name));
        };
        let body_name = meta_str(&obj, "name");
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let rv = meta_str(&obj, "resourceVersion");
        if !rv.is_empty() && rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::conflict(&rt.group, &rt.plural, name));
        }
        schema::prune_unknown(&rt.schema.arena, rt.schema.idx, &mut obj);
        self.finish_update(rt, old, obj, opts)
    }

    /// Common tail of updates: keeps immutable metadata, status/spec split, generation.
    pub fn finish_update(
        &mut self,
        rt: &ResourceType,
        old: Arc<Value>,
        mut obj: Value,
        opts: &WriteOpts,
    ) -> Result<Arc<Value>, ApiError> {
        if !rt.custom && rt.group.is_empty() && rt.kind == "Service" {
            defaults::keep_allocated(&old, &mut obj);
        }
        if let Some(m) = obj.as_object_mut() {
            m.insert("apiVersion".into(), json!(rt.api_version()));
            m.insert("kind".into(), json!(rt.kind));
            let meta = m.entry("metadata").or_insert(json!({}));
            if let Some(meta) = meta.as_object_mut() {
                for k in [
                    "name",
                    "namespace",
                    "uid",
                    "creationTimestamp",
                    "generation",
                    "deletionTimestamp",
                ] {
                    match old.get("metadata").and_then(|o| o.get(k)) {
                        Some(v) => {
                            meta.insert(k.into(), v.clone());
                        }
                        None => {
                            meta.shift_remove(k);
                        }
                    }
                }
            }
        }
        let status_split = rt.status_subresource || rt.kind == "Namespace";
        if status_split {
            match opts.subresource {
                Some("status") => {
                    // Only status (and metadata) changes.
                    if let Some(m) = obj.as_object_mut() {
                        for (k, v) in old.as_object().into_iter().flatten() {
                            if k != "status" && k != "metadata" {
                                m.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
                _ => {
                    if let Some(m) = obj.as_object_mut() {
                        match old.get("status") {
                            Some(s) => {
                                m.insert("status".into(), s.clone());
                            }
                            None => {
                                m.shift_remove("status");
                            }
                        }
                    }
                }
            }
        }
        self.prepare(rt, &mut obj, false)?;
        self.admit_update(rt, &old, &obj, opts.subresource)?;
        record_update(
            &rt.schema.arena,
            rt.schema.idx,
            &old,
            &mut obj,
            opts.manager,
            &rt.api_version(),
            opts.subresource,
        );
        self.store_update(rt, &old, obj, opts.dry_run)
    }

    fn store_update(
        &mut self,
        rt: &ResourceType,
        old: &Arc<Value>,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        if rt.generation && spec_changed(old, &obj) {
            let g = old
                .at("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("generation".into(), json!(g + 1));
            }
        }
        let unchanged = crate::apply::same_but_bookkeeping(old, &obj)
            && old.at("/metadata/managedFields") == obj.at("/metadata/managedFields");
        if unchanged {
            return Ok(old.clone());
        }
        if dry_run {
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert(
                    "resourceVersion".into(),
                    json!(meta_str(old, "resourceVersion")),
                );
            }
            return Ok(Arc::new(util::order_object(obj)));
        }
        let obj = self.commit(rt, obj, "MODIFIED");
        // Deleting objects whose finalizers are all gone.
        if obj.at("/metadata/deletionTimestamp").is_some()
            && obj
                .at("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
        {
            let ns = meta_str(&obj, "namespace").to_string();
            let name = meta_str(&obj, "name").to_string();
            self.remove(rt, &ns, &name);
        }
        Ok(obj)
    }

    /// Server-side apply. Returns the object and whether it was created.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut cfg: Value,
        manager: &str,
        force: bool,
        dry_run: bool,
    ) -> Result<(Arc<Value>, bool), ApiError> {
        let arena = rt.schema.arena.clone();
        let idx = rt.schema.idx;
        let body_name = meta_str(&cfg, "name");
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if let Some(path) = schema::unknown_field(&arena, idx, &cfg, "") {
            return Err(ApiError::internal(format!(
                "failed to create typed patch object ({}/{name}; {}): {path}: field not declared in schema",
                if rt.namespaced { ns } else { "" },
                rt.gvk_string()
            )));
        }
        // Normalise the configuration's quantities so comparisons are exact.
        let quantity_err = schema::normalize_quantities(&arena, idx, &mut cfg).is_err();
        if quantity_err {
            let mut probe = cfg.clone();
            if let Some(m) = probe.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("namespace".into(), json!(ns));
            }
            self.prepare(rt, &mut probe, true)?;
        }
        let existing = self.get_arc(rt, ns, name).cloned();
        match existing {
            None => {
                self.check_namespace(rt, ns, name)?;
                let applied = apply::apply(
                    &arena,
                    idx,
                    &Value::Null,
                    &cfg,
                    manager,
                    &rt.api_version(),
                    force,
                )?;
                let mut obj = applied.object;
                self.fill_new_meta(rt, &mut obj, ns);
                self.admit_create(rt, &mut obj);
                self.prepare(rt, &mut obj, true)?;
                write_entries(&mut obj, applied.entries);
                if dry_run {
                    return Ok((Arc::new(util::order_object(obj)), true));
                }
                Ok((self.commit(rt, obj, "ADDED"), true))
            }
            Some(old) => {
                let applied =
                    apply::apply(&arena, idx, &old, &cfg, manager, &rt.api_version(), force)?;
                let mut obj = applied.object;
                if let Some(m) = obj.as_object_mut() {
                    m.insert("apiVersion".into(), json!(rt.api_version()));
                    m.insert("kind".into(), json!(rt.kind));
                }
                self.prepare(rt, &mut obj, true)?;
                self.admit_update(rt, &old, &obj, None)?;
                let mut entries = applied.entries;
                // A no-op apply keeps the manager's timestamp.
                let old_entries = apply::read_entries(&old);
                if crate::apply::same_but_bookkeeping(&old, &obj) {
                    for e in &mut entries {
                        if let Some(o) = old_entries.iter().find(|o| {
                            o.manager == e.manager
                                && o.operation == e.operation
                                && o.subresource == e.subresource
                        }) && o.fields == e.fields
                        {
                            e.time = o.time.clone();
                        }
                    }
                }
                write_entries(&mut obj, entries);
                let obj = self.store_update(rt, &old, obj, dry_run)?;
                Ok((obj, false))
            }
        }
    }

    /// PATCH with a merge or strategic merge patch (an Update operation).
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        strategic: bool,
        patch: &Value,
        opts: &WriteOpts,
    ) -> Result<Arc<Value>, ApiError> {
        let Some(old) = self.get_arc(rt, ns, name).cloned() else {
            return Err(ApiError::not_found(&rt.group, &rt.plural, name));
        };
        let mut obj = comparable(&old);
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert(
                "managedFields".into(),
                old.at("/metadata/managedFields")
                    .cloned()
                    .unwrap_or(json!([])),
            );
        }
        if strategic {
            apply::strategic_patch(&rt.schema.arena, rt.schema.idx, &mut obj, patch);
        } else {
            apply::merge_patch(&mut obj, patch);
        }
        let rv = patch
            .at("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !rv.is_empty() && rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::conflict(&rt.group, &rt.plural, name));
        }
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.shift_remove("managedFields");
        }
        schema::prune_unknown(&rt.schema.arena, rt.schema.idx, &mut obj);
        self.finish_update(rt, old, obj, opts)
    }

    /// Marks an object deleted: immediately, or with a deletionTimestamp when finalizers remain.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        propagation: &str,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let Some(old) = self.get_arc(rt, ns, name).cloned() else {
            return Err(ApiError::not_found(&rt.group, &rt.plural, name));
        };
        let mut obj = (*old).clone();
        let mut finalizers: Vec<Value> = obj
            .at("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if propagation == "Foreground" && !finalizers.contains(&json!("foregroundDeletion")) {
            finalizers.push(json!("foregroundDeletion"));
        }
        if rt.kind == "CustomResourceDefinition" {
            finalizers.push(json!("customresourcecleanup.apiextensions.k8s.io"));
        }
        let keep = rt.kind == "Namespace" || !finalizers.is_empty();
        if dry_run {
            return Ok(old);
        }
        if propagation == "Orphan" {
            self.orphan_dependents(meta_str(&old, "uid"));
        }
        if keep {
            if old.at("/metadata/deletionTimestamp").is_some() {
                return Ok(old);
            }
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("deletionTimestamp".into(), json!(util::now()));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
                if !finalizers.is_empty() {
                    m.insert("finalizers".into(), Value::Array(finalizers));
                }
            }
            if rt.kind == "Namespace"
                && let Some(s) = obj.get_mut("status").and_then(Value::as_object_mut)
            {
                s.insert("phase".into(), json!("Terminating"));
            }
            return Ok(self.commit(rt, obj, "MODIFIED"));
        }
        let removed = self.remove(rt, ns, name).unwrap_or(old);
        if rt.kind == "Pod" {
            return Ok(removed);
        }
        Ok(Arc::new(json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": util::details(name, &rt.group, &rt.plural, Some(meta_str(&removed, "uid")))
        })))
    }

    /// What the garbage collector's `orphan` finalizer does: the dependents of `uid` lose
    /// their ownerReference to it and stay.
    fn orphan_dependents(&mut self, uid: &str) {
        let keys: Vec<ObjKey> = self
            .dependents
            .get(uid)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default();
        for k in keys {
            let Some(rt) = self
                .registry
                .types
                .values()
                .find(|t| t.group == k.group && t.plural == k.plural)
                .cloned()
            else {
                continue;
            };
            self.controller_update(&rt, &k.ns, &k.name, "kube-controller-manager", None, |o| {
                if let Some(refs) = o
                    .at_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
                }
                let empty = o
                    .at("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(Vec::is_empty);
                if empty && let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.shift_remove("ownerReferences");
                }
            });
        }
    }

    /// A controller's write: an Update by `manager` computed from a mutation of the live object.
    pub fn controller_update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        manager: &str,
        subresource: Option<&str>,
        f: impl FnOnce(&mut Value),
    ) -> Option<Arc<Value>> {
        let old = self.get_arc(rt, ns, name)?.clone();
        let mut obj = comparable(&old);
        f(&mut obj);
        if crate::apply::same_but_bookkeeping(&old, &obj) {
            return Some(old);
        }
        let arena = rt.schema.arena.clone();
        record_update(
            &arena,
            rt.schema.idx,
            &old,
            &mut obj,
            manager,
            &rt.api_version(),
            subresource,
        );
        let before = self.changes.len();
        let stored = self.store_update(rt, &old, obj, false).ok();
        // Only the change this write committed (none for a no-op); never an earlier one.
        if subresource == Some("status")
            && manager == crate::controllers::KCM
            && let Some(c) = self.changes.get_mut(before)
            && !c.removed
        {
            c.own_status = true;
        }
        stored
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

fn spec_changed(old: &Value, new: &Value) -> bool {
    // Everything but metadata and status, compared in place.
    fn rest(v: &Value) -> impl Iterator<Item = (&String, &Value)> {
        v.as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| *k != "metadata" && *k != "status")
    }
    rest(old).count() != rest(new).count() || rest(old).any(|(k, v)| new.get(k.as_str()) != Some(v))
}

pub fn is_established(crd: &Value) -> bool {
    crd.at("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Established")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::KCM;

    fn opts(manager: &str) -> WriteOpts<'_> {
        WriteOpts {
            manager,
            dry_run: false,
            subresource: None,
        }
    }

    /// A type every cluster serves.
    fn built_in(st: &State, group: &str, version: &str, plural: &str) -> Arc<ResourceType> {
        st.registry
            .get(group, version, plural)
            .unwrap_or_else(|| panic!("{plural} are built in"))
    }

    #[test]
    fn only_the_status_write_itself_is_marked_as_the_controllers_own() {
        let mut st = State::new();
        let drt = built_in(&st, "apps", "v1", "deployments");
        let cmrt = built_in(&st, "", "v1", "configmaps");
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
        st.create(&drt, "default", deployment, &opts("cairn"))
            .expect("the Deployment is created");
        let set_replicas = |o: &mut Value| {
            if let Some(m) = o.as_object_mut() {
                m.insert("status".into(), json!({"replicas": 1}));
            }
        };
        st.changes.clear();
        st.controller_update(&drt, "default", "web", KCM, Some("status"), set_replicas);
        assert_eq!(st.changes.len(), 1);
        assert!(st.changes[0].own_status, "its own status write");
        // Something else changes, then a status write that changes nothing: the other change
        // stays one its controllers look at.
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "default"}});
        st.create(&cmrt, "default", cm, &opts("cairn"))
            .expect("the ConfigMap is created");
        st.controller_update(&drt, "default", "web", KCM, Some("status"), set_replicas);
        assert_eq!(st.changes.len(), 2, "the no-op write commits nothing");
        assert!(!st.changes[1].own_status, "{:?}", st.changes[1].key);
    }

    #[test]
    fn a_list_pages_in_etcd_key_order_from_its_continue_key() {
        let mut st = State::new();
        let cmrt = built_in(&st, "", "v1", "configmaps");
        let nsrt = built_in(&st, "", "v1", "namespaces");
        for ns in ["rec", "rec-q"] {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            st.create(&nsrt, "", body, &opts("cairn"))
                .expect("the namespace is created");
        }
        for (ns, name, app) in [
            ("rec", "a", "web"),
            ("rec", "b", "db"),
            ("rec", "c", "web"),
            ("rec", "d", "db"),
            ("rec-q", "a", "web"),
        ] {
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns, "labels": {"app": app}}});
            st.create(&cmrt, ns, cm, &opts("cairn"))
                .expect("the ConfigMap is created");
        }
        let names = |p: &ListPage| -> Vec<String> {
            p.items
                .iter()
                .map(|o| format!("{}/{}", meta_str(o, "namespace"), meta_str(o, "name")))
                .collect()
        };
        let web = |o: &Value| o.at("/metadata/labels/app") == Some(&json!("web"));
        // Across namespaces, "rec-q/a" sorts before "rec/a", as etcd keys do.
        let first = st.list_page(&cmrt, None, "", Some(2), &|_| true);
        assert_eq!(names(&first), ["rec-q/a", "rec/a"]);
        assert_eq!(first.last.as_deref(), Some("rec/a"));
        assert_eq!(first.remaining, 3);
        let next = st.list_page(&cmrt, None, "rec/a\u{0}", Some(3), &|_| true);
        assert_eq!(names(&next), ["rec/b", "rec/c", "rec/d"]);
        assert_eq!(next.last, None, "nothing follows");
        // A selector: the page ends at its limit-th match, and says more keys follow even
        // when none of them matches.
        let page = st.list_page(&cmrt, Some("rec"), "", Some(1), &web);
        assert_eq!(names(&page), ["rec/a"]);
        assert_eq!(page.last.as_deref(), Some("a"));
        let page = st.list_page(&cmrt, Some("rec"), "a\u{0}", Some(1), &web);
        assert_eq!(names(&page), ["rec/c"]);
        assert_eq!(
            page.last.as_deref(),
            Some("c"),
            "rec/d follows, though it is no match"
        );
        let page = st.list_page(&cmrt, Some("rec"), "c\u{0}", Some(1), &web);
        assert!(page.items.is_empty());
        assert_eq!(page.last, None);
        let unlimited = st.list_page(&cmrt, Some("rec"), "", None, &web);
        assert_eq!(names(&unlimited), ["rec/a", "rec/c"]);
    }

    #[test]
    fn an_update_leaves_the_entries_outside_what_it_touched_as_they_were() {
        let mut st = State::new();
        let drt = built_in(&st, "apps", "v1", "deployments");
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
        st.apply(&drt, "default", "web", deployment, "cairn", false, false)
            .expect("the Deployment is applied");
        let entry = |o: &Value, manager: &str| -> Option<Value> {
            o.at("/metadata/managedFields")?
                .as_array()?
                .iter()
                .find(|e| e["manager"] == manager)
                .cloned()
        };
        let applied = st
            .get(&drt, "default", "web")
            .and_then(|o| entry(o, "cairn"));
        assert!(applied.is_some(), "cairn owns what it applied");
        let status = st
            .controller_update(&drt, "default", "web", KCM, Some("status"), |o| {
                o["status"] = json!({"replicas": 2});
            })
            .expect("the status is written");
        assert_eq!(
            entry(&status, "cairn"),
            applied,
            "the applier's entry is untouched"
        );
        assert_eq!(
            entry(&status, KCM).map(|e| e["fieldsV1"].clone()),
            Some(json!({"f:status": {"f:replicas": {}}}))
        );
        // An update of a field cairn owns takes it from cairn's entry.
        let scaled = st
            .controller_update(&drt, "default", "web", "kubectl", None, |o| {
                o["spec"]["replicas"] = json!(3);
            })
            .expect("the scale is written");
        let cairn = entry(&scaled, "cairn").expect("cairn still owns the rest");
        assert!(cairn.at("/fieldsV1/f:spec/f:replicas").is_none(), "{cairn}");
        assert!(cairn.at("/fieldsV1/f:spec/f:template").is_some(), "{cairn}");
        let names: Vec<&str> = scaled
            .at("/metadata/managedFields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e["manager"].as_str())
            .collect();
        assert_eq!(
            names,
            ["cairn", KCM, "kubectl"],
            "Apply first, then by time"
        );
    }
}
