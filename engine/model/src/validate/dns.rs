//! Public DNS names for records and certificates, and which names a certificate covers.

use super::Invalid;

/// A public DNS name for records and certificates, absolute (`example.com.`) or relative
/// (`www`): labels of 1-63 letters, digits and hyphens, not starting or ending with a hyphen,
/// at most 253 characters without the trailing dot; case is not significant.
///
/// With `allow_wildcard`, the first label may be exactly `*` (`*.example.com`). With
/// `allow_underscore`, a label may start with one underscore (`_acme-challenge`, `_dmarc`,
/// `_sip._tcp`).
pub fn dns_name(s: &str, allow_wildcard: bool, allow_underscore: bool) -> Result<(), Invalid> {
    let invalid = |reason: String| Invalid(format!("invalid DNS name {s:?}: {reason}"));
    if s.is_empty() {
        return Err(invalid("must not be empty".to_string()));
    }
    let body = s.strip_suffix('.').unwrap_or(s);
    if body.is_empty() {
        return Err(invalid("must contain at least one label".to_string()));
    }
    if body.len() > 253 {
        return Err(invalid(format!(
            "must be at most 253 characters (found {})",
            body.len()
        )));
    }
    for (i, label) in body.split('.').enumerate() {
        if label.is_empty() {
            return Err(invalid(if i == 0 {
                "must not start with '.'".to_string()
            } else {
                "must not contain empty labels (consecutive dots)".to_string()
            }));
        }
        if label.contains('*') {
            if !allow_wildcard {
                return Err(invalid("wildcards ('*') are not allowed here".to_string()));
            }
            if label != "*" || i != 0 {
                return Err(invalid(
                    "'*' is only allowed as the whole first label, as in *.example.com".to_string(),
                ));
            }
            continue;
        }
        if label.len() > 63 {
            return Err(invalid(format!(
                "label {label:?} is longer than 63 characters (found {})",
                label.len()
            )));
        }
        let rest = match label.strip_prefix('_') {
            Some(rest) if allow_underscore => rest,
            Some(_) => {
                return Err(invalid(format!(
                    "label {label:?} contains '_'; underscores are not allowed here"
                )));
            }
            None => label,
        };
        if rest.is_empty() {
            return Err(invalid(format!(
                "label {label:?} must have letters or digits after '_'"
            )));
        }
        if let Some(c) = rest
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(invalid(if c == '_' && allow_underscore {
                format!(
                    "label {label:?} contains '_'; an underscore is only allowed as the first \
                     character of a label, as in _acme-challenge"
                )
            } else if c == '_' {
                format!("label {label:?} contains '_'; underscores are not allowed here")
            } else {
                format!(
                    "label {label:?} contains invalid character {c:?}; only letters, digits and \
                     '-' are allowed"
                )
            }));
        }
        if rest.starts_with('-') {
            return Err(invalid(format!("label {label:?} must not start with '-'")));
        }
        if rest.ends_with('-') {
            return Err(invalid(format!("label {label:?} must not end with '-'")));
        }
    }
    Ok(())
}

/// Whether certificate name `pattern` (possibly a wildcard `*.base`, which covers exactly one
/// label under `base`) covers `host`. Case-insensitive.
pub fn name_covers(pattern: &str, host: &str) -> bool {
    let (pattern, host) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    match pattern.strip_prefix("*.") {
        Some(base) => host
            .strip_suffix(base)
            .and_then(|rest| rest.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        None => pattern == host,
    }
}

#[allow(clippy::unwrap_used)]
#[cfg(test)]
mod tests {
    use super::*;

    fn err<T: std::fmt::Debug>(r: Result<T, Invalid>) -> String {
        r.unwrap_err().0
    }

    #[test]
    fn dns_names() {
        for s in [
            "example.com",
            "example.com.",
            "www",
            "WWW.Example.COM",
            "a-b.c",
            "1.2.3.4.in-addr.arpa",
            &format!("{}.com", "a".repeat(63)),
        ] {
            assert!(dns_name(s, false, false).is_ok(), "{s}");
        }
        assert!(dns_name("*.example.com", true, false).is_ok());
        assert!(dns_name("*", true, false).is_ok());
        assert!(dns_name("_acme-challenge.example.com", false, true).is_ok());
        assert!(dns_name("_sip._tcp.example.com.", false, true).is_ok());
        assert!(dns_name("*._tcp.example.com", true, true).is_ok());

        assert!(err(dns_name("", true, true)).contains("must not be empty"));
        assert!(err(dns_name(".", true, true)).contains("at least one label"));
        assert!(err(dns_name("..", true, true)).contains("must not start with '.'"));
        assert!(err(dns_name("a..b", true, true)).contains("consecutive dots"));
        assert!(
            err(dns_name("-a.com", true, true)).contains(r#"label "-a" must not start with '-'"#)
        );
        assert!(err(dns_name("a-.com", true, true)).contains("must not end with '-'"));
        assert!(
            err(dns_name("a_b.com", true, true))
                .contains("an underscore is only allowed as the first character of a label")
        );
        assert!(err(dns_name("_dmarc.a.com", true, false)).contains("underscores are not allowed"));
        assert!(err(dns_name("_.a.com", true, true)).contains("after '_'"));
        assert!(err(dns_name("*.*.a.com", true, true)).contains("whole first label"));
        assert!(err(dns_name("a.*.com", true, true)).contains("whole first label"));
        assert!(err(dns_name("*a.com", true, true)).contains("whole first label"));
        assert!(err(dns_name("*.a.com", false, true)).contains("wildcards ('*') are not allowed"));
        assert!(err(dns_name("a b.com", true, true)).contains("invalid character ' '"));
        assert!(
            err(dns_name(&format!("{}.com", "a".repeat(64)), true, true))
                .contains("longer than 63 characters (found 64)")
        );
        let long = vec!["abcdefghi"; 26].join("."); // 259 characters
        assert!(err(dns_name(&long, true, true)).contains("at most 253 characters"));
    }
}
