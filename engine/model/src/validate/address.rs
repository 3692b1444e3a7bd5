//! IP address literals for A and AAAA records.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::Invalid;

/// An IPv4 address literal for A records, in dotted-decimal form without leading zeros
/// (`192.0.2.1`).
pub fn ipv4(s: &str) -> Result<Ipv4Addr, Invalid> {
    if let Ok(addr) = s.parse::<Ipv4Addr>() {
        return Ok(addr);
    }
    let invalid = |reason: String| Invalid(format!("invalid IPv4 address {s:?}: {reason}"));
    let expected = "expected four numbers 0-255 separated by dots, as in 192.0.2.1";
    if s.is_empty() {
        return Err(invalid(format!("empty value; {expected}")));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(invalid("must not contain whitespace".to_string()));
    }
    if s.contains('/') {
        return Err(invalid(
            "must be a single address, not a CIDR range".to_string(),
        ));
    }
    if s.parse::<Ipv6Addr>().is_ok() {
        return Err(invalid(
            "this is an IPv6 address; use an AAAA record for it".to_string(),
        ));
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return Err(invalid(format!(
            "{expected}; found {} part{}",
            parts.len(),
            if parts.len() == 1 { "" } else { "s" }
        )));
    }
    for part in parts {
        if part.is_empty() {
            return Err(invalid(format!("empty number; {expected}")));
        }
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(format!(
                "{part:?} is not a decimal number; {expected}"
            )));
        }
        if part.len() > 1 && part.starts_with('0') {
            return Err(invalid(format!(
                "{part:?} has a leading zero, which is ambiguous (octal); write it without"
            )));
        }
        if part.parse::<u8>().is_err() {
            return Err(invalid(format!("{part} is out of range 0-255")));
        }
    }
    Err(invalid(expected.to_string()))
}

/// An IPv6 address literal for AAAA records (`2001:db8::1`, `::ffff:192.0.2.1`), without
/// brackets, zone index or prefix length.
pub fn ipv6(s: &str) -> Result<Ipv6Addr, Invalid> {
    if let Ok(addr) = s.parse::<Ipv6Addr>() {
        return Ok(addr);
    }
    let invalid = |reason: &str| Invalid(format!("invalid IPv6 address {s:?}: {reason}"));
    if s.is_empty() {
        return Err(invalid(
            "empty value; expected an address such as 2001:db8::1",
        ));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(invalid("must not contain whitespace"));
    }
    if s.starts_with('[') || s.ends_with(']') {
        return Err(invalid("must be written without brackets"));
    }
    if s.contains('/') {
        return Err(invalid("must be a single address, not a CIDR range"));
    }
    if s.contains('%') {
        return Err(invalid("must not have a zone index ('%...')"));
    }
    if s.parse::<Ipv4Addr>().is_ok() {
        return Err(invalid("this is an IPv4 address; use an A record for it"));
    }
    if s.matches("::").count() > 1 {
        return Err(invalid("'::' may appear only once"));
    }
    Err(invalid(
        "expected up to eight groups of 1-4 hex digits separated by ':', with '::' standing \
         for a run of zero groups, as in 2001:db8::1",
    ))
}

#[allow(clippy::unwrap_used)]
#[cfg(test)]
mod tests {
    use super::*;

    fn err<T: std::fmt::Debug>(r: Result<T, Invalid>) -> String {
        r.unwrap_err().0
    }

    #[test]
    fn ip_addresses() {
        assert_eq!(ipv4("192.0.2.1").unwrap(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(ipv4("0.0.0.0").unwrap(), Ipv4Addr::UNSPECIFIED);
        assert!(err(ipv4("")).contains("empty value"));
        assert!(err(ipv4("1.2.3")).contains("found 3 parts"));
        assert!(err(ipv4("1.2.3.256")).contains("256 is out of range 0-255"));
        assert!(err(ipv4("1.2.3.04")).contains("leading zero"));
        assert!(err(ipv4("1.2..4")).contains("empty number"));
        assert!(err(ipv4("1.2.3.x")).contains(r#""x" is not a decimal number"#));
        assert!(err(ipv4("10.0.0.0/8")).contains("not a CIDR range"));
        assert!(err(ipv4("::1")).contains("use an AAAA record"));
        assert!(err(ipv4(" 1.2.3.4")).contains("whitespace"));

        assert_eq!(
            ipv6("2001:db8::1").unwrap(),
            "2001:db8::1".parse::<Ipv6Addr>().unwrap()
        );
        assert!(ipv6("::").is_ok());
        assert!(ipv6("::ffff:192.0.2.1").is_ok());
        assert!(ipv6("2001:DB8:0:0:0:0:0:1").is_ok());
        assert!(err(ipv6("")).contains("empty value"));
        assert!(err(ipv6("[::1]")).contains("without brackets"));
        assert!(err(ipv6("fe80::1%eth0")).contains("zone index"));
        assert!(err(ipv6("2001:db8::/32")).contains("CIDR"));
        assert!(err(ipv6("192.0.2.1")).contains("use an A record"));
        assert!(err(ipv6("1::2::3")).contains("'::' may appear only once"));
        assert!(err(ipv6("12345::")).contains("groups of 1-4 hex digits"));
        assert!(err(ipv6("1:2:3:4:5:6:7:8:9")).contains("groups of 1-4 hex digits"));
    }
}
