//! The one rule for DNS record values: what a value of each record type may be, and the
//! normalized text two values are compared by.
//!
//! The stdlib checks values with it at declaration (for diagnostics at the script's span) and
//! `cairn-dns` normalizes desired records with it before planning, so a value the script may
//! declare is exactly a value the DNS provider accepts.
//!
//! The rule is the union of what the two checked before: the DNS provider's parsing (numbers,
//! field counts, quotes, TXT length) plus the declaration checks (targets are host names by
//! [`dns_name`], CAA tags are `issue`, `issuewild` or `iodef`, values are not empty, addresses
//! carry no surrounding whitespace). The null target `.` is allowed for MX only (RFC 7505).

use std::fmt;

use crate::validate::{Invalid, dns_name, ipv4, ipv6};

/// Why a record value is invalid: `reason` in the DNS provider's words, `detail` the full
/// validation message where one exists (an address or a host name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct RecordValueError {
    /// Why, as a short phrase (`not an IPv4 address`).
    pub reason: String,
    /// The message of the address or host name check that failed, when one did.
    #[source]
    pub detail: Option<Invalid>,
}

impl RecordValueError {
    fn new(reason: impl fmt::Display) -> RecordValueError {
        RecordValueError {
            reason: reason.to_string(),
            detail: None,
        }
    }

    fn with(reason: impl fmt::Display, detail: Invalid) -> RecordValueError {
        RecordValueError {
            reason: reason.to_string(),
            detail: Some(detail),
        }
    }

    /// The most precise message: the detail when there is one, else the reason.
    pub fn message(&self) -> &str {
        self.detail.as_ref().map_or(&self.reason, |d| &d.0)
    }
}

/// Checks one value of a record of type `rtype` (a mnemonic, upper case: `A`, `AAAA`, `CNAME`,
/// `TXT`, `MX`, `SRV`, `CAA`; any other type only needs a value) and returns its normalized text:
///
/// - A: dotted quad; AAAA: canonical RFC 5952 text (`2001:db8::1`).
/// - CNAME: the target, lower case with a trailing dot.
/// - MX: `PREFERENCE target.`; SRV: `PRIORITY WEIGHT PORT target.`.
/// - TXT: the text itself, unquoted; a value written as quoted strings (`"a" "b"`) is the
///   concatenation of the strings.
/// - CAA: `FLAGS tag "value"` with the tag lower case.
pub fn normalize_value(rtype: &str, value: &str) -> Result<String, RecordValueError> {
    match rtype {
        "A" => ipv4(value)
            .map(|a| a.to_string())
            .map_err(|e| RecordValueError::with("not an IPv4 address", e)),
        "AAAA" => ipv6(value)
            .map(|a| a.to_string())
            .map_err(|e| RecordValueError::with("not an IPv6 address", e)),
        "CNAME" => cname(value),
        "MX" => mx(value),
        "SRV" => srv(value),
        "TXT" => txt(value),
        "CAA" => caa(value),
        _ if value.is_empty() => Err(RecordValueError::new("the value is empty")),
        _ => Ok(value.trim().to_owned()),
    }
}

fn cname(value: &str) -> Result<String, RecordValueError> {
    if value.split_whitespace().count() != 1 {
        let e = dns_name(value, false, true).err();
        return Err(RecordValueError {
            reason: "expected one host name".to_owned(),
            detail: e,
        });
    }
    target(value, true, false)
}

fn mx(value: &str) -> Result<String, RecordValueError> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    let [pref, host] = fields[..] else {
        return Err(RecordValueError::new("expected `PREFERENCE TARGET`"));
    };
    Ok(format!(
        "{} {}",
        number(pref, "preference")?,
        target(host, false, true)?
    ))
}

fn srv(value: &str) -> Result<String, RecordValueError> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    let [prio, weight, port, host] = fields[..] else {
        return Err(RecordValueError::new(
            "expected `PRIORITY WEIGHT PORT TARGET`",
        ));
    };
    Ok(format!(
        "{} {} {} {}",
        number(prio, "priority")?,
        number(weight, "weight")?,
        number(port, "port")?,
        target(host, false, false)?
    ))
}

fn txt(value: &str) -> Result<String, RecordValueError> {
    if value.is_empty() {
        return Err(RecordValueError::new("the value is empty"));
    }
    let text = if value.trim_start().starts_with('"') {
        unquote_strings(value).ok_or_else(|| RecordValueError::new("unbalanced quotes"))?
    } else {
        value.to_owned()
    };
    if text.len() > 4000 {
        return Err(RecordValueError::new("TXT data longer than 4000 bytes"));
    }
    Ok(text)
}

fn caa(value: &str) -> Result<String, RecordValueError> {
    let mut parts = value.splitn(3, char::is_whitespace);
    let (Some(flags), Some(tag), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(RecordValueError::new("expected `FLAGS TAG \"VALUE\"`"));
    };
    let flags: u8 = flags
        .parse()
        .map_err(|_| RecordValueError::new("the flags are not a number from 0 to 255"))?;
    if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(RecordValueError::new("the tag must be letters and digits"));
    }
    let tag = tag.to_ascii_lowercase();
    if !matches!(tag.as_str(), "issue" | "issuewild" | "iodef") {
        return Err(RecordValueError::new(
            "the tag must be issue, issuewild or iodef",
        ));
    }
    let rest = rest.trim();
    let v = if rest.starts_with('"') {
        unquote_strings(rest).ok_or_else(|| RecordValueError::new("unbalanced quotes"))?
    } else {
        rest.to_owned()
    };
    Ok(format!("{flags} {tag} {}", quote(&v)))
}

fn number(s: &str, what: &str) -> Result<u16, RecordValueError> {
    s.parse::<u16>()
        .map_err(|_| RecordValueError::new(format!("the {what} is not a number from 0 to 65535")))
}

/// A target host name (CNAME, MX, SRV), lower case and absolute (trailing dot). A target
/// written without a trailing dot is taken as already fully qualified, as the record names of
/// the model are. `.` (no host) only where `allow_root`.
fn target(host: &str, underscore: bool, allow_root: bool) -> Result<String, RecordValueError> {
    if host == "." && allow_root {
        return Ok(".".to_owned());
    }
    dns_name(host, false, underscore)
        .map_err(|e| RecordValueError::with("the target is not a host name", e))?;
    Ok(format!(
        "{}.",
        host.trim_end_matches('.').to_ascii_lowercase()
    ))
}

/// Quotes text as one zone-file character-string (`"` and `\` escaped).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Parses a sequence of quoted strings (`"a" "b\"c"`), with `\X` and `\DDD` escapes, into the
/// concatenation of their contents; `None` when quotes do not balance.
fn unquote_strings(s: &str) -> Option<String> {
    let mut out: Vec<u8> = Vec::new();
    let bytes = s.trim().as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' => i += 1,
            b'"' => i = quoted_string(bytes, i + 1, &mut out)?,
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Reads one quoted string's contents from `i` (after its opening quote) into `out`; returns
/// the index after its closing quote.
fn quoted_string(bytes: &[u8], mut i: usize, out: &mut Vec<u8>) -> Option<usize> {
    loop {
        match *bytes.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => {
                let next = *bytes.get(i + 1)?;
                if next.is_ascii_digit() {
                    let digits = bytes.get(i + 1..i + 4)?;
                    out.push(std::str::from_utf8(digits).ok()?.parse().ok()?);
                    i += 4;
                } else {
                    out.push(next);
                    i += 2;
                }
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ok(t: &str, v: &str) -> String {
        normalize_value(t, v).unwrap()
    }

    fn reason(t: &str, v: &str) -> String {
        normalize_value(t, v).unwrap_err().reason
    }

    #[test]
    fn values_of_each_type() {
        assert_eq!(ok("A", "192.0.2.1"), "192.0.2.1");
        assert_eq!(ok("AAAA", "2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
        assert_eq!(ok("CNAME", "WWW.Example.COM"), "www.example.com.");
        assert_eq!(ok("CNAME", "_x.example.com."), "_x.example.com.");
        assert_eq!(ok("MX", "10   Mail.Example.com"), "10 mail.example.com.");
        assert_eq!(ok("MX", "0 ."), "0 .");
        assert_eq!(
            ok("SRV", "10 5 5060 SIP.example.com."),
            "10 5 5060 sip.example.com."
        );
        assert_eq!(ok("TXT", "\"a\" \"b\""), "ab");
        assert_eq!(
            ok("CAA", "0 ISSUE letsencrypt.org"),
            "0 issue \"letsencrypt.org\""
        );
    }

    #[test]
    fn the_stricter_rule_of_each_type() {
        assert_eq!(reason("A", " 192.0.2.1"), "not an IPv4 address");
        assert_eq!(reason("CNAME", "a b"), "expected one host name");
        assert_eq!(reason("CNAME", "."), "the target is not a host name");
        assert_eq!(
            reason("MX", "10 _m.example.com."),
            "the target is not a host name"
        );
        assert_eq!(reason("SRV", "1 2 3 ."), "the target is not a host name");
        assert_eq!(
            reason("SRV", "1 2 70000 s.example.com."),
            "the port is not a number from 0 to 65535"
        );
        assert_eq!(reason("TXT", ""), "the value is empty");
        assert_eq!(reason("TXT", "\"open"), "unbalanced quotes");
        assert_eq!(
            reason("CAA", "0 contact x"),
            "the tag must be issue, issuewild or iodef"
        );
        assert_eq!(reason("CAA", "0 issue \"x"), "unbalanced quotes");
        assert_eq!(reason("SPF", ""), "the value is empty");
        let e = normalize_value("A", "1.2.3").unwrap_err();
        assert!(e.message().starts_with("invalid IPv4 address \"1.2.3\""));
    }
}
