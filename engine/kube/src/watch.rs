//! What an apply waits on, watched: one watch per kind and namespace (started the first time
//! a step of that kind waits there), holding the latest version of each object, and one watch
//! of the pods of each namespace for explanations. Waiting steps look at these instead of
//! polling the API server. kube-runtime's watcher lists first, then watches from the list's
//! resourceVersion, resumes after a disconnect and lists again after a `410 Gone`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use futures::StreamExt;
use kube::Api;
use kube::api::{ApiResource, ObjectMeta};
use kube::core::DynamicResourceScope;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use serde_json::Value as J;

use crate::Cluster;
use crate::kinds::Kind;

/// An object as the server sent it, parsed once into JSON, with the few fields of its
/// metadata the watcher reads (name, namespace, resourceVersion, uid) beside it. A
/// `DynamicObject` would be parsed through serde's buffering of flattened fields and then
/// serialized back to JSON: three times the work, on every event.
#[derive(Clone, Debug)]
struct Raw {
    meta: ObjectMeta,
    json: J,
}

impl<'de> serde::Deserialize<'de> for Raw {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = J::deserialize(d)?;
        let text = |k: &str| {
            json.get("metadata")
                .and_then(|m| m.get(k))
                .and_then(J::as_str)
                .map(str::to_owned)
        };
        let meta = ObjectMeta {
            name: text("name"),
            namespace: text("namespace"),
            resource_version: text("resourceVersion"),
            uid: text("uid"),
            ..ObjectMeta::default()
        };
        Ok(Raw { meta, json })
    }
}

impl kube::Resource for Raw {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn kind(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

/// The latest version of each object one watch sees.
pub(crate) struct Feed {
    state: Arc<State>,
    task: tokio::task::AbortHandle,
}

/// The objects one watch holds, by name, and the names carrying each label.
#[derive(Default)]
struct Objects {
    by_name: BTreeMap<String, Arc<J>>,
    /// `(key, value)` -> the names of the objects with that label: a selector's lookup costs
    /// its matches, not the namespace's pods.
    by_label: HashMap<(String, String), BTreeSet<String>>,
}

fn labels_of(o: &J) -> impl Iterator<Item = (&String, &str)> {
    o.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(J::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k, v.as_str()?)))
}

impl Objects {
    fn insert(&mut self, name: String, o: Arc<J>) {
        self.remove(&name);
        for (k, v) in labels_of(&o) {
            self.by_label
                .entry((k.clone(), v.to_owned()))
                .or_default()
                .insert(name.clone());
        }
        self.by_name.insert(name, o);
    }

    fn remove(&mut self, name: &str) {
        let Some(old) = self.by_name.remove(name) else {
            return;
        };
        for (k, v) in labels_of(&old) {
            let key = (k.clone(), v.to_owned());
            if let Some(names) = self.by_label.get_mut(&key) {
                names.remove(name);
                if names.is_empty() {
                    self.by_label.remove(&key);
                }
            }
        }
    }

    fn replace(&mut self, all: BTreeMap<String, Arc<J>>) {
        *self = Objects::default();
        for (name, o) in all {
            self.insert(name, o);
        }
    }

    /// The objects carrying every one of `labels`, in name order.
    fn matching(&self, labels: &[(&str, &str)]) -> Vec<Arc<J>> {
        let sets: Option<Vec<&BTreeSet<String>>> = labels
            .iter()
            .map(|(k, v)| self.by_label.get(&((*k).to_owned(), (*v).to_owned())))
            .collect();
        let Some(mut sets) = sets else {
            return Vec::new();
        };
        sets.sort_by_key(|s| s.len());
        let Some((smallest, rest)) = sets.split_first() else {
            return self.by_name.values().cloned().collect();
        };
        smallest
            .iter()
            .filter(|n| rest.iter().all(|s| s.contains(*n)))
            .filter_map(|n| self.by_name.get(n).cloned())
            .collect()
    }
}

/// What the watch task writes and the waiting steps read.
struct State {
    objects: Mutex<Objects>,
    /// Whether the first list is in.
    listed: AtomicBool,
    /// Bumped on every change of one object (and on every list): what a step waiting on that
    /// object listens to, so a change wakes its own waiters, not every waiter of the kind.
    named: Mutex<HashMap<String, tokio::sync::watch::Sender<u64>>>,
}

impl State {
    /// Tells the waiters of `name` that it changed.
    fn changed(&self, name: &str) {
        if let Some(tx) = lock(&self.named).get(name) {
            tx.send_modify(|v| *v += 1);
        }
    }

    /// Tells every waiter that anything may have changed (a new list is in).
    fn relisted(&self) {
        for tx in lock(&self.named).values() {
            tx.send_modify(|v| *v += 1);
        }
    }
}

impl Feed {
    /// The object named `name`, as last seen.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<J>> {
        lock(&self.state.objects).by_name.get(name).cloned()
    }

    /// Whether the watch has listed its objects once (before that, absent means unknown).
    pub(crate) fn listed(&self) -> bool {
        self.state.listed.load(Ordering::SeqCst)
    }

    /// The objects carrying every label of `labels` (an equality selector), in name order.
    pub(crate) fn matching(&self, labels: &[(&str, &str)]) -> Vec<Arc<J>> {
        lock(&self.state.objects).matching(labels)
    }

    /// Waits for the next change, until `deadline`; false when the deadline came first.
    pub(crate) async fn changed(
        &self,
        rx: &mut tokio::sync::watch::Receiver<u64>,
        deadline: Instant,
    ) -> bool {
        let until = tokio::time::Instant::from_std(deadline);
        matches!(
            tokio::time::timeout_at(until, rx.changed()).await,
            Ok(Ok(()))
        )
    }

    /// A receiver of the changes of the object named `name` (and of every new list).
    pub(crate) fn subscribe(&self, name: &str) -> tokio::sync::watch::Receiver<u64> {
        let mut named = lock(&self.state.named);
        match named.get(name) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = tokio::sync::watch::channel(0u64);
                named.insert(name.to_owned(), tx);
                rx
            }
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The watches of one apply.
pub(crate) struct Watches {
    cluster: Cluster,
    selector: String,
    feeds: Mutex<BTreeMap<(String, String), Arc<Feed>>>,
}

impl Watches {
    /// Watches of `cluster` for the objects of environment `env`.
    pub(crate) fn new(cluster: &Cluster, env: &str) -> Arc<Watches> {
        Arc::new(Watches {
            cluster: cluster.clone(),
            selector: crate::observe::selector(env),
            feeds: Mutex::new(BTreeMap::new()),
        })
    }

    /// The environment's objects of `kind` in `namespace` (all namespaces for cluster-wide
    /// kinds).
    pub(crate) fn objects(&self, kind: &Kind, namespace: Option<&str>) -> Arc<Feed> {
        let ns = namespace.filter(|_| kind.namespaced).unwrap_or("");
        let key = format!("{}/{}", kind.api_version, kind.plural);
        self.feed(key, ns, kind, Some(self.selector.clone()))
    }

    /// Every pod of `namespace` (pods carry their template's labels, not the environment's).
    pub(crate) fn pods(&self, namespace: &str) -> Option<Arc<Feed>> {
        let kind = crate::kinds::kind("Pod")?;
        Some(self.feed("v1/pods".to_owned(), namespace, kind, None))
    }

    fn feed(&self, key: String, ns: &str, kind: &Kind, selector: Option<String>) -> Arc<Feed> {
        let mut feeds = lock(&self.feeds);
        if let Some(f) = feeds.get(&(key.clone(), ns.to_owned())) {
            return f.clone();
        }
        let ar = kind.api_resource();
        let api: Api<Raw> = if ns.is_empty() {
            Api::all_with(self.cluster.client.clone(), &ar)
        } else {
            Api::namespaced_with(self.cluster.client.clone(), ns, &ar)
        };
        let state = Arc::new(State {
            objects: Mutex::new(Objects::default()),
            listed: AtomicBool::new(false),
            named: Mutex::new(HashMap::new()),
        });
        let config = match selector {
            Some(s) => watcher::Config::default().labels(&s),
            None => watcher::Config::default(),
        };
        let names = (kind.api_version.to_string(), kind.kind.to_string());
        let task = tokio::spawn(run(api, config, names, state.clone()));
        let feed = Arc::new(Feed {
            state,
            task: task.abort_handle(),
        });
        feeds.insert((key, ns.to_owned()), feed.clone());
        feed
    }
}

/// The watch: a list, then changes, into `state`, until the feed is dropped.
async fn run(
    api: Api<Raw>,
    config: watcher::Config,
    (api_version, kind): (String, String),
    state: Arc<State>,
) {
    // List items come without their type; events carry it.
    let typed = |o: Raw| -> Option<(String, Arc<J>)> {
        let Raw { meta, mut json } = o;
        if let J::Object(m) = &mut json {
            m.entry("apiVersion")
                .or_insert_with(|| J::String(api_version.clone()));
            m.entry("kind").or_insert_with(|| J::String(kind.clone()));
        }
        Some((meta.name?, Arc::new(json)))
    };
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    let mut listing: BTreeMap<String, Arc<J>> = BTreeMap::new();
    while let Some(event) = stream.next().await {
        let Ok(event) = event else { continue };
        match event {
            Event::Init => {
                listing.clear();
                continue;
            }
            Event::InitApply(o) => {
                if let Some((name, v)) = typed(o) {
                    listing.insert(name, v);
                }
                continue;
            }
            Event::InitDone => {
                lock(&state.objects).replace(std::mem::take(&mut listing));
                // `listed()` is true before any waiter wakes to look.
                state.listed.store(true, Ordering::SeqCst);
                state.relisted();
            }
            Event::Apply(o) => {
                if let Some((name, v)) = typed(o) {
                    lock(&state.objects).insert(name.clone(), v);
                    state.changed(&name);
                }
            }
            Event::Delete(o) => {
                if let Some(name) = o.meta.name {
                    lock(&state.objects).remove(&name);
                    state.changed(&name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, labels: J) -> Arc<J> {
        Arc::new(json!({"metadata": {"name": name, "labels": labels}}))
    }

    fn names(v: &[Arc<J>]) -> Vec<&str> {
        v.iter()
            .filter_map(|o| o.pointer("/metadata/name").and_then(J::as_str))
            .collect()
    }

    #[test]
    fn the_label_index_follows_changes_and_deletions() {
        let mut o = Objects::default();
        o.insert("a".into(), pod("a", json!({"app": "web", "tier": "1"})));
        o.insert("b".into(), pod("b", json!({"app": "web", "tier": "2"})));
        o.insert("c".into(), pod("c", json!({"app": "db"})));
        assert_eq!(names(&o.matching(&[("app", "web")])), ["a", "b"]);
        assert_eq!(names(&o.matching(&[("app", "web"), ("tier", "2")])), ["b"]);
        assert_eq!(names(&o.matching(&[("app", "nope")])), Vec::<&str>::new());
        assert_eq!(names(&o.matching(&[])), ["a", "b", "c"]);
        // A relabelled object leaves its old label's set.
        o.insert("b".into(), pod("b", json!({"app": "db"})));
        assert_eq!(names(&o.matching(&[("app", "web")])), ["a"]);
        assert_eq!(names(&o.matching(&[("app", "db")])), ["b", "c"]);
        o.remove("c");
        assert_eq!(names(&o.matching(&[("app", "db")])), ["b"]);
        o.replace(BTreeMap::from([(
            "z".to_owned(),
            pod("z", json!({"app": "db"})),
        )]));
        assert_eq!(names(&o.matching(&[("app", "db")])), ["z"]);
        assert!(!o.by_label.contains_key(&("app".into(), "web".into())));
    }
}
