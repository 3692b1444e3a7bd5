//! The environment's DNS settings (`dns: rfc2136(#{...})` or `dns: manual_dns(#{...})`).

use std::fmt;

use base64::Engine as _;
use cairn_model::Value;

use crate::DnsError;
use crate::record::normalize_name;

/// TSIG algorithms cairn signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsigAlgorithm {
    /// `hmac-sha256` (the default).
    HmacSha256,
    /// `hmac-sha512`.
    HmacSha512,
}

impl TsigAlgorithm {
    /// Parses `hmac-sha256` / `hmac-sha512` (case-insensitive, trailing dot allowed).
    pub fn parse(s: &str) -> Option<TsigAlgorithm> {
        match s.trim_end_matches('.').to_ascii_lowercase().as_str() {
            "hmac-sha256" => Some(TsigAlgorithm::HmacSha256),
            "hmac-sha512" => Some(TsigAlgorithm::HmacSha512),
            _ => None,
        }
    }

    /// The name BIND uses.
    pub fn as_str(self) -> &'static str {
        match self {
            TsigAlgorithm::HmacSha256 => "hmac-sha256",
            TsigAlgorithm::HmacSha512 => "hmac-sha512",
        }
    }
}

/// A zone updated with RFC 2136 dynamic updates signed with TSIG.
#[derive(Clone, PartialEq, Eq)]
pub struct Rfc2136Config {
    /// The primary server, `host:port` (port 53 when omitted).
    pub server: String,
    /// The zone, normalized (lower case, no trailing dot).
    pub zone: String,
    /// The TSIG key's name.
    pub key_name: String,
    /// The TSIG secret (decoded bytes). Never printed.
    pub key: Vec<u8>,
    /// The TSIG algorithm.
    pub algorithm: TsigAlgorithm,
}

impl fmt::Debug for Rfc2136Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rfc2136Config")
            .field("server", &self.server)
            .field("zone", &self.zone)
            .field("key_name", &self.key_name)
            .field("key", &format_args!("<redacted, {} bytes>", self.key.len()))
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

fn text(v: &Value, key: &str, what: &str) -> Result<Option<String>, DnsError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Sensitive(s)) => s.reveal(&|_| None).map(Some).map_err(|id| {
            DnsError::Settings(format!(
                "{what} `{key}` uses generated password #{id}, which cannot be a TSIG key"
            ))
        }),
        Some(_) => Err(DnsError::Settings(format!(
            "{what} `{key}` must be a string"
        ))),
    }
}

fn required(v: &Value, key: &str, what: &str) -> Result<String, DnsError> {
    text(v, key, what)?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| DnsError::Settings(format!("{what} needs `{key}`")))
}

impl Rfc2136Config {
    /// Reads the settings of `rfc2136(#{ server, zone, key_name, key, algorithm })`.
    pub fn from_settings(v: &Value) -> Result<Rfc2136Config, DnsError> {
        let what = "rfc2136(...)";
        let server = required(v, "server", what)?;
        let zone = normalize_name(&required(v, "zone", what)?)?;
        let key_name = required(v, "key_name", what)?;
        let secret = required(v, "key", what)?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.trim())
            .map_err(|_| {
                DnsError::Settings(format!(
                    "the TSIG key `{key_name}` is not base64 (as in BIND's `secret \"...\"`)"
                ))
            })?;
        let algorithm = match text(v, "algorithm", what)? {
            None => TsigAlgorithm::HmacSha256,
            Some(a) => TsigAlgorithm::parse(&a).ok_or_else(|| {
                DnsError::Settings(format!(
                    "unsupported TSIG algorithm `{a}`; use hmac-sha256 or hmac-sha512"
                ))
            })?,
        };
        Ok(Rfc2136Config {
            server,
            zone,
            key_name,
            key,
            algorithm,
        })
    }
}

/// A zone with no update API: cairn reads it through the authoritative nameservers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualConfig {
    /// The zone, normalized.
    pub zone: String,
    /// Nameservers to ask, `host:port` (port 53 when omitted). Empty: the zone's NS records,
    /// found through the system resolver.
    pub nameservers: Vec<String>,
}

impl ManualConfig {
    /// Reads the settings of `manual_dns(#{ zone, nameservers })`.
    pub fn from_settings(v: &Value) -> Result<ManualConfig, DnsError> {
        let what = "manual_dns(...)";
        let zone = normalize_name(&required(v, "zone", what)?)?;
        let nameservers = v
            .get("nameservers")
            .map(Value::as_array)
            .unwrap_or_default()
            .iter()
            .map(|n| {
                n.as_str().map(str::to_owned).ok_or_else(|| {
                    DnsError::Settings(format!("{what} `nameservers` must be host:port strings"))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(ManualConfig { zone, nameservers })
    }
}

/// Either kind of DNS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsSettings {
    /// `rfc2136(...)`.
    Rfc2136(Rfc2136Config),
    /// `manual_dns(...)`.
    Manual(ManualConfig),
}

impl DnsSettings {
    /// Reads the environment's `dns` setting, dispatching on its `provider` member.
    pub fn from_settings(v: &Value) -> Result<DnsSettings, DnsError> {
        match v.get("provider").and_then(Value::as_str) {
            Some("rfc2136") => Rfc2136Config::from_settings(v).map(DnsSettings::Rfc2136),
            Some("manual") => ManualConfig::from_settings(v).map(DnsSettings::Manual),
            Some(other) => Err(DnsError::Settings(format!(
                "unknown DNS provider `{other}`"
            ))),
            None => Err(DnsError::Settings(
                "the `dns` setting names no provider; use rfc2136(...) or manual_dns(...)"
                    .to_owned(),
            )),
        }
    }

    /// The zone.
    pub fn zone(&self) -> &str {
        match self {
            DnsSettings::Rfc2136(c) => &c.zone,
            DnsSettings::Manual(c) => &c.zone,
        }
    }
}

/// Splits `host:port` (or `[v6]:port`, or a bare host) into host and port.
pub(crate) fn split_host_port(s: &str) -> Result<(String, u16), DnsError> {
    let bad = || DnsError::Settings(format!("`{s}` is not host:port"));
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if after.is_empty() => 53,
            None => return Err(bad()),
        };
        return Ok((host.to_owned(), port));
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            Ok((host.to_owned(), port.parse().map_err(|_| bad())?))
        }
        Some(_) => Ok((s.to_owned(), 53)), // a bare IPv6 address
        None if !s.is_empty() => Ok((s.to_owned(), 53)),
        None => Err(bad()),
    }
}

/// Resolves `host:port` to a socket address (the first one).
pub(crate) async fn resolve(server: &str) -> Result<std::net::SocketAddr, DnsError> {
    let (host, port) = split_host_port(server)?;
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(std::net::SocketAddr::new(ip, port));
    }
    tokio::net::lookup_host((host.as_str(), port))
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| DnsError::Unreachable {
            server: server.to_owned(),
            detail: format!("cannot resolve host name `{host}`"),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cairn_model::{Sensitive, SensitivePart};

    fn settings(key: Value, alg: Option<&str>) -> Value {
        let mut v = Value::obj([
            ("provider", Value::str("rfc2136")),
            ("server", Value::str("127.0.0.1:5353")),
            ("zone", Value::str("Example.COM.")),
            ("key_name", Value::str("cairn")),
            ("key", key),
        ]);
        if let Some(a) = alg {
            v.insert("algorithm", Value::str(a));
        }
        v
    }

    #[test]
    fn reads_rfc2136_settings_with_a_sensitive_key() {
        let key = Value::Sensitive(Sensitive::from_part(SensitivePart::Env {
            var: "TSIG_KEY".into(),
            value: "c2VjcmV0".into(),
        }));
        let DnsSettings::Rfc2136(c) =
            DnsSettings::from_settings(&settings(key, Some("hmac-sha512"))).unwrap()
        else {
            panic!("not rfc2136")
        };
        assert_eq!(c.key, b"secret");
        assert_eq!(c.zone, "example.com");
        assert_eq!(c.algorithm, TsigAlgorithm::HmacSha512);
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("115, 101") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );
        assert!(shown.contains("<redacted, 6 bytes>"), "{shown}");
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        let e = Rfc2136Config::from_settings(&settings(Value::str("%%%"), None)).unwrap_err();
        assert!(e.to_string().contains("not base64"), "{e}");
        let e = Rfc2136Config::from_settings(&settings(Value::str("c2VjcmV0"), Some("hmac-md5")))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("unsupported TSIG algorithm `hmac-md5`"),
            "{e}"
        );
        let e =
            Rfc2136Config::from_settings(&Value::obj([("zone", Value::str("x.com"))])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid DNS settings: rfc2136(...) needs `server`"
        );
    }

    #[test]
    fn host_port() {
        assert_eq!(
            split_host_port("ns1.example.com:5353").unwrap(),
            ("ns1.example.com".into(), 5353)
        );
        assert_eq!(
            split_host_port("ns1.example.com").unwrap(),
            ("ns1.example.com".into(), 53)
        );
        assert_eq!(split_host_port("[::1]:53").unwrap(), ("::1".into(), 53));
        assert!(split_host_port("a:b").is_err());
    }
}
