//! cairn's executor.
//!
//! Every provider turns its part of a plan into [`Node`]s: a resource id, the ids it depends
//! on, and a future that performs the step and waits until it is ready. [`execute`] runs them
//! as a dependency graph: a node starts when all its dependencies are done, up to
//! `concurrency` at a time; a failure is reported with its explanation and stops only the
//! nodes that depend on it (they are reported as skipped). Providers never print: progress goes
//! to an [`Event`] callback.

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    Failed,
}

/// Runs the nodes as a dependency graph, `concurrency` at a time.
pub async fn execute(nodes: Vec<Node>, concurrency: usize, emit: Emit) -> Report {
    let mut report = Report::default();
    let in_graph: BTreeSet<ResourceId> = nodes.iter().map(|n| n.id.clone()).collect();
    let mut state: BTreeMap<ResourceId, Outcome> = BTreeMap::new();
    let mut pending: Vec<Node> = nodes;
    let mut running: JoinSet<(ResourceId, Action, Instant, Result<(), Failure>)> = JoinSet::new();
    loop {
        let mut i = 0;
        while i < pending.len() {
            let deps: Vec<&ResourceId> = pending[i]
                .depends_on
                .iter()
                .filter(|d| in_graph.contains(*d) && **d != pending[i].id)
                .collect();
            if let Some(failed) = deps
                .iter()
                .find(|d| state.get(**d) == Some(&Outcome::Failed))
            {
                let failed = (*failed).clone();
                let node = pending.remove(i);
                emit(Event::Skipped {
                    id: node.id.clone(),
                    because: failed,
                });
                report.skipped.push(node.id.clone());
                state.insert(node.id, Outcome::Failed);
                continue;
            }
            let ready = deps.iter().all(|d| state.get(*d) == Some(&Outcome::Done));
            if ready && running.len() < concurrency.max(1) {
                let node = pending.remove(i);
                emit(Event::Started {
                    id: node.id.clone(),
                    action: node.action,
                });
                let work = (node.work)(emit.clone());
                let (id, action) = (node.id, node.action);
                running.spawn(async move {
                    let start = Instant::now();
                    let result = work.await;
                    (id, action, start, result)
                });
                continue;
            }
            i += 1;
        }
        let Some(joined) = running.join_next().await else {
            for node in pending.drain(..) {
                let waits_for = node
                    .depends_on
                    .iter()
                    .find(|d| in_graph.contains(*d) && !state.contains_key(*d))
                    .cloned();
                let message = match waits_for {
                    Some(d) => format!(
                        "never started: it waits for {d}, which waits for it (a dependency cycle)"
                    ),
                    None => "never started; this is a bug".to_owned(),
                };
                report.failed.push((node.id.clone(), Failure::new(message)));
                state.insert(node.id, Outcome::Failed);
            }
            return report;
        };
        match joined {
            Ok((id, action, start, Ok(()))) => {
                emit(Event::Done {
                    id: id.clone(),
                    action,
                    elapsed_ms: start.elapsed().as_millis(),
                });
                report.done.push((id.clone(), action));
                state.insert(id, Outcome::Done);
            }
            Ok((id, _, _, Err(failure))) => {
                emit(Event::Failed {
                    id: id.clone(),
                    failure: failure.clone(),
                });
                report.failed.push((id.clone(), failure));
                state.insert(id, Outcome::Failed);
            }
            Err(e) => {
                let failure = Failure::new(format!("a step panicked: {e}; this is a bug"));
                report
                    .failed
                    .push((ResourceId::kube("Unknown", None, "task"), failure));
            }
        }
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
