//! What the analysis reasons about: namespaces, peers (workloads and addresses outside the
//! cluster), label selectors, protocols and address blocks.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

/// Labels of a namespace or a pod.
pub type Labels = BTreeMap<String, String>;

/// The label Kubernetes puts on every namespace, holding its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A transport protocol a NetworkPolicy port can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP, the default.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// Every protocol, in display order.
    pub const ALL: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];

    /// Parses the API's spelling (`TCP`, `UDP`, `SCTP`; case-sensitive, as the API server).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Protocol::Tcp => 0,
            Protocol::Udp => 1,
            Protocol::Sctp => 2,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A label selector operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// The label's value is one of the values.
    In,
    /// The label is absent or its value is none of the values.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

/// One `matchExpressions` requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// The operator.
    pub operator: Operator,
    /// The values (`In`, `NotIn`).
    pub values: BTreeSet<String>,
}

impl Requirement {
    /// Whether labels satisfy this requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

/// A label selector: `matchLabels` and `matchExpressions`, all of which must hold. The empty
/// selector selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// Labels that must be present with these values.
    pub match_labels: Labels,
    /// Requirements that must all hold.
    pub match_expressions: Vec<Requirement>,
}

impl Selector {
    /// The selector that selects everything.
    pub fn all() -> Self {
        Self::default()
    }

    /// A selector with `matchLabels` only.
    pub fn labels<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            match_labels: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            match_expressions: Vec::new(),
        }
    }

    /// Whether labels satisfy the selector.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

/// An address block (`10.0.0.0/8`, `2001:db8::/32`); a single address is a block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    v6: bool,
    bits: u128,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDRESS/PREFIX`, or a bare address when `bare_address` is set.
    pub fn parse(s: &str, bare_address: bool) -> Option<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None if bare_address => (s, None),
            None => return None,
        };
        let addr: IpAddr = addr.parse().ok()?;
        let (v6, bits, width) = match addr {
            IpAddr::V4(a) => (false, u128::from(u32::from(a)), 32u8),
            IpAddr::V6(a) => (true, u128::from(a), 128u8),
        };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
            Some(_) => return None,
            None => width,
        };
        if prefix > width {
            return None;
        }
        Some(Self {
            v6,
            bits: bits & Self::mask(width, prefix),
            prefix,
        })
    }

    fn width(&self) -> u8 {
        if self.v6 { 128 } else { 32 }
    }

    fn mask(width: u8, prefix: u8) -> u128 {
        let host_bits = u32::from(width - prefix);
        let all = if width == 128 {
            u128::MAX
        } else {
            u128::from(u32::MAX)
        };
        if host_bits >= 128 {
            0
        } else {
            all & !((1u128 << host_bits) - 1)
        }
    }

    /// Whether every address of `other` is in this block.
    pub fn contains(&self, other: &Cidr) -> bool {
        self.v6 == other.v6
            && other.prefix >= self.prefix
            && other.bits & Self::mask(self.width(), self.prefix) == self.bits
    }

    /// Whether the two blocks share an address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains(other) || other.contains(self)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = if self.v6 {
            IpAddr::from(std::net::Ipv6Addr::from(self.bits))
        } else {
            // The bits of a v4 block fit in 32 bits by construction.
            IpAddr::from(std::net::Ipv4Addr::from(self.bits as u32))
        };
        write!(f, "{addr}/{}", self.prefix)
    }
}

/// A namespace and its labels (with [`NAMESPACE_NAME_LABEL`], as Kubernetes sets it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: Labels,
}

impl Namespace {
    /// A namespace with these labels and the automatic name label.
    pub fn new(name: &str, labels: Labels) -> Self {
        let mut labels = labels;
        labels.insert(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned());
        Self {
            name: name.to_owned(),
            labels,
        }
    }
}

/// A named container port (or an unnamed one) of a workload's pods.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContainerPort {
    /// The port's name, which a policy can use instead of its number.
    pub name: Option<String>,
    /// The number.
    pub number: u16,
    /// The protocol.
    pub protocol: Protocol,
}

/// One end of a connection: the pods of a workload, or addresses outside the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The namespace of a workload's pods; `None` for an address outside the cluster.
    pub namespace: Option<String>,
    /// Its name (a workload's name, or a name for the addresses).
    pub name: String,
    /// What it is: a workload kind (`Deployment`…), `Pod`, or `External`.
    pub kind: String,
    /// Pod labels (none for an external peer).
    pub labels: Labels,
    /// The container ports of its pods.
    pub ports: Vec<ContainerPort>,
    /// Its addresses, when known: external peers always have them; pods of a desired state
    /// have none, so no `ipBlock` matches them (a pod with an address given matches the blocks
    /// that hold it).
    pub address: Option<Cidr>,
}

impl Peer {
    /// A workload's pods.
    pub fn workload(namespace: &str, name: &str, kind: &str, labels: Labels) -> Self {
        Self {
            namespace: Some(namespace.to_owned()),
            name: name.to_owned(),
            kind: kind.to_owned(),
            labels,
            ports: Vec::new(),
            address: None,
        }
    }

    /// Addresses outside the cluster (the internet, another network).
    pub fn external(name: &str, address: Cidr) -> Self {
        Self {
            namespace: None,
            name: name.to_owned(),
            kind: "External".to_owned(),
            labels: Labels::new(),
            ports: Vec::new(),
            address: Some(address),
        }
    }

    /// Adds a container port.
    pub fn with_port(mut self, name: Option<&str>, number: u16, protocol: Protocol) -> Self {
        self.ports.push(ContainerPort {
            name: name.map(str::to_owned),
            number,
            protocol,
        });
        self
    }

    /// How the matrix names it: `namespace/name`, or the name of an external peer.
    pub fn id(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}
