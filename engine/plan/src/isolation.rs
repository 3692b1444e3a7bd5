//! Isolation proven at plan time: the reachability analysis ([`crate::reach`]) of a desired
//! state's NetworkPolicies, with the peers outside it that matter (kube-dns, the ingress
//! controller, a pod in each namespace the environment must not talk to), held to what the
//! script implies ([`cairn_model::NetworkIntent`]): every implied connection open
//! (`path-blocked` otherwise, at the line that implied it, naming both ends and the policies that
//! block it), every connection to or from a denied namespace closed (`isolation-breach`).

use std::fmt::Write as _;

use cairn_model::{Code, DesiredState, Diagnostic, OutsidePath, Path, Resource};

use crate::reach::{
    self, Inputs, Labels, Namespace, Pair, Peer, Protocol, ReachError, Reachability, Verdict,
};

/// The name of the stand-in pod of a denied namespace.
const DENIED_POD: &str = "any-pod";

/// The matrix's stand-in for every public address: a name outside the cluster resolves to
/// one, unknown until then, so a connection to it is proven open only when this one is (an
/// address no cluster CIDR holds, as `0.0.0.0/0` minus the cluster's ranges opens it).
const INTERNET: (&str, &str) = ("internet", "1.1.1.1");

/// Who reaches whom in an environment, and what it was held to.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// The matrix: the environment's workloads, then kube-dns, the ingress controller, the
    /// internet and a pod in each denied namespace.
    pub reach: Reachability,
    /// The environment's namespace.
    pub namespace: String,
    /// The namespaces the environment must not reach.
    pub denied: Vec<String>,
    /// The implied connections, each with its verdict.
    pub paths: Vec<(Path, Verdict)>,
    /// The connections to addresses outside the cluster, each with its verdict (a name's
    /// is the internet's).
    pub outside: Vec<(OutsidePath, Verdict)>,
    /// Policies and workloads that could not be analyzed.
    pub errors: Vec<ReachError>,
}

fn denied_pod(ns: &str, env: &str) -> Peer {
    // It claims to be one of the environment's pods: only its namespace may keep it out.
    let labels = Labels::from([("cairn.dev/environment".to_owned(), env.to_owned())]);
    Peer::workload(ns, DENIED_POD, "Pod", labels).with_port(Some("http"), 80, Protocol::Tcp)
}

/// The analysis of a desired state, or `None` when it has no namespace.
pub fn analyze(state: &DesiredState) -> Option<Isolation> {
    let namespace = state.environment.namespace.clone()?;
    let intent = &state.network;
    let (inputs, errors) = Inputs::from_state(state);
    let (ingress_ns, ingress_name) = &intent.ingress;
    let mut outside = vec![reach::kube_dns()];
    if !ingress_ns.is_empty() {
        outside.push(reach::ingress_controller(ingress_ns, ingress_name));
    }
    outside.extend(reach::external(INTERNET.0, INTERNET.1));
    for o in &intent.outside {
        let known = |p: &Peer| p.name == o.host;
        if let Some(address) = &o.address
            && !outside.iter().any(known)
        {
            outside.extend(reach::external(&o.host, address));
        }
    }
    let env = &state.environment.name;
    outside.extend(intent.deny_namespaces.iter().map(|ns| denied_pod(ns, env)));
    let namespaces: Vec<Namespace> = intent
        .deny_namespaces
        .iter()
        .map(|ns| Namespace::new(ns, Labels::new()))
        .collect();
    let reach = inputs.with_outside(namespaces, outside).analyze();
    let paths = intent
        .paths
        .iter()
        .filter_map(|p| {
            let protocol = Protocol::parse(&p.protocol)?;
            let pair = reach.pair(&id(&reach, &p.from)?, &id(&reach, &p.to)?)?;
            Some((p.clone(), pair.verdict(p.port, protocol)))
        })
        .collect();
    let outside = intent
        .outside
        .iter()
        .filter_map(|o| {
            let to = if o.address.is_some() {
                &o.host
            } else {
                INTERNET.0
            };
            let pair = reach.pair(&id(&reach, &o.from)?, to)?;
            Some((o.clone(), pair.verdict(o.port, Protocol::Tcp)))
        })
        .collect();
    Some(Isolation {
        reach,
        namespace,
        denied: intent.deny_namespaces.clone(),
        paths,
        outside,
        errors,
    })
}

/// The matrix's id of `namespace/name` (`namespace/name (Kind)` when two share the name).
fn id(reach: &Reachability, name: &str) -> Option<String> {
    let kinded = format!("{name} (");
    reach
        .peers()
        .iter()
        .find(|p| *p == name || p.starts_with(&kinded))
        .cloned()
}

/// The isolation check: implied connections open, denied namespaces closed, every policy
/// readable.
pub fn check(state: &DesiredState, out: &mut Vec<Diagnostic>) {
    let Some(iso) = analyze(state) else { return };
    for e in &iso.errors {
        out.push(
            Diagnostic::error(Code::MalformedNetworkPolicy, e.to_string())
                .at(span_of_object(state, &e.object))
                .help("the API server would refuse it; the isolation check leaves it out"),
        );
    }
    for (path, verdict) in &iso.paths {
        if let Verdict::Blocked { egress, ingress } = verdict {
            out.push(blocked(path, egress.as_deref(), ingress.as_deref()));
        }
    }
    for (path, verdict) in &iso.outside {
        if let Verdict::Blocked { egress, .. } = verdict {
            out.push(outside_blocked(path, egress.as_deref().unwrap_or_default()));
        }
    }
    breaches(state, &iso, out);
}

fn span_of_object(state: &DesiredState, object: &str) -> Option<cairn_model::Span> {
    let (kind, rest) = object.split_once(' ')?;
    let name = rest.rsplit('/').next()?;
    state
        .resources
        .iter()
        .find(|r: &&Resource| r.id.kind == kind && r.id.name == name)
        .and_then(|r| r.span.clone())
}

fn short(peer: &str) -> &str {
    peer.rsplit('/').next().unwrap_or(peer)
}

fn blocked(path: &Path, egress: Option<&[String]>, ingress: Option<&[String]>) -> Diagnostic {
    let (from, to) = (short(&path.from), short(&path.to));
    let mut by = Vec::new();
    if let Some(policies) = egress {
        by.push(format!(
            "egress of {from} is blocked by {}",
            policies.join(", ")
        ));
    }
    if let Some(policies) = ingress {
        by.push(format!(
            "ingress of {to} is blocked by {}",
            policies.join(", ")
        ));
    }
    Diagnostic::error(
        Code::PathBlocked,
        format!(
            "{from} cannot reach {to}:{} ({}): {}",
            path.port,
            path.why,
            by.join("; ")
        ),
    )
    .at(path.span.clone())
    .label(format!("{from} connects to {to} from here"))
    .help(format!(
        "use {to}'s component settings in {from}'s `env`, or declare the connection: `env.allow({from}, {to}, {})`",
        path.port
    ))
}

/// A connection outside the cluster that the source's egress does not allow: an error for an
/// IP address (it is blocked), a warning for a name (its address is unknown: only egress to
/// every public address on the port proves it open).
fn outside_blocked(path: &OutsidePath, egress: &[String]) -> Diagnostic {
    let from = short(&path.from);
    let (host, port) = (&path.host, path.port);
    let by = if egress.is_empty() {
        String::new()
    } else {
        format!(": egress of {from} is blocked by {}", egress.join(", "))
    };
    let hint = format!(
        "open egress on port {port} outside the cluster (`isolate: #{{ allow_egress_ports: [{port}] }}`, 0.0.0.0/0 but the cluster's ranges)"
    );
    let d = match &path.address {
        Some(_) => Diagnostic::error(
            Code::PathBlocked,
            format!("{from} cannot reach {host}:{port} ({}){by}", path.why),
        )
        .help(hint),
        None => Diagnostic::warning(
            Code::PathUnproven,
            format!(
                "{from} may not reach {host}:{port} ({}): the name is outside the cluster, and egress to every public address on TCP {port} is not allowed{by}",
                path.why
            ),
        )
        .help(format!("{hint}, or give the host as an IP address a policy's ipBlock allows")),
    };
    d.at(path.span.clone())
        .label(format!("{from} connects to {host} from here"))
}

/// Every pair with a denied namespace's pod, both ways, must be closed.
fn breaches(state: &DesiredState, iso: &Isolation, out: &mut Vec<Diagnostic>) {
    let own = format!("{}/", iso.namespace);
    for denied in &iso.denied {
        let outsider = format!("{denied}/{DENIED_POD}");
        for (from, to, pair) in iso.reach.pairs() {
            let inside = |p: &str| p.starts_with(&own);
            let crosses = (from == outsider && inside(to)) || (inside(from) && to == outsider);
            if crosses && !pair.allowed.is_empty() {
                let (a, b) = (from.replace(DENIED_POD, "*"), to.replace(DENIED_POD, "*"));
                out.push(
                    Diagnostic::error(
                        Code::IsolationBreach,
                        format!(
                            "{a} can reach {b} ({}), but the environment denies namespace `{denied}`",
                            pair.allowed
                        ),
                    )
                    .at(state.network.isolate_span.clone())
                    .label(format!("`{denied}` is denied here"))
                    .help(format!(
                        "a policy lets `{denied}` in or out ({}); remove what opens it (an ingress namespace, a peer there)",
                        opened_by(pair)
                    )),
                );
            }
        }
    }
}

fn opened_by(pair: &Pair) -> String {
    let mut by = pair.egress.isolated_by.clone();
    by.extend(pair.ingress.isolated_by.iter().cloned());
    by.sort();
    by.dedup();
    if by.is_empty() {
        "no policy isolates either end".to_owned()
    } else {
        by.join(", ")
    }
}

/// The matrix for people: a grid of every pair (`.` some port open, `X` none, rows are
/// sources), then what each open pair to or from the environment allows, then the denied
/// namespaces, both ways.
pub fn matrix_text(iso: &Isolation) -> String {
    let peers = iso.reach.peers();
    let width = peers.iter().map(|p| p.chars().count()).max().unwrap_or(1);
    let mut out = String::new();
    let _ = writeln!(out, "{:>w$}   {}", "", columns(peers.len()), w = width + 3);
    for (i, from) in peers.iter().enumerate() {
        let row: Vec<&str> = peers
            .iter()
            .map(|to| match iso.reach.pair(from, to) {
                Some(p) if !p.allowed.is_empty() => ".",
                _ => "X",
            })
            .collect();
        let _ = writeln!(out, "{:>2} {from:<width$}   {}", i + 1, row.join("  "));
    }
    out.push('\n');
    let own = format!("{}/", iso.namespace);
    for (from, to, pair) in iso.reach.pairs() {
        let ours = from.starts_with(&own) || to.starts_with(&own);
        if ours && from != to && !pair.allowed.is_empty() {
            let _ = writeln!(out, "{from} -> {to}: {}", pair.allowed);
        }
    }
    for line in denied_lines(iso) {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// One line per denied namespace: `staging ↛ robson, robson ↛ staging`.
pub fn denied_lines(iso: &Isolation) -> Vec<String> {
    iso.denied.iter().map(|d| denied_line(iso, d)).collect()
}

fn columns(n: usize) -> String {
    (1..=n)
        .map(|i| format!("{i:<2}"))
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end()
        .to_owned()
}

/// `staging ↛ production, production ↛ staging` (an arrow `→` and a count where one is open).
fn denied_line(iso: &Isolation, denied: &str) -> String {
    let outsider = format!("{denied}/{DENIED_POD}");
    let own = format!("{}/", iso.namespace);
    let open = |a: &str, b: &str| iso.reach.pair(a, b).is_some_and(|p| !p.allowed.is_empty());
    let (mut out_open, mut in_open) = (0, 0);
    for p in iso.reach.peers().iter().filter(|p| p.starts_with(&own)) {
        out_open += usize::from(open(p, &outsider));
        in_open += usize::from(open(&outsider, p));
    }
    let arrow = |n: usize| {
        if n == 0 {
            "↛".to_owned()
        } else {
            format!("→ ({n} open)")
        }
    };
    let ns = &iso.namespace;
    format!(
        "{ns} {} {denied}, {denied} {} {ns}",
        arrow(out_open),
        arrow(in_open)
    )
}
