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
    let total = existing.len() + 1;
    for old in existing.iter().take(total.saturating_sub(KEEP)) {
        // Best effort: an old revision left behind is harmless.
        let _ = api
            .delete(&name_of(env, old.number), &DeleteParams::default())
            .await;
    }
    Ok(number)
}
