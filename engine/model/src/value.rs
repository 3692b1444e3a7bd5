use std::collections::BTreeMap;
use std::fmt;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A JSON-like value whose leaves may be sensitive.
///
/// Object keys are ordered, so everything built from values is deterministic. Serializing a
/// value (to JSON, YAML, a plan file) prints sensitive leaves as placeholders; the only way to
/// get at the secret text is [`Value::reveal`].
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// JSON null.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A plain, non-sensitive string.
    String(String),
    /// An ordered list.
    Array(Vec<Value>),
    /// A map with ordered keys.
    Object(BTreeMap<String, Value>),
    /// A string that must never be shown.
    Sensitive(Sensitive),
}

/// A sensitive string, kept as the parts it was built from so that a placeholder can say
/// where it comes from (`<sensitive: $API_KEY>`) without saying what it is.
#[derive(Clone, PartialEq, Default)]
pub struct Sensitive {
    /// The parts, concatenated in order.
    pub parts: Vec<SensitivePart>,
}

/// One part of a [`Sensitive`] string.
#[derive(Clone, PartialEq)]
pub enum SensitivePart {
    /// Plain text (for example the `redis://:` around a password); not secret by itself.
    Plain(String),
    /// The value of an environment variable of the process running cairn.
    Env {
        /// The variable's name.
        var: String,
        /// Its value.
        value: String,
    },
    /// A literal marked sensitive in the script.
    Literal(String),
    /// A password generated once and then kept: `id` names it in [`crate::DesiredState::generated`].
    Generated {
        /// Evaluation-local identity of the generated value.
        id: u32,
        /// Its length in characters.
        length: u32,
    },
}

impl fmt::Debug for SensitivePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.placeholder())
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.placeholder())
    }
}

impl SensitivePart {
    fn placeholder(&self) -> String {
        match self {
            SensitivePart::Plain(s) => s.clone(),
            SensitivePart::Env { var, .. } => format!("<sensitive: ${var}>"),
            SensitivePart::Literal(_) => "<sensitive>".to_owned(),
            SensitivePart::Generated { length, .. } => {
                format!("<sensitive: generated, {length} chars>")
            }
        }
    }
}

impl Sensitive {
    /// A sensitive value made of one part.
    pub fn from_part(part: SensitivePart) -> Self {
        Self { parts: vec![part] }
    }

    /// The text shown instead of the value: plain parts as they are, secret parts as
    /// `<sensitive: …>` markers saying only where they come from.
    pub fn placeholder(&self) -> String {
        self.parts.iter().map(SensitivePart::placeholder).collect()
    }

    /// Appends another sensitive value.
    pub fn extend(&mut self, other: Sensitive) {
        self.parts.extend(other.parts);
    }

    /// Appends plain text.
    pub fn push_plain(&mut self, text: &str) {
        if let Some(SensitivePart::Plain(last)) = self.parts.last_mut() {
            last.push_str(text);
        } else if !text.is_empty() {
            self.parts.push(SensitivePart::Plain(text.to_owned()));
        }
    }

    /// The secret text. `generated` resolves generated parts by id; one it cannot resolve is
    /// an error naming the id.
    pub fn reveal(&self, generated: &dyn Fn(u32) -> Option<String>) -> Result<String, u32> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                SensitivePart::Plain(s) | SensitivePart::Literal(s) => out.push_str(s),
                SensitivePart::Env { value, .. } => out.push_str(value),
                SensitivePart::Generated { id, .. } => out.push_str(&generated(*id).ok_or(*id)?),
            }
        }
        Ok(out)
    }

    /// The ids of generated parts.
    pub fn generated_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.parts.iter().filter_map(|p| match p {
            SensitivePart::Generated { id, .. } => Some(*id),
            _ => None,
        })
    }
}

impl Serialize for Sensitive {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.placeholder())
    }
}

impl Value {
    /// An empty object.
    pub fn object() -> Self {
        Value::Object(BTreeMap::new())
    }

    /// Builds an object from pairs.
    pub fn obj<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Self {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A plain string.
    pub fn str(s: impl Into<String>) -> Self {
        Value::String(s.into())
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(map) => map.get(key),
            _ => None,
        }
    }

    /// Follows a path of object keys.
    pub fn pointer(&self, path: &[&str]) -> Option<&Value> {
        path.iter().try_fold(self, |v, key| v.get(key))
    }

    /// The string, if this is a plain string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> &[Value] {
        match self {
            Value::Array(items) => items,
            _ => &[],
        }
    }

    /// The map, if this is an object.
    pub fn as_object(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    /// Inserts `key` into an object (no-op on other values).
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        if let Value::Object(map) = self {
            map.insert(key.into(), value);
        }
    }

    /// Whether any leaf is sensitive.
    pub fn contains_sensitive(&self) -> bool {
        match self {
            Value::Sensitive(_) => true,
            Value::Array(items) => items.iter().any(Value::contains_sensitive),
            Value::Object(map) => map.values().any(Value::contains_sensitive),
            _ => false,
        }
    }

    /// Converts to JSON with sensitive leaves as placeholders.
    pub fn to_json(&self) -> serde_json::Value {
        self.map_to_json(&mut |s| Ok::<_, u32>(serde_json::Value::String(s.placeholder())))
            .unwrap_or(serde_json::Value::Null)
    }

    /// Converts to JSON with the secret text of sensitive leaves.
    pub fn reveal(
        &self,
        generated: &dyn Fn(u32) -> Option<String>,
    ) -> Result<serde_json::Value, u32> {
        self.map_to_json(&mut |s| s.reveal(generated).map(serde_json::Value::String))
    }

    fn map_to_json<E>(
        &self,
        leaf: &mut dyn FnMut(&Sensitive) -> Result<serde_json::Value, E>,
    ) -> Result<serde_json::Value, E> {
        Ok(match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|v| v.map_to_json(leaf))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => serde_json::Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), v.map_to_json(leaf)?)))
                    .collect::<Result<_, E>>()?,
            ),
            Value::Sensitive(s) => leaf(s)?,
        })
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::Float(f) => serializer.serialize_f64(*f),
            Value::String(s) => serializer.serialize_str(s),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut m = serializer.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
            Value::Sensitive(s) => s.serialize(serializer),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Self {
        Value::Array(items.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializing_never_shows_secret_text() {
        let mut s = Sensitive::default();
        s.push_plain("redis://:");
        s.parts.push(SensitivePart::Generated { id: 1, length: 24 });
        s.push_plain("@redis:6379/0");
        s.parts.push(SensitivePart::Env {
            var: "TOKEN".into(),
            value: "hunter2".into(),
        });
        let v = Value::obj([("url", Value::Sensitive(s.clone()))]);
        let json = v.to_json().to_string();
        assert!(!json.contains("hunter2"), "{json}");
        assert_eq!(
            json,
            r#"{"url":"redis://:<sensitive: generated, 24 chars>@redis:6379/0<sensitive: $TOKEN>"}"#
        );
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(
            s.reveal(&|id| (id == 1).then(|| "pw".to_owned())),
            Ok("redis://:pw@redis:6379/0hunter2".to_owned())
        );
        assert_eq!(s.reveal(&|_| None), Err(1));
    }
}
