//! Lowering of workload specs: namespaces, settings, secrets, volumes, workloads.
