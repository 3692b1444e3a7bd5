//! `plugin.toml`: what a plugin is (name, version, description, the cairn it needs) and the
//! typed parameters of its public functions, checked when a script calls them.

use cairn_model::Code;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use cairn_model::Span;
use serde::{Deserialize, Serialize};

/// The version of this cairn, compared with a plugin's `min_cairn`.
pub const CAIRN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A parsed, validated `plugin.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Manifest {
    /// The plugin's name: the folder name scripts import.
    pub name: String,
    /// The plugin's version (semver).
    pub version: String,
    /// One line on what the plugin provides.
    #[serde(default)]
    pub description: String,
    /// The oldest cairn that can run the plugin (semver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_cairn: Option<String>,
    /// The public functions whose options are checked, by name.
    #[serde(default)]
    pub functions: BTreeMap<String, FunctionSpec>,
}

/// One public function of a plugin: `fn name(..., options)`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionSpec {
    /// What the function declares.
    #[serde(default)]
    pub doc: String,
    /// The keys of its options map (its last parameter).
    #[serde(default)]
    pub params: BTreeMap<String, ParamSpec>,
}

/// One key of a function's options map.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// The type its value must have.
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// Whether a call must give it.
    #[serde(default)]
    pub required: bool,
    /// The value the function sees when a call does not give it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<toml::Value>,
    /// What it means.
    #[serde(default)]
    pub doc: String,
}

/// The types a parameter can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// A string, or a sensitive value (`secret_env`, `generate_password`, `sensitive`).
    String,
    /// An integer.
    Int,
    /// `true` or `false`.
    Bool,
    /// A Kubernetes quantity (`500m`, `2`, `10Gi`), as a string or a number.
    Quantity,
    /// A duration such as `30s`, `5m`, `1h30m`, `7d`.
    Duration,
    /// A DNS name (`staging.example.com`).
    DnsName,
    /// A cron schedule (`0 2 * * *`).
    Cron,
    /// A map `#{ ... }`.
    Map,
    /// An array `[ ... ]`.
    Array,
    /// Anything.
    Any,
}

impl ParamType {
    /// How the type reads in messages: "a quantity".
    pub fn describe(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Int => "an integer",
            Self::Bool => "true or false",
            Self::Quantity => "a quantity",
            Self::Duration => "a duration",
            Self::DnsName => "a DNS name",
            Self::Cron => "a cron schedule",
            Self::Map => "a map `#{ ... }`",
            Self::Array => "an array `[ ... ]`",
            Self::Any => "any value",
        }
    }
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::String => "string",
            Self::Int => "int",
            Self::Bool => "bool",
            Self::Quantity => "quantity",
            Self::Duration => "duration",
            Self::DnsName => "dns_name",
            Self::Cron => "cron",
            Self::Map => "map",
            Self::Array => "array",
            Self::Any => "any",
        };
        f.write_str(name)
    }
}

/// A problem with a plugin: a diagnostic code, a message, where, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// The diagnostic code (`invalid-plugin-manifest`, `plugin-changed`, …).
    pub code: Code,
    /// A lowercase phrase naming the plugin.
    pub message: String,
    /// Where in a file (`plugin.toml`), when known.
    pub span: Option<Span>,
    /// What to do about it.
    pub help: Option<String>,
}

impl PluginError {
    /// A problem without a span or help.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            span: None,
            help: None,
        }
    }

    /// Adds advice.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, " ({help})")?;
        }
        Ok(())
    }
}

impl std::error::Error for PluginError {}

impl Manifest {
    /// Parses and validates the text of `plugin.toml` (shown as `display`) of the plugin
    /// imported as `import_name`.
    pub fn parse(text: &str, display: &str, import_name: &str) -> Result<Self, PluginError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| {
            let message = e.message().trim_end_matches('.').to_owned();
            PluginError {
                code: Code::InvalidPluginManifest,
                message: format!("invalid {display}: {}", lower_first(&message)),
                span: e.span().map(|r| span_of(display, text, r.start, r.end)),
                help: None,
            }
        })?;
        let at = |needle: &str| find_span(display, text, needle);
        let invalid = |message: String, needle: &str| PluginError {
            code: Code::InvalidPluginManifest,
            message,
            span: at(needle),
            help: None,
        };
        if manifest.name != import_name {
            return Err(invalid(
                format!(
                    "{display} names the plugin `{}` but its folder is `{import_name}`",
                    manifest.name
                ),
                &manifest.name,
            ));
        }
        if let Err(e) = semver::Version::parse(&manifest.version) {
            return Err(invalid(
                format!(
                    "{display}: version `{}` is not a semantic version: {e}",
                    manifest.version
                ),
                &manifest.version,
            ));
        }
        if let Some(min) = &manifest.min_cairn
            && let Err(e) = semver::Version::parse(min)
        {
            return Err(invalid(
                format!("{display}: min_cairn `{min}` is not a semantic version: {e}"),
                min,
            ));
        }
        manifest.check_params(display, &invalid)?;
        Ok(manifest)
    }

    /// Every parameter: not both required and defaulted, defaults of their declared types.
    fn check_params(
        &self,
        display: &str,
        invalid: &dyn Fn(String, &str) -> PluginError,
    ) -> Result<(), PluginError> {
        for (fname, func) in &self.functions {
            for (pname, param) in &func.params {
                if param.required && param.default.is_some() {
                    return Err(invalid(
                        format!(
                            "{display}: parameter `{pname}` of `{fname}` is required and has a default"
                        ),
                        pname,
                    ));
                }
                if let Some(default) = &param.default
                    && let Err(why) = check_default(param.ty, default)
                {
                    return Err(invalid(
                        format!(
                            "{display}: the default of parameter `{pname}` of `{fname}` is not {}: {why}",
                            param.ty.describe()
                        ),
                        pname,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reads `plugin.toml` of the plugin folder `dir`, if it has one.
    pub fn read(dir: &Path, display: &str, import_name: &str) -> Result<Option<Self>, PluginError> {
        let file = dir.join("plugin.toml");
        if !file.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&file).map_err(|e| {
            PluginError::new(
                Code::InvalidPluginManifest,
                format!("cannot read {display}: {e}"),
            )
        })?;
        Self::parse(&text, display, import_name).map(Some)
    }

    /// Refuses a plugin that needs a newer cairn than `running`.
    pub fn check_cairn_version(&self, running: &str) -> Result<(), PluginError> {
        let Some(min) = &self.min_cairn else {
            return Ok(());
        };
        let (Ok(min_v), Ok(run_v)) = (semver::Version::parse(min), semver::Version::parse(running))
        else {
            return Ok(());
        };
        if run_v < min_v {
            return Err(PluginError::new(
                Code::PluginNeedsNewerCairn,
                format!(
                    "plugin `{}` {} needs cairn {min} or newer, this is cairn {running}",
                    self.name, self.version
                ),
            )
            .help("upgrade cairn, or pin an older version of the plugin"));
        }
        Ok(())
    }
}

/// Why a value does not fit a parameter's type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamValueError {
    /// The value is not valid text of its type (a quantity, DNS name or cron schedule).
    #[error(transparent)]
    Invalid(#[from] cairn_model::validate::Invalid),
    /// Not a duration.
    #[error("\"{0}\" is not a duration like 30s, 5m, 1h30m or 7d")]
    Duration(String),
    /// A TOML default of another type.
    #[error("found {0}")]
    WrongType(&'static str),
}

/// Whether a default value fits its declared type (as far as TOML can tell).
fn check_default(ty: ParamType, value: &toml::Value) -> Result<(), ParamValueError> {
    use toml::Value as T;
    let text = value.as_str();
    match (ty, value) {
        (ParamType::Any, _)
        | (ParamType::String, T::String(_))
        | (ParamType::Int, T::Integer(_))
        | (ParamType::Bool, T::Boolean(_))
        | (ParamType::Map, T::Table(_))
        | (ParamType::Array, T::Array(_)) => Ok(()),
        (ParamType::Quantity, T::Integer(_) | T::Float(_) | T::String(_)) => {
            let s = text.map_or_else(|| value.to_string(), str::to_owned);
            check_text(ty, &s)
        }
        (ParamType::Duration | ParamType::DnsName | ParamType::Cron, T::String(s)) => {
            check_text(ty, s)
        }
        (_, other) => Err(ParamValueError::WrongType(other.type_str())),
    }
}

/// Validates the text of a quantity, duration, DNS name or cron schedule.
pub fn check_text(ty: ParamType, s: &str) -> Result<(), ParamValueError> {
    use cairn_model::validate;
    match ty {
        ParamType::Quantity => Ok(validate::Quantity::parse_non_negative(s).map(|_| ())?),
        ParamType::Duration => duration_seconds(s)
            .map(|_| ())
            .ok_or_else(|| ParamValueError::Duration(s.to_owned())),
        ParamType::DnsName => Ok(validate::dns_name(s, false, false)?),
        ParamType::Cron => Ok(validate::cron_schedule(s)?),
        _ => Ok(()),
    }
}

/// The length of a duration (`30s`, `5m`, `1h30m`, `7d`, `250ms`) in seconds, rounded down.
pub fn duration_seconds(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let factor_ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(factor_ms)?)?;
        rest = &rest[unit_len..];
    }
    Some(total / 1000)
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

fn span_of(file: &str, text: &str, start: usize, end: usize) -> Span {
    let start = start.min(text.len());
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before, |nl| &before[nl + 1..])
        .chars()
        .count()
        + 1;
    Span {
        file: file.to_owned(),
        offset: start,
        len: end.saturating_sub(start).max(1),
        line: u32::try_from(line).unwrap_or(u32::MAX),
        col: u32::try_from(col).unwrap_or(u32::MAX),
    }
}

fn find_span(file: &str, text: &str, needle: &str) -> Option<Span> {
    if needle.is_empty() {
        return None;
    }
    let start = text.find(needle)?;
    Some(span_of(file, text, start, start + needle.len()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const POSTGRES: &str = r#"
name = "postgres"
version = "0.2.0"
description = "PostgreSQL"
min_cairn = "0.1.0"

[functions.instance]
doc = "A PostgreSQL instance"
[functions.instance.params]
image = { type = "string", default = "postgres:16.4", doc = "Any image" }
storage = { type = "quantity", default = "10Gi", doc = "Size of the data volume" }
replicas = { type = "int", default = 1 }
database = { type = "string", required = true }
"#;

    #[test]
    fn manifests_parse_with_typed_parameters() {
        let m = Manifest::parse(POSTGRES, "plugins/postgres/plugin.toml", "postgres").unwrap();
        let f = &m.functions["instance"];
        assert_eq!(f.params["storage"].ty, ParamType::Quantity);
        assert!(f.params["database"].required);
        assert_eq!(f.params["replicas"].default, Some(toml::Value::Integer(1)));
        m.check_cairn_version("0.1.0").unwrap();
    }

    #[test]
    fn a_plugin_newer_than_cairn_is_refused() {
        let text = POSTGRES.replace("min_cairn = \"0.1.0\"", "min_cairn = \"9.0.0\"");
        let m = Manifest::parse(&text, "p.toml", "postgres").unwrap();
        let e = m.check_cairn_version("0.1.0").unwrap_err();
        assert_eq!(e.code, "plugin-needs-newer-cairn");
        assert_eq!(
            e.message,
            "plugin `postgres` 0.2.0 needs cairn 9.0.0 or newer, this is cairn 0.1.0"
        );
    }

    #[test]
    fn bad_manifests_point_at_the_problem() {
        let e = Manifest::parse(
            &POSTGRES.replace("type = \"int\"", "type = \"integer\""),
            "p.toml",
            "postgres",
        )
        .unwrap_err();
        assert_eq!(e.code, "invalid-plugin-manifest");
        assert!(
            e.message.contains("unknown variant `integer`"),
            "{}",
            e.message
        );
        assert_eq!(e.span.unwrap().line, 12);

        let e = Manifest::parse(
            &POSTGRES.replace("default = \"10Gi\"", "default = \"10GB\""),
            "p.toml",
            "postgres",
        )
        .unwrap_err();
        assert!(
            e.message.contains("default of parameter `storage`"),
            "{}",
            e.message
        );

        let e = Manifest::parse(POSTGRES, "p.toml", "pg").unwrap_err();
        assert!(e.message.contains("its folder is `pg`"), "{}", e.message);

        let e =
            Manifest::parse(&POSTGRES.replace("0.2.0", "two"), "p.toml", "postgres").unwrap_err();
        assert!(
            e.message.contains("not a semantic version"),
            "{}",
            e.message
        );
    }

    #[test]
    fn durations_read_like_go() {
        assert_eq!(duration_seconds("30s"), Some(30));
        assert_eq!(duration_seconds("1h30m"), Some(5400));
        assert_eq!(duration_seconds("7d"), Some(604_800));
        assert_eq!(duration_seconds("1500ms"), Some(1));
        assert_eq!(duration_seconds("5"), None);
        assert_eq!(duration_seconds("m5"), None);
        assert_eq!(duration_seconds("5y"), None);
    }
}
