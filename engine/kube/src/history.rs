//! Revisions: each apply records what it applied in the cluster, so `cairn history` can list
//! them and `cairn rollback` can apply an earlier one again.
//!
//! A revision is a Secret `cairn-revision-<env>-<N>` in the `default` namespace (beside the
//! lock Lease), labelled `cairn.dev/revision-of: <env>` and deliberately without cairn's
//! ownership labels, so no plan ever prunes it. It holds the sources the environment was
//! evaluated from (the script, its plugins and their manifests: secret values come from the
//! CI's variables, but a script may still hold a literal one, hence a Secret, readable only by
//! those who may read Secrets there) and the apply's time, author, summary and outcome. The
//! newest [`KEEP`] revisions are kept.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};

use crate::lock::LOCK_NAMESPACE;
use crate::{Cluster, KubeError};

/// The label naming a revision's environment.
pub const REVISION_OF: &str = "cairn.dev/revision-of";

/// How many revisions are kept per environment.
pub const KEEP: usize = 30;

/// Revisions older than this are dropped (beyond the newest [`KEEP_RECENT`]).
pub const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

/// How many of the newest revisions are kept whatever their age, so that an environment
/// applied rarely still has something to roll back to.
pub const KEEP_RECENT: usize = 5;

/// One recorded apply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Revision {
    /// 1, 2, 3… per environment.
    pub number: u32,
    /// When the apply ran (RFC 3339, UTC).
    pub time: String,
    /// Who ran it (the CI run, or user@host).
    pub author: String,
    /// What it did (`3 added, 1 changed, 0 replaced, 0 destroyed`).
    pub summary: String,
    /// `succeeded` or `failed`.
    pub outcome: String,
    /// The script's path as given.
    pub script: String,
    /// A note (`rollback to revision 3`).
    pub note: String,
    /// The script and plugin texts, by the name diagnostics show for them; empty when the
    /// script held a sensitive literal (those are never written to the cluster).
    #[serde(skip)]
    pub sources: BTreeMap<String, String>,
}

fn api(cluster: &Cluster) -> Api<Secret> {
    Api::namespaced(cluster.client.clone(), LOCK_NAMESPACE)
}

fn name_of(env: &str, number: u32) -> String {
    format!("cairn-revision-{env}-{number}")
}

fn revision_of(secret: &Secret) -> Option<Revision> {
    let data: BTreeMap<String, String> = secret
        .data
        .as_ref()?
        .iter()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    let get = |k: &str| data.get(k).cloned().unwrap_or_default();
    let sources = data
        .get("sources.json")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    Some(Revision {
        number: get("revision").parse().ok()?,
        time: get("time"),
        author: get("author"),
        summary: get("summary"),
        outcome: get("outcome"),
        script: get("script"),
        note: get("note"),
        sources,
    })
}

/// The revisions of `env`, oldest first: one LIST by label.
pub async fn list(cluster: &Cluster, env: &str) -> Result<Vec<Revision>, KubeError> {
    let params = ListParams::default().labels(&format!("{REVISION_OF}={env}"));
    let list = api(cluster)
        .list(&params)
        .await
        .map_err(|e| KubeError::api(format!("list revisions of {env}"), e))?;
    let mut out: Vec<Revision> = list.items.iter().filter_map(revision_of).collect();
    out.sort_by_key(|r| r.number);
    Ok(out)
}

/// Records a revision of `env` (its number is the next free one) and drops the oldest beyond
/// [`KEEP`]. Runs under the environment's apply lock, so numbers do not race; a name taken
/// anyway is skipped.
pub async fn record(
    cluster: &Cluster,
    env: &str,
    mut revision: Revision,
) -> Result<u32, KubeError> {
    let existing = list(cluster, env).await?;
    let mut number = existing.last().map_or(1, |r| r.number + 1);
    let api = api(cluster);
    let sources =
        serde_json::to_string(&revision.sources).map_err(|e| KubeError::Internal(e.to_string()))?;
    loop {
        revision.number = number;
        let data: BTreeMap<String, String> = [
            ("revision", number.to_string()),
            ("time", revision.time.clone()),
            ("author", revision.author.clone()),
            ("summary", revision.summary.clone()),
            ("outcome", revision.outcome.clone()),
            ("script", revision.script.clone()),
            ("note", revision.note.clone()),
            ("sources.json", sources.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name_of(env, number)),
                namespace: Some(LOCK_NAMESPACE.to_owned()),
                labels: Some([(REVISION_OF.to_owned(), env.to_owned())].into()),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_owned()),
            data: Some(
                data.into_iter()
                    .map(|(k, v)| (k, ByteString(v.into_bytes())))
                    .collect(),
            ),
            ..Secret::default()
        };
        match api.create(&PostParams::default(), &secret).await {
            Ok(_) => break,
            Err(kube::Error::Api(e)) if e.code == 409 => number += 1,
            Err(e) => {
                return Err(KubeError::api(
                    format!("record revision {number} of {env}"),
                    e,
                ));
            }
        }
    }
    for old in expired(&existing, std::time::SystemTime::now()) {
        // Best effort: an old revision left behind is harmless.
        let _ = api
            .delete(&name_of(env, old), &DeleteParams::default())
            .await;
    }
    Ok(number)
}

/// The revisions to drop once a new one is recorded after `existing` (oldest first): beyond
/// the newest [`KEEP`], and older than [`MAX_AGE`] unless among the newest [`KEEP_RECENT`].
fn expired(existing: &[Revision], now: std::time::SystemTime) -> Vec<u32> {
    let total = existing.len() + 1;
    let by_count = total.saturating_sub(KEEP);
    let recent_from = total.saturating_sub(KEEP_RECENT);
    let oldest = now
        .checked_sub(MAX_AGE)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    existing
        .iter()
        .enumerate()
        .filter(|(i, r)| {
            let old = crate::lock::parse_time(&r.time).is_some_and(|t| t < oldest);
            *i < by_count || (old && *i < recent_from)
        })
        .map(|(_, r)| r.number)
        .collect()
}

/// Deletes every revision of `env` but `except` (after a destroy that left nothing: the
/// destroy's own revision stays, saying what happened). How many went.
pub async fn forget(cluster: &Cluster, env: &str, except: u32) -> Result<usize, KubeError> {
    let api = api(cluster);
    let mut n = 0;
    for old in list(cluster, env).await? {
        if old.number == except {
            continue;
        }
        api.delete(&name_of(env, old.number), &DeleteParams::default())
            .await
            .map_err(|e| KubeError::api(format!("delete revision {} of {env}", old.number), e))?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revisions(times: &[&str]) -> Vec<Revision> {
        times
            .iter()
            .enumerate()
            .map(|(i, t)| Revision {
                number: i as u32 + 1,
                time: (*t).to_owned(),
                author: String::new(),
                summary: String::new(),
                outcome: String::new(),
                script: String::new(),
                note: String::new(),
                sources: BTreeMap::new(),
            })
            .collect()
    }

    fn at(s: &str) -> std::time::SystemTime {
        let secs = crate::lock::parse_time(s).map_or(0, |t| t as u64);
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
    }

    #[test]
    fn revisions_are_dropped_by_count_and_by_age_but_the_newest_stay() {
        let now = at("2026-12-01T00:00:00Z");
        // 40 fresh revisions: the recorded one makes 41, so the oldest 11 go.
        let fresh = revisions(&["2026-11-30T00:00:00Z"; 40]);
        assert_eq!(expired(&fresh, now), (1..=11).collect::<Vec<_>>());
        // Old ones go by age, except the newest KEEP_RECENT (with the one being recorded).
        let old = revisions(&["2026-01-01T00:00:00Z"; 8]);
        assert_eq!(expired(&old, now), vec![1, 2, 3, 4]);
        let mixed = revisions(&[
            "2026-01-01T00:00:00Z",
            "2026-11-01T00:00:00Z",
            "2026-01-02T00:00:00Z",
        ]);
        assert!(expired(&mixed, now).is_empty());
    }
}
