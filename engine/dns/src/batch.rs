//! Coalescing the record set changes of a zone into few messages during an apply.
//!
//! An apply runs one executor node per record set (so a certificate can depend on its A
//! records), but sending one RFC 2136 UPDATE per record set costs a round trip and a zone
//! serial each. The nodes of a zone share a [`ZoneBatcher`]: the first node to run waits a
//! short window, then sends every change that is ready — the record nodes have no
//! dependencies, so every change of the plan is — in as few signed UPDATEs as the message
//! limits allow ([`crate::DnsBackend::send_changes`]); the other nodes find their change's answer
//! there. Then each node verifies its own change at the server. A change the server rejected
//! fails only its own node, with its own reason.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::DnsError;
use crate::backend::{DnsBackend, IgnoredChange};
use crate::plan::{DnsChange, DnsPlan};
use crate::record::RecordKey;

/// How long the first node waits for others before the batch is sent.
pub const BATCH_WINDOW: Duration = Duration::from_millis(20);

/// The per-zone batcher of an apply (see the module documentation).
#[derive(Debug)]
pub struct ZoneBatcher<B> {
    backend: Arc<B>,
    plan: DnsPlan,
    window: Duration,
    /// The answer to each change sent so far; held while a batch is being sent, so nodes
    /// arriving meanwhile wait for it rather than sending again.
    sent: Mutex<BTreeMap<RecordKey, Result<(), DnsError>>>,
}

impl<B: DnsBackend> ZoneBatcher<B> {
    /// A batcher for the changes of `plan`, every one of them ready from the start.
    pub fn new(backend: Arc<B>, plan: DnsPlan) -> ZoneBatcher<B> {
        ZoneBatcher {
            backend,
            plan,
            window: BATCH_WINDOW,
            sent: Mutex::new(BTreeMap::new()),
        }
    }

    /// Sets how long the first node waits before sending (default [`BATCH_WINDOW`]).
    pub fn with_window(mut self, window: Duration) -> ZoneBatcher<B> {
        self.window = window;
        self
    }

    /// The change of the record set `key`, as planned.
    pub fn change(&self, key: &RecordKey) -> Option<&DnsChange> {
        self.plan.changes.iter().find(|c| &c.key == key)
    }

    /// Applies the change of `key`: sent in a batch with every change not sent yet (unless an
    /// earlier batch carried it), then verified at the server within `timeout`. `Ok(Some)`: the
    /// server accepted the change but does not answer it.
    pub async fn apply(
        &self,
        key: &RecordKey,
        timeout: Duration,
    ) -> Result<Option<IgnoredChange>, DnsError> {
        let Some(change) = self.change(key) else {
            return Err(DnsError::Internal(format!(
                "{key} is not a change of the plan of zone {}",
                self.plan.zone
            )));
        };
        let answer = {
            let mut sent = self.sent.lock().await;
            if !sent.contains_key(key) {
                tokio::time::sleep(self.window).await;
                let mut batch = self.plan.clone();
                batch.warnings.clear();
                batch.changes.retain(|c| !sent.contains_key(&c.key));
                let results = self.backend.send_changes(&batch).await;
                for (c, r) in batch.changes.iter().zip(results) {
                    sent.insert(c.key.clone(), r);
                }
            }
            sent.get(key).cloned().unwrap_or_else(|| {
                Err(DnsError::Internal(format!(
                    "no answer for the update of {key}; this is a bug"
                )))
            })
        };
        answer?;
        self.backend
            .verify_change(change, self.plan.owner.as_deref(), timeout)
            .await
    }
}
