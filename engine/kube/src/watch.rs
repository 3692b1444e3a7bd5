//! What an apply waits on, watched: one watch per kind and namespace (started the first time
//! a step of that kind waits there), holding the latest version of each object, and one watch
//! of the pods of each namespace for explanations. Waiting steps look at these instead of
//! polling the API server. kube-runtime's watcher lists first, then watches from the list's
//! resourceVersion, resumes after a disconnect and lists again after a `410 Gone`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use futures::StreamExt;
use kube::Api;
use kube::api::DynamicObject;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use serde_json::Value as J;

use crate::Cluster;
use crate::kinds::Kind;

/// The latest version of each object one watch sees.
pub(crate) struct Feed {
    state: Arc<State>,
    task: tokio::task::AbortHandle,
}

/// What the watch task writes and the waiting steps read.
struct State {
    objects: Mutex<BTreeMap<String, Arc<J>>>,
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
        lock(&self.state.objects).get(name).cloned()
    }

    /// Whether the watch has listed its objects once (before that, absent means unknown).
    pub(crate) fn listed(&self) -> bool {
        self.state.listed.load(Ordering::SeqCst)
    }

    /// Every object, as last seen.
    pub(crate) fn all(&self) -> Vec<Arc<J>> {
        lock(&self.state.objects).values().cloned().collect()
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
        let api: Api<DynamicObject> = if ns.is_empty() {
            Api::all_with(self.cluster.client.clone(), &ar)
        } else {
            Api::namespaced_with(self.cluster.client.clone(), ns, &ar)
        };
        let state = Arc::new(State {
            objects: Mutex::new(BTreeMap::new()),
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
    api: Api<DynamicObject>,
    config: watcher::Config,
    (api_version, kind): (String, String),
    state: Arc<State>,
) {
    let typed = |o: DynamicObject| -> Option<(String, Arc<J>)> {
        let mut v = serde_json::to_value(&o).ok()?;
        if let J::Object(m) = &mut v {
            m.insert("apiVersion".into(), J::String(api_version.clone()));
            m.insert("kind".into(), J::String(kind.clone()));
        }
        Some((o.metadata.name.clone()?, Arc::new(v)))
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
                *lock(&state.objects) = std::mem::take(&mut listing);
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
                if let Some(name) = o.metadata.name {
                    lock(&state.objects).remove(&name);
                    state.changed(&name);
                }
            }
        }
    }
}
