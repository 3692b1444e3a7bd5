//! Lowering of network specs: DNS, certificates, routes, backups, alerts.
