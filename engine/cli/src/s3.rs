//! The S3 part of `plan` and `apply`: backup buckets through `cairn-s3`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_apply::Node;
use cairn_model::{DesiredState, Provider};
use cairn_plan::plan::Change;
use cairn_s3::{InMemoryS3, MemBucket, S3Backend, S3Part, S3Settings};

/// The environment's buckets and where they live.
pub struct Buckets {
    pub part: S3Part,
    /// Under `--sandbox`: the in-memory store and where it is saved between runs.
    pub sandbox: Option<(Arc<InMemoryS3>, PathBuf)>,
}

/// Reads and plans the declared buckets; `None` when the environment declares none.
pub async fn plan(
    state: &DesiredState,
    sandbox_dir: Option<&Path>,
) -> Result<Option<Buckets>, String> {
    if !state
        .resources
        .iter()
        .any(|r| r.id.provider == Provider::S3)
    {
        return Ok(None);
    }
    let Some(settings) = state.environment.providers.get("backups") else {
        return Ok(None);
    };
    let settings = S3Settings::from_settings(settings).map_err(|e| format!("S3 settings: {e}"))?;
    let (backend, sandbox): (Arc<dyn S3Backend>, _) = match sandbox_dir {
        Some(dir) => {
            let file = dir.join("s3.json");
            let buckets: BTreeMap<String, MemBucket> = match std::fs::read_to_string(&file) {
                Ok(text) => {
                    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?
                }
                Err(_) => BTreeMap::new(),
            };
            let mem = Arc::new(InMemoryS3::with_buckets(buckets));
            (mem.clone(), Some((mem, file)))
        }
        None => (
            cairn_s3::connect(&settings)
                .await
                .map_err(|e| e.to_string())?,
            None,
        ),
    };
    let part = cairn_s3::plan(state, backend)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some(Buckets { part, sandbox }))
}

/// The plan's bucket lines.
pub fn changes(b: &Buckets) -> Vec<Change> {
    cairn_s3::changes(&b.part.steps)
}

/// One executor node per bucket that changes.
pub fn nodes(b: &Buckets) -> Vec<Node> {
    cairn_s3::nodes(&b.part.backend, &b.part.steps)
}

/// Saves the sandbox's buckets after an apply.
pub fn save(b: &Buckets) -> Result<(), String> {
    let Some((mem, file)) = &b.sandbox else {
        return Ok(());
    };
    let text = serde_json::to_string_pretty(&mem.snapshot()).map_err(|e| e.to_string())?;
    cairn_sandbox::files::write_private(file, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", file.display()))
}
