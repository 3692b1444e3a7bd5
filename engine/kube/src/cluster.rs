//! Choosing and connecting to a cluster.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::KubeError;

/// A connected cluster.
#[derive(Clone)]
pub struct Cluster {
    pub(crate) client: Client,
    /// How the cluster is named in output (the context, or `sandbox`).
    pub name: String,
    requests: Arc<Mutex<Vec<String>>>,
    limit: crate::throttle::Limit,
}

impl Cluster {
    /// Connects like kubectl: the kubeconfig from `path` (else `KUBECONFIG`, else
    /// `~/.kube/config`), with `context` (else the current context).
    pub async fn connect(path: Option<&Path>, context: Option<&str>) -> Result<Self, KubeError> {
        let options = KubeConfigOptions {
            context: context.map(str::to_owned),
            ..KubeConfigOptions::default()
        };
        let kubeconfig = match path {
            Some(p) => Kubeconfig::read_from(p)
                .map_err(|e| KubeError::Connect(format!("{}: {e}", p.display())))?,
            None => Kubeconfig::read()
                .map_err(|e| KubeError::Connect(format!("reading the kubeconfig: {e}")))?,
        };
        let name = context
            .map(str::to_owned)
            .or_else(|| kubeconfig.current_context.clone())
            .unwrap_or_else(|| "default".to_owned());
        let known: Vec<&str> = kubeconfig
            .contexts
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        if !known.contains(&name.as_str()) {
            let file = path.map_or("the kubeconfig".to_owned(), |p| p.display().to_string());
            return Err(KubeError::Connect(format!(
                "{file} has no context {name}; its contexts: {}",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        }
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| KubeError::Connect(e.to_string()))?;
        Self::from_config(config, name)
    }

    /// The contexts a kubeconfig names (`path`, else `KUBECONFIG`, else `~/.kube/config`).
    pub fn contexts(path: Option<&Path>) -> Vec<String> {
        let kubeconfig = match path {
            Some(p) => Kubeconfig::read_from(p),
            None => Kubeconfig::read(),
        };
        kubeconfig
            .map(|k| k.contexts.into_iter().map(|c| c.name).collect())
            .unwrap_or_default()
    }

    /// The cluster's identity: the uid of its `kube-system` namespace, which lives as long as
    /// the cluster (a context name can point anywhere). One GET.
    pub async fn identity(&self) -> Result<String, KubeError> {
        use k8s_openapi::api::core::v1::Namespace;
        let api: kube::Api<Namespace> = kube::Api::all(self.client.clone());
        let ns = api
            .get("kube-system")
            .await
            .map_err(|e| KubeError::api("get namespace kube-system".to_owned(), e))?;
        Ok(ns.metadata.uid.unwrap_or_default())
    }

    /// Connects with kubeconfig text (the sandbox hands one over).
    pub async fn from_kubeconfig_yaml(yaml: &str, context: &str) -> Result<Self, KubeError> {
        let kubeconfig =
            Kubeconfig::from_yaml(yaml).map_err(|e| KubeError::Connect(e.to_string()))?;
        let options = KubeConfigOptions {
            context: Some(context.to_owned()),
            ..KubeConfigOptions::default()
        };
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| KubeError::Connect(e.to_string()))?;
        Self::from_config(config, context.to_owned())
    }

    fn from_config(config: Config, name: String) -> Result<Self, KubeError> {
        // Every request is counted (`METHOD path?query`), for benchmarks and for tests that
        // hold cairn to one LIST per kind, on any cluster.
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = requests.clone();
        let counting =
            tower::util::MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
                log.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(format!(
                        "{} {}",
                        req.method(),
                        req.uri().path_and_query().map_or("", |p| p.as_str())
                    ));
                req
            });
        // Outermost, so that every request resent after a 429 is counted too.
        let limit = crate::throttle::Limit::new(crate::throttle::DEFAULT_REQUESTS_IN_FLIGHT);
        let client = ClientBuilder::try_from(config)
            .map_err(|e| KubeError::Connect(e.to_string()))?
            .with_layer(&counting)
            .with_layer(&crate::throttle::ThrottleLayer(limit.clone()))
            .build();
        Ok(Self {
            client,
            name,
            requests,
            limit,
        })
    }

    /// Applies one object (server-side apply, field manager `cairn`, taking fields over): for
    /// objects other providers produce, such as TLS Secrets.
    pub async fn apply_object(&self, body: &serde_json::Value) -> Result<(), KubeError> {
        let kind_name = body
            .get("kind")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let kind = crate::kinds::kind(kind_name)
            .ok_or_else(|| KubeError::UnsupportedKind(kind_name.to_owned()))?;
        let name = body
            .pointer("/metadata/name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let ns = body
            .pointer("/metadata/namespace")
            .and_then(serde_json::Value::as_str);
        let id = cairn_model::ResourceId::kube(&kind.kind, ns, name);
        let api = crate::plan::api_of(self, kind, &id);
        api.patch(
            name,
            &crate::plan::patch_params(true, false),
            &kube::api::Patch::Apply(body),
        )
        .await
        .map(|_| ())
        .map_err(|e| KubeError::api(format!("apply {id}"), e))
    }

    /// Whether the cluster serves an API group version (`monitoring.coreos.com/v1`): one
    /// discovery request.
    pub async fn serves(&self, api_version: &str) -> Result<bool, KubeError> {
        let path = format!("/apis/{api_version}");
        let request = http::Request::get(&path)
            .body(Vec::new())
            .map_err(|e| KubeError::Internal(e.to_string()))?;
        match self.client.request::<serde_json::Value>(request).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(KubeError::api(format!("discover {api_version}"), e)),
        }
    }

    /// The discovery document (`APIResourceList`) of an API group version, or `None` when the
    /// cluster does not serve it: one request.
    pub async fn discovery(
        &self,
        api_version: &str,
    ) -> Result<Option<serde_json::Value>, KubeError> {
        let path = format!("/apis/{api_version}");
        let request = http::Request::get(&path)
            .body(Vec::new())
            .map_err(|e| KubeError::Internal(e.to_string()))?;
        match self.client.request::<serde_json::Value>(request).await {
            Ok(doc) => Ok(Some(doc)),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(KubeError::api(format!("discover {api_version}"), e)),
        }
    }

    /// The requests made so far (`METHOD path?query`).
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Bounds the requests in flight at once (watches excepted); see [`crate::throttle`].
    pub fn set_requests_in_flight(&self, n: usize) {
        self.limit.set(n);
    }

    /// The bound on requests in flight.
    pub fn requests_in_flight(&self) -> usize {
        self.limit.get()
    }

    /// How many requests the server refused with 429 and cairn sent again after waiting.
    pub fn throttled(&self) -> usize {
        self.limit.throttled()
    }

    /// Forgets the requests made so far.
    pub fn clear_requests(&self) {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
