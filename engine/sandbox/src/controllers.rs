//! The controller loop: what kube-controller-manager, the scheduler and a kubelet would do,
//! reduced to what readiness checks observe.

use cairn_model::JsonPath as _;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_model::validate::Quantity;
use serde_json::{Value, json};

use crate::registry::ResourceType;
use crate::store::{Change, ObjKey, State, WriteOpts, is_established, meta_str};
use crate::util::{self, ApiError};
use crate::{PodOutcome, SandboxConfig, lock};

pub(crate) const KCM: &str = "kube-controller-manager";
const TICK: Duration = Duration::from_millis(25);
/// How long one tick may hold the store before it leaves the rest of its queues for the next
/// one (which then comes right away), so API requests are not kept waiting behind a burst.
const TICK_BUDGET: Duration = Duration::from_millis(15);

/// A controller's share of a round of a tick.
const SLICE: Duration = Duration::from_millis(3);

/// Rounds in one tick at most: a Deployment's ReplicaSet, pods and statuses take four.
const MAX_ROUNDS: usize = 8;

#[derive(Default)]
struct Memory {
    /// Pod uid -> when the controller first saw it.
    seen: HashMap<String, Instant>,
    /// Pod uid -> last restart.
    restarted: HashMap<String, Instant>,
    /// RS uid -> last failed create.
    failed_create: HashMap<String, Instant>,
    /// CRD name -> generation whose schema is served.
    crd_generation: HashMap<String, i64>,
}

/// An object in a work queue, ordered like a LIST of all namespaces: by the etcd key
/// `namespace/name` (so "rec-ns-quota/web" comes before "rec-ns/web"), then namespace and name.
type WorkKey = (String, String, String);

fn work_key(ns: &str, name: &str) -> WorkKey {
    (format!("{ns}/{name}"), ns.to_string(), name.to_string())
}

/// What each controller has to look at: the objects whose inputs changed since it last ran
/// (filled from the store's change log), plus the few that wait on time (pods starting or
/// crash-looping, retries after failed creates). A tick costs what changed, not the store size.
#[derive(Default)]
struct Queues {
    crds: BTreeSet<WorkKey>,
    namespaces: BTreeSet<WorkKey>,
    gc: BTreeSet<ObjKey>,
    deployments: BTreeSet<WorkKey>,
    replicasets: BTreeSet<WorkKey>,
    statefulsets: BTreeSet<WorkKey>,
    jobs: BTreeSet<WorkKey>,
    pods: BTreeSet<WorkKey>,
    quota_namespaces: BTreeSet<String>,
    /// Looked at on every tick until they settle.
    retry_deployments: BTreeSet<WorkKey>,
    retry_replicasets: BTreeSet<WorkKey>,
    retry_statefulsets: BTreeSet<WorkKey>,
    retry_jobs: BTreeSet<WorkKey>,
    retry_namespaces: BTreeSet<WorkKey>,
    active_pods: BTreeSet<WorkKey>,
    /// Claims being deleted while a pod still uses them.
    retry_gc: BTreeSet<ObjKey>,
    /// When the current tick should hand the store back.
    deadline: Option<Instant>,
    /// When the current controller's share of this round ends.
    slice_end: Option<Instant>,
    /// Whether the last tick left work for the next one.
    deferred: bool,
}

impl Queues {
    /// The objects waiting on time or on a retry join their controllers' queues, once a tick.
    fn merge_retries(&mut self) {
        self.deployments
            .append(&mut std::mem::take(&mut self.retry_deployments));
        self.replicasets
            .append(&mut std::mem::take(&mut self.retry_replicasets));
        self.statefulsets
            .append(&mut std::mem::take(&mut self.retry_statefulsets));
        self.jobs.append(&mut std::mem::take(&mut self.retry_jobs));
        self.namespaces
            .append(&mut std::mem::take(&mut self.retry_namespaces));
        self.pods.append(&mut std::mem::take(&mut self.active_pods));
        self.gc.append(&mut std::mem::take(&mut self.retry_gc));
    }

    /// Whether no controller has anything queued (what waits on time waits for the next tick).
    fn idle(&self) -> bool {
        self.crds.is_empty()
            && self.namespaces.is_empty()
            && self.gc.is_empty()
            && self.deployments.is_empty()
            && self.replicasets.is_empty()
            && self.statefulsets.is_empty()
            && self.jobs.is_empty()
            && self.pods.is_empty()
    }

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// The next queued object of `rt` this controller has time for in this round: each
    /// controller gets a slice of the tick per round, so one with a long queue cannot starve
    /// the others, and always does at least one object. What it does not get to stays queued.
    fn next(
        &mut self,
        st: &State,
        rt: &ResourceType,
        queue: fn(&mut Queues) -> &mut BTreeSet<WorkKey>,
        done: usize,
    ) -> Option<Arc<Value>> {
        let now = Instant::now();
        if done == 0 {
            self.slice_end = Some(now + SLICE);
        } else if self.slice_end.is_some_and(|e| now >= e) || self.past_deadline() {
            return None;
        }
        let queue = queue(self);
        while let Some((_, ns, name)) = queue.pop_first() {
            if let Some(o) = st.get_arc(rt, &ns, &name) {
                return Some(o.clone());
            }
        }
        None
    }
}

pub async fn run(
    state: Arc<Mutex<State>>,
    config: SandboxConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut mem = Memory::default();
    let mut queues = Queues::default();
    {
        // Everything stored so far (restored state, default namespaces) is new to the controllers.
        let mut st = lock(&state);
        resync(&mut st);
    }
    loop {
        let pause = if queues.deferred {
            Duration::from_millis(1)
        } else {
            TICK
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
        let mut st = lock(&state);
        queues.deadline = Some(Instant::now() + TICK_BUDGET);
        tick(&mut st, &mut mem, &mut queues, &config);
    }
}

/// Records every stored object as changed.
fn resync(st: &mut State) {
    let mut all = Vec::new();
    for ((group, plural), m) in &st.objects {
        for ((ns, name), o) in m {
            all.push(Change {
                key: ObjKey {
                    group: group.clone(),
                    plural: plural.clone(),
                    ns: ns.clone(),
                    name: name.clone(),
                },
                uid: uid_of(o),
                owners: owner_uids(o),
                removed: false,
                own_status: false,
            });
        }
    }
    st.changes = all;
}

fn owner_uids(o: &Value) -> Vec<String> {
    o.at("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn is_foreground(o: &Value) -> bool {
    deleting(o)
        && o.at("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|x| x.as_str() == Some("foregroundDeletion")))
}

/// Routes the store's change log to the controllers that depend on each changed object.
fn absorb(st: &mut State, mem: &mut Memory, q: &mut Queues) {
    let changes = std::mem::take(&mut st.changes);
    for c in changes {
        queue_changed(st, mem, q, &c);
        queue_owners(st, q, &c);
        queue_collection(st, q, &c);
        if !c.key.ns.is_empty() {
            q.quota_namespaces.insert(c.key.ns.clone());
        }
    }
}

/// The controller of the changed object's kind (and the StatefulSet of a pod by its name).
fn queue_changed(st: &State, mem: &mut Memory, q: &mut Queues, c: &Change) {
    let k = &c.key;
    let wk = || work_key(&k.ns, &k.name);
    match (k.group.as_str(), k.plural.as_str()) {
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            q.crds.insert(wk());
        }
        ("", "namespaces") => {
            q.namespaces.insert(wk());
        }
        ("", "configmaps") if k.name == "kube-root-ca.crt" => {
            q.namespaces.insert(work_key("", &k.ns));
        }
        ("", "serviceaccounts") if k.name == "default" => {
            q.namespaces.insert(work_key("", &k.ns));
        }
        ("apps", "deployments") if !c.own_status => {
            q.deployments.insert(wk());
        }
        ("apps", "replicasets") if !c.own_status => {
            q.replicasets.insert(wk());
        }
        ("apps", "statefulsets") => {
            q.statefulsets.insert(wk());
        }
        ("batch", "jobs") => {
            q.jobs.insert(wk());
        }
        ("", "pods") => {
            q.pods.insert(wk());
            if c.removed {
                mem.seen.remove(&c.uid);
                mem.restarted.remove(&c.uid);
            }
            // A StatefulSet looks its pods up by name.
            if let Some((set, ord)) = k.name.rsplit_once('-')
                && ord.parse::<i64>().is_ok()
                && st
                    .objects
                    .get(&("apps".to_string(), "statefulsets".to_string()))
                    .is_some_and(|m| m.contains_key(&(k.ns.clone(), set.to_string())))
            {
                q.statefulsets.insert(work_key(&k.ns, set));
            }
        }
        _ => {}
    }
}

/// Owners recompute their status from their dependents.
fn queue_owners(st: &State, q: &mut Queues, c: &Change) {
    for owner in &c.owners {
        let Some(ok) = st.uids.get(owner) else {
            continue;
        };
        let owk = work_key(&ok.ns, &ok.name);
        match (ok.group.as_str(), ok.plural.as_str()) {
            ("apps", "deployments") => {
                q.deployments.insert(owk);
            }
            ("apps", "replicasets") => {
                q.replicasets.insert(owk);
            }
            ("apps", "statefulsets") => {
                q.statefulsets.insert(owk);
            }
            ("batch", "jobs") => {
                q.jobs.insert(owk);
            }
            _ => {}
        }
        // A foreground deletion waits for its dependents.
        if st.get_key(ok).is_some_and(|o| is_foreground(o)) {
            q.gc.insert(ok.clone());
        }
    }
}

/// Garbage collection: the object itself, and its dependents when it goes away.
fn queue_collection(st: &State, q: &mut Queues, c: &Change) {
    let k = &c.key;
    let current = if c.removed { None } else { st.get_key(k) };
    if let Some(o) = current
        && (deleting(o) || o.at("/metadata/ownerReferences").is_some())
    {
        q.gc.insert(k.clone());
    }
    if (c.removed || current.is_some_and(|o| deleting(o)))
        && let Some(deps) = st.dependents.get(&c.uid)
    {
        q.gc.extend(deps.iter().cloned());
    }
}

/// The stored objects of `rt` for all the queued keys, in queue order.
fn queued(st: &State, rt: &ResourceType, queue: &mut BTreeSet<WorkKey>) -> Vec<Arc<Value>> {
    std::mem::take(queue)
        .iter()
        .filter_map(|(_, ns, name)| st.get_arc(rt, ns, name).cloned())
        .collect()
}

fn type_of(st: &State, group: &str, plural: &str) -> Option<Arc<ResourceType>> {
    st.registry
        .types
        .values()
        .find(|t| t.group == group && t.plural == plural)
        .cloned()
}

fn rt(st: &State, g: &str, v: &str, p: &str) -> Option<Arc<ResourceType>> {
    st.registry.get(g, v, p)
}

fn opts() -> WriteOpts<'static> {
    WriteOpts {
        manager: KCM,
        dry_run: false,
        subresource: None,
    }
}

fn uid_of(o: &Value) -> String {
    meta_str(o, "uid").to_string()
}

fn owner_ref(owner: &Value, block: bool) -> Value {
    json!({
        "apiVersion": owner.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": owner.get("kind").cloned().unwrap_or(Value::Null),
        "name": meta_str(owner, "name"),
        "uid": meta_str(owner, "uid"),
        "controller": true,
        "blockOwnerDeletion": block
    })
}

pub(crate) fn deleting(o: &Value) -> bool {
    o.at("/metadata/deletionTimestamp").is_some()
}

fn fnv32a(s: &str) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(16_777_619);
    }
    h
}

/// `rand.SafeEncodeString(fmt.Sprint(hash))`.
fn template_hash(template: &Value) -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let h = fnv32a(&template.to_string()).to_string();
    h.bytes()
        .map(|b| ALPHA[usize::from(b) % ALPHA.len()] as char)
        .collect()
}

/// Records a core/v1 Event.
pub fn event(
    st: &mut State,
    involved: &Value,
    kind: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let Some(ert) = rt(st, "", "v1", "events") else {
        return;
    };
    let ns = meta_str(involved, "namespace").to_string();
    let ns = if ns.is_empty() { "default".into() } else { ns };
    let name = format!(
        "{}.{:016x}",
        meta_str(involved, "name"),
        rand::random::<u64>() >> 4
    );
    let now = util::now();
    let ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {
            "kind": involved.get("kind").cloned().unwrap_or(Value::Null),
            "namespace": meta_str(involved, "namespace"),
            "name": meta_str(involved, "name"),
            "uid": meta_str(involved, "uid"),
            "apiVersion": involved.get("apiVersion").cloned().unwrap_or(Value::Null),
            "resourceVersion": meta_str(involved, "resourceVersion"),
        },
        "reason": reason, "message": message,
        "source": {"component": component},
        "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": kind,
        "eventTime": null, "reportingComponent": "", "reportingInstance": ""
    });
    let _ = st.create(&ert, &ns, ev, &opts());
}

/// One tick: rounds of every controller until nothing is queued or the tick is out of time
/// (so a Deployment's ReplicaSet and pod are made in the tick the Deployment is), then quotas.
fn tick(st: &mut State, mem: &mut Memory, q: &mut Queues, config: &SandboxConfig) {
    q.merge_retries();
    for _ in 0..MAX_ROUNDS {
        reconcile(st, mem, q, config);
        absorb(st, mem, q);
        if q.idle() || q.past_deadline() {
            break;
        }
    }
    quotas(st, q);
    // Only a tick cut short comes again at once; an object that changes on every look waits.
    q.deferred = q.past_deadline() && !q.idle();
}

/// One round of every controller, each seeing what the ones before it changed.
fn reconcile(st: &mut State, mem: &mut Memory, q: &mut Queues, config: &SandboxConfig) {
    absorb(st, mem, q);
    crds(st, mem, q);
    absorb(st, mem, q);
    namespaces(st, q);
    absorb(st, mem, q);
    garbage_collect(st, q);
    absorb(st, mem, q);
    deployments(st, q);
    absorb(st, mem, q);
    replicasets(st, mem, q);
    absorb(st, mem, q);
    statefulsets(st, q);
    absorb(st, mem, q);
    jobs(st, q);
    absorb(st, mem, q);
    crate::volumes::reconcile(st);
    absorb(st, mem, q);
    pods(st, mem, q, config);
}

fn crds(st: &mut State, mem: &mut Memory, q: &mut Queues) {
    let Some(crt) = rt(
        st,
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
    ) else {
        return;
    };
    for crd in queued(st, &crt, &mut q.crds) {
        let name = meta_str(&crd, "name").to_string();
        if deleting(&crd) {
            delete_crd(st, &crt, &crd, &name);
        } else if !is_established(&crd) {
            establish_crd(st, mem, &crt, &crd, name);
        } else {
            let generation = int(&crd, "/metadata/generation");
            if mem.crd_generation.get(&name) != Some(&generation) {
                st.registry.add_crd(&crd);
                mem.crd_generation.insert(name, generation);
            }
        }
    }
}

/// Deletes every custom object of a CRD being deleted, then the CRD.
fn delete_crd(st: &mut State, crt: &ResourceType, crd: &Value, name: &str) {
    let types: Vec<Arc<ResourceType>> = st
        .registry
        .types
        .values()
        .filter(|t| {
            t.custom
                && Some(t.group.as_str()) == crd.at("/spec/group").and_then(Value::as_str)
                && Some(t.plural.as_str()) == crd.at("/spec/names/plural").and_then(Value::as_str)
        })
        .cloned()
        .collect();
    for t in &types {
        for o in st.list_arc(t, "") {
            let (ns, n) = (
                meta_str(&o, "namespace").to_string(),
                meta_str(&o, "name").to_string(),
            );
            st.remove(t, &ns, &n);
        }
    }
    st.registry.remove_crd(crd);
    st.remove(crt, "", name);
}

/// Accepts a new CRD's names and serves its types.
fn establish_crd(st: &mut State, mem: &mut Memory, crt: &ResourceType, crd: &Value, name: String) {
    let now = util::now();
    let names = crd.at("/spec/names").cloned().unwrap_or(json!({}));
    let updated = st.controller_update(
        crt,
        "",
        &name,
        "kube-apiserver",
        Some("status"),
        |o| {
            if let Some(s) = o.get_mut("status").and_then(Value::as_object_mut) {
                s.insert(
                    "conditions".into(),
                    json!([
                        {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
                        {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
                    ]),
                );
                s.insert("acceptedNames".into(), names);
            }
        },
    );
    if let Some(c) = updated {
        st.registry.add_crd(&c);
        mem.crd_generation
            .insert(name, int(&c, "/metadata/generation"));
    }
}

fn namespaces(st: &mut State, q: &mut Queues) {
    let Some(nrt) = rt(st, "", "v1", "namespaces") else {
        return;
    };
    let (Some(cmrt), Some(sart)) = (
        rt(st, "", "v1", "configmaps"),
        rt(st, "", "v1", "serviceaccounts"),
    ) else {
        return;
    };
    for ns in queued(st, &nrt, &mut q.namespaces) {
        let name = meta_str(&ns, "name").to_string();
        if deleting(&ns) {
            let types: Vec<Arc<ResourceType>> = st
                .registry
                .types
                .values()
                .filter(|t| t.namespaced)
                .cloned()
                .collect();
            for t in types {
                for o in st.list_arc(&t, &name) {
                    let n = meta_str(&o, "name").to_string();
                    st.remove(&t, &name, &n);
                }
            }
            st.remove(&nrt, "", &name);
            continue;
        }
        if st.get(&cmrt, &name, "kube-root-ca.crt").is_none() {
            let created = st.create(
                &cmrt,
                &name,
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt", "namespace": name, "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}}, "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nsandbox\n-----END CERTIFICATE-----\n"}}),
                &opts(),
            );
            if created.is_err() {
                q.retry_namespaces.insert(work_key("", &name));
            }
        }
        if st.get(&sart, &name, "default").is_none() {
            let created = st.create(
                &sart,
                &name,
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name}}),
                &opts(),
            );
            if created.is_err() {
                q.retry_namespaces.insert(work_key("", &name));
            }
        }
    }
}

/// The queued objects that still exist, with their types, in LIST order per type (like a scan
/// of the whole store would).
fn gc_items(st: &State, keys: &BTreeSet<ObjKey>) -> Vec<(Arc<ResourceType>, Arc<Value>)> {
    let mut items: Vec<(Arc<ResourceType>, Arc<Value>)> = Vec::new();
    let mut types: HashMap<(String, String), Option<Arc<ResourceType>>> = HashMap::new();
    let mut ordered: Vec<(&ObjKey, String)> = keys
        .iter()
        .map(|k| (k, format!("{}/{}", k.ns, k.name)))
        .collect();
    ordered.sort_by(|a, b| (&a.0.group, &a.0.plural, &a.1).cmp(&(&b.0.group, &b.0.plural, &b.1)));
    for (k, _) in ordered {
        let Some(o) = st.get_key(k).cloned() else {
            continue;
        };
        let t = types
            .entry((k.group.clone(), k.plural.clone()))
            .or_insert_with(|| type_of(st, &k.group, &k.plural))
            .clone();
        if let Some(t) = t {
            items.push((t, o));
        }
    }
    items
}

/// Garbage collection by ownerReferences, foreground deletion, and finalizers the emulator owns.
///
/// Looks at the queued objects only: those that changed, the dependents of owners that went away
/// or are being deleted, and owners in foreground deletion whose dependents changed. Decisions
/// are taken on the state as it is when the pass starts.
fn garbage_collect(st: &mut State, q: &mut Queues) {
    let keys = std::mem::take(&mut q.gc);
    let items = gc_items(st, &keys);
    let exists = |st: &State, uid: &str| st.uids.contains_key(uid);
    let foreground = |st: &State, uid: &str| {
        st.uids
            .get(uid)
            .and_then(|k| st.get_key(k))
            .is_some_and(|o| is_foreground(o))
    };
    let mut to_delete = Vec::new();
    let mut to_unblock = Vec::new();
    let mut in_use = Vec::new();
    for (t, o) in &items {
        let refs = owner_uids(o);
        let ns = meta_str(o, "namespace").to_string();
        let name = meta_str(o, "name").to_string();
        if !refs.is_empty() {
            let orphaned = refs.iter().all(|r| !exists(st, r));
            let owner_foreground = refs.iter().any(|r| foreground(st, r));
            if orphaned || owner_foreground {
                to_delete.push((t.clone(), ns.clone(), name.clone()));
            }
        }
        let uid = uid_of(o);
        let has_dependents = st.dependents.get(&uid).is_some_and(|d| !d.is_empty());
        if is_foreground(o) && !has_dependents {
            to_unblock.push((t.clone(), ns.clone(), name.clone(), "foregroundDeletion"));
        }
        // The storage-protection controllers: a claim goes once no scheduled pod uses it, a
        // volume once no claim is bound to it.
        if t.kind == "PersistentVolumeClaim" && deleting(o) {
            if claim_in_use(st, &ns, &name) {
                // Looked at again until its pods are gone (their deletion changes no claim).
                in_use.push(ObjKey {
                    group: t.group.clone(),
                    plural: t.plural.clone(),
                    ns,
                    name,
                });
            } else {
                to_unblock.push((t.clone(), ns, name, "kubernetes.io/pvc-protection"));
            }
        } else if t.kind == "PersistentVolume"
            && deleting(o)
            && o.at("/status/phase").and_then(Value::as_str) != Some("Bound")
        {
            to_unblock.push((t.clone(), ns, name, "kubernetes.io/pv-protection"));
        }
    }
    for (t, ns, name) in to_delete {
        let _ = st.delete(&t, &ns, &name, "Background", false);
    }
    for (t, ns, name, f) in to_unblock {
        remove_finalizer(st, &t, &ns, &name, f);
    }
    q.retry_gc.extend(in_use);
}

/// Whether a pod the scheduler has placed mounts claim `name` of namespace `ns`
/// (`podUsesPVC` of the pvc-protection controller).
fn claim_in_use(st: &State, ns: &str, name: &str) -> bool {
    let Some(prt) = rt(st, "", "v1", "pods") else {
        return false;
    };
    st.list_arc(&prt, ns).iter().any(|pod| {
        pod.at("/spec/nodeName").is_some()
            && pod
                .at("/spec/volumes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|v| {
                    v.at("/persistentVolumeClaim/claimName")
                        .and_then(Value::as_str)
                        == Some(name)
                })
    })
}

fn remove_finalizer(st: &mut State, t: &ResourceType, ns: &str, name: &str, f: &str) {
    st.controller_update(t, ns, name, KCM, None, |o| {
        if let Some(a) = o
            .at_mut("/metadata/finalizers")
            .and_then(Value::as_array_mut)
        {
            a.retain(|x| x.as_str() != Some(f));
        }
    });
}

fn int(v: &Value, p: &str) -> i64 {
    v.at(p).and_then(Value::as_i64).unwrap_or(0)
}

fn pod_ready(p: &Value) -> bool {
    p.at("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn pod_terminal(p: &Value) -> bool {
    matches!(
        p.at("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

fn set_condition(status: &mut serde_json::Map<String, Value>, cond: Value, with_update: bool) {
    let ty = cond.get("type").cloned();
    let conds = status.entry("conditions").or_insert(json!([]));
    if !conds.is_array() {
        *conds = json!([]);
    }
    let Some(list) = conds.as_array_mut() else {
        return;
    };
    let now = util::now();
    match list.iter_mut().find(|c| c.get("type") == ty.as_ref()) {
        Some(c) => {
            let same_status = c.get("status") == cond.get("status");
            let same = same_status
                && c.get("reason") == cond.get("reason")
                && c.get("message") == cond.get("message");
            if same {
                return;
            }
            let transition = if same_status {
                c.get("lastTransitionTime").cloned()
            } else {
                Some(json!(now))
            };
            let mut n = cond.clone();
            if let Some(m) = n.as_object_mut() {
                if with_update {
                    m.insert("lastUpdateTime".into(), json!(now));
                }
                m.insert(
                    "lastTransitionTime".into(),
                    transition.unwrap_or(json!(now)),
                );
            }
            *c = order_condition(n);
        }
        None => {
            let mut n = cond.clone();
            if let Some(m) = n.as_object_mut() {
                if with_update {
                    m.insert("lastUpdateTime".into(), json!(now));
                }
                m.insert("lastTransitionTime".into(), json!(now));
            }
            list.push(order_condition(n));
        }
    }
}

fn order_condition(c: Value) -> Value {
    let Value::Object(mut m) = c else { return c };
    let mut out = serde_json::Map::new();
    for k in [
        "type",
        "status",
        "lastProbeTime",
        "lastUpdateTime",
        "lastTransitionTime",
        "reason",
        "message",
    ] {
        if let Some(v) = m.shift_remove(k) {
            out.insert(k.into(), v);
        }
    }
    out.extend(m);
    Value::Object(out)
}

fn remove_condition(status: &mut serde_json::Map<String, Value>, ty: &str) {
    if let Some(list) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        list.retain(|c| c.get("type").and_then(Value::as_str) != Some(ty));
    }
}

/// The `status` of an object, created empty when missing.
fn status_mut(o: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    o.as_object_mut()
        .map(|m| m.entry("status").or_insert(json!({})))
        .and_then(Value::as_object_mut)
}

/// Sets a status count, or removes it when zero (the API server omits zero counts).
fn set_count(s: &mut serde_json::Map<String, Value>, key: &str, n: i64) {
    if n > 0 {
        s.insert(key.into(), json!(n));
    } else {
        s.shift_remove(key);
    }
}

fn deployments(st: &mut State, q: &mut Queues) {
    let (Some(drt), Some(rsrt)) = (
        rt(st, "apps", "v1", "deployments"),
        rt(st, "apps", "v1", "replicasets"),
    ) else {
        return;
    };
    let mut done = 0;
    while let Some(d) = q.next(st, &drt, |q| &mut q.deployments, done) {
        done += 1;
        if !deleting(&d) {
            reconcile_deployment(st, q, &drt, &rsrt, &d);
        }
    }
}

/// What a Deployment asks for, read once per reconcile.
struct DeploymentSpec<'a> {
    ns: String,
    name: String,
    uid: String,
    replicas: i64,
    template: &'a Value,
    hash: String,
    strategy: Strategy,
}

impl<'a> DeploymentSpec<'a> {
    fn read(d: &'a Value) -> Self {
        static EMPTY: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| json!({}));
        let replicas = d.at("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
        let template = d.at("/spec/template").unwrap_or(&EMPTY);
        DeploymentSpec {
            ns: meta_str(d, "namespace").to_string(),
            name: meta_str(d, "name").to_string(),
            uid: uid_of(d),
            replicas,
            hash: template_hash(template),
            template,
            strategy: Strategy::of(d, replicas),
        }
    }
}

/// One Deployment: its ReplicaSet for the current template (created when new), the rollout's
/// scaling of all its ReplicaSets, then its status.
fn reconcile_deployment(
    st: &mut State,
    q: &mut Queues,
    drt: &ResourceType,
    rsrt: &ResourceType,
    d: &Value,
) {
    let spec = DeploymentSpec::read(d);
    let (rs_name, revision) = current_replicaset(st, q, rsrt, d, &spec);
    scale_replicasets(st, rsrt, d, &spec, &rs_name);
    write_deployment_status(st, drt, rsrt, d, &spec, &rs_name, revision);
}

fn revision_of(rs: &Value) -> Option<i64> {
    rs.at("/metadata/annotations/deployment.kubernetes.io~1revision")
        .and_then(Value::as_str)
        .and_then(|x| x.parse::<i64>().ok())
}

/// The name and revision of the ReplicaSet of the current template, created when there is none.
fn current_replicaset(
    st: &mut State,
    q: &mut Queues,
    rsrt: &ResourceType,
    d: &Value,
    spec: &DeploymentSpec,
) -> (String, i64) {
    let owned = st.dependents_in(rsrt, &spec.ns, &spec.uid);
    let max_rev = owned
        .iter()
        .filter_map(|r| revision_of(r))
        .max()
        .unwrap_or(0);
    let current = owned.iter().find(|r| {
        r.at("/metadata/labels/pod-template-hash")
            .and_then(Value::as_str)
            == Some(spec.hash.as_str())
    });
    if let Some(r) = current {
        return (
            meta_str(r, "name").to_string(),
            revision_of(r).unwrap_or(max_rev),
        );
    }
    // A new ReplicaSet starts with what the surge allows beside the old ones.
    let old_total: i64 = owned.iter().map(|r| int(r, "/spec/replicas")).sum();
    let initial = if spec.strategy.recreate {
        if old_total > 0 { 0 } else { spec.replicas }
    } else {
        (spec.replicas + spec.strategy.max_surge - old_total).clamp(0, spec.replicas)
    };
    let rs_name = format!("{}-{}", spec.name, spec.hash);
    let rev = max_rev + 1;
    let rs = new_replicaset(d, spec, &rs_name, initial, rev);
    let created = st.create(rsrt, &spec.ns, rs, &opts());
    if created.is_err() {
        q.retry_deployments.insert(work_key(&spec.ns, &spec.name));
    }
    if created.is_ok() {
        event(
            st,
            d,
            "Normal",
            "ScalingReplicaSet",
            &format!("Scaled up replica set {rs_name} to {initial}"),
            "deployment-controller",
        );
    }
    (rs_name, rev)
}

/// The ReplicaSet a Deployment creates for its template: labelled and selected by the
/// template's hash.
fn new_replicaset(
    d: &Value,
    spec: &DeploymentSpec,
    rs_name: &str,
    initial: i64,
    rev: i64,
) -> Value {
    let hash = &spec.hash;
    let mut tmpl = spec.template.clone();
    if let Some(l) = tmpl.at_mut("/metadata").and_then(Value::as_object_mut) {
        let labels = l.entry("labels").or_insert(json!({}));
        if let Some(lm) = labels.as_object_mut() {
            lm.insert("pod-template-hash".into(), json!(hash));
        }
    }
    let mut selector = d.at("/spec/selector").cloned().unwrap_or(json!({}));
    if let Some(ml) = selector
        .as_object_mut()
        .map(|s| s.entry("matchLabels").or_insert(json!({})))
        .and_then(Value::as_object_mut)
    {
        ml.insert("pod-template-hash".into(), json!(hash));
    }
    let labels = tmpl.at("/metadata/labels").cloned().unwrap_or(json!({}));
    let replicas = spec.replicas;
    let surge = spec.strategy.max_surge;
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": rs_name, "namespace": spec.ns, "labels": labels,
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                "deployment.kubernetes.io/max-replicas": (replicas + surge).to_string(),
                "deployment.kubernetes.io/revision": rev.to_string()
            },
            "ownerReferences": [owner_ref(d, true)]
        },
        "spec": {"replicas": initial, "selector": selector, "template": tmpl}
    })
}

/// Scales as the deployment controller does: the new ReplicaSet up within the surge, old ones
/// down while enough pods stay available (or, for Recreate, old ones to zero first).
fn scale_replicasets(
    st: &mut State,
    rsrt: &ResourceType,
    d: &Value,
    spec: &DeploymentSpec,
    rs_name: &str,
) {
    let replicas = spec.replicas;
    let surge = spec.strategy.max_surge;
    let owned = st.dependents_in(rsrt, &spec.ns, &spec.uid);
    let targets = rollout_targets(&owned, rs_name, replicas, &spec.strategy);
    for r in &owned {
        let rn = meta_str(r, "name").to_string();
        let Some(&want) = targets.get(&rn) else {
            continue;
        };
        let had = int(r, "/spec/replicas");
        if had == want {
            continue;
        }
        st.controller_update(rsrt, &spec.ns, &rn, KCM, None, |o| {
            if let Some(s) = o.get_mut("spec").and_then(Value::as_object_mut) {
                s.insert("replicas".into(), json!(want));
            }
            if let Some(a) = o
                .at_mut("/metadata/annotations")
                .and_then(Value::as_object_mut)
            {
                a.insert(
                    "deployment.kubernetes.io/desired-replicas".into(),
                    json!(replicas.to_string()),
                );
                a.insert(
                    "deployment.kubernetes.io/max-replicas".into(),
                    json!((replicas + surge).to_string()),
                );
            }
        });
        let verb = if want > had { "up" } else { "down" };
        event(
            st,
            d,
            "Normal",
            "ScalingReplicaSet",
            &format!("Scaled {verb} replica set {rn} to {want}"),
            "deployment-controller",
        );
    }
}

/// A Deployment's status, summed from its ReplicaSets.
struct DeploymentStatus<'a> {
    rs_name: &'a str,
    revision: i64,
    generation: i64,
    replicas: i64,
    max_unavailable: i64,
    total: i64,
    ready: i64,
    available: i64,
    updated: i64,
    /// The current ReplicaSet's `ReplicaFailure` condition.
    failure: Option<Value>,
}

fn write_deployment_status(
    st: &mut State,
    drt: &ResourceType,
    rsrt: &ResourceType,
    d: &Value,
    spec: &DeploymentSpec,
    rs_name: &str,
    revision: i64,
) {
    let owned = st.dependents_in(rsrt, &spec.ns, &spec.uid);
    let cur = owned
        .iter()
        .find(|r| meta_str(r, "name") == rs_name)
        .cloned();
    let status = DeploymentStatus {
        rs_name,
        revision,
        generation: int(d, "/metadata/generation"),
        replicas: spec.replicas,
        max_unavailable: spec.strategy.max_unavailable,
        total: owned.iter().map(|r| int(r, "/status/replicas")).sum(),
        ready: owned.iter().map(|r| int(r, "/status/readyReplicas")).sum(),
        available: owned
            .iter()
            .map(|r| int(r, "/status/availableReplicas"))
            .sum(),
        updated: cur.as_ref().map_or(0, |r| int(r, "/status/replicas")),
        failure: cur.as_ref().and_then(|r| {
            r.at("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c.get("type").and_then(Value::as_str) == Some("ReplicaFailure"))
                        .cloned()
                })
        }),
    };
    st.controller_update(drt, &spec.ns, &spec.name, KCM, Some("status"), |o| {
        status.write(o);
    });
}

impl DeploymentStatus<'_> {
    fn write(&self, o: &mut Value) {
        if let Some(a) = o
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .map(|m| m.entry("annotations").or_insert(json!({})))
            .and_then(Value::as_object_mut)
        {
            a.insert(
                "deployment.kubernetes.io/revision".into(),
                json!(self.revision.to_string()),
            );
        }
        let Some(s) = status_mut(o) else {
            return;
        };
        s.insert("observedGeneration".into(), json!(self.generation));
        s.insert("replicas".into(), json!(self.total));
        s.insert("updatedReplicas".into(), json!(self.updated));
        set_count(s, "readyReplicas", self.ready);
        set_count(s, "availableReplicas", self.available);
        set_count(
            s,
            "unavailableReplicas",
            (self.replicas - self.available).max(0),
        );
        self.set_conditions(s);
    }

    fn set_conditions(&self, s: &mut serde_json::Map<String, Value>) {
        let (replicas, available) = (self.replicas, self.available);
        if replicas == 0 || available >= replicas - self.max_unavailable {
            set_condition(
                s,
                json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."}),
                true,
            );
        } else {
            set_condition(
                s,
                json!({"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."}),
                true,
            );
        }
        let rs_name = self.rs_name;
        let complete = self.updated == replicas && available >= replicas && self.total == replicas;
        if complete {
            set_condition(
                s,
                json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": format!("ReplicaSet \"{rs_name}\" has successfully progressed.")}),
                true,
            );
        } else {
            set_condition(
                s,
                json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": format!("ReplicaSet \"{rs_name}\" is progressing.")}),
                true,
            );
        }
        match &self.failure {
            Some(f) => {
                let mut c = f.clone();
                if let Some(m) = c.as_object_mut() {
                    m.shift_remove("lastTransitionTime");
                }
                set_condition(s, c, true);
            }
            None => remove_condition(s, "ReplicaFailure"),
        }
    }
}

/// A Deployment's update strategy, resolved against its replicas.
struct Strategy {
    recreate: bool,
    max_surge: i64,
    max_unavailable: i64,
}

impl Strategy {
    /// `maxSurge` rounds up and `maxUnavailable` down, as the controller resolves them; both
    /// zero is not allowed, so unavailability becomes 1.
    fn of(d: &Value, replicas: i64) -> Self {
        let recreate = d.at("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate");
        let resolve = |key: &str, up: bool| -> i64 {
            match d.at(&format!("/spec/strategy/rollingUpdate/{key}")) {
                Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
                Some(Value::String(p)) => {
                    let pct = p.trim_end_matches('%').parse::<f64>().unwrap_or(25.0);
                    let v = replicas as f64 * pct / 100.0;
                    (if up { v.ceil() } else { v.floor() }) as i64
                }
                _ => {
                    let v = replicas as f64 * 0.25;
                    (if up { v.ceil() } else { v.floor() }) as i64
                }
            }
        };
        let max_surge = resolve("maxSurge", true);
        let mut max_unavailable = resolve("maxUnavailable", false);
        if max_surge == 0 && max_unavailable == 0 {
            max_unavailable = 1;
        }
        Self {
            recreate,
            max_surge,
            max_unavailable,
        }
    }
}

/// The replicas each owned ReplicaSet should have now (`new` is the current template's):
/// the rolling-update arithmetic of the deployment controller.
fn rollout_targets(
    owned: &[Arc<Value>],
    new: &str,
    replicas: i64,
    strategy: &Strategy,
) -> BTreeMap<String, i64> {
    let spec = |r: &Value| int(r, "/spec/replicas");
    let available = |r: &Value| int(r, "/status/availableReplicas");
    let mut targets: BTreeMap<String, i64> = owned
        .iter()
        .map(|r| (meta_str(r, "name").to_string(), spec(r)))
        .collect();
    let mut old: Vec<&Arc<Value>> = owned
        .iter()
        .filter(|r| meta_str(r, "name") != new)
        .collect();
    old.sort_by_key(|r| meta_str(r, "creationTimestamp").to_string());
    let Some(new_rs) = owned.iter().find(|r| meta_str(r, "name") == new) else {
        return targets;
    };
    if strategy.recreate {
        // Old pods go first; the new ReplicaSet scales up once none is left.
        let old_pods: i64 = old.iter().map(|r| int(r, "/status/replicas")).sum();
        for r in &old {
            targets.insert(meta_str(r, "name").to_string(), 0);
        }
        if old_pods == 0 {
            targets.insert(new.to_string(), replicas);
        }
        return targets;
    }
    // Scale up within replicas + maxSurge.
    let total: i64 = owned.iter().map(|r| spec(r)).sum();
    let mut new_count = spec(new_rs);
    if new_count > replicas {
        new_count = replicas;
    } else {
        let up = (replicas + strategy.max_surge - total)
            .min(replicas - new_count)
            .max(0);
        new_count += up;
    }
    targets.insert(new.to_string(), new_count);
    // Scale down: first old pods that are not available, then available ones while the
    // minimum stays available.
    let min_available = replicas - strategy.max_unavailable;
    let total: i64 = targets.values().sum();
    let new_unavailable = (new_count - available(new_rs)).max(0);
    let mut budget = (total - min_available - new_unavailable).max(0);
    for r in &old {
        let name = meta_str(r, "name").to_string();
        let unhealthy = (spec(r) - available(r)).max(0).min(budget);
        if unhealthy > 0 {
            targets.insert(name, spec(r) - unhealthy);
            budget -= unhealthy;
        }
    }
    let all_available: i64 = owned.iter().map(|r| available(r)).sum();
    let mut down = (all_available - min_available).max(0).min(budget);
    for r in &old {
        let name = meta_str(r, "name").to_string();
        let now = targets.get(&name).copied().unwrap_or(0);
        let cut = now.min(down);
        if cut > 0 {
            targets.insert(name, now - cut);
            down -= cut;
        }
    }
    targets
}

/// A pod for `owner` from its template.
fn pod_from_template(owner: &Value, template: &Value, name: Option<String>, ns: &str) -> Value {
    let mut meta = template.get("metadata").cloned().unwrap_or(json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.shift_remove("creationTimestamp");
        match &name {
            Some(n) => {
                m.insert("name".into(), json!(n));
            }
            None => {
                m.insert(
                    "generateName".into(),
                    json!(format!("{}-", meta_str(owner, "name"))),
                );
            }
        }
        m.insert("namespace".into(), json!(ns));
        m.insert("ownerReferences".into(), json!([owner_ref(owner, true)]));
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec").cloned().unwrap_or(json!({}))})
}

fn replicasets(st: &mut State, mem: &mut Memory, q: &mut Queues) {
    let (Some(rsrt), Some(prt)) = (
        rt(st, "apps", "v1", "replicasets"),
        rt(st, "", "v1", "pods"),
    ) else {
        return;
    };
    let mut done = 0;
    while let Some(rs) = q.next(st, &rsrt, |q| &mut q.replicasets, done) {
        done += 1;
        if !deleting(&rs) {
            reconcile_replicaset(st, mem, q, &rsrt, &prt, &rs);
        }
    }
}

/// The pods an owner has that are not being deleted.
fn live_pods(st: &State, prt: &ResourceType, ns: &str, uid: &str) -> Vec<Arc<Value>> {
    st.dependents_in(prt, ns, uid)
        .into_iter()
        .filter(|p| !deleting(p))
        .collect()
}

/// One ReplicaSet: pods created or deleted to match its replicas, then its status.
fn reconcile_replicaset(
    st: &mut State,
    mem: &mut Memory,
    q: &mut Queues,
    rsrt: &ResourceType,
    prt: &ResourceType,
    rs: &Value,
) {
    let ns = meta_str(rs, "namespace").to_string();
    let name = meta_str(rs, "name").to_string();
    let uid = uid_of(rs);
    let want = rs.at("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let pods = live_pods(st, prt, &ns, &uid);
    let have = pods.len() as i64;
    let mut failure: Option<String> = None;
    if have < want {
        failure = create_replicas(st, mem, prt, rs, &ns, want - have);
    } else if have > want {
        delete_replicas(st, prt, rs, &ns, pods, (have - want) as usize);
    }
    let pods = live_pods(st, prt, &ns, &uid);
    let count = pods.len() as i64;
    if count < want {
        // Retried on every tick (creates back off on their own).
        q.retry_replicasets.insert(work_key(&ns, &name));
    }
    let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
    let generation = int(rs, "/metadata/generation");
    st.controller_update(rsrt, &ns, &name, KCM, Some("status"), |o| {
        let Some(s) = status_mut(o) else {
            return;
        };
        s.insert("replicas".into(), json!(count));
        set_count(s, "fullyLabeledReplicas", count);
        set_count(s, "readyReplicas", ready);
        set_count(s, "availableReplicas", ready);
        s.insert("observedGeneration".into(), json!(generation));
        match &failure {
            Some(m) => set_condition(
                s,
                json!({"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": m}),
                false,
            ),
            None if count >= want => {
                remove_condition(s, "ReplicaFailure");
                if s
                    .get("conditions")
                    .and_then(Value::as_array)
                    .is_some_and(Vec::is_empty)
                {
                    s.shift_remove("conditions");
                }
            }
            None => {}
        }
    });
}

/// Creates `missing` pods of a ReplicaSet, stopping at the first failure (and not trying at
/// all within half a second of the last one); returns the failure's message, if any.
fn create_replicas(
    st: &mut State,
    mem: &mut Memory,
    prt: &ResourceType,
    rs: &Value,
    ns: &str,
    missing: i64,
) -> Option<String> {
    let uid = uid_of(rs);
    let backoff = mem
        .failed_create
        .get(&uid)
        .is_some_and(|t| t.elapsed() < Duration::from_millis(500));
    if backoff {
        return rs
            .at("/status/conditions/0/message")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    let template = rs.at("/spec/template").cloned().unwrap_or(json!({}));
    for _ in 0..missing {
        let pod = pod_from_template(rs, &template, None, ns);
        match st.create(prt, ns, pod, &opts()) {
            Ok(p) => event(
                st,
                rs,
                "Normal",
                "SuccessfulCreate",
                &format!("Created pod: {}", meta_str(&p, "name")),
                "replicaset-controller",
            ),
            Err(e) => {
                event(
                    st,
                    rs,
                    "Warning",
                    "FailedCreate",
                    &format!("Error creating: {}", e.message),
                    "replicaset-controller",
                );
                mem.failed_create.insert(uid, Instant::now());
                return Some(e.message);
            }
        }
    }
    None
}

/// Deletes `extra` pods of a ReplicaSet: not-ready pods first, newest first.
fn delete_replicas(
    st: &mut State,
    prt: &ResourceType,
    rs: &Value,
    ns: &str,
    mut pods: Vec<Arc<Value>>,
    extra: usize,
) {
    pods.sort_by_key(|p| {
        (
            pod_ready(p),
            std::cmp::Reverse(meta_str(p, "creationTimestamp").to_string()),
        )
    });
    for p in pods.iter().take(extra) {
        let pn = meta_str(p, "name").to_string();
        if st.delete(prt, ns, &pn, "Background", false).is_ok() {
            event(
                st,
                rs,
                "Normal",
                "SuccessfulDelete",
                &format!("Deleted pod: {pn}"),
                "replicaset-controller",
            );
        }
    }
}

fn statefulsets(st: &mut State, q: &mut Queues) {
    let (Some(ssrt), Some(prt), Some(pvcrt)) = (
        rt(st, "apps", "v1", "statefulsets"),
        rt(st, "", "v1", "pods"),
        rt(st, "", "v1", "persistentvolumeclaims"),
    ) else {
        return;
    };
    let types = StatefulSetTypes {
        ssrt: &ssrt,
        prt: &prt,
        pvcrt: &pvcrt,
    };
    let mut done = 0;
    while let Some(ss) = q.next(st, &ssrt, |q| &mut q.statefulsets, done) {
        done += 1;
        if !deleting(&ss) {
            reconcile_statefulset(st, q, &types, &ss);
        }
    }
}

/// The types the StatefulSet controller writes.
struct StatefulSetTypes<'a> {
    ssrt: &'a ResourceType,
    prt: &'a ResourceType,
    pvcrt: &'a ResourceType,
}

/// What a StatefulSet asks for, read once per reconcile.
struct StatefulSetSpec {
    ns: String,
    name: String,
    uid: String,
    want: i64,
    template: Value,
    /// `controller-revision-hash` of its pods.
    revision: String,
    parallel: bool,
    claim_templates: Vec<Value>,
}

impl StatefulSetSpec {
    fn read(ss: &Value) -> Self {
        let name = meta_str(ss, "name").to_string();
        let template = ss.at("/spec/template").cloned().unwrap_or(json!({}));
        StatefulSetSpec {
            ns: meta_str(ss, "namespace").to_string(),
            uid: uid_of(ss),
            want: ss.at("/spec/replicas").and_then(Value::as_i64).unwrap_or(1),
            revision: format!("{name}-{}", template_hash(&template)),
            name,
            template,
            parallel: ss.at("/spec/podManagementPolicy").and_then(Value::as_str)
                == Some("Parallel"),
            claim_templates: ss
                .at("/spec/volumeClaimTemplates")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        }
    }
}

/// One StatefulSet: the missing ordinals created in order (one at a time, each once the one
/// before is ready, unless `Parallel`), ordinals past its replicas deleted, then its status.
fn reconcile_statefulset(st: &mut State, q: &mut Queues, types: &StatefulSetTypes, ss: &Value) {
    let spec = StatefulSetSpec::read(ss);
    for i in 0..spec.want {
        let pod_name = format!("{}-{i}", spec.name);
        let go_on = if st.get(types.prt, &spec.ns, &pod_name).is_some() {
            existing_ordinal(st, types.prt, ss, &spec, &pod_name)
        } else {
            create_ordinal(st, q, types, ss, &spec, &pod_name);
            spec.parallel
        };
        if !go_on {
            break;
        }
    }
    scale_down_ordinals(st, types.prt, &spec);
    write_statefulset_status(st, types, ss, &spec);
}

/// Adopts the pod of an ordinal when it is an orphan (its StatefulSet was deleted with
/// `Orphan` and created again), as the controller's ref manager does; returns whether the
/// next ordinal may be looked at.
fn existing_ordinal(
    st: &mut State,
    prt: &ResourceType,
    ss: &Value,
    spec: &StatefulSetSpec,
    pod_name: &str,
) -> bool {
    let orphan = st
        .get(prt, &spec.ns, pod_name)
        .is_some_and(|p| p.at("/metadata/ownerReferences").is_none() && !deleting(p));
    if orphan {
        let owner = owner_ref(ss, true);
        st.controller_update(prt, &spec.ns, pod_name, KCM, None, |o| {
            o["metadata"]["ownerReferences"] = json!([owner]);
        });
    }
    let Some(p) = st.get(prt, &spec.ns, pod_name) else {
        return true;
    };
    spec.parallel || pod_ready(p)
}

/// Creates the claims of an ordinal that do not exist yet, then its pod.
fn create_ordinal(
    st: &mut State,
    q: &mut Queues,
    types: &StatefulSetTypes,
    ss: &Value,
    spec: &StatefulSetSpec,
    pod_name: &str,
) {
    let (ns, name) = (&spec.ns, &spec.name);
    for vct in &spec.claim_templates {
        let claim = format!("{}-{pod_name}", meta_str(vct, "name"));
        if st.get(types.pvcrt, ns, &claim).is_some() {
            continue;
        }
        let pvc = ordinal_claim(spec, vct, &claim);
        if st.create(types.pvcrt, ns, pvc, &opts()).is_ok() {
            event(
                st,
                ss,
                "Normal",
                "SuccessfulCreate",
                &format!("create Claim {claim} Pod {pod_name} in StatefulSet {name} success"),
                "statefulset-controller",
            );
        }
    }
    let pod = ordinal_pod(ss, spec, pod_name);
    match st.create(types.prt, ns, pod, &opts()) {
        Ok(_) => event(
            st,
            ss,
            "Normal",
            "SuccessfulCreate",
            &format!("create Pod {pod_name} in StatefulSet {name} successful"),
            "statefulset-controller",
        ),
        Err(e) => {
            q.retry_statefulsets.insert(work_key(ns, name));
            event(
                st,
                ss,
                "Warning",
                "FailedCreate",
                &format!(
                    "create Pod {pod_name} in StatefulSet {name} failed error: {}",
                    e.message
                ),
                "statefulset-controller",
            );
        }
    }
}

/// The claim of a volume claim template for one ordinal, labelled like the pods.
fn ordinal_claim(spec: &StatefulSetSpec, vct: &Value, claim: &str) -> Value {
    let mut labels = spec
        .template
        .at("/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    if let Some(l) = labels.as_object_mut() {
        for (k, v) in vct
            .at("/metadata/labels")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            l.insert(k.clone(), v.clone());
        }
    }
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim, "namespace": spec.ns, "labels": labels},
        "spec": vct.get("spec").cloned().unwrap_or(json!({}))})
}

/// The pod of one ordinal: the template with its identity (hostname, subdomain, labels) and
/// its claims as volumes.
fn ordinal_pod(ss: &Value, spec: &StatefulSetSpec, pod_name: &str) -> Value {
    let mut pod = pod_from_template(ss, &spec.template, Some(pod_name.to_string()), &spec.ns);
    if let Some(m) = pod.at_mut("/metadata").and_then(Value::as_object_mut) {
        let labels = m.entry("labels").or_insert(json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert("controller-revision-hash".into(), json!(spec.revision));
            l.insert("statefulset.kubernetes.io/pod-name".into(), json!(pod_name));
        }
    }
    if let Some(podspec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        podspec.insert("hostname".into(), json!(pod_name));
        if let Some(svc) = ss.at("/spec/serviceName") {
            podspec.insert("subdomain".into(), svc.clone());
        }
        let vols = podspec.entry("volumes").or_insert(json!([]));
        if let Some(vs) = vols.as_array_mut() {
            for vct in &spec.claim_templates {
                let vn = meta_str(vct, "name").to_string();
                vs.push(json!({"name": vn, "persistentVolumeClaim": {"claimName": format!("{vn}-{pod_name}")}}));
            }
        }
    }
    pod
}

/// Deletes the pods whose ordinal is past the replicas.
fn scale_down_ordinals(st: &mut State, prt: &ResourceType, spec: &StatefulSetSpec) {
    let pods = st.dependents_in(prt, &spec.ns, &spec.uid);
    for p in &pods {
        let ord = meta_str(p, "name")
            .rsplit('-')
            .next()
            .and_then(|x| x.parse::<i64>().ok())
            .unwrap_or(0);
        if ord >= spec.want {
            let pn = meta_str(p, "name").to_string();
            let _ = st.delete(prt, &spec.ns, &pn, "Background", false);
        }
    }
}

fn write_statefulset_status(
    st: &mut State,
    types: &StatefulSetTypes,
    ss: &Value,
    spec: &StatefulSetSpec,
) {
    let pods = live_pods(st, types.prt, &spec.ns, &spec.uid);
    let count = pods.len() as i64;
    let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
    let generation = int(ss, "/metadata/generation");
    let revision = &spec.revision;
    st.controller_update(types.ssrt, &spec.ns, &spec.name, KCM, Some("status"), |o| {
        let Some(s) = status_mut(o) else {
            return;
        };
        s.insert("observedGeneration".into(), json!(generation));
        s.insert("replicas".into(), json!(count));
        set_count(s, "readyReplicas", ready);
        s.insert("currentReplicas".into(), json!(count));
        s.insert("updatedReplicas".into(), json!(count));
        s.insert("currentRevision".into(), json!(revision));
        s.insert("updateRevision".into(), json!(revision));
        s.insert("collisionCount".into(), json!(0));
        s.insert("availableReplicas".into(), json!(ready));
    });
}

fn jobs(st: &mut State, q: &mut Queues) {
    let (Some(jrt), Some(prt)) = (rt(st, "batch", "v1", "jobs"), rt(st, "", "v1", "pods")) else {
        return;
    };
    let mut done = 0;
    while let Some(job) = q.next(st, &jrt, |q| &mut q.jobs, done) {
        done += 1;
        let stopped =
            deleting(&job) || job_finished(&job) || job.at("/spec/suspend") == Some(&json!(true));
        if !stopped {
            reconcile_job(st, q, &jrt, &prt, &job);
        }
    }
}

/// Whether a Job has a true `Complete` or `Failed` condition.
fn job_finished(job: &Value) -> bool {
    job.at("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                matches!(
                    c.get("type").and_then(Value::as_str),
                    Some("Complete" | "Failed")
                ) && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// What a Job's pods add up to.
struct JobProgress {
    completions: i64,
    succeeded: i64,
    /// Failed pods plus container restarts.
    failed: i64,
    over_backoff: bool,
}

impl JobProgress {
    fn read(job: &Value, pods: &[Arc<Value>]) -> Self {
        let completions = job
            .at("/spec/completions")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let backoff = job
            .at("/spec/backoffLimit")
            .and_then(Value::as_i64)
            .unwrap_or(6);
        let in_phase = |phase: &str| {
            pods.iter()
                .filter(|p| p.at("/status/phase").and_then(Value::as_str) == Some(phase))
                .count() as i64
        };
        let succeeded = in_phase("Succeeded");
        let failed_pods = in_phase("Failed");
        let restarts: i64 = pods
            .iter()
            .map(|p| int(p, "/status/containerStatuses/0/restartCount"))
            .sum();
        let failed = failed_pods + restarts;
        JobProgress {
            completions,
            succeeded,
            failed,
            over_backoff: failed > backoff,
        }
    }
}

/// One Job that is neither finished nor suspended: a pod started when none is running and
/// more completions are due, its running pods deleted past the backoff limit, then its status
/// (and the event of its end).
fn reconcile_job(
    st: &mut State,
    q: &mut Queues,
    jrt: &ResourceType,
    prt: &ResourceType,
    job: &Value,
) {
    let ns = meta_str(job, "namespace").to_string();
    let name = meta_str(job, "name").to_string();
    let uid = uid_of(job);
    let pods = st.dependents_in(prt, &ns, &uid);
    let progress = JobProgress::read(job, &pods);
    let active: Vec<&Arc<Value>> = pods.iter().filter(|p| !pod_terminal(p)).collect();
    if !progress.over_backoff && progress.succeeded < progress.completions && active.is_empty() {
        start_job_pod(st, q, prt, job, &ns, &name);
    }
    if progress.over_backoff {
        for p in &active {
            let pn = meta_str(p, "name").to_string();
            let _ = st.delete(prt, &ns, &pn, "Background", false);
        }
    }
    let active_n = st
        .dependents_in(prt, &ns, &uid)
        .iter()
        .filter(|p| !pod_terminal(p) && !deleting(p))
        .count() as i64;
    let ready_n = pods.iter().filter(|p| pod_ready(p)).count() as i64;
    let start = job
        .at("/status/startTime")
        .cloned()
        .unwrap_or(json!(util::now()));
    let mut done_event = None;
    st.controller_update(jrt, &ns, &name, KCM, Some("status"), |o| {
        done_event = write_job_status(o, &progress, start, active_n, ready_n);
    });
    if let Some((t, r, m)) = done_event {
        event(st, job, t, r, &m, "job-controller");
    }
}

fn start_job_pod(
    st: &mut State,
    q: &mut Queues,
    prt: &ResourceType,
    job: &Value,
    ns: &str,
    name: &str,
) {
    let template = job.at("/spec/template").cloned().unwrap_or(json!({}));
    let pod = pod_from_template(job, &template, None, ns);
    match st.create(prt, ns, pod, &opts()) {
        Ok(p) => event(
            st,
            job,
            "Normal",
            "SuccessfulCreate",
            &format!("Created pod: {}", meta_str(&p, "name")),
            "job-controller",
        ),
        Err(e) => {
            q.retry_jobs.insert(work_key(ns, name));
            event(
                st,
                job,
                "Warning",
                "FailedCreate",
                &format!("Error creating: {}", e.message),
                "job-controller",
            )
        }
    }
}

/// Writes a Job's status; returns the event of its end (type, reason, message) when it ends.
fn write_job_status(
    o: &mut Value,
    progress: &JobProgress,
    start: Value,
    active_n: i64,
    ready_n: i64,
) -> Option<(&'static str, &'static str, String)> {
    let s = status_mut(o)?;
    let complete = progress.succeeded >= progress.completions;
    s.insert("startTime".into(), start);
    if active_n > 0 && !complete && !progress.over_backoff {
        s.insert("active".into(), json!(active_n));
    } else {
        s.shift_remove("active");
    }
    if progress.succeeded > 0 {
        s.insert("succeeded".into(), json!(progress.succeeded));
    }
    if progress.failed > 0 {
        s.insert("failed".into(), json!(progress.failed));
    }
    s.insert("uncountedTerminatedPods".into(), json!({}));
    s.insert("ready".into(), json!(ready_n));
    if complete {
        s.insert("completionTime".into(), json!(util::now()));
        set_condition(
            s,
            json!({"type": "Complete", "status": "True", "lastProbeTime": util::now()}),
            false,
        );
        Some(("Normal", "Completed", "Job completed".to_string()))
    } else if progress.over_backoff {
        set_condition(
            s,
            json!({"type": "Failed", "status": "True", "lastProbeTime": util::now(), "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}),
            false,
        );
        Some((
            "Warning",
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit".to_string(),
        ))
    } else {
        None
    }
}

fn outcome_of(pod: &Value, config: &SandboxConfig) -> PodOutcome {
    let ann = pod
        .at("/metadata/annotations/sandbox.cairn.dev~1outcome")
        .and_then(Value::as_str);
    let images: Vec<String> = pod
        .at("/spec/containers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("image").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let configured = config
        .outcomes
        .iter()
        .find(|(sub, _)| images.iter().any(|i| i.contains(sub.as_str())))
        .map(|(_, o)| o.clone());
    match ann {
        Some("crashloop") => match configured {
            Some(c @ PodOutcome::CrashLoop { .. }) => c,
            _ => PodOutcome::CrashLoop {
                exit_code: 1,
                logs: vec!["sandbox: container exited with code 1".into()],
            },
        },
        Some("image-pull-error") => PodOutcome::ImagePullError,
        Some("not-ready") => PodOutcome::NotReady,
        Some("ready") => PodOutcome::Ready,
        _ => configured.unwrap_or(PodOutcome::Ready),
    }
}

/// What the scheduler writes on a pod it cannot place (its claims are not bound yet).
fn unschedulable(st: &mut State, prt: &ResourceType, ns: &str, name: &str, why: &str) {
    if why.starts_with("waiting for volume") {
        return;
    }
    st.controller_update(prt, ns, name, "kube-scheduler", Some("status"), |o| {
        let Some(s) = o
            .as_object_mut()
            .map(|m| m.entry("status").or_insert(json!({})))
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        s.insert("phase".into(), json!("Pending"));
        let c = json!({"type": "PodScheduled", "status": "False", "lastProbeTime": null,
            "reason": "Unschedulable", "message": why});
        set_condition(s, c, false);
    });
}

fn pods(st: &mut State, mem: &mut Memory, q: &mut Queues, config: &SandboxConfig) {
    let Some(prt) = rt(st, "", "v1", "pods") else {
        return;
    };
    let mut done = 0;
    while let Some(pod) = q.next(st, &prt, |q| &mut q.pods, done) {
        done += 1;
        if !deleting(&pod) && !pod_terminal(&pod) {
            reconcile_pod(st, mem, q, config, &prt, &pod);
        }
    }
}

/// A pod the kubelet runs, as read once per reconcile.
struct PodRun {
    ns: String,
    name: String,
    uid: String,
    /// Since the controller first saw it.
    elapsed: Duration,
    restart_policy: String,
    is_job: bool,
    /// (name, image) of each container.
    containers: Vec<(String, String)>,
    started: String,
    pod_ip: String,
}

impl PodRun {
    fn key(&self) -> WorkKey {
        work_key(&self.ns, &self.name)
    }

    /// `containers with unready status: [a b]`.
    fn unready_message(&self) -> String {
        let names: Vec<&str> = self.containers.iter().map(|(c, _)| c.as_str()).collect();
        format!("containers with unready status: [{}]", names.join(" "))
    }
}

fn containers_of(pod: &Value) -> Vec<(String, String)> {
    let field = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    pod.at("/spec/containers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|c| (field(c, "name"), field(c, "image")))
                .collect()
        })
        .unwrap_or_default()
}

/// One pod: what the scheduler and the kubelet do to it on this tick, by its outcome.
fn reconcile_pod(
    st: &mut State,
    mem: &mut Memory,
    q: &mut Queues,
    config: &SandboxConfig,
    prt: &ResourceType,
    pod: &Value,
) {
    let uid = uid_of(pod);
    let seen = *mem.seen.entry(uid.clone()).or_insert_with(Instant::now);
    let ns = meta_str(pod, "namespace").to_string();
    let name = meta_str(pod, "name").to_string();
    let elapsed = seen.elapsed();
    // Looked at again on the next tick unless it has settled (a write requeues it anyway).
    q.active_pods.insert(work_key(&ns, &name));
    if elapsed < config.pod_start_delay || !schedule(st, q, prt, pod, &ns, &name) {
        return;
    }
    let outcome = outcome_of(pod, config);
    let run = PodRun {
        restart_policy: pod
            .at("/spec/restartPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Always")
            .to_string(),
        is_job: pod
            .at("/metadata/ownerReferences/0/kind")
            .and_then(Value::as_str)
            == Some("Job"),
        containers: containers_of(pod),
        started: util::now(),
        pod_ip: format!("10.244.0.{}", 2 + (fnv32a(&uid) % 250)),
        ns,
        name,
        uid,
        elapsed,
    };
    match &outcome {
        PodOutcome::Ready => run_ready(st, q, config, prt, pod, &run),
        PodOutcome::CrashLoop { exit_code, logs } => {
            run_crashloop(st, mem, config, prt, &run, *exit_code, logs);
        }
        PodOutcome::ImagePullError => run_image_pull_error(st, q, config, prt, pod, &run),
        PodOutcome::NotReady => run_not_ready(st, q, prt, pod, &run),
    }
}

/// The scheduler's part; returns whether the pod is bound (or may be) so the kubelet runs it.
///
/// The emulated kube-scheduler is `default-scheduler`: a pod that asks for another one stays
/// Pending with no condition at all until that scheduler binds it (a write requeues it).
fn schedule(
    st: &mut State,
    q: &mut Queues,
    prt: &ResourceType,
    pod: &Value,
    ns: &str,
    name: &str,
) -> bool {
    let unbound = pod.at("/spec/nodeName").is_none();
    if unbound
        && pod
            .at("/spec/schedulerName")
            .and_then(Value::as_str)
            .is_some_and(|s| s != "default-scheduler")
    {
        q.active_pods.remove(&work_key(ns, name));
        return false;
    }
    if unbound && let Some(why) = crate::volumes::unbound_claims(st, pod) {
        unschedulable(st, prt, ns, name, &why);
        return false;
    }
    true
}

/// The node the kubelet runs every pod on, unless the pod names one.
fn bind_to_node(o: &mut Value) {
    if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
        spec.entry("nodeName")
            .or_insert(json!(crate::volumes::NODE));
    }
}

/// The conditions of a pod whose containers do not run.
fn set_unready_conditions(s: &mut serde_json::Map<String, Value>, run: &PodRun) {
    set_condition(
        s,
        json!({"type": "Initialized", "status": "True", "lastProbeTime": null}),
        false,
    );
    for t in ["Ready", "ContainersReady"] {
        set_condition(
            s,
            json!({"type": t, "status": "False", "lastProbeTime": null, "reason": "ContainersNotReady", "message": run.unready_message()}),
            false,
        );
    }
    set_condition(
        s,
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null}),
        false,
    );
}

/// A pod that becomes ready (or, for a Job's pod that may finish, completes on a later tick).
fn run_ready(
    st: &mut State,
    q: &mut Queues,
    config: &SandboxConfig,
    prt: &ResourceType,
    pod: &Value,
    run: &PodRun,
) {
    let may_finish = run.is_job && run.restart_policy != "Always";
    let finish = may_finish && run.elapsed >= config.pod_start_delay * 2;
    let already = pod_ready(pod);
    if already && !may_finish {
        q.active_pods.remove(&run.key());
    }
    if already && !finish {
        return;
    }
    for (c, _) in &run.containers {
        st.logs
            .entry((run.ns.clone(), run.name.clone(), c.clone()))
            .or_insert_with(|| vec![format!("sandbox: container {c} started")]);
    }
    st.controller_update(prt, &run.ns, &run.name, "kubelet", Some("status"), |o| {
        bind_to_node(o);
        if let Some(s) = status_mut(o) {
            write_ready_status(s, run, finish);
        }
    });
}

fn write_ready_status(s: &mut serde_json::Map<String, Value>, run: &PodRun, finish: bool) {
    let started = &run.started;
    let statuses: Vec<Value> = run
        .containers
        .iter()
        .map(|(c, image)| {
            if finish {
                json!({"name": c, "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": util::now(), "containerID": format!("containerd://{}", util::uid().replace('-', ""))}}, "lastState": {}, "ready": false, "restartCount": 0, "image": image, "imageID": format!("{image}@sha256:sandbox"), "containerID": "containerd://sandbox", "started": false})
            } else {
                json!({"name": c, "state": {"running": {"startedAt": started}}, "lastState": {}, "ready": true, "restartCount": 0, "image": image, "imageID": format!("{image}@sha256:sandbox"), "containerID": "containerd://sandbox", "started": true})
            }
        })
        .collect();
    s.insert(
        "phase".into(),
        json!(if finish { "Succeeded" } else { "Running" }),
    );
    let ready = if finish { "False" } else { "True" };
    for (t, v) in [
        ("Initialized", "True"),
        ("Ready", ready),
        ("ContainersReady", ready),
        ("PodScheduled", "True"),
    ] {
        let mut c = json!({"type": t, "status": v, "lastProbeTime": null});
        if finish && t != "Initialized" && t != "PodScheduled" {
            c["reason"] = json!("PodCompleted");
        }
        set_condition(s, c, false);
    }
    s.insert("hostIP".into(), json!("10.0.0.10"));
    s.insert("podIP".into(), json!(run.pod_ip));
    s.insert("podIPs".into(), json!([{"ip": run.pod_ip}]));
    s.entry("startTime").or_insert(json!(started));
    s.insert("containerStatuses".into(), Value::Array(statuses));
}

/// A pod whose readiness probe fails: its containers run, none is ready, and the kubelet says
/// so in the Ready condition (`ContainersNotReady`), once.
fn run_not_ready(st: &mut State, q: &mut Queues, prt: &ResourceType, pod: &Value, run: &PodRun) {
    q.active_pods.remove(&run.key());
    if pod.at("/status/phase").and_then(Value::as_str) == Some("Running") {
        return;
    }
    st.controller_update(prt, &run.ns, &run.name, "kubelet", Some("status"), |o| {
        bind_to_node(o);
        if let Some(s) = status_mut(o) {
            write_ready_status(s, run, false);
            if let Some(Value::Array(statuses)) = s.get_mut("containerStatuses") {
                for c in statuses.iter_mut() {
                    c["ready"] = json!(false);
                }
            }
            let names: Vec<&str> = run.containers.iter().map(|(c, _)| c.as_str()).collect();
            let message = format!("containers with unready status: [{}]", names.join(" "));
            for t in ["Ready", "ContainersReady"] {
                let c = json!({"type": t, "status": "False", "lastProbeTime": null,
                    "reason": "ContainersNotReady", "message": message});
                set_condition(s, c, false);
            }
        }
    });
}

/// A pod whose containers exit: restarted with back-off (or failed for `Never`), once a
/// period.
fn run_crashloop(
    st: &mut State,
    mem: &mut Memory,
    config: &SandboxConfig,
    prt: &ResourceType,
    run: &PodRun,
    exit_code: i32,
    logs: &[String],
) {
    let (ns, name, uid) = (&run.ns, &run.name, &run.uid);
    for (c, _) in &run.containers {
        st.logs
            .insert((ns.clone(), name.clone(), c.clone()), logs.to_vec());
    }
    let period = config.pod_start_delay.max(Duration::from_millis(200));
    let due = mem.restarted.get(uid).is_none_or(|t| t.elapsed() >= period);
    if !due {
        return;
    }
    mem.restarted.insert(uid.clone(), Instant::now());
    st.controller_update(prt, ns, name, "kubelet", Some("status"), |o| {
        bind_to_node(o);
        let prev = restart_counts(o);
        if let Some(s) = status_mut(o) {
            write_crashloop_status(s, run, exit_code, &prev);
        }
    });
    if let Some(p) = st.get(prt, ns, name).cloned() {
        let c = run
            .containers
            .first()
            .map(|c| c.0.clone())
            .unwrap_or_default();
        event(
            st,
            &p,
            "Warning",
            "BackOff",
            &format!("Back-off restarting failed container {c} in pod {name}_{ns}({uid})"),
            "kubelet",
        );
    }
}

/// Container name -> restart count, as the pod's status has them.
fn restart_counts(o: &Value) -> HashMap<String, i64> {
    o.at("/status/containerStatuses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c.get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        c.get("restartCount").and_then(Value::as_i64).unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn write_crashloop_status(
    s: &mut serde_json::Map<String, Value>,
    run: &PodRun,
    code: i32,
    prev: &HashMap<String, i64>,
) {
    let (ns, name, uid, started) = (&run.ns, &run.name, &run.uid, &run.started);
    let never = run.restart_policy == "Never";
    let terminated = json!({"exitCode": code, "reason": "Error", "startedAt": started, "finishedAt": util::now(), "containerID": "containerd://sandbox"});
    let statuses: Vec<Value> = run
        .containers
        .iter()
        .map(|(c, image)| {
            let restarts = prev.get(c).map_or(0, |r| r + 1);
            if never {
                json!({"name": c, "state": {"terminated": terminated}, "lastState": {}, "ready": false, "restartCount": 0, "image": image, "imageID": format!("{image}@sha256:sandbox"), "containerID": "containerd://sandbox", "started": false})
            } else {
                json!({"name": c, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 10s restarting failed container={c} pod={name}_{ns}({uid})")}}, "lastState": {"terminated": terminated}, "ready": false, "restartCount": restarts, "image": image, "imageID": format!("{image}@sha256:sandbox"), "containerID": "containerd://sandbox", "started": false})
            }
        })
        .collect();
    s.insert(
        "phase".into(),
        json!(if never { "Failed" } else { "Running" }),
    );
    set_unready_conditions(s, run);
    s.insert("hostIP".into(), json!("10.0.0.10"));
    s.insert("podIP".into(), json!(run.pod_ip));
    s.entry("startTime").or_insert(json!(started));
    s.insert("containerStatuses".into(), Value::Array(statuses));
}

/// A pod whose image cannot be pulled: `ErrImagePull`, then `ImagePullBackOff` from twice
/// the start delay on.
fn run_image_pull_error(
    st: &mut State,
    q: &mut Queues,
    config: &SandboxConfig,
    prt: &ResourceType,
    pod: &Value,
    run: &PodRun,
) {
    let second = run.elapsed >= config.pod_start_delay * 2;
    let current = pod
        .at("/status/containerStatuses/0/state/waiting/reason")
        .and_then(Value::as_str)
        .unwrap_or("");
    let want = if second {
        "ImagePullBackOff"
    } else {
        "ErrImagePull"
    };
    if current == want {
        if second {
            q.active_pods.remove(&run.key());
        }
        return;
    }
    st.controller_update(prt, &run.ns, &run.name, "kubelet", Some("status"), |o| {
        bind_to_node(o);
        if let Some(s) = status_mut(o) {
            write_image_pull_status(s, run, second, want);
        }
    });
    if let Some(p) = st.get(prt, &run.ns, &run.name).cloned() {
        let image = run
            .containers
            .first()
            .map(|c| c.1.clone())
            .unwrap_or_default();
        let (reason, msg) = if second {
            ("BackOff", format!("Back-off pulling image \"{image}\""))
        } else {
            (
                "Failed",
                format!("Failed to pull image \"{image}\": not found"),
            )
        };
        event(st, &p, "Warning", reason, &msg, "kubelet");
    }
}

fn write_image_pull_status(
    s: &mut serde_json::Map<String, Value>,
    run: &PodRun,
    second: bool,
    want: &str,
) {
    let statuses: Vec<Value> = run
        .containers
        .iter()
        .map(|(c, image)| {
            let message = if second {
                format!("Back-off pulling image \"{image}\"")
            } else {
                format!("rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": {image}: not found")
            };
            json!({"name": c, "state": {"waiting": {"reason": want, "message": message}}, "lastState": {}, "ready": false, "restartCount": 0, "image": image, "imageID": "", "started": false})
        })
        .collect();
    s.insert("phase".into(), json!("Pending"));
    set_unready_conditions(s, run);
    s.insert("hostIP".into(), json!("10.0.0.10"));
    s.entry("startTime").or_insert(json!(run.started));
    s.insert("containerStatuses".into(), Value::Array(statuses));
}

/// The sum of some quantities, canonical (`0` for none).
fn total(quantities: impl Iterator<Item = Quantity>) -> String {
    quantities
        .reduce(|t, q| t + q)
        .map_or_else(|| "0".to_string(), |t| t.canonical())
}

/// The storage the claims of a namespace request.
fn claimed_storage(st: &State, ns: &str) -> String {
    let claims = rt(st, "", "v1", "persistentvolumeclaims")
        .map(|t| st.list_arc(&t, ns))
        .unwrap_or_default();
    total(claims.iter().filter_map(|pvc| {
        pvc.at("/spec/resources/requests/storage")
            .and_then(Value::as_str)
            .and_then(|s| Quantity::parse(s).ok())
    }))
}

/// Usage of a namespace for the resources a quota limits.
fn usage(
    st: &State,
    ns: &str,
    hard: &serde_json::Map<String, Value>,
) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    let pods: Vec<Arc<Value>> = rt(st, "", "v1", "pods")
        .map(|t| st.list_arc(&t, ns))
        .unwrap_or_default()
        .into_iter()
        .filter(|p| !pod_terminal(p) && !deleting(p))
        .collect();
    let sum = |kind: &str, res: &str| -> String {
        total(
            pods.iter()
                .flat_map(|p| {
                    p.at("/spec/containers")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                })
                .filter_map(|c| container_quantity(c, kind, res)),
        )
    };
    let count = |g: &str, p: &str| -> usize {
        st.registry
            .types
            .values()
            .find(|t| t.group == g && t.plural == p)
            .map(|t| st.count(t, ns))
            .unwrap_or(0)
    };
    for key in hard.keys() {
        let v = match key.as_str() {
            "pods" | "count/pods" => pods.len().to_string(),
            "requests.cpu" | "cpu" => sum("requests", "cpu"),
            "requests.memory" | "memory" => sum("requests", "memory"),
            "limits.cpu" => sum("limits", "cpu"),
            "limits.memory" => sum("limits", "memory"),
            "persistentvolumeclaims" => count("", "persistentvolumeclaims").to_string(),
            "requests.storage" => claimed_storage(st, ns),
            "services" => count("", "services").to_string(),
            "secrets" => count("", "secrets").to_string(),
            "configmaps" => count("", "configmaps").to_string(),
            other => match other.strip_prefix("count/") {
                Some(res) => {
                    let (p, g) = res.split_once('.').unwrap_or((res, ""));
                    count(g, p).to_string()
                }
                None => "0".to_string(),
            },
        };
        out.insert(key.clone(), json!(v));
    }
    out
}

fn quotas(st: &mut State, queues: &mut Queues) {
    let Some(qrt) = rt(st, "", "v1", "resourcequotas") else {
        return;
    };
    let namespaces = std::mem::take(&mut queues.quota_namespaces);
    let mut all: Vec<(String, Arc<Value>)> = namespaces
        .iter()
        .flat_map(|ns| st.list_arc(&qrt, ns))
        .map(|q| {
            (
                format!("{}/{}", meta_str(&q, "namespace"), meta_str(&q, "name")),
                q,
            )
        })
        .collect();
    // LIST order of all namespaces.
    all.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, q) in all {
        let ns = meta_str(&q, "namespace").to_string();
        let name = meta_str(&q, "name").to_string();
        let hard = q
            .at("/spec/hard")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let used = usage(st, &ns, &hard);
        st.controller_update(&qrt, &ns, &name, KCM, Some("status"), |o| {
            if let Some(m) = o.as_object_mut() {
                m.insert("status".into(), json!({"hard": hard, "used": used}));
            }
        });
    }
}

/// Admission of a new pod: LimitRange defaults, then ResourceQuota.
pub fn admit_pod(st: &State, ns: &str, pod: &mut Value) -> Result<(), ApiError> {
    apply_limit_ranges(st, ns, pod);
    let Some(qrt) = rt(st, "", "v1", "resourcequotas") else {
        return Ok(());
    };
    let name = meta_str(pod, "name").to_string();
    for q in st.list_arc(&qrt, ns) {
        let exceeded = quota_exceeded(st, ns, pod, &q);
        if !exceeded.is_empty() {
            return Err(quota_error(&name, meta_str(&q, "name"), &exceeded));
        }
    }
    Ok(())
}

/// The `Container` defaults of the namespace's LimitRanges: limits and requests a container
/// does not set.
fn apply_limit_ranges(st: &State, ns: &str, pod: &mut Value) {
    let Some(lrt) = rt(st, "", "v1", "limitranges") else {
        return;
    };
    for lr in st.list_arc(&lrt, ns) {
        for limit in lr
            .at("/spec/limits")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if limit.get("type").and_then(Value::as_str) != Some("Container") {
                continue;
            }
            for c in pod
                .at_mut("/spec/containers")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                default_container_resources(c, limit);
            }
        }
    }
}

fn default_container_resources(c: &mut Value, limit: &Value) {
    let Some(cm) = c.as_object_mut() else {
        return;
    };
    let res = cm.entry("resources").or_insert(json!({}));
    let Some(rm) = res.as_object_mut() else {
        return;
    };
    for (src, dst) in [("default", "limits"), ("defaultRequest", "requests")] {
        if let Some(d) = limit.get(src).and_then(Value::as_object) {
            let target = rm.entry(dst).or_insert(json!({}));
            if let Some(tm) = target.as_object_mut() {
                for (k, v) in d {
                    tm.entry(k.clone()).or_insert(v.clone());
                }
            }
        }
    }
}

/// A resource a quota limits that admitting a pod would exceed.
struct Exceeded {
    key: String,
    requested: String,
    used: String,
    limited: String,
}

/// The resources of one quota the pod would take past its hard limits.
fn quota_exceeded(st: &State, ns: &str, pod: &Value, q: &Value) -> Vec<Exceeded> {
    let hard = q
        .at("/spec/hard")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let used = usage(st, ns, &hard);
    let mut exceeded = Vec::new();
    for (k, limit) in &hard {
        let Some(req) = pod_request(pod, k) else {
            continue;
        };
        let u = used.get(k).and_then(Value::as_str).unwrap_or("0");
        let (Ok(uq), Ok(rq), Ok(lq)) = (
            Quantity::parse(u),
            Quantity::parse(&req),
            Quantity::parse(limit.as_str().unwrap_or("0")),
        ) else {
            continue;
        };
        if uq + rq > lq {
            exceeded.push(Exceeded {
                key: k.clone(),
                requested: req,
                used: u.to_string(),
                limited: limit.as_str().unwrap_or("").to_string(),
            });
        }
    }
    exceeded
}

/// What a pod asks of a quota's resource `key` (`None`: not a resource a pod counts for, or
/// one it does not request).
fn pod_request(pod: &Value, key: &str) -> Option<String> {
    let (kind, res) = match key {
        "pods" | "count/pods" => return Some("1".to_string()),
        "requests.cpu" | "cpu" => ("requests", "cpu"),
        "requests.memory" | "memory" => ("requests", "memory"),
        "limits.cpu" => ("limits", "cpu"),
        "limits.memory" => ("limits", "memory"),
        _ => return None,
    };
    let mut total: Option<Quantity> = None;
    for c in pod
        .at("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(q) = container_quantity(c, kind, res) {
            total = Some(match total {
                Some(t) => t + q,
                None => q,
            });
        }
    }
    total.map(|t| t.canonical())
}

/// A container's `resources.<kind>.<res>` (a request defaults to the limit).
fn container_quantity(c: &Value, kind: &str, res: &str) -> Option<Quantity> {
    c.at(&format!("/resources/{kind}/{res}"))
        .or_else(|| {
            if kind == "requests" {
                c.at(&format!("/resources/limits/{res}"))
            } else {
                None
            }
        })
        .and_then(Value::as_str)
        .and_then(|s| Quantity::parse(s).ok())
}

fn quota_error(name: &str, quota: &str, exceeded: &[Exceeded]) -> ApiError {
    let list = |f: fn(&Exceeded) -> &str| -> String {
        exceeded
            .iter()
            .map(|e| format!("{}={}", e.key, f(e)))
            .collect::<Vec<_>>()
            .join(",")
    };
    ApiError::new(
        403,
        "Forbidden",
        format!(
            "pods \"{name}\" is forbidden: exceeded quota: {quota}, requested: {}, used: {}, limited: {}",
            list(|e| &e.requested),
            list(|e| &e.used),
            list(|e| &e.limited),
        ),
    )
    .with_details(json!({"name": name, "kind": "pods"}))
}
