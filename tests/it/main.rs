//! cairn's end-to-end tests: one binary, one module per area.

mod alerts;
mod backup_script;
mod certificates;
mod ci;
mod docs;
mod environments;
mod errors;
#[path = "../../engine/acme/tests/it/harness.rs"]
mod harness;
mod live;
mod render;
mod sandbox;
mod smoke;
mod strict;
