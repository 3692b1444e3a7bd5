//! `/openapi/v2` as protobuf, the way kube-apiserver serves it to kubectl (1.20 asks only for
//! `application/com.github.proto-openapi.spec.v2@v1.0+protobuf`).
//!
//! The message is gnostic's `openapi.v2.Document` (`openapiv2/OpenAPIv2.proto`), written here
//! straight from the Swagger JSON in the standard wire format. kube-apiserver builds it the same
//! way (JSON → YAML node → gnostic `NewDocument` → `proto.Marshal`): maps become repeated
//! `Named*` pairs in document order, `x-` keys become `vendor_extension` pairs, and every free
//! value (`default`, `enum`, `example`, extensions) becomes an `Any` holding its YAML text (JSON
//! text here, which is YAML). proto3 rules: empty strings, `false` and zero numbers are left
//! out, except inside a `oneof`; a present message is always written, even when empty.

use serde_json::{Map, Value};

/// An encoded message under construction.
#[derive(Default)]
struct Msg(Vec<u8>);

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

impl Msg {
    fn key(&mut self, field: u32, wire: u8) {
        varint(&mut self.0, (u64::from(field) << 3) | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, LEN);
        varint(&mut self.0, b.len() as u64);
        self.0.extend_from_slice(b);
    }

    /// A singular string: left out when empty.
    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn msg(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }

    /// A singular bool: left out when false.
    fn boolean(&mut self, field: u32, b: bool) {
        if b {
            self.oneof_bool(field, b);
        }
    }

    /// A bool member of a oneof: always written.
    fn oneof_bool(&mut self, field: u32, b: bool) {
        self.key(field, VARINT);
        self.0.push(u8::from(b));
    }

    fn int64(&mut self, field: u32, i: i64) {
        if i != 0 {
            self.key(field, VARINT);
            varint(&mut self.0, i as u64);
        }
    }

    fn double(&mut self, field: u32, f: f64) {
        if f != 0.0 {
            self.key(field, FIXED64);
            self.0.extend_from_slice(&f.to_le_bytes());
        }
    }

    // Readers of JSON members.

    fn str_of(&mut self, field: u32, o: &Map<String, Value>, k: &str) {
        if let Some(s) = o.get(k).and_then(Value::as_str) {
            self.string(field, s);
        }
    }

    fn bool_of(&mut self, field: u32, o: &Map<String, Value>, k: &str) {
        if let Some(b) = o.get(k).and_then(Value::as_bool) {
            self.boolean(field, b);
        }
    }

    fn int_of(&mut self, field: u32, o: &Map<String, Value>, k: &str) {
        if let Some(n) = o
            .get(k)
            .and_then(|v| v.as_i64().or(v.as_f64().map(|f| f as i64)))
        {
            self.int64(field, n);
        }
    }

    fn double_of(&mut self, field: u32, o: &Map<String, Value>, k: &str) {
        if let Some(f) = o.get(k).and_then(Value::as_f64) {
            self.double(field, f);
        }
    }

    /// A repeated string (every element written, empty ones too); a lone string counts as one.
    fn strings_of(&mut self, field: u32, o: &Map<String, Value>, k: &str) {
        match o.get(k) {
            Some(Value::String(s)) => self.bytes(field, s.as_bytes()),
            Some(Value::Array(a)) => {
                for s in a.iter().filter_map(Value::as_str) {
                    self.bytes(field, s.as_bytes());
                }
            }
            _ => {}
        }
    }

    fn any_of(&mut self, field: u32, o: &Map<String, Value>, k: &str) {
        if let Some(v) = o.get(k) {
            self.msg(field, any(v));
        }
    }

    /// A message built from an object member, when the member is an object.
    fn obj_of(
        &mut self,
        field: u32,
        o: &Map<String, Value>,
        k: &str,
        f: impl Fn(&Map<String, Value>) -> Msg,
    ) {
        if let Some(v) = o.get(k).and_then(Value::as_object) {
            self.msg(field, f(v));
        }
    }

    /// `repeated NamedAny vendor_extension`: the `x-` members, in order.
    fn vendor_extensions(&mut self, field: u32, o: &Map<String, Value>) {
        for (k, v) in o.iter().filter(|(k, _)| k.starts_with("x-")) {
            self.msg(field, named(k, any(v)));
        }
    }
}

/// `Any { yaml = 2 }`.
fn any(v: &Value) -> Msg {
    let mut m = Msg::default();
    let text = serde_json::to_string(v).unwrap_or_default();
    m.bytes(2, text.as_bytes());
    m
}

/// A `Named*` pair: `{ name = 1, value = 2 }`.
fn named(name: &str, value: Msg) -> Msg {
    let mut m = Msg::default();
    m.string(1, name);
    m.msg(2, value);
    m
}

/// A map message `{ repeated Named* additional_properties = 1 }` over an object's members.
fn map_of(o: &Map<String, Value>, f: impl Fn(&Value) -> Option<Msg>) -> Msg {
    let mut m = Msg::default();
    for (k, v) in o {
        if let Some(value) = f(v) {
            m.msg(1, named(k, value));
        }
    }
    m
}

/// The whole document.
pub fn document(o: &Map<String, Value>) -> Vec<u8> {
    let mut m = Msg::default();
    m.str_of(1, o, "swagger");
    m.obj_of(2, o, "info", info);
    m.str_of(3, o, "host");
    m.str_of(4, o, "basePath");
    m.strings_of(5, o, "schemes");
    m.strings_of(6, o, "consumes");
    m.strings_of(7, o, "produces");
    m.obj_of(8, o, "paths", paths);
    m.obj_of(9, o, "definitions", |d| {
        map_of(d, |v| v.as_object().map(schema))
    });
    m.obj_of(10, o, "parameters", |d| {
        map_of(d, |v| v.as_object().map(parameter))
    });
    m.obj_of(11, o, "responses", |d| {
        map_of(d, |v| v.as_object().map(response))
    });
    for r in array(o, "security") {
        m.msg(12, security_requirement(r));
    }
    m.obj_of(13, o, "securityDefinitions", |d| {
        map_of(d, |v| v.as_object().map(security_definitions_item))
    });
    for t in array(o, "tags") {
        m.msg(14, tag(t));
    }
    m.obj_of(15, o, "externalDocs", external_docs);
    m.vendor_extensions(16, o);
    m.0
}

/// The objects of an array member.
fn array<'a>(o: &'a Map<String, Value>, k: &str) -> impl Iterator<Item = &'a Map<String, Value>> {
    o.get(k)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

fn info(o: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    m.str_of(1, o, "title");
    m.str_of(2, o, "version");
    m.str_of(3, o, "description");
    m.str_of(4, o, "termsOfService");
    m.obj_of(5, o, "contact", |c| {
        let mut m = Msg::default();
        m.str_of(1, c, "name");
        m.str_of(2, c, "url");
        m.str_of(3, c, "email");
        m.vendor_extensions(4, c);
        m
    });
    m.obj_of(6, o, "license", |l| {
        let mut m = Msg::default();
        m.str_of(1, l, "name");
        m.str_of(2, l, "url");
        m.vendor_extensions(3, l);
        m
    });
    m.vendor_extensions(7, o);
    m
}

fn external_docs(o: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    m.str_of(1, o, "description");
    m.str_of(2, o, "url");
    m.vendor_extensions(3, o);
    m
}

fn tag(o: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    m.str_of(1, o, "name");
    m.str_of(2, o, "description");
    m.obj_of(3, o, "externalDocs", external_docs);
    m.vendor_extensions(4, o);
    m
}

/// `SecurityRequirement { repeated NamedStringArray additional_properties = 1 }`.
fn security_requirement(o: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    for (k, v) in o {
        let mut arr = Msg::default();
        for s in v.as_array().into_iter().flatten().filter_map(Value::as_str) {
            arr.bytes(1, s.as_bytes());
        }
        m.msg(1, named(k, arr));
    }
    m
}

fn security_definitions_item(o: &Map<String, Value>) -> Msg {
    let mut inner = Msg::default();
    let ty = o.get("type").and_then(Value::as_str).unwrap_or("");
    let flow = o.get("flow").and_then(Value::as_str).unwrap_or("");
    inner.str_of(1, o, "type");
    let field = match (ty, flow) {
        ("basic", _) => {
            inner.str_of(2, o, "description");
            inner.vendor_extensions(3, o);
            1
        }
        ("oauth2", "implicit") => {
            inner.str_of(2, o, "flow");
            inner.obj_of(3, o, "scopes", scopes);
            inner.str_of(4, o, "authorizationUrl");
            inner.str_of(5, o, "description");
            inner.vendor_extensions(6, o);
            3
        }
        ("oauth2", "password" | "application") => {
            inner.str_of(2, o, "flow");
            inner.obj_of(3, o, "scopes", scopes);
            inner.str_of(4, o, "tokenUrl");
            inner.str_of(5, o, "description");
            inner.vendor_extensions(6, o);
            if flow == "password" { 4 } else { 5 }
        }
        ("oauth2", _) => {
            inner.str_of(2, o, "flow");
            inner.obj_of(3, o, "scopes", scopes);
            inner.str_of(4, o, "authorizationUrl");
            inner.str_of(5, o, "tokenUrl");
            inner.str_of(6, o, "description");
            inner.vendor_extensions(7, o);
            6
        }
        _ => {
            // apiKey
            inner.str_of(2, o, "name");
            inner.str_of(3, o, "in");
            inner.str_of(4, o, "description");
            inner.vendor_extensions(5, o);
            2
        }
    };
    let mut m = Msg::default();
    m.msg(field, inner);
    m
}

/// `Oauth2Scopes { repeated NamedString additional_properties = 1 }`.
fn scopes(o: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    for (k, v) in o {
        let mut pair = Msg::default();
        pair.string(1, k);
        pair.string(2, v.as_str().unwrap_or(""));
        m.msg(1, pair);
    }
    m
}

/// `Paths { vendor_extension = 1, repeated NamedPathItem path = 2 }`.
fn paths(o: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    m.vendor_extensions(1, o);
    for (k, v) in o.iter().filter(|(k, _)| k.starts_with('/')) {
        if let Some(item) = v.as_object() {
            m.msg(2, named(k, path_item(item)));
        }
    }
    m
}

fn path_item(o: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    m.str_of(1, o, "$ref");
    for (field, verb) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        m.obj_of(field, o, verb, operation);
    }
    for p in array(o, "parameters") {
        m.msg(9, parameters_item(p));
    }
    m.vendor_extensions(10, o);
    m
}

fn operation(o: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    m.strings_of(1, o, "tags");
    m.str_of(2, o, "summary");
    m.str_of(3, o, "description");
    m.obj_of(4, o, "externalDocs", external_docs);
    m.str_of(5, o, "operationId");
    m.strings_of(6, o, "produces");
    m.strings_of(7, o, "consumes");
    for p in array(o, "parameters") {
        m.msg(8, parameters_item(p));
    }
    m.obj_of(9, o, "responses", responses);
    m.strings_of(10, o, "schemes");
    m.bool_of(11, o, "deprecated");
    for r in array(o, "security") {
        m.msg(12, security_requirement(r));
    }
    m.vendor_extensions(13, o);
    m
}

fn json_reference(o: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    m.str_of(1, o, "$ref");
    m.str_of(2, o, "description");
    m
}

/// `ParametersItem { oneof { Parameter parameter = 1; JsonReference json_reference = 2 } }`.
fn parameters_item(o: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    if o.contains_key("$ref") {
        m.msg(2, json_reference(o));
    } else {
        m.msg(1, parameter(o));
    }
    m
}

/// `Parameter { oneof { BodyParameter = 1; NonBodyParameter = 2 } }`.
fn parameter(o: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    let location = o.get("in").and_then(Value::as_str).unwrap_or("");
    if location == "body" {
        let mut b = Msg::default();
        b.str_of(1, o, "description");
        b.str_of(2, o, "name");
        b.str_of(3, o, "in");
        b.bool_of(4, o, "required");
        b.obj_of(5, o, "schema", schema);
        b.vendor_extensions(6, o);
        m.msg(1, b);
    } else {
        // NonBodyParameter { header = 1, formData = 2, query = 3, path = 4 }, the sub-schemas
        // numbered alike except that query and formData have allow_empty_value = 5.
        let (field, with_allow_empty) = match location {
            "header" => (1, false),
            "formData" => (2, true),
            "path" => (4, false),
            _ => (3, true),
        };
        let mut s = Msg::default();
        s.bool_of(1, o, "required");
        s.str_of(2, o, "in");
        s.str_of(3, o, "description");
        s.str_of(4, o, "name");
        let first = if with_allow_empty {
            s.bool_of(5, o, "allowEmptyValue");
            6
        } else {
            5
        };
        primitive_fields(&mut s, o, first);
        s.vendor_extensions(first + 17, o);
        let mut nb = Msg::default();
        nb.msg(field, s);
        m.msg(2, nb);
    }
    m
}

/// The run of fields shared by `PrimitivesItems`, `Header` and the non-body parameters, from
/// `type = first` to `multiple_of = first + 16`.
fn primitive_fields(m: &mut Msg, o: &Map<String, Value>, first: u32) {
    m.str_of(first, o, "type");
    m.str_of(first + 1, o, "format");
    m.obj_of(first + 2, o, "items", primitives_items);
    m.str_of(first + 3, o, "collectionFormat");
    m.any_of(first + 4, o, "default");
    m.double_of(first + 5, o, "maximum");
    m.bool_of(first + 6, o, "exclusiveMaximum");
    m.double_of(first + 7, o, "minimum");
    m.bool_of(first + 8, o, "exclusiveMinimum");
    m.int_of(first + 9, o, "maxLength");
    m.int_of(first + 10, o, "minLength");
    m.str_of(first + 11, o, "pattern");
    m.int_of(first + 12, o, "maxItems");
    m.int_of(first + 13, o, "minItems");
    m.bool_of(first + 14, o, "uniqueItems");
    for v in o
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.msg(first + 15, any(v));
    }
    m.double_of(first + 16, o, "multipleOf");
}

fn primitives_items(o: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    primitive_fields(&mut m, o, 1);
    m.vendor_extensions(18, o);
    m
}

fn header(o: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    primitive_fields(&mut m, o, 1);
    m.str_of(18, o, "description");
    m.vendor_extensions(19, o);
    m
}

/// `Responses { repeated NamedResponseValue response_code = 1; vendor_extension = 2 }`.
fn responses(o: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    for (code, v) in o.iter().filter(|(k, _)| !k.starts_with("x-")) {
        let Some(r) = v.as_object() else { continue };
        // ResponseValue { oneof { Response response = 1; JsonReference json_reference = 2 } }
        let mut value = Msg::default();
        if r.contains_key("$ref") {
            value.msg(2, json_reference(r));
        } else {
            value.msg(1, response(r));
        }
        m.msg(1, named(code, value));
    }
    m.vendor_extensions(2, o);
    m
}

fn response(o: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    m.str_of(1, o, "description");
    // SchemaItem { oneof { Schema schema = 1; FileSchema file_schema = 2 } }
    m.obj_of(2, o, "schema", |s| {
        let mut item = Msg::default();
        item.msg(1, schema(s));
        item
    });
    m.obj_of(3, o, "headers", |h| {
        map_of(h, |v| v.as_object().map(header))
    });
    m.obj_of(4, o, "examples", |e| map_of(e, |v| Some(any(v))));
    m.vendor_extensions(5, o);
    m
}

/// `Schema`, the bulk of the document.
fn schema(o: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    m.str_of(1, o, "$ref");
    m.str_of(2, o, "format");
    m.str_of(3, o, "title");
    m.str_of(4, o, "description");
    m.any_of(5, o, "default");
    m.double_of(6, o, "multipleOf");
    m.double_of(7, o, "maximum");
    m.bool_of(8, o, "exclusiveMaximum");
    m.double_of(9, o, "minimum");
    m.bool_of(10, o, "exclusiveMinimum");
    m.int_of(11, o, "maxLength");
    m.int_of(12, o, "minLength");
    m.str_of(13, o, "pattern");
    m.int_of(14, o, "maxItems");
    m.int_of(15, o, "minItems");
    m.bool_of(16, o, "uniqueItems");
    m.int_of(17, o, "maxProperties");
    m.int_of(18, o, "minProperties");
    m.strings_of(19, o, "required");
    for v in o
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.msg(20, any(v));
    }
    // AdditionalPropertiesItem { oneof { Schema schema = 1; bool boolean = 2 } }
    match o.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Msg::default();
            item.oneof_bool(2, *b);
            m.msg(21, item);
        }
        Some(Value::Object(s)) => {
            let mut item = Msg::default();
            item.msg(1, schema(s));
            m.msg(21, item);
        }
        _ => {}
    }
    // TypeItem { repeated string value = 1 }
    if o.contains_key("type") {
        let mut t = Msg::default();
        t.strings_of(1, o, "type");
        m.msg(22, t);
    }
    // ItemsItem { repeated Schema schema = 1 }
    match o.get("items") {
        Some(Value::Object(s)) => {
            let mut item = Msg::default();
            item.msg(1, schema(s));
            m.msg(23, item);
        }
        Some(Value::Array(a)) => {
            let mut item = Msg::default();
            for s in a.iter().filter_map(Value::as_object) {
                item.msg(1, schema(s));
            }
            m.msg(23, item);
        }
        _ => {}
    }
    for s in array(o, "allOf") {
        m.msg(24, schema(s));
    }
    // Properties { repeated NamedSchema additional_properties = 1 }
    m.obj_of(25, o, "properties", |p| {
        map_of(p, |v| v.as_object().map(schema))
    });
    m.str_of(26, o, "discriminator");
    m.bool_of(27, o, "readOnly");
    m.obj_of(28, o, "xml", |x| {
        let mut m = Msg::default();
        m.str_of(1, x, "name");
        m.str_of(2, x, "namespace");
        m.str_of(3, x, "prefix");
        m.bool_of(4, x, "attribute");
        m.bool_of(5, x, "wrapped");
        m.vendor_extensions(6, x);
        m
    });
    m.obj_of(29, o, "externalDocs", external_docs);
    m.any_of(30, o, "example");
    m.vendor_extensions(31, o);
    m
}

/// The media types `/openapi/v2` is served as, in kube-openapi's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V2Format {
    Json,
    Protobuf,
}

/// The content type of the protobuf reply, whichever protobuf name was asked for: kube-openapi
/// answers the deprecated `...spec.v2@v1.0+protobuf` with this one too (Go's `mime` package, and
/// so client-go, rejects the `@`).
pub const PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
#[cfg(test)]
const PROTOBUF_DEPRECATED: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// kube-openapi's negotiation: the Accept clauses sorted by quality (then specificity), the
/// first one matching json or either protobuf name wins; none → 406. No Accept header counts as
/// `*/*`.
pub fn negotiate(accept: &str) -> Option<V2Format> {
    let accept = if accept.trim().is_empty() {
        "*/*"
    } else {
        accept
    };
    let mut clauses: Vec<(f64, &str, &str)> = accept
        .split(',')
        .filter_map(|clause| {
            let mut parts = clause.split(';');
            let media = parts.next()?.trim();
            let (ty, sub) = media.split_once('/').unwrap_or((media, "*"));
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f64>().ok())
                .unwrap_or(1.0);
            Some((q, ty.trim(), sub.trim()))
        })
        .collect();
    clauses.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| (a.2 == "*").cmp(&(b.2 == "*")))
            .then_with(|| (a.1 == "*").cmp(&(b.1 == "*")))
    });
    let offered = [
        ("json", V2Format::Json),
        (
            "com.github.proto-openapi.spec.v2@v1.0+protobuf",
            V2Format::Protobuf,
        ),
        (
            "com.github.proto-openapi.spec.v2.v1.0+protobuf",
            V2Format::Protobuf,
        ),
    ];
    clauses.iter().find_map(|(_, ty, sub)| {
        if *ty != "application" && *ty != "*" {
            return None;
        }
        offered
            .iter()
            .find(|(s, _)| sub == s || *sub == "*")
            .map(|(_, f)| *f)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A decoded field: a scalar (varint or fixed64, not kept) or bytes.
    #[derive(Debug)]
    enum F<'a> {
        Scalar,
        Bytes(&'a [u8]),
    }

    fn read_varint(b: &[u8], i: &mut usize) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let byte = b[*i];
            *i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return v;
            }
            shift += 7;
        }
    }

    fn fields(b: &[u8]) -> Vec<(u64, F<'_>)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let key = read_varint(b, &mut i);
            let f = match key & 7 {
                0 => {
                    read_varint(b, &mut i);
                    F::Scalar
                }
                1 => {
                    i += 8;
                    F::Scalar
                }
                2 => {
                    let n = read_varint(b, &mut i) as usize;
                    i += n;
                    F::Bytes(&b[i - n..i])
                }
                w => panic!("wire type {w}"),
            };
            out.push((key >> 3, f));
        }
        assert_eq!(i, b.len());
        out
    }

    fn bytes_of(b: &[u8], field: u64) -> Vec<&[u8]> {
        fields(b)
            .into_iter()
            .filter(|(n, _)| *n == field)
            .map(|(_, f)| match f {
                F::Bytes(b) => b,
                f => panic!("field {field}: {f:?}"),
            })
            .collect()
    }

    fn one(b: &[u8], field: u64) -> &[u8] {
        let v = bytes_of(b, field);
        assert_eq!(v.len(), 1, "field {field}");
        v[0]
    }

    fn text(b: &[u8], field: u64) -> String {
        String::from_utf8(one(b, field).to_vec()).unwrap()
    }

    /// The `Named*` pair called `name` among the repeated `field`.
    fn named<'a>(b: &'a [u8], field: u64, name: &str) -> &'a [u8] {
        bytes_of(b, field)
            .into_iter()
            .find(|pair| text(pair, 1) == name)
            .map(|pair| one(pair, 2))
            .unwrap_or_else(|| panic!("no {name}"))
    }

    #[test]
    fn varints() {
        let mut b = Vec::new();
        varint(&mut b, 300);
        assert_eq!(b, [0xac, 0x02]);
        let mut m = Msg::default();
        m.int64(1, -1);
        assert_eq!(m.0.len(), 11);
    }

    #[test]
    fn recorded_document_encodes_by_gnostic_numbers() {
        let body = crate::schema::recorded_body(crate::schema::docs::V2);
        let doc = document(body.as_object().unwrap());
        assert_eq!(text(&doc, 1), "2.0");
        assert_eq!(text(one(&doc, 2), 2), "v1.26.1");
        // definitions → NamedSchema "io.k8s.api.core.v1.ConfigMap"
        let defs = one(&doc, 9);
        let cm = named(defs, 1, "io.k8s.api.core.v1.ConfigMap");
        assert_eq!(text(one(cm, 22), 1), "object");
        let gvk = named(cm, 31, "x-kubernetes-group-version-kind");
        let yaml: Value = serde_json::from_slice(one(gvk, 2)).unwrap();
        assert_eq!(yaml[0]["kind"], "ConfigMap");
        let props = one(cm, 25);
        let data = named(props, 1, "data");
        // additionalProperties: {type: string}
        let ap = one(one(data, 21), 1);
        assert_eq!(text(one(ap, 22), 1), "string");
        let meta = named(props, 1, "metadata");
        assert_eq!(
            text(meta, 1),
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        // Pod spec containers: items $ref and patch extensions.
        let spec = named(defs, 1, "io.k8s.api.core.v1.PodSpec");
        assert!(text(spec, 4).starts_with("PodSpec"));
        let containers = named(one(spec, 25), 1, "containers");
        let items = one(containers, 23);
        assert_eq!(
            text(one(items, 1), 1),
            "#/definitions/io.k8s.api.core.v1.Container"
        );
        let key = named(containers, 31, "x-kubernetes-patch-merge-key");
        assert_eq!(text(key, 2), "\"name\"");
        assert!(bytes_of(spec, 19).contains(&b"containers".as_slice()));
        // paths → "/api/v1/namespaces" get operation id, a query parameter, a 200 response.
        let item = named(one(&doc, 8), 2, "/api/v1/namespaces");
        let get = one(item, 2);
        assert_eq!(text(get, 5), "listCoreV1Namespace");
        let params = one(item, 9);
        let non_body = one(one(params, 1), 2);
        assert!(!bytes_of(non_body, 3).is_empty() || !bytes_of(non_body, 4).is_empty());
        let ok = named(one(get, 9), 1, "200");
        let schema_item = one(one(ok, 1), 2);
        assert_eq!(
            text(one(schema_item, 1), 1),
            "#/definitions/io.k8s.api.core.v1.NamespaceList"
        );
        // security definitions: BearerToken is an apiKey.
        let bearer = named(one(&doc, 13), 1, "BearerToken");
        assert_eq!(text(one(bearer, 2), 2), "authorization");
    }

    #[test]
    fn negotiation_like_kube_openapi() {
        assert_eq!(negotiate(""), Some(V2Format::Json));
        assert_eq!(negotiate("application/json"), Some(V2Format::Json));
        assert_eq!(negotiate(PROTOBUF), Some(V2Format::Protobuf));
        assert_eq!(negotiate(PROTOBUF_DEPRECATED), Some(V2Format::Protobuf));
        assert_eq!(
            negotiate(&format!("{PROTOBUF_DEPRECATED}, application/json")),
            Some(V2Format::Protobuf)
        );
        assert_eq!(
            negotiate(&format!("{PROTOBUF};q=0.5, application/json")),
            Some(V2Format::Json)
        );
        assert_eq!(negotiate("application/*"), Some(V2Format::Json));
        assert_eq!(negotiate("application/yaml"), None);
        assert_eq!(negotiate("text/plain"), None);
    }
}
