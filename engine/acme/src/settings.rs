//! Desired certificates from the model's `acme` / `Certificate` resources.

use std::path::PathBuf;

use cairn_model::{Provider, Resource, Value};

use crate::AcmeError;

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (untrusted certificates, generous rate limits).
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// The default renewal threshold, in days before expiry.
pub const DEFAULT_RENEW_BEFORE_DAYS: u32 = 30;

/// Where certificates come from: an ACME directory and the account's contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// The directory URL (`https://…/directory`).
    pub directory: String,
    /// The account's contact address (`mailto:` is added).
    pub email: Option<String>,
    /// A PEM file with the only CA(s) to trust for the directory's TLS (a private or test CA);
    /// `None`: the platform's roots.
    pub ca_file: Option<PathBuf>,
}

impl IssuerConfig {
    /// A directory with the platform's roots and no contact.
    pub fn new(directory: &str) -> IssuerConfig {
        IssuerConfig {
            directory: directory.to_owned(),
            email: None,
            ca_file: None,
        }
    }

    /// Reads `letsencrypt(...)`, `letsencrypt_staging(...)` or `acme(...)` settings:
    /// `{ directory, email?, ca_file? }`.
    pub fn from_value(v: &Value) -> Result<IssuerConfig, AcmeError> {
        let directory = v
            .get("directory")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| AcmeError::Settings("the ACME issuer needs `directory`".into()))?;
        if !directory.starts_with("https://") {
            return Err(AcmeError::Settings(format!(
                "the ACME directory `{directory}` must be an https:// URL"
            )));
        }
        let text = |key: &str| -> Result<Option<String>, AcmeError> {
            match v.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
                Some(_) => Err(AcmeError::Settings(format!(
                    "the ACME issuer's `{key}` must be a string"
                ))),
            }
        };
        Ok(IssuerConfig {
            directory: directory.trim().to_owned(),
            email: text("email")?,
            ca_file: text("ca_file")?.map(PathBuf::from),
        })
    }

    /// The directory in words, for plans (`Let's Encrypt (staging)`, or the URL).
    pub fn describe(&self) -> String {
        match self.directory.as_str() {
            LETS_ENCRYPT_PRODUCTION => "Let's Encrypt".to_owned(),
            LETS_ENCRYPT_STAGING => "Let's Encrypt (staging)".to_owned(),
            other => other.to_owned(),
        }
    }
}

/// The key algorithm of issued certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (the only one for now).
    EcdsaP256,
}

impl KeyAlgorithm {
    /// Parses `ecdsa-p256`.
    pub fn parse(s: &str) -> Option<KeyAlgorithm> {
        match s.to_ascii_lowercase().as_str() {
            "ecdsa-p256" | "ecdsa" | "p256" => Some(KeyAlgorithm::EcdsaP256),
            _ => None,
        }
    }
}

/// One desired certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSettings {
    /// The certificate's name (the resource name).
    pub name: String,
    /// The namespace of its TLS Secret.
    pub namespace: String,
    /// The DNS names, normalized (lower case, no trailing dot), sorted, without duplicates;
    /// wildcards (`*.example.com`) allowed.
    pub names: Vec<String>,
    /// The TLS Secret's name (`<name>-tls`).
    pub secret_name: String,
    /// Renew when fewer days than this are left.
    pub renew_before_days: u32,
    /// The key algorithm.
    pub key_algorithm: KeyAlgorithm,
    /// Where to get it.
    pub issuer: IssuerConfig,
}

/// Normalizes and checks certificate names: lower case, no trailing dot, a wildcard only as
/// the whole first label; sorted, duplicates removed.
pub fn normalize_names(names: &[String]) -> Result<Vec<String>, AcmeError> {
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        let name = n.trim().trim_end_matches('.').to_ascii_lowercase();
        let base = name.strip_prefix("*.").unwrap_or(&name);
        let ok = !base.is_empty()
            && base.len() <= 253
            && base.split('.').count() >= 2
            && base.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !ok {
            return Err(AcmeError::Settings(format!(
                "`{n}` is not a DNS name a certificate can be issued for"
            )));
        }
        out.push(name);
    }
    if out.is_empty() {
        return Err(AcmeError::Settings(
            "a certificate needs at least one name".into(),
        ));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

impl CertSettings {
    /// A certificate with the defaults of the stdlib's `certificate(...)`.
    pub fn new(
        name: &str,
        namespace: &str,
        names: &[&str],
        issuer: IssuerConfig,
    ) -> Result<CertSettings, AcmeError> {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        Ok(CertSettings {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            names: normalize_names(&names)?,
            secret_name: format!("{name}-tls"),
            renew_before_days: DEFAULT_RENEW_BEFORE_DAYS,
            key_algorithm: KeyAlgorithm::EcdsaP256,
            issuer,
        })
    }

    /// Reads a `Certificate` resource of the `acme` provider.
    pub fn from_resource(r: &Resource) -> Result<CertSettings, AcmeError> {
        if r.id.provider != Provider::Acme || r.id.kind != "Certificate" {
            return Err(AcmeError::Settings(format!(
                "{}/{} is not an ACME certificate",
                r.id.provider.as_str(),
                r.id.kind
            )));
        }
        let what = format!("certificate `{}`", r.id.name);
        let body = &r.body;
        let namespace = body
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| r.id.scope.clone())
            .ok_or_else(|| AcmeError::Settings(format!("{what} has no namespace")))?;
        let names: Vec<String> = body
            .get("names")
            .map(Value::as_array)
            .unwrap_or_default()
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| AcmeError::Settings(format!("{what}: names must be strings")))
            })
            .collect::<Result<_, _>>()?;
        let names = normalize_names(&names).map_err(|e| match e {
            AcmeError::Settings(m) => AcmeError::Settings(format!("{what}: {m}")),
            other => other,
        })?;
        let secret_name = body
            .get("secret_name")
            .and_then(Value::as_str)
            .map_or_else(|| format!("{}-tls", r.id.name), str::to_owned);
        let issuer_value = body
            .get("issuer")
            .ok_or_else(|| AcmeError::Settings(format!("{what} has no ACME issuer")))?;
        let renew_before_days = match body
            .get("renew_before_days")
            .or_else(|| issuer_value.get("renew_before_days"))
        {
            None | Some(Value::Null) => DEFAULT_RENEW_BEFORE_DAYS,
            Some(v) => v
                .as_int()
                .and_then(|d| u32::try_from(d).ok())
                .filter(|d| *d > 0)
                .ok_or_else(|| {
                    AcmeError::Settings(format!(
                        "{what}: renew_before_days must be a positive number of days"
                    ))
                })?,
        };
        let key_algorithm = match body.get("key_algorithm").and_then(Value::as_str) {
            None => KeyAlgorithm::EcdsaP256,
            Some(a) => KeyAlgorithm::parse(a).ok_or_else(|| {
                AcmeError::Settings(format!(
                    "{what}: unsupported key algorithm `{a}` (use ecdsa-p256)"
                ))
            })?,
        };
        Ok(CertSettings {
            name: r.id.name.clone(),
            namespace,
            names,
            secret_name,
            renew_before_days,
            key_algorithm,
            issuer: IssuerConfig::from_value(issuer_value)?,
        })
    }
}

/// The desired certificates among `resources` (the `acme` provider's `Certificate`s), each
/// read or the reason it cannot be.
pub fn desired_certificates<'a>(
    resources: impl IntoIterator<Item = &'a Resource>,
) -> Vec<Result<CertSettings, AcmeError>> {
    resources
        .into_iter()
        .filter(|r| r.id.provider == Provider::Acme && r.id.kind == "Certificate")
        .map(CertSettings::from_resource)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use cairn_model::ResourceId;

    use super::*;

    fn resource(body: Value) -> Resource {
        Resource {
            id: ResourceId::other(Provider::Acme, "Certificate", Some("staging"), "web"),
            body,
            depends_on: Vec::new(),
            protected: false,
            span: None,
            field_spans: Default::default(),
        }
    }

    #[test]
    fn reads_the_stdlib_body() {
        let body = Value::obj([
            (
                "names",
                Value::Array(vec![
                    Value::str("*.Example.com"),
                    Value::str("example.com."),
                ]),
            ),
            ("namespace", Value::str("staging")),
            ("secret_name", Value::str("web-tls")),
            ("renew_before_days", Value::Int(30)),
            ("key_algorithm", Value::str("ecdsa-p256")),
            (
                "issuer",
                Value::obj([
                    ("directory", Value::str(LETS_ENCRYPT_STAGING)),
                    ("email", Value::str("ops@example.com")),
                ]),
            ),
        ]);
        let c = CertSettings::from_resource(&resource(body)).unwrap();
        assert_eq!(c.names, ["*.example.com", "example.com"]);
        assert_eq!(c.namespace, "staging");
        assert_eq!(c.secret_name, "web-tls");
        assert_eq!(c.renew_before_days, 30);
        assert_eq!(c.issuer.email.as_deref(), Some("ops@example.com"));
        assert_eq!(c.issuer.describe(), "Let's Encrypt (staging)");
        assert_eq!(desired_certificates([&resource(Value::Null)]).len(), 1);
    }

    #[test]
    fn rejects_bad_settings() {
        let no_issuer = Value::obj([("names", Value::Array(vec![Value::str("a.example.com")]))]);
        let e = CertSettings::from_resource(&resource(no_issuer)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "certificate settings: certificate `web` has no ACME issuer"
        );
        let bad_name = Value::obj([
            ("names", Value::Array(vec![Value::str("a..example.com")])),
            (
                "issuer",
                Value::obj([("directory", Value::str(LETS_ENCRYPT_STAGING))]),
            ),
        ]);
        let e = CertSettings::from_resource(&resource(bad_name)).unwrap_err();
        assert!(
            e.to_string().contains("`a..example.com` is not a DNS name"),
            "{e}"
        );
        let http = Value::obj([("directory", Value::str("http://acme.test/dir"))]);
        assert!(IssuerConfig::from_value(&http).is_err());
        assert!(normalize_names(&["*.*.example.com".to_owned()]).is_err());
        assert!(normalize_names(&[]).is_err());
    }
}
