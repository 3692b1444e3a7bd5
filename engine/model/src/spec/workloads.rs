//! Typed specs of namespaces, settings, secrets, volumes and workloads.
