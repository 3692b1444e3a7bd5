//! The served resource types: built-ins from the recorded discovery documents, custom ones from
//! CustomResourceDefinitions.

use cairn_model::JsonPath as _;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::schema::{self, SchemaRef, builtin, docs, recorded_body};

#[derive(Debug, Clone)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub schema: SchemaRef,
    pub generation: bool,
    pub status_subresource: bool,
    /// Served from a CRD.
    pub custom: bool,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `apps/v1, Kind=Deployment` / `/v1, Kind=ConfigMap`.
    pub fn gvk_string(&self) -> String {
        format!("{}/{}, Kind={}", self.group, self.version, self.kind)
    }
}

const GENERATION_KINDS: &[&str] = &[
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "NetworkPolicy",
    "Ingress",
    "IngressClass",
    "CustomResourceDefinition",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
];

/// All served types, keyed by (group, version, plural).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub types: BTreeMap<(String, String, String), Arc<ResourceType>>,
    /// The discovery documents of built-in group versions: "" -> /api/v1 etc.
    pub builtin_discovery: BTreeMap<String, Value>,
}

/// A built-in type from its entry `r` in the recorded discovery document of its group
/// version (`resources`, where its `status` subresource is listed too).
fn builtin_type(
    b: &schema::Builtin,
    group: &str,
    version: &str,
    r: &Value,
    resources: &[Value],
) -> ResourceType {
    let name = r.get("name").and_then(Value::as_str).unwrap_or("");
    let kind = r.get("kind").and_then(Value::as_str).unwrap_or("");
    let idx = b
        .by_gvk
        .get(&(group.to_string(), version.to_string(), kind.to_string()))
        .copied()
        .unwrap_or(schema::ANY);
    let status_sub = resources
        .iter()
        .any(|x| x.get("name").and_then(Value::as_str) == Some(&format!("{name}/status")));
    ResourceType {
        group: group.to_string(),
        version: version.to_string(),
        kind: kind.to_string(),
        plural: name.to_string(),
        singular: r
            .get("singularName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| kind.to_lowercase()),
        namespaced: r.get("namespaced").and_then(Value::as_bool).unwrap_or(true),
        short_names: r
            .get("shortNames")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        schema: SchemaRef {
            arena: b.arena.clone(),
            idx,
        },
        generation: GENERATION_KINDS.contains(&kind),
        status_subresource: status_sub,
        custom: false,
    }
}

impl Registry {
    pub fn builtin() -> Registry {
        let b = builtin();
        let mut reg = Registry::default();
        for text in docs::DISCOVERY {
            let body = recorded_body(text);
            if body.get("kind").and_then(Value::as_str) != Some("APIResourceList") {
                continue;
            }
            let gv = body
                .get("groupVersion")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let (group, version) = match gv.split_once('/') {
                Some((g, v)) => (g.to_string(), v.to_string()),
                None => (String::new(), gv.clone()),
            };
            let resources = body
                .get("resources")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for r in &resources {
                let name = r.get("name").and_then(Value::as_str).unwrap_or("");
                if name.contains('/') {
                    continue;
                }
                let rt = builtin_type(b, &group, &version, r, &resources);
                reg.types.insert(
                    (group.clone(), version.clone(), name.to_string()),
                    Arc::new(rt),
                );
            }
            reg.builtin_discovery.insert(gv, body);
        }
        reg
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// The type of a kind in a group (any version).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.types
            .values()
            .find(|t| t.api_version() == api_version && t.kind == kind)
            .cloned()
    }

    /// Adds (or replaces) the types an established CRD serves; returns them.
    pub fn add_crd(&mut self, crd: &Value) -> Vec<Arc<ResourceType>> {
        self.remove_crd(crd);
        let spec = crd.get("spec").cloned().unwrap_or(Value::Null);
        let group = spec.get("group").and_then(Value::as_str).unwrap_or("");
        let names = spec.get("names").cloned().unwrap_or(Value::Null);
        let s = |k: &str| {
            names
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let kind = s("kind");
        let plural = s("plural");
        let singular = {
            let x = s("singular");
            if x.is_empty() { kind.to_lowercase() } else { x }
        };
        let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
        let short_names: Vec<String> = names
            .get("shortNames")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mut out = Vec::new();
        for v in spec
            .get("versions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            if v.get("served").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let version = v.get("name").and_then(Value::as_str).unwrap_or("v1");
            let schema_json = v
                .get("schema")
                .and_then(|s| s.get("openAPIV3Schema"))
                .cloned()
                .unwrap_or(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
            let rt = Arc::new(ResourceType {
                group: group.to_string(),
                version: version.to_string(),
                kind: kind.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                namespaced,
                short_names: short_names.clone(),
                schema: schema::from_crd_schema(&schema_json),
                generation: true,
                status_subresource: v
                    .get("subresources")
                    .and_then(|s| s.get("status"))
                    .is_some(),
                custom: true,
            });
            self.types.insert(
                (group.to_string(), version.to_string(), plural.clone()),
                rt.clone(),
            );
            out.push(rt);
        }
        out
    }

    pub fn remove_crd(&mut self, crd: &Value) {
        let group = crd.at("/spec/group").and_then(Value::as_str).unwrap_or("");
        let plural = crd
            .at("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or("");
        self.types
            .retain(|(g, _, p), t| !(t.custom && g == group && p == plural));
    }

    /// Custom group versions: group -> versions.
    pub fn custom_groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for ((g, v, _), t) in &self.types {
            if t.custom {
                let e = out.entry(g.clone()).or_default();
                if !e.contains(v) {
                    e.push(v.clone());
                }
            }
        }
        out
    }
}
