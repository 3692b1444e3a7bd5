//! Converting script values into model values.

use std::collections::BTreeMap;

use cairn_model::{Sensitive, SensitivePart, Value};
use rhai::Dynamic;

use crate::types::{ConfigHandle, EnvSet, EnvValue, KeyRef, SecretHandle, SensitiveStr, Tagged};

/// A script value that has no model value (a function pointer, a handle...); holds its type name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} cannot be used as data here")]
pub struct DataError(pub &'static str);

/// Why an `env:` list cannot be flattened into environment variables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// An item that is neither a secret, a config map, a map, a service's `.env(...)` nor a list
    /// of those; holds its type name.
    #[error(
        "{0} cannot be an environment variable source; use a secret, a config map, a map `#{{ NAME: value }}` or a service's `.env(...)`"
    )]
    NotASource(&'static str),
    /// A sensitive value given directly; holds the variable's name.
    #[error(
        "environment variable `{0}` is given a sensitive value directly; store it in a secret and use `secret.key(...)`"
    )]
    SensitiveValue(String),
    /// A value that is neither text, a number, a boolean nor a key reference.
    #[error("environment variable `{name}` cannot take {type_name}")]
    WrongType {
        /// The variable's name.
        name: String,
        /// The value's type name.
        type_name: &'static str,
    },
}

/// Diagnostics take their message as a `String`.
impl From<DataError> for String {
    fn from(e: DataError) -> String {
        e.to_string()
    }
}

/// Diagnostics take their message as a `String`.
impl From<EnvError> for String {
    fn from(e: EnvError) -> String {
        e.to_string()
    }
}

/// Converts a script value into a model value, or says what could not be converted.
pub fn to_value(v: &Dynamic) -> Result<Value, DataError> {
    if v.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = v.as_int() {
        return Ok(Value::Int(i));
    }
    if let Ok(f) = v.as_float() {
        return Ok(Value::Float(f));
    }
    if v.is_string() {
        return Ok(Value::String(v.to_string()));
    }
    if v.is_array() {
        let items = v.clone().into_array().unwrap_or_default();
        return items
            .iter()
            .map(to_value)
            .collect::<Result<_, _>>()
            .map(Value::Array);
    }
    if v.is_map() {
        let map = v.clone().try_cast::<rhai::Map>().unwrap_or_default();
        return map
            .iter()
            .map(|(k, v)| Ok((k.to_string(), to_value(v)?)))
            .collect::<Result<BTreeMap<_, _>, DataError>>()
            .map(Value::Object);
    }
    if let Some(s) = v.clone().try_cast::<SensitiveStr>() {
        return Ok(Value::Sensitive(s.0));
    }
    if let Some(t) = v.clone().try_cast::<Tagged>() {
        return Ok(t.value);
    }
    Err(DataError(crate::types::script_type(v)))
}

/// Concatenates a sensitive value and plain text.
pub fn concat(left: &Sensitive, right: &Sensitive) -> Sensitive {
    let mut out = left.clone();
    for part in &right.parts {
        match part {
            SensitivePart::Plain(text) => out.push_plain(text),
            other => out.parts.push(other.clone()),
        }
    }
    out
}

/// A plain string as a sensitive value made of one plain part.
pub fn plain(text: &str) -> Sensitive {
    let mut s = Sensitive::default();
    s.push_plain(text);
    s
}

/// Flattens an `env:` list (Secrets, ConfigMaps, maps, `EnvSet`s, nested lists) into
/// environment variables, or says what could not be used.
pub fn env_list(
    items: &[Dynamic],
    out: &mut EnvSet,
    peers: &mut Vec<EnvSet>,
) -> Result<(), EnvError> {
    for item in items {
        if item.is_array() {
            env_list(&item.clone().into_array().unwrap_or_default(), out, peers)?;
        } else if let Some(secret) = item.clone().try_cast::<SecretHandle>() {
            for key in &secret.keys {
                out.vars.push((
                    key.clone(),
                    EnvValue::Ref(KeyRef {
                        kind: "Secret",
                        name: secret.name.clone(),
                        key: key.clone(),
                    }),
                ));
            }
        } else if let Some(config) = item.clone().try_cast::<ConfigHandle>() {
            for key in &config.keys {
                out.vars.push((
                    key.clone(),
                    EnvValue::Ref(KeyRef {
                        kind: "ConfigMap",
                        name: config.name.clone(),
                        key: key.clone(),
                    }),
                ));
            }
        } else if let Some(set) = item.clone().try_cast::<EnvSet>() {
            out.vars.extend(set.vars.iter().cloned());
            if set.peer.is_some() {
                peers.push(set);
            }
        } else if item.is_map() {
            let map = item.clone().try_cast::<rhai::Map>().unwrap_or_default();
            for (name, value) in map {
                out.vars.push((name.to_string(), env_value(&name, &value)?));
            }
        } else {
            return Err(EnvError::NotASource(crate::types::script_type(item)));
        }
    }
    Ok(())
}

fn env_value(name: &str, value: &Dynamic) -> Result<EnvValue, EnvError> {
    if let Some(r) = value.clone().try_cast::<KeyRef>() {
        return Ok(EnvValue::Ref(r));
    }
    if value.is::<SensitiveStr>() {
        return Err(EnvError::SensitiveValue(name.to_owned()));
    }
    if value.is_string() || value.is_int() || value.is_float() || value.is_bool() {
        return Ok(EnvValue::Plain(value.to_string()));
    }
    Err(EnvError::WrongType {
        name: name.to_owned(),
        type_name: crate::types::script_type(value),
    })
}
