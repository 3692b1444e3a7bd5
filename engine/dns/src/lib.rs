//! The DNS provider (work in progress).
