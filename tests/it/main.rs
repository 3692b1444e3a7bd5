//! cairn's end-to-end tests: one binary, one module per area.

mod certificates;
mod docs;
mod errors;
#[path = "../../engine/acme/tests/it/harness.rs"]
mod harness;
mod live;
mod plugins;
mod render;
mod sandbox;
mod strict;
