//! cairn's executor.
//!
//! Every provider turns its part of a plan into [`Node`]s: a resource id, the ids it depends
//! on, and a future that performs the step and waits until it is ready. [`execute`] runs them
//! as a dependency graph: a node starts when all its dependencies are done, up to
//! `concurrency` at a time; a failure is reported with its explanation and stops only the
//! nodes that depend on it (they are reported as skipped). Providers never print: progress goes
//! to an [`Event`] callback.

pub mod provider;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use cairn_model::ResourceId;
use cairn_plan::plan::Action;
use futures::future::BoxFuture;
use serde::Serialize;
use tokio::task::JoinSet;

/// Why a step failed, for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// One line: what went wrong.
    pub message: String,
    /// Details: one line per pod, condition, record…
    pub details: Vec<String>,
    /// The last log lines of a failing container: (pod/container, lines).
    pub logs: Option<(String, Vec<String>)>,
}

impl Failure {
    /// A failure with a message and nothing else.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            details: Vec::new(),
            logs: None,
        }
    }
}

/// Progress of an apply, as it happens.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A step started.
    Started { id: ResourceId, action: Action },
    /// A step is done with its change and waits for readiness.
    Waiting { id: ResourceId, what: String },
    /// A step's write was accepted and it now only waits, with nothing to show (a deletion
    /// waiting for the watch to see the object gone): it gives its slot back like
    /// [`Event::Waiting`], and the executor keeps the event to itself.
    Accepted { id: ResourceId },
    /// A step finished.
    Done {
        id: ResourceId,
        action: Action,
        elapsed_ms: u128,
    },
    /// A step failed.
    Failed { id: ResourceId, failure: Failure },
    /// A step did not run because a dependency failed.
    Skipped { id: ResourceId, because: ResourceId },
}

/// Where events go.
pub type Emit = Arc<dyn Fn(Event) + Send + Sync>;

/// The work of one step.
pub type Work = Box<dyn FnOnce(Emit) -> BoxFuture<'static, Result<(), Failure>> + Send>;

/// One step of the graph.
pub struct Node {
    /// The resource the step is about.
    pub id: ResourceId,
    /// What happens to it.
    pub action: Action,
    /// Steps that must be done first (ids not in the graph are ignored).
    pub depends_on: Vec<ResourceId>,
    /// The step itself.
    pub work: Work,
}

/// The outcome of an execution.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Steps that succeeded.
    pub done: Vec<(ResourceId, Action)>,
    /// Steps that failed, with why.
    pub failed: Vec<(ResourceId, Failure)>,
    /// Steps not run because a dependency failed.
    pub skipped: Vec<ResourceId>,
}

impl Report {
    /// Whether everything succeeded.
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty()
    }
}

/// A node that only orders others (its action is [`Action::NoOp`]): it runs without events and
/// is not reported. Providers use one where many nodes wait for many others (every deletion
/// after every change), so the graph stays linear in size.
pub fn barrier(id: ResourceId, depends_on: Vec<ResourceId>) -> Node {
    Node {
        id,
        action: Action::NoOp,
        depends_on,
        work: Box::new(|_| Box::pin(async { Ok(()) })),
    }
}

/// The graph, indexed: for each node its id and action, its work until it starts, how many
/// dependencies are not done yet, and which nodes wait for it. Building and walking it costs
/// the number of nodes and edges.
struct Graph {
    ids: Vec<ResourceId>,
    actions: Vec<Action>,
    work: Vec<Option<Work>>,
    /// Settled: done, failed or skipped.
    settled: Vec<bool>,
    waiting_on: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    /// A dependency of each node, for the cycle message.
    first_dep: Vec<Option<usize>>,
}

impl Graph {
    fn new(nodes: Vec<Node>) -> Graph {
        let index: BTreeMap<ResourceId, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.clone(), i))
            .collect();
        let n = nodes.len();
        let mut g = Graph {
            ids: Vec::with_capacity(n),
            actions: Vec::with_capacity(n),
            work: Vec::with_capacity(n),
            settled: vec![false; n],
            waiting_on: vec![0; n],
            dependents: vec![Vec::new(); n],
            first_dep: vec![None; n],
        };
        for (i, node) in nodes.into_iter().enumerate() {
            let deps: BTreeSet<usize> = node
                .depends_on
                .iter()
                .filter_map(|d| index.get(d).copied())
                .filter(|d| *d != i)
                .collect();
            g.waiting_on[i] = deps.len();
            g.first_dep[i] = deps.first().copied();
            for d in deps {
                g.dependents[d].push(i);
            }
            g.ids.push(node.id);
            g.actions.push(node.action);
            g.work.push(Some(node.work));
        }
        g
    }

    /// Whether node `i` is only a barrier (no events, not reported).
    fn silent(&self, i: usize) -> bool {
        self.actions[i] == Action::NoOp
    }
}

/// Runs the nodes as a dependency graph, `concurrency` at a time. Among the nodes that may
/// start, the one given first starts first. A node that says it is only waiting (an
/// [`Event::Waiting`]: it has written and waits for readiness) gives its slot back, so writes
/// never queue behind rollouts.
pub async fn execute(nodes: Vec<Node>, concurrency: usize, emit: Emit) -> Report {
    let mut report = Report::default();
    let mut g = Graph::new(nodes);
    let mut ready: BTreeSet<usize> = (0..g.ids.len()).filter(|i| g.waiting_on[*i] == 0).collect();
    let mut running: JoinSet<(usize, Instant, Result<(), Failure>)> = JoinSet::new();
    // Which node each task runs, to name the one that panicked.
    let mut tasks: std::collections::HashMap<tokio::task::Id, (usize, Instant)> =
        std::collections::HashMap::new();
    let (wait_tx, mut wait_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let mut waiting: BTreeSet<usize> = BTreeSet::new();
    loop {
        while running.len().saturating_sub(waiting.len()) < concurrency.max(1) {
            let Some(i) = ready.pop_first() else { break };
            let Some(work) = g.work[i].take() else {
                continue;
            };
            if !g.silent(i) {
                emit(Event::Started {
                    id: g.ids[i].clone(),
                    action: g.actions[i],
                });
            }
            let work = work(noting_waits(&emit, i, &wait_tx));
            let start = Instant::now();
            let task = running.spawn(async move { (i, start, work.await) });
            tasks.insert(task.id(), (i, start));
        }
        let joined = tokio::select! {
            joined = running.join_next_with_id() => joined,
            Some(i) = wait_rx.recv() => {
                if !g.settled[i] {
                    waiting.insert(i);
                }
                continue;
            }
        };
        let Some(joined) = joined else {
            never_started(&mut g, &mut report);
            return report;
        };
        let (i, start, result) = match joined {
            Ok((id, done)) => {
                tasks.remove(&id);
                done
            }
            Err(e) => {
                let Some((i, start)) = tasks.remove(&e.id()) else {
                    continue;
                };
                (i, start, Err(panicked(e)))
            }
        };
        waiting.remove(&i);
        finish(&mut g, &mut ready, &mut report, &emit, i, start, result);
    }
}

/// A step that panicked, as a failure of that step: the panic's message, and that it is a bug.
fn panicked(e: tokio::task::JoinError) -> Failure {
    let message = match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned()),
        Err(e) => e.to_string(),
    };
    Failure::new(format!(
        "the step panicked ({message}); this is a bug in cairn"
    ))
}

/// The emitter a node's work gets: events go on, a `Waiting` also frees the node's slot, and
/// an `Accepted` only frees it.
fn noting_waits(emit: &Emit, i: usize, tx: &tokio::sync::mpsc::UnboundedSender<usize>) -> Emit {
    let (emit, tx) = (emit.clone(), tx.clone());
    Arc::new(move |e: Event| match e {
        Event::Accepted { .. } => {
            let _ = tx.send(i);
        }
        Event::Waiting { .. } => {
            let _ = tx.send(i);
            emit(e);
        }
        _ => emit(e),
    })
}

/// A node has finished: reported, and what waited for it may start (or is skipped).
fn finish(
    g: &mut Graph,
    ready: &mut BTreeSet<usize>,
    report: &mut Report,
    emit: &Emit,
    i: usize,
    start: Instant,
    result: Result<(), Failure>,
) {
    g.settled[i] = true;
    let (id, action) = (g.ids[i].clone(), g.actions[i]);
    match result {
        Ok(()) => {
            if !g.silent(i) {
                emit(Event::Done {
                    id: id.clone(),
                    action,
                    elapsed_ms: start.elapsed().as_millis(),
                });
                report.done.push((id, action));
            }
            for d in std::mem::take(&mut g.dependents[i]) {
                g.waiting_on[d] -= 1;
                if g.waiting_on[d] == 0 && !g.settled[d] {
                    ready.insert(d);
                }
            }
        }
        Err(failure) => {
            emit(Event::Failed {
                id: id.clone(),
                failure: failure.clone(),
            });
            report.failed.push((id, failure));
            skip_dependents(g, i, emit, report);
        }
    }
}

/// Every node that waits, directly or not, on the failed node `i`: skipped, naming the
/// dependency that failed or was skipped (a barrier passes its cause on).
fn skip_dependents(g: &mut Graph, i: usize, emit: &Emit, report: &mut Report) {
    let mut queue = vec![(i, g.ids[i].clone())];
    while let Some((n, because)) = queue.pop() {
        for d in std::mem::take(&mut g.dependents[n]) {
            if g.settled[d] {
                continue;
            }
            g.settled[d] = true;
            g.work[d] = None;
            let cause = if g.silent(d) {
                because.clone()
            } else {
                emit(Event::Skipped {
                    id: g.ids[d].clone(),
                    because: because.clone(),
                });
                report.skipped.push(g.ids[d].clone());
                g.ids[d].clone()
            };
            queue.push((d, cause));
        }
    }
}

/// Nodes left when nothing runs any more wait on each other: a dependency cycle.
fn never_started(g: &mut Graph, report: &mut Report) {
    for i in 0..g.ids.len() {
        if g.settled[i] || g.silent(i) {
            continue;
        }
        g.settled[i] = true;
        let message = match g.first_dep[i] {
            Some(d) => format!(
                "never started: it waits for {}, which waits for it (a dependency cycle)",
                g.ids[d]
            ),
            None => "never started; this is a bug".to_owned(),
        };
        report
            .failed
            .push((g.ids[i].clone(), Failure::new(message)));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn id(name: &str) -> ResourceId {
        ResourceId::kube("ConfigMap", Some("t"), name)
    }

    fn node(name: &str, deps: &[&str], fail: bool, log: Arc<Mutex<Vec<String>>>) -> Node {
        let n = name.to_owned();
        Node {
            id: id(name),
            action: Action::Create,
            depends_on: deps.iter().map(|d| id(d)).collect(),
            work: Box::new(move |_| {
                Box::pin(async move {
                    log.lock().unwrap().push(n.clone());
                    if fail {
                        Err(Failure::new(format!("{n} broke")))
                    } else {
                        Ok(())
                    }
                })
            }),
        }
    }

    #[tokio::test]
    async fn dependencies_run_first_and_failures_stop_only_dependents() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let nodes = vec![
            node("c", &["b"], false, log.clone()),
            node("b", &["a"], true, log.clone()),
            node("a", &[], false, log.clone()),
            node("d", &["a"], false, log.clone()),
        ];
        let report = execute(nodes, 4, Arc::new(|_| {})).await;
        let order = log.lock().unwrap().clone();
        assert_eq!(order[0], "a");
        assert!(!order.contains(&"c".to_owned()));
        assert_eq!(report.skipped, vec![id("c")]);
        assert_eq!(report.failed.len(), 1);
        assert!(report.done.iter().any(|(i, _)| *i == id("d")));
    }

    #[tokio::test]
    async fn a_step_that_only_waits_gives_its_slot_back() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let waiter = {
            let log = log.clone();
            Node {
                id: id("rollout"),
                action: Action::Create,
                depends_on: vec![],
                work: Box::new(move |emit: Emit| {
                    Box::pin(async move {
                        emit(Event::Waiting {
                            id: id("rollout"),
                            what: "rollout".into(),
                        });
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                        log.lock().unwrap().push("rollout done".to_owned());
                        Ok(())
                    })
                }),
            }
        };
        let nodes = vec![
            waiter,
            node("config", &[], false, log.clone()),
            node("after", &["rollout"], false, log.clone()),
        ];
        let report = execute(nodes, 1, Arc::new(|_| {})).await;
        assert!(report.ok());
        // With one slot, the write of `config` did not queue behind the rollout's wait, and
        // what depends on the rollout started only once it was done.
        assert_eq!(
            *log.lock().unwrap(),
            vec![
                "config".to_owned(),
                "rollout done".to_owned(),
                "after".to_owned()
            ]
        );
    }

    #[tokio::test]
    async fn an_accepted_step_gives_its_slot_back_and_shows_nothing() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let deletion = {
            let log = log.clone();
            Node {
                id: id("gone"),
                action: Action::Delete,
                depends_on: vec![],
                work: Box::new(move |emit: Emit| {
                    Box::pin(async move {
                        emit(Event::Accepted { id: id("gone") });
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                        log.lock().unwrap().push("gone".to_owned());
                        Ok(())
                    })
                }),
            }
        };
        let nodes = vec![
            deletion,
            node("config", &[], false, log.clone()),
            node("after", &["gone"], false, log.clone()),
        ];
        let seen = Arc::new(Mutex::new(Vec::new()));
        let events = seen.clone();
        let report = execute(nodes, 1, Arc::new(move |e| events.lock().unwrap().push(e))).await;
        assert!(report.ok());
        // What depends on the deletion started only once it was done.
        assert_eq!(
            *log.lock().unwrap(),
            vec!["config".to_owned(), "gone".to_owned(), "after".to_owned()]
        );
        assert!(
            !seen
                .lock()
                .unwrap()
                .iter()
                .any(|e| matches!(e, Event::Accepted { .. })),
            "the executor keeps Accepted to itself"
        );
    }

    #[tokio::test]
    async fn a_step_that_panics_is_named_and_its_dependents_skipped() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let broken = Node {
            id: id("broken"),
            action: Action::Create,
            depends_on: vec![],
            work: Box::new(move |emit: Emit| {
                Box::pin(async move {
                    // It had given its slot back before it panicked.
                    emit(Event::Waiting {
                        id: id("broken"),
                        what: "rollout".into(),
                    });
                    tokio::task::yield_now().await;
                    panic!("boom");
                })
            }),
        };
        let nodes = vec![
            broken,
            node("after", &["broken"], false, log.clone()),
            node("other", &[], false, log.clone()),
        ];
        let report = execute(nodes, 1, Arc::new(|_| {})).await;
        assert_eq!(report.failed.len(), 1, "{report:?}");
        let (failed, failure) = &report.failed[0];
        assert_eq!(*failed, id("broken"));
        assert_eq!(
            failure.message,
            "the step panicked (boom); this is a bug in cairn"
        );
        assert_eq!(report.skipped, vec![id("after")]);
        assert_eq!(*log.lock().unwrap(), vec!["other".to_owned()]);
    }

    #[tokio::test]
    async fn a_cycle_is_reported_not_hung() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let nodes = vec![
            node("a", &["b"], false, log.clone()),
            node("b", &["a"], false, log),
        ];
        let report = execute(nodes, 2, Arc::new(|_| {})).await;
        assert_eq!(report.failed.len(), 2);
        assert!(report.failed[0].1.message.contains("cycle"));
    }
}
