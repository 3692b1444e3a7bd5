//! Kubernetes object names, label keys and values, environment variable names and data keys
//! (k8s.io/apimachinery `validation`).

use super::Invalid;

/// Why `label` is not a lowercase RFC 1123 label (ignoring length), if it is not one.
fn rfc1123_label_problem(label: &str) -> Option<String> {
    if label.is_empty() {
        return Some("must not be empty".to_string());
    }
    if let Some(c) = label.chars().find(char::is_ascii_uppercase) {
        return Some(format!(
            "must be lowercase (found {c:?}); only lowercase letters, digits and '-' are allowed"
        ));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!(
            "contains invalid character {c:?}; only lowercase letters, digits and '-' are allowed"
        ));
    }
    if label.starts_with('-') {
        return Some("must start with a lowercase letter or digit".to_string());
    }
    if label.ends_with('-') {
        return Some("must end with a lowercase letter or digit".to_string());
    }
    None
}

/// RFC 1123 DNS label as Kubernetes validates names of Namespaces, Services, etc: lowercase
/// alnum and '-', start and end alnum, max 63.
pub fn dns1123_label(s: &str) -> Result<(), Invalid> {
    let invalid = |reason: String| Invalid(format!("invalid name {s:?}: {reason}"));
    if s.len() > 63 {
        return Err(invalid(format!(
            "must be at most 63 characters (found {})",
            s.len()
        )));
    }
    if s.contains('.') {
        return Err(invalid(
            "must not contain '.'; only lowercase letters, digits and '-' are allowed".to_string(),
        ));
    }
    match rfc1123_label_problem(s) {
        Some(problem) => Err(invalid(problem)),
        None => Ok(()),
    }
}

/// Why `s` is not a lowercase RFC 1123 subdomain, if it is not one.
fn rfc1123_subdomain_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("must not be empty".to_string());
    }
    if s.len() > 253 {
        return Some(format!(
            "must be at most 253 characters (found {})",
            s.len()
        ));
    }
    if s.starts_with('.') {
        return Some("must not start with '.'".to_string());
    }
    if s.ends_with('.') {
        return Some("must not end with '.'".to_string());
    }
    if s.contains("..") {
        return Some("must not contain consecutive dots".to_string());
    }
    let several = s.contains('.');
    s.split('.').find_map(|label| {
        rfc1123_label_problem(label).map(|problem| {
            if several {
                format!("part {label:?} {problem}")
            } else {
                problem
            }
        })
    })
}

/// RFC 1123 subdomain (names of most objects: ConfigMap, Secret, Deployment...): labels joined
/// with '.', each lowercase alnum/'-' starting and ending alnum, max 253 total.
pub fn dns1123_subdomain(s: &str) -> Result<(), Invalid> {
    match rfc1123_subdomain_problem(s) {
        Some(problem) => Err(Invalid(format!("invalid name {s:?}: {problem}"))),
        None => Ok(()),
    }
}

/// Why `s` is not a label value / qualified-name part (ignoring emptiness), if it is not one.
fn qualified_part_problem(s: &str) -> Option<String> {
    if s.len() > 63 {
        return Some(format!("must be at most 63 characters (found {})", s.len()));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Some(format!(
            "contains invalid character {c:?}; only letters, digits, '-', '_' and '.' are allowed"
        ));
    }
    if s.starts_with(['-', '_', '.']) {
        return Some("must start with a letter or digit".to_string());
    }
    if s.ends_with(['-', '_', '.']) {
        return Some("must end with a letter or digit".to_string());
    }
    None
}

/// Kubernetes label value: empty, or at most 63 characters of `[-_.A-Za-z0-9]` starting and
/// ending with a letter or digit.
pub fn label_value(s: &str) -> Result<(), Invalid> {
    match qualified_part_problem(s) {
        Some(problem) => Err(Invalid(format!("invalid label value {s:?}: {problem}"))),
        None => Ok(()),
    }
}

/// Kubernetes label (or annotation) key: an optional DNS-subdomain prefix and '/', then a name
/// of at most 63 characters of `[-_.A-Za-z0-9]` starting and ending with a letter or digit.
pub fn label_key(s: &str) -> Result<(), Invalid> {
    let invalid = |reason: String| Invalid(format!("invalid label key {s:?}: {reason}"));
    let (prefix, name) = match s.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, s),
    };
    if name.contains('/') {
        return Err(invalid(
            "must contain at most one '/', as in example.com/name".to_string(),
        ));
    }
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Err(invalid("prefix before '/' must not be empty".to_string()));
        }
        if let Some(problem) = rfc1123_subdomain_problem(prefix) {
            return Err(invalid(format!("prefix {prefix:?} {problem}")));
        }
    }
    if name.is_empty() {
        return Err(invalid(if prefix.is_some() {
            "name after '/' must not be empty".to_string()
        } else {
            "must not be empty".to_string()
        }));
    }
    match qualified_part_problem(name) {
        Some(problem) if prefix.is_some() => Err(invalid(format!("name {name:?} {problem}"))),
        Some(problem) => Err(invalid(problem)),
        None => Ok(()),
    }
}

/// Why a path-like key is `.`, `..` or starts with `..`, if it does.
fn dot_problem(s: &str) -> Option<String> {
    match s {
        "." => Some("must not be '.'".to_string()),
        ".." => Some("must not be '..'".to_string()),
        _ if s.starts_with("..") => Some("must not start with '..'".to_string()),
        _ => None,
    }
}

/// Environment variable name as Kubernetes validates it (`IsEnvVarName`):
/// `[-._a-zA-Z][-._a-zA-Z0-9]*`, and not `.`, `..` or starting with `..`.
pub fn env_var_name(s: &str) -> Result<(), Invalid> {
    let invalid =
        |reason: String| Invalid(format!("invalid environment variable name {s:?}: {reason}"));
    if s.is_empty() {
        return Err(invalid("must not be empty".to_string()));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(invalid(format!(
            "contains invalid character {c:?}; only letters, digits, '_', '-' and '.' are allowed"
        )));
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(invalid("must not start with a digit".to_string()));
    }
    match dot_problem(s) {
        Some(problem) => Err(invalid(problem)),
        None => Ok(()),
    }
}

/// ConfigMap / Secret data key (`IsConfigMapKey`): `[-._a-zA-Z0-9]+`, at most 253 characters,
/// and not `.`, `..` or starting with `..`.
pub fn config_key(s: &str) -> Result<(), Invalid> {
    let invalid = |reason: String| Invalid(format!("invalid data key {s:?}: {reason}"));
    if s.is_empty() {
        return Err(invalid("must not be empty".to_string()));
    }
    if s.len() > 253 {
        return Err(invalid(format!(
            "must be at most 253 characters (found {})",
            s.len()
        )));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(invalid(format!(
            "contains invalid character {c:?}; only letters, digits, '-', '_' and '.' are allowed"
        )));
    }
    match dot_problem(s) {
        Some(problem) => Err(invalid(problem)),
        None => Ok(()),
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
    fn dns_labels() {
        for s in ["a", "my-app", "123-abc", "a1", &"a".repeat(63)] {
            assert!(dns1123_label(s).is_ok(), "{s}");
        }
        assert_eq!(
            err(dns1123_label("My-App")),
            "invalid name \"My-App\": must be lowercase (found 'M'); only lowercase letters, \
             digits and '-' are allowed"
        );
        assert!(err(dns1123_label("")).contains("must not be empty"));
        assert!(err(dns1123_label("-a")).contains("must start with a lowercase letter or digit"));
        assert!(err(dns1123_label("a-")).contains("must end with a lowercase letter or digit"));
        assert!(err(dns1123_label("a_b")).contains("invalid character '_'"));
        assert!(err(dns1123_label("a.b")).contains("must not contain '.'"));
        assert!(err(dns1123_label(&"a".repeat(64))).contains("at most 63 characters (found 64)"));
    }

    #[test]
    fn dns_subdomains() {
        for s in [
            "a",
            "my-config",
            "a.b.c",
            "example.com",
            "1.2",
            &"a".repeat(100),
        ] {
            assert!(dns1123_subdomain(s).is_ok(), "{s}");
        }
        assert!(err(dns1123_subdomain("")).contains("must not be empty"));
        assert!(err(dns1123_subdomain(".a")).contains("must not start with '.'"));
        assert!(err(dns1123_subdomain("a.")).contains("must not end with '.'"));
        assert!(err(dns1123_subdomain("a..b")).contains("consecutive dots"));
        assert!(err(dns1123_subdomain("a.B")).contains(r#"part "B" must be lowercase"#));
        assert!(err(dns1123_subdomain("a.-b")).contains(r#"part "-b" must start"#));
        assert!(err(dns1123_subdomain(&"a".repeat(254))).contains("at most 253"));
        assert!(err(dns1123_subdomain("my_config")).contains("invalid character '_'"));
    }

    #[test]
    fn label_values_and_keys() {
        for s in ["", "a", "A-b_c.d", "1", &"x".repeat(63)] {
            assert!(label_value(s).is_ok(), "{s}");
        }
        assert!(err(label_value(&"x".repeat(64))).contains("at most 63 characters"));
        assert!(err(label_value("-a")).contains("must start with a letter or digit"));
        assert!(err(label_value("a.")).contains("must end with a letter or digit"));
        assert_eq!(
            err(label_value("a b")),
            "invalid label value \"a b\": contains invalid character ' '; only letters, digits, \
             '-', '_' and '.' are allowed"
        );

        for s in [
            "app",
            "app.kubernetes.io/name",
            "example.com/My_Key.1",
            "a/b",
            "Name",
        ] {
            assert!(label_key(s).is_ok(), "{s}");
        }
        assert!(err(label_key("")).contains("must not be empty"));
        assert!(err(label_key("/a")).contains("prefix before '/' must not be empty"));
        assert!(err(label_key("a/")).contains("name after '/' must not be empty"));
        assert!(err(label_key("a/b/c")).contains("at most one '/'"));
        assert!(
            err(label_key("Example.com/a"))
                .contains(r#"prefix "Example.com" part "Example" must be lowercase"#)
        );
        assert!(err(label_key("example.com/-a")).contains(r#"name "-a" must start"#));
        assert!(err(label_key(&"k".repeat(64))).contains("at most 63"));
    }

    #[test]
    fn env_var_names() {
        for s in [
            "PATH",
            "my.env-name",
            "MY_ENV.NAME",
            "MyEnvName1",
            "_x",
            "-x",
            ".x",
        ] {
            assert!(env_var_name(s).is_ok(), "{s}");
        }
        assert!(err(env_var_name("")).contains("must not be empty"));
        assert!(err(env_var_name("1ABC")).contains("must not start with a digit"));
        assert!(err(env_var_name("A=B")).contains("invalid character '='"));
        assert!(err(env_var_name("A B")).contains("invalid character ' '"));
        assert!(err(env_var_name(".")).contains("must not be '.'"));
        assert!(err(env_var_name("..")).contains("must not be '..'"));
        assert!(err(env_var_name("..a")).contains("must not start with '..'"));
    }

    #[test]
    fn config_keys() {
        for s in ["config.yaml", "a", "A_B-c.1", ".env", "1"] {
            assert!(config_key(s).is_ok(), "{s}");
        }
        assert!(err(config_key("")).contains("must not be empty"));
        assert!(err(config_key(".")).contains("must not be '.'"));
        assert!(err(config_key("..")).contains("must not be '..'"));
        assert!(err(config_key("..data")).contains("must not start with '..'"));
        assert!(err(config_key("a/b")).contains("invalid character '/'"));
        assert!(err(config_key(&"k".repeat(254))).contains("at most 253 characters (found 254)"));
        assert!(config_key(&"k".repeat(253)).is_ok());
    }
}
