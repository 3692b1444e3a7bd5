//! Plan-time validation of user input for Kubernetes objects, DNS records and schedules.
//!
//! Every check returns an [`Invalid`] (or, for [`bucket_name`], a [`BucketNameError`]) whose
//! message is a lowercase phrase without a trailing dot that quotes the offending input and says
//! what was expected, for example
//! `invalid quantity "1.5.5Gi": more than one decimal point`.
//!
//! The rules follow what the Kubernetes API server (k8s.io/apimachinery), the robfig/cron parser
//! used for CronJob schedules and the container image reference grammar accept. Where those
//! accept input that is almost certainly a mistake, the check here is deliberately stricter; each
//! such case is documented on the function.
//!
//! One module per grammar: resource quantities, cron schedules (and the Go durations of
//! `@every`), Kubernetes names, labels and keys, DNS names, IP addresses, container images and
//! S3 bucket names. Each module's internal checks have their own error enum; the public checks
//! turn them into an [`Invalid`] that prefixes the offending input.

mod address;
mod bucket;
mod cron;
mod dns;
mod duration;
mod image;
mod names;
mod quantity;
mod ttl;

pub use address::{ipv4, ipv6};
pub use bucket::{BucketNameError, bucket_name};
pub use cron::{cron_schedule, cron_schedule_runs};
pub use dns::{dns_name, name_covers};
pub use image::{ImageRef, image_ref};
pub use names::{
    config_key, dns1123_label, dns1123_subdomain, env_var_name, label_key, label_value,
};
pub use quantity::Quantity;
pub use ttl::ttl_seconds;

/// A validation failure: a message suitable for a diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);
