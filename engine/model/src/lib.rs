//! cairn's pure data model.
//!
//! Everything the engine passes between its layers is defined here in plain data types:
//! [`Value`] trees whose leaves may be [`Sensitive`], [`Resource`]s with stable [`ResourceId`]s,
//! the [`DesiredState`] an environment script evaluates to, and the [`Diagnostic`]s any phase
//! reports. The crate does no IO, knows nothing of Rhai or any SDK, and never formats a
//! sensitive value except through [`Sensitive::reveal`].

mod codes;
mod diag;
mod json_path;
pub mod network;
pub mod records;
mod resource;
pub mod spec;
pub mod validate;
mod value;

pub use codes::Code;
pub use diag::{Diagnostic, Severity, Span};
pub use json_path::JsonPath;
pub use network::{NetworkIntent, OutsidePath, Path};
pub use resource::{
    DesiredState, EnvironmentMeta, GeneratedSecret, Provider, Resource, ResourceId,
};
pub use value::{Sensitive, SensitivePart, Value};
