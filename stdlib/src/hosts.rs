//! Hosts written by hand (a scrape target's `host:port`, a Grafana data source's URL,
//! `env.allow(from, "http://jaeger:16686")`) resolved to what serves them: a workload of the
//! environment (its Service's name, `name.ns.svc[.cluster.local]`, a StatefulSet pod's
//! `pod.service[.ns.svc.cluster.local]`), the pod itself (`localhost`), an address outside the
//! cluster, or an in-cluster name nobody serves (`unknown-host`).

use cairn_model::{Code, Diagnostic, OutsidePath, Path, Span};

use crate::builder::Builder;
use crate::types::Workload;

/// A connection to a host written by hand: who connects, to which `host:port`, why and where.
#[derive(Debug, Clone)]
pub struct HostTarget {
    /// The host as written (`api`, `cockroachdb-0.cockroachdb`, `10.0.8.4`, `logs.example.com`).
    pub host: String,
    /// The port the client connects to (a Service's port when the host is a Service).
    pub port: i64,
    /// What declared it, for messages (`scrape job \`node\``, `data source \`Jaeger\``).
    pub why: String,
    /// Where the script declared it.
    pub span: Option<Span>,
}

/// What a host names.
#[derive(Debug, Clone, PartialEq)]
enum Host<'a> {
    /// The client's own pod (`localhost`, `127.0.0.1`, `::1`).
    Local,
    /// An in-cluster name in the environment's namespace: the Service, and whether it names
    /// one pod of it (`cockroachdb-0.cockroachdb`: the pod's own port, no Service mapping).
    Cluster { service: &'a str, pod: bool },
    /// An in-cluster name in another namespace.
    OtherNamespace(&'a str),
    /// An IP address.
    Address(&'a str),
    /// A name outside the cluster (`logs.example.com`).
    Outside,
}

/// Classifies `host` as seen from a pod of namespace `ns`; `services` are the Services (and
/// workload names) of the environment, which tell `pod.service` from `name.tld`.
fn classify<'a>(host: &'a str, ns: &str, services: &[&str]) -> Host<'a> {
    let host = host.trim_end_matches('.');
    if host == "localhost" || host == "::1" || host.starts_with("127.") {
        return Host::Local;
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Host::Address(host);
    }
    let (name, svc_suffix) = match host
        .strip_suffix(".svc.cluster.local")
        .or_else(|| host.strip_suffix(".svc"))
    {
        Some(name) => (name, true),
        None => (host, false),
    };
    let labels: Vec<&str> = name.split('.').collect();
    match (labels.as_slice(), svc_suffix) {
        ([service], false) => Host::Cluster {
            service,
            pod: false,
        },
        ([service, namespace], true) | ([service, namespace], false) if *namespace == ns => {
            Host::Cluster {
                service,
                pod: false,
            }
        }
        ([_, namespace], true) => Host::OtherNamespace(namespace),
        ([_pod, service], false) if services.contains(service) => {
            Host::Cluster { service, pod: true }
        }
        ([_pod, service, namespace], _) if *namespace == ns => Host::Cluster { service, pod: true },
        ([_, _, namespace], true) => Host::OtherNamespace(namespace),
        _ => Host::Outside,
    }
}

/// The workload whose Service (or name) is `service`, with the one port a connection to
/// `port` reaches on its pods: through the Service, a Service port mapped to another
/// container port (`port: 80, target_port: 8000`) reaches the container's.
fn served(b: &Builder, service: &str, pod: bool, port: i64) -> Option<Workload> {
    let mut w = b
        .workloads
        .values()
        .find(|w| w.service.as_deref() == Some(service) || w.name == service)
        .cloned()?;
    let mapped = (!pod)
        .then(|| w.service_ports.iter().find(|(_, p)| *p == port))
        .flatten()
        .and_then(|(name, _)| w.ports.iter().find(|(n, _)| n == name))
        .map_or(port, |(_, p)| *p);
    w.ports.retain(|(_, p)| *p == mapped);
    if w.ports.is_empty() {
        w.ports.push((format!("port-{mapped}"), mapped));
    }
    Some(w)
}

/// `host:port`, or a URL's host and port (`http://jaeger:16686/api`, `https://x` → 443).
pub fn parse_address(text: &str) -> Option<(String, i64)> {
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
        None => (None, text),
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match (port, scheme.as_deref()) {
        (Some(p), _) => p.parse::<i64>().ok()?,
        (None, Some("http")) => 80,
        (None, Some("https")) => 443,
        (None, _) => return None,
    };
    let valid = !host.is_empty() && (1..=65535).contains(&port);
    valid.then(|| (host.to_owned(), port))
}

/// Resolves each connection to a host (`from` connects to `target`): a workload of the
/// environment becomes a peer (the derived policies open it) and a path at the declaring
/// line; an address outside the cluster an [`OutsidePath`], held to `from`'s egress; an
/// in-cluster name nobody serves a warning. A connection with no client (scrape targets
/// without a scraper) is only checked for unknown hosts.
pub fn resolve(b: &mut Builder, connections: Vec<(Option<Workload>, HostTarget)>) {
    let ns = b.namespace();
    let services: Vec<String> = b
        .workloads
        .values()
        .flat_map(|w| w.service.iter().chain([&w.name]))
        .cloned()
        .collect();
    let services: Vec<&str> = services.iter().map(String::as_str).collect();
    for (from, t) in connections {
        let kind = classify(&t.host, &ns, &services);
        let from_name = from.as_ref().map(|f| format!("{ns}/{}", f.name));
        match kind {
            Host::Local => {}
            Host::Cluster { service, pod } => match served(b, service, pod, t.port) {
                Some(to) => {
                    if let Some(from) = from.filter(|f| f.name != to.name) {
                        connect(b, &ns, &from, to, &t);
                    }
                }
                None => b.report(unknown(
                    &t,
                    &format!("no workload of namespace `{ns}` serves `{service}`"),
                )),
            },
            Host::OtherNamespace(other) => b.report(unknown(
                &t,
                &format!("it is in namespace `{other}`, which this environment does not run"),
            )),
            Host::Address(address) => outside(b, from_name, &t, Some(address.to_owned())),
            Host::Outside => outside(b, from_name, &t, None),
        }
    }
}

/// The TLS hosts of the environment's routes (its Ingresses' `tls[].hosts`), sorted.
pub fn tls_hosts(resources: &[cairn_model::Resource]) -> Vec<String> {
    let mut hosts: Vec<String> = resources
        .iter()
        .filter(|r| r.id.kind == "Ingress")
        .flat_map(|r| {
            r.body
                .pointer(&["spec", "tls"])
                .map(cairn_model::Value::as_array)
                .unwrap_or_default()
        })
        .flat_map(|t| {
            t.get("hosts")
                .map(cairn_model::Value::as_array)
                .unwrap_or_default()
        })
        .filter_map(|h| h.as_str().map(str::to_owned))
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// Each prober (a blackbox exporter) connects to every TLS host of the routes on 443: an
/// address outside the cluster (the route's public name), which the derived policy
/// `allow-<prober>-probes` opens for the prober's pods alone.
pub fn probe_routes(b: &mut Builder) {
    let ns = b.namespace();
    let hosts = tls_hosts(&b.resources);
    for (prober, span) in b.probers.clone() {
        for host in &hosts {
            b.outside.push(OutsidePath {
                from: format!("{ns}/{}", prober.name),
                host: host.clone(),
                address: None,
                port: 443,
                why: format!("{} probes the certificate of {host}", prober.name),
                span: span.clone(),
            });
        }
    }
}

fn connect(b: &mut Builder, ns: &str, from: &Workload, to: Workload, t: &HostTarget) {
    if let (Some(port), Some(span)) = (u16::try_from(t.port).ok(), &t.span) {
        let pod_port = to
            .ports
            .first()
            .map_or(port, |(_, p)| u16::try_from(*p).unwrap_or(port));
        b.host_paths.push(Path {
            from: format!("{ns}/{}", from.name),
            to: format!("{ns}/{}", to.name),
            port: pod_port,
            protocol: "TCP".to_owned(),
            why: format!("{} connects to {}:{port} ({})", from.name, t.host, t.why),
            span: Some(span.clone()),
        });
    }
    crate::paths::add_peer(b, from, to);
}

fn outside(b: &mut Builder, from: Option<String>, t: &HostTarget, address: Option<String>) {
    let (Some(from), Ok(port)) = (from, u16::try_from(t.port)) else {
        return;
    };
    b.outside.push(OutsidePath {
        from,
        host: t.host.clone(),
        address,
        port,
        why: t.why.clone(),
        span: t.span.clone(),
    });
}

fn unknown(t: &HostTarget, reason: &str) -> Diagnostic {
    Diagnostic::warning(
        Code::UnknownHost,
        format!("{} names host `{}`, but {reason}", t.why, t.host),
    )
    .at(t.span.clone())
    .label(format!("`{}` is named here", t.host))
    .help("check the name for a typo, or declare the workload (or component) that serves it; an address outside the cluster needs a name with its domain, or an IP address")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_classified_as_a_pod_of_the_namespace_resolves_them() {
        let services = ["api", "cockroachdb"];
        let c = |h| classify(h, "staging", &services);
        let svc = |service| Host::Cluster {
            service,
            pod: false,
        };
        let pod = |service| Host::Cluster { service, pod: true };
        assert_eq!(c("localhost"), Host::Local);
        assert_eq!(c("127.0.0.1"), Host::Local);
        assert_eq!(c("api"), svc("api"));
        assert_eq!(c("apy"), svc("apy"));
        assert_eq!(c("api.staging"), svc("api"));
        assert_eq!(c("api.staging.svc"), svc("api"));
        assert_eq!(c("api.staging.svc.cluster.local"), svc("api"));
        assert_eq!(c("api.production.svc"), Host::OtherNamespace("production"));
        assert_eq!(c("cockroachdb-0.cockroachdb"), pod("cockroachdb"));
        assert_eq!(
            c("cockroachdb-0.cockroachdb.staging.svc.cluster.local"),
            pod("cockroachdb")
        );
        assert_eq!(
            c("db-0.db.production.svc"),
            Host::OtherNamespace("production")
        );
        assert_eq!(c("10.0.8.4"), Host::Address("10.0.8.4"));
        assert_eq!(c("2001:db8::1"), Host::Address("2001:db8::1"));
        assert_eq!(c("logs.example.com"), Host::Outside);
        assert_eq!(c("api.example.com"), Host::Outside);
    }

    #[test]
    fn addresses_are_read_from_host_port_and_urls() {
        let p = |s| parse_address(s);
        assert_eq!(p("api:8000"), Some(("api".to_owned(), 8000)));
        assert_eq!(
            p("http://jaeger:16686/api"),
            Some(("jaeger".to_owned(), 16686))
        );
        assert_eq!(
            p("http://elasticsearch"),
            Some(("elasticsearch".to_owned(), 80))
        );
        assert_eq!(
            p("https://u:p@logs.example.com/x"),
            Some(("logs.example.com".to_owned(), 443))
        );
        assert_eq!(
            p("http://[2001:db8::1]:9100"),
            Some(("2001:db8::1".to_owned(), 9100))
        );
        assert_eq!(p("api"), None);
        assert_eq!(p("api:0"), None);
        assert_eq!(p("api:http"), None);
    }
}
