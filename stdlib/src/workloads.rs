//! `env.namespace`, secrets, config maps, volumes and workloads.

use cairn_model::Code;
use std::collections::{BTreeMap, BTreeSet};

use cairn_model::spec::workloads::{
    AutoscaleSpec, ClaimSpec, ConfigMapSpec, IsolationSpec, NamespaceSpec, PodSpec, PodVolume,
    Quantities, RegistrySecretSpec, SecretSpec, WorkloadKind,
};
use cairn_model::validate::{self, Quantity};
use cairn_model::{Diagnostic, ResourceId, SensitivePart, Value};
use rhai::{Dynamic, Engine, Map, NativeCallContext};

use crate::api::{Ctx, R, check_name, fail, quantity};
use crate::builder;
use crate::convert;
use crate::docs::Docs;
use crate::export;
use crate::k8s::{Container, Resources};
use crate::lower::workloads as lower;
use crate::opts::{Opts, Site};
use crate::types::{
    Component, ConfigHandle, EnvHandle, EnvSet, EnvValue, KeyRef, SecretHandle, SensitiveStr,
    Tagged, VolumeHandle, Workload,
};

pub fn register(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    register_namespace(engine, docs, ctx);
    register_protection(engine, docs, ctx);
    register_secrets(engine, docs, ctx);
    register_config_and_volumes(engine, docs, ctx);
    register_component(engine, docs, ctx);
    register_service_account(engine, docs, ctx);
    register_workloads(engine, docs, ctx);
}

fn ns_of(ctx: &Ctx) -> String {
    builder::lock(&ctx.b).namespace()
}

fn quota_key(key: &str) -> Option<&'static str> {
    Some(match key {
        "requests_cpu" => "requests.cpu",
        "requests_memory" => "requests.memory",
        "limits_cpu" => "limits.cpu",
        "limits_memory" => "limits.memory",
        "requests_storage" => "requests.storage",
        "pvcs" => "persistentvolumeclaims",
        "pods" => "pods",
        "services" => "services",
        "load_balancers" => "services.loadbalancers",
        "secrets" => "secrets",
        "config_maps" => "configmaps",
        _ => return None,
    })
}

const QUOTA_KEYS: &[&str] = &[
    "requests_cpu",
    "requests_memory",
    "limits_cpu",
    "limits_memory",
    "requests_storage",
    "pvcs",
    "pods",
    "services",
    "load_balancers",
    "secrets",
    "config_maps",
];

fn register_namespace(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "namespace",
        ["env: Environment", "name: &str", "options: Map"],
        "Declares the environment's namespace and its isolation: a ResourceQuota (`quota`), default\n\
         container requests and limits (`container_defaults`), and network policies (`isolate`):\n\
         default deny both ways, a block of the namespaces in `deny_namespaces`, DNS, and egress to\n\
         `allow_egress_ports` outside the cluster's `cluster_cidrs`; `allow_within: true` lets the\n\
         namespace's pods reach each other (clustered databases, Prometheus scraping). Workloads that use a backing\n\
         service, and routed workloads, get the policies they need automatically.\n\n\
         `owned_by` (\"staging\") puts this environment's objects in a namespace the environment\n\
         `staging` owns: that one declares the namespace with its quota, limits and isolation; this\n\
         one declares only its own objects inside (and never changes the owner's). `labels` adds\n\
         labels to the Namespace; `annotations` is accepted but not applied yet.\n\n\
         ```rhai\nlet env = environment(\"staging\", #{});\nenv.namespace(\"staging\", #{\n    quota: #{ requests_cpu: \"4\", requests_memory: \"8Gi\", pvcs: 10 },\n    container_defaults: #{ cpu: \"500m\", memory: \"512Mi\", request_cpu: \"100m\", request_memory: \"128Mi\" },\n    isolate: #{ deny_namespaces: [\"production\"], allow_egress_ports: [443] },\n});\n```",
        move |nc: NativeCallContext, _env: &mut EnvHandle, name: &str, options: Map| {
            let site = c.site(&nc);
            namespace(&c, &site, name, options)
        }
    );
}

/// Options of `env.namespace`.
pub(crate) const NAMESPACE_KEYS: &[&str] = &[
    "quota",
    "container_defaults",
    "isolate",
    "labels",
    "annotations",
    "owned_by",
];

/// Binding of `env.namespace`: parses the options into a [`NamespaceSpec`], records the
/// namespace in the environment, and declares what lowering makes of it.
fn namespace(c: &Ctx, site: &Site, name: &str, options: Map) {
    check_name(c, site, "namespace", name, true);
    let mut o = Opts::new("env.namespace(...)", options, NAMESPACE_KEYS, site);
    let owner = o.str("owned_by");
    let shared = owner.is_some();
    if shared {
        for key in NAMESPACE_KEYS.iter().take(5) {
            if o.get(key).is_some() {
                o.diagnostics.push(site.error(Code::InvalidOption, key, format!("`{key}` belongs to the environment that owns namespace \"{name}\"; a shared namespace's quota, defaults, labels and isolation are declared there")));
            }
        }
    }
    let env = claim_namespace(c, site, name, owner);
    let spec = NamespaceSpec {
        name: name.to_owned(),
        labels: namespace_labels(&mut o, site),
        quota: o.map("quota").map(|q| parse_quota(&mut o, site, q)),
        container_defaults: o
            .map("container_defaults")
            .map(|d| parse_container_defaults(&mut o, site, d)),
        isolation: o.map("isolate").map(|i| parse_isolation(&mut o, site, i)),
    };
    let diagnostics = o.finish();
    let mut b = builder::lock(&c.b);
    b.diagnostics.extend(diagnostics);
    if shared {
        return;
    }
    if let Some(i) = &spec.isolation {
        b.cluster_cidrs.clone_from(&i.cluster_cidrs);
    }
    let ns_id = ResourceId::kube("Namespace", None, name);
    for (id, body) in lower::namespace(&spec, &env) {
        let deps = if id == ns_id {
            Vec::new()
        } else {
            vec![ns_id.clone()]
        };
        b.add(id, body, deps, false, site.primary());
    }
}

/// Records the environment's namespace (and its owner), reporting a second `env.namespace` or
/// a missing `environment(...)`; returns the environment's name.
fn claim_namespace(c: &Ctx, site: &Site, name: &str, owner: Option<String>) -> String {
    let mut b = builder::lock(&c.b);
    let env = b.env_name();
    match b.env.as_mut() {
        Some(meta) => {
            if meta.namespace.is_some() {
                b.report(
                    Diagnostic::error(
                        Code::DuplicateNamespace,
                        "env.namespace(...) is called more than once",
                    )
                    .at(site.span.clone()),
                );
            } else {
                meta.namespace = Some(name.to_owned());
                meta.namespace_owner = owner;
            }
        }
        None => b.report(
            Diagnostic::error(
                Code::MissingEnvironment,
                "env.namespace(...) needs environment(...) first",
            )
            .at(site.span.clone()),
        ),
    }
    env
}

/// The namespace's extra `labels`, each key and value checked.
fn namespace_labels(o: &mut Opts, site: &Site) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    if let Some(extra) = o.map("labels") {
        for (k, v) in extra {
            let v = v.to_string();
            if let Err(e) = validate::label_key(&k).and_then(|()| validate::label_value(&v)) {
                o.diagnostics.push(site.error(Code::InvalidLabel, &k, e.0));
            }
            labels.push((k.to_string(), v));
        }
    }
    labels
}

/// The `quota` option: the ResourceQuota's `hard` limits, under their Kubernetes keys.
fn parse_quota(o: &mut Opts, site: &Site, quota: Map) -> Vec<(&'static str, String)> {
    let mut q = Opts::new("the quota", quota.clone(), QUOTA_KEYS, site);
    let mut hard = Vec::new();
    for key in quota.keys() {
        let Some(k8s_key) = quota_key(key) else {
            continue;
        };
        let value = if matches!(
            key.as_str(),
            "requests_cpu"
                | "requests_memory"
                | "limits_cpu"
                | "limits_memory"
                | "requests_storage"
        ) {
            quantity(&mut q, site, key, &format!("quota {key}"))
        } else {
            q.int(key).map(|i| i.to_string())
        };
        if let Some(v) = value {
            hard.push((k8s_key, v));
        }
    }
    o.diagnostics.extend(q.finish());
    hard
}

/// The `container_defaults` option: the LimitRange's `default`, `defaultRequest`, `max` and
/// `min`, each with the `cpu` and `memory` given.
fn parse_container_defaults(
    o: &mut Opts,
    site: &Site,
    defaults: Map,
) -> Vec<(&'static str, Quantities)> {
    let mut d = Opts::new(
        "container_defaults",
        defaults,
        &[
            "cpu",
            "memory",
            "request_cpu",
            "request_memory",
            "max_cpu",
            "max_memory",
            "min_cpu",
            "min_memory",
        ],
        site,
    );
    let mut limits = Vec::new();
    for (field, cpu_key, mem_key) in [
        ("default", "cpu", "memory"),
        ("defaultRequest", "request_cpu", "request_memory"),
        ("max", "max_cpu", "max_memory"),
        ("min", "min_cpu", "min_memory"),
    ] {
        let mut pair = Vec::new();
        let what = |key: &str| format!("container default {key}");
        if let Some(v) = quantity(&mut d, site, cpu_key, &what(cpu_key)) {
            pair.push(("cpu", v));
        }
        if let Some(v) = quantity(&mut d, site, mem_key, &what(mem_key)) {
            pair.push(("memory", v));
        }
        limits.push((field, pair));
    }
    o.diagnostics.extend(d.finish());
    limits
}

/// The `isolate` option.
fn parse_isolation(o: &mut Opts, site: &Site, isolate: Map) -> IsolationSpec {
    let mut i = Opts::new(
        "isolate",
        isolate,
        &[
            "deny_namespaces",
            "allow_egress_ports",
            "cluster_cidrs",
            "allow_within",
        ],
        site,
    );
    let allow_within = i.bool("allow_within").unwrap_or(false);
    let deny_namespaces = i.str_list("deny_namespaces");
    for d in &deny_namespaces {
        if let Err(e) = validate::dns1123_label(d) {
            i.diagnostics.push(site.error(Code::InvalidName, d, e.0));
        }
    }
    let egress_ports: Vec<i64> = i
        .list("allow_egress_ports")
        .iter()
        .filter_map(|p| p.as_int().ok())
        .collect();
    let cluster_cidrs = match i.get("cluster_cidrs") {
        Some(_) => i.str_list("cluster_cidrs"),
        // k3s defaults: pod and service networks.
        None => vec!["10.42.0.0/16".to_owned(), "10.43.0.0/16".to_owned()],
    };
    o.diagnostics.extend(i.finish());
    IsolationSpec {
        deny_namespaces,
        egress_ports,
        cluster_cidrs,
        allow_within,
    }
}

/// Declares an object of `kind` in namespace `ns`, after the namespace; returns its id.
fn declare_in_namespace(
    c: &Ctx,
    site: &Site,
    ns: &str,
    kind: &str,
    name: &str,
    body: Value,
    protected: bool,
) -> ResourceId {
    let id = ResourceId::kube(kind, Some(ns), name);
    builder::lock(&c.b).add(
        id.clone(),
        body,
        vec![ResourceId::kube("Namespace", None, ns)],
        protected,
        site.primary(),
    );
    id
}

/// Declares a Secret of `kind` (`Opaque`, `kubernetes.io/basic-auth`…).
fn declare_secret(c: &Ctx, site: &Site, name: &str, data: &Map, kind: &str) -> SecretHandle {
    check_name(c, site, "secret", name, false);
    let ns = ns_of(c);
    let mut string_data = BTreeMap::new();
    for (key, v) in data {
        if let Err(e) = validate::config_key(key) {
            c.report1(site.error(Code::InvalidName, key, e.0));
        }
        if let Some(value) = secret_value(c, site, name, key, v) {
            string_data.insert(key.to_string(), value);
        }
    }
    let spec = SecretSpec {
        name: name.to_owned(),
        kind: kind.to_owned(),
        data: string_data,
    };
    let keys: Vec<String> = spec.data.keys().cloned().collect();
    let body = lower::secret(&ns, &spec);
    let id = declare_in_namespace(c, site, &ns, "Secret", name, body, false);
    SecretHandle {
        name: name.to_owned(),
        keys,
        id,
    }
}

/// Converts a secret's value, recording where generated passwords live.
fn secret_value(ctx: &Ctx, site: &Site, secret: &str, key: &str, v: &Dynamic) -> Option<Value> {
    if let Some(s) = v.clone().try_cast::<SensitiveStr>() {
        if let [SensitivePart::Generated { id, .. }] = s.0.parts.as_slice() {
            let ns = ns_of(ctx);
            let mut b = builder::lock(&ctx.b);
            if let Some(g) = b.generated.get_mut(id)
                && g.home.is_none()
            {
                g.home = Some((format!("{ns}/{secret}"), key.to_owned()));
            }
        }
        return Some(Value::Sensitive(s.0));
    }
    if v.is_string() || v.is_int() || v.is_float() || v.is_bool() {
        return Some(Value::str(v.to_string()));
    }
    ctx.report1(site.error(
        Code::InvalidOption,
        key,
        format!(
            "value of `{key}` in secret `{secret}` must be a string or a sensitive value, found {}",
            crate::types::script_type(v)
        ),
    ));
    None
}

/// Kinds without a namespace, named `Kind/name` in ids.
const CLUSTER_WIDE: &[&str] = &[
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
];

fn register_protection(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "allow_delete",
        ["env: Environment", "kind: &str", "name: &str"],
        "Allows cairn to delete a protected resource the script no longer declares — a volume\n\
         claim and the data on it. Without this, `apply` keeps volumes whatever the script says.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nenv.allow_delete(\"PersistentVolumeClaim\", \"old-cache-data\");\n```",
        move |nc: NativeCallContext, _env: &mut EnvHandle, kind: &str, name: &str| {
            let site = c.site(&nc);
            allow_delete(&c, &site, kind, name)
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "allow_replace",
        ["env: Environment", "kind: &str", "name: &str"],
        "Allows cairn to delete a StatefulSet, or an operator's custom resource, and create it\n\
         again when the server refuses to change it in place (a StatefulSet's `volume_claims` or\n\
         `headless` service, a field an operator's schema makes immutable). A StatefulSet is\n\
         deleted with its pods orphaned, then created again and adopts them; its volume claims\n\
         are never deleted, and the existing ones keep their size. Without this, such a change is\n\
         refused at plan time.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nenv.allow_replace(\"StatefulSet\", \"db\");\n```",
        move |nc: NativeCallContext, _env: &mut EnvHandle, kind: &str, name: &str| {
            let site = c.site(&nc);
            allow_replace(&c, &site, kind, name)
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "adopt",
        ["env: Environment", "kind: &str", "name: &str"],
        "Takes over an object that already exists without cairn's labels — one written with\n\
         kubectl or another tool before this script: `apply` takes the fields the script\n\
         declares (from whichever manager had them) and labels it as this environment's. Fields\n\
         the script does not declare stay with their old managers; the plan lists them. Without\n\
         this (or `cairn apply --adopt`), such an object is refused, never silently merged.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nenv.adopt(\"Deployment\", \"web\");\n```",
        move |nc: NativeCallContext, _env: &mut EnvHandle, kind: &str, name: &str| {
            let site = c.site(&nc);
            adopt(&c, &site, kind, name)
        }
    );
}

fn register_secrets(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "secret",
        ["env: Environment", "name: &str", "data: Map"],
        "Declares a Secret. Values may be plain strings, `secret_env(...)`, `generate_password(...)`\n\
         or concatenations of them; sensitive values are never printed. Using the secret in a\n\
         workload's `env` list exposes each key as a variable of the same name.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nlet app = env.secret(\"app\", #{ SECRET_KEY: generate_password(50), MODE: \"staging\" });\n```",
        move |nc: NativeCallContext, _env: &mut EnvHandle, name: &str, data: Map| -> SecretHandle {
            let site = c.site(&nc);
            secret(&c, &site, name, data)
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "secret",
        [
            "env: Environment",
            "name: &str",
            "data: Map",
            "options: Map"
        ],
        "Declares a Secret of another `type` than `Opaque`, such as `kubernetes.io/basic-auth`\n\
         (the `username` and `password` some operators require).\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nlet app = env.secret(\"db-app\", #{ username: \"app\", password: generate_password(32) }, #{ type: \"kubernetes.io/basic-auth\" });\n```",
        move |nc: NativeCallContext,
              _env: &mut EnvHandle,
              name: &str,
              data: Map,
              options: Map|
              -> SecretHandle {
            let site = c.site(&nc);
            typed_secret(&c, &site, name, data, options)
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "registry_secret",
        ["env: Environment", "name: &str", "options: Map"],
        "Declares an image pull Secret (`kubernetes.io/dockerconfigjson`) for a private registry.\n\
         Options: `server`, `username`, `password` (sensitive). Pass it as a workload's `pull_secret`.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nlet ghcr = env.registry_secret(\"ghcr\", #{ server: \"ghcr.io\", username: \"bot\", password: sensitive(\"token\") });\n```",
        move |nc: NativeCallContext,
              _env: &mut EnvHandle,
              name: &str,
              options: Map|
              -> SecretHandle {
            let site = c.site(&nc);
            registry_secret(&c, &site, name, options)
        }
    );
}

fn register_config_and_volumes(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "config_map",
        ["env: Environment", "name: &str", "data: Map"],
        "Declares a ConfigMap of plain strings (never put secrets here: `check` refuses sensitive values).\n\
         Integers, floats and booleans become their canonical strings (`3` → \"3\", `true` →\n\
         \"true\"); arrays, maps and `()` are errors: ConfigMap data holds strings only.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nlet settings = env.config_map(\"settings\", #{ DEBUG: \"False\", ALLOWED_HOSTS: \"api.example.com\" });\n```",
        move |nc: NativeCallContext, _env: &mut EnvHandle, name: &str, data: Map| -> ConfigHandle {
            let site = c.site(&nc);
            config_map(&c, &site, name, data)
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "volume_claim",
        ["env: Environment", "name: &str", "options: Map"],
        "Declares a PersistentVolumeClaim. Options: `storage` (size), `class`, `access`\n\
         (`ReadWriteOnce` by default). Volumes are protected: cairn never deletes one unless the\n\
         script allows it.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nlet data = env.volume_claim(\"db-data\", #{ storage: \"10Gi\", class: \"local-path\" });\n```",
        move |nc: NativeCallContext,
              _env: &mut EnvHandle,
              name: &str,
              options: Map|
              -> VolumeHandle {
            let site = c.site(&nc);
            volume_claim(&c, &site, name, options)
        }
    );
}

fn register_service_account(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "service_account",
        ["env: Environment", "name: &str", "options: Map"],
        "Declares a ServiceAccount for pods that read the Kubernetes API (kube-state-metrics, a\n\
         controller), with a Role and RoleBinding of this namespace only: `read` lists the kinds\n\
         it may get, list and watch (`pods`, `services`, `endpoints`, `persistentvolumeclaims`,\n\
         `configmaps`, `deployments`, `statefulsets`, `replicasets`, `daemonsets`, `jobs`,\n\
         `cronjobs`, `ingresses`; never Secrets). Returns its name, for a workload's\n\
         `service_account`.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nlet sa = env.service_account(\"reader\", #{ read: [\"pods\", \"deployments\"] });\nenv.deployment(\"reader\", #{ image: \"ghcr.io/acme/reader:1.0\", service_account: sa });\n```",
        move |nc: NativeCallContext, _env: &mut EnvHandle, name: &str, options: Map| -> String {
            let site = c.site(&nc);
            service_account(&c, &site, name, options)
        }
    );
}

/// The API group of each kind `env.service_account` may read.
fn read_group(resource: &str) -> Option<&'static str> {
    Some(match resource {
        "pods" | "services" | "endpoints" | "persistentvolumeclaims" | "configmaps" => "",
        "deployments" | "statefulsets" | "replicasets" | "daemonsets" => "apps",
        "jobs" | "cronjobs" => "batch",
        "ingresses" => "networking.k8s.io",
        _ => return None,
    })
}

/// Binding of `env.service_account`: the ServiceAccount, its Role and its RoleBinding.
fn service_account(c: &Ctx, site: &Site, name: &str, options: Map) -> String {
    check_name(c, site, "service account", name, false);
    let ns = ns_of(c);
    let mut o = Opts::new(
        format!("env.service_account(\"{name}\", ...)"),
        options,
        &["read"],
        site,
    );
    let mut groups: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for resource in o.str_list("read") {
        match read_group(&resource) {
            Some(g) => groups.entry(g).or_default().push(resource),
            None => o.diagnostics.push(site.error(
                Code::InvalidOption,
                &resource,
                format!("`{resource}` is not a kind a service account may read here; use pods, services, endpoints, persistentvolumeclaims, configmaps, deployments, statefulsets, replicasets, daemonsets, jobs, cronjobs or ingresses"),
            )),
        }
    }
    c.report(o.finish());
    for (kind, body) in lower::service_account(&ns, name, &groups) {
        declare_in_namespace(c, site, &ns, kind, name, body, false);
    }
    name.to_owned()
}

fn register_component(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "component",
        ["options: Map"],
        "For plugins: describes a backing service so that scripts can use it. Options: `name`,\n\
         `host`, `port`, `workload` (its StatefulSet or Deployment), `vars` (connection variables\n\
         without prefix, values plain or `secret.key(...)`), `url` (a `secret.key(...)` holding the\n\
         connection URL), `endpoints` (named ports to route to), `info` (anything else), and the\n\
         connections the service needs, which the network policies open and `cairn check` holds\n\
         them to: `peers` (`true`: its pods talk to each other on its ports; or a list of\n\
         workloads, each of whose pods talk among themselves), `clients` (workloads of the plugin\n\
         that connect to it on `port`: an init Job, Sentinels), `jobs` (its Jobs, such as an init\n\
         Job, for scripts to run after). Scripts read a component with `.name`, `.host`, `.port`,\n\
         `.workload` (to pass where a workload is expected), `.service` (its Service's name),\n\
         `.secret` (the name of the Secret holding its credentials, or \"\"), `.jobs` (an array of\n\
         workloads: `after: [crdb.jobs[0]]`) and `.info` (the plugin's map).\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nlet s = env.secret(\"kv\", #{ PASSWORD: generate_password(24) });\nlet w = env.statefulset(\"kv\", #{ image: \"valkey/valkey:8.0\", port: 6379 });\nlet kv = component(#{ name: \"kv\", host: \"kv\", port: 6379, workload: w, vars: #{ HOST: \"kv\", PASSWORD: s.key(\"PASSWORD\") } });\n```",
        move |nc: NativeCallContext, options: Map| -> R<Component> {
            let site = c.site(&nc);
            component(&c, &site, options)
        }
    );
}

/// Binding of `env.allow_delete`.
fn allow_delete(c: &Ctx, site: &Site, kind: &str, name: &str) {
    // Built-in kinds other than these are never protected; any other kind is a custom
    // resource, protected when declared with `holds_data: true`.
    let builtin = kind.starts_with(|ch: char| ch.is_ascii_uppercase())
        && ResourceId::kube(kind, None, "").rank < 10;
    let custom = !builtin && !matches!(kind, "PersistentVolumeClaim" | "Namespace" | "Bucket");
    if builtin && !matches!(kind, "PersistentVolumeClaim" | "Namespace") {
        c.report1(site.error(Code::InvalidOption, kind, format!("`{kind}` is not a protected kind; protected kinds are PersistentVolumeClaim, Namespace, Bucket and custom resources declared with `holds_data: true`")));
        return;
    }
    let mut b = builder::lock(&c.b);
    let ns = b.namespace();
    let id = if kind == "PersistentVolumeClaim" || custom {
        format!("{kind}/{ns}/{name}")
    } else {
        format!("{kind}/{name}")
    };
    if let Some(meta) = b.env.as_mut() {
        meta.allow_delete.push(id);
    }
}

/// Binding of `env.allow_replace`.
fn allow_replace(c: &Ctx, site: &Site, kind: &str, name: &str) {
    // Built-in kinds other than StatefulSet are replaced without asking (nothing is
    // lost); any other kind is an operator's.
    let builtin = kind.starts_with(|ch: char| ch.is_ascii_uppercase())
        && ResourceId::kube(kind, None, "").rank < 10;
    if builtin && kind != "StatefulSet" {
        c.report1(site.error(Code::InvalidOption, kind, format!("`{kind}` is replaced without asking when the server refuses a change (a Job, a Deployment's selector); `allow_replace` is for a StatefulSet or an operator's resource, and data is never replaced this way: see `allow_delete`")));
        return;
    }
    let mut b = builder::lock(&c.b);
    let id = format!("{kind}/{}/{name}", b.namespace());
    if let Some(meta) = b.env.as_mut() {
        meta.allow_replace.push(id);
    }
}

/// Binding of `env.adopt`.
fn adopt(c: &Ctx, site: &Site, kind: &str, name: &str) {
    if kind.is_empty() || kind.contains(['/', ' ']) {
        c.report1(site.error(Code::InvalidOption, kind, format!("`{kind}` is not a kind: kinds are written as the API names them (Deployment, ConfigMap, Namespace, postgresql)")));
        return;
    }
    let mut b = builder::lock(&c.b);
    let id = if CLUSTER_WIDE.contains(&kind) {
        format!("{kind}/{name}")
    } else {
        format!("{kind}/{}/{name}", b.namespace())
    };
    if let Some(meta) = b.env.as_mut() {
        meta.adopt.push(id);
    }
}

/// Binding of `env.secret(name, data)`.
fn secret(c: &Ctx, site: &Site, name: &str, data: Map) -> SecretHandle {
    declare_secret(c, site, name, &data, "Opaque")
}

/// Binding of `env.secret(name, data, options)`.
fn typed_secret(c: &Ctx, site: &Site, name: &str, data: Map, options: Map) -> SecretHandle {
    let mut o = Opts::new(
        format!("env.secret(\"{name}\", ...)"),
        options,
        &["type"],
        site,
    );
    let kind = o.str("type").unwrap_or_else(|| "Opaque".to_owned());
    let known = [
        "Opaque",
        "kubernetes.io/basic-auth",
        "kubernetes.io/ssh-auth",
        "kubernetes.io/tls",
    ];
    if !known.contains(&kind.as_str()) {
        o.diagnostics.push(site.error(
            Code::InvalidOption,
            &kind,
            format!(
                "unknown secret type `{kind}`; use one of {}",
                known.join(", ")
            ),
        ));
    }
    if kind == "kubernetes.io/basic-auth"
        && !data.contains_key("username")
        && !data.contains_key("password")
    {
        o.diagnostics.push(site.error(
            Code::InvalidOption,
            name,
            format!("basic-auth secret `{name}` needs a `username` or a `password`"),
        ));
    }
    c.report(o.finish());
    declare_secret(c, site, name, &data, &kind)
}

/// Binding of `env.registry_secret`.
fn registry_secret(c: &Ctx, site: &Site, name: &str, options: Map) -> SecretHandle {
    check_name(c, site, "secret", name, false);
    let ns = ns_of(c);
    let mut o = Opts::new(
        "env.registry_secret(...)",
        options,
        &["server", "username", "password"],
        site,
    );
    let server = o.req_str("server").unwrap_or_default();
    let user = o.req_str("username").unwrap_or_default();
    let password = match o.get("password") {
        Some(p) => match p.clone().try_cast::<SensitiveStr>() {
            Some(s) => s.0,
            None => convert::plain(&p.to_string()),
        },
        None => {
            o.req_str("password");
            convert::plain("")
        }
    };
    c.report(o.finish());
    let spec = RegistrySecretSpec {
        name: name.to_owned(),
        server,
        username: user,
        password,
    };
    let body = lower::registry_secret(&ns, &spec);
    let id = declare_in_namespace(c, site, &ns, "Secret", name, body, false);
    SecretHandle {
        name: name.to_owned(),
        keys: Vec::new(),
        id,
    }
}

/// Binding of `env.config_map`.
fn config_map(c: &Ctx, site: &Site, name: &str, data: Map) -> ConfigHandle {
    check_name(c, site, "config map", name, false);
    let ns = ns_of(c);
    let mut out = BTreeMap::new();
    for (key, v) in &data {
        if let Err(e) = validate::config_key(key) {
            c.report1(site.error(Code::InvalidName, key, e.0));
        }
        if v.is::<SensitiveStr>() {
            c.report1(site.error(
                Code::SensitiveInConfigMap,
                key,
                format!("`{key}` of config map `{name}` is sensitive; put it in a secret"),
            ));
            continue;
        }
        if let Some(value) = config_value(c, site, name, key, v) {
            out.insert(key.to_string(), Value::str(value));
        }
    }
    let spec = ConfigMapSpec {
        name: name.to_owned(),
        data: out,
    };
    let keys: Vec<String> = spec.data.keys().cloned().collect();
    let body = lower::config_map(&ns, &spec);
    declare_in_namespace(c, site, &ns, "ConfigMap", name, body, false);
    ConfigHandle {
        name: name.to_owned(),
        keys,
    }
}

/// A ConfigMap value as its string: strings as they are, integers, floats and booleans as
/// they print (`3` → "3", `1.5` → "1.5", `true` → "true", as Helm users expect); arrays, maps,
/// `()` and other values are reported, since their printed form is no configuration anyone
/// means.
fn config_value(c: &Ctx, site: &Site, name: &str, key: &str, v: &Dynamic) -> Option<String> {
    if v.is_string() || v.is_int() || v.is_float() || v.is_bool() {
        return Some(v.to_string());
    }
    let found = if v.is_unit() {
        "()".to_owned()
    } else {
        crate::types::script_type(v).to_owned()
    };
    c.report1(
        site.error(
            Code::InvalidOption,
            key,
            format!("value of `{key}` in config map `{name}` must be a string, a number or a boolean, found {found}"),
        )
        .label("not a string")
        .help("ConfigMap data holds strings only: join an array into one string, or put each value under its own key"),
    );
    None
}

/// Binding of `env.volume_claim`.
fn volume_claim(c: &Ctx, site: &Site, name: &str, options: Map) -> VolumeHandle {
    check_name(c, site, "volume claim", name, false);
    let ns = ns_of(c);
    let mut o = Opts::new(
        "env.volume_claim(...)",
        options,
        &["storage", "class", "access", "allow_delete"],
        site,
    );
    if o.get("storage").is_none() {
        o.req_str("storage");
    }
    let storage =
        quantity(&mut o, site, "storage", "volume size").unwrap_or_else(|| "1Gi".to_owned());
    let class = o.str("class");
    let access = o
        .str("access")
        .unwrap_or_else(|| "ReadWriteOnce".to_owned());
    if !matches!(
        access.as_str(),
        "ReadWriteOnce" | "ReadOnlyMany" | "ReadWriteMany" | "ReadWriteOncePod"
    ) {
        o.diagnostics.push(site.error(
            Code::InvalidOption,
            &access,
            format!("unknown access mode `{access}`"),
        ));
    }
    let allow_delete = o.bool("allow_delete").unwrap_or(false);
    c.report(o.finish());
    let claim = ClaimSpec {
        name: name.to_owned(),
        storage,
        class,
        access,
    };
    let body = lower::volume_claim(&ns, &claim);
    let id = declare_in_namespace(
        c,
        site,
        &ns,
        "PersistentVolumeClaim",
        name,
        body,
        !allow_delete,
    );
    VolumeHandle {
        name: name.to_owned(),
        id,
    }
}

/// Binding of `component`.
fn component(c: &Ctx, site: &Site, options: Map) -> R<Component> {
    let mut o = Opts::new(
        "component(...)",
        options,
        &[
            "name",
            "host",
            "port",
            "workload",
            "vars",
            "url",
            "endpoints",
            "info",
            "peers",
            "clients",
            "jobs",
        ],
        site,
    );
    let name = o.req_str("name").unwrap_or_default();
    let host = o.str("host").unwrap_or_else(|| name.clone());
    let port = o.int("port").unwrap_or(0);
    let Some(workload) = o.custom::<Workload>("workload", "a workload") else {
        c.report(o.finish());
        return fail("component(...) needs its `workload`");
    };
    let mut vars = Vec::new();
    if let Some(map) = o.map("vars") {
        let mut set = EnvSet::default();
        let mut peers = Vec::new();
        if let Err(e) = convert::env_list(&[Dynamic::from_map(map)], &mut set, &mut peers) {
            o.diagnostics
                .push(Diagnostic::error(Code::InvalidOption, e).at(site.span.clone()));
        }
        vars = set.vars;
    }
    let url = o.custom::<KeyRef>("url", "a secret key reference");
    let endpoints = o
        .map("endpoints")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.as_int().ok().map(|p| (k.to_string(), p)))
        .collect();
    let extra = o.map("info").unwrap_or_default();
    let jobs = o
        .list("jobs")
        .into_iter()
        .filter_map(|j| j.try_cast::<Workload>())
        .collect();
    crate::paths::component_paths(c, site, &mut o, &workload, port);
    c.report(o.finish());
    Ok(Component {
        name,
        host,
        port,
        vars,
        url,
        workload,
        endpoints,
        extra,
        jobs,
    })
}
/// What the binding of a workload's pod options yields: the spec lowering turns into a pod
/// template, and what the builder records beside the workload.
struct Pod {
    spec: PodSpec,
    depends_on: Vec<ResourceId>,
    /// The pod's ports, every container's: the Service's numbers and the containers'.
    ports: Vec<PortMap>,
    peers: Vec<Workload>,
    env_spans: Vec<(String, Option<cairn_model::Span>)>,
}

/// A pod's volumes and mounts, gathered from `volumes`, `volume_claims` and `files`.
#[derive(Default)]
struct Mounts {
    mounts: Vec<(String, String)>,
    volumes: Vec<PodVolume>,
    claim_templates: Vec<ClaimSpec>,
}

pub(crate) const DEPLOYMENT_KEYS: &[&str] = &[
    "image",
    "command",
    "args",
    "env",
    "port",
    "target_port",
    "ports",
    "resources",
    "ready",
    "live",
    "after",
    "pull_secret",
    "volumes",
    "files",
    "sidecars",
    "init",
    "annotations",
    "labels",
    "service_account",
    "replicas",
    "autoscale",
    "service",
    "sandbox",
];
pub(crate) const STATEFULSET_KEYS: &[&str] = &[
    "image",
    "command",
    "args",
    "env",
    "port",
    "target_port",
    "ports",
    "resources",
    "ready",
    "live",
    "after",
    "pull_secret",
    "volumes",
    "files",
    "sidecars",
    "init",
    "annotations",
    "labels",
    "service_account",
    "replicas",
    "autoscale",
    "volume_claims",
    "headless",
    "sandbox",
];
pub(crate) const JOB_KEYS: &[&str] = &[
    "image",
    "command",
    "args",
    "env",
    "port",
    "target_port",
    "ports",
    "resources",
    "ready",
    "live",
    "after",
    "pull_secret",
    "volumes",
    "files",
    "sidecars",
    "init",
    "annotations",
    "labels",
    "service_account",
    "backoff_limit",
    "sandbox",
];
pub(crate) const CRONJOB_KEYS: &[&str] = &[
    "image",
    "command",
    "args",
    "env",
    "port",
    "target_port",
    "ports",
    "resources",
    "ready",
    "live",
    "after",
    "pull_secret",
    "volumes",
    "files",
    "sidecars",
    "init",
    "annotations",
    "labels",
    "service_account",
    "schedule",
    "suspend",
    "concurrency",
    "backoff_limit",
    "sandbox",
];

/// What `ready` and `live` must be.
const PROBE: &str = "a probe (http_get, tcp_socket or exec)";

/// Parses the pod-level options of workload `name` into a [`PodSpec`]; `None` when there is no
/// usable image (the problems are reported).
fn parse_pod(
    ctx: &Ctx,
    site: &Site,
    o: &mut Opts,
    name: &str,
    restart: Option<&'static str>,
    per_pod_claims: bool,
) -> Option<Pod> {
    let image = parse_image(o, site, name);
    let command = o.str_list("command");
    let args = o.str_list("args");
    let ports = parse_ports(o, site);
    let main_ports = ports.len();
    let resources = parse_resources(o, site, name);
    let (readiness, liveness) = parse_probes(o, site, name, &container_ports(&ports));
    let ns = ns_of(ctx);
    let mut depends_on = vec![ResourceId::kube("Namespace", None, &ns)];
    parse_after(o, site, name, &mut depends_on);
    let pull_secrets = parse_pull_secrets(o, site, name, &mut depends_on);
    let mut m = Mounts::default();
    parse_volumes(o, site, &mut depends_on, &mut m);
    if per_pod_claims && let Some(map) = o.map("volume_claims") {
        parse_claim_templates(o, site, map, &mut m);
    }
    parse_files(ctx, o, site, &mut depends_on, &mut m);
    let (env, env_spans, mut peers) = parse_env(o, site, name, &ns, &mut depends_on);
    let mut extra = Extra {
        ns,
        names: vec![name.to_owned()],
        ports,
        depends_on,
        peers: Vec::new(),
    };
    let sidecars = parse_containers(o, site, "sidecars", &mut extra);
    let init_containers = parse_containers(o, site, "init", &mut extra);
    let Extra {
        ports,
        mut depends_on,
        ..
    } = extra;
    peers.extend(extra.peers);
    let annotations = parse_pod_metadata(o, site, name, "annotations");
    let labels = parse_pod_metadata(o, site, name, "labels");
    let service_account = parse_service_account(o, site);
    depends_on.sort();
    depends_on.dedup();
    let container = Container {
        name: name.to_owned(),
        image: image?,
        command,
        args,
        ports: container_ports(&ports[..main_ports]),
        env,
        resources,
        readiness,
        liveness,
        mounts: m.mounts,
    };
    let spec = PodSpec {
        name: name.to_owned(),
        container,
        volumes: m.volumes,
        pull_secrets,
        restart_policy: restart,
        claim_templates: m.claim_templates,
        simulate: parse_simulate(o, site),
        sidecars,
        init_containers,
        annotations,
        labels,
        service_account,
    };
    Some(Pod {
        spec,
        depends_on,
        ports,
        peers,
        env_spans,
    })
}

/// `ready` and `live`: probes, each of a port the container exposes.
fn parse_probes(
    o: &mut Opts,
    site: &Site,
    name: &str,
    ports: &[(String, i64)],
) -> (Option<Value>, Option<Value>) {
    let readiness = o.custom::<Tagged>("ready", PROBE).map(|t| t.value);
    let liveness = o.custom::<Tagged>("live", PROBE).map(|t| t.value);
    for (option, probe) in [("ready", &readiness), ("live", &liveness)] {
        probe_port(o, site, name, option, probe.as_ref(), ports);
    }
    (readiness, liveness)
}

/// `service_account`: the name of the ServiceAccount the pods run as.
fn parse_service_account(o: &mut Opts, site: &Site) -> Option<String> {
    let sa = o.str("service_account")?;
    if let Err(e) = validate::dns1123_subdomain(&sa) {
        o.diagnostics.push(site.error(Code::InvalidName, &sa, e.0));
    }
    Some(sa)
}

/// What the pod's extra containers add to it, gathered as `sidecars` and `init` are read.
struct Extra {
    ns: String,
    /// Container names taken (the main one's first).
    names: Vec<String>,
    /// Every port of the pod so far.
    ports: Vec<PortMap>,
    depends_on: Vec<ResourceId>,
    peers: Vec<Workload>,
}

/// Options of one of `sidecars`.
const SIDECAR_KEYS: &[&str] = &[
    "name",
    "image",
    "command",
    "args",
    "env",
    "port",
    "target_port",
    "ports",
    "resources",
    "ready",
    "live",
];
/// Options of one of `init`.
const INIT_KEYS: &[&str] = &["name", "image", "command", "args", "env", "resources"];

/// `sidecars` or `init`: a list of containers #{ name, image, ... } beside (or before) the
/// main one, their ports added to the pod's (and its Service's).
fn parse_containers(o: &mut Opts, site: &Site, key: &str, x: &mut Extra) -> Vec<Container> {
    let mut out = Vec::new();
    for item in o.list(key) {
        let Some(map) = item.clone().try_cast::<Map>() else {
            o.diagnostics.push(site.error(
                Code::InvalidOption,
                key,
                format!(
                    "each of `{key}` must be a map #{{ name, image, ... }}, found {}",
                    crate::types::script_type(&item)
                ),
            ));
            continue;
        };
        let init = key == "init";
        let keys = if init { INIT_KEYS } else { SIDECAR_KEYS };
        let what = if init { "init container" } else { "sidecar" };
        let mut c = Opts::new(format!("a {what} of `{}`", x.names[0]), map, keys, site);
        if let Some(container) = parse_container(&mut c, site, what, x) {
            out.push(container);
        }
        o.diagnostics.extend(c.finish());
    }
    out
}

/// One sidecar or init container: its name unique in the pod, its ports not already taken.
fn parse_container(c: &mut Opts, site: &Site, what: &str, x: &mut Extra) -> Option<Container> {
    let name = c.req_str("name")?;
    if validate::dns1123_label(&name).is_err() {
        c.diagnostics.push(site.error(
            Code::InvalidName,
            &name,
            format!("invalid {what} name \"{name}\": lowercase letters, digits and '-'"),
        ));
    }
    if x.names.contains(&name) {
        c.diagnostics.push(site.error(
            Code::InvalidOption,
            &name,
            format!(
                "the pod of `{}` has two containers named \"{name}\"",
                x.names[0]
            ),
        ));
    }
    x.names.push(name.clone());
    let image = parse_image(c, site, &name);
    let own = sidecar_ports(c, site, what, &name, x);
    let (readiness, liveness) = parse_probes(c, site, &name, &own);
    let resources = parse_resources(c, site, &name);
    let (env, _, peers) = parse_env(c, site, &name, &x.ns, &mut x.depends_on);
    x.peers.extend(peers);
    Some(Container {
        name,
        image: image?,
        command: c.str_list("command"),
        args: c.str_list("args"),
        ports: own,
        env,
        resources,
        readiness,
        liveness,
        mounts: Vec::new(),
    })
}

/// A sidecar's `port` (named after it) and `ports`, none taken in the pod already.
fn sidecar_ports(
    c: &mut Opts,
    site: &Site,
    what: &str,
    name: &str,
    x: &mut Extra,
) -> Vec<(String, i64)> {
    let mut ports = Vec::new();
    if let Some(port) = c.int("port") {
        let short: String = name.chars().take(15).collect();
        ports.push(PortMap {
            name: short.trim_end_matches('-').to_owned(),
            service: port,
            target: c.int("target_port").unwrap_or(port),
        });
    }
    if let Some(map) = c.map("ports") {
        for (k, v) in map {
            ports.extend(named_port(c, site, &k, &v));
        }
    }
    check_ports(c, site, &ports);
    for p in &ports {
        if let Some(taken) = x
            .ports
            .iter()
            .find(|q| q.name == p.name || q.service == p.service || q.target == p.target)
        {
            c.diagnostics.push(site.error(
                Code::InvalidOption,
                &p.target.to_string(),
                format!(
                    "port {} ({}) of {what} `{name}` clashes with port {} ({}) of the pod",
                    p.target, p.name, taken.target, taken.name
                ),
            ));
        }
    }
    let own = container_ports(&ports);
    x.ports.extend(ports);
    own
}

/// The pods' `annotations` or `labels` (#{ key: value }): keys and values checked; labels may
/// not take the one that selects the pods nor cairn's own.
fn parse_pod_metadata(o: &mut Opts, site: &Site, name: &str, key: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in o.map(key).unwrap_or_default() {
        let value = if v.is_string() || v.is_int() || v.is_float() || v.is_bool() {
            v.to_string()
        } else {
            o.diagnostics.push(site.error(
                Code::InvalidOption,
                &k,
                format!(
                    "{key} `{k}` of `{name}` must be a string, found {}",
                    crate::types::script_type(&v)
                ),
            ));
            continue;
        };
        let checked = validate::label_key(&k).and_then(|()| match key {
            "labels" => validate::label_value(&value),
            _ => Ok(()),
        });
        if let Err(e) = checked {
            o.diagnostics.push(site.error(Code::InvalidLabel, &k, e.0));
        }
        if key == "labels"
            && [
                crate::k8s::NAME,
                crate::k8s::MANAGED_BY,
                crate::k8s::ENVIRONMENT,
            ]
            .contains(&k.as_str())
        {
            o.diagnostics.push(site.error(
                Code::InvalidLabel,
                &k,
                format!("label `{k}` of `{name}`'s pods is cairn's own: it selects the pods or marks them as the environment's"),
            ));
            continue;
        }
        out.push((k.to_string(), value));
    }
    out
}

/// A probe's port must be one its container exposes: a number among its ports, a name among
/// their names. A named port that is not there fails every probe; a number that is not there
/// is almost always a typo (8080 for 80), and a Service never routes to it.
fn probe_port(
    o: &mut Opts,
    site: &Site,
    name: &str,
    option: &str,
    probe: Option<&Value>,
    ports: &[(String, i64)],
) {
    let Some(port) = ["httpGet", "tcpSocket"]
        .iter()
        .find_map(|k| probe?.pointer(&[k, "port"]))
    else {
        return;
    };
    let (exposed, shown) = match port {
        Value::Int(n) => (ports.iter().any(|(_, p)| p == n), n.to_string()),
        Value::String(s) => (ports.iter().any(|(pn, _)| pn == s), s.clone()),
        _ => return,
    };
    if exposed {
        return;
    }
    let what = match port {
        Value::String(s) => format!("the port named \"{s}\""),
        _ => format!("port {shown}"),
    };
    let has = if ports.is_empty() {
        format!("`{name}` exposes no port: add it with `port` or `ports`")
    } else {
        let list: Vec<String> = ports.iter().map(|(n, p)| format!("{n} {p}")).collect();
        format!(
            "`{name}` exposes {}; probe one of them, or add the port to `ports`",
            list.join(", ")
        )
    };
    o.diagnostics.push(
        site.error(
            Code::ProbePortNotExposed,
            &shown,
            format!("the `{option}` probe of `{name}` checks {what}, which the container does not expose"),
        )
        .label("not a port of the container")
        .help(has),
    );
}

/// `sandbox: #{ simulate: "crash-loop" | "image-pull-error" | "failing-probe" }`: the failure the workload's pods
/// have on the sandbox, as the emulator's pod annotation (a real cluster ignores it).
fn parse_simulate(o: &mut Opts, site: &Site) -> Option<&'static str> {
    let mut s = Opts::new("the sandbox option", o.map("sandbox")?, &["simulate"], site);
    let simulate = s.req_str("simulate");
    let outcome = match simulate.as_deref() {
        None => None,
        Some("crash-loop") => Some("crashloop"),
        Some("image-pull-error") => Some("image-pull-error"),
        Some("failing-probe") => Some("not-ready"),
        Some(other) => {
            s.diagnostics.push(site.error(Code::InvalidOption, other, format!("the sandbox cannot simulate `{other}`; use \"crash-loop\", \"image-pull-error\" or \"failing-probe\"")));
            None
        }
    };
    o.diagnostics.extend(s.finish());
    outcome
}

/// The required `image`, checked, with a warning for a mutable `latest` tag.
fn parse_image(o: &mut Opts, site: &Site, name: &str) -> Option<String> {
    let image = o.req_str("image");
    if let Some(image) = &image {
        match validate::image_ref(image) {
            Ok(r) => {
                if r.digest.is_none() && r.tag.as_deref().is_none_or(|t| t == "latest") {
                    o.diagnostics.push(
                        Diagnostic::warning(Code::LatestTag, format!("image \"{image}\" of `{name}` uses the `latest` tag"))
                            .at(site.at(image))
                            .label("mutable tag")
                            .help("pin a version or a digest so that a deploy is repeatable and a rollback means something"),
                    );
                }
            }
            Err(e) => o
                .diagnostics
                .push(site.error(Code::InvalidImage, image, e.0)),
        }
    }
    image
}

/// A named port: the Service's number and the container's.
#[derive(Debug, Clone)]
struct PortMap {
    name: String,
    service: i64,
    target: i64,
}

/// `port` (named `http`, with `target_port` when the container listens on another number)
/// and `ports` (#{ name: number } or #{ name: #{ port, target_port } }), numbers and names
/// checked.
fn parse_ports(o: &mut Opts, site: &Site) -> Vec<PortMap> {
    let mut ports = Vec::new();
    let target = o.int("target_port");
    if let Some(p) = o.int("port") {
        ports.push(PortMap {
            name: "http".to_owned(),
            service: p,
            target: target.unwrap_or(p),
        });
    } else if target.is_some() {
        o.diagnostics.push(site.error(
            Code::InvalidOption,
            "target_port",
            "`target_port` is the container's port behind `port`: give `port` too",
        ));
    }
    if let Some(map) = o.map("ports") {
        for (k, v) in map {
            if let Some(p) = named_port(o, site, &k, &v) {
                ports.push(p);
            }
        }
    }
    check_ports(o, site, &ports);
    ports
}

/// One entry of `ports`: a number, or #{ port, target_port }.
fn named_port(o: &mut Opts, site: &Site, name: &str, v: &Dynamic) -> Option<PortMap> {
    if let Ok(p) = v.as_int() {
        return Some(PortMap {
            name: name.to_owned(),
            service: p,
            target: p,
        });
    }
    if let Some(map) = v.clone().try_cast::<Map>() {
        let mut m = Opts::new(
            format!("port `{name}`"),
            map,
            &["port", "target_port"],
            site,
        );
        let service = m.int("port");
        if service.is_none() {
            m.req_str("port");
        }
        let target = m.int("target_port");
        o.diagnostics.extend(m.finish());
        let service = service?;
        return Some(PortMap {
            name: name.to_owned(),
            service,
            target: target.unwrap_or(service),
        });
    }
    o.diagnostics.push(site.error(
        Code::InvalidOption,
        name,
        format!("port `{name}` must be a number or #{{ port, target_port }}"),
    ));
    None
}

/// Port numbers in range, names valid (at most 15 lowercase letters, digits and '-').
fn check_ports(o: &mut Opts, site: &Site, ports: &[PortMap]) {
    for p in ports {
        for port in [p.service, p.target] {
            if !(1..=65535).contains(&port) {
                o.diagnostics.push(site.error(
                    Code::InvalidOption,
                    &port.to_string(),
                    format!("port {port} is out of range 1-65535"),
                ));
            }
        }
        let pname = &p.name;
        if pname.len() > 15 || validate::dns1123_label(pname).is_err() {
            o.diagnostics.push(site.error(
                Code::InvalidName,
                pname,
                format!(
                    "invalid port name \"{pname}\": at most 15 lowercase letters, digits and '-'"
                ),
            ));
        }
    }
}

/// The container's side of ports: names and the numbers it listens on.
fn container_ports(ports: &[PortMap]) -> Vec<(String, i64)> {
    ports.iter().map(|p| (p.name.clone(), p.target)).collect()
}

/// `resources`: `cpu` and `memory` set requests and limits, the others one of them; a request
/// above its limit is an error.
fn parse_resources(o: &mut Opts, site: &Site, name: &str) -> Resources {
    let mut resources = Resources::default();
    let Some(map) = o.map("resources") else {
        return resources;
    };
    let mut r = Opts::new(
        format!("resources of `{name}`"),
        map,
        &[
            "cpu",
            "memory",
            "request_cpu",
            "request_memory",
            "limit_cpu",
            "limit_memory",
        ],
        site,
    );
    let cpu = quantity(&mut r, site, "cpu", "cpu");
    let memory = quantity(&mut r, site, "memory", "memory");
    resources.request_cpu =
        quantity(&mut r, site, "request_cpu", "cpu request").or_else(|| cpu.clone());
    resources.request_memory =
        quantity(&mut r, site, "request_memory", "memory request").or_else(|| memory.clone());
    resources.limit_cpu = quantity(&mut r, site, "limit_cpu", "cpu limit").or(cpu);
    resources.limit_memory = quantity(&mut r, site, "limit_memory", "memory limit").or(memory);
    for (req, lim, what) in [
        (&resources.request_cpu, &resources.limit_cpu, "cpu"),
        (&resources.request_memory, &resources.limit_memory, "memory"),
    ] {
        if let (Some(req), Some(lim)) = (req, lim)
            && let (Ok(rq), Ok(lq)) = (Quantity::parse(req), Quantity::parse(lim))
            && rq > lq
        {
            r.diagnostics.push(site.error(
                Code::InvalidResources,
                req,
                format!("{what} request {req} of `{name}` is above its limit {lim}"),
            ));
        }
    }
    o.diagnostics.extend(r.finish());
    resources
}

/// `after`: workloads that must be ready first.
fn parse_after(o: &mut Opts, site: &Site, name: &str, depends_on: &mut Vec<ResourceId>) {
    for dep in o.list("after") {
        let workload = dep
            .clone()
            .try_cast::<Workload>()
            .or_else(|| dep.clone().try_cast::<Component>().map(|c| c.workload));
        match workload {
            Some(w) => depends_on.push(w.id.clone()),
            None => o.diagnostics.push(
                Diagnostic::error(
                    Code::InvalidOption,
                    format!(
                        "`after` of `{name}` lists {}, not a workload or a component",
                        crate::types::script_type(&dep)
                    ),
                )
                .at(site.at("after")),
            ),
        }
    }
}

/// `pull_secret`: secrets (or names of secrets) to pull the image with.
fn parse_pull_secrets(
    o: &mut Opts,
    site: &Site,
    name: &str,
    depends_on: &mut Vec<ResourceId>,
) -> Vec<String> {
    let mut pull_secrets = Vec::new();
    for p in o.list("pull_secret") {
        if let Some(s) = p.clone().try_cast::<SecretHandle>() {
            depends_on.push(s.id.clone());
            pull_secrets.push(s.name);
        } else if p.is_string() {
            pull_secrets.push(p.to_string());
        } else {
            o.diagnostics.push(
                Diagnostic::error(
                    Code::InvalidOption,
                    format!(
                        "`pull_secret` of `{name}` must be a secret, found {}",
                        crate::types::script_type(&p)
                    ),
                )
                .at(site.at("pull_secret")),
            );
        }
    }
    pull_secrets
}

/// `volumes`: volume claims mounted by path.
fn parse_volumes(o: &mut Opts, site: &Site, depends_on: &mut Vec<ResourceId>, m: &mut Mounts) {
    let Some(map) = o.map("volumes") else {
        return;
    };
    for (path, v) in map {
        match v.clone().try_cast::<VolumeHandle>() {
            Some(vol) => {
                depends_on.push(vol.id.clone());
                m.mounts.push((vol.name.clone(), path.to_string()));
                m.volumes.push(PodVolume::Claim(vol.name));
            }
            None => o.diagnostics.push(site.error(
                Code::InvalidOption,
                &path,
                format!(
                    "volume at `{path}` must be a volume claim, found {}",
                    crate::types::script_type(&v)
                ),
            )),
        }
    }
}

/// A StatefulSet's `volume_claims`: one claim per pod, mounted by path.
fn parse_claim_templates(o: &mut Opts, site: &Site, map: Map, m: &mut Mounts) {
    for (path, v) in map {
        let Some(spec) = v.clone().try_cast::<Map>() else {
            o.diagnostics.push(site.error(
                Code::InvalidOption,
                &path,
                format!("volume claim at `{path}` must be a map #{{ storage, class }}"),
            ));
            continue;
        };
        let mut c = Opts::new(
            format!("volume claim at `{path}`"),
            spec,
            &["name", "storage", "class", "access"],
            site,
        );
        let default_name: String = path
            .rsplit('/')
            .find(|s| !s.is_empty())
            .unwrap_or("data")
            .to_lowercase()
            .chars()
            .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '-' })
            .collect();
        let claim = c.str("name").unwrap_or(default_name);
        if validate::dns1123_label(&claim).is_err() {
            c.diagnostics.push(site.error(
                Code::InvalidName,
                &claim,
                format!("invalid volume claim name \"{claim}\""),
            ));
        }
        if c.get("storage").is_none() {
            c.req_str("storage");
        }
        let storage =
            quantity(&mut c, site, "storage", "volume size").unwrap_or_else(|| "1Gi".to_owned());
        let access = c
            .str("access")
            .unwrap_or_else(|| "ReadWriteOnce".to_owned());
        let class = c.str("class");
        o.diagnostics.extend(c.finish());
        m.mounts.push((claim.clone(), path.to_string()));
        m.claim_templates.push(ClaimSpec {
            name: claim,
            storage,
            class,
            access,
        });
    }
}

/// `files`: config maps and secrets whose keys are mounted as files in a directory.
fn parse_files(
    ctx: &Ctx,
    o: &mut Opts,
    site: &Site,
    depends_on: &mut Vec<ResourceId>,
    m: &mut Mounts,
) {
    let Some(map) = o.map("files") else {
        return;
    };
    for (path, v) in map {
        let mut optional = false;
        let (kind, source_name) = if let Some(cm) = v.clone().try_cast::<ConfigHandle>() {
            ("ConfigMap", cm.name)
        } else if let Some(s) = v.clone().try_cast::<SecretHandle>() {
            ("Secret", s.name)
        } else if v.is_string() {
            // A config map made outside the script (the alert rules cairn renders at plan
            // time): mounted when it exists.
            optional = true;
            ("ConfigMap", v.to_string())
        } else if let Some(name) = v.clone().try_cast::<Map>().and_then(|m| {
            m.get("secret")
                .filter(|s| s.is_string())
                .map(ToString::to_string)
        }) {
            // A Secret made outside the script (the Alertmanager configuration cairn renders
            // at plan time): mounted when it exists.
            optional = true;
            ("Secret", name)
        } else {
            o.diagnostics.push(site.error(
                Code::InvalidOption,
                &path,
                format!(
                    "files at `{path}` must come from a config map, a secret or #{{ secret: \"name\" }}, found {}",
                    crate::types::script_type(&v)
                ),
            ));
            continue;
        };
        let ns = ns_of(ctx);
        if !optional {
            depends_on.push(ResourceId::kube(kind, Some(&ns), &source_name));
        }
        let volume = files_volume(&source_name);
        m.mounts.push((volume.clone(), path.to_string()));
        m.volumes.push(if kind == "ConfigMap" {
            PodVolume::ConfigMap {
                volume,
                name: source_name,
                optional,
            }
        } else {
            PodVolume::Secret {
                volume,
                name: source_name,
                optional,
            }
        });
    }
}

/// The name of the volume holding the files of config map or secret `source`.
fn files_volume(source: &str) -> String {
    let mut volume: String = format!("files-{source}")
        .chars()
        .map(|c| if c == '.' { '-' } else { c })
        .take(63)
        .collect();
    while volume.ends_with('-') {
        volume.pop();
    }
    volume
}

/// What `env` yields: the variables, where each is written, and the backing services used.
type ParsedEnv = (
    Vec<(String, EnvValue)>,
    Vec<(String, Option<cairn_model::Span>)>,
    Vec<Workload>,
);

/// `env`: the variables, names checked and set once each; the secrets, config maps and backing
/// services they come from become dependencies.
fn parse_env(
    o: &mut Opts,
    site: &Site,
    name: &str,
    ns: &str,
    depends_on: &mut Vec<ResourceId>,
) -> ParsedEnv {
    let mut set = EnvSet::default();
    let mut peer_sets = Vec::new();
    if let Err(e) = convert::env_list(&o.list("env"), &mut set, &mut peer_sets) {
        o.diagnostics
            .push(Diagnostic::error(Code::InvalidEnv, e).at(site.at("env")));
    }
    let mut seen = BTreeSet::new();
    let mut env_spans = Vec::new();
    for (var, value) in &set.vars {
        if let Err(e) = validate::env_var_name(var) {
            o.diagnostics
                .push(site.error(Code::InvalidEnvName, var, e.0));
        }
        if !seen.insert(var.clone()) {
            o.diagnostics.push(site.error(
                Code::DuplicateEnvVar,
                var,
                format!("environment variable `{var}` of `{name}` is set twice"),
            ));
        }
        if let EnvValue::Ref(r) = value {
            depends_on.push(ResourceId::kube(r.kind, Some(ns), &r.name));
        }
        env_spans.push((var.clone(), site.at(var)));
    }
    let peers: Vec<Workload> = peer_sets.into_iter().filter_map(|s| s.peer).collect();
    for p in &peers {
        depends_on.push(p.id.clone());
    }
    (set.vars, env_spans, peers)
}

/// Declares the Service in front of a workload's ports, if it has any; returns its name.
fn add_service(ctx: &Ctx, site: &Site, name: &str, ports: &[PortMap]) -> Option<String> {
    if ports.is_empty() {
        return None;
    }
    let ns = ns_of(ctx);
    let ports: Vec<(String, i64, i64)> = ports
        .iter()
        .map(|p| (p.name.clone(), p.service, p.target))
        .collect();
    let body = lower::service(&ns, name, &ports);
    declare_in_namespace(ctx, site, &ns, "Service", name, body, false);
    Some(name.to_owned())
}

/// Lowers a parsed workload and declares it, with its Service, variables and network peers.
fn finish_workload(
    ctx: &Ctx,
    site: &Site,
    kind: &WorkloadKind,
    pod: Pod,
    service: bool,
) -> Workload {
    let ns = ns_of(ctx);
    let name = pod.spec.name.as_str();
    let body = lower::workload(&ns, kind, &pod.spec);
    let id = ResourceId::kube(kind_name(kind), Some(&ns), name);
    let service = if service {
        add_service(ctx, site, name, &pod.ports)
    } else {
        None
    };
    let workload = Workload {
        name: name.to_owned(),
        id: id.clone(),
        service,
        ports: container_ports(&pod.ports),
        route_port: None,
        service_ports: pod
            .ports
            .iter()
            .filter(|p| p.service != p.target)
            .map(|p| (p.name.clone(), p.service))
            .collect(),
        pods: None,
    };
    let mut b = builder::lock(&ctx.b);
    b.add(id, body, pod.depends_on, false, site.primary());
    b.workloads.insert(name.to_owned(), workload.clone());
    for (var, span) in pod.env_spans {
        b.field_span(format!("env/{var}"), span);
    }
    if !pod.peers.is_empty() {
        let entry = b
            .peers
            .entry(name.to_owned())
            .or_insert_with(|| (workload.clone(), Vec::new()));
        for p in pod.peers {
            if !entry.1.iter().any(|e| e.name == p.name) {
                entry.1.push(p);
            }
        }
    }
    workload
}

/// The Kubernetes kind of a workload.
fn kind_name(kind: &WorkloadKind) -> &'static str {
    match kind {
        WorkloadKind::Deployment { .. } => "Deployment",
        WorkloadKind::StatefulSet { .. } => "StatefulSet",
        WorkloadKind::Job { .. } => "Job",
        WorkloadKind::CronJob { .. } => "CronJob",
    }
}

fn register_workloads(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "deployment",
        ["env: Environment", "name: &str", "options: Map"],
        "Declares a Deployment (and a Service when it has ports, unless `service` is false). Options:\n\
         `image`, `replicas` or `autoscale` (#{ min, max, cpu }: a HorizontalPodAutoscaler keeps the\n\
         replicas between `min` and `max` at `cpu` percent (80 by default) of the CPU requests; the\n\
         replicas are then the autoscaler's, never in what cairn applies), `command`, `args`, `port`\n\
         (named `http`; with `target_port` when the\n\
         container listens on another number: `port: 80, target_port: 8000` is a Service port 80\n\
         to the container's 8000) or `ports` (#{ name: number } or #{ name: #{ port, target_port } }),\n\
         `env` (a list of secrets, config maps, maps and services' `.env(...)`), `resources`\n\
         (#{ cpu, memory } sets requests and limits; `request_cpu`, `limit_memory`… set one),\n\
         `ready` and `live` probes, `after` (workloads or components, such as a migration Job, that\n\
         must be ready first), `pull_secret`, `volumes` (#{ path: claim }), `files` (#{ directory:\n\
         config map or secret }: its keys as files; a config map's name as a string, or\n\
         #{ secret: \"name\" }, mounts one made outside the script, when it exists), `sidecars`\n\
         (containers beside the main one: #{ name, image, command, args, env, port, ports,\n\
         resources, ready, live }; their ports join the Service), `init` (containers run to\n\
         completion first: #{ name, image, command, args, env, resources }), `annotations` and\n\
         `labels` of the pods (#{ key: value }), `service_account` (a name, such as\n\
         `env.service_account(...)`'s). `sandbox: #{ simulate: \"crash-loop\" }` (or\n\
         `\"image-pull-error\"`, or `\"failing-probe\"`: running, never ready; for any workload kind)\n\
         makes its pods fail that way on the `--sandbox` only, to see how apply explains a failure;\n\
         a real cluster ignores it (the plan says so).\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nlet web = env.deployment(\"web\", #{\n    image: \"nginx:1.27\", replicas: 2, port: 80,\n    resources: #{ cpu: \"250m\", memory: \"256Mi\" },\n    ready: http_get(\"/\", 80),\n});\n```\n\n\
         A Service port 80 in front of a container on 8000, an exporter as a sidecar, scrape\n\
         annotations and a check before start:\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nlet api = env.deployment(\"api\", #{\n    image: \"ghcr.io/acme/api:1.0\", port: 80, target_port: 8000, ready: http_get(\"/health\", 8000),\n    sidecars: [#{ name: \"exporter\", image: \"nginx/nginx-prometheus-exporter:1.3.0\", ports: #{ metrics: 9113 } }],\n    init: [#{ name: \"wait\", image: \"busybox:1.36\", command: [\"sh\", \"-c\", \"true\"] }],\n    annotations: #{ \"prometheus.io/scrape\": \"true\", \"prometheus.io/port\": \"9113\" },\n    labels: #{ team: \"api\" },\n});\n```",
        move |nc: NativeCallContext, _env: &mut EnvHandle, name: &str, options: Map| -> Workload {
            let site = c.site(&nc);
            deployment(&c, &site, name, options)
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "statefulset",
        ["env: Environment", "name: &str", "options: Map"],
        "Declares a StatefulSet with a Service of the same name (for databases and queues). Options as\n\
         for `deployment` (`replicas` or `autoscale` included); `volumes` mounts volume claims by path; `volume_claims` gives each pod its\n\
         own claim (#{ path: #{ storage, class, name } }, as `volumeClaimTemplates`); `headless: true`\n\
         makes the Service headless, publishing pods before they are ready (cluster members finding\n\
         each other as `<name>-0.<name>`).\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nlet data = env.volume_claim(\"cache-data\", #{ storage: \"1Gi\" });\nlet cache = env.statefulset(\"cache\", #{ image: \"redis:7.2-alpine\", port: 6379, volumes: #{ \"/data\": data } });\nlet db = env.statefulset(\"db\", #{ image: \"cockroachdb/cockroach:v24.2.4\", replicas: 3, port: 26257, headless: true,\n    volume_claims: #{ \"/cockroach/cockroach-data\": #{ storage: \"10Gi\", name: \"datadir\" } } });\n```",
        move |nc: NativeCallContext, _env: &mut EnvHandle, name: &str, options: Map| -> Workload {
            let site = c.site(&nc);
            statefulset(&c, &site, name, options)
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "job",
        ["env: Environment", "name: &str", "options: Map"],
        "Declares a Job that runs to completion (a migration, a seed). Workloads that list it in\n\
         `after` wait until it has completed. Options as for `deployment`, plus `backoff_limit`.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nlet migrate = env.job(\"migrate-1\", #{ image: \"ghcr.io/acme/app:1.0\", command: [\"python\", \"manage.py\", \"migrate\"] });\n```",
        move |nc: NativeCallContext, _env: &mut EnvHandle, name: &str, options: Map| -> Workload {
            let site = c.site(&nc);
            job(&c, &site, name, options)
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "cronjob",
        ["env: Environment", "name: &str", "options: Map"],
        "Declares a CronJob. Options as for `job`, plus `schedule` (five cron fields, checked at plan\n\
         time), `suspend`, `concurrency` (`Forbid` by default, `Allow`, `Replace`).\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nenv.cronjob(\"report\", #{ schedule: \"*/5 * * * *\", image: \"ghcr.io/acme/app:1.0\", command: [\"report\"] });\n```",
        move |nc: NativeCallContext, _env: &mut EnvHandle, name: &str, options: Map| -> Workload {
            let site = c.site(&nc);
            cronjob(&c, &site, name, options)
        }
    );
}

/// `replicas`, 1 when absent: a count the API server takes (an int32, not negative); out of
/// range it is reported at the literal and counted as 1.
fn parse_replicas(o: &mut Opts, site: &Site, name: &str) -> i64 {
    parse_count(o, site, name, "replicas", 1)
}

/// `replicas` or `autoscale: #{ min, max, cpu }` (not both: an autoscaler sets the replicas,
/// so cairn never applies them).
fn parse_scaling(o: &mut Opts, site: &Site, name: &str) -> (Option<i64>, Option<AutoscaleSpec>) {
    let Some(options) = o.map("autoscale") else {
        return (Some(parse_replicas(o, site, name)), None);
    };
    if o.get("replicas").is_some() {
        o.diagnostics.push(
            site.error(Code::InvalidOption, "replicas", format!("`{name}` sets both `replicas` and `autoscale`"))
                .label("set by the autoscaler")
                .help("drop `replicas`: the autoscaler keeps them between `min` and `max`, and cairn never takes them back"),
        );
    }
    let mut a = Opts::new(
        "the autoscale option",
        options,
        &["min", "max", "cpu"],
        site,
    );
    let min = a.int("min").unwrap_or(1);
    let max = a.int("max");
    let cpu = a.int("cpu").unwrap_or(80);
    let mut problems = Vec::new();
    if !(1..=i64::from(i32::MAX)).contains(&min) {
        problems.push((
            "min",
            format!("min {min} of `{name}`'s autoscale must be at least 1"),
        ));
    }
    match max {
        None => problems.push((
            "autoscale",
            format!("`{name}`'s autoscale needs `max`, the most replicas"),
        )),
        Some(m) if m < min || m > i64::from(i32::MAX) => {
            problems.push((
                "max",
                format!("max {m} of `{name}`'s autoscale must be at least min ({min})"),
            ));
        }
        Some(_) => {}
    }
    if !(1..=1000).contains(&cpu) {
        problems.push((
            "cpu",
            format!(
                "cpu {cpu} of `{name}`'s autoscale is a percentage of the CPU requests, from 1"
            ),
        ));
    }
    for (at, message) in problems {
        a.diagnostics
            .push(site.error(Code::InvalidOption, at, message));
    }
    o.diagnostics.extend(a.finish());
    let spec = max.map(|max| AutoscaleSpec { min, max, cpu });
    (None, spec)
}

/// The HorizontalPodAutoscaler of an autoscaled workload, after it.
fn add_autoscaler(c: &Ctx, site: &Site, workload: &Workload, autoscale: Option<AutoscaleSpec>) {
    let Some(a) = autoscale else {
        return;
    };
    let ns = ns_of(c);
    let body = lower::autoscaler(&ns, &workload.id.kind, &workload.name, &a);
    let id = ResourceId::kube("HorizontalPodAutoscaler", Some(&ns), &workload.name);
    let mut b = builder::lock(&c.b);
    b.add(id, body, vec![workload.id.clone()], false, site.primary());
}

/// A count option (`replicas`, `backoff_limit`), `default` when absent: an int32, not
/// negative, as the API server takes it; out of range it is reported at the literal and
/// counted as `default`.
fn parse_count(o: &mut Opts, site: &Site, name: &str, key: &str, default: i64) -> i64 {
    let n = o.int(key).unwrap_or(default);
    if (0..=i64::from(i32::MAX)).contains(&n) {
        return n;
    }
    o.diagnostics.push(
        site.error(
            Code::InvalidOption,
            &n.to_string(),
            format!("{key} {n} of `{name}` is out of range 0-{}", i32::MAX),
        )
        .label("not a count")
        .help(format!(
            "{key} is a count from 0 up to 2147483647 (an int32)"
        )),
    );
    default
}

/// Binding of `env.deployment`.
fn deployment(c: &Ctx, site: &Site, name: &str, options: Map) -> Workload {
    check_name(c, site, "deployment", name, true);
    let mut o = Opts::new(
        format!("env.deployment(\"{name}\", ...)"),
        options,
        DEPLOYMENT_KEYS,
        site,
    );
    let (replicas, autoscale) = parse_scaling(&mut o, site, name);
    let service = o.bool("service").unwrap_or(true);
    let pod = parse_pod(c, site, &mut o, name, None, false);
    if let Some(pod) = &pod {
        // One container, probed when it has a readiness probe.
        let probed = pod.spec.container.readiness.is_some();
        if !pod.ports.is_empty() && service && !probed {
            o.diagnostics.push(Diagnostic::warning(Code::NoReadinessProbe, format!("deployment `{name}` is exposed without a readiness probe"))
                .at(site.span.clone())
                .label("no `ready:` probe")
                .help("add `ready: http_get(\"/health\", PORT)` so traffic and rollouts wait for a ready pod"));
        }
    }
    c.report(o.finish());
    let Some(pod) = pod else {
        return placeholder(c, "Deployment", name);
    };
    let workload = finish_workload(
        c,
        site,
        &WorkloadKind::Deployment { replicas },
        pod,
        service,
    );
    add_autoscaler(c, site, &workload, autoscale);
    workload
}

/// Binding of `env.statefulset`.
fn statefulset(c: &Ctx, site: &Site, name: &str, options: Map) -> Workload {
    check_name(c, site, "statefulset", name, true);
    let mut o = Opts::new(
        format!("env.statefulset(\"{name}\", ...)"),
        options,
        STATEFULSET_KEYS,
        site,
    );
    let (replicas, autoscale) = parse_scaling(&mut o, site, name);
    let headless = o.bool("headless").unwrap_or(false);
    let pod = parse_pod(c, site, &mut o, name, None, true);
    c.report(o.finish());
    let Some(pod) = pod else {
        return placeholder(c, "StatefulSet", name);
    };
    let workload = finish_workload(c, site, &WorkloadKind::StatefulSet { replicas }, pod, true);
    if headless {
        make_headless(c, name);
    }
    add_autoscaler(c, site, &workload, autoscale);
    workload
}

/// Binding of `env.job`.
fn job(c: &Ctx, site: &Site, name: &str, options: Map) -> Workload {
    check_name(c, site, "job", name, false);
    let mut o = Opts::new(format!("env.job(\"{name}\", ...)"), options, JOB_KEYS, site);
    let backoff_limit = parse_count(&mut o, site, name, "backoff_limit", 3);
    let pod = parse_pod(c, site, &mut o, name, Some("Never"), false);
    c.report(o.finish());
    let Some(pod) = pod else {
        return placeholder(c, "Job", name);
    };
    finish_workload(c, site, &WorkloadKind::Job { backoff_limit }, pod, false)
}

/// Binding of `env.cronjob`.
fn cronjob(c: &Ctx, site: &Site, name: &str, options: Map) -> Workload {
    check_name(c, site, "cronjob", name, false);
    if name.len() > 52 {
        c.report1(site.error(
            Code::InvalidName,
            name,
            format!("cronjob name \"{name}\" is longer than 52 characters"),
        ));
    }
    let mut o = Opts::new(
        format!("env.cronjob(\"{name}\", ...)"),
        options,
        CRONJOB_KEYS,
        site,
    );
    let schedule = o.req_str("schedule");
    let suspend = o.bool("suspend").unwrap_or(false);
    if let Some(s) = &schedule
        && let Some(d) = schedule_problem(site, s, suspend)
    {
        o.diagnostics.push(d);
    }
    let concurrency = o.str("concurrency").unwrap_or_else(|| "Forbid".to_owned());
    if !matches!(concurrency.as_str(), "Allow" | "Forbid" | "Replace") {
        o.diagnostics.push(site.error(
            Code::InvalidOption,
            &concurrency,
            format!("unknown concurrency policy `{concurrency}`; use Allow, Forbid or Replace"),
        ));
    }
    let backoff_limit = parse_count(&mut o, site, name, "backoff_limit", 1);
    let pod = parse_pod(c, site, &mut o, name, Some("Never"), false);
    c.report(o.finish());
    let Some(pod) = pod else {
        return placeholder(c, "CronJob", name);
    };
    let kind = WorkloadKind::CronJob {
        schedule: schedule.unwrap_or_default(),
        suspend,
        concurrency,
        backoff_limit,
    };
    finish_workload(c, site, &kind, pod, false)
}

/// What is wrong with a CronJob's schedule: its syntax, or a day that never comes (`0 0 30 2
/// *`) unless the CronJob is suspended (started by hand, it may never fire on purpose).
fn schedule_problem(site: &Site, s: &str, suspend: bool) -> Option<Diagnostic> {
    if let Err(e) = validate::cron_schedule(s) {
        return Some(
            site.error(Code::InvalidSchedule, s, e.0)
                .label("not a cron schedule")
                .help(
                    "five fields: minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\"",
                ),
        );
    }
    if suspend {
        return None;
    }
    let e = validate::cron_schedule_runs(s).err()?;
    Some(
        site.error(Code::InvalidSchedule, s, e.0)
            .label("never runs")
            .help("pick a day that every month of the schedule has; a CronJob only started by hand takes `suspend: true`"),
    )
}

/// Turns the Service of a StatefulSet into a headless one that also publishes pods that are not
/// ready yet, so that the members of a cluster (CockroachDB, Redis with Sentinel) find each
/// other by their stable names before they are ready.
fn make_headless(ctx: &Ctx, name: &str) {
    let ns = ns_of(ctx);
    let id = ResourceId::kube("Service", Some(&ns), name);
    let mut b = builder::lock(&ctx.b);
    if let Some(r) = b.resources.iter_mut().find(|r| r.id == id)
        && let Some(Value::Object(spec)) = r.body.get("spec").cloned()
    {
        let mut spec = Value::Object(spec);
        spec.insert("clusterIP", Value::str("None"));
        spec.insert("publishNotReadyAddresses", Value::Bool(true));
        r.body.insert("spec", spec);
    }
}

/// A handle for a workload that could not be declared (its errors are already reported), so
/// the script can go on and every other problem is found too.
fn placeholder(ctx: &Ctx, kind: &'static str, name: &str) -> Workload {
    let ns = ns_of(ctx);
    Workload {
        name: name.to_owned(),
        id: ResourceId::kube(kind, Some(&ns), name),
        service: None,
        ports: Vec::new(),
        route_port: None,
        service_ports: Vec::new(),
        pods: None,
    }
}
