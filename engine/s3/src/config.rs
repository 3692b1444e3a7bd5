//! The desired configuration of a bucket, read from a `Bucket` resource and validated before
//! any request: S3-compatible servers let through what AWS would refuse (moto accepts a
//! retention of 0 days and an unknown versioning status), so cairn checks everything itself.

use std::collections::{BTreeMap, BTreeSet};

pub use cairn_model::validate::bucket_name;
use cairn_model::{Provider, Resource, Value};
use serde::{Deserialize, Serialize};

use crate::error::{Invalid, S3Error};

/// Default encryption of new objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Encryption {
    /// SSE-S3 (`AES256`).
    #[serde(rename = "AES256")]
    Aes256,
    /// SSE-KMS with the account's default key (`aws:kms`).
    #[serde(rename = "aws:kms")]
    AwsKms,
}

impl Encryption {
    /// The S3 algorithm name.
    pub fn as_str(self) -> &'static str {
        match self {
            Encryption::Aes256 => "AES256",
            Encryption::AwsKms => "aws:kms",
        }
    }

    /// Parses an S3 algorithm name.
    pub fn parse(s: &str) -> Option<Encryption> {
        match s {
            "AES256" => Some(Encryption::Aes256),
            "aws:kms" => Some(Encryption::AwsKms),
            _ => None,
        }
    }
}

/// One retention rule: objects under `prefix` expire after `expiration_days`; versions that
/// stopped being current expire after `noncurrent_expiration_days`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    /// The key prefix (empty: the whole bucket).
    pub prefix: String,
    /// Days after creation before the current version expires.
    pub expiration_days: Option<u32>,
    /// Days after becoming noncurrent before a version is removed.
    pub noncurrent_expiration_days: Option<u32>,
}

impl LifecycleRule {
    /// The rule id cairn gives the rule on the server.
    pub fn rule_id(&self) -> String {
        if self.prefix.is_empty() {
            "cairn:*".to_owned()
        } else {
            format!("cairn:{}", self.prefix)
        }
    }
}

/// The desired configuration of one bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketConfig {
    /// The bucket's name.
    pub name: String,
    /// Versioning enabled (`false`: suspended, or never enabled).
    pub versioning: bool,
    /// Default encryption.
    pub encryption: Encryption,
    /// All four public access block settings on.
    pub block_public_access: bool,
    /// Retention rules, one per prefix.
    pub lifecycle: Vec<LifecycleRule>,
    /// Bucket tags.
    pub tags: BTreeMap<String, String>,
    /// The region the bucket must live in; `None`: the client's region.
    pub region: Option<String>,
}

/// Longest prefix accepted (the rule id is derived from it and ids are at most 255 chars).
const MAX_PREFIX: usize = 240;
/// S3's limit on tags per bucket.
pub const MAX_TAGS: usize = 50;

const KNOWN: &[&str] = &[
    "bucket",
    "versioning",
    "encryption",
    "block_public_access",
    "lifecycle",
    "tags",
    "region",
    "endpoint",
    "path_style",
];

struct Problems {
    bucket: String,
    list: Vec<Invalid>,
}

impl Problems {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.list.push(Invalid {
            bucket: self.bucket.clone(),
            field: field.into(),
            message: message.into(),
        });
    }
}

impl BucketConfig {
    /// Reads a `Bucket` resource of the S3 provider and validates it.
    pub fn from_resource(resource: &Resource) -> Result<BucketConfig, S3Error> {
        let id = &resource.id;
        if id.provider != Provider::S3 || id.kind != "Bucket" {
            return Err(S3Error::Invalid(vec![Invalid {
                bucket: id.name.clone(),
                field: "kind".into(),
                message: format!("{id} is not an S3 bucket resource"),
            }]));
        }
        let config = BucketConfig::from_value(&id.name, &resource.body)?;
        if config.name != id.name {
            return Err(S3Error::Invalid(vec![Invalid {
                bucket: id.name.clone(),
                field: "bucket".into(),
                message: format!(
                    "the body names bucket \"{}\" but the resource is {id}",
                    config.name
                ),
            }]));
        }
        Ok(config)
    }

    /// Reads a bucket body (`{bucket, versioning, encryption, block_public_access, lifecycle,
    /// tags, region?}`) and validates it; every problem is reported, each naming its field.
    pub fn from_value(name: &str, body: &Value) -> Result<BucketConfig, S3Error> {
        let bucket = body
            .get("bucket")
            .and_then(Value::as_str)
            .unwrap_or(name)
            .to_owned();
        let mut p = Problems {
            bucket: bucket.clone(),
            list: Vec::new(),
        };
        let Some(map) = body.as_object() else {
            p.push("body", "must be a map");
            return Err(S3Error::Invalid(p.list));
        };
        for key in map.keys() {
            if !KNOWN.contains(&key.as_str()) {
                p.push(key.as_str(), "unknown field");
            }
        }
        match body.get("bucket") {
            Some(Value::String(_)) | None => {}
            Some(_) => p.push("bucket", "must be a string"),
        }
        if let Err(e) = bucket_name(&bucket) {
            p.push("bucket", e.to_string());
        }
        let versioning = match body.get("versioning") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                p.push(
                    "versioning",
                    format!("must be true or false, not {}", describe(other)),
                );
                true
            }
        };
        let block_public_access = match body.get("block_public_access") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                p.push(
                    "block_public_access",
                    format!("must be true or false, not {}", describe(other)),
                );
                true
            }
        };
        let encryption = match body.get("encryption") {
            None | Some(Value::Null) => Encryption::Aes256,
            Some(Value::String(s)) => Encryption::parse(s).unwrap_or_else(|| {
                p.push(
                    "encryption",
                    format!("unsupported algorithm \"{s}\"; use \"AES256\" or \"aws:kms\""),
                );
                Encryption::Aes256
            }),
            Some(other) => {
                p.push(
                    "encryption",
                    format!("must be a string, not {}", describe(other)),
                );
                Encryption::Aes256
            }
        };
        let region = match body.get("region") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                if let Err(e) = region_name(s) {
                    p.push("region", e.to_string());
                }
                Some(s.clone())
            }
            Some(other) => {
                p.push(
                    "region",
                    format!("must be a string, not {}", describe(other)),
                );
                None
            }
        };
        let lifecycle = lifecycle(body.get("lifecycle"), &mut p);
        let tags = tags(body.get("tags"), &mut p);
        if !p.list.is_empty() {
            return Err(S3Error::Invalid(p.list));
        }
        Ok(BucketConfig {
            name: bucket,
            versioning,
            encryption,
            block_public_access,
            lifecycle,
            tags,
            region,
        })
    }

    /// Validates a configuration built in code (the same rules as [`BucketConfig::from_value`]).
    pub fn validate(&self) -> Result<(), S3Error> {
        BucketConfig::from_value(&self.name, &self.to_value()).map(|_| ())
    }

    /// The configuration as a resource body.
    pub fn to_value(&self) -> Value {
        let mut body = Value::obj([
            ("bucket", Value::str(self.name.as_str())),
            ("versioning", Value::Bool(self.versioning)),
            ("encryption", Value::str(self.encryption.as_str())),
            ("block_public_access", Value::Bool(self.block_public_access)),
            (
                "lifecycle",
                Value::Array(
                    self.lifecycle
                        .iter()
                        .map(|r| {
                            let mut o = Value::obj([("prefix", Value::str(r.prefix.as_str()))]);
                            if let Some(d) = r.expiration_days {
                                o.insert("expiration_days", Value::Int(d.into()));
                            }
                            if let Some(d) = r.noncurrent_expiration_days {
                                o.insert("noncurrent_expiration_days", Value::Int(d.into()));
                            }
                            o
                        })
                        .collect(),
                ),
            ),
            (
                "tags",
                Value::obj(
                    self.tags
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::str(v.as_str()))),
                ),
            ),
        ]);
        if let Some(r) = &self.region {
            body.insert("region", Value::str(r.as_str()));
        }
        body
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::String(s) => format!("\"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a map".into(),
        Value::Sensitive(_) => "a sensitive value".into(),
    }
}

fn days(v: Option<&Value>, field: &str, p: &mut Problems) -> Option<u32> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::Int(d)) if *d >= 1 => match u32::try_from(*d) {
            Ok(d) if d <= 36_500 => Some(d),
            _ => {
                p.push(field, format!("retention of {d} days is over 100 years"));
                None
            }
        },
        Some(Value::Int(d)) => {
            p.push(field, format!("retention must be at least 1 day (got {d})"));
            None
        }
        Some(other) => {
            p.push(
                field,
                format!("must be a whole number of days, not {}", describe(other)),
            );
            None
        }
    }
}

fn lifecycle(v: Option<&Value>, p: &mut Problems) -> Vec<LifecycleRule> {
    let items = match v {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            p.push(
                "lifecycle",
                format!("must be a list, not {}", describe(other)),
            );
            return Vec::new();
        }
    };
    if items.len() > 1000 {
        p.push("lifecycle", "S3 allows at most 1000 lifecycle rules");
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(map) = item.as_object() else {
            p.push(format!("lifecycle[{i}]"), "must be a map");
            continue;
        };
        let prefix = match item.get("prefix") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                p.push(
                    format!("lifecycle[{i}].prefix"),
                    format!("must be a string, not {}", describe(other)),
                );
                continue;
            }
        };
        let at = format!("lifecycle[{prefix}]");
        for key in map.keys() {
            if !matches!(
                key.as_str(),
                "prefix" | "expiration_days" | "noncurrent_expiration_days"
            ) {
                p.push(format!("{at}.{key}"), "unknown field");
            }
        }
        if !seen.insert(prefix.clone()) {
            p.push(
                format!("{at}.prefix"),
                format!("duplicate prefix \"{prefix}\": one rule per prefix"),
            );
        }
        if prefix.len() > MAX_PREFIX {
            p.push(
                format!("{at}.prefix"),
                format!("longer than {MAX_PREFIX} bytes"),
            );
        }
        let expiration_days = days(
            item.get("expiration_days"),
            &format!("{at}.expiration_days"),
            p,
        );
        let noncurrent_expiration_days = days(
            item.get("noncurrent_expiration_days"),
            &format!("{at}.noncurrent_expiration_days"),
            p,
        );
        let given = |k: &str| !matches!(item.get(k), None | Some(Value::Null));
        if !given("expiration_days") && !given("noncurrent_expiration_days") {
            p.push(
                at.as_str(),
                "a rule needs expiration_days or noncurrent_expiration_days",
            );
        }
        out.push(LifecycleRule {
            prefix,
            expiration_days,
            noncurrent_expiration_days,
        });
    }
    out
}

fn tag_chars_ok(s: &str) -> bool {
    s.chars().all(|c| {
        c.is_alphanumeric()
            || c == ' '
            || matches!(c, '+' | '-' | '=' | '.' | '_' | ':' | '/' | '@')
    })
}

fn tags(v: Option<&Value>, p: &mut Problems) -> BTreeMap<String, String> {
    let map = match v {
        None | Some(Value::Null) => return BTreeMap::new(),
        Some(Value::Object(map)) => map,
        Some(other) => {
            p.push("tags", format!("must be a map, not {}", describe(other)));
            return BTreeMap::new();
        }
    };
    if map.len() > MAX_TAGS {
        p.push(
            "tags",
            format!("{} tags; S3 allows at most {MAX_TAGS}", map.len()),
        );
    }
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let field = format!("tags[{k}]");
        let n = k.chars().count();
        if n == 0 || n > 128 {
            p.push(field.as_str(), "a tag key has 1 to 128 characters");
        } else if !tag_chars_ok(k) {
            p.push(
                field.as_str(),
                "a tag key may hold letters, digits, spaces and + - = . _ : / @",
            );
        } else if k.starts_with("aws:") {
            p.push(field.as_str(), "the aws: prefix is reserved");
        }
        match v {
            Value::String(s) => {
                if s.chars().count() > 256 {
                    p.push(field.as_str(), "a tag value has at most 256 characters");
                } else if !tag_chars_ok(s) {
                    p.push(
                        field.as_str(),
                        "a tag value may hold letters, digits, spaces and + - = . _ : / @",
                    );
                }
                out.insert(k.clone(), s.clone());
            }
            Value::Sensitive(_) => p.push(field.as_str(), "a tag value cannot be sensitive"),
            other => p.push(
                field.as_str(),
                format!("must be a string, not {}", describe(other)),
            ),
        }
    }
    out
}

/// An invalid region name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid region \"{0}\": lowercase letters, digits and hyphens, such as eu-central-1")]
pub struct RegionNameError(pub String);

/// Validates a region name (`eu-central-1`, `us-east-1`, or a custom one of an S3-compatible
/// server: lowercase letters, digits and hyphens).
pub fn region_name(region: &str) -> Result<(), RegionNameError> {
    let ok = !region.is_empty()
        && region.len() <= 32
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(RegionNameError(region.to_owned()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn body() -> Value {
        Value::obj([
            ("bucket", Value::str("acme-backups")),
            ("versioning", Value::Bool(true)),
            ("encryption", Value::str("AES256")),
            ("block_public_access", Value::Bool(true)),
            (
                "lifecycle",
                Value::Array(vec![Value::obj([
                    ("prefix", Value::str("postgres/")),
                    ("expiration_days", Value::Int(7)),
                    ("noncurrent_expiration_days", Value::Int(7)),
                ])]),
            ),
            (
                "tags",
                Value::obj([("app.kubernetes.io/managed-by", Value::str("cairn"))]),
            ),
        ])
    }

    fn errors(body: &Value) -> Vec<String> {
        match BucketConfig::from_value("acme-backups", body) {
            Err(S3Error::Invalid(list)) => list.iter().map(|i| i.field.clone()).collect(),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn reads_a_valid_body() {
        let c = BucketConfig::from_value("acme-backups", &body()).unwrap();
        assert!(c.versioning && c.block_public_access);
        assert_eq!(c.lifecycle[0].expiration_days, Some(7));
        assert_eq!(c.to_value(), body());
        c.validate().unwrap();
    }

    #[test]
    fn every_problem_names_its_field() {
        let mut b = body();
        b.insert("versioning", Value::str("Enabledd"));
        b.insert(
            "lifecycle",
            Value::Array(vec![
                Value::obj([
                    ("prefix", Value::str("a/")),
                    ("expiration_days", Value::Int(0)),
                ]),
                Value::obj([
                    ("prefix", Value::str("a/")),
                    ("expiration_days", Value::Int(3)),
                ]),
            ]),
        );
        b.insert("tags", Value::obj([("aws:owner", Value::str("x"))]));
        assert_eq!(
            errors(&b),
            [
                "versioning",
                "lifecycle[a/].expiration_days",
                "lifecycle[a/].prefix",
                "tags[aws:owner]"
            ]
        );
    }

    #[test]
    fn too_many_tags() {
        let mut b = body();
        b.insert(
            "tags",
            Value::obj((0..51).map(|i| (format!("k{i}"), Value::str("v")))),
        );
        assert_eq!(errors(&b), ["tags"]);
    }
}
