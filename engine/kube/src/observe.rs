//! Reading the live state: one LIST per kind (and namespace) with cairn's label selector.

use cairn_model::JsonPath as _;
use std::collections::{BTreeMap, BTreeSet};

use cairn_model::ResourceId;
use kube::api::ListParams;
use serde_json::Value as J;

use crate::kinds::{Catalog, Kind};
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

/// One page of a LIST, its items left as JSON: parsed once, never converted.
#[derive(serde::Deserialize)]
struct Page {
    #[serde(default)]
    metadata: kube::api::ListMeta,
    #[serde(default)]
    items: Vec<J>,
}

async fn list(
    cluster: &Cluster,
    kind: &Kind,
    namespace: Option<&str>,
    selector: &str,
) -> Result<Vec<J>, KubeError> {
    let what = match namespace.filter(|_| kind.namespaced) {
        Some(ns) => format!("list {} in {ns}", kind.plural),
        None => format!("list {}", kind.plural),
    };
    let request = kind.request(namespace);
    let mut out = Vec::new();
    let mut params = ListParams::default().labels(selector).limit(500);
    loop {
        let page: Page = match request.list(&params) {
            Ok(req) => match cluster.client.request(req).await {
                Ok(page) => page,
                // A namespace that does not exist yet holds nothing.
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(out),
                Err(e) => return Err(KubeError::api(what, e)),
            },
            Err(e) => return Err(KubeError::Internal(format!("{what}: {e}"))),
        };
        for mut item in page.items {
            if let J::Object(m) = &mut item {
                m.insert("apiVersion".into(), J::String(kind.api_version.to_string()));
                m.insert("kind".into(), J::String(kind.kind.to_string()));
            }
            out.push(item);
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// The objects of `kinds` with the environment's label, one LIST per kind and namespace, all
/// at once.
async fn list_kinds(
    cluster: &Cluster,
    catalog: &Catalog,
    kinds: &BTreeSet<String>,
    namespaces: &[Option<&str>],
    sel: &str,
) -> Result<Vec<(ResourceId, J)>, KubeError> {
    let mut requests = Vec::new();
    for name in kinds {
        let kind = catalog
            .get(name)
            .ok_or_else(|| KubeError::UnsupportedKind(name.clone()))?;
        if kind.namespaced {
            for ns in namespaces {
                requests.push((kind.clone(), *ns));
            }
        } else {
            requests.push((kind, None));
        }
    }
    // Each LIST is a task of its own: its pages are parsed on any of the runtime's threads,
    // not all on the one that awaits the plan.
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (kind, ns)) in requests.iter().enumerate() {
        let (cluster, kind, sel) = (cluster.clone(), kind.clone(), sel.to_owned());
        let ns = ns.map(str::to_owned);
        tasks.spawn(async move { (i, list(&cluster, &kind, ns.as_deref(), &sel).await) });
    }
    let mut lists = vec![Vec::new(); requests.len()];
    while let Some(done) = tasks.join_next().await {
        let (i, objects) =
            done.map_err(|e| KubeError::Internal(format!("a LIST task failed: {e}")))?;
        lists[i] = objects?;
    }
    let mut out = Vec::new();
    for ((kind, _), objects) in requests.iter().zip(lists) {
        out.extend(
            objects
                .into_iter()
                .filter_map(|obj| Some((id_of(kind, &obj)?, obj))),
        );
    }
    Ok(out)
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
    // Every kind wanted is read at once; the inventory among the ConfigMaps may name more.
    let mut wanted: BTreeSet<String> = kinds_wanted.clone();
    wanted.insert("ConfigMap".to_owned());
    for (id, obj) in list_kinds(cluster, catalog, &wanted, &namespaces, &sel).await? {
        observed.objects.insert(id, obj);
    }
    let inventory: Vec<String> = inventory_kinds(&observed.objects).into_iter().collect();
    let more: BTreeSet<String> = catalog
        .learn_inventory(cluster, &inventory)
        .await?
        .into_iter()
        .filter(|k| !wanted.contains(k))
        .collect();
    for (id, obj) in list_kinds(cluster, catalog, &more, &namespaces, &sel).await? {
        observed.objects.insert(id, obj);
    }
    Ok(observed)
}
