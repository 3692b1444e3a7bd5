//! cairn's engine: everything a command does between parsing its arguments and printing.
//!
//! The shape of cargo's `ops`: front ends (the `cairn` CLI; a GitHub Action or a server could
//! be others) stay thin, and call these functions:
//! - [`input`]: a script and its variables, evaluated and checked;
//! - [`target`]: the cluster or sandbox an environment lives on ([`sandbox`]: its files);
//! - [`plan`](mod@plan): every provider's part against what it observes, as one plan;
//! - [`apply`]: every provider's nodes as one graph; [`lock`]: the environment's Lease;
//!   [`history`]: the revision an apply records; [`saved`]: plan files applied exactly;
//! - [`destroy`]: the removal of everything an environment owns;
//! - [`drift`], [`status`], [`smoke`]: what changed outside cairn, how it is now;
//! - [`render`], [`graph`]: the desired state as documents, the graph apply follows;
//!   [`report`]: a plan as one self-contained HTML page.
//!
//! Providers implement [`cairn_apply::provider`]'s traits in their own crates (Kubernetes,
//! DNS, ACME, S3); under the sandbox their in-memory twins stand in, chosen here. The engine
//! never prints: it returns data, sends [`Notice`]s, and fails with one [`Error`] type.

pub mod apply;
pub mod destroy;
pub mod drift;
mod error;
pub mod graph;
pub mod history;
pub mod input;
pub mod lock;
mod notice;
pub mod plan;
pub mod plugins;
pub mod render;
pub mod report;
pub mod sandbox;
pub mod saved;
pub mod smoke;
pub mod status;
pub mod target;

pub use cairn_apply::{Emit, Event, Failure, Report};
pub use error::{Error, Kind, Result};
pub use notice::{Notice, Notify};
