//! Typed specs of networking, DNS, certificates, routes, backups, alerts and smoke checks.
