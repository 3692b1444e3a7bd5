//! Container image references (the distribution/reference grammar).

use super::Invalid;

/// A parsed container image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The repository name, with its registry host if one was given (`ghcr.io/org/app`,
    /// `nginx`).
    pub name: String,
    /// The tag after `:`, if any (`1.27`).
    pub tag: Option<String>,
    /// The digest after `@`, if any (`sha256:...`).
    pub digest: Option<String>,
}

/// Why part of an image reference is invalid (the text after `invalid image reference "...": `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ImageError {
    /// `nginx:`.
    #[error("tag after ':' must not be empty")]
    EmptyTag,
    /// A tag longer than 128 characters; holds its length.
    #[error("tag must be at most 128 characters (found {0})")]
    TagTooLong(usize),
    /// A tag with a character outside `[A-Za-z0-9_.-]`.
    #[error(
        "tag {tag:?} contains invalid character {c:?}; only letters, digits, '_', '.' and '-' \
         are allowed"
    )]
    TagChar {
        /// The tag.
        tag: String,
        /// The first invalid character.
        c: char,
    },
    /// A tag starting with `.` or `-`.
    #[error("tag {0:?} must start with a letter, digit or '_'")]
    TagStart(String),
    /// `a@b@c`.
    #[error("must contain at most one '@'")]
    SecondAt,
    /// A digest without `algorithm:`.
    #[error("digest {0:?} has no ':'; expected a digest such as sha256:<64 hex digits> after '@'")]
    DigestNoColon(String),
    /// A digest algorithm other than sha256, sha384 and sha512.
    #[error("unsupported digest algorithm {0:?}; expected sha256, sha384 or sha512")]
    DigestAlgorithm(String),
    /// A digest with a character that is not a hex digit.
    #[error("digest contains {0:?}, which is not a hex digit")]
    DigestNotHex(char),
    /// A digest in uppercase hex.
    #[error("digest must use lowercase hex digits")]
    DigestUppercase,
    /// A digest of the wrong length for its algorithm.
    #[error("{algorithm} digest must have {len} hex digits (found {found})")]
    DigestLength {
        /// The algorithm.
        algorithm: String,
        /// The length it needs.
        len: usize,
        /// The length it has.
        found: usize,
    },
    /// Nothing before the tag or digest.
    #[error("repository name must not be empty")]
    EmptyName,
    /// A name longer than 255 characters; holds its length.
    #[error("repository name must be at most 255 characters (found {0})")]
    NameTooLong(usize),
    /// `[::1` without `]`.
    #[error("registry {0:?} has an unclosed '['")]
    UnclosedBracket(String),
    /// Something other than hex digits and `:` between brackets.
    #[error("registry {0:?} has an invalid IPv6 address between brackets")]
    BadIpv6(String),
    /// Something other than `:port` after `]`.
    #[error("registry {0:?} has junk after ']'")]
    JunkAfterBracket(String),
    /// A registry host that is not a host name.
    #[error(
        "registry host {0:?} is not a valid host name; expected letters, digits and '-' in \
         dot-separated parts"
    )]
    BadHost(String),
    /// A registry port that is not a number.
    #[error("registry port {0:?} must be a number")]
    BadPort(String),
    /// `a//b`, `/a`, `a/`.
    #[error(
        "repository path must not contain empty components ('//' or a leading or trailing '/')"
    )]
    EmptyComponent,
    /// An uppercase letter in the repository path.
    #[error("repository path must be lowercase (found {c:?} in {component:?})")]
    UppercasePath {
        /// The letter.
        c: char,
        /// The path component it is in.
        component: String,
    },
    /// Separators other than `.`, `_`, `__` or runs of `-` between letters and digits.
    #[error(
        "path component {0:?} must be lowercase letters and digits joined by '.', '_', '__' or \
         '-', starting and ending with a letter or digit"
    )]
    BadSeparator(String),
    /// A character that is neither a lowercase letter, a digit nor a separator.
    #[error(
        "repository path contains invalid character {0:?}; only lowercase letters, digits, '.', \
         '_' and '-' are allowed"
    )]
    PathChar(char),
}

/// Container image reference: `[registry[:port]/]path[:tag][@algorithm:hex]`, following the
/// distribution/reference grammar: lowercase path components of letters and digits joined by
/// `.`, `_`, `__` or runs of `-`; tags of up to 128 `[A-Za-z0-9_.-]` not starting with `.` or
/// `-`; names of at most 255 characters; digests `sha256:` + 64, `sha384:` + 96 or `sha512:`
/// + 128 lowercase hex digits.
pub fn image_ref(s: &str) -> Result<ImageRef, Invalid> {
    let invalid = |reason: String| Invalid(format!("invalid image reference {s:?}: {reason}"));
    if s.is_empty() {
        return Err(invalid("must not be empty".to_string()));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(invalid("must not contain whitespace".to_string()));
    }
    let (name_tag, digest) = match s.split_once('@') {
        Some((name_tag, digest)) => (name_tag, Some(digest)),
        None => (s, None),
    };
    if let Some(digest) = digest {
        image_digest(digest).map_err(|e| invalid(e.to_string()))?;
    }
    let last_slash = name_tag.rfind('/');
    let (name, tag) = match name_tag.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => (
            name_tag.get(..colon).unwrap_or_default(),
            Some(name_tag.get(colon + 1..).unwrap_or_default()),
        ),
        _ => (name_tag, None),
    };
    if let Some(tag) = tag {
        image_tag(tag).map_err(|e| invalid(e.to_string()))?;
    }
    image_name(name).map_err(|e| invalid(e.to_string()))?;
    Ok(ImageRef {
        name: name.to_string(),
        tag: tag.map(str::to_string),
        digest: digest.map(str::to_string),
    })
}

/// Checks an image tag.
fn image_tag(tag: &str) -> Result<(), ImageError> {
    if tag.is_empty() {
        return Err(ImageError::EmptyTag);
    }
    if tag.len() > 128 {
        return Err(ImageError::TagTooLong(tag.len()));
    }
    if let Some(c) = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(ImageError::TagChar {
            tag: tag.to_owned(),
            c,
        });
    }
    if tag.starts_with(['.', '-']) {
        return Err(ImageError::TagStart(tag.to_owned()));
    }
    Ok(())
}

/// Checks an image digest (`sha256:<64 hex digits>`).
fn image_digest(digest: &str) -> Result<(), ImageError> {
    if digest.contains('@') {
        return Err(ImageError::SecondAt);
    }
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(ImageError::DigestNoColon(digest.to_owned()));
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(ImageError::DigestAlgorithm(algorithm.to_owned()));
        }
    };
    if let Some(c) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(ImageError::DigestNotHex(c));
    }
    if hex.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ImageError::DigestUppercase);
    }
    if hex.len() != len {
        return Err(ImageError::DigestLength {
            algorithm: algorithm.to_owned(),
            len,
            found: hex.len(),
        });
    }
    Ok(())
}

/// Checks an image name: `[registry[:port]/]path`.
fn image_name(name: &str) -> Result<(), ImageError> {
    if name.is_empty() {
        return Err(ImageError::EmptyName);
    }
    if name.len() > 255 {
        return Err(ImageError::NameTooLong(name.len()));
    }
    if let Some((first, path)) = name.split_once('/') {
        let looks_like_registry = first.contains(['.', ':'])
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase());
        if looks_like_registry {
            let domain_result = image_domain(first).and_then(|()| image_path(path));
            // The grammar also accepts the whole name as a path (`a_b.c/d`).
            return match domain_result {
                Ok(()) => Ok(()),
                Err(problem) => image_path(name).map_err(|_| problem),
            };
        }
    }
    image_path(name)
}

/// Checks a registry host with an optional port.
fn image_domain(domain: &str) -> Result<(), ImageError> {
    let (host, port) = if let Some(inner) = domain.strip_prefix('[') {
        let Some((address, after)) = inner.split_once(']') else {
            return Err(ImageError::UnclosedBracket(domain.to_owned()));
        };
        if address.is_empty() || !address.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(ImageError::BadIpv6(domain.to_owned()));
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return Err(ImageError::JunkAfterBracket(domain.to_owned())),
            },
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        for component in host.split('.') {
            let ok = !component.is_empty()
                && component
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !component.starts_with('-')
                && !component.ends_with('-');
            if !ok {
                return Err(ImageError::BadHost(host.to_owned()));
            }
        }
    }
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ImageError::BadPort(port.to_owned()));
    }
    Ok(())
}

/// Checks a repository path: `component(/component)*`.
fn image_path(path: &str) -> Result<(), ImageError> {
    for component in path.split('/') {
        image_path_component(component)?;
    }
    Ok(())
}

/// Checks one path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn image_path_component(component: &str) -> Result<(), ImageError> {
    if component.is_empty() {
        return Err(ImageError::EmptyComponent);
    }
    if let Some(c) = component.chars().find(char::is_ascii_uppercase) {
        return Err(ImageError::UppercasePath {
            c,
            component: component.to_owned(),
        });
    }
    let bad_separator = || ImageError::BadSeparator(component.to_owned());
    let bytes = component.as_bytes();
    let alnum = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let mut i = 0;
    loop {
        if !alnum(bytes.get(i)) {
            let found = component.get(i..).and_then(|rest| rest.chars().next());
            return Err(match found {
                Some(c) if !matches!(c, '.' | '_' | '-') => ImageError::PathChar(c),
                _ => bad_separator(),
            });
        }
        while alnum(bytes.get(i)) {
            i += 1;
        }
        match bytes.get(i) {
            None => return Ok(()),
            Some(b'.') => i += 1,
            Some(b'_') => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            Some(b'-') => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            Some(_) => {
                let c = component
                    .get(i..)
                    .and_then(|rest| rest.chars().next())
                    .unwrap_or('?');
                return Err(ImageError::PathChar(c));
            }
        }
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
    fn image_refs() {
        let sha = "a".repeat(64);
        let r = image_ref("nginx").unwrap();
        assert_eq!(
            r,
            ImageRef {
                name: "nginx".into(),
                tag: None,
                digest: None
            }
        );
        let r = image_ref("nginx:1.27-alpine").unwrap();
        assert_eq!(r.name, "nginx");
        assert_eq!(r.tag.as_deref(), Some("1.27-alpine"));
        let r = image_ref("localhost:5000/team/app:v1.2.3").unwrap();
        assert_eq!(r.name, "localhost:5000/team/app");
        assert_eq!(r.tag.as_deref(), Some("v1.2.3"));
        let r = image_ref(&format!("ghcr.io/org/app:1.0@sha256:{sha}")).unwrap();
        assert_eq!(r.name, "ghcr.io/org/app");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.digest, Some(format!("sha256:{sha}")));
        let r = image_ref(&format!("busybox@sha256:{sha}")).unwrap();
        assert_eq!((r.tag, r.name.as_str()), (None, "busybox"));
        for s in [
            "library/ubuntu:22.04",
            "registry.example.com:443/a/b/c",
            "my_org/my__app",
            "a.b-c---d/e",
            "a_b.c/d",
            "[::1]:5000/app",
            "Registry.Example.com/app",
            "app:_latest",
            "app:V1",
        ] {
            assert!(image_ref(s).is_ok(), "{s}: {:?}", image_ref(s));
        }

        assert!(err(image_ref("")).contains("must not be empty"));
        assert!(err(image_ref("nginx :1")).contains("whitespace"));
        assert_eq!(
            err(image_ref("myorg/myApp:1")),
            "invalid image reference \"myorg/myApp:1\": repository path must be lowercase \
             (found 'A' in \"myApp\")"
        );
        assert!(err(image_ref("nginx:")).contains("tag after ':' must not be empty"));
        assert!(err(image_ref("nginx:a+b")).contains("invalid character '+'"));
        assert!(err(image_ref("nginx:-a")).contains("must start with a letter, digit or '_'"));
        assert!(err(image_ref(&format!("nginx:{}", "a".repeat(129)))).contains("at most 128"));
        assert!(err(image_ref("nginx@sha256:abc")).contains("must have 64 hex digits (found 3)"));
        assert!(err(image_ref("nginx@md5:abc")).contains("unsupported digest algorithm"));
        assert!(err(image_ref("nginx@sha256")).contains("has no ':'"));
        assert!(err(image_ref(&format!("nginx@sha256:{}", "A".repeat(64)))).contains("lowercase"));
        assert!(err(image_ref(&format!("nginx@sha256:{}", "g".repeat(64)))).contains("not a hex"));
        assert!(err(image_ref("a@b@c")).contains("at most one '@'"));
        assert!(err(image_ref("a//b")).contains("empty components"));
        assert!(err(image_ref("/a")).contains("empty components"));
        assert!(err(image_ref("a..b")).contains("joined by"));
        assert!(err(image_ref("a___b")).contains("joined by"));
        assert!(err(image_ref("-a")).contains("joined by"));
        assert!(err(image_ref("a-")).contains("joined by"));
        assert!(err(image_ref("a$b")).contains("invalid character '$'"));
        assert!(
            err(image_ref("host:port/app")).contains("registry port \"port\" must be a number")
        );
        assert!(err(image_ref("bad_host.com:5000/app")).contains("registry host"));
        assert!(err(image_ref(&"a".repeat(256))).contains("at most 255"));
    }
}
