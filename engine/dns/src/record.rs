//! Record sets in plain data, and the normalization that makes desired and live records
//! comparable text.

use std::fmt;

use cairn_model::records::{self, quote};
use cairn_model::{Provider, Resource, Value};
use serde::{Deserialize, Serialize};

use crate::DnsError;

/// The record types cairn manages, and any other type seen in a zone (never touched).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RecordType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Alias to another name.
    Cname,
    /// Text.
    Txt,
    /// Mail exchanger: `PREFERENCE TARGET.`.
    Mx,
    /// Service: `PRIORITY WEIGHT PORT TARGET.`.
    Srv,
    /// Certification authority authorization: `FLAGS TAG "VALUE"`.
    Caa,
    /// Any other type (SOA, NS, …), by its mnemonic; read, counted, never changed.
    Other(String),
}

impl RecordType {
    /// Parses a type mnemonic (case-insensitive); unknown mnemonics become [`RecordType::Other`].
    pub fn parse(s: &str) -> RecordType {
        match s.to_ascii_uppercase().as_str() {
            "A" => RecordType::A,
            "AAAA" => RecordType::Aaaa,
            "CNAME" => RecordType::Cname,
            "TXT" => RecordType::Txt,
            "MX" => RecordType::Mx,
            "SRV" => RecordType::Srv,
            "CAA" => RecordType::Caa,
            other => RecordType::Other(other.to_owned()),
        }
    }

    /// The mnemonic, upper case.
    pub fn as_str(&self) -> &str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Txt => "TXT",
            RecordType::Mx => "MX",
            RecordType::Srv => "SRV",
            RecordType::Caa => "CAA",
            RecordType::Other(s) => s,
        }
    }

    /// Whether cairn can create, update and delete records of this type.
    pub fn is_managed(&self) -> bool {
        !matches!(self, RecordType::Other(_))
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record set: every record of one type at one name, with normalized values.
///
/// `name` is lower case without a trailing dot; `values` are normalized (see [`normalize_value`]),
/// sorted and without duplicates, so two record sets with the same data compare equal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordSet {
    /// Fully qualified owner name, lower case, no trailing dot.
    pub name: String,
    /// Record type.
    pub rtype: RecordType,
    /// Time to live in seconds.
    pub ttl: u32,
    /// Normalized record data, sorted, unique.
    pub values: Vec<String>,
}

/// The identity of a record set: its name and type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RecordKey {
    /// Fully qualified owner name, lower case, no trailing dot.
    pub name: String,
    /// Record type.
    pub rtype: RecordType,
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.rtype)
    }
}

impl RecordSet {
    /// Builds a record set from raw text, normalizing name and values.
    pub fn new(
        name: &str,
        rtype: RecordType,
        ttl: u32,
        values: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<RecordSet, DnsError> {
        let name = normalize_name(name)?;
        let values = values
            .into_iter()
            .map(|v| normalize_value(&rtype, v.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordSet::from_normalized(name, rtype, ttl, values))
    }

    /// Builds a record set from values that are already normalized (sorts and dedups them).
    pub(crate) fn from_normalized(
        name: String,
        rtype: RecordType,
        ttl: u32,
        mut values: Vec<String>,
    ) -> RecordSet {
        values.sort();
        values.dedup();
        RecordSet {
            name,
            rtype,
            ttl,
            values,
        }
    }

    /// Its name and type.
    pub fn key(&self) -> RecordKey {
        RecordKey {
            name: self.name.clone(),
            rtype: self.rtype.clone(),
        }
    }

    /// The records as zone file lines (`name. TTL IN TYPE data`), the form printed for
    /// the manual provider.
    pub fn zone_lines(&self) -> Vec<String> {
        self.values
            .iter()
            .map(|v| {
                format!(
                    "{}. {} IN {} {}",
                    self.name,
                    self.ttl,
                    self.rtype,
                    presentation(&self.rtype, v)
                )
            })
            .collect()
    }
}

impl fmt::Display for RecordSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} [", self.name, self.ttl, self.rtype)?;
        for (i, v) in self.values.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&presentation(&self.rtype, v))?;
        }
        f.write_str("]")
    }
}

/// A normalized value as it is written in a zone file (TXT quoted and split into 255-byte
/// strings; the others as they are).
pub fn presentation(rtype: &RecordType, value: &str) -> String {
    match rtype {
        RecordType::Txt => txt_chunks(value.as_bytes())
            .iter()
            .map(|c| quote(&String::from_utf8_lossy(c)))
            .collect::<Vec<_>>()
            .join(" "),
        _ => value.to_owned(),
    }
}

/// Splits TXT data into the character-strings of at most 255 bytes it is sent as.
pub(crate) fn txt_chunks(bytes: &[u8]) -> Vec<&[u8]> {
    if bytes.is_empty() {
        return vec![bytes];
    }
    bytes.chunks(255).collect()
}

fn invalid(rtype: &RecordType, value: &str, why: impl fmt::Display) -> DnsError {
    DnsError::InvalidRecord {
        what: format!("{rtype} value \"{value}\""),
        reason: why.to_string(),
    }
}

/// Normalizes an owner name: lower case, no trailing dot, labels checked for length.
pub fn normalize_name(name: &str) -> Result<String, DnsError> {
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let bad = |reason: &str| DnsError::InvalidRecord {
        what: format!("name \"{name}\""),
        reason: reason.to_owned(),
    };
    if n.is_empty() {
        return Err(bad("the name is empty"));
    }
    if n.len() > 253 {
        return Err(bad("the name is longer than 253 characters"));
    }
    for label in n.split('.') {
        if label.is_empty() {
            return Err(bad("the name has an empty label"));
        }
        if label.len() > 63 {
            return Err(bad("a label is longer than 63 characters"));
        }
        if label.chars().any(|c| c.is_whitespace() || c == '"') {
            return Err(bad("the name contains a space or a quote"));
        }
    }
    Ok(n)
}

/// Normalizes one value of a record of type `rtype` to the text cairn compares, by the one
/// rule of record values ([`cairn_model::records::normalize_value`]); surrounding whitespace
/// is ignored (TXT data is taken as it is).
///
/// - A: dotted quad; AAAA: canonical RFC 5952 text (`2001:db8::1`).
/// - CNAME: the target, lower case with a trailing dot.
/// - MX: `PREFERENCE target.`; SRV: `PRIORITY WEIGHT PORT target.`.
/// - TXT: the text itself, unquoted; a value written as quoted strings (`"a" "b"`) is the
///   concatenation of the strings. Long text is split into 255-byte strings only on the wire.
/// - CAA: `FLAGS tag "value"` with the tag lower case.
pub fn normalize_value(rtype: &RecordType, value: &str) -> Result<String, DnsError> {
    let text = match rtype {
        RecordType::Txt => value,
        _ => value.trim(),
    };
    records::normalize_value(rtype.as_str(), text).map_err(|e| invalid(rtype, value, e.reason))
}

/// The desired record sets of a zone, from the model's `DnsRecord` resources (`provider ==
/// dns`, `kind == "DnsRecord"`, `scope == zone`). Record sets of the same name and type are merged.
pub fn desired_records<'a>(
    resources: impl IntoIterator<Item = &'a Resource>,
    zone: &str,
) -> Result<Vec<RecordSet>, DnsError> {
    let zone = normalize_name(zone)?;
    let mut out: Vec<RecordSet> = Vec::new();
    for r in resources {
        if r.id.provider != Provider::Dns || r.id.kind != "DnsRecord" {
            continue;
        }
        let in_zone =
            r.id.scope
                .as_deref()
                .is_some_and(|s| s.trim_end_matches('.').eq_ignore_ascii_case(&zone));
        if !in_zone {
            continue;
        }
        let body = &r.body;
        let field = |k: &str| {
            body.get(k).ok_or_else(|| DnsError::InvalidRecord {
                what: format!("resource {}", r.id),
                reason: format!("the body has no `{k}`"),
            })
        };
        let name = field("name")?.as_str().unwrap_or_default();
        let rtype = RecordType::parse(field("type")?.as_str().unwrap_or_default());
        if !rtype.is_managed() {
            return Err(DnsError::InvalidRecord {
                what: format!("resource {}", r.id),
                reason: format!("record type {rtype} is not supported"),
            });
        }
        let ttl = body.get("ttl").and_then(Value::as_int).unwrap_or(300);
        let ttl = u32::try_from(ttl).map_err(|_| DnsError::InvalidRecord {
            what: format!("resource {}", r.id),
            reason: format!("ttl {ttl} is out of range"),
        })?;
        let values: Vec<&str> = field("values")?
            .as_array()
            .iter()
            .map(|v| v.as_str().unwrap_or_default())
            .collect();
        let set = RecordSet::new(name, rtype, ttl, values)?;
        if !in_zone_name(&set.name, &zone) {
            return Err(DnsError::InvalidRecord {
                what: format!("record {}", set.key()),
                reason: format!("the name is outside the zone {zone}"),
            });
        }
        if let Some(existing) = out.iter_mut().find(|s| s.key() == set.key()) {
            existing.values.extend(set.values);
            existing.values.sort();
            existing.values.dedup();
            existing.ttl = existing.ttl.min(set.ttl);
        } else {
            out.push(set);
        }
    }
    out.sort();
    Ok(out)
}

/// Whether `name` is `zone` or below it (both normalized).
pub(crate) fn in_zone_name(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn n(t: &str, v: &str) -> String {
        normalize_value(&RecordType::parse(t), v).unwrap()
    }

    #[test]
    fn addresses_are_canonical() {
        assert_eq!(n("A", " 192.0.2.1 "), "192.0.2.1");
        assert_eq!(n("AAAA", "2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
        assert_eq!(n("AAAA", "2001:0db8::0001"), "2001:db8::1");
        assert!(normalize_value(&RecordType::A, "300.1.1.1").is_err());
        assert!(normalize_value(&RecordType::Aaaa, "192.0.2.1").is_err());
    }

    #[test]
    fn targets_are_absolute_and_lower_case() {
        assert_eq!(n("CNAME", "WWW.Example.COM"), "www.example.com.");
        assert_eq!(n("CNAME", "www.example.com."), "www.example.com.");
        assert_eq!(n("MX", "10   Mail.Example.com"), "10 mail.example.com.");
        assert_eq!(n("MX", "0 ."), "0 .");
        assert_eq!(
            n("SRV", "10 5 5060 SIP.example.com."),
            "10 5 5060 sip.example.com."
        );
        assert!(normalize_value(&RecordType::Mx, "mail.example.com.").is_err());
        assert!(normalize_value(&RecordType::Srv, "10 5 70000 sip.example.com.").is_err());
    }

    #[test]
    fn txt_quoting_and_splitting() {
        assert_eq!(n("TXT", "v=spf1 -all"), "v=spf1 -all");
        assert_eq!(n("TXT", "\"v=spf1 \" \"-all\""), "v=spf1 -all");
        assert_eq!(n("TXT", "\"say \\\"hi\\\"\""), "say \"hi\"");
        assert_eq!(n("TXT", "\"a\\065\""), "aA");
        assert!(normalize_value(&RecordType::Txt, "\"open").is_err());
        let long = "x".repeat(600);
        let chunks = txt_chunks(long.as_bytes());
        assert_eq!(
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [255, 255, 90]
        );
        assert_eq!(presentation(&RecordType::Txt, "a\"b"), "\"a\\\"b\"");
    }

    #[test]
    fn caa_is_canonical() {
        assert_eq!(
            n("CAA", "0 issue \"letsencrypt.org\""),
            "0 issue \"letsencrypt.org\""
        );
        assert_eq!(
            n("CAA", "0 ISSUE letsencrypt.org"),
            "0 issue \"letsencrypt.org\""
        );
        assert_eq!(
            n("CAA", "128 iodef \"mailto:a@b.c\""),
            "128 iodef \"mailto:a@b.c\""
        );
        assert!(normalize_value(&RecordType::Caa, "0 issue").is_err());
        assert!(normalize_value(&RecordType::Caa, "300 issue \"x\"").is_err());
    }

    #[test]
    fn values_follow_the_one_rule_of_the_model() {
        let err = |t: &str, v: &str| {
            normalize_value(&RecordType::parse(t), v)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("SRV", "1 2 3 ."),
            "invalid record SRV value \"1 2 3 .\": the target is not a host name"
        );
        assert_eq!(
            err("CAA", "0 contactemail a@b.c"),
            "invalid record CAA value \"0 contactemail a@b.c\": the tag must be issue, issuewild or iodef"
        );
        assert_eq!(
            err("MX", "10 _mail.example.com."),
            "invalid record MX value \"10 _mail.example.com.\": the target is not a host name"
        );
        assert_eq!(
            err("A", " 300.1.1.1 "),
            "invalid record A value \" 300.1.1.1 \": not an IPv4 address"
        );
    }

    #[test]
    fn record_sets_compare_as_sets() {
        let a = RecordSet::new(
            "API.example.com.",
            RecordType::A,
            300,
            ["192.0.2.2", "192.0.2.1"],
        )
        .unwrap();
        let b = RecordSet::new(
            "api.example.com",
            RecordType::A,
            300,
            ["192.0.2.1", "192.0.2.2", "192.0.2.1"],
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.name, "api.example.com");
        assert_eq!(
            a.zone_lines(),
            [
                "api.example.com. 300 IN A 192.0.2.1",
                "api.example.com. 300 IN A 192.0.2.2"
            ]
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(normalize_name("a..b").is_err());
        assert!(normalize_name(&format!("{}.com", "a".repeat(64))).is_err());
        assert_eq!(normalize_name("*.Example.com.").unwrap(), "*.example.com");
    }

    #[test]
    fn desired_records_from_the_model() {
        use cairn_model::ResourceId;
        let res = |name: &str, t: &str, values: &[&str]| Resource {
            id: ResourceId::other(
                Provider::Dns,
                "DnsRecord",
                Some("example.com"),
                &format!("{name} {t}"),
            ),
            body: Value::obj([
                ("zone", Value::str("example.com")),
                ("name", Value::str(name)),
                ("type", Value::str(t)),
                ("ttl", Value::Int(60)),
                (
                    "values",
                    Value::Array(values.iter().map(|v| Value::str(*v)).collect()),
                ),
            ]),
            depends_on: vec![],
            protected: false,
            span: None,
            field_spans: Default::default(),
        };
        let rs = [
            res("example.com", "MX", &["10 mail.example.com."]),
            res("api.example.com", "A", &["192.0.2.1"]),
        ];
        let d = desired_records(&rs, "example.com.").unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].name, "api.example.com");
        assert_eq!(d[1].values, ["10 mail.example.com."]);
        let other = desired_records(&rs, "example.org").unwrap();
        assert!(other.is_empty());
    }
}
