//! `apply`: every provider's nodes as one graph, run by the executor; then the cluster's
//! inventory and the sandbox twins' state are written.

use std::time::Duration;

use cairn_apply::provider::StepOptions;
use cairn_apply::{Emit, Node, Report};
use cairn_model::ResourceId;
use cairn_plan::plan::{Action, Plan};

use crate::error::{Error, Result};
use crate::plan::LivePlan;
use crate::target::Target;

/// How to apply.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// How long one step may take to become ready.
    pub timeout: Duration,
    /// How many requests to the cluster may be in flight at once.
    pub parallelism: usize,
}

/// An apply about to run: its nodes.
pub struct Run {
    nodes: Vec<Node>,
    concurrency: usize,
}

/// Why nothing may be applied: the plan holds refusals (`n` of them), if any.
pub fn refusals(plan: &Plan) -> Option<usize> {
    let n = plan.refusals().count();
    (n > 0).then_some(n)
}

/// Prepares the apply of `plan`: every provider's nodes. A plan with a refusal has none (the
/// Kubernetes provider gives none either, whoever asks).
pub fn prepare(target: &Target, plan: &LivePlan, options: &ApplyOptions) -> Run {
    if refusals(&plan.plan).is_some() {
        return Run {
            nodes: Vec::new(),
            concurrency: options.parallelism,
        };
    }
    let kube = cairn_kube::ApplyOptions {
        timeout: options.timeout,
        concurrency: options.parallelism,
    };
    target.cluster.set_requests_in_flight(kube.concurrency);
    let mut nodes = cairn_kube::nodes(&target.cluster, &plan.kube, &kube);
    let steps = StepOptions {
        timeout: options.timeout,
    };
    for part in &plan.parts {
        nodes.extend(part.nodes(&steps));
    }
    Run {
        nodes,
        concurrency: kube.concurrency,
    }
}

impl Run {
    /// The steps people see: every node but the silent barriers.
    pub fn steps(&self) -> Vec<(ResourceId, Action)> {
        self.nodes
            .iter()
            .filter(|n| n.action != Action::NoOp)
            .map(|n| (n.id.clone(), n.action))
            .collect()
    }

    /// Runs the graph; progress goes to `emit`.
    pub async fn execute(self, emit: Emit) -> Report {
        cairn_apply::execute(self.nodes, self.concurrency, emit).await
    }
}

/// After the graph ran (or when nothing changed): writes the environment's inventory.
pub async fn conclude(target: &Target, plan: &LivePlan, report: &Report) {
    cairn_kube::finish(&target.cluster, &plan.kube, report).await;
}

/// After the graph ran: keeps the sandbox twins' state (their zone, their buckets).
pub fn save_twins(plan: &LivePlan) -> Result<()> {
    for part in &plan.parts {
        let Some(twin) = part.twin_state().map_err(Error::Provider)? else {
            continue;
        };
        cairn_sandbox::files::write_private(&twin.file, twin.contents.as_bytes())
            .map_err(|e| Error::file("write", &twin.file, e))?;
    }
    Ok(())
}

/// The apply's summary line: `N added, N changed, N replaced, N destroyed`.
pub fn summary(plan: &Plan) -> String {
    let s = plan.summary();
    format!(
        "{} added, {} changed, {} replaced, {} destroyed",
        s.create, s.update, s.replace, s.delete
    )
}
