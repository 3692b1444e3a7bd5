//! cairn's pure planning core.
//!
//! For now: the plan-time checks that run over a [`DesiredState`] before anything is sent
//! anywhere ([`check`]). They find the failures that otherwise show up only after a deploy: an
//! environment variable read from a Secret key nobody provides (a crash loop), pods whose
//! requests exceed the namespace's ResourceQuota (pods rejected), duplicate declarations,
//! certificates for names the environment has no DNS record for.
//!
//! Everything here is synchronous and does no IO.

pub mod alerts;
mod checks;
pub mod diff;
pub mod isolation;
pub mod netdiff;
pub mod plan;
mod quota;
pub mod reach;

pub use checks::check;
