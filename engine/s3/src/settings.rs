//! The environment's `backups: s3(#{ bucket, region, endpoint, path_style, access_key_id,
//! secret_access_key })` setting.

use std::fmt;

use cairn_model::Value;

use crate::config::{bucket_name, region_name};
use crate::error::S3Error;

/// Static credentials from the script.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Where and how to reach S3.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3Settings {
    /// The backup bucket, when the setting names one.
    pub bucket: Option<String>,
    /// The region; `None`: from the AWS environment/profile chain, else us-east-1.
    pub region: Option<String>,
    /// A custom endpoint (`http://127.0.0.1:5000`) for S3-compatible servers.
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`); defaults to true with a custom endpoint.
    pub path_style: bool,
    /// Credentials from the script; `None`: the standard AWS environment/profile chain.
    pub credentials: Option<StaticCredentials>,
}

fn text(v: &Value, key: &str) -> Result<Option<String>, S3Error> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Sensitive(s)) => s.reveal(&|_| None).map(Some).map_err(|id| {
            S3Error::Settings(format!(
                "s3(...) `{key}` uses generated password #{id}, which cannot be an S3 credential"
            ))
        }),
        Some(_) => Err(S3Error::Settings(format!(
            "s3(...) `{key}` must be a string"
        ))),
    }
}

impl S3Settings {
    /// Reads the `backups` setting.
    pub fn from_settings(v: &Value) -> Result<S3Settings, S3Error> {
        let bucket = text(v, "bucket")?;
        if let Some(b) = &bucket {
            bucket_name(b).map_err(|e| S3Error::Settings(e.to_string()))?;
        }
        let region = text(v, "region")?;
        if let Some(r) = &region {
            region_name(r).map_err(|e| S3Error::Settings(e.to_string()))?;
        }
        let endpoint = text(v, "endpoint")?.map(|e| e.trim_end_matches('/').to_owned());
        if let Some(e) = &endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(S3Error::Settings(format!(
                "the endpoint `{e}` must be an http:// or https:// URL"
            )));
        }
        let path_style = match v.get("path_style") {
            None | Some(Value::Null) => endpoint.is_some(),
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(S3Error::Settings(
                    "s3(...) `path_style` must be true or false".to_owned(),
                ));
            }
        };
        let credentials = match (text(v, "access_key_id")?, text(v, "secret_access_key")?) {
            (Some(access_key_id), Some(secret_access_key)) => Some(StaticCredentials {
                access_key_id,
                secret_access_key,
            }),
            (None, None) => None,
            _ => {
                return Err(S3Error::Settings(
                    "s3(...) needs both `access_key_id` and `secret_access_key`, or neither (the AWS environment/profile chain)".to_owned(),
                ));
            }
        };
        Ok(S3Settings {
            bucket,
            region,
            endpoint,
            path_style,
            credentials,
        })
    }

    /// Settings for a local S3-compatible server (tests): path style, us-east-1, static
    /// credentials.
    pub fn local(endpoint: &str) -> S3Settings {
        S3Settings {
            bucket: None,
            region: Some("us-east-1".to_owned()),
            endpoint: Some(endpoint.to_owned()),
            path_style: true,
            credentials: Some(StaticCredentials {
                access_key_id: "cairn-test".to_owned(),
                secret_access_key: "cairn-test-secret".to_owned(),
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use cairn_model::{Sensitive, SensitivePart};

    use super::*;

    #[test]
    fn reads_settings_and_reveals_credentials() {
        let v = Value::obj([
            ("bucket", Value::str("acme-backups")),
            ("endpoint", Value::str("http://127.0.0.1:5000/")),
            ("access_key_id", Value::str("AKIA")),
            (
                "secret_access_key",
                Value::Sensitive(Sensitive::from_part(SensitivePart::Env {
                    var: "S3_SECRET".into(),
                    value: "s3cr3t".into(),
                })),
            ),
        ]);
        let s = S3Settings::from_settings(&v).unwrap();
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        assert!(s.path_style);
        let creds = s.credentials.unwrap();
        assert_eq!(creds.secret_access_key, "s3cr3t");
        assert!(!format!("{creds:?}").contains("s3cr3t"));
    }

    #[test]
    fn rejects_half_credentials_and_bad_endpoints() {
        let half = Value::obj([("access_key_id", Value::str("AKIA"))]);
        assert!(S3Settings::from_settings(&half).is_err());
        let bad = Value::obj([("endpoint", Value::str("127.0.0.1:5000"))]);
        assert!(S3Settings::from_settings(&bad).is_err());
        let none = S3Settings::from_settings(&Value::object()).unwrap();
        assert!(!none.path_style && none.credentials.is_none());
    }
}
