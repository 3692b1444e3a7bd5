//! The desired state as documents: Kubernetes objects first (in apply order), then the other
//! resources, as YAML or JSON, with sensitive values as placeholders unless revealed.

use std::collections::BTreeMap;

use cairn_model::{DesiredState, Provider, Resource};

/// How documents are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A YAML stream.
    Yaml,
    /// JSON documents.
    Json,
}

/// The documents as one stream.
pub fn stream(docs: &[Document], format: Format) -> String {
    match format {
        Format::Yaml => yaml_stream(docs),
        Format::Json => json_stream(docs),
    }
}

/// Writes one file per document into `dir` (created if need be); how many.
pub fn write_dir(dir: &std::path::Path, docs: &[Document], format: Format) -> crate::Result<usize> {
    use crate::Error;
    std::fs::create_dir_all(dir).map_err(|e| Error::file("create", dir, e))?;
    for d in docs {
        let (ext, text) = match format {
            Format::Yaml => ("yaml", yaml(&d.json)),
            Format::Json => (
                "json",
                format!(
                    "{}\n",
                    serde_json::to_string_pretty(&d.json).unwrap_or_default()
                ),
            ),
        };
        let path = dir.join(format!("{}.{ext}", d.file_name));
        std::fs::write(&path, text).map_err(|e| Error::file("write", &path, e))?;
    }
    Ok(docs.len())
}

/// One rendered document and the file name it gets with `-o DIR`.
pub struct Document {
    /// Its file name without extension.
    pub file_name: String,
    /// The document.
    pub json: serde_json::Value,
}

/// How sensitive values are shown.
pub enum Secrets<'a> {
    /// As `<sensitive: …>` placeholders.
    Redacted,
    /// As their values; generated passwords from the map.
    Revealed(&'a BTreeMap<u32, String>),
}

fn api_version_of(r: &Resource) -> &'static str {
    match r.id.provider {
        Provider::Dns => "dns.cairn.dev/v1alpha1",
        Provider::Acme => "acme.cairn.dev/v1alpha1",
        Provider::S3 => "s3.cairn.dev/v1alpha1",
        Provider::Alerts => "alerts.cairn.dev/v1alpha1",
        Provider::Smoke => "smoke.cairn.dev/v1alpha1",
        Provider::Kube => "v1",
    }
}

/// The documents of a state, in stable order.
pub fn documents(state: &DesiredState, secrets: &Secrets<'_>) -> Result<Vec<Document>, u32> {
    let mut out = Vec::new();
    for (i, r) in state
        .kube_objects()
        .chain(state.other_resources())
        .enumerate()
    {
        let body = match secrets {
            Secrets::Redacted => r.body.to_json(),
            Secrets::Revealed(values) => r.body.reveal(&|id| values.get(&id).cloned())?,
        };
        let json = if r.id.provider == Provider::Kube {
            body
        } else {
            let mut metadata = serde_json::Map::new();
            metadata.insert("name".into(), r.id.name.clone().into());
            if let Some(scope) = &r.id.scope {
                let key = if r.id.provider == Provider::Dns {
                    "zone"
                } else {
                    "namespace"
                };
                metadata.insert(key.into(), scope.clone().into());
            }
            serde_json::json!({
                "apiVersion": api_version_of(r),
                "kind": r.id.kind,
                "metadata": metadata,
                "spec": body,
            })
        };
        let scope =
            r.id.scope
                .as_deref()
                .map(|s| format!("{s}-"))
                .unwrap_or_default();
        let name: String = format!("{scope}{}", r.id.name)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        out.push(Document {
            file_name: format!("{:03}-{}-{name}", i + 1, r.id.kind.to_ascii_lowercase()),
            json,
        });
    }
    Ok(out)
}

/// YAML text of one document.
pub fn yaml(doc: &serde_json::Value) -> String {
    serde_saphyr::to_string(doc).unwrap_or_else(|e| format!("# cannot render as YAML: {e}\n"))
}

/// A multi-document YAML stream.
pub fn yaml_stream(docs: &[Document]) -> String {
    let mut out = String::new();
    for d in docs {
        out.push_str("---\n");
        out.push_str(&yaml(&d.json));
    }
    out
}

/// A JSON array of documents.
pub fn json_stream(docs: &[Document]) -> String {
    let all: Vec<&serde_json::Value> = docs.iter().map(|d| &d.json).collect();
    // One line, as all JSON cairn prints: the documents are one JSON array.
    let mut text = serde_json::to_string(&all).unwrap_or_default();
    text.push('\n');
    text
}
