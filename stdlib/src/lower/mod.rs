//! Lowering: typed specs (`cairn_model::spec`) into Kubernetes objects, network policies, alert
//! objects and backup scripts. No Rhai here: the bindings parse and validate, lowering builds.

pub(crate) mod network;
pub(crate) mod workloads;
