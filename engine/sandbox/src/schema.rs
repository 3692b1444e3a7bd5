//! Structural schemas of the served kinds, built from the recorded OpenAPI v2 document (built-in
//! kinds) or from a CustomResourceDefinition's `openAPIV3Schema`. They drive server-side apply
//! (list types, merge keys, atomic maps), unknown-field detection, quantity normalisation and,
//! for custom objects, validation and defaulting.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

/// How a list merges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    Atomic,
    Set,
    Map(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    String,
    Integer,
    Number,
    Boolean,
    Quantity,
    IntOrString,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Struct,
    Map,
    List(ListKind),
    Scalar(Scalar),
    /// Anything goes (`x-kubernetes-preserve-unknown-fields`, RawExtension, JSON).
    Any,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: Kind,
    pub fields: BTreeMap<String, usize>,
    pub elem: Option<usize>,
    pub atomic: bool,
    pub required: Vec<String>,
    pub enum_values: Option<Vec<Value>>,
    pub default: Option<Value>,
    pub preserve_unknown: bool,
    pub type_name: Option<String>,
    /// The message of an `x-kubernetes-validations` rule `self == oldSelf` (the CEL idiom for
    /// an immutable field), when the node has one.
    pub immutable: Option<String>,
}

impl Node {
    fn new(kind: Kind) -> Node {
        Node {
            kind,
            fields: BTreeMap::new(),
            elem: None,
            atomic: false,
            required: Vec::new(),
            enum_values: None,
            default: None,
            preserve_unknown: false,
            type_name: None,
            immutable: None,
        }
    }
}

/// The node of a schema by its `type` (its children come later).
fn node_of_type(s: &Value, ty: &str, preserve: bool) -> Node {
    match ty {
        "object" => {
            if s.get("properties").is_some() {
                Node::new(Kind::Struct)
            } else if s.get("additionalProperties").is_some() {
                Node::new(Kind::Map)
            } else if preserve {
                Node::new(Kind::Any)
            } else {
                // `type: object` without properties: a free-form object.
                let mut n = Node::new(Kind::Struct);
                n.preserve_unknown = true;
                n
            }
        }
        "array" => Node::new(Kind::List(list_kind(s))),
        "string" => Node::new(Kind::Scalar(Scalar::String)),
        "integer" => Node::new(Kind::Scalar(Scalar::Integer)),
        "number" => Node::new(Kind::Scalar(Scalar::Number)),
        "boolean" => Node::new(Kind::Scalar(Scalar::Boolean)),
        _ => Node::new(Kind::Any),
    }
}

/// How an array merges: `x-kubernetes-list-type`, else its patch merge key, else atomic.
fn list_kind(s: &Value) -> ListKind {
    let lt = s
        .get("x-kubernetes-list-type")
        .and_then(Value::as_str)
        .unwrap_or("");
    let keys: Vec<String> = s
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let merge_key = s
        .get("x-kubernetes-patch-merge-key")
        .and_then(Value::as_str);
    match lt {
        "map" if !keys.is_empty() => ListKind::Map(keys),
        "set" => ListKind::Set,
        "atomic" => ListKind::Atomic,
        _ => match merge_key {
            Some(k) => ListKind::Map(vec![k.to_string()]),
            None => ListKind::Atomic,
        },
    }
}

/// The message of a `self == oldSelf` rule among a schema's `x-kubernetes-validations` (its
/// own `message`, else the server's `failed rule: …`). Other CEL rules are not evaluated.
fn immutability_rule(s: &Value) -> Option<String> {
    s.get("x-kubernetes-validations")?
        .as_array()?
        .iter()
        .find_map(|v| {
            let rule = v.get("rule")?.as_str()?;
            let compact: String = rule.chars().filter(|c| !c.is_whitespace()).collect();
            (compact == "self==oldSelf").then(|| {
                v.get("message")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("failed rule: {rule}"), str::to_owned)
            })
        })
}

/// Transition rules of a custom resource: each field whose schema says `self == oldSelf`
/// keeps its value (checked where both the old and the new object have it).
pub fn transition(
    arena: &Schemas,
    idx: usize,
    old: &Value,
    new: &Value,
    path: &str,
    out: &mut Vec<Cause>,
) {
    let n = arena.node(idx);
    if let Some(message) = &n.immutable
        && old != new
    {
        out.push((
            "FieldValueInvalid".into(),
            format!("Invalid value: \"{}\": {message}", json_type(new)),
            path.trim_start_matches('.').to_string(),
        ));
    }
    match (&n.kind, old, new) {
        (Kind::Struct, Value::Object(a), Value::Object(b)) => {
            for (k, child) in &n.fields {
                if let (Some(x), Some(y)) = (a.get(k), b.get(k)) {
                    transition(arena, *child, x, y, &format!("{path}.{k}"), out);
                }
            }
        }
        (Kind::Map, Value::Object(a), Value::Object(b)) => {
            let e = n.elem.unwrap_or(ANY);
            for (k, x) in a {
                if let Some(y) = b.get(k) {
                    transition(arena, e, x, y, &format!("{path}[{k}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// An arena of schema nodes.
#[derive(Debug, Default)]
pub struct Schemas {
    pub nodes: Vec<Node>,
    named: HashMap<String, usize>,
}

/// A schema node of some arena.
#[derive(Clone)]
pub struct SchemaRef {
    pub arena: Arc<Schemas>,
    pub idx: usize,
}

impl std::fmt::Debug for SchemaRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SchemaRef({})", self.idx)
    }
}

pub const ANY: usize = 0;

impl Schemas {
    fn with_any() -> Schemas {
        let mut s = Schemas::default();
        s.nodes.push(Node::new(Kind::Any));
        s
    }

    pub fn node(&self, idx: usize) -> &Node {
        self.nodes.get(idx).unwrap_or(&self.nodes[ANY])
    }

    /// The node of field `name` under `idx` (ANY when unknown).
    pub fn field(&self, idx: usize, name: &str) -> Option<usize> {
        let n = self.node(idx);
        match n.kind {
            Kind::Struct => n.fields.get(name).copied(),
            Kind::Map => n.elem,
            Kind::Any => Some(ANY),
            _ => None,
        }
    }

    fn push(&mut self, n: Node) -> usize {
        self.nodes.push(n);
        self.nodes.len() - 1
    }

    /// Converts a (v2 or v3) schema object; `$ref`s are resolved in `defs`.
    fn convert(&mut self, s: &Value, defs: &Map<String, Value>) -> usize {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            return self.named_def(r, defs);
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array)
            && let Some(first) = all.first()
        {
            return self.convert(first, defs);
        }
        let preserve = s
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let ty = s.get("type").and_then(Value::as_str).unwrap_or("");
        let format = s.get("format").and_then(Value::as_str).unwrap_or("");
        let int_or_string = s
            .get("x-kubernetes-int-or-string")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            || format == "int-or-string";
        let mut node = if int_or_string {
            Node::new(Kind::Scalar(Scalar::IntOrString))
        } else {
            node_of_type(s, ty, preserve)
        };
        node.preserve_unknown = node.preserve_unknown || preserve;
        node.atomic = s.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic");
        node.required = s
            .get("required")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        node.enum_values = s.get("enum").and_then(Value::as_array).cloned();
        node.default = s.get("default").cloned();
        node.immutable = immutability_rule(s);
        let idx = self.push(node);
        self.convert_children(idx, s, defs);
        idx
    }

    /// Converts the properties, additional properties and items of the node at `idx`.
    fn convert_children(&mut self, idx: usize, s: &Value, defs: &Map<String, Value>) {
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            let mut fields = BTreeMap::new();
            for (k, v) in props {
                fields.insert(k.clone(), self.convert(v, defs));
            }
            self.nodes[idx].fields = fields;
        }
        if let Some(ap) = s.get("additionalProperties") {
            let e = if ap.is_object() {
                self.convert(ap, defs)
            } else {
                ANY
            };
            self.nodes[idx].elem = Some(e);
        }
        if let Some(items) = s.get("items") {
            let e = self.convert(items, defs);
            self.nodes[idx].elem = Some(e);
        }
    }

    fn named_def(&mut self, r: &str, defs: &Map<String, Value>) -> usize {
        let name = r.rsplit('/').next().unwrap_or(r).to_string();
        if let Some(i) = self.named.get(&name) {
            return *i;
        }
        match name.as_str() {
            "io.k8s.apimachinery.pkg.api.resource.Quantity" => {
                let i = self.push(Node::new(Kind::Scalar(Scalar::Quantity)));
                self.named.insert(name, i);
                return i;
            }
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString" => {
                let i = self.push(Node::new(Kind::Scalar(Scalar::IntOrString)));
                self.named.insert(name, i);
                return i;
            }
            "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1"
            | "io.k8s.apimachinery.pkg.runtime.RawExtension"
            | "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON"
            | "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps" => {
                let i = self.push(Node::new(Kind::Any));
                self.named.insert(name, i);
                return i;
            }
            _ => {}
        }
        let Some(def) = defs.get(&name) else {
            return ANY;
        };
        // Reserve the slot first so recursive types terminate.
        let placeholder = self.push(Node::new(Kind::Any));
        self.named.insert(name.clone(), placeholder);
        let idx = self.convert(def, defs);
        let mut node = self.nodes[idx].clone();
        node.type_name = Some(name);
        self.nodes[placeholder] = node;
        placeholder
    }
}

/// The recorded documents, embedded.
pub mod docs {
    pub const V2: &str = include_str!("../testdata/kube-api/openapi/v2.json");
    pub const V3_INDEX: &str = include_str!("../testdata/kube-api/openapi/index.json");
    pub const V3: &[(&str, &str)] = &[
        (
            "api/v1",
            include_str!("../testdata/kube-api/openapi/api-v1.json"),
        ),
        (
            "apis/apps/v1",
            include_str!("../testdata/kube-api/openapi/apis-apps-v1.json"),
        ),
        (
            "apis/batch/v1",
            include_str!("../testdata/kube-api/openapi/apis-batch-v1.json"),
        ),
        (
            "apis/networking.k8s.io/v1",
            include_str!("../testdata/kube-api/openapi/apis-networking.k8s.io-v1.json"),
        ),
        (
            "apis/coordination.k8s.io/v1",
            include_str!("../testdata/kube-api/openapi/apis-coordination.k8s.io-v1.json"),
        ),
    ];
    pub const DISCOVERY: &[&str] = &[
        include_str!("../testdata/kube-api/010-discovery-version.json"),
        include_str!("../testdata/kube-api/011-discovery-api.json"),
        include_str!("../testdata/kube-api/012-discovery-api-v1.json"),
        include_str!("../testdata/kube-api/013-discovery-apis.json"),
        include_str!("../testdata/kube-api/014-discovery-apis-apps-v1.json"),
        include_str!("../testdata/kube-api/015-discovery-apis-batch-v1.json"),
        include_str!("../testdata/kube-api/016-discovery-apis-networking.k8s.io-v1.json"),
        include_str!("../testdata/kube-api/017-discovery-apis-policy-v1.json"),
        include_str!("../testdata/kube-api/018-discovery-apis-coordination.k8s.io-v1.json"),
        include_str!("../testdata/kube-api/019-discovery-apis-rbac.authorization.k8s.io-v1.json"),
        include_str!("../testdata/kube-api/020-discovery-apis-apiextensions.k8s.io-v1.json"),
        include_str!("../testdata/authored/discovery-apis-storage.k8s.io-v1.json"),
        include_str!("../testdata/authored/discovery-apis-autoscaling-v2.json"),
    ];
    pub const TABLES: &[&str] = &[
        include_str!(
            "../testdata/kube-api/800-table-apis-apps-v1-namespaces-rec-table-deployments.json"
        ),
        include_str!("../testdata/kube-api/800-table-api-v1-namespaces-rec-table-pods.json"),
        include_str!("../testdata/kube-api/800-table-api-v1-namespaces.json"),
    ];
}

/// The response body of a recorded exchange.
pub fn recorded_body(text: &str) -> Value {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("response").and_then(|r| r.get("body")).cloned())
        .unwrap_or(Value::Null)
}

pub struct Builtin {
    pub arena: Arc<Schemas>,
    /// (group, version, kind) -> node
    pub by_gvk: HashMap<(String, String, String), usize>,
    pub defs: Map<String, Value>,
    /// The serialized /openapi/v2 document.
    pub v2_json: bytes::Bytes,
}

/// The built-in schemas (parsed once per process).
pub fn builtin() -> &'static Builtin {
    static B: OnceLock<Builtin> = OnceLock::new();
    B.get_or_init(|| {
        let body = recorded_body(docs::V2);
        let v2_json = bytes::Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let defs = body
            .get("definitions")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut arena = Schemas::with_any();
        let mut by_gvk = HashMap::new();
        for (name, def) in &defs {
            let Some(gvks) = def
                .get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
            else {
                continue;
            };
            if name.ends_with("List") {
                continue;
            }
            let idx = arena.named_def(name, &defs);
            for g in gvks {
                let s = |k: &str| g.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                by_gvk
                    .entry((s("group"), s("version"), s("kind")))
                    .or_insert(idx);
            }
        }
        Builtin {
            arena: Arc::new(arena),
            by_gvk,
            defs,
            v2_json,
        }
    })
}

/// The schema of a CRD version: its openAPIV3Schema with ObjectMeta for `metadata`.
pub fn from_crd_schema(schema: &Value) -> SchemaRef {
    let b = builtin();
    let mut arena = Schemas::with_any();
    let mut s = schema.clone();
    if let Some(props) = s.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert(
            "metadata".into(),
            serde_json::json!({"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}),
        );
        props
            .entry("apiVersion")
            .or_insert(serde_json::json!({"type": "string"}));
        props
            .entry("kind")
            .or_insert(serde_json::json!({"type": "string"}));
    }
    let idx = arena.convert(&s, &b.defs);
    SchemaRef {
        arena: Arc::new(arena),
        idx,
    }
}

/// Walks `v` and reports the first field not declared in the schema, as `.a.b`.
pub fn unknown_field(arena: &Schemas, idx: usize, v: &Value, path: &str) -> Option<String> {
    let n = arena.node(idx);
    match (&n.kind, v) {
        (Kind::Struct, Value::Object(m)) => {
            for (k, child) in m {
                let p = format!("{path}.{k}");
                match n.fields.get(k) {
                    Some(ci) => {
                        if let Some(e) = unknown_field(arena, *ci, child, &p) {
                            return Some(e);
                        }
                    }
                    None if n.preserve_unknown => {}
                    None => return Some(p),
                }
            }
            None
        }
        (Kind::Map, Value::Object(m)) => {
            let e = n.elem.unwrap_or(ANY);
            for (k, child) in m {
                if let Some(r) = unknown_field(arena, e, child, &format!("{path}.{k}")) {
                    return Some(r);
                }
            }
            None
        }
        (Kind::List(_), Value::Array(items)) => {
            let e = n.elem.unwrap_or(ANY);
            for (i, child) in items.iter().enumerate() {
                if let Some(r) = unknown_field(arena, e, child, &format!("{path}[{i}]")) {
                    return Some(r);
                }
            }
            None
        }
        _ => None,
    }
}

/// Drops fields not declared in the schema (what the server does with fieldValidation=Ignore/Warn).
pub fn prune_unknown(arena: &Schemas, idx: usize, v: &mut Value) {
    let n = arena.node(idx);
    match (&n.kind, v) {
        (Kind::Struct, Value::Object(m)) => {
            if !n.preserve_unknown {
                m.retain(|k, _| n.fields.contains_key(k));
            }
            for (k, child) in m.iter_mut() {
                if let Some(ci) = n.fields.get(k) {
                    prune_unknown(arena, *ci, child);
                }
            }
        }
        (Kind::Map, Value::Object(m)) => {
            let e = n.elem.unwrap_or(ANY);
            for child in m.values_mut() {
                prune_unknown(arena, e, child);
            }
        }
        (Kind::List(_), Value::Array(items)) => {
            let e = n.elem.unwrap_or(ANY);
            for child in items {
                prune_unknown(arena, e, child);
            }
        }
        _ => {}
    }
}

/// A quantity that does not parse.
pub struct BadQuantity;

/// Rewrites every quantity to its canonical form; `Err` for malformed ones. Negative
/// quantities are left for validation.
pub fn normalize_quantities(arena: &Schemas, idx: usize, v: &mut Value) -> Result<(), BadQuantity> {
    let n = arena.node(idx);
    match (&n.kind, v) {
        (Kind::Scalar(Scalar::Quantity), v) => {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(num) => num.to_string(),
                _ => return Ok(()),
            };
            let q = cairn_model::validate::Quantity::parse(&s).map_err(|_| BadQuantity)?;
            *v = Value::String(q.canonical());
            Ok(())
        }
        (Kind::Struct, Value::Object(m)) => {
            for (k, child) in m.iter_mut() {
                if let Some(ci) = n.fields.get(k) {
                    normalize_quantities(arena, *ci, child)?;
                }
            }
            Ok(())
        }
        (Kind::Map | Kind::List(_), Value::Object(m)) => {
            let e = n.elem.unwrap_or(ANY);
            for child in m.values_mut() {
                normalize_quantities(arena, e, child)?;
            }
            Ok(())
        }
        (Kind::List(_), Value::Array(items)) => {
            let e = n.elem.unwrap_or(ANY);
            for child in items {
                normalize_quantities(arena, e, child)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Applies the schema's `default`s (structural-schema defaulting of custom objects).
pub fn apply_defaults(arena: &Schemas, idx: usize, v: &mut Value) {
    let n = arena.node(idx);
    match (&n.kind, v) {
        (Kind::Struct, Value::Object(m)) => {
            for (k, ci) in &n.fields {
                if !m.contains_key(k)
                    && let Some(d) = &arena.node(*ci).default
                {
                    m.insert(k.clone(), d.clone());
                }
            }
            for (k, child) in m.iter_mut() {
                if let Some(ci) = n.fields.get(k) {
                    apply_defaults(arena, *ci, child);
                }
            }
        }
        (Kind::Map, Value::Object(m)) => {
            let e = n.elem.unwrap_or(ANY);
            for child in m.values_mut() {
                apply_defaults(arena, e, child);
            }
        }
        (Kind::List(_), Value::Array(items)) => {
            let e = n.elem.unwrap_or(ANY);
            for child in items {
                apply_defaults(arena, e, child);
            }
        }
        _ => {}
    }
}

/// One validation problem: (reason, message, field).
pub type Cause = (String, String, String);

/// Validates a custom object against its structural schema: types, enums, required fields.
pub fn validate(arena: &Schemas, idx: usize, v: &Value, path: &str, out: &mut Vec<Cause>) {
    let n = arena.node(idx);
    let field = path.trim_start_matches('.').to_string();
    if let Some(en) = &n.enum_values
        && !v.is_null()
        && !en.contains(v)
    {
        let supported: Vec<String> = en.iter().map(|e| e.to_string()).collect();
        out.push((
            "FieldValueNotSupported".into(),
            format!(
                "Unsupported value: {}: supported values: {}",
                v,
                supported.join(", ")
            ),
            field.clone(),
        ));
    }
    let type_error = |expected: &str, out: &mut Vec<Cause>| {
        out.push((
            "FieldValueTypeInvalid".into(),
            format!(
                "Invalid value: \"{}\": {field} in body must be of type {expected}: \"{}\"",
                json_type(v),
                json_type(v)
            ),
            field.clone(),
        ));
    };
    match &n.kind {
        Kind::Struct => match v {
            Value::Object(m) => validate_fields(arena, n, m, path, &field, out),
            Value::Null => {}
            _ => type_error("object", out),
        },
        Kind::Map => match v {
            Value::Object(m) => {
                let e = n.elem.unwrap_or(ANY);
                for (k, child) in m {
                    validate(arena, e, child, &format!("{path}.{k}"), out);
                }
            }
            Value::Null => {}
            _ => type_error("object", out),
        },
        Kind::List(_) => match v {
            Value::Array(items) => {
                let e = n.elem.unwrap_or(ANY);
                for (i, child) in items.iter().enumerate() {
                    validate(arena, e, child, &format!("{path}[{i}]"), out);
                }
            }
            Value::Null => {}
            _ => type_error("array", out),
        },
        Kind::Scalar(s) => {
            if let Some(t) = scalar_mismatch(s, v) {
                type_error(t, out);
            }
        }
        Kind::Any => {}
    }
}

/// The fields of an object against a struct node: each known field, then the required ones.
fn validate_fields(
    arena: &Schemas,
    n: &Node,
    m: &Map<String, Value>,
    path: &str,
    field: &str,
    out: &mut Vec<Cause>,
) {
    for (k, ci) in &n.fields {
        if let Some(child) = m.get(k) {
            if path.is_empty() && k == "metadata" {
                continue;
            }
            validate(arena, *ci, child, &format!("{path}.{k}"), out);
        }
    }
    for r in &n.required {
        if !m.contains_key(r) {
            out.push((
                "FieldValueRequired".into(),
                "Required value".into(),
                format!("{field}{}{r}", if field.is_empty() { "" } else { "." }),
            ));
        }
    }
}

/// The type a scalar node expects, when a non-null value is not of it.
fn scalar_mismatch(s: &Scalar, v: &Value) -> Option<&'static str> {
    let ok = match s {
        Scalar::String => v.is_string(),
        Scalar::Integer => v.is_i64() || v.is_u64(),
        Scalar::Number => v.is_number(),
        Scalar::Boolean => v.is_boolean(),
        _ => true,
    };
    if ok || v.is_null() {
        return None;
    }
    Some(match s {
        Scalar::String => "string",
        Scalar::Integer => "integer",
        Scalar::Number => "number",
        _ => "boolean",
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
