//! Reading the live state: one LIST per kind (and namespace) with cairn's label selector.

use cairn_model::JsonPath as _;
use std::collections::{BTreeMap, BTreeSet};

use cairn_model::ResourceId;
use futures::future::try_join_all;
use kube::Api;
use kube::api::{DynamicObject, ListParams};
use serde_json::Value as J;

use crate::kinds::{self, Catalog, Kind};
use crate::{Cluster, ENVIRONMENT, INVENTORY, KubeError, MANAGED_BY};

/// The live objects cairn manages for one environment.
#[derive(Debug, Default)]
pub struct Observed {
    /// Objects by id.
    pub objects: BTreeMap<ResourceId, J>,
}

/// The label selector of an environment's objects.
pub fn selector(env: &str) -> String {
    format!("{MANAGED_BY}=cairn,{ENVIRONMENT}={env}")
}

async fn list(
    cluster: &Cluster,
    kind: &Kind,
    namespace: Option<&str>,
    selector: &str,
) -> Result<Vec<J>, KubeError> {
    let ar = kind.api_resource();
    let api: Api<DynamicObject> = match (kind.namespaced, namespace) {
        (true, Some(ns)) => Api::namespaced_with(cluster.client.clone(), ns, &ar),
        _ => Api::all_with(cluster.client.clone(), &ar),
    };
    let what = match namespace {
        Some(ns) if kind.namespaced => format!("list {} in {ns}", kind.plural),
        _ => format!("list {}", kind.plural),
    };
    let mut out = Vec::new();
    let mut params = ListParams::default().labels(selector).limit(500);
    loop {
        let page = match api.list(&params).await {
            Ok(page) => page,
            // A namespace that does not exist yet holds nothing.
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(out),
            Err(e) => return Err(KubeError::api(what, e)),
        };
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        for item in page.items {
            let mut json =
                serde_json::to_value(&item).map_err(|e| KubeError::Internal(e.to_string()))?;
            if let J::Object(m) = &mut json {
                m.insert("apiVersion".into(), J::String(kind.api_version.to_string()));
                m.insert("kind".into(), J::String(kind.kind.to_string()));
            }
            out.push(json);
        }
        match next {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

fn id_of(kind: &Kind, obj: &J) -> Option<ResourceId> {
    let name = obj.at("/metadata/name")?.as_str()?;
    let ns = obj.at("/metadata/namespace").and_then(J::as_str);
    Some(ResourceId::kube(
        &kind.kind,
        if kind.namespaced { ns } else { None },
        name,
    ))
}

/// Kinds recorded in an inventory ConfigMap.
fn inventory_kinds(objects: &BTreeMap<ResourceId, J>) -> BTreeSet<String> {
    objects
        .iter()
        .filter(|(id, _)| id.kind == "ConfigMap" && id.name.starts_with(INVENTORY))
        .filter_map(|(_, cm)| cm.at("/data/kinds").and_then(J::as_str))
        .flat_map(|s| s.split(',').map(str::to_owned).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Where to read: in some namespaces (a plan), or in all of them (a destroy: whatever the
/// environment owns, wherever it is).
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// In these namespaces (and cluster-wide kinds).
    In(&'a BTreeSet<String>),
    /// One LIST per kind across every namespace.
    Everywhere,
}

impl Scope<'_> {
    /// The namespaces to list a namespaced kind in (`None`: all at once).
    fn namespaces(&self) -> Vec<Option<&str>> {
        match self {
            Scope::In(set) => set.iter().map(|ns| Some(ns.as_str())).collect(),
            Scope::Everywhere => vec![None],
        }
    }
}

/// Reads every object of `env` of the given kinds (plus the kinds its inventory lists) in the
/// given scope. Custom kinds the inventory lists are learnt into `catalog`.
pub async fn observe(
    cluster: &Cluster,
    env: &str,
    catalog: &mut Catalog,
    kinds_wanted: &BTreeSet<String>,
    scope: Scope<'_>,
) -> Result<Observed, KubeError> {
    let sel = selector(env);
    let mut observed = Observed::default();
    let namespaces = scope.namespaces();
    // ConfigMaps first: the inventory among them says which other kinds to read.
    let config_maps =
        kinds::kind("ConfigMap").ok_or_else(|| KubeError::Internal("no ConfigMap kind".into()))?;
    let lists = try_join_all(
        namespaces
            .iter()
            .map(|ns| list(cluster, config_maps, *ns, &sel)),
    )
    .await?;
    for obj in lists.into_iter().flatten() {
        if let Some(id) = id_of(config_maps, &obj) {
            observed.objects.insert(id, obj);
        }
    }
    let mut kinds_to_read: BTreeSet<String> = kinds_wanted.clone();
    let listed: Vec<String> = inventory_kinds(&observed.objects).into_iter().collect();
    kinds_to_read.extend(catalog.learn_inventory(cluster, &listed).await?);
    kinds_to_read.remove("ConfigMap");
    let mut requests = Vec::new();
    for name in &kinds_to_read {
        let kind = catalog
            .get(name)
            .ok_or_else(|| KubeError::UnsupportedKind(name.clone()))?;
        if kind.namespaced {
            for ns in &namespaces {
                requests.push((kind.clone(), *ns));
            }
        } else {
            requests.push((kind, None));
        }
    }
    let lists = try_join_all(
        requests
            .iter()
            .map(|(kind, ns)| list(cluster, kind, *ns, &sel)),
    )
    .await?;
    for ((kind, _), objects) in requests.iter().zip(lists) {
        for obj in objects {
            if let Some(id) = id_of(kind, &obj) {
                observed.objects.insert(id, obj);
            }
        }
    }
    Ok(observed)
}
