//! The HTML report of a plan (`plan --format html`, `plan --report FILE`): one self-contained
//! static page — no script, no network, no external resource — built from the same [`Plan`]
//! the JSON document and the Markdown comment are. The summary by action and provider, every
//! change with its field-level diff (`<details>`: collapsible without JavaScript), refusals
//! and warnings with their script lines, the dependency graph with the changed resources
//! highlighted, and the plan's inputs. Readable on a phone and in dark mode.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use cairn_model::{DesiredState, Diagnostic, Provider, Resource, ResourceId, Severity, Span};
use cairn_plan::plan::{Action, Change, Plan, REDACTED, shown_value};
use cairn_stdlib::Evaluation;
use sha2::Digest as _;

use crate::plan::LivePlan;

/// What a plan was made from, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// cairn's version.
    pub version: String,
    /// The script, as its path was given.
    pub script: String,
    /// SHA-256 of the script's text; `None` when the script holds a sensitive literal.
    pub script_digest: Option<String>,
    /// The plugins the script loaded, by name, and the SHA-256 of each one's text (`None` when
    /// the script holds a sensitive literal).
    pub plugins: BTreeMap<String, Option<String>>,
    /// The desired state's digest (the one saved plans compare, `saved::desired_digest`).
    pub desired_digest: String,
    /// Where it was planned (a kubeconfig context, or `sandbox`).
    pub target: String,
    /// The cluster's identity (its kube-system namespace's uid).
    pub cluster: String,
}

/// Everything the report shows.
pub struct PlanReport<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// The desired state it was planned from (declarations, the graph).
    pub state: &'a DesiredState,
    /// The evaluation's and checks' diagnostics (warnings, with their script lines).
    pub diagnostics: &'a [Diagnostic],
    /// What it was made from.
    pub inputs: Inputs,
}

fn sha256(text: &str) -> String {
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether the script wrote a secret into itself: its text is then not even digested.
fn holds_sensitive_literal(state: &DesiredState) -> bool {
    use crate::history::has_sensitive_literal as literal;
    state.resources.iter().any(|r| literal(&r.body))
        || state.environment.providers.values().any(literal)
}

/// The inputs of a plan of `eval` (the script at `script`) made as `live`.
pub fn inputs(eval: &Evaluation, script: &Path, live: &LivePlan) -> Inputs {
    let name = script.display().to_string();
    let mut sources = eval.sources.all();
    let text = sources.remove(&name);
    let secret = holds_sensitive_literal(&eval.state);
    Inputs {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        script: name,
        script_digest: text.filter(|_| !secret).map(|t| sha256(&t)),
        plugins: sources
            .into_iter()
            .map(|(k, v)| (k, (!secret).then(|| sha256(&v))))
            .collect(),
        desired_digest: crate::saved::desired_digest(&eval.state),
        target: live.plan.target.clone(),
        cluster: live.cluster_identity().to_owned(),
    }
}

/// The report of a plan just made from `eval`: its diagnostics are the checks' again.
pub fn of_plan(eval: &Evaluation, script: &Path, live: &LivePlan) -> String {
    let diagnostics = crate::input::check_diagnostics(eval);
    html(&PlanReport {
        plan: &live.plan,
        state: &eval.state,
        diagnostics: &diagnostics,
        inputs: inputs(eval, script, live),
    })
}

/// Writes a report to `path`.
pub fn write(path: &Path, html: &str) -> crate::Result<()> {
    std::fs::write(path, html).map_err(|e| crate::Error::file("write", path, e))
}

/// Text escaped for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The stylesheet: light and dark, narrow and wide; long values wrap, tables scroll in their
/// own box.
const STYLE: &str = include_str!("report.css");

/// The whole page.
pub fn html(r: &PlanReport<'_>) -> String {
    let p = r.plan;
    let mut out = String::new();
    let title = format!("cairn plan: {} on {}", p.environment, p.target);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <a class=\"skip\" href=\"#changes\">Skip to the changes</a>\n",
        esc(&title)
    );
    header(&mut out, p);
    out.push_str("<main>\n");
    summary(&mut out, p);
    attention(&mut out, r);
    changes(&mut out, r);
    graph(&mut out, r);
    isolation(&mut out, r.state);
    inputs_section(&mut out, &r.inputs);
    let _ = write!(
        out,
        "</main>\n<footer><p>Written by cairn {}. This page is self-contained: it loads nothing and runs no script.</p></footer>\n</body>\n</html>\n",
        esc(&r.inputs.version)
    );
    out
}

fn header(out: &mut String, p: &Plan) {
    let refused = p.refusals().count();
    let (state, then) = if refused > 0 {
        let then = format!(
            " {refused} change(s) refused: nothing of this plan can be applied until the script changes."
        );
        ("refused", then)
    } else if p.protected_deletions().next().is_some() {
        let then = " It deletes data the script allows to delete.".to_owned();
        ("deletes-data", then)
    } else if p.has_changes() {
        ("changes", String::new())
    } else {
        ("no-changes", String::new())
    };
    let _ = write!(
        out,
        "<header>\n<h1>cairn plan: <code>{}</code> on <code>{}</code></h1>\n\
         <p class=\"verdict {state}\">{}{}</p>\n<nav aria-label=\"Sections\"><ul>\
         <li><a href=\"#summary\">Summary</a></li><li><a href=\"#attention\">Needs attention</a></li>\
         <li><a href=\"#changes\">Changes</a></li><li><a href=\"#graph\">Graph</a></li>\
         <li><a href=\"#isolation\">Isolation</a></li><li><a href=\"#inputs\">Inputs</a></li>\
         </ul></nav>\n</header>\n",
        esc(&p.environment),
        esc(&p.target),
        esc(&p.summary_line()),
        esc(&then)
    );
}

/// Every action, in the order the summary shows them.
const ACTIONS: [Action; 8] = [
    Action::Create,
    Action::Update,
    Action::Replace,
    Action::Adopt,
    Action::Delete,
    Action::Keep,
    Action::Refuse,
    Action::NoOp,
];

/// The action's name, as the JSON document spells it.
pub fn action_name(a: Action) -> &'static str {
    match a {
        Action::NoOp => "no-op",
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Adopt => "adopt",
        Action::Delete => "delete",
        Action::Keep => "keep",
        Action::Refuse => "refuse",
    }
}

fn provider_name(p: Provider) -> &'static str {
    match p {
        Provider::Kube => "Kubernetes",
        Provider::Dns => "DNS",
        Provider::Acme => "certificates",
        Provider::S3 => "buckets",
        Provider::Alerts => "alerts",
        Provider::Smoke => "smoke checks",
    }
}

/// Counts per action (columns) and provider (rows); only actions that occur get a column.
fn summary(out: &mut String, p: &Plan) {
    let mut counts: BTreeMap<Provider, BTreeMap<Action, usize>> = BTreeMap::new();
    for c in &p.changes {
        *counts
            .entry(c.id.provider)
            .or_default()
            .entry(c.action)
            .or_default() += 1;
    }
    let shown: Vec<Action> = ACTIONS
        .into_iter()
        .filter(|a| counts.values().any(|m| m.contains_key(a)))
        .collect();
    out.push_str("<section id=\"summary\" aria-labelledby=\"summary-h\">\n<h2 id=\"summary-h\">Summary</h2>\n");
    if shown.is_empty() {
        out.push_str("<p>The script declares nothing, and nothing of it exists.</p>\n</section>\n");
        return;
    }
    out.push_str("<div class=\"scroll\"><table class=\"counts\">\n<thead><tr><th scope=\"col\">provider</th>");
    for a in &shown {
        let _ = write!(
            out,
            "<th scope=\"col\" class=\"a-{0}\">{0}</th>",
            action_name(*a)
        );
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (provider, row) in &counts {
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th>",
            provider_name(*provider)
        );
        for a in &shown {
            let n = row.get(a).copied().unwrap_or(0);
            let _ = write!(out, "<td>{n}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n<tfoot><tr><th scope=\"row\">total</th>");
    for a in &shown {
        let n: usize = counts.values().filter_map(|m| m.get(a)).sum();
        let _ = write!(out, "<td>{n}</td>");
    }
    out.push_str("</tr></tfoot>\n</table></div>\n</section>\n");
}

fn at(span: &Span) -> String {
    format!("{}:{}:{}", span.file, span.line, span.col)
}

/// Refusals, data that would be lost, warnings with their script lines, the plan's notes and
/// what no provider handles.
fn attention(out: &mut String, r: &PlanReport<'_>) {
    let p = r.plan;
    out.push_str("<section id=\"attention\" aria-labelledby=\"attention-h\">\n<h2 id=\"attention-h\">Needs attention</h2>\n");
    let mut items = Vec::new();
    for c in p.refusals() {
        let mut text = format!(
            "<strong>refused</strong> <a href=\"#{}\"><code>{}</code></a>",
            change_anchor(p, c),
            esc(&c.id.to_string())
        );
        if let Some(reason) = &c.reason {
            let _ = write!(text, ": {}", esc(reason));
        }
        if let Some(where_) = &c.declared_at {
            let _ = write!(text, " <span class=\"at\">at {}</span>", esc(where_));
        }
        if let Some(help) = &c.help {
            let _ = write!(text, "<br><span class=\"help\">help: {}</span>", esc(help));
        }
        items.push(("refusal", text));
    }
    for c in p.protected_deletions() {
        let text = format!(
            "<strong>deletes data</strong> <a href=\"#{}\"><code>{}</code></a>: the script allows it; the data it holds is lost",
            change_anchor(p, c),
            esc(&c.id.to_string())
        );
        items.push(("data", text));
    }
    items.extend(r.diagnostics.iter().map(|d| (severity(d), diagnostic(d))));
    items.extend(
        p.notes
            .iter()
            .map(|n| ("note", format!("<strong>note</strong> {}", esc(n)))),
    );
    for id in &p.unsupported {
        let text = format!(
            "<strong>note</strong> <code>{}</code>: no provider plans it yet",
            esc(&id.to_string())
        );
        items.push(("note", text));
    }
    if items.is_empty() {
        out.push_str("<p>Nothing: no refusal, no warning, no note.</p>\n");
    } else {
        out.push_str("<ul class=\"attention\">\n");
        for (class, text) in items {
            let _ = writeln!(out, "<li class=\"{class}\">{text}</li>");
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
}

fn severity(d: &Diagnostic) -> &'static str {
    match d.severity {
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}

fn diagnostic(d: &Diagnostic) -> String {
    let mut text = format!(
        "<strong>{}</strong> [<code>{}</code>] {}",
        severity(d),
        esc(&d.code.to_string()),
        esc(&d.message)
    );
    if let Some(span) = &d.span {
        let _ = write!(text, " <span class=\"at\">at {}</span>", esc(&at(span)));
    }
    if let Some(label) = &d.label {
        let _ = write!(text, " ({})", esc(label));
    }
    if let Some(help) = &d.help {
        let _ = write!(text, "<br><span class=\"help\">help: {}</span>", esc(help));
    }
    text
}

/// The element id of a change: its position in the plan, stable for one plan.
fn change_anchor(p: &Plan, c: &Change) -> String {
    let i = p
        .changes
        .iter()
        .position(|x| std::ptr::eq(x, c))
        .unwrap_or_default();
    format!("change-{}", i + 1)
}

/// Every change but the no-ops, each a `<details>` with its fields; then the unchanged ones,
/// listed in one.
fn changes(out: &mut String, r: &PlanReport<'_>) {
    let p = r.plan;
    let declared: BTreeMap<&ResourceId, &Resource> =
        r.state.resources.iter().map(|x| (&x.id, x)).collect();
    out.push_str("<section id=\"changes\" aria-labelledby=\"changes-h\">\n<h2 id=\"changes-h\">Changes</h2>\n");
    let changed: Vec<&Change> = p
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .collect();
    if changed.is_empty() {
        out.push_str("<p>No changes.</p>\n");
    }
    for c in changed {
        change(out, p, c, declared.get(&c.id).copied());
    }
    let unchanged: Vec<&Change> = p
        .changes
        .iter()
        .filter(|c| c.action == Action::NoOp)
        .collect();
    if !unchanged.is_empty() {
        let _ = writeln!(
            out,
            "<details class=\"unchanged\"><summary>{} unchanged resources</summary>\n<ul>",
            unchanged.len()
        );
        for c in unchanged {
            let _ = writeln!(
                out,
                "<li id=\"{}\" data-resource=\"{}\"><code>{}</code></li>",
                change_anchor(p, c),
                esc(&c.id.to_string()),
                esc(&c.id.to_string())
            );
        }
        out.push_str("</ul></details>\n");
    }
    out.push_str("</section>\n");
}

fn change(out: &mut String, p: &Plan, c: &Change, declared: Option<&Resource>) {
    let name = action_name(c.action);
    let id = c.id.to_string();
    // Changes with something to read are open; creations and deletions fold.
    let open = if c.fields.is_empty() && c.action != Action::Refuse {
        ""
    } else {
        " open"
    };
    let _ = writeln!(
        out,
        "<details class=\"change a-{name}\" id=\"{}\" data-resource=\"{}\" data-action=\"{name}\"{open}>\n\
         <summary><span class=\"sym\" aria-hidden=\"true\">{}</span> <code class=\"id\">{}</code> <span class=\"badge\">{name}</span></summary>",
        change_anchor(p, c),
        esc(&id),
        esc(c.action.symbol()),
        esc(&id)
    );
    out.push_str("<div class=\"body\">\n");
    if let Some(reason) = &c.reason {
        let _ = writeln!(out, "<p class=\"reason\">{}</p>", esc(reason));
    }
    if let Some(help) = &c.help {
        let _ = writeln!(out, "<p class=\"help\">help: {}</p>", esc(help));
    }
    if c.holds_data {
        out.push_str("<p class=\"data\">It holds data.</p>\n");
    }
    if !c.fields.is_empty() {
        fields(out, c);
    }
    let span = declared.and_then(|d| d.span.as_ref());
    match (&c.declared_at, span) {
        (Some(w), _) => {
            let _ = writeln!(out, "<p class=\"at\">declared at {}</p>", esc(w));
        }
        (None, Some(s)) => {
            let _ = writeln!(out, "<p class=\"at\">declared at {}</p>", esc(&at(s)));
        }
        (None, None) => {}
    }
    if let Some(d) = declared.filter(|d| !d.depends_on.is_empty()) {
        let after: Vec<String> = d
            .depends_on
            .iter()
            .map(|x| format!("<code>{}</code>", esc(&x.to_string())))
            .collect();
        let _ = writeln!(out, "<p class=\"deps\">after {}</p>", after.join(", "));
    }
    out.push_str("</div>\n</details>\n");
}

/// The field-level diff: path, live value, planned value.
fn fields(out: &mut String, c: &Change) {
    out.push_str(
        "<div class=\"scroll\"><table class=\"fields\">\n<thead><tr><th scope=\"col\">field</th>\
         <th scope=\"col\">now</th><th scope=\"col\">planned</th></tr></thead>\n<tbody>\n",
    );
    for f in &c.fields {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td class=\"before\" data-label=\"now\">{}</td><td class=\"after\" data-label=\"planned\">{}</td></tr>",
            esc(&f.path),
            value(&f.before),
            value(&f.after)
        );
    }
    out.push_str("</tbody>\n</table></div>\n");
}

/// A value cell: the plan's short form; a long value in full, folded.
fn value(v: &Option<serde_json::Value>) -> String {
    let short = shown_value(v);
    let redacted = matches!(v, Some(serde_json::Value::String(s)) if s == REDACTED);
    match v {
        Some(j) if !redacted && short.ends_with('…') => {
            let full = match j {
                serde_json::Value::String(s) => s.clone(),
                other => serde_json::to_string_pretty(other).unwrap_or_default(),
            };
            format!(
                "<details class=\"long\"><summary><code>{}</code></summary><pre>{}</pre></details>",
                esc(&short),
                esc(&full)
            )
        }
        _ if redacted => format!("<span class=\"redacted\">{}</span>", esc(&short)),
        _ => format!("<code>{}</code>", esc(&short)),
    }
}

/// The class of a changed resource's box in the graph.
fn mark(a: Action) -> &'static str {
    match a {
        Action::Create => "mark-create",
        Action::Update => "mark-update",
        Action::Replace => "mark-replace",
        Action::Adopt => "mark-adopt",
        Action::Delete => "mark-delete",
        Action::Refuse => "mark-refuse",
        Action::NoOp | Action::Keep => "",
    }
}

/// The dependency graph, the changed resources highlighted by their action.
fn graph(out: &mut String, r: &PlanReport<'_>) {
    let declared: BTreeSet<&ResourceId> = r.state.resources.iter().map(|x| &x.id).collect();
    let changed =
        r.plan.changes.iter().filter(|c| {
            !matches!(c.action, Action::NoOp | Action::Keep) && declared.contains(&c.id)
        });
    let marked: BTreeMap<ResourceId, &str> =
        changed.map(|c| (c.id.clone(), mark(c.action))).collect();
    out.push_str("<section id=\"graph\" aria-labelledby=\"graph-h\">\n<h2 id=\"graph-h\">Dependency graph</h2>\n");
    if r.state.resources.is_empty() {
        out.push_str("<p>The script declares no resource.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<p>The order apply follows: a resource waits for the ones left of it. Boxes with a thick \
         outline change in this plan.</p>\n",
    );
    let legend: BTreeSet<&str> = marked.values().copied().collect();
    if !legend.is_empty() {
        out.push_str("<ul class=\"legend\">");
        for class in legend {
            let name = class.trim_start_matches("mark-");
            let _ = write!(out, "<li class=\"{class}\">{name}</li>");
        }
        out.push_str("</ul>\n");
    }
    let title = format!("cairn: {}", r.state.environment.name);
    let svg = crate::graph::svg_marked(&crate::graph::Graph::of(r.state), &title, &marked);
    let _ = write!(
        out,
        "<div class=\"scroll graph-box\" role=\"img\" aria-label=\"dependency graph of {} resources\">\n{svg}</div>\n</section>\n",
        r.state.resources.len()
    );
}

/// The isolation matrix: who can reach whom under the environment's network policies (rows
/// connect to columns; a cell says which ports), and the denied namespaces, both ways.
fn isolation(out: &mut String, state: &cairn_model::DesiredState) {
    out.push_str(
        "<section id=\"isolation\" aria-labelledby=\"isolation-h\">\n<h2 id=\"isolation-h\">Isolation matrix</h2>\n",
    );
    let Some(iso) = cairn_plan::isolation::analyze(state) else {
        out.push_str("<p>The environment has no namespace: nothing to isolate.</p>\n</section>\n");
        return;
    };
    for line in cairn_plan::isolation::denied_lines(&iso) {
        let _ = writeln!(out, "<p class=\"denied\">{}</p>", esc(&line));
    }
    let peers = iso.reach.peers();
    out.push_str(
        "<p>Rows connect to columns: ✓ some ports are open (hover for which), · none.</p>\n<div class=\"scroll\"><table class=\"counts matrix\">\n<thead><tr><th scope=\"col\">from \\ to</th>",
    );
    for i in 1..=peers.len() {
        let _ = write!(out, "<th scope=\"col\">{i}</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (i, from) in peers.iter().enumerate() {
        let _ = write!(out, "<tr><th scope=\"row\">{} {}</th>", i + 1, esc(from));
        for to in peers {
            match iso.reach.pair(from, to) {
                Some(pair) if !pair.allowed.is_empty() => {
                    let _ = write!(
                        out,
                        "<td title=\"{} → {}: {}\">✓</td>",
                        esc(from),
                        esc(to),
                        esc(&pair.allowed.to_string())
                    );
                }
                _ => out.push_str("<td>·</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n</section>\n");
}

fn inputs_section(out: &mut String, i: &Inputs) {
    out.push_str("<section id=\"inputs\" aria-labelledby=\"inputs-h\">\n<h2 id=\"inputs-h\">Inputs</h2>\n<dl class=\"inputs\">\n");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(out, "<dt>{k}</dt><dd>{v}</dd>");
    };
    row("cairn version", format!("<code>{}</code>", esc(&i.version)));
    row("script", format!("<code>{}</code>", esc(&i.script)));
    row(
        "script SHA-256",
        match &i.script_digest {
            Some(d) => format!("<code>{}</code>", esc(d)),
            None => "not shown: the script holds a sensitive literal".to_owned(),
        },
    );
    for (name, digest) in &i.plugins {
        let shown = digest.as_deref().unwrap_or("not shown");
        row(
            "plugin",
            format!("<code>{}</code> <code>{}</code>", esc(name), esc(shown)),
        );
    }
    row(
        "desired state digest",
        format!("<code>{}</code>", esc(&i.desired_digest)),
    );
    row("target", format!("<code>{}</code>", esc(&i.target)));
    row("cluster", format!("<code>{}</code>", esc(&i.cluster)));
    out.push_str("</dl>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_plan::diff::FieldChange;

    fn change(action: Action, fields: Vec<FieldChange>) -> Change {
        Change {
            id: ResourceId::kube("ConfigMap", Some("shop"), "a<b>"),
            action,
            fields,
            reason: Some("because \"x\" & <y>".to_owned()),
            help: None,
            server_message: None,
            declared_at: None,
            holds_data: false,
        }
    }

    fn page(changes: Vec<Change>) -> String {
        let plan = Plan {
            environment: "shop".to_owned(),
            target: "sandbox".to_owned(),
            changes,
            unsupported: Vec::new(),
            notes: vec!["a <note>".to_owned()],
            network: Vec::new(),
        };
        let inputs = Inputs {
            version: "0.0.0".to_owned(),
            script: "shop.rhai".to_owned(),
            script_digest: None,
            plugins: BTreeMap::new(),
            desired_digest: "d".to_owned(),
            target: "sandbox".to_owned(),
            cluster: "uid".to_owned(),
        };
        html(&PlanReport {
            plan: &plan,
            state: &DesiredState::default(),
            diagnostics: &[],
            inputs,
        })
    }

    #[test]
    fn every_text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let html = page(vec![change(Action::Delete, Vec::new())]);
        assert!(
            html.contains("data-resource=\"ConfigMap/shop/a&lt;b&gt;\""),
            "{html}"
        );
        assert!(
            html.contains("because &quot;x&quot; &amp; &lt;y&gt;"),
            "{html}"
        );
        assert!(html.contains("a &lt;note&gt;"), "{html}");
        assert!(!html.contains("<b>") && !html.contains("<y>"), "{html}");
        assert!(html.contains("not shown: the script holds a sensitive literal"));
    }

    #[test]
    fn redacted_values_stay_redacted_and_long_ones_fold() {
        let long = "x".repeat(300);
        let fields = vec![
            FieldChange {
                path: "data.PASSWORD".to_owned(),
                before: Some(serde_json::json!(REDACTED)),
                after: Some(serde_json::json!(REDACTED)),
            },
            FieldChange {
                path: "data.SCRIPT".to_owned(),
                before: None,
                after: Some(serde_json::json!(long)),
            },
        ];
        let html = page(vec![change(Action::Update, fields)]);
        assert_eq!(
            html.matches("<span class=\"redacted\">(sensitive)</span>")
                .count(),
            2
        );
        assert!(html.contains("<code>(none)</code>"), "{html}");
        assert!(html.contains(&format!("<pre>{long}</pre>")), "{html}");
        assert!(html.contains("<details class=\"long\">"), "{html}");
        // An update with fields is open; the isolation section is a hook without data.
        assert!(html.contains("data-action=\"update\" open>"), "{html}");
        assert!(html.contains("<section id=\"isolation\""), "{html}");
    }
}
