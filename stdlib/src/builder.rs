//! The state a script builds while it runs, shared by every stdlib function of one evaluation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use cairn_model::{
    DesiredState, Diagnostic, EnvironmentMeta, GeneratedSecret, Provider, Resource, ResourceId,
    Span, Value,
};

use crate::hosts::HostTarget;
use crate::k8s;
use crate::types::Workload;

/// Shared handle to the builder.
pub type Shared = Arc<Mutex<Builder>>;

/// Everything declared so far.
#[derive(Debug)]
pub struct Builder {
    pub vars: BTreeMap<String, String>,
    pub env: Option<EnvironmentMeta>,
    pub resources: Vec<Resource>,
    pub diagnostics: Vec<Diagnostic>,
    pub generated: BTreeMap<u32, GeneratedSecret>,
    next_generated: u32,
    /// Workloads and the backing services they talk to, for network policies.
    pub peers: BTreeMap<String, (Workload, Vec<Workload>)>,
    /// Workloads reached from the ingress controller, with the port.
    pub exposed: BTreeMap<String, (Workload, i64)>,
    /// The namespace that runs the ingress controller.
    pub ingress_namespace: String,
    /// Backup lifecycle rules per bucket: prefix → days.
    pub bucket_rules: BTreeMap<String, BTreeMap<String, i64>>,
    /// The metrics the exporters of the imported plugins provide (their manifests'
    /// `metric_names`), which alert rules are checked against.
    pub known_metrics: Vec<String>,
    /// Every workload by name, to resolve a scrape target given as `host:port`.
    pub workloads: BTreeMap<String, Workload>,
    /// What `env.scrape(...)` targets: workloads (with the scraped port), or `host:port`.
    pub scrape_targets: Vec<ScrapeTarget>,
    /// The workload that scrapes them (`env.scraper(prometheus)`).
    pub scraper: Option<Workload>,
    /// Connections to hosts written by hand (`env.allow(from, "http://jaeger:16686")`),
    /// resolved when the script finishes.
    pub connections: Vec<(Workload, HostTarget)>,
    /// The paths those hosts resolved to, at the lines that declared them.
    pub host_paths: Vec<cairn_model::Path>,
    /// Connections to addresses outside the cluster.
    pub outside: Vec<cairn_model::OutsidePath>,
    /// Multi-target exporters (`env.scrape(job, #{ probe })`: a blackbox exporter) that probe
    /// every TLS host of the environment's routes, with where they were declared.
    pub probers: Vec<(Workload, Option<Span>)>,
    /// The cluster's pod and Service networks (`isolate.cluster_cidrs`), kept out of the
    /// egress opened to addresses outside the cluster.
    pub cluster_cidrs: Vec<String>,
}

/// One target of `env.scrape(...)`, for the network paths of the scraper.
#[derive(Debug, Clone)]
pub enum ScrapeTarget {
    /// A workload, its `ports` the scraped one.
    Workload(Workload),
    /// `host:port`, written by hand.
    Host(HostTarget),
}

impl Builder {
    pub fn new(vars: BTreeMap<String, String>) -> Self {
        Self {
            vars,
            env: None,
            resources: Vec::new(),
            diagnostics: Vec::new(),
            generated: BTreeMap::new(),
            next_generated: 1,
            peers: BTreeMap::new(),
            exposed: BTreeMap::new(),
            ingress_namespace: "kube-system".to_owned(),
            bucket_rules: BTreeMap::new(),
            known_metrics: Vec::new(),
            workloads: BTreeMap::new(),
            scrape_targets: Vec::new(),
            scraper: None,
            connections: Vec::new(),
            host_paths: Vec::new(),
            outside: Vec::new(),
            probers: Vec::new(),
            cluster_cidrs: Vec::new(),
        }
    }

    /// Records a diagnostic.
    pub fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// The environment's name, or a placeholder before `environment(...)` was called.
    pub fn env_name(&self) -> String {
        self.env
            .as_ref()
            .map_or_else(|| "default".to_owned(), |e| e.name.clone())
    }

    /// The environment's namespace (its name until `env.namespace(...)` says otherwise).
    pub fn namespace(&self) -> String {
        self.env
            .as_ref()
            .and_then(|e| e.namespace.clone())
            .unwrap_or_else(|| self.env_name())
    }

    /// Allocates a generated password.
    pub fn new_generated(&mut self, length: u32, span: Option<Span>) -> u32 {
        let id = self.next_generated;
        self.next_generated += 1;
        self.generated.insert(
            id,
            GeneratedSecret {
                length,
                home: None,
                span,
            },
        );
        id
    }

    /// Attaches a finer span to the most recently added resource.
    pub fn field_span(&mut self, field: String, span: Option<Span>) {
        if let (Some(last), Some(span)) = (self.resources.last_mut(), span) {
            last.field_spans.insert(field, span);
        }
    }

    /// Adds a resource, labelled as cairn's and the environment's when it is a Kubernetes object.
    pub fn add(
        &mut self,
        id: ResourceId,
        mut body: Value,
        depends_on: Vec<ResourceId>,
        protected: bool,
        span: Option<Span>,
    ) {
        if id.provider == Provider::Kube {
            k8s::stamp(&mut body, &self.env_name());
        }
        self.resources.push(Resource {
            id,
            body,
            depends_on,
            protected,
            span,
            field_spans: BTreeMap::new(),
        });
    }
}

/// Locks the shared builder (a panic elsewhere cannot poison evaluation for good).
pub fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Builder> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Derives the resources that depend on the whole script (network policies, buckets) and
/// returns the desired state with every diagnostic.
pub fn finish(shared: &Shared) -> (DesiredState, Vec<Diagnostic>) {
    let mut b = lock(shared);
    crate::paths::scrape_peers(&mut b);
    let connections = std::mem::take(&mut b.connections);
    let connections = connections.into_iter().map(|(w, t)| (Some(w), t)).collect();
    crate::hosts::resolve(&mut b, connections);
    crate::hosts::probe_routes(&mut b);
    k8s::derive_network_policies(&mut b);
    crate::api::derive_buckets(&mut b);
    crate::network::unscraped_metrics(&mut b);
    let network = crate::paths::derive(&b);
    let mut state = DesiredState {
        environment: b.env.clone().unwrap_or_default(),
        resources: std::mem::take(&mut b.resources),
        generated: std::mem::take(&mut b.generated),
        network,
    };
    state.normalize();
    (state, std::mem::take(&mut b.diagnostics))
}
