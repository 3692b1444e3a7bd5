//! S3 general purpose bucket names, with the rules S3 itself enforces (the stricter set: the
//! stdlib checks a script's `backups: s3(...)` with the same rule `cairn-s3` applies at apply
//! time).

use std::net::Ipv4Addr;

/// Why a name is not a valid S3 bucket name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BucketNameError {
    /// Wrong length, characters or first and last characters.
    #[error(
        "invalid bucket name \"{0}\": 3-63 lowercase letters, digits, dots and hyphens, starting \
         and ending with a letter or digit"
    )]
    Shape(String),
    /// `..`, `.-` or `-.`.
    #[error("invalid bucket name \"{0}\": no two adjacent dots, nor a dot next to a hyphen")]
    AdjacentPunctuation(String),
    /// A dotted-decimal IPv4 address.
    #[error("invalid bucket name \"{0}\": a bucket name cannot look like an IP address")]
    IpAddress(String),
    /// A prefix S3 reserves.
    #[error("invalid bucket name \"{name}\": the prefix {prefix} is reserved")]
    ReservedPrefix {
        /// The name.
        name: String,
        /// The reserved prefix it starts with.
        prefix: &'static str,
    },
    /// A suffix S3 reserves.
    #[error("invalid bucket name \"{name}\": the suffix {suffix} is reserved")]
    ReservedSuffix {
        /// The name.
        name: String,
        /// The reserved suffix it ends with.
        suffix: &'static str,
    },
}

/// Prefixes S3 reserves for its own use.
const RESERVED_PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
/// Suffixes S3 reserves (access point aliases, Object Lambda, directory and table buckets).
const RESERVED_SUFFIXES: [&str; 5] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];

/// An S3 general purpose bucket name: 3-63 lowercase letters, digits, dots and hyphens, starting
/// and ending with a letter or digit, no `..`, `.-` or `-.`, not an IPv4 address, and none of
/// the prefixes and suffixes S3 reserves.
pub fn bucket_name(name: &str) -> Result<(), BucketNameError> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let edges = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !(3..=63).contains(&name.len()) || !ok_chars || !edges {
        return Err(BucketNameError::Shape(name.to_owned()));
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return Err(BucketNameError::AdjacentPunctuation(name.to_owned()));
    }
    if name.parse::<Ipv4Addr>().is_ok() {
        return Err(BucketNameError::IpAddress(name.to_owned()));
    }
    if let Some(prefix) = RESERVED_PREFIXES.into_iter().find(|p| name.starts_with(p)) {
        return Err(BucketNameError::ReservedPrefix {
            name: name.to_owned(),
            prefix,
        });
    }
    if let Some(suffix) = RESERVED_SUFFIXES.into_iter().find(|s| name.ends_with(s)) {
        return Err(BucketNameError::ReservedSuffix {
            name: name.to_owned(),
            suffix,
        });
    }
    Ok(())
}

#[allow(clippy::unwrap_used)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "acme-backup-staging", "a.b.c", "0ab"] {
            assert!(bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "Acme",
            "-abc",
            "abc-",
            "a..b",
            "a_b",
            "192.168.1.1",
            "xn--abc",
            "abc-s3alias",
            &"a".repeat(64),
        ] {
            assert!(bucket_name(bad).is_err(), "{bad}");
        }
    }

    /// The stdlib's own rule used to accept these, and S3 refused them only at apply time.
    #[test]
    fn names_s3_rejects_are_rejected_at_plan_time() {
        assert_eq!(
            bucket_name("192.168.1.1").map_err(|e| e.to_string()),
            Err(
                "invalid bucket name \"192.168.1.1\": a bucket name cannot look like an IP address"
                    .to_owned()
            )
        );
        assert_eq!(
            bucket_name("a.-b").map_err(|e| e.to_string()),
            Err(
                "invalid bucket name \"a.-b\": no two adjacent dots, nor a dot next to a hyphen"
                    .to_owned()
            )
        );
        assert!(matches!(
            bucket_name("xn--backups"),
            Err(BucketNameError::ReservedPrefix { prefix: "xn--", .. })
        ));
        assert!(matches!(
            bucket_name("backups--x-s3"),
            Err(BucketNameError::ReservedSuffix { .. })
        ));
    }

    #[test]
    fn messages_are_those_of_cairn_s3() {
        assert_eq!(
            bucket_name("ab").unwrap_err().to_string(),
            "invalid bucket name \"ab\": 3-63 lowercase letters, digits, dots and hyphens, \
             starting and ending with a letter or digit"
        );
        assert_eq!(
            bucket_name("sthree-x").unwrap_err().to_string(),
            "invalid bucket name \"sthree-x\": the prefix sthree- is reserved"
        );
        assert_eq!(
            bucket_name("a.mrap").unwrap_err().to_string(),
            "invalid bucket name \"a.mrap\": the suffix .mrap is reserved"
        );
    }
}
