//! The connections a script implies (`cairn_model::NetworkIntent`), derived when the script
//! finishes beside the network policies that open them: each workload to the backing services
//! it uses (and the peers plugins and `env.allow` declare), the ingress controller to each
//! routed workload, DNS for every workload, and a workload to what it waits for (`after:`),
//! which no policy opens by itself.

use cairn_model::{Code, Diagnostic, NetworkIntent, Path, Resource, Span, Value};
use rhai::{Engine, NativeCallContext};

use crate::api::Ctx;
use crate::builder::{self, Builder};
use crate::docs::Docs;
use crate::export;
use crate::opts::{Opts, Site};
use crate::types::{Component, EnvHandle, Workload};

/// Kinds whose pods the reachability analysis sees.
const POD_KINDS: &[&str] = &["Deployment", "StatefulSet", "Job", "CronJob", "DaemonSet"];

/// Records that `from`'s pods connect to `to`'s on `to`'s ports (merged with what was
/// recorded before): the derived policies open it and the check expects it open.
pub fn add_peer(b: &mut Builder, from: &Workload, to: Workload) {
    let entry = b
        .peers
        .entry(from.name.clone())
        .or_insert_with(|| (from.clone(), Vec::new()));
    match entry.1.iter_mut().find(|e| e.name == to.name) {
        Some(known) => {
            for port in to.ports {
                if !known.ports.iter().any(|(_, p)| *p == port.1) {
                    known.ports.push(port);
                }
            }
        }
        None => entry.1.push(to),
    }
}

/// The scraper (`env.scraper(...)`) reaches every scrape target: a workload's port, or a
/// `host:port` resolved by [`crate::hosts::resolve`] (a workload's Service or pod, an address
/// outside the cluster, or an in-cluster name nobody serves: a warning).
pub fn scrape_peers(b: &mut Builder) {
    let scraper = b.scraper.clone();
    let mut hosts = Vec::new();
    for t in b.scrape_targets.clone() {
        match t {
            crate::builder::ScrapeTarget::Workload(to) => {
                if let Some(scraper) = scraper.as_ref().filter(|s| s.name != to.name) {
                    add_peer(b, scraper, to);
                }
            }
            crate::builder::ScrapeTarget::Host(t) => hosts.push((scraper.clone(), t)),
        }
    }
    crate::hosts::resolve(b, hosts);
}

fn span_of(b: &Builder, w: &Workload) -> Option<Span> {
    b.resources
        .iter()
        .find(|r| r.id == w.id)
        .and_then(|r| r.span.clone())
}

fn port(p: i64) -> Option<u16> {
    u16::try_from(p).ok().filter(|p| *p > 0)
}

/// The first container port of a workload's pod template.
fn first_port(r: &Resource) -> Option<u16> {
    let template: &[&str] = match r.id.kind.as_str() {
        "CronJob" => &[
            "spec",
            "jobTemplate",
            "spec",
            "template",
            "spec",
            "containers",
        ],
        _ => &["spec", "template", "spec", "containers"],
    };
    r.body
        .pointer(template)
        .map(Value::as_array)
        .unwrap_or_default()
        .iter()
        .flat_map(|c| c.get("ports").map(Value::as_array).unwrap_or_default())
        .find_map(|p| p.get("containerPort").and_then(Value::as_int))
        .and_then(port)
}

/// The namespaces the isolation policy `block-…` keeps out, and where it was declared.
fn denied(b: &Builder, ns: &str) -> (Vec<String>, Option<Span>) {
    for r in &b.resources {
        let is_block = r.id.kind == "NetworkPolicy"
            && r.id.scope.as_deref() == Some(ns)
            && r.id.name.starts_with("block-");
        if !is_block {
            continue;
        }
        let values = r
            .body
            .pointer(&["spec", "ingress"])
            .map(Value::as_array)
            .unwrap_or_default()
            .iter()
            .flat_map(|rule| rule.get("from").map(Value::as_array).unwrap_or_default())
            .filter_map(|peer| peer.pointer(&["namespaceSelector", "matchExpressions"]))
            .flat_map(Value::as_array)
            .filter(|e| e.get("operator").and_then(Value::as_str) == Some("NotIn"))
            .flat_map(|e| e.get("values").map(Value::as_array).unwrap_or_default())
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        return (values, r.span.clone());
    }
    (Vec::new(), None)
}

/// The ingress controller in `namespace`: k3s' Traefik in kube-system.
pub fn ingress_controller(namespace: &str) -> (String, String) {
    let name = if namespace == "kube-system" {
        "traefik"
    } else {
        namespace
    };
    (namespace.to_owned(), name.to_owned())
}

/// Every connection the script implies, and the namespaces it must not reach.
pub fn derive(b: &Builder) -> NetworkIntent {
    let Some(ns) = b.env.as_ref().and_then(|e| e.namespace.clone()) else {
        return NetworkIntent::default();
    };
    let (deny_namespaces, isolate_span) = denied(b, &ns);
    let mut intent = NetworkIntent {
        deny_namespaces,
        isolate_span,
        ingress: ingress_controller(&b.ingress_namespace),
        outside: b.outside.clone(),
        ..NetworkIntent::default()
    };
    // Hosts written by hand first: their paths point at the line that named the host.
    for p in &b.host_paths {
        intent.add(p.clone());
    }
    let path = |from: String, to: String, port: u16, why: String, span: Option<Span>| Path {
        from,
        to,
        port,
        protocol: "TCP".to_owned(),
        why,
        span,
    };
    for (name, (w, peers)) in &b.peers {
        for peer in peers.iter().filter(|p| p.pods.is_none()) {
            for p in peer.ports.iter().filter_map(|(_, p)| port(*p)) {
                let why = if peer.name == *name {
                    format!("the members of {name} talk to each other")
                } else {
                    format!("{name} uses {}", peer.name)
                };
                let to = format!("{ns}/{}", peer.name);
                intent.add(path(format!("{ns}/{name}"), to, p, why, span_of(b, w)));
            }
        }
    }
    let (ingress_ns, ingress_name) = &intent.ingress;
    let ingress = format!("{ingress_ns}/{ingress_name}");
    for (name, (w, p)) in &b.exposed {
        if let Some(p) = port(*p) {
            let why = format!("{name} is routed");
            let to = format!("{ns}/{name}");
            intent.add(path(ingress.clone(), to, p, why, span_of(b, w)));
        }
    }
    after_paths(b, &ns, &mut intent);
    for r in workloads(b, &ns) {
        let mut dns = path(
            format!("{ns}/{}", r.id.name),
            "kube-system/kube-dns".to_owned(),
            53,
            "every workload resolves names".to_owned(),
            r.span.clone(),
        );
        dns.protocol = "UDP".to_owned();
        intent.add(dns);
    }
    intent
}

fn workloads<'a>(b: &'a Builder, ns: &'a str) -> impl Iterator<Item = &'a Resource> {
    b.resources.iter().filter(move |r| {
        POD_KINDS.contains(&r.id.kind.as_str()) && r.id.scope.as_deref() == Some(ns)
    })
}

/// `after: X` implies a connection to X's first port, unless one to X is declared already.
fn after_paths(b: &Builder, ns: &str, intent: &mut NetworkIntent) {
    for r in workloads(b, ns) {
        for dep in &r.depends_on {
            if !matches!(dep.kind.as_str(), "Deployment" | "StatefulSet") {
                continue;
            }
            let Some(target) = b.resources.iter().find(|t| &t.id == dep) else {
                continue;
            };
            let (from, to) = (format!("{ns}/{}", r.id.name), format!("{ns}/{}", dep.name));
            let declared = intent.paths.iter().any(|p| p.from == from && p.to == to);
            if let (false, Some(p)) = (declared, first_port(target)) {
                intent.add(Path {
                    from,
                    to,
                    port: p,
                    protocol: "TCP".to_owned(),
                    why: format!("{} runs after {}", r.id.name, dep.name),
                    span: r.span.clone(),
                });
            }
        }
    }
}

/// `peers` and `clients` of `component(...)`: the connections a plugin's service needs.
pub(crate) fn component_paths(c: &Ctx, site: &Site, o: &mut Opts, workload: &Workload, port: i64) {
    let mut members = Vec::new();
    match o.get("peers") {
        Some(v) if v.is_bool() => {
            members.extend((o.bool("peers") == Some(true)).then(|| workload.clone()))
        }
        Some(_) => members = workloads_of(o, site, "peers"),
        None => {}
    }
    let clients = workloads_of(o, site, "clients");
    let mut b = builder::lock(&c.b);
    for m in members {
        add_peer(&mut b, &m, m.clone());
    }
    let mut served = workload.clone();
    served.ports.retain(|(_, p)| *p == port);
    if served.ports.is_empty() {
        served.ports.push(("service".to_owned(), port));
    }
    for client in clients {
        add_peer(&mut b, &client, served.clone());
    }
}

fn workloads_of(o: &mut Opts, site: &Site, key: &str) -> Vec<Workload> {
    let mut out = Vec::new();
    for v in o.list(key) {
        match v.clone().try_cast::<Workload>() {
            Some(w) => out.push(w),
            None => {
                let d = Diagnostic::error(
                    Code::InvalidOption,
                    format!(
                        "option `{key}` of component(...) lists a {}, not a workload",
                        v.type_name()
                    ),
                )
                .at(site.at(key));
                o.diagnostics.push(d);
            }
        }
    }
    out
}

/// `env.allow(from, to, port)`: a connection of hand-written workloads; `env.scraper(w)`.
pub fn register(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "scraper",
        ["env: Environment", "workload: Workload"],
        "Names the workload that scrapes every `env.scrape(...)` target (Prometheus): the derived\n\
         network policies let it reach each target's port, and `cairn check` expects it to. A\n\
         target given as `\"host:port\"` counts when `host` is a workload's Service.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{ isolate: #{} });\nlet api = env.deployment(\"api\", #{ image: \"ghcr.io/acme/api:1\", port: 8000, ready: http_get(\"/health\", 8000) });\nenv.scrape(\"api\", #{ target: api, metrics: [\"http_requests_total\"] });\nlet prometheus = env.deployment(\"prometheus\", #{ image: \"prom/prometheus:v2.54.1\", port: 9090, ready: http_get(\"/-/ready\", 9090) });\nenv.scraper(prometheus);\n```",
        move |_env: &mut EnvHandle, workload: Workload| {
            builder::lock(&c.b).scraper = Some(workload);
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "allow",
        [
            "env: Environment",
            "from: Workload",
            "to: Workload",
            "port: i64"
        ],
        "Lets `from`'s pods connect to `to`'s on `port` (TCP): the derived network policies open\n\
         it, and `cairn check` expects it open. For connections the script does not show\n\
         otherwise (a host name written by hand, Prometheus scraping a target); a workload that\n\
         uses a component's settings, a routed workload and a plugin's own peers need none.\n\
         `to` may be a component (its workload), or an address (`env.allow(grafana,\n\
         \"http://jaeger:16686\")`): the workload serving that host (its Service, `name.ns.svc`, a\n\
         StatefulSet pod's name; a Service port is mapped to its container port), or an address\n\
         outside the cluster, held to `from`'s egress policies. A workload that runs `after` another one is\n\
         expected to connect to its first port: `cairn check` says so when nothing allows it.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{ isolate: #{} });\nlet es = env.statefulset(\"elasticsearch\", #{ image: \"elasticsearch:8.15.0\", ports: #{ http: 9200 } });\nlet kibana = env.deployment(\"kibana\", #{ image: \"kibana:8.15.0\", port: 5601, ready: http_get(\"/api/status\", 5601), after: [es] });\nenv.allow(kibana, es, 9200);\n```",
        move |nc: NativeCallContext,
              _env: &mut EnvHandle,
              from: Workload,
              to: Workload,
              port: i64| {
            allow(&c, &c.site(&nc), &from, to, port);
        }
    );
    let c = ctx.clone();
    engine.register_fn(
        "allow",
        move |nc: NativeCallContext,
              _env: &mut EnvHandle,
              from: Workload,
              to: Component,
              port: i64| {
            allow(&c, &c.site(&nc), &from, to.workload, port);
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "allow",
        move |nc: NativeCallContext, _env: &mut EnvHandle, from: Workload, address: &str| {
            allow_address(&c, &c.site(&nc), from, address);
        },
    );
}

/// `env.allow(from, "http://jaeger:16686")`: a connection to the workload that serves a host
/// (resolved when the script finishes, like a scrape target's), or to an address outside the
/// cluster, which `check` holds to `from`'s egress policies.
fn allow_address(c: &Ctx, site: &Site, from: Workload, address: &str) {
    let Some((host, port)) = crate::hosts::parse_address(address) else {
        c.report1(site.error(
            Code::InvalidOption,
            address,
            format!("`{address}` is not an address: expected \"host:port\" or a URL such as \"http://jaeger:16686\""),
        ));
        return;
    };
    let target = crate::hosts::HostTarget {
        host,
        port,
        why: format!("env.allow({}, \"{address}\")", from.name),
        span: site.at(address),
    };
    builder::lock(&c.b).connections.push((from, target));
}

fn allow(c: &Ctx, site: &Site, from: &Workload, mut to: Workload, port: i64) {
    if !(1..=65535).contains(&port) {
        c.report1(site.error(
            Code::InvalidOption,
            &port.to_string(),
            format!("port {port} is out of range 1-65535"),
        ));
        return;
    }
    let name = to
        .ports
        .iter()
        .find(|(_, p)| *p == port)
        .map_or_else(|| format!("port-{port}"), |(n, _)| n.clone());
    to.ports = vec![(name, port)];
    add_peer(&mut builder::lock(&c.b), from, to);
}
