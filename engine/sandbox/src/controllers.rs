//! The controller loop: what kube-controller-manager, the scheduler and a kubelet would do,
//! reduced to what readiness checks observe.

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
    /// When the current tick should hand the store back.
    deadline: Option<Instant>,
    /// Whether the last tick left work for the next one.
    deferred: bool,
}

impl Queues {
    /// Whether the tick is out of time; the first object of each controller is always done.
    fn out_of_time(&self, done: usize) -> bool {
        done > 0 && self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Puts the objects a tick did not get to back in `queue`.
    fn defer(queue: &mut BTreeSet<WorkKey>, rest: &[Arc<Value>], deferred: &mut bool) {
        for o in rest {
            queue.insert(work_key(meta_str(o, "namespace"), meta_str(o, "name")));
        }
        *deferred = true;
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
        queues.deferred = false;
        queues.deadline = Some(Instant::now() + TICK_BUDGET);
        reconcile(&mut st, &mut mem, &mut queues, &config);
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
            });
        }
    }
    st.changes = all;
}

fn owner_uids(o: &Value) -> Vec<String> {
    o.pointer("/metadata/ownerReferences")
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
        && o.pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|x| x.as_str() == Some("foregroundDeletion")))
}

/// Routes the store's change log to the controllers that depend on each changed object.
fn absorb(st: &mut State, mem: &mut Memory, q: &mut Queues) {
    let changes = std::mem::take(&mut st.changes);
    for c in changes {
        let k = &c.key;
        let wk = || work_key(&k.ns, &k.name);
        let current = if c.removed { None } else { st.get_key(k) };
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
            ("apps", "deployments") => {
                q.deployments.insert(wk());
            }
            ("apps", "replicasets") => {
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
        // Owners recompute their status from their dependents.
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
        // Garbage collection: the object itself, and its dependents when it goes away.
        if let Some(o) = current
            && (deleting(o) || o.pointer("/metadata/ownerReferences").is_some())
        {
            q.gc.insert(k.clone());
        }
        if (c.removed || current.is_some_and(|o| deleting(o)))
            && let Some(deps) = st.dependents.get(&c.uid)
        {
            q.gc.extend(deps.iter().cloned());
        }
        if !k.ns.is_empty() {
            q.quota_namespaces.insert(k.ns.clone());
        }
    }
}

/// The stored objects of `rt` for the queued keys, in queue order.
fn queued(
    st: &State,
    rt: &ResourceType,
    queue: &mut BTreeSet<WorkKey>,
    retry: Option<&mut BTreeSet<WorkKey>>,
) -> Vec<Arc<Value>> {
    let mut keys = std::mem::take(queue);
    if let Some(r) = retry {
        keys.extend(std::mem::take(r));
    }
    keys.iter()
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
    o.pointer("/metadata/deletionTimestamp").is_some()
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
    absorb(st, mem, q);
    quotas(st, q);
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
    for crd in queued(st, &crt, &mut q.crds, None) {
        let name = meta_str(&crd, "name").to_string();
        if deleting(&crd) {
            // Delete every custom object, then the CRD.
            let types: Vec<Arc<ResourceType>> = st
                .registry
                .types
                .values()
                .filter(|t| {
                    t.custom
                        && Some(t.group.as_str())
                            == crd.pointer("/spec/group").and_then(Value::as_str)
                        && Some(t.plural.as_str())
                            == crd.pointer("/spec/names/plural").and_then(Value::as_str)
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
            st.registry.remove_crd(&crd);
            st.remove(&crt, "", &name);
            continue;
        }
        if !is_established(&crd) {
            let now = util::now();
            let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
            let updated = st.controller_update(
                &crt,
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
        } else {
            let generation = int(&crd, "/metadata/generation");
            if mem.crd_generation.get(&name) != Some(&generation) {
                st.registry.add_crd(&crd);
                mem.crd_generation.insert(name, generation);
            }
        }
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
    for ns in queued(st, &nrt, &mut q.namespaces, Some(&mut q.retry_namespaces)) {
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

/// Garbage collection by ownerReferences, foreground deletion, and finalizers the emulator owns.
///
/// Looks at the queued objects only: those that changed, the dependents of owners that went away
/// or are being deleted, and owners in foreground deletion whose dependents changed. Decisions
/// are taken on the state as it is when the pass starts.
fn garbage_collect(st: &mut State, q: &mut Queues) {
    let keys = std::mem::take(&mut q.gc);
    let mut items: Vec<(Arc<ResourceType>, Arc<Value>)> = Vec::new();
    let mut types: HashMap<(String, String), Option<Arc<ResourceType>>> = HashMap::new();
    // Work in LIST order per type, like a scan of the whole store would.
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
            && o.pointer("/status/phase").and_then(Value::as_str) != Some("Bound")
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
    q.gc.extend(in_use);
}

/// Whether a pod the scheduler has placed mounts claim `name` of namespace `ns`
/// (`podUsesPVC` of the pvc-protection controller).
fn claim_in_use(st: &State, ns: &str, name: &str) -> bool {
    let Some(prt) = rt(st, "", "v1", "pods") else {
        return false;
    };
    st.list_arc(&prt, ns).iter().any(|pod| {
        pod.pointer("/spec/nodeName").is_some()
            && pod
                .pointer("/spec/volumes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|v| {
                    v.pointer("/persistentVolumeClaim/claimName")
                        .and_then(Value::as_str)
                        == Some(name)
                })
    })
}

fn remove_finalizer(st: &mut State, t: &ResourceType, ns: &str, name: &str, f: &str) {
    st.controller_update(t, ns, name, KCM, None, |o| {
        if let Some(a) = o
            .pointer_mut("/metadata/finalizers")
            .and_then(Value::as_array_mut)
        {
            a.retain(|x| x.as_str() != Some(f));
        }
    });
}

fn int(v: &Value, p: &str) -> i64 {
    v.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

fn pod_ready(p: &Value) -> bool {
    p.pointer("/status/conditions")
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
        p.pointer("/status/phase").and_then(Value::as_str),
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

fn deployments(st: &mut State, q: &mut Queues) {
    let (Some(drt), Some(rsrt)) = (
        rt(st, "apps", "v1", "deployments"),
        rt(st, "apps", "v1", "replicasets"),
    ) else {
        return;
    };
    let batch = queued(st, &drt, &mut q.deployments, Some(&mut q.retry_deployments));
    for (i, d) in batch.iter().enumerate() {
        if q.out_of_time(i) {
            Queues::defer(&mut q.deployments, &batch[i..], &mut q.deferred);
            break;
        }
        let d = d.clone();
        if deleting(&d) {
            continue;
        }
        let ns = meta_str(&d, "namespace").to_string();
        let name = meta_str(&d, "name").to_string();
        let uid = uid_of(&d);
        let replicas = d
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let hash = template_hash(&template);
        let owned = st.dependents_in(&rsrt, &ns, &uid);
        let max_rev = owned
            .iter()
            .filter_map(|r| {
                r.pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
                    .and_then(Value::as_str)
                    .and_then(|x| x.parse::<i64>().ok())
            })
            .max()
            .unwrap_or(0);
        let current = owned.iter().find(|r| {
            r.pointer("/metadata/labels/pod-template-hash")
                .and_then(Value::as_str)
                == Some(hash.as_str())
        });
        let strategy = Strategy::of(&d, replicas);
        let surge = strategy.max_surge;
        // A new ReplicaSet starts with what the surge allows beside the old ones.
        let old_total: i64 = owned
            .iter()
            .filter(|r| Some(*r) != current)
            .map(|r| int(r, "/spec/replicas"))
            .sum();
        let initial = if strategy.recreate {
            if old_total > 0 { 0 } else { replicas }
        } else {
            (replicas + surge - old_total).clamp(0, replicas)
        };
        let (rs_name, revision) = match current {
            Some(r) => (
                meta_str(r, "name").to_string(),
                r.pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
                    .and_then(Value::as_str)
                    .and_then(|x| x.parse::<i64>().ok())
                    .unwrap_or(max_rev),
            ),
            None => {
                let rs_name = format!("{name}-{hash}");
                let mut tmpl = template.clone();
                if let Some(l) = tmpl.pointer_mut("/metadata").and_then(Value::as_object_mut) {
                    let labels = l.entry("labels").or_insert(json!({}));
                    if let Some(lm) = labels.as_object_mut() {
                        lm.insert("pod-template-hash".into(), json!(hash));
                    }
                }
                let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
                if let Some(ml) = selector
                    .as_object_mut()
                    .map(|s| s.entry("matchLabels").or_insert(json!({})))
                    .and_then(Value::as_object_mut)
                {
                    ml.insert("pod-template-hash".into(), json!(hash));
                }
                let labels = tmpl
                    .pointer("/metadata/labels")
                    .cloned()
                    .unwrap_or(json!({}));
                let rev = max_rev + 1;
                let rs = json!({
                    "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {
                        "name": rs_name, "namespace": ns, "labels": labels,
                        "annotations": {
                            "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                            "deployment.kubernetes.io/max-replicas": (replicas + surge).to_string(),
                            "deployment.kubernetes.io/revision": rev.to_string()
                        },
                        "ownerReferences": [owner_ref(&d, true)]
                    },
                    "spec": {"replicas": initial, "selector": selector, "template": tmpl}
                });
                let created = st.create(&rsrt, &ns, rs, &opts());
                if created.is_err() {
                    q.retry_deployments.insert(work_key(&ns, &name));
                }
                if created.is_ok() {
                    event(
                        st,
                        &d,
                        "Normal",
                        "ScalingReplicaSet",
                        &format!("Scaled up replica set {rs_name} to {initial}"),
                        "deployment-controller",
                    );
                }
                (rs_name, rev)
            }
        };
        // Scale as the deployment controller does: the new ReplicaSet up within the surge,
        // old ones down while enough pods stay available (or, for Recreate, old ones to zero
        // first).
        let owned = st.dependents_in(&rsrt, &ns, &uid);
        let targets = rollout_targets(&owned, &rs_name, replicas, &strategy);
        for r in &owned {
            let rn = meta_str(r, "name").to_string();
            let Some(&want) = targets.get(&rn) else {
                continue;
            };
            let had = int(r, "/spec/replicas");
            if had != want {
                st.controller_update(&rsrt, &ns, &rn, KCM, None, |o| {
                    if let Some(s) = o.get_mut("spec").and_then(Value::as_object_mut) {
                        s.insert("replicas".into(), json!(want));
                    }
                    if let Some(a) = o
                        .pointer_mut("/metadata/annotations")
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
                    &d,
                    "Normal",
                    "ScalingReplicaSet",
                    &format!("Scaled {verb} replica set {rn} to {want}"),
                    "deployment-controller",
                );
            }
        }
        // Status.
        let owned = st.dependents_in(&rsrt, &ns, &uid);
        let cur = owned
            .iter()
            .find(|r| meta_str(r, "name") == rs_name)
            .cloned();
        let total: i64 = owned.iter().map(|r| int(r, "/status/replicas")).sum();
        let ready: i64 = owned.iter().map(|r| int(r, "/status/readyReplicas")).sum();
        let available: i64 = owned
            .iter()
            .map(|r| int(r, "/status/availableReplicas"))
            .sum();
        let updated = cur.as_ref().map_or(0, |r| int(r, "/status/replicas"));
        let max_unavailable = strategy.max_unavailable;
        let generation = int(&d, "/metadata/generation");
        let failure = cur.as_ref().and_then(|r| {
            r.pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c.get("type").and_then(Value::as_str) == Some("ReplicaFailure"))
                        .cloned()
                })
        });
        let complete = updated == replicas && available >= replicas && total == replicas;
        st.controller_update(&drt, &ns, &name, KCM, Some("status"), |o| {
            if let Some(a) = o
                .get_mut("metadata")
                .and_then(Value::as_object_mut)
                .map(|m| m.entry("annotations").or_insert(json!({})))
                .and_then(Value::as_object_mut)
            {
                a.insert(
                    "deployment.kubernetes.io/revision".into(),
                    json!(revision.to_string()),
                );
            }
            let status = o
                .as_object_mut()
                .map(|m| m.entry("status").or_insert(json!({})));
            let Some(s) = status.and_then(Value::as_object_mut) else {
                return;
            };
            s.insert("observedGeneration".into(), json!(generation));
            s.insert("replicas".into(), json!(total));
            s.insert("updatedReplicas".into(), json!(updated));
            for (k, v) in [
                ("readyReplicas", ready),
                ("availableReplicas", available),
                ("unavailableReplicas", (replicas - available).max(0)),
            ] {
                if v > 0 {
                    s.insert(k.into(), json!(v));
                } else {
                    s.shift_remove(k);
                }
            }
            if replicas == 0 || available >= replicas - max_unavailable {
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
            match &failure {
                Some(f) => {
                    let mut c = f.clone();
                    if let Some(m) = c.as_object_mut() {
                        m.shift_remove("lastTransitionTime");
                    }
                    set_condition(s, c, true);
                }
                None => remove_condition(s, "ReplicaFailure"),
            }
        });
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
        let recreate = d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate");
        let resolve = |key: &str, up: bool| -> i64 {
            match d.pointer(&format!("/spec/strategy/rollingUpdate/{key}")) {
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
    let batch = queued(
        st,
        &rsrt,
        &mut q.replicasets,
        Some(&mut q.retry_replicasets),
    );
    for (i, rs) in batch.iter().enumerate() {
        if q.out_of_time(i) {
            Queues::defer(&mut q.replicasets, &batch[i..], &mut q.deferred);
            break;
        }
        let rs = rs.clone();
        if deleting(&rs) {
            continue;
        }
        let ns = meta_str(&rs, "namespace").to_string();
        let name = meta_str(&rs, "name").to_string();
        let uid = uid_of(&rs);
        let want = rs
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let pods: Vec<Arc<Value>> = st
            .dependents_in(&prt, &ns, &uid)
            .into_iter()
            .filter(|p| !deleting(p))
            .collect();
        let mut failure: Option<String> = None;
        let have = pods.len() as i64;
        if have < want {
            let backoff = mem
                .failed_create
                .get(&uid)
                .is_some_and(|t| t.elapsed() < Duration::from_millis(500));
            if !backoff {
                let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
                for _ in have..want {
                    let pod = pod_from_template(&rs, &template, None, &ns);
                    match st.create(&prt, &ns, pod, &opts()) {
                        Ok(p) => event(
                            st,
                            &rs,
                            "Normal",
                            "SuccessfulCreate",
                            &format!("Created pod: {}", meta_str(&p, "name")),
                            "replicaset-controller",
                        ),
                        Err(e) => {
                            event(
                                st,
                                &rs,
                                "Warning",
                                "FailedCreate",
                                &format!("Error creating: {}", e.message),
                                "replicaset-controller",
                            );
                            mem.failed_create.insert(uid.clone(), Instant::now());
                            failure = Some(e.message);
                            break;
                        }
                    }
                }
            } else {
                failure = rs
                    .pointer("/status/conditions/0/message")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
        } else if have > want {
            let mut extra = pods.clone();
            // Delete not-ready pods first, newest first.
            extra.sort_by_key(|p| {
                (
                    pod_ready(p),
                    std::cmp::Reverse(meta_str(p, "creationTimestamp").to_string()),
                )
            });
            for p in extra.iter().take((have - want) as usize) {
                let pn = meta_str(p, "name").to_string();
                if st.delete(&prt, &ns, &pn, "Background", false).is_ok() {
                    event(
                        st,
                        &rs,
                        "Normal",
                        "SuccessfulDelete",
                        &format!("Deleted pod: {pn}"),
                        "replicaset-controller",
                    );
                }
            }
        }
        let pods: Vec<Arc<Value>> = st
            .dependents_in(&prt, &ns, &uid)
            .into_iter()
            .filter(|p| !deleting(p))
            .collect();
        let count = pods.len() as i64;
        if count < want {
            // Retried on every tick (creates back off on their own).
            q.retry_replicasets.insert(work_key(&ns, &name));
        }
        let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
        let generation = int(&rs, "/metadata/generation");
        st.controller_update(&rsrt, &ns, &name, KCM, Some("status"), |o| {
            let Some(s) = o
                .as_object_mut()
                .map(|m| m.entry("status").or_insert(json!({})))
                .and_then(Value::as_object_mut)
            else {
                return;
            };
            s.insert("replicas".into(), json!(count));
            if count > 0 {
                s.insert("fullyLabeledReplicas".into(), json!(count));
            } else {
                s.shift_remove("fullyLabeledReplicas");
            }
            for (k, v) in [("readyReplicas", ready), ("availableReplicas", ready)] {
                if v > 0 {
                    s.insert(k.into(), json!(v));
                } else {
                    s.shift_remove(k);
                }
            }
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
}

fn statefulsets(st: &mut State, q: &mut Queues) {
    let (Some(ssrt), Some(prt), Some(pvcrt)) = (
        rt(st, "apps", "v1", "statefulsets"),
        rt(st, "", "v1", "pods"),
        rt(st, "", "v1", "persistentvolumeclaims"),
    ) else {
        return;
    };
    let batch = queued(
        st,
        &ssrt,
        &mut q.statefulsets,
        Some(&mut q.retry_statefulsets),
    );
    for (i, ss) in batch.iter().enumerate() {
        if q.out_of_time(i) {
            Queues::defer(&mut q.statefulsets, &batch[i..], &mut q.deferred);
            break;
        }
        let ss = ss.clone();
        if deleting(&ss) {
            continue;
        }
        let ns = meta_str(&ss, "namespace").to_string();
        let name = meta_str(&ss, "name").to_string();
        let uid = uid_of(&ss);
        let want = ss
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let template = ss.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let revision = format!("{name}-{}", template_hash(&template));
        let parallel = ss
            .pointer("/spec/podManagementPolicy")
            .and_then(Value::as_str)
            == Some("Parallel");
        for i in 0..want {
            let pod_name = format!("{name}-{i}");
            if let Some(p) = st.get(&prt, &ns, &pod_name) {
                // An orphan (its StatefulSet was deleted with `Orphan` and created again) is
                // adopted, as the controller's ref manager does.
                if p.pointer("/metadata/ownerReferences").is_none() && !deleting(p) {
                    let owner = owner_ref(&ss, true);
                    st.controller_update(&prt, &ns, &pod_name, KCM, None, |o| {
                        o["metadata"]["ownerReferences"] = json!([owner]);
                    });
                }
                let Some(p) = st.get(&prt, &ns, &pod_name) else {
                    continue;
                };
                if !parallel && !pod_ready(p) {
                    break;
                }
                continue;
            }
            for vct in ss
                .pointer("/spec/volumeClaimTemplates")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let claim = format!("{}-{pod_name}", meta_str(&vct, "name"));
                if st.get(&pvcrt, &ns, &claim).is_none() {
                    let mut labels = template
                        .pointer("/metadata/labels")
                        .cloned()
                        .unwrap_or(json!({}));
                    if let Some(l) = labels.as_object_mut() {
                        for (k, v) in vct
                            .pointer("/metadata/labels")
                            .and_then(Value::as_object)
                            .into_iter()
                            .flatten()
                        {
                            l.insert(k.clone(), v.clone());
                        }
                    }
                    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "metadata": {"name": claim, "namespace": ns, "labels": labels},
                        "spec": vct.get("spec").cloned().unwrap_or(json!({}))});
                    if st.create(&pvcrt, &ns, pvc, &opts()).is_ok() {
                        event(
                            st,
                            &ss,
                            "Normal",
                            "SuccessfulCreate",
                            &format!(
                                "create Claim {claim} Pod {pod_name} in StatefulSet {name} success"
                            ),
                            "statefulset-controller",
                        );
                    }
                }
            }
            let mut pod = pod_from_template(&ss, &template, Some(pod_name.clone()), &ns);
            if let Some(m) = pod.pointer_mut("/metadata").and_then(Value::as_object_mut) {
                let labels = m.entry("labels").or_insert(json!({}));
                if let Some(l) = labels.as_object_mut() {
                    l.insert("controller-revision-hash".into(), json!(revision));
                    l.insert("statefulset.kubernetes.io/pod-name".into(), json!(pod_name));
                }
            }
            if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("hostname".into(), json!(pod_name));
                if let Some(svc) = ss.pointer("/spec/serviceName") {
                    spec.insert("subdomain".into(), svc.clone());
                }
                let vols = spec.entry("volumes").or_insert(json!([]));
                if let Some(vs) = vols.as_array_mut() {
                    for vct in ss
                        .pointer("/spec/volumeClaimTemplates")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                    {
                        let vn = meta_str(&vct, "name").to_string();
                        vs.push(json!({"name": vn, "persistentVolumeClaim": {"claimName": format!("{vn}-{pod_name}")}}));
                    }
                }
            }
            match st.create(&prt, &ns, pod, &opts()) {
                Ok(_) => event(
                    st,
                    &ss,
                    "Normal",
                    "SuccessfulCreate",
                    &format!("create Pod {pod_name} in StatefulSet {name} successful"),
                    "statefulset-controller",
                ),
                Err(e) => {
                    q.retry_statefulsets.insert(work_key(&ns, &name));
                    event(
                        st,
                        &ss,
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
            if !parallel {
                break;
            }
        }
        // Scale down from the highest ordinal.
        let pods = st.dependents_in(&prt, &ns, &uid);
        for p in &pods {
            let ord = meta_str(p, "name")
                .rsplit('-')
                .next()
                .and_then(|x| x.parse::<i64>().ok())
                .unwrap_or(0);
            if ord >= want {
                let pn = meta_str(p, "name").to_string();
                let _ = st.delete(&prt, &ns, &pn, "Background", false);
            }
        }
        let pods: Vec<Arc<Value>> = st
            .dependents_in(&prt, &ns, &uid)
            .into_iter()
            .filter(|p| !deleting(p))
            .collect();
        let count = pods.len() as i64;
        let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
        let generation = int(&ss, "/metadata/generation");
        st.controller_update(&ssrt, &ns, &name, KCM, Some("status"), |o| {
            let Some(s) = o
                .as_object_mut()
                .map(|m| m.entry("status").or_insert(json!({})))
                .and_then(Value::as_object_mut)
            else {
                return;
            };
            s.insert("observedGeneration".into(), json!(generation));
            s.insert("replicas".into(), json!(count));
            if ready > 0 {
                s.insert("readyReplicas".into(), json!(ready));
            } else {
                s.shift_remove("readyReplicas");
            }
            s.insert("currentReplicas".into(), json!(count));
            s.insert("updatedReplicas".into(), json!(count));
            s.insert("currentRevision".into(), json!(revision));
            s.insert("updateRevision".into(), json!(revision));
            s.insert("collisionCount".into(), json!(0));
            s.insert("availableReplicas".into(), json!(ready));
        });
    }
}

fn jobs(st: &mut State, q: &mut Queues) {
    let (Some(jrt), Some(prt)) = (rt(st, "batch", "v1", "jobs"), rt(st, "", "v1", "pods")) else {
        return;
    };
    let batch = queued(st, &jrt, &mut q.jobs, Some(&mut q.retry_jobs));
    for (i, job) in batch.iter().enumerate() {
        if q.out_of_time(i) {
            Queues::defer(&mut q.jobs, &batch[i..], &mut q.deferred);
            break;
        }
        let job = job.clone();
        if deleting(&job) {
            continue;
        }
        let ns = meta_str(&job, "namespace").to_string();
        let name = meta_str(&job, "name").to_string();
        let uid = uid_of(&job);
        let finished = job
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    matches!(
                        c.get("type").and_then(Value::as_str),
                        Some("Complete" | "Failed")
                    ) && c.get("status").and_then(Value::as_str) == Some("True")
                })
            });
        if finished || job.pointer("/spec/suspend") == Some(&json!(true)) {
            continue;
        }
        let completions = job
            .pointer("/spec/completions")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let backoff = job
            .pointer("/spec/backoffLimit")
            .and_then(Value::as_i64)
            .unwrap_or(6);
        let pods = st.dependents_in(&prt, &ns, &uid);
        let succeeded = pods
            .iter()
            .filter(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Succeeded"))
            .count() as i64;
        let failed_pods = pods
            .iter()
            .filter(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Failed"))
            .count() as i64;
        let restarts: i64 = pods
            .iter()
            .map(|p| int(p, "/status/containerStatuses/0/restartCount"))
            .sum();
        let failed = failed_pods + restarts;
        let active: Vec<&Arc<Value>> = pods.iter().filter(|p| !pod_terminal(p)).collect();
        let over_backoff = failed > backoff;
        if !over_backoff && succeeded < completions && active.is_empty() {
            let template = job.pointer("/spec/template").cloned().unwrap_or(json!({}));
            let pod = pod_from_template(&job, &template, None, &ns);
            match st.create(&prt, &ns, pod, &opts()) {
                Ok(p) => event(
                    st,
                    &job,
                    "Normal",
                    "SuccessfulCreate",
                    &format!("Created pod: {}", meta_str(&p, "name")),
                    "job-controller",
                ),
                Err(e) => {
                    q.retry_jobs.insert(work_key(&ns, &name));
                    event(
                        st,
                        &job,
                        "Warning",
                        "FailedCreate",
                        &format!("Error creating: {}", e.message),
                        "job-controller",
                    )
                }
            }
        }
        if over_backoff {
            for p in &active {
                let pn = meta_str(p, "name").to_string();
                let _ = st.delete(&prt, &ns, &pn, "Background", false);
            }
        }
        let active_n = st
            .dependents_in(&prt, &ns, &uid)
            .iter()
            .filter(|p| !pod_terminal(p) && !deleting(p))
            .count() as i64;
        let ready_n = pods.iter().filter(|p| pod_ready(p)).count() as i64;
        let complete = succeeded >= completions;
        let start = job
            .pointer("/status/startTime")
            .cloned()
            .unwrap_or(json!(util::now()));
        let mut done_event = None;
        st.controller_update(&jrt, &ns, &name, KCM, Some("status"), |o| {
            let Some(s) = o
                .as_object_mut()
                .map(|m| m.entry("status").or_insert(json!({})))
                .and_then(Value::as_object_mut)
            else {
                return;
            };
            s.insert("startTime".into(), start);
            if active_n > 0 && !complete && !over_backoff {
                s.insert("active".into(), json!(active_n));
            } else {
                s.shift_remove("active");
            }
            if succeeded > 0 {
                s.insert("succeeded".into(), json!(succeeded));
            }
            if failed > 0 {
                s.insert("failed".into(), json!(failed));
            }
            s.insert("uncountedTerminatedPods".into(), json!({}));
            s.insert("ready".into(), json!(ready_n));
            if complete {
                s.insert("completionTime".into(), json!(util::now()));
                set_condition(s, json!({"type": "Complete", "status": "True", "lastProbeTime": util::now()}), false);
                done_event = Some(("Normal", "Completed", "Job completed".to_string()));
            } else if over_backoff {
                set_condition(s, json!({"type": "Failed", "status": "True", "lastProbeTime": util::now(), "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}), false);
                done_event = Some(("Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit".to_string()));
            }
        });
        if let Some((t, r, m)) = done_event {
            event(st, &job, t, r, &m, "job-controller");
        }
    }
}

fn outcome_of(pod: &Value, config: &SandboxConfig) -> PodOutcome {
    let ann = pod
        .pointer("/metadata/annotations/sandbox.cairn.dev~1outcome")
        .and_then(Value::as_str);
    let images: Vec<String> = pod
        .pointer("/spec/containers")
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
    let batch = queued(st, &prt, &mut q.pods, Some(&mut q.active_pods));
    for (i, pod) in batch.iter().enumerate() {
        if q.out_of_time(i) {
            Queues::defer(&mut q.pods, &batch[i..], &mut q.deferred);
            break;
        }
        let pod = pod.clone();
        let uid = uid_of(&pod);
        if deleting(&pod) || pod_terminal(&pod) {
            continue;
        }
        let seen = *mem.seen.entry(uid.clone()).or_insert_with(Instant::now);
        let ns = meta_str(&pod, "namespace").to_string();
        let name = meta_str(&pod, "name").to_string();
        let elapsed = seen.elapsed();
        // Looked at again on the next tick unless it has settled (a write requeues it anyway).
        q.active_pods.insert(work_key(&ns, &name));
        if elapsed < config.pod_start_delay {
            continue;
        }
        // The emulated kube-scheduler is `default-scheduler`: a pod that asks for another one
        // stays Pending with no condition at all until that scheduler binds it (a write
        // requeues it).
        let unbound = pod.pointer("/spec/nodeName").is_none();
        if unbound
            && pod
                .pointer("/spec/schedulerName")
                .and_then(Value::as_str)
                .is_some_and(|s| s != "default-scheduler")
        {
            q.active_pods.remove(&work_key(&ns, &name));
            continue;
        }
        if unbound && let Some(why) = crate::volumes::unbound_claims(st, &pod) {
            unschedulable(st, &prt, &ns, &name, &why);
            continue;
        }
        let outcome = outcome_of(&pod, config);
        let restart_policy = pod
            .pointer("/spec/restartPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Always")
            .to_string();
        let is_job = pod
            .pointer("/metadata/ownerReferences/0/kind")
            .and_then(Value::as_str)
            == Some("Job");
        let containers: Vec<(String, String)> = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|c| {
                        (
                            c.get("name")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                            c.get("image")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let started = util::now();
        let pod_ip = format!("10.244.0.{}", 2 + (fnv32a(&uid) % 250));
        match &outcome {
            PodOutcome::Ready => {
                let finish =
                    is_job && restart_policy != "Always" && elapsed >= config.pod_start_delay * 2;
                let already = pod_ready(&pod);
                let may_finish = is_job && restart_policy != "Always";
                if already && !may_finish {
                    q.active_pods.remove(&work_key(&ns, &name));
                }
                if already && !finish {
                    continue;
                }
                for (c, _) in &containers {
                    st.logs
                        .entry((ns.clone(), name.clone(), c.clone()))
                        .or_insert_with(|| vec![format!("sandbox: container {c} started")]);
                }
                let pn = name.clone();
                st.controller_update(&prt, &ns, &name, "kubelet", Some("status"), |o| {
                    if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                        spec.entry("nodeName").or_insert(json!(crate::volumes::NODE));
                    }
                    let Some(s) = o
                        .as_object_mut()
                        .map(|m| m.entry("status").or_insert(json!({})))
                        .and_then(Value::as_object_mut)
                    else {
                        return;
                    };
                    let statuses: Vec<Value> = containers
                        .iter()
                        .map(|(c, image)| {
                            if finish {
                                json!({"name": c, "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": util::now(), "containerID": format!("containerd://{}", util::uid().replace('-', ""))}}, "lastState": {}, "ready": false, "restartCount": 0, "image": image, "imageID": format!("{image}@sha256:sandbox"), "containerID": "containerd://sandbox", "started": false})
                            } else {
                                json!({"name": c, "state": {"running": {"startedAt": started}}, "lastState": {}, "ready": true, "restartCount": 0, "image": image, "imageID": format!("{image}@sha256:sandbox"), "containerID": "containerd://sandbox", "started": true})
                            }
                        })
                        .collect();
                    s.insert("phase".into(), json!(if finish { "Succeeded" } else { "Running" }));
                    let ready = if finish { "False" } else { "True" };
                    for (t, v) in [("Initialized", "True"), ("Ready", ready), ("ContainersReady", ready), ("PodScheduled", "True")] {
                        let mut c = json!({"type": t, "status": v, "lastProbeTime": null});
                        if finish && t != "Initialized" && t != "PodScheduled" {
                            c["reason"] = json!("PodCompleted");
                        }
                        set_condition(s, c, false);
                    }
                    s.insert("hostIP".into(), json!("10.0.0.10"));
                    s.insert("podIP".into(), json!(pod_ip));
                    s.insert("podIPs".into(), json!([{"ip": pod_ip}]));
                    s.entry("startTime").or_insert(json!(started));
                    s.insert("containerStatuses".into(), Value::Array(statuses));
                    let _ = &pn;
                });
            }
            PodOutcome::CrashLoop { exit_code, logs } => {
                for (c, _) in &containers {
                    st.logs
                        .insert((ns.clone(), name.clone(), c.clone()), logs.clone());
                }
                let never = restart_policy == "Never";
                let period = config.pod_start_delay.max(Duration::from_millis(200));
                let due = mem
                    .restarted
                    .get(&uid)
                    .is_none_or(|t| t.elapsed() >= period);
                if !due {
                    continue;
                }
                mem.restarted.insert(uid.clone(), Instant::now());
                let code = *exit_code;
                let uid_c = uid.clone();
                let name_c = name.clone();
                let ns_c = ns.clone();
                st.controller_update(&prt, &ns, &name, "kubelet", Some("status"), |o| {
                    if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                        spec.entry("nodeName").or_insert(json!(crate::volumes::NODE));
                    }
                    let prev: HashMap<String, i64> = o
                        .pointer("/status/containerStatuses")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .map(|c| {
                                    (
                                        c.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                                        c.get("restartCount").and_then(Value::as_i64).unwrap_or(0),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let Some(s) = o
                        .as_object_mut()
                        .map(|m| m.entry("status").or_insert(json!({})))
                        .and_then(Value::as_object_mut)
                    else {
                        return;
                    };
                    let terminated = json!({"exitCode": code, "reason": "Error", "startedAt": started, "finishedAt": util::now(), "containerID": "containerd://sandbox"});
                    let statuses: Vec<Value> = containers
                        .iter()
                        .map(|(c, image)| {
                            let restarts = prev.get(c).map_or(0, |r| r + 1);
                            if never {
                                json!({"name": c, "state": {"terminated": terminated}, "lastState": {}, "ready": false, "restartCount": 0, "image": image, "imageID": format!("{image}@sha256:sandbox"), "containerID": "containerd://sandbox", "started": false})
                            } else {
                                json!({"name": c, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 10s restarting failed container={c} pod={name_c}_{ns_c}({uid_c})")}}, "lastState": {"terminated": terminated}, "ready": false, "restartCount": restarts, "image": image, "imageID": format!("{image}@sha256:sandbox"), "containerID": "containerd://sandbox", "started": false})
                            }
                        })
                        .collect();
                    s.insert("phase".into(), json!(if never { "Failed" } else { "Running" }));
                    set_condition(s, json!({"type": "Initialized", "status": "True", "lastProbeTime": null}), false);
                    for t in ["Ready", "ContainersReady"] {
                        set_condition(s, json!({"type": t, "status": "False", "lastProbeTime": null, "reason": "ContainersNotReady", "message": format!("containers with unready status: [{}]", containers.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>().join(" "))}), false);
                    }
                    set_condition(s, json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null}), false);
                    s.insert("hostIP".into(), json!("10.0.0.10"));
                    s.insert("podIP".into(), json!(pod_ip));
                    s.entry("startTime").or_insert(json!(started));
                    s.insert("containerStatuses".into(), Value::Array(statuses));
                });
                if let Some(p) = st.get(&prt, &ns, &name).cloned() {
                    let c = containers.first().map(|c| c.0.clone()).unwrap_or_default();
                    event(
                        st,
                        &p,
                        "Warning",
                        "BackOff",
                        &format!(
                            "Back-off restarting failed container {c} in pod {name}_{ns}({uid})"
                        ),
                        "kubelet",
                    );
                }
            }
            PodOutcome::ImagePullError => {
                let second = elapsed >= config.pod_start_delay * 2;
                let current = pod
                    .pointer("/status/containerStatuses/0/state/waiting/reason")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let want = if second {
                    "ImagePullBackOff"
                } else {
                    "ErrImagePull"
                };
                if current == want {
                    if second {
                        q.active_pods.remove(&work_key(&ns, &name));
                    }
                    continue;
                }
                st.controller_update(&prt, &ns, &name, "kubelet", Some("status"), |o| {
                    if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                        spec.entry("nodeName").or_insert(json!(crate::volumes::NODE));
                    }
                    let Some(s) = o
                        .as_object_mut()
                        .map(|m| m.entry("status").or_insert(json!({})))
                        .and_then(Value::as_object_mut)
                    else {
                        return;
                    };
                    let statuses: Vec<Value> = containers
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
                    set_condition(s, json!({"type": "Initialized", "status": "True", "lastProbeTime": null}), false);
                    for t in ["Ready", "ContainersReady"] {
                        set_condition(s, json!({"type": t, "status": "False", "lastProbeTime": null, "reason": "ContainersNotReady", "message": format!("containers with unready status: [{}]", containers.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>().join(" "))}), false);
                    }
                    set_condition(s, json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null}), false);
                    s.insert("hostIP".into(), json!("10.0.0.10"));
                    s.entry("startTime").or_insert(json!(started));
                    s.insert("containerStatuses".into(), Value::Array(statuses));
                });
                if let Some(p) = st.get(&prt, &ns, &name).cloned() {
                    let image = containers.first().map(|c| c.1.clone()).unwrap_or_default();
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
        }
    }
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
        let mut total: Option<Quantity> = None;
        for p in &pods {
            for c in p
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let q = c
                    .pointer(&format!("/resources/{kind}/{res}"))
                    .or_else(|| {
                        if kind == "requests" {
                            c.pointer(&format!("/resources/limits/{res}"))
                        } else {
                            None
                        }
                    })
                    .and_then(Value::as_str)
                    .and_then(|s| Quantity::parse(s).ok());
                if let Some(q) = q {
                    total = Some(match total {
                        Some(t) => t + q,
                        None => q,
                    });
                }
            }
        }
        total.map_or_else(|| "0".to_string(), |t| t.canonical())
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
            "requests.storage" => {
                let mut total: Option<Quantity> = None;
                if let Some(t) = rt(st, "", "v1", "persistentvolumeclaims") {
                    for pvc in st.list_arc(&t, ns) {
                        if let Some(q) = pvc
                            .pointer("/spec/resources/requests/storage")
                            .and_then(Value::as_str)
                            .and_then(|s| Quantity::parse(s).ok())
                        {
                            total = Some(match total {
                                Some(t) => t + q,
                                None => q,
                            });
                        }
                    }
                }
                total.map_or_else(|| "0".to_string(), |t| t.canonical())
            }
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
            .pointer("/spec/hard")
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
    if let Some(lrt) = rt(st, "", "v1", "limitranges") {
        for lr in st.list_arc(&lrt, ns) {
            for limit in lr
                .pointer("/spec/limits")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if limit.get("type").and_then(Value::as_str) != Some("Container") {
                    continue;
                }
                for c in pod
                    .pointer_mut("/spec/containers")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    let Some(cm) = c.as_object_mut() else {
                        continue;
                    };
                    let res = cm.entry("resources").or_insert(json!({}));
                    let Some(rm) = res.as_object_mut() else {
                        continue;
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
            }
        }
    }
    let Some(qrt) = rt(st, "", "v1", "resourcequotas") else {
        return Ok(());
    };
    let name = meta_str(pod, "name").to_string();
    for q in st.list_arc(&qrt, ns) {
        let hard = q
            .pointer("/spec/hard")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let used = usage(st, ns, &hard);
        let mut requested = serde_json::Map::new();
        let mut exceeded = Vec::new();
        for (k, limit) in &hard {
            let req = match k.as_str() {
                "pods" | "count/pods" => Some("1".to_string()),
                "requests.cpu" | "cpu" | "requests.memory" | "memory" | "limits.cpu"
                | "limits.memory" => {
                    let (kind, res) = match k.as_str() {
                        "requests.cpu" | "cpu" => ("requests", "cpu"),
                        "requests.memory" | "memory" => ("requests", "memory"),
                        "limits.cpu" => ("limits", "cpu"),
                        _ => ("limits", "memory"),
                    };
                    let mut total: Option<Quantity> = None;
                    for c in pod
                        .pointer("/spec/containers")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(q) = c
                            .pointer(&format!("/resources/{kind}/{res}"))
                            .or_else(|| {
                                if kind == "requests" {
                                    c.pointer(&format!("/resources/limits/{res}"))
                                } else {
                                    None
                                }
                            })
                            .and_then(Value::as_str)
                            .and_then(|s| Quantity::parse(s).ok())
                        {
                            total = Some(match total {
                                Some(t) => t + q,
                                None => q,
                            });
                        }
                    }
                    total.map(|t| t.canonical())
                }
                _ => None,
            };
            let Some(req) = req else { continue };
            requested.insert(k.clone(), json!(req));
            let u = used.get(k).and_then(Value::as_str).unwrap_or("0");
            let (Ok(uq), Ok(rq), Ok(lq)) = (
                Quantity::parse(u),
                Quantity::parse(&req),
                Quantity::parse(limit.as_str().unwrap_or("0")),
            ) else {
                continue;
            };
            if uq + rq > lq {
                exceeded.push((
                    k.clone(),
                    req,
                    u.to_string(),
                    limit.as_str().unwrap_or("").to_string(),
                ));
            }
        }
        if !exceeded.is_empty() {
            let r: Vec<String> = exceeded
                .iter()
                .map(|(k, r, _, _)| format!("{k}={r}"))
                .collect();
            let u: Vec<String> = exceeded
                .iter()
                .map(|(k, _, u, _)| format!("{k}={u}"))
                .collect();
            let l: Vec<String> = exceeded
                .iter()
                .map(|(k, _, _, l)| format!("{k}={l}"))
                .collect();
            return Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "pods \"{name}\" is forbidden: exceeded quota: {}, requested: {}, used: {}, limited: {}",
                    meta_str(&q, "name"),
                    r.join(","),
                    u.join(","),
                    l.join(",")
                ),
            )
            .with_details(json!({"name": name, "kind": "pods"})));
        }
    }
    Ok(())
}
