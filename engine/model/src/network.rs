//! What the script implies about the network: the connections its workloads need (a workload to
//! the backing services it uses, the ingress controller to each routed workload, the members of
//! a clustered service to each other, DNS) and the namespaces it must never talk to. The plan's
//! isolation check holds the environment's NetworkPolicies to it.

use crate::Span;

/// One end of a path: a workload of the environment (`namespace/name`, as the reachability
/// analysis names it) or a peer outside it (`kube-system/kube-dns`, the ingress controller).
pub type PeerName = String;

/// A connection the script implies: `from` opens a connection to `to` on `port`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path {
    /// The client, `namespace/name`.
    pub from: PeerName,
    /// The server, `namespace/name`.
    pub to: PeerName,
    /// The destination port.
    pub port: u16,
    /// `TCP` or `UDP`.
    pub protocol: String,
    /// Why the script implies it, in a few words (`uses postgres-staging`, `after: elasticsearch`).
    pub why: String,
    /// What implied it in the script.
    pub span: Option<Span>,
}

/// The network an environment's script implies.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetworkIntent {
    /// Connections that must be open.
    pub paths: Vec<Path>,
    /// Namespaces no connection may cross to or from (`isolate.deny_namespaces`).
    pub deny_namespaces: Vec<String>,
    /// Where the isolation was declared (`env.namespace(...)`).
    pub isolate_span: Option<Span>,
    /// The ingress controller's namespace and name (`kube-system`, `traefik` for k3s).
    pub ingress: (String, String),
    /// Connections to addresses outside the cluster (a scrape target or a data source given
    /// by IP address or by a name outside the cluster): no policy cairn derives opens them, so
    /// the check holds them to the source's egress policies.
    pub outside: Vec<OutsidePath>,
}

/// A connection from a workload to an address outside the cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OutsidePath {
    /// The client, `namespace/name`.
    pub from: PeerName,
    /// The host as the script wrote it (`10.0.8.4`, `exporter.example.com`).
    pub host: String,
    /// Its address when the host is an IPv4 or IPv6 literal; a name's is unknown until it is
    /// resolved, so only egress to every public address proves it open.
    pub address: Option<String>,
    /// The destination port (TCP).
    pub port: u16,
    /// Why the script implies it (`scrape job node`, `Grafana data source Loki`).
    pub why: String,
    /// What implied it in the script.
    pub span: Option<Span>,
}

impl NetworkIntent {
    /// Adds a path unless the same one (ends, port, protocol) is there already.
    pub fn add(&mut self, path: Path) {
        let same = |p: &Path| {
            p.from == path.from
                && p.to == path.to
                && p.port == path.port
                && p.protocol == path.protocol
        };
        if !self.paths.iter().any(same) {
            self.paths.push(path);
        }
    }
}
