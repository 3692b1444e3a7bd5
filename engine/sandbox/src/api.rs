//! Request routing and the REST handlers.

use cairn_model::JsonPath as _;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::openapi_pb;
use crate::registry::ResourceType;
use crate::schema::{builtin, docs, recorded_body};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{State, WriteOpts, meta_str};
use crate::util::ApiError;

/// A parsed request.
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub content_type: String,
    pub accept: String,
    pub user_agent: String,
    pub body: Vec<u8>,
}

pub struct WatchSpec {
    pub rt: Arc<ResourceType>,
    pub namespace: String,
    pub name: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub from_rv: u64,
    pub timeout_secs: u64,
    pub bookmarks: bool,
    pub initial: Vec<Value>,
    pub rx: tokio::sync::broadcast::Receiver<crate::store::Event>,
}

pub enum Reply {
    Json(u16, Value),
    /// An object shared with the store: serialized outside the lock, not copied.
    Object(u16, Arc<Value>),
    /// A list whose items are shared with the store: serialized outside the lock, not copied.
    List(ListReply),
    Raw(u16, &'static str, String),
    /// A shared body (no copy per request); an empty content type sends none.
    Bytes(u16, &'static str, bytes::Bytes),
    Watch(Box<WatchSpec>),
}

/// `{"kind", "apiVersion", "metadata", "items"}`, as [`list_body`] builds it.
#[derive(serde::Serialize)]
pub struct ListReply {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    metadata: Map<String, Value>,
    #[serde(serialize_with = "shared_items")]
    items: Vec<Arc<Value>>,
}

fn shared_items<S: serde::Serializer>(items: &[Arc<Value>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(items.iter().map(|o| &**o))
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        Reply::Json(e.code, e.status_body())
    }
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// Parses a JSON or YAML body.
fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    let text = String::from_utf8_lossy(body);
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        return Ok(v);
    }
    serde_saphyr::from_str::<Value>(&text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

fn no_version() -> Value {
    recorded_body(docs::DISCOVERY[0])
}

pub fn handle(state: &Mutex<State>, req: &Request) -> Reply {
    let segs: Vec<String> = req
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["version"] => Reply::Json(200, no_version()),
        ["api"] => Reply::Json(200, recorded_body(docs::DISCOVERY[1])),
        ["apis"] => {
            let st = lock(state);
            Reply::Json(200, apis_document(&st))
        }
        ["openapi", "v2"] => openapi_v2_reply(state, req),
        ["openapi", "v3"] => {
            let st = lock(state);
            Reply::Raw(
                200,
                "text/plain; charset=utf-8",
                openapi_v3_index(&st).to_string(),
            )
        }
        ["openapi", "v3", rest @ ..] => openapi_v3_reply(state, rest),
        ["api", "v1"] => Reply::Json(200, group_version_document(&lock(state), "", "v1")),
        ["apis", g] => {
            let st = lock(state);
            match api_group(&st, g) {
                Some(v) => Reply::Json(200, v),
                None => not_found_page(),
            }
        }
        ["apis", g, v] => {
            let st = lock(state);
            let doc = group_version_document(&st, g, v);
            if doc.is_null() {
                not_found_page()
            } else {
                Reply::Json(200, doc)
            }
        }
        ["api", "v1", rest @ ..] => resource(state, req, "", "v1", rest),
        ["apis", g, v, rest @ ..] => resource(state, req, g, v, rest),
        ["healthz"] | ["readyz"] | ["livez"] => {
            Reply::Raw(200, "text/plain; charset=utf-8", "ok".into())
        }
        _ => not_found_page(),
    }
}

/// kube-openapi's v2 handler: JSON or gnostic protobuf by Accept; otherwise an empty 406.
fn openapi_v2_reply(state: &Mutex<State>, req: &Request) -> Reply {
    match openapi_pb::negotiate(&req.accept) {
        Some(format) => {
            let st = lock(state);
            let (json, pb) = openapi_v2(&st);
            match format {
                openapi_pb::V2Format::Json => Reply::Bytes(200, "application/json", json),
                openapi_pb::V2Format::Protobuf => Reply::Bytes(200, openapi_pb::PROTOBUF, pb),
            }
        }
        None => Reply::Bytes(406, "", bytes::Bytes::new()),
    }
}

/// The v3 document of a group version (`apis/GROUP/VERSION` or `api/v1`).
fn openapi_v3_reply(state: &Mutex<State>, rest: &[&str]) -> Reply {
    let path = rest.join("/");
    let st = lock(state);
    match openapi_v3_doc(&st, &path) {
        Some(doc) => Reply::Raw(200, "text/plain; charset=utf-8", doc),
        None => Reply::Raw(
            404,
            "text/plain; charset=utf-8",
            "404 page not found\n".into(),
        ),
    }
}

fn not_found_page() -> Reply {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
    .with_details(json!({}))
    .into()
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    match state.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// `/apis`: the recorded group list reduced to the group versions the emulator serves (a
/// client must never be sent to one it does not), then the CRDs' groups.
fn apis_document(st: &State) -> Value {
    let mut doc = recorded_body(docs::DISCOVERY[3]);
    if let Some(groups) = doc.get_mut("groups").and_then(Value::as_array_mut) {
        let served = |gv: &Value| {
            gv.get("groupVersion")
                .and_then(Value::as_str)
                .is_some_and(|gv| st.registry.builtin_discovery.contains_key(gv))
        };
        for g in groups.iter_mut() {
            if let Some(vs) = g.get_mut("versions").and_then(Value::as_array_mut) {
                vs.retain(served);
            }
        }
        groups.retain(|g| {
            g.get("versions")
                .and_then(Value::as_array)
                .is_some_and(|v| !v.is_empty())
                && g.get("preferredVersion").is_some_and(served)
        });
        for (g, versions) in st.registry.custom_groups() {
            groups.push(group_entry(&g, &versions));
        }
    }
    doc
}

fn group_entry(g: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    let first = versions.first().cloned().unwrap_or_default();
    json!({"name": g, "versions": vs, "preferredVersion": {"groupVersion": format!("{g}/{first}"), "version": first}})
}

fn api_group(st: &State, g: &str) -> Option<Value> {
    let doc = apis_document(st);
    let entry = doc
        .get("groups")
        .and_then(Value::as_array)
        .and_then(|gs| {
            gs.iter()
                .find(|x| x.get("name").and_then(Value::as_str) == Some(g))
        })?
        .clone();
    let mut m = Map::new();
    m.insert("kind".into(), json!("APIGroup"));
    m.insert("apiVersion".into(), json!("v1"));
    for (k, v) in entry.as_object().into_iter().flatten() {
        m.insert(k.clone(), v.clone());
    }
    Some(Value::Object(m))
}

fn group_version_document(st: &State, g: &str, v: &str) -> Value {
    let gv = if g.is_empty() {
        v.to_string()
    } else {
        format!("{g}/{v}")
    };
    if let Some(doc) = st.registry.builtin_discovery.get(&gv) {
        return doc.clone();
    }
    let mut resources = Vec::new();
    for ((tg, tv, _), t) in &st.registry.types {
        if tg != g || tv != v {
            continue;
        }
        resources.push(json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind,
            "verbs": ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"],
            "shortNames": t.short_names, "storageVersionHash": storage_hash(&t.plural)
        }));
        if t.status_subresource {
            resources.push(json!({"name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get", "patch", "update"]}));
        }
    }
    if resources.is_empty() {
        return Value::Null;
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

fn storage_hash(s: &str) -> String {
    let mut h: u64 = 1469598103934665603;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(1099511628211);
    }
    base64::engine::general_purpose::STANDARD.encode(h.to_be_bytes())
}

/// The recorded /openapi/v2 document as gnostic's `openapi.v2.Document`, encoded once.
fn v2_protobuf() -> bytes::Bytes {
    static PB: std::sync::OnceLock<bytes::Bytes> = std::sync::OnceLock::new();
    PB.get_or_init(|| {
        let body = recorded_body(docs::V2);
        let doc = body
            .as_object()
            .map(openapi_pb::document)
            .unwrap_or_default();
        bytes::Bytes::from(doc)
    })
    .clone()
}

/// `/openapi/v2` as JSON and protobuf: the recorded built-in document, plus — as the real
/// server publishes them — a definition per served version of each CRD (and its list), so
/// kubectl validates, diffs and explains custom objects. Rebuilt only when CRDs change.
fn openapi_v2(st: &State) -> (bytes::Bytes, bytes::Bytes) {
    type Cached = Option<(String, bytes::Bytes, bytes::Bytes)>;
    static CACHE: std::sync::Mutex<Cached> = std::sync::Mutex::new(None);
    let (extra, crd_paths) = crd_v2_definitions(st);
    if extra.is_empty() {
        return (builtin().v2_json.clone(), v2_protobuf());
    }
    let key = json!([extra, crd_paths]).to_string();
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((k, json, pb)) = cache.as_ref()
        && *k == key
    {
        return (json.clone(), pb.clone());
    }
    let mut body = recorded_body(docs::V2);
    // kubectl looks for the PATCH operation of a kind to know it takes dryRun (diff).
    let template = body
        .at("/paths/~1apis~1apps~1v1~1namespaces~1{namespace}~1deployments~1{name}")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(paths) = body.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, (gvk, namespaced)) in crd_paths {
            paths.insert(path, item_path(&template, &gvk, namespaced));
        }
    }
    if let Some(defs) = body.get_mut("definitions").and_then(Value::as_object_mut) {
        defs.extend(extra);
    }
    let json = bytes::Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
    let pb = bytes::Bytes::from(
        body.as_object()
            .map(openapi_pb::document)
            .unwrap_or_default(),
    );
    *cache = Some((key, json.clone(), pb.clone()));
    (json, pb)
}

/// An OpenAPI v3 schema of a CRD as Swagger 2.0 allows it: what v2 cannot say (`nullable`,
/// `oneOf`, `anyOf`, `not`) is dropped, as the API server's v2 publishing does.
fn v3_to_v2(schema: &Value) -> Value {
    match schema {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "nullable" | "oneOf" | "anyOf" | "not"))
                .map(|(k, v)| {
                    let v = match k.as_str() {
                        // Maps of schemas.
                        "properties" | "patternProperties" | "definitions" => Value::Object(
                            v.as_object()
                                .into_iter()
                                .flatten()
                                .map(|(n, s)| (n.clone(), v3_to_v2(s)))
                                .collect(),
                        ),
                        "items" | "additionalProperties" if v.is_object() => v3_to_v2(v),
                        "allOf" => {
                            Value::Array(v.as_array().into_iter().flatten().map(v3_to_v2).collect())
                        }
                        _ => v.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The item path of a custom kind, made from a built-in one (Deployment's): its operations
/// and parameters, with the kind's definition and group-version-kind.
fn item_path(template: &Value, gvk: &(String, String, String), namespaced: bool) -> Value {
    let (group, version, kind) = gvk;
    let reversed: Vec<&str> = group.split('.').rev().collect();
    let def = format!("#/definitions/{}.{version}.{kind}", reversed.join("."));
    fn walk(v: &Value, f: &dyn Fn(&str, &Value) -> Option<Value>) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), f(k, v).unwrap_or_else(|| walk(v, f))))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(|x| walk(x, f)).collect()),
            other => other.clone(),
        }
    }
    let mut out = walk(template, &|k, v| match k {
        "$ref" if v.as_str() == Some("#/definitions/io.k8s.api.apps.v1.Deployment") => {
            Some(Value::String(def.clone()))
        }
        "x-kubernetes-group-version-kind" => {
            Some(json!({"group": group, "kind": kind, "version": version}))
        }
        "tags" => Some(json!([format!("{}_{version}", group.replace('.', "_"))])),
        "operationId" => Some(Value::String(
            v.as_str()
                .unwrap_or_default()
                .replace("AppsV1", "")
                .replace("Deployment", kind),
        )),
        _ => None,
    });
    if !namespaced && let Some(params) = out.get_mut("parameters").and_then(Value::as_array_mut) {
        params.retain(|p| p.get("name").and_then(Value::as_str) != Some("namespace"));
    }
    out
}

/// The v2 definitions of the served versions of every CRD (`com.example.v1.Widget` and
/// `com.example.v1.WidgetList`), and their item paths with each path's kind and scope.
#[allow(clippy::type_complexity)]
fn crd_v2_definitions(
    st: &State,
) -> (
    Map<String, Value>,
    BTreeMap<String, ((String, String, String), bool)>,
) {
    let mut out = Map::new();
    let mut paths = BTreeMap::new();
    let Some(crds) = st
        .registry
        .get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    else {
        return (out, paths);
    };
    for crd in st.list(&crds, "") {
        let group = crd.at("/spec/group").and_then(Value::as_str).unwrap_or("");
        let kind = crd
            .at("/spec/names/kind")
            .and_then(Value::as_str)
            .unwrap_or("");
        let list_kind = crd
            .at("/spec/names/listKind")
            .and_then(Value::as_str)
            .map_or_else(|| format!("{kind}List"), str::to_owned);
        let reversed: Vec<&str> = group.split('.').rev().collect();
        let plural = crd
            .at("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or("");
        let namespaced = crd.at("/spec/scope").and_then(Value::as_str) != Some("Cluster");
        for ver in crd
            .at("/spec/versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
        {
            let Some(v) = ver.get("name").and_then(Value::as_str) else {
                continue;
            };
            let path = if namespaced {
                format!("/apis/{group}/{v}/namespaces/{{namespace}}/{plural}/{{name}}")
            } else {
                format!("/apis/{group}/{v}/{plural}/{{name}}")
            };
            paths.insert(
                path,
                (
                    (group.to_owned(), v.to_owned(), kind.to_owned()),
                    namespaced,
                ),
            );
            let prefix = format!("{}.{v}", reversed.join("."));
            out.insert(
                format!("{prefix}.{kind}"),
                crd_object_definition(ver, group, v, kind),
            );
            out.insert(
                format!("{prefix}.{list_kind}"),
                crd_list_definition(&prefix, group, v, kind, &list_kind),
            );
        }
    }
    (out, paths)
}

fn group_version_kind(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "version": version, "kind": kind}])
}

/// The v2 definition of a served version of a custom resource: its schema with the standard
/// `apiVersion`, `kind` and `metadata` properties.
fn crd_object_definition(ver: &Value, group: &str, v: &str, kind: &str) -> Value {
    let mut s = ver
        .at("/schema/openAPIV3Schema")
        .map(v3_to_v2)
        .unwrap_or(json!({"type": "object"}));
    if let Some(m) = s.as_object_mut() {
        let props = m.entry("properties").or_insert(json!({}));
        if let Some(p) = props.as_object_mut() {
            p.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
            p.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
            p.insert(
                "metadata".into(),
                json!({"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}),
            );
        }
        m.insert(
            "x-kubernetes-group-version-kind".into(),
            group_version_kind(group, v, kind),
        );
    }
    s
}

/// The v2 definition of a custom resource's list kind.
fn crd_list_definition(prefix: &str, group: &str, v: &str, kind: &str, list_kind: &str) -> Value {
    json!({
        "description": format!("{list_kind} is a list of {kind}"),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "items": {"type": "array", "items": {"$ref": format!("#/definitions/{prefix}.{kind}")}},
            "kind": {"type": "string"},
            "metadata": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"}
        },
        "x-kubernetes-group-version-kind": group_version_kind(group, v, list_kind),
    })
}

fn openapi_v3_index(st: &State) -> Value {
    let index = recorded_body(docs::V3_INDEX);
    let mut paths = Map::new();
    if let Some(p) = index.get("paths").and_then(Value::as_object) {
        for (k, v) in p {
            if docs::V3.iter().any(|(n, _)| n == k) {
                paths.insert(k.clone(), v.clone());
            }
        }
    }
    for (g, versions) in st.registry.custom_groups() {
        for v in versions {
            let p = format!("apis/{g}/{v}");
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", storage_hash(&format!("{p}{}", st.rv)))}),
            );
        }
    }
    json!({"paths": paths})
}

fn openapi_v3_doc(st: &State, path: &str) -> Option<String> {
    if let Some((_, text)) = docs::V3.iter().find(|(n, _)| *n == path) {
        return serde_json::to_string(&recorded_body(text)).ok();
    }
    let rest = path.strip_prefix("apis/")?;
    let (g, v) = rest.split_once('/')?;
    let crds = st
        .registry
        .get("apiextensions.k8s.io", "v1", "customresourcedefinitions")?;
    let mut schemas = Map::new();
    for crd in st.list(&crds, "") {
        if crd.at("/spec/group").and_then(Value::as_str) != Some(g) {
            continue;
        }
        let kind = crd
            .at("/spec/names/kind")
            .and_then(Value::as_str)
            .unwrap_or("");
        let reversed: Vec<&str> = g.split('.').rev().collect();
        let name = format!("{}.{v}.{kind}", reversed.join("."));
        for ver in crd
            .at("/spec/versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if ver.get("name").and_then(Value::as_str) != Some(v) {
                continue;
            }
            let mut s = ver
                .at("/schema/openAPIV3Schema")
                .cloned()
                .unwrap_or(json!({"type": "object"}));
            if let Some(m) = s.as_object_mut() {
                let props = m.entry("properties").or_insert(json!({}));
                if let Some(p) = props.as_object_mut() {
                    p.insert("apiVersion".into(), json!({"type": "string"}));
                    p.insert("kind".into(), json!({"type": "string"}));
                    p.insert("metadata".into(), json!({"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]}));
                }
                m.insert(
                    "x-kubernetes-group-version-kind".into(),
                    json!([{"group": g, "version": v, "kind": kind}]),
                );
            }
            schemas.insert(name.clone(), s);
        }
    }
    if schemas.is_empty() {
        return None;
    }
    // ObjectMeta and what it references, from the core document.
    let core = recorded_body(docs::V3[0].1);
    if let Some(all) = core.at("/components/schemas").and_then(Value::as_object) {
        let mut todo = vec!["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta".to_string()];
        while let Some(n) = todo.pop() {
            if schemas.contains_key(&n) {
                continue;
            }
            if let Some(s) = all.get(&n) {
                let text = s.to_string();
                for part in text.split("#/components/schemas/").skip(1) {
                    if let Some(end) = part.find('"') {
                        todo.push(part[..end].to_string());
                    }
                }
                schemas.insert(n, s.clone());
            }
        }
    }
    let doc = json!({"openapi": "3.0.0", "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"}, "paths": {}, "components": {"schemas": schemas}});
    serde_json::to_string(&doc).ok()
}

/// Resource endpoints under a group version.
fn resource(state: &Mutex<State>, req: &Request, g: &str, v: &str, rest: &[&str]) -> Reply {
    let Some((rt, path)) = resource_path(state, g, v, rest) else {
        return not_found_page();
    };
    if !serves_subresource(&rt, path.sub.as_deref()) {
        return not_found_page();
    }
    let manager = req
        .query
        .get("fieldManager")
        .cloned()
        .unwrap_or_else(|| default_manager(&req.user_agent));
    let dry_run = req.query.get("dryRun").is_some_and(|d| d == "All");
    let opts = WriteOpts {
        manager: &manager,
        dry_run,
        subresource: path.sub.as_deref().filter(|s| *s == "status"),
    };
    match resource_verb(state, req, rt, &path, &opts) {
        Ok(r) => r,
        Err(e) => e.into(),
    }
}

/// What a resource URL names below its group version.
struct ResourcePath {
    /// Empty for cluster-scoped types and lists of all namespaces.
    ns: String,
    name: Option<String>,
    sub: Option<String>,
}

/// The type and the path of `[namespaces/NS/]PLURAL[/NAME[/SUB]]` (`None`: no such page).
fn resource_path(
    state: &Mutex<State>,
    g: &str,
    v: &str,
    rest: &[&str],
) -> Option<(Arc<ResourceType>, ResourcePath)> {
    let st = lock(state);
    let path = |ns: &str, p: &str, tail: &[&str]| -> Option<(String, ResourcePath)> {
        let (name, sub) = match tail {
            [] => (None, None),
            [n] => (Some(n.to_string()), None),
            [n, s] => (Some(n.to_string()), Some(s.to_string())),
            _ => return None,
        };
        let ns = ns.to_string();
        Some((p.to_string(), ResourcePath { ns, name, sub }))
    };
    let (plural, path) = match rest {
        ["namespaces", ns, p, tail @ ..]
            if st.registry.get(g, v, p).is_some_and(|t| t.namespaced) =>
        {
            path(ns, p, tail)?
        }
        [p, tail @ ..] if tail.len() <= 2 => path("", p, tail)?,
        _ => return None,
    };
    let rt = st.registry.get(g, v, &plural)?;
    Some((rt, path))
}

/// Whether the type has the subresource (`status` always, `log`, `finalize` and `scale` for
/// their kinds); no subresource is the resource itself.
fn serves_subresource(rt: &ResourceType, sub: Option<&str>) -> bool {
    match sub {
        None | Some("status") => true,
        Some("log") => rt.kind == "Pod",
        Some("finalize") => rt.kind == "Namespace",
        Some("scale") => matches!(
            rt.kind.as_str(),
            "Deployment" | "StatefulSet" | "ReplicaSet"
        ),
        Some(_) => false,
    }
}

/// The verb of a resource request, on the collection or on one object.
fn resource_verb(
    state: &Mutex<State>,
    req: &Request,
    rt: Arc<ResourceType>,
    path: &ResourcePath,
    opts: &WriteOpts,
) -> Result<Reply, ApiError> {
    let (ns, sub) = (&path.ns, path.sub.as_deref());
    match (req.method.as_str(), path.name.as_deref()) {
        ("GET", None) => {
            let watch = req
                .query
                .get("watch")
                .is_some_and(|w| w == "1" || w == "true");
            if watch {
                start_watch(state, req, rt, ns, None)
            } else {
                list(state, req, &rt, ns)
            }
        }
        ("GET", Some(n)) if sub == Some("log") => pod_log(state, req, &rt, ns, n),
        (method, Some(n)) if sub == Some("scale") => {
            scale(state, req, method, &rt, ns, n, opts.manager, opts.dry_run)
        }
        ("GET", Some(n)) => get_one(state, req, &rt, ns, n),
        ("POST", None) => parse_body(&req.body).and_then(|body| {
            let mut st = lock(state);
            let ns = if ns.is_empty() {
                meta_str(&body, "namespace").to_string()
            } else {
                ns.clone()
            };
            st.create(&rt, &ns, body, opts)
                .map(|o| Reply::Object(201, o))
        }),
        ("PUT", Some(n)) => parse_body(&req.body).and_then(|body| {
            let mut st = lock(state);
            st.update(&rt, ns, n, body, opts)
                .map(|o| Reply::Object(200, o))
        }),
        ("PATCH", Some(n)) => patch(state, req, &rt, ns, n, opts),
        ("DELETE", Some(n)) => delete_one(state, req, &rt, ns, n, opts.dry_run),
        ("DELETE", None) => delete_collection(state, req, &rt, ns, opts.dry_run),
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )),
    }
}

fn get_one(
    state: &Mutex<State>,
    req: &Request,
    rt: &ResourceType,
    ns: &str,
    n: &str,
) -> Result<Reply, ApiError> {
    let st = lock(state);
    match st.get_arc(rt, ns, n) {
        // kubectl get NAME asks for a one-row Table, as for lists.
        Some(o) if req.accept.contains("as=Table") => {
            let rv = meta_str(o, "resourceVersion").parse().unwrap_or(st.rv);
            Ok(Reply::Json(
                200,
                crate::tables::table(rt, std::slice::from_ref(o), rv, req),
            ))
        }
        Some(o) => Ok(Reply::Object(200, o.clone())),
        None => Err(ApiError::not_found(&rt.group, &rt.plural, n)),
    }
}

/// DELETE of one object, with the propagation policy of the query or the body (`Background`
/// by default).
fn delete_one(
    state: &Mutex<State>,
    req: &Request,
    rt: &ResourceType,
    ns: &str,
    n: &str,
    dry_run: bool,
) -> Result<Reply, ApiError> {
    let body = parse_body(&req.body).unwrap_or(Value::Null);
    let propagation = req
        .query
        .get("propagationPolicy")
        .cloned()
        .or_else(|| {
            body.get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "Background".into());
    let mut st = lock(state);
    st.delete(rt, ns, n, &propagation, dry_run)
        .map(|o| Reply::Object(200, o))
}

/// DELETE of a collection: the objects its label selector matches, each in the background.
fn delete_collection(
    state: &Mutex<State>,
    req: &Request,
    rt: &ResourceType,
    ns: &str,
    dry_run: bool,
) -> Result<Reply, ApiError> {
    let mut st = lock(state);
    let sel = LabelSelector::parse(req.query.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let items: Vec<Value> = st
        .list(rt, ns)
        .into_iter()
        .filter(|o| sel.matches_object(o))
        .collect();
    for o in &items {
        let _ = st.delete(
            rt,
            meta_str(o, "namespace"),
            meta_str(o, "name"),
            "Background",
            dry_run,
        );
    }
    Ok(Reply::Json(200, list_body(rt, items, st.rv, None, None)))
}

/// The `autoscaling/v1` Scale of a Deployment, StatefulSet or ReplicaSet.
fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .at("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let meta = |k: &str| {
        obj.at(&format!("/metadata/{k}"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta("name"),
            "namespace": meta("namespace"),
            "uid": meta("uid"),
            "resourceVersion": meta("resourceVersion"),
            "creationTimestamp": meta("creationTimestamp"),
        },
        "spec": { "replicas": obj.at("/spec/replicas").cloned().unwrap_or(json!(1)) },
        "status": {
            "replicas": obj.at("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// The replicas a written Scale asks for: a PUT's resourceVersion must be the parent's, and
/// the replicas must be set and not negative.
fn scale_replicas(
    method: &str,
    rt: &ResourceType,
    name: &str,
    wanted: &Value,
    parent: &Value,
) -> Result<i64, ApiError> {
    let rv = wanted
        .at("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let live_rv = parent
        .at("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if method == "PUT" && !rv.is_empty() && rv != live_rv {
        return Err(ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {}.{} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                rt.plural, rt.group
            ),
        ));
    }
    let Some(replicas) = wanted.at("/spec/replicas").and_then(Value::as_i64) else {
        return Err(ApiError::new(
            422,
            "Invalid",
            format!("Scale.autoscaling \"{name}\" is invalid: spec.replicas: Required value"),
        ));
    };
    if replicas < 0 {
        return Err(ApiError::new(
            422,
            "Invalid",
            format!(
                "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
            ),
        ));
    }
    Ok(replicas)
}

/// The `scale` subresource: GET, PUT (with the parent's resourceVersion as precondition) and
/// merge PATCH; a change of replicas is an Update of the parent by the caller, recorded with
/// subresource `scale`.
#[allow(clippy::too_many_arguments)]
fn scale(
    state: &Mutex<State>,
    req: &Request,
    method: &str,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    manager: &str,
    dry_run: bool,
) -> Result<Reply, ApiError> {
    let mut st = lock(state);
    let parent = st
        .get(rt, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&rt.group, &format!("{}/scale", rt.plural), name))?;
    let current = scale_of(&parent);
    let wanted = match method {
        "GET" => return Ok(Reply::Json(200, current)),
        "PUT" => parse_body(&req.body)?,
        "PATCH" => {
            let patch = parse_body(&req.body)?;
            let mut doc = current.clone();
            crate::apply::merge_patch(&mut doc, &patch);
            doc
        }
        _ => {
            return Err(ApiError::new(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            ));
        }
    };
    let replicas = scale_replicas(method, rt, name, &wanted, &parent)?;
    let mut body = parent.clone();
    if let Some(spec) = body.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), json!(replicas));
    }
    let opts = WriteOpts {
        manager,
        dry_run,
        subresource: Some("scale"),
    };
    let updated = st.update(rt, ns, name, body, &opts)?;
    Ok(Reply::Json(200, scale_of(&updated)))
}

fn default_manager(user_agent: &str) -> String {
    let ua = user_agent.split('/').next().unwrap_or("").to_string();
    if ua.is_empty() { "unknown".into() } else { ua }
}

fn patch(
    state: &Mutex<State>,
    req: &Request,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    opts: &WriteOpts,
) -> Result<Reply, ApiError> {
    let ct = req.content_type.split(';').next().unwrap_or("").trim();
    let unsupported = || {
        ApiError::new(415, "UnsupportedMediaType", "415: Unsupported Media Type")
            .with_details(json!({}))
    };
    match ct {
        "application/apply-patch+yaml" => {
            let Some(manager) = req.query.get("fieldManager").filter(|m| !m.is_empty()) else {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                )
                .with_details(json!({"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}]})));
            };
            let body = parse_body(&req.body)?;
            let force = req.query.get("force").is_some_and(|f| f == "true");
            let mut st = lock(state);
            let (obj, created) = st.apply(rt, ns, name, body, manager, force, opts.dry_run)?;
            Ok(Reply::Object(if created { 201 } else { 200 }, obj))
        }
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            let body = parse_body(&req.body)?;
            let mut st = lock(state);
            let strategic = ct.starts_with("application/strategic");
            st.patch(rt, ns, name, strategic, &body, opts)
                .map(|o| Reply::Object(200, o))
        }
        "application/json-patch+json" => {
            let body = parse_body(&req.body)?;
            let mut st = lock(state);
            let Some(old) = st.get(rt, ns, name).cloned() else {
                return Err(ApiError::not_found(&rt.group, &rt.plural, name));
            };
            let mut obj = old.clone();
            json_patch(&mut obj, &body)?;
            st.update(rt, ns, name, obj, opts)
                .map(|o| Reply::Object(200, o))
        }
        _ => Err(unsupported()),
    }
}

/// RFC 6902 (add, remove, replace, test).
fn json_patch(obj: &mut Value, ops: &Value) -> Result<(), ApiError> {
    for op in ops.as_array().into_iter().flatten() {
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        let (parent, last) = path.rsplit_once('/').unwrap_or(("", path));
        let last = last.replace("~1", "/").replace("~0", "~");
        let value = op.get("value").cloned().unwrap_or(Value::Null);
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        if kind == "test" {
            if obj.at(path) != Some(&value) {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    format!(
                        "the server rejected our request due to an error in our request: test failed at {path}"
                    ),
                ));
            }
            continue;
        }
        let target = obj
            .at_mut(parent)
            .ok_or_else(|| ApiError::new(422, "Invalid", format!("the server rejected our request due to an error in our request: missing path {path}")))?;
        match (kind, target) {
            ("add" | "replace", Value::Object(m)) => {
                m.insert(last, value);
            }
            ("remove", Value::Object(m)) => {
                m.shift_remove(&last);
            }
            ("add", Value::Array(a)) => {
                if last == "-" {
                    a.push(value);
                } else if let Ok(i) = last.parse::<usize>() {
                    a.insert(i.min(a.len()), value);
                }
            }
            ("replace", Value::Array(a)) => {
                if let Some(x) = last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                    *x = value;
                }
            }
            ("remove", Value::Array(a)) => {
                if let Ok(i) = last.parse::<usize>()
                    && i < a.len()
                {
                    a.remove(i);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn selectors(req: &Request) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(req.query.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let fields = FieldSelector::parse(req.query.get("fieldSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((labels, fields))
}

fn list_body(
    rt: &ResourceType,
    items: Vec<Value>,
    rv: u64,
    cont: Option<String>,
    remaining: Option<usize>,
) -> Value {
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), json!(rv.to_string()));
    if let Some(c) = cont {
        meta.insert("continue".into(), json!(c));
    }
    if let Some(r) = remaining {
        meta.insert("remainingItemCount".into(), json!(r));
    }
    json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": meta, "items": items})
}

fn continue_token(rv: u64, start: &str) -> String {
    let t = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{start}\u{0}")});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t.to_string())
}

/// The key a continue token starts at, and the resourceVersion it lists at.
fn decode_continue(c: &str) -> Result<(String, Option<u64>), ApiError> {
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.trim_end_matches('='))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .ok_or_else(|| ApiError::bad_request("continue key is not valid: illegal base64 data"))?;
    let start = decoded
        .get("start")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Ok((start, decoded.get("rv").and_then(Value::as_u64)))
}

fn list(
    state: &Mutex<State>,
    req: &Request,
    rt: &Arc<ResourceType>,
    ns: &str,
) -> Result<Reply, ApiError> {
    let (labels, fields) = selectors(req)?;
    let (start, token_rv) = match req.query.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => decode_continue(c)?,
        None => (String::new(), None),
    };
    let limit = req
        .query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let keep = |o: &Value| labels.matches_object(o) && fields.matches(o);
    let st = lock(state);
    let all_ns = ns.is_empty() && rt.namespaced;
    let page = st.list_page(rt, (!all_ns).then_some(ns), &start, limit, &keep);
    let rv = token_rv.unwrap_or(st.rv);
    drop(st);
    let items = page.items;
    // etcd counts the keys that follow, matching or not, so a selector gets no count.
    let counted = labels.is_empty() && fields.is_empty();
    let (cont, remaining) = match page.last {
        Some(last) => (
            Some(continue_token(rv, &last)),
            counted.then_some(page.remaining),
        ),
        None => (None, None),
    };
    if req.accept.contains("as=Table") {
        let items: Vec<Value> = items.iter().map(|o| (**o).clone()).collect();
        return Ok(Reply::Json(200, crate::tables::table(rt, &items, rv, req)));
    }
    let Value::Object(head) = list_body(rt, Vec::new(), rv, cont, remaining) else {
        return Err(ApiError::internal("list body is not an object"));
    };
    let text = |k: &str| {
        head.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Ok(Reply::List(ListReply {
        kind: text("kind"),
        api_version: text("apiVersion"),
        metadata: head
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        items,
    }))
}

fn start_watch(
    state: &Mutex<State>,
    req: &Request,
    rt: Arc<ResourceType>,
    ns: &str,
    name: Option<String>,
) -> Result<Reply, ApiError> {
    let (labels, fields) = selectors(req)?;
    let st = lock(state);
    let rx = st.tx.subscribe();
    let requested = req
        .query
        .get("resourceVersion")
        .and_then(|r| r.parse::<u64>().ok())
        .filter(|r| *r > 0);
    let mut initial = Vec::new();
    let from_rv = match requested {
        Some(r) => {
            let oldest = st.history.front().map(|e| e.rv).unwrap_or(st.rv);
            if r + 1 < oldest {
                return Err(ApiError::new(
                    410,
                    "Expired",
                    format!("too old resource version: {r} ({})", oldest - 1),
                ));
            }
            for e in &st.history {
                if e.rv > r
                    && e.group == rt.group
                    && e.plural == rt.plural
                    && (ns.is_empty() || e.namespace == ns)
                {
                    initial.push(json!({"type": e.kind, "object": *e.object}));
                }
            }
            r
        }
        None => {
            for o in st.list_arc(&rt, ns) {
                if labels.matches_object(&o) && fields.matches(&o) {
                    initial.push(json!({"type": "ADDED", "object": *o}));
                }
            }
            st.rv
        }
    };
    let last_rv = st.rv;
    drop(st);
    initial.retain(|e| {
        let o = e.get("object").unwrap_or(&Value::Null);
        labels.matches_object(o) && fields.matches(o)
    });
    let timeout_secs = req
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    Ok(Reply::Watch(Box::new(WatchSpec {
        rt,
        namespace: ns.to_string(),
        name,
        labels,
        fields,
        from_rv: from_rv.max(last_rv),
        timeout_secs,
        bookmarks: req
            .query
            .get("allowWatchBookmarks")
            .is_some_and(|b| b == "true"),
        initial,
        rx,
    })))
}

fn pod_log(
    state: &Mutex<State>,
    req: &Request,
    rt: &ResourceType,
    ns: &str,
    name: &str,
) -> Result<Reply, ApiError> {
    let st = lock(state);
    let Some(pod) = st.get(rt, ns, name).cloned() else {
        return Err(ApiError::not_found(&rt.group, &rt.plural, name));
    };
    let containers: Vec<String> = pod
        .at("/spec/containers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let container = match req.query.get("container") {
        Some(c) => c.clone(),
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
    };
    if !containers.contains(&container) {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    let lines = st
        .logs
        .get(&(ns.to_string(), name.to_string(), container.clone()))
        .cloned();
    let Some(mut lines) = lines else {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
        )));
    };
    if let Some(n) = req
        .query
        .get("tailLines")
        .and_then(|t| t.parse::<usize>().ok())
        && lines.len() > n
    {
        lines = lines.split_off(lines.len() - n);
    }
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    Ok(Reply::Raw(200, "text/plain", text))
}
