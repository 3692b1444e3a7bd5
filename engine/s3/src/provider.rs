//! The S3 provider as the engine sees it: the environment's backup buckets, read once each and
//! planned field by field. Under the sandbox an [`InMemoryS3`] kept in a file stands in.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use cairn_apply::Node;
use cairn_apply::provider::{Part, Provider, ProviderError, StepOptions, TwinState};
use cairn_model::{DesiredState, Provider as Kind};
use cairn_plan::plan::Change;
use futures::future::BoxFuture;
use sha2::Digest as _;

use crate::{InMemoryS3, MemBucket, S3Backend, S3Error, S3Part, S3Settings};

/// Why the buckets could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum BucketsError {
    /// The environment's `backups:` settings are invalid.
    #[error("S3 settings: {0}")]
    Settings(#[source] S3Error),
    /// The sandbox's saved buckets cannot be read.
    #[error("{}: {source}", file.display())]
    SandboxFile {
        /// The file.
        file: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A bucket cannot be read, or the declared ones are invalid.
    #[error(transparent)]
    S3(#[from] S3Error),
}

/// The S3 provider: the environment's settings, or the sandbox's in-memory store.
pub struct S3Provider {
    /// Under the sandbox: the folder its `s3.json` lives in.
    pub sandbox_dir: Option<PathBuf>,
    /// A destroy: every bucket tagged as the environment's, kept unless `Some(true)`
    /// (`--delete-data`), rather than the declared ones.
    pub destroy: Option<bool>,
}

/// The environment's buckets and where they live.
pub struct Buckets {
    /// What the plan found.
    pub part: S3Part,
    /// Under the sandbox: the in-memory store and where it is saved between runs.
    sandbox: Option<(Arc<InMemoryS3>, PathBuf)>,
}

type Sandboxed = (Arc<dyn S3Backend>, Option<(Arc<InMemoryS3>, PathBuf)>);

fn sandbox_store(dir: &std::path::Path) -> Result<Sandboxed, BucketsError> {
    let file = dir.join("s3.json");
    let mem = open_sandbox(dir)?;
    Ok((mem.clone(), Some((mem, file))))
}

/// The sandbox's in-memory S3, as its last run left it under `dir`.
pub fn open_sandbox(dir: &std::path::Path) -> Result<Arc<InMemoryS3>, BucketsError> {
    let file = dir.join("s3.json");
    let buckets: BTreeMap<String, MemBucket> = match std::fs::read_to_string(&file) {
        Ok(text) => serde_json::from_str(&text).map_err(|source| BucketsError::SandboxFile {
            file: file.clone(),
            source,
        })?,
        Err(_) => BTreeMap::new(),
    };
    Ok(Arc::new(InMemoryS3::with_buckets(buckets)))
}

impl S3Provider {
    /// Reads and plans the declared buckets; `None` when the environment declares none.
    pub async fn plan_buckets(
        &self,
        state: &DesiredState,
    ) -> Result<Option<Buckets>, BucketsError> {
        let declared = state.resources.iter().any(|r| r.id.provider == Kind::S3);
        if !declared && self.destroy.is_none() {
            return Ok(None);
        }
        let Some(settings) = state.environment.providers.get("backups") else {
            return Ok(None);
        };
        let settings = S3Settings::from_settings(settings).map_err(BucketsError::Settings)?;
        let (backend, sandbox) = match &self.sandbox_dir {
            Some(dir) => sandbox_store(dir)?,
            None => (crate::connect(&settings).await?, None),
        };
        let part = match self.destroy {
            Some(delete_data) => S3Part {
                steps: crate::plan_destroyed(state, &*backend, delete_data).await?,
                backend,
            },
            None => crate::plan(state, backend).await?,
        };
        Ok(Some(Buckets { part, sandbox }))
    }
}

impl Provider for S3Provider {
    fn kind(&self) -> Kind {
        Kind::S3
    }

    fn plan<'a>(
        &'a self,
        state: &'a DesiredState,
    ) -> BoxFuture<'a, Result<Option<Box<dyn Part>>, ProviderError>> {
        Box::pin(async move {
            let part = self.plan_buckets(state).await?;
            Ok(part.map(|p| Box::new(p) as Box<dyn Part>))
        })
    }
}

impl Part for Buckets {
    fn kind(&self) -> Kind {
        Kind::S3
    }

    fn changes(&self) -> Vec<Change> {
        crate::changes(&self.part.steps)
    }

    fn notes(&self) -> Vec<String> {
        self.sandbox
            .iter()
            .map(|_| {
                "buckets: an in-memory S3 stands in (kept under .cairn/sandbox/s3.json)".to_owned()
            })
            .collect()
    }

    /// One node per bucket that changes.
    fn nodes(&self, _steps: &StepOptions) -> Vec<Node> {
        crate::nodes(&self.part.backend, &self.part.steps)
    }

    /// One fingerprint per bucket: a digest of its live configuration, or `absent`.
    fn observations(&self) -> BTreeMap<String, String> {
        self.part
            .steps
            .iter()
            .map(|step| {
                let value = match &step.live {
                    Some(live) => {
                        let text = serde_json::to_string(live).unwrap_or_default();
                        let digest = sha2::Sha256::digest(text.as_bytes());
                        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
                        format!("sha256:{hex}")
                    }
                    None => "absent".to_owned(),
                };
                (format!("Bucket/{}", step.plan.bucket), value)
            })
            .collect()
    }

    fn twin_state(&self) -> Result<Option<TwinState>, ProviderError> {
        let Some((mem, file)) = &self.sandbox else {
            return Ok(None);
        };
        Ok(Some(TwinState {
            file: file.clone(),
            contents: serde_json::to_string_pretty(&mem.snapshot())?,
        }))
    }
}
