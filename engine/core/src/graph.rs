//! The dependency graph of an environment — the order `apply` follows — as
//! Graphviz dot, Mermaid, or an SVG drawn here (no Graphviz needed).
//!
//! The SVG layout is layered: a resource's column is the length of the longest chain of
//! dependencies under it, so every edge goes left to right.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use cairn_model::{DesiredState, Provider, ResourceId};

/// How `cairn graph` draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Graphviz dot.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
    /// A standalone SVG image.
    Svg,
}

/// The graph of `state` drawn in `format`.
pub fn draw(state: &DesiredState, format: Format) -> String {
    let g = Graph::of(state);
    let title = format!("cairn: {}", state.environment.name);
    match format {
        Format::Dot => dot(&g, &title),
        Format::Mermaid => mermaid(&g),
        Format::Svg => svg(&g, &title),
    }
}

/// The graph: resources and, per resource, what it waits for (edges to undeclared resources
/// are dropped, as the executor ignores them).
pub struct Graph {
    nodes: Vec<ResourceId>,
    deps: BTreeMap<usize, Vec<usize>>,
}

impl Graph {
    /// The graph of a desired state.
    pub fn of(state: &DesiredState) -> Self {
        let nodes: Vec<ResourceId> = state.resources.iter().map(|r| r.id.clone()).collect();
        let index: BTreeMap<&ResourceId, usize> =
            nodes.iter().enumerate().map(|(i, id)| (id, i)).collect();
        let mut deps = BTreeMap::new();
        for (i, r) in state.resources.iter().enumerate() {
            let mut d: Vec<usize> = r
                .depends_on
                .iter()
                .filter_map(|id| index.get(id).copied())
                .filter(|j| *j != i)
                .collect();
            d.sort_unstable();
            d.dedup();
            deps.insert(i, d);
        }
        Self { nodes, deps }
    }

    fn edges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.deps
            .iter()
            .flat_map(|(to, from)| from.iter().map(move |f| (*f, *to)))
    }

    /// Column of each node: the longest chain of dependencies below it (cycles, which the
    /// planner rejects, are cut).
    fn layers(&self) -> Vec<usize> {
        fn depth(
            g: &Graph,
            i: usize,
            memo: &mut BTreeMap<usize, usize>,
            visiting: &mut BTreeSet<usize>,
        ) -> usize {
            if let Some(d) = memo.get(&i) {
                return *d;
            }
            if !visiting.insert(i) {
                return 0;
            }
            let d = g
                .deps
                .get(&i)
                .into_iter()
                .flatten()
                .map(|j| depth(g, *j, memo, visiting) + 1)
                .max()
                .unwrap_or(0);
            visiting.remove(&i);
            memo.insert(i, d);
            d
        }
        let mut memo = BTreeMap::new();
        let mut visiting = BTreeSet::new();
        (0..self.nodes.len())
            .map(|i| depth(self, i, &mut memo, &mut visiting))
            .collect()
    }
}

fn label(id: &ResourceId) -> String {
    format!("{}/{}", id.kind, id.name)
}

fn color(p: Provider) -> (&'static str, &'static str) {
    match p {
        Provider::Kube => ("#e8f0fe", "#3367d6"),
        Provider::Dns => ("#e6f4ea", "#188038"),
        Provider::Acme => ("#fef7e0", "#b06000"),
        Provider::S3 => ("#fce8e6", "#c5221f"),
        Provider::Alerts => ("#f3e8fd", "#8430ce"),
        Provider::Smoke => ("#e0f7fa", "#00838f"),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Graphviz dot.
pub fn dot(g: &Graph, title: &str) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"monospace\", fontsize=10];\n",
        title.replace('"', "'")
    );
    for (i, id) in g.nodes.iter().enumerate() {
        let (fill, stroke) = color(id.provider);
        let _ = writeln!(
            out,
            "  n{i} [label=\"{}\", tooltip=\"{}\", fillcolor=\"{fill}\", color=\"{stroke}\"];",
            label(id).replace('"', "'"),
            id.to_string().replace('"', "'")
        );
    }
    for (from, to) in g.edges() {
        let _ = writeln!(out, "  n{from} -> n{to};");
    }
    out.push_str("}\n");
    out
}

/// A Mermaid flowchart.
pub fn mermaid(g: &Graph) -> String {
    let mut out = String::from("flowchart LR\n");
    for (i, id) in g.nodes.iter().enumerate() {
        let _ = writeln!(
            out,
            "  n{i}[\"{}\"]:::{}",
            label(id).replace('"', "#quot;"),
            id.provider.as_str()
        );
    }
    for (from, to) in g.edges() {
        let _ = writeln!(out, "  n{from} --> n{to}");
    }
    for p in [
        Provider::Kube,
        Provider::Dns,
        Provider::Acme,
        Provider::S3,
        Provider::Alerts,
        Provider::Smoke,
    ] {
        let (fill, stroke) = color(p);
        let _ = writeln!(out, "  classDef {} fill:{fill},stroke:{stroke}", p.as_str());
    }
    out
}

const CHAR_W: f64 = 7.0;
const BOX_H: f64 = 26.0;
const ROW_GAP: f64 = 12.0;
const COL_GAP: f64 = 60.0;
const MARGIN: f64 = 20.0;

/// A standalone SVG: columns of boxes by dependency depth, curved edges with arrowheads.
pub fn svg(g: &Graph, title: &str) -> String {
    svg_marked(g, title, &BTreeMap::new())
}

/// [`svg`], with the boxes of `marked` resources in a group of the given class (the HTML
/// report's stylesheet highlights what a plan changes).
pub fn svg_marked(g: &Graph, title: &str, marked: &BTreeMap<ResourceId, &str>) -> String {
    let layers = g.layers();
    let columns = layers.iter().copied().max().map_or(0, |m| m + 1);
    let mut col_nodes: Vec<Vec<usize>> = vec![Vec::new(); columns];
    for (i, l) in layers.iter().enumerate() {
        col_nodes[*l].push(i);
    }
    let widths: Vec<f64> = col_nodes
        .iter()
        .map(|c| {
            c.iter()
                .map(|i| label(&g.nodes[*i]).chars().count() as f64 * CHAR_W + 16.0)
                .fold(80.0, f64::max)
        })
        .collect();
    let mut x = MARGIN;
    let mut pos: BTreeMap<usize, (f64, f64, f64)> = BTreeMap::new();
    let title_h = 30.0;
    let mut height: f64 = 0.0;
    for (c, nodes) in col_nodes.iter().enumerate() {
        for (row, i) in nodes.iter().enumerate() {
            let y = MARGIN + title_h + row as f64 * (BOX_H + ROW_GAP);
            pos.insert(*i, (x, y, widths[c]));
            height = height.max(y + BOX_H);
        }
        x += widths[c] + COL_GAP;
    }
    let width = (x - COL_GAP + MARGIN).max(200.0);
    let height = height + MARGIN;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"monospace\" font-size=\"12\">\n"
    );
    out.push_str(
        "  <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#5f6368\"/></marker></defs>\n",
    );
    let _ = writeln!(
        out,
        "  <text x=\"{MARGIN}\" y=\"{:.0}\" font-size=\"14\" font-weight=\"bold\">{}</text>",
        MARGIN + 4.0,
        escape(title)
    );
    for (from, to) in g.edges() {
        let (Some(&(fx, fy, fw)), Some(&(tx, ty, _))) = (pos.get(&from), pos.get(&to)) else {
            continue;
        };
        let (x1, y1) = (fx + fw, fy + BOX_H / 2.0);
        let (x2, y2) = (tx, ty + BOX_H / 2.0);
        let mid = (x1 + x2) / 2.0;
        let _ = writeln!(
            out,
            "  <path d=\"M {x1:.1} {y1:.1} C {mid:.1} {y1:.1}, {mid:.1} {y2:.1}, {x2:.1} {y2:.1}\" fill=\"none\" stroke=\"#9aa0a6\" stroke-width=\"1.2\" marker-end=\"url(#arrow)\"/>"
        );
    }
    for (i, id) in g.nodes.iter().enumerate() {
        let Some(&(x, y, w)) = pos.get(&i) else {
            continue;
        };
        let (fill, stroke) = color(id.provider);
        let class = marked
            .get(id)
            .map(|c| format!(" class=\"{}\"", escape(c)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  <g{class}><title>{}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{BOX_H}\" rx=\"5\" fill=\"{fill}\" stroke=\"{stroke}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            escape(&id.to_string()),
            x + 8.0,
            y + BOX_H / 2.0 + 4.0,
            escape(&label(id))
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Who reaches whom (`cairn check --network`): the isolation matrix as text, or `None` when
/// the environment has no namespace.
pub fn network_text(state: &DesiredState) -> Option<String> {
    cairn_plan::isolation::analyze(state).map(|iso| cairn_plan::isolation::matrix_text(&iso))
}

/// The open connections of an environment (`cairn graph --network`): an edge from each peer
/// to each other one it can reach, labelled with the ports; a denied namespace's pod in red.
pub fn draw_network(state: &DesiredState, format: Format) -> Option<String> {
    let iso = cairn_plan::isolation::analyze(state)?;
    let peers = iso.reach.peers();
    let own = format!("{}/", iso.namespace);
    let edges: Vec<(usize, usize, String)> = iso
        .reach
        .pairs()
        .enumerate()
        .filter(|(_, (from, to, pair))| {
            let ours = from.starts_with(&own) || to.starts_with(&own);
            ours && from != to && !pair.allowed.is_empty()
        })
        .map(|(i, (_, _, pair))| (i / peers.len(), i % peers.len(), pair.allowed.to_string()))
        .collect();
    let denied = |p: &str| iso.denied.iter().any(|d| p.starts_with(&format!("{d}/")));
    let title = format!("cairn: {} (network)", state.environment.name);
    Some(match format {
        Format::Dot => {
            let mut out = format!(
                "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"monospace\", fontsize=10];\n",
                title.replace('"', "'")
            );
            for (i, p) in peers.iter().enumerate() {
                let (fill, stroke) = network_color(denied(p));
                let _ = writeln!(
                    out,
                    "  n{i} [label=\"{}\", fillcolor=\"{fill}\", color=\"{stroke}\"];",
                    p.replace('"', "'")
                );
            }
            for (f, t, ports) in &edges {
                let _ = writeln!(out, "  n{f} -> n{t} [label=\"{ports}\", fontsize=9];");
            }
            out.push_str("}\n");
            out
        }
        Format::Mermaid => {
            let mut out = String::from("flowchart LR\n");
            for (i, p) in peers.iter().enumerate() {
                let _ = writeln!(out, "  n{i}[\"{}\"]", p.replace('"', "#quot;"));
            }
            for (f, t, ports) in &edges {
                let _ = writeln!(out, "  n{f} -->|\"{ports}\"| n{t}");
            }
            out
        }
        Format::Svg => network_svg(peers, &edges, &title, &denied),
    })
}

fn network_color(denied: bool) -> (&'static str, &'static str) {
    if denied {
        ("#fce8e6", "#c5221f")
    } else {
        color(Provider::Kube)
    }
}

/// Sources on the left, destinations on the right, one curve per open pair (its ports in the
/// curve's tooltip).
fn network_svg(
    peers: &[String],
    edges: &[(usize, usize, String)],
    title: &str,
    denied: &dyn Fn(&str) -> bool,
) -> String {
    let w = peers
        .iter()
        .map(|p| p.chars().count() as f64 * CHAR_W + 16.0)
        .fold(80.0, f64::max);
    let gap = COL_GAP * 4.0;
    let top = MARGIN + 30.0;
    let y = |i: usize| top + i as f64 * (BOX_H + ROW_GAP);
    let width = MARGIN * 2.0 + w * 2.0 + gap;
    let height = y(peers.len()) + MARGIN;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"monospace\" font-size=\"12\">\n"
    );
    out.push_str(
        "  <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#5f6368\"/></marker></defs>\n",
    );
    let _ = writeln!(
        out,
        "  <text x=\"{MARGIN}\" y=\"{:.0}\" font-size=\"14\" font-weight=\"bold\">{}</text>",
        MARGIN + 4.0,
        escape(title)
    );
    let (x1, x2) = (MARGIN + w, MARGIN + w + gap);
    for (f, t, ports) in edges {
        let (y1, y2) = (y(*f) + BOX_H / 2.0, y(*t) + BOX_H / 2.0);
        let mid = (x1 + x2) / 2.0;
        let _ = writeln!(
            out,
            "  <path d=\"M {x1:.1} {y1:.1} C {mid:.1} {y1:.1}, {mid:.1} {y2:.1}, {x2:.1} {y2:.1}\" fill=\"none\" stroke=\"#9aa0a6\" stroke-width=\"1.2\" marker-end=\"url(#arrow)\"><title>{} -&gt; {}: {}</title></path>",
            escape(&peers[*f]),
            escape(&peers[*t]),
            escape(ports)
        );
    }
    for (i, p) in peers.iter().enumerate() {
        let (fill, stroke) = network_color(denied(p));
        for x in [MARGIN, x2] {
            let _ = writeln!(
                out,
                "  <g><title>{name}</title><rect x=\"{x:.1}\" y=\"{top:.1}\" width=\"{w:.1}\" height=\"{BOX_H}\" rx=\"5\" fill=\"{fill}\" stroke=\"{stroke}\"/><text x=\"{tx:.1}\" y=\"{ty:.1}\">{name}</text></g>",
                name = escape(p),
                top = y(i),
                tx = x + 8.0,
                ty = y(i) + BOX_H / 2.0 + 4.0,
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_model::{Resource, Value};

    fn resource(id: ResourceId, deps: &[&ResourceId]) -> Resource {
        Resource {
            id,
            body: Value::object(),
            depends_on: deps.iter().map(|d| (*d).clone()).collect(),
            protected: false,
            span: None,
            field_spans: BTreeMap::new(),
        }
    }

    #[test]
    fn columns_follow_the_longest_dependency_chain() {
        let ns = ResourceId::kube("Namespace", None, "s");
        let secret = ResourceId::kube("Secret", Some("s"), "db");
        let db = ResourceId::kube("StatefulSet", Some("s"), "db");
        let app = ResourceId::kube("Deployment", Some("s"), "app");
        let state = DesiredState {
            resources: vec![
                resource(ns.clone(), &[]),
                resource(secret.clone(), &[&ns]),
                resource(db.clone(), &[&ns, &secret]),
                resource(app.clone(), &[&ns, &db, &secret]),
            ],
            ..DesiredState::default()
        };
        let g = Graph::of(&state);
        assert_eq!(g.layers(), vec![0, 1, 2, 3]);
        let svg = svg(&g, "t");
        // Four boxes, six edges, each edge ending in an arrow.
        assert_eq!(svg.matches("<rect").count(), 4);
        assert_eq!(svg.matches("marker-end").count(), 6);
        let dot = dot(&g, "t");
        assert!(
            dot.contains("n0 -> n1;") && dot.contains("n2 -> n3;"),
            "{dot}"
        );
        let m = mermaid(&g);
        assert!(m.contains("n1 --> n3"), "{m}");
    }
}
