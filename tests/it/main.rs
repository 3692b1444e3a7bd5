//! cairn's end-to-end tests: one binary, one module per area.

mod docs;
mod errors;
mod render;
mod sandbox;
mod strict;
