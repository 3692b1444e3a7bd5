//! JSON Pointer lookups (RFC 6901) that allocate nothing for plain tokens.
//!
//! `serde_json::Value::pointer` allocates two `String`s per token (to undo the `~1`/`~0`
//! escapes) on every call. The emulator and the watches call it on every object of every
//! controller pass, so there it was a good part of the allocator's work.

use std::borrow::Cow;

use serde_json::Value;

/// A token of a pointer, unescaped only when it holds an escape.
fn unescape(token: &str) -> Cow<'_, str> {
    if token.contains('~') {
        Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(token)
    }
}

fn step<'a>(v: &'a Value, token: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m.get(unescape(token).as_ref()),
        Value::Array(a) => index(token).and_then(|i| a.get(i)),
        _ => None,
    }
}

fn step_mut<'a>(v: &'a mut Value, token: &str) -> Option<&'a mut Value> {
    match v {
        Value::Object(m) => m.get_mut(unescape(token).as_ref()),
        Value::Array(a) => index(token).and_then(|i| a.get_mut(i)),
        _ => None,
    }
}

/// An array index as RFC 6901 spells it: digits, no sign, no leading zero.
fn index(token: &str) -> Option<usize> {
    if token.is_empty() || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    if !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

/// What `Value::pointer` and `Value::pointer_mut` do, without their allocations.
pub trait JsonPath {
    /// The value at `pointer` (`""` is the whole value; otherwise it starts with `/`).
    fn at(&self, pointer: &str) -> Option<&Value>;
    /// The value at `pointer`, mutably.
    fn at_mut(&mut self, pointer: &str) -> Option<&mut Value>;
}

impl JsonPath for Value {
    fn at(&self, pointer: &str) -> Option<&Value> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        rest.split('/').try_fold(self, step)
    }

    fn at_mut(&mut self, pointer: &str) -> Option<&mut Value> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        rest.split('/').try_fold(self, step_mut)
    }
}

#[cfg(test)]
mod tests {
    use super::JsonPath;
    use serde_json::json;

    #[test]
    fn it_finds_what_serde_json_pointer_finds() {
        let v = json!({
            "a": {"b/c": [10, {"d~e": true}], "": 1, "0": "zero"},
            "list": [1, 2, 3]
        });
        for p in [
            "",
            "/a",
            "/a/b~1c",
            "/a/b~1c/0",
            "/a/b~1c/1/d~0e",
            "/a/",
            "/a/0",
            "/list/2",
            "/list/3",
            "/list/01",
            "/list/-",
            "/list/+1",
            "a",
            "/missing/x",
            "/list/0/x",
        ] {
            assert_eq!(v.at(p), v.pointer(p), "{p}");
        }
        let mut w = v.clone();
        *w.at_mut("/a/b~1c/0").expect("an array element") = json!(11);
        assert_eq!(w.pointer("/a/b~1c/0"), Some(&json!(11)));
        assert!(w.at_mut("/nope/0").is_none());
    }
}
