//! cairn's end-to-end tests: one binary, one module per area.

mod acme_rate_limit;
mod alerts;
mod backup_script;
mod certificates;
mod ci;
mod cli;
mod destroy;
mod dns_sweep;
mod docs;
mod drift_heal;
mod environments;
mod errors;
#[path = "../../engine/acme/tests/it/harness.rs"]
mod harness;
mod html_report;
mod inputs;
mod isolation;
mod json_lines;
mod live;
mod ownership;
mod plugins;
mod refusals;
mod render;
mod rollouts;
#[path = "../../engine/s3/tests/it/harness.rs"]
#[allow(dead_code)] // the S3 crate's tests use all of it, these tests only the server
mod s3_harness;
mod sandbox;
mod smoke;
mod speed;
mod stdlib_gaps;
mod strict;
