//! Reachability analysis: from the NetworkPolicies, namespace labels and pod labels of a
//! desired state, which workload can open which connection to which (ports and protocols),
//! following the Kubernetes NetworkPolicy semantics, and for a blocked one which end blocks it
//! and with which policies.
//!
//! A connection from peer A to peer B on a port is allowed when A's egress allows it (no
//! policy selecting A isolates egress, or one of those that do has a rule whose `to` matches
//! B and whose ports hold the port) and B's ingress allows it (likewise with `from`). Named
//! ports are resolved against the destination's container ports, in both directions.
//!
//! **Addresses.** Pods of a desired state have no address, so an `ipBlock` matches none of
//! them: it matches external peers ([`Peer::external`]: every address of the peer's block
//! must be in the `cidr` and outside every `except`), and pods given an address (as the e2e
//! suite's cases, which use the pods' real IPs). In a cluster an `ipBlock` may also match a
//! pod's IP, so a block that holds the pod network opens more than the analysis shows; cairn's
//! own policies except the cluster CIDRs from their `ipBlock`s.
//!
//! **Peers** are named `namespace/name` (`namespace/name (Kind)` when two share it), external
//! ones by their name; the matrix keeps the order they were added in ([`Inputs::from_state`]:
//! the desired state's order, then [`Inputs::with_outside`]'s). A peer's pair with itself is the
//! traffic between its pods. External peers are never isolated themselves, and a named port
//! never matches them.
//!
//! Held to the Kubernetes network-policy e2e suite's cases (`engine/plan/testdata/netpol/`).
//! Pure and synchronous.

mod eval;
mod extract;
mod matrix;
mod model;
mod policy;
mod ports;

pub use eval::{Inputs, Pair, Reachability, Side, Verdict};
pub use extract::{external, ingress_controller, kube_dns};
pub use matrix::explain;
pub use model::{
    Cidr, ContainerPort, Labels, NAMESPACE_NAME_LABEL, Namespace, Operator, Peer, Protocol,
    Requirement, Selector,
};
pub use policy::{Policy, PolicyPeer, PolicyPort, PortRef, Problem, ReachError, Rule};
pub use ports::{PORT_MAX, PORT_MIN, PortSet};
