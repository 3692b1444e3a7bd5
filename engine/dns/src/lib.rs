//! cairn's DNS provider.
//!
//! Desired record sets come from the model's `DnsRecord` resources ([`desired_records`]); the
//! environment's `dns` setting gives the zone and how to reach it ([`DnsSettings`]). A
//! [`DnsBackend`] reads the live zone into a [`ZoneSnapshot`], the pure [`plan()`] diffs record
//! sets into a [`DnsPlan`], and the backend applies it and reports what the servers really
//! answer afterwards ([`ApplyReport`]).
//!
//! - [`Rfc2136Backend`]: RFC 2136 updates and AXFR signed with TSIG (`hmac-sha256`,
//!   `hmac-sha512`) over TCP; targeted queries when the transfer is refused.
//! - [`ManualBackend`]: zones without an update API; reads through the nameservers, says what
//!   to create and waits until the nameservers answer it.
//! - [`InMemoryBackend`]: the zone of `--sandbox`, with the same CNAME rule as a real server.
//!
//! During an apply, the record nodes of a zone share a [`ZoneBatcher`], so their changes go out
//! as few batched UPDATE messages, each node then verifying its own record set.
//!
//! Ownership: cairn writes an ownership TXT record beside every record set it creates and
//! deletes only what it owns (see [`plan`](mod@plan) for the naming scheme). Values are
//! normalized ([`normalize_value`]) so a second plan after an apply is empty. Ownership records
//! of this environment whose record set is gone are swept by the plan ([`ORPHAN_REASON`]).
//!
//! hickory types never cross this crate's API; the library never prints.

mod backend;
mod batch;
mod error;
mod manual;
pub mod plan;
mod provider;
mod query;
mod record;
mod rfc2136;
mod settings;
mod wire;

pub use backend::{ApplyReport, Backend, DnsBackend, IgnoredChange, InMemoryBackend};
pub use batch::{BATCH_WINDOW, ZoneBatcher};
pub use error::{Conflict, DnsError};
pub use manual::{ManualBackend, manual_instructions};
pub use plan::{
    DnsChange, DnsPlan, MIN_RECORDS_FOR_THRESHOLD, ORPHAN_REASON, PlanOptions, ReadMethod,
    ZoneSnapshot, is_orphan_sweep, owned_key, ownership_name, ownership_record, plan,
};
pub use provider::{DnsPart, DnsProvider, ZoneError, id_of};
pub use record::{
    RecordKey, RecordSet, RecordType, desired_records, normalize_name, normalize_value,
    presentation,
};
pub use rfc2136::{
    MAX_CHANGES_PER_UPDATE, MAX_UPDATE_BYTES, REQUEST_TIMEOUT, Rfc2136Backend, apply, read_zone,
};
pub use settings::{DnsSettings, ManualConfig, Rfc2136Config, TsigAlgorithm};
