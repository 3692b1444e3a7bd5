//! The analysis: which peer can open which connection to which, and what blocks the rest.

use std::collections::BTreeMap;

use super::model::{Labels, Namespace, Peer, Protocol};
use super::policy::Policy;
use super::ports::PortSet;

/// What the analysis reads: namespaces, peers and policies.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    namespaces: BTreeMap<String, Namespace>,
    peers: Vec<Peer>,
    policies: Vec<Policy>,
}

/// One direction of a pair: what the policies of that end allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    /// The policies that isolate this end in this direction (`namespace/name`); empty when
    /// none does, and the side allows everything.
    pub isolated_by: Vec<String>,
    /// The ports this side allows.
    pub allowed: PortSet,
}

/// The analysis of one ordered pair of peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// What the egress policies of the source allow towards the destination.
    pub egress: Side,
    /// What the ingress policies of the destination allow from the source.
    pub ingress: Side,
    /// The ports a connection can use: allowed by both sides.
    pub allowed: PortSet,
}

/// Whether one connection is allowed and, if not, what blocks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Both ends allow it.
    Allowed,
    /// At least one end blocks it.
    Blocked {
        /// The policies isolating the source's egress, when they do not allow it.
        egress: Option<Vec<String>>,
        /// The policies isolating the destination's ingress, when they do not allow it.
        ingress: Option<Vec<String>>,
    },
}

/// The who-can-reach-whom matrix: every ordered pair of peers, in the inputs' order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reachability {
    pub(crate) peers: Vec<String>,
    pub(crate) pairs: Vec<Pair>,
}

/// The policies isolating one end in one direction, and their sorted ids.
struct Isolating<'a> {
    policies: Vec<&'a Policy>,
    ids: Vec<String>,
}

impl<'a> Isolating<'a> {
    fn new(policies: Vec<&'a Policy>) -> Self {
        let mut ids: Vec<String> = policies.iter().map(|p| p.id()).collect();
        ids.sort();
        ids.dedup();
        Self { policies, ids }
    }
}

impl Inputs {
    /// No namespace, peer or policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a namespace; its name label is added.
    pub fn add_namespace(&mut self, name: &str, labels: Labels) -> &mut Self {
        self.namespaces
            .insert(name.to_owned(), Namespace::new(name, labels));
        self
    }

    /// Adds a peer, and its namespace (with only the name label) when it is not known yet.
    pub fn add_peer(&mut self, peer: Peer) -> &mut Self {
        if let Some(ns) = &peer.namespace
            && !self.namespaces.contains_key(ns)
        {
            self.add_namespace(&ns.clone(), Labels::new());
        }
        self.peers.push(peer);
        self
    }

    /// Adds a policy.
    pub fn add_policy(&mut self, policy: Policy) -> &mut Self {
        self.policies.push(policy);
        self
    }

    /// The namespaces.
    pub fn namespaces(&self) -> impl Iterator<Item = &Namespace> {
        self.namespaces.values()
    }

    /// The peers, in the order they were added.
    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    /// The policies.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The peers' ids, with the kind after those two peers share (a Deployment and a
    /// CronJob of one name).
    fn labels(&self) -> Vec<String> {
        let ids: Vec<String> = self.peers.iter().map(Peer::id).collect();
        ids.iter()
            .zip(&self.peers)
            .map(|(id, p)| {
                if ids.iter().filter(|i| *i == id).count() > 1 {
                    format!("{id} ({})", p.kind)
                } else {
                    id.clone()
                }
            })
            .collect()
    }

    fn ns_labels(&self, peer: &Peer) -> Option<&Labels> {
        peer.namespace
            .as_ref()
            .and_then(|n| self.namespaces.get(n))
            .map(|n| &n.labels)
    }

    /// The policies selecting a peer that isolate (ingress, egress).
    fn selecting(&self, peer: &Peer) -> (Isolating<'_>, Isolating<'_>) {
        let selecting = self.policies.iter().filter(|p| p.selects(peer));
        let (ingress, egress): (Vec<_>, Vec<_>) = selecting
            .map(|p| {
                (
                    p.ingress.is_some().then_some(p),
                    p.egress.is_some().then_some(p),
                )
            })
            .unzip();
        (
            Isolating::new(ingress.into_iter().flatten().collect()),
            Isolating::new(egress.into_iter().flatten().collect()),
        )
    }

    /// What the policies isolating one end (`isolating`) allow with the `other` end; `dest`
    /// is the destination, against whose container ports named ports resolve.
    fn side(&self, isolating: &Isolating, ingress: bool, other: &Peer, dest: &Peer) -> Side {
        if isolating.policies.is_empty() {
            return Side {
                isolated_by: Vec::new(),
                allowed: PortSet::all(),
            };
        }
        let other_ns = self.ns_labels(other);
        let mut allowed = PortSet::none();
        for policy in &isolating.policies {
            let rules = if ingress {
                &policy.ingress
            } else {
                &policy.egress
            };
            for rule in rules.as_deref().unwrap_or_default() {
                let peer_ok = rule.peers.is_empty()
                    || rule
                        .peers
                        .iter()
                        .any(|pp| pp.matches(&policy.namespace, other, other_ns));
                if peer_ok {
                    allowed.union_with(&rule.ports_to(dest));
                }
            }
        }
        Side {
            isolated_by: isolating.ids.clone(),
            allowed,
        }
    }

    fn pair_with(&self, from: (&Peer, &Isolating), to: (&Peer, &Isolating)) -> Pair {
        let egress = self.side(from.1, false, to.0, to.0);
        let ingress = self.side(to.1, true, from.0, to.0);
        let allowed = egress.allowed.intersect(&ingress.allowed);
        Pair {
            egress,
            ingress,
            allowed,
        }
    }

    /// The analysis of one ordered pair.
    pub fn pair(&self, from: &Peer, to: &Peer) -> Pair {
        let (_, from_egress) = self.selecting(from);
        let (to_ingress, _) = self.selecting(to);
        self.pair_with((from, &from_egress), (to, &to_ingress))
    }

    /// The matrix of every ordered pair of peers. A peer's pair with itself is evaluated as
    /// any other: for a workload it is the traffic between its pods (a pod's traffic to
    /// itself Kubernetes leaves to the network plugin).
    pub fn analyze(&self) -> Reachability {
        let selecting: Vec<_> = self.peers.iter().map(|p| self.selecting(p)).collect();
        let mut pairs = Vec::with_capacity(self.peers.len() * self.peers.len());
        for (from, (_, from_egress)) in self.peers.iter().zip(&selecting) {
            for (to, (to_ingress, _)) in self.peers.iter().zip(&selecting) {
                pairs.push(self.pair_with((from, from_egress), (to, to_ingress)));
            }
        }
        Reachability {
            peers: self.labels(),
            pairs,
        }
    }
}

impl Pair {
    /// Whether a connection on a port is allowed, and what blocks it if not.
    pub fn verdict(&self, port: u16, protocol: Protocol) -> Verdict {
        let egress_ok = self.egress.allowed.contains(port, protocol);
        let ingress_ok = self.ingress.allowed.contains(port, protocol);
        if egress_ok && ingress_ok {
            return Verdict::Allowed;
        }
        Verdict::Blocked {
            egress: (!egress_ok).then(|| self.egress.isolated_by.clone()),
            ingress: (!ingress_ok).then(|| self.ingress.isolated_by.clone()),
        }
    }
}

impl Reachability {
    /// The peers' ids, in matrix order.
    pub fn peers(&self) -> &[String] {
        &self.peers
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.peers.iter().position(|p| p == id)
    }

    /// The analysis of a pair, by the peers' ids.
    pub fn pair(&self, from: &str, to: &str) -> Option<&Pair> {
        let (f, t) = (self.index(from)?, self.index(to)?);
        self.pairs.get(f * self.peers.len() + t)
    }

    /// Every pair as (from, to, analysis), rows first.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str, &Pair)> {
        let n = self.peers.len();
        self.pairs
            .iter()
            .enumerate()
            .map(move |(i, p)| (self.peers[i / n].as_str(), self.peers[i % n].as_str(), p))
    }

    /// Whether `from` can connect to `to` on a port; `None` for an unknown peer.
    pub fn verdict(&self, from: &str, to: &str, port: u16, protocol: Protocol) -> Option<Verdict> {
        self.pair(from, to).map(|p| p.verdict(port, protocol))
    }
}
