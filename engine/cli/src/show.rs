//! Human output of plans and apply progress.

use std::fmt::Write as _;

use cairn_engine::{Event, Failure};
use cairn_model::{Provider, ResourceId};
use cairn_plan::plan::{Action, PathAction, Plan, shown_value};

/// The plan as people read it: one line per resource that changes, field-level detail for
/// updates, then the summary line.
pub fn plan(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan for environment {} on {}",
        plan.environment, plan.target
    );
    for note in &plan.notes {
        let _ = writeln!(out, "  {note}");
    }
    let _ = writeln!(out);
    for c in &plan.changes {
        if c.action == Action::NoOp {
            continue;
        }
        match &c.declared_at {
            Some(at) => {
                let _ = writeln!(out, "  {} {}  (declared at {at})", c.action.symbol(), c.id);
            }
            None => {
                let _ = writeln!(out, "  {} {}", c.action.symbol(), c.id);
            }
        }
        for f in &c.fields {
            let _ = writeln!(
                out,
                "      {}: {} → {}",
                f.path,
                shown_value(&f.before),
                shown_value(&f.after)
            );
        }
        if let Some(reason) = &c.reason {
            let _ = writeln!(out, "      ({reason})");
        }
        if let Some(help) = &c.help {
            let _ = writeln!(out, "      help: {help}");
        }
    }
    if !plan.unsupported.is_empty() {
        let _ = writeln!(
            out,
            "\n  Not planned yet (no provider for them in this version):"
        );
        let mut counts: std::collections::BTreeMap<(Provider, &str), usize> =
            std::collections::BTreeMap::new();
        for id in &plan.unsupported {
            *counts.entry((id.provider, id.kind.as_str())).or_default() += 1;
        }
        for ((_, kind), n) in counts {
            let _ = writeln!(out, "    {n} × {kind}");
        }
    }
    network(&mut out, plan);
    let s = plan.summary();
    if s.refused > 0 {
        let _ = writeln!(
            out,
            "\nRefused: the server refuses {} change(s) that cairn will not make by deleting and creating again (✗ above); nothing is applied until the script changes.",
            s.refused
        );
    }
    if plan.has_changes() {
        out.push('\n');
    }
    out.push_str(&plan.summary_line());
    out.push('\n');
    out
}

/// The Network section: each connection that opens (`+`) or closes (`-`); one that enters or
/// leaves another environment's namespace is flagged.
fn network(out: &mut String, plan: &Plan) {
    if plan.network.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n  Network (who can reach whom):");
    for c in &plan.network {
        let sign = match c.action {
            PathAction::Open => "+",
            PathAction::Close => "-",
        };
        let end = |p: &str| p.replace("/any-pod", "/*");
        let _ = write!(
            out,
            "    {sign} {} -> {} {}",
            end(&c.from),
            end(&c.to),
            c.ports
        );
        if let Some(ns) = &c.crosses {
            let verb = match c.action {
                PathAction::Open => "OPENS",
                PathAction::Close => "closes",
            };
            let _ = write!(
                out,
                "   ‼ {verb} a path to or from `{ns}`, another environment's namespace"
            );
        }
        out.push('\n');
    }
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Replace => "replaced",
        Action::Adopt => "adopted",
        Action::Delete => "deleted",
        Action::NoOp | Action::Keep => "unchanged",
        Action::Refuse => "refused",
    }
}

/// The failure of a step, with its details and log tail.
pub fn failure(id: &ResourceId, f: &Failure) -> String {
    let mut out = format!("  ✗ {id} failed: {}\n", f.message);
    for d in &f.details {
        let _ = writeln!(out, "      {d}");
    }
    if let Some((source, lines)) = &f.logs {
        let _ = writeln!(out, "      last {} log lines of {source}:", lines.len());
        for l in lines {
            let _ = writeln!(out, "      | {l}");
        }
    }
    out
}

/// One line (or block) per apply event.
pub fn event(e: &Event) -> String {
    match e {
        Event::Started { id, action } => format!("  {} {id} …\n", action.symbol()),
        Event::Waiting { id, what } => format!("    {id}: waiting for {what}\n"),
        Event::Done {
            id,
            action,
            elapsed_ms,
        } => format!(
            "  ✓ {id} {} ({:.1}s)\n",
            verb(*action),
            *elapsed_ms as f64 / 1000.0
        ),
        Event::Failed { id, failure: f } => failure(id, f),
        Event::Skipped { id, because } => format!("  - {id} not started: {because} failed\n"),
        Event::Accepted { .. } => String::new(),
    }
}
