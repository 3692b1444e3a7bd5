//! cairn's end-to-end tests: one binary, one module per area.

mod docs;
mod errors;
mod live;
mod render;
mod sandbox;
mod strict;
