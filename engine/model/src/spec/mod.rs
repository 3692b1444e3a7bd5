//! Typed specifications of what scripts declare: what the stdlib's Rhai bindings parse options
//! into (with diagnostics at the caller's span), and what its lowering turns into Kubernetes
//! objects, network policies, alert objects and backup scripts. Plain data: no Rhai, no IO.

pub mod network;
pub mod workloads;
