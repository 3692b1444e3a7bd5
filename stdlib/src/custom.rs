//! Custom resources (`env.object`) and the Secrets operators make (`env.operator_secret`), so
//! that plugins can declare what an operator manages: Zalando's `postgresql`, CloudNativePG's
//! `Cluster`, the Prometheus operator's kinds.

use cairn_model::Code;
use cairn_model::spec::network::CustomObjectSpec;
use cairn_model::validate;
use cairn_model::{Diagnostic, ResourceId, Value};
use rhai::{Array, Engine, Map, NativeCallContext};

use crate::api::{Ctx, check_name};
use crate::builder;
use crate::convert;
use crate::docs::Docs;
use crate::export;
use crate::lower::network as lower;
use crate::opts::{Opts, Site};
use crate::types::{EnvHandle, SecretHandle, Workload};

pub fn register(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    register_objects(engine, docs, ctx);
    register_operator_secret(engine, docs, ctx);
}

/// `env.object(api_version, kind, name, body[, options])`.
fn register_objects(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "object",
        [
            "env: Environment",
            "api_version: &str",
            "kind: &str",
            "name: &str",
            "body: Map"
        ],
        "Declares a custom resource an operator acts on, in the environment's namespace: `body`\n\
         holds its top-level fields (`spec`…) and may add `metadata` labels and annotations.\n\
         `plan` asks the cluster whether it serves the kind, and fails naming the operator to\n\
         install when it does not. Returns a handle usable in `after` and as a component's workload.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nlet db = env.object(\"acid.zalan.do/v1\", \"postgresql\", \"demo-db\", #{\n    spec: #{ teamId: \"demo\", numberOfInstances: 1, volume: #{ size: \"1Gi\" }, postgresql: #{ version: \"16\" } },\n});\n```",
        move |nc: NativeCallContext,
              _env: &mut EnvHandle,
              api_version: &str,
              kind: &str,
              name: &str,
              body: Map|
              -> Workload {
            let site = c.site(&nc);
            declare(&c, &site, api_version, kind, name, body, Map::new())
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "object",
        [
            "env: Environment",
            "api_version: &str",
            "kind: &str",
            "name: &str",
            "body: Map",
            "options: Map"
        ],
        "Like `env.object(api_version, kind, name, body)`, with options: `pods` (the labels of the\n\
         pods the operator makes, so that network policies can reach them), `ports` (#{ name:\n\
         number }), `after` (what must be applied first), `holds_data` (when true: once the\n\
         script drops it, cairn keeps it unless `env.allow_delete(kind, name)` says otherwise).\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nlet db = env.object(\"postgresql.cnpg.io/v1\", \"Cluster\", \"demo-db\",\n    #{ spec: #{ instances: 1, storage: #{ size: \"1Gi\" } } },\n    #{ pods: #{ \"cnpg.io/cluster\": \"demo-db\" }, ports: #{ postgres: 5432 } });\n```",
        move |nc: NativeCallContext,
              _env: &mut EnvHandle,
              api_version: &str,
              kind: &str,
              name: &str,
              body: Map,
              options: Map|
              -> Workload {
            let site = c.site(&nc);
            declare(&c, &site, api_version, kind, name, body, options)
        }
    );
}

/// `env.operator_secret(name, keys)`.
fn register_operator_secret(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "operator_secret",
        ["env: Environment", "name: &str", "keys: Array"],
        "A Secret that an operator makes (not cairn), with the keys it holds: workloads can read\n\
         its keys with `.key(...)` and `check` knows them. cairn never writes or prunes it.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nlet creds = env.operator_secret(\"app.demo-db.credentials.postgresql.acid.zalan.do\", [\"username\", \"password\"]);\nlet web = env.deployment(\"web\", #{ image: \"nginx:1.27\", env: [#{ DB_PASSWORD: creds.key(\"password\") }] });\n```",
        move |nc: NativeCallContext,
              _env: &mut EnvHandle,
              name: &str,
              keys: Array|
              -> SecretHandle { operator_secret(&c, &c.site(&nc), name, keys) }
    );
}

fn operator_secret(c: &Ctx, site: &Site, name: &str, keys: Array) -> SecretHandle {
    check_name(c, site, "secret", name, false);
    let mut names = Vec::new();
    for key in keys {
        let key = key.to_string();
        if let Err(e) = validate::config_key(&key) {
            c.report1(site.error(Code::InvalidName, &key, e.0));
        }
        names.push(key);
    }
    let mut b = builder::lock(&c.b);
    let ns = b.namespace();
    if let Some(meta) = b.env.as_mut() {
        meta.external_secrets
            .insert(format!("{ns}/{name}"), names.clone());
    }
    SecretHandle {
        name: name.to_owned(),
        keys: names,
        id: ResourceId::kube("Secret", Some(&ns), name),
    }
}

/// Built-in API groups: their kinds have their own functions (or are not for scripts).
fn builtin_group(group: &str) -> bool {
    matches!(
        group,
        "" | "apps" | "batch" | "autoscaling" | "policy" | "extensions"
    ) || group == "k8s.io"
        || group.ends_with(".k8s.io")
}

/// Why an `apiVersion` or a kind is not one of a custom resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectTypeError {
    /// A core API version (no group).
    #[error(
        "`{0}` is a core API version; env.object is for custom resources (`group/version`, such as acid.zalan.do/v1)"
    )]
    CoreApi(String),
    /// A built-in API group.
    #[error("`{0}` is a built-in API; use env.deployment, env.statefulset, env.job… for its kinds")]
    BuiltinApi(String),
    /// A group that is not a DNS name with a dot.
    #[error("invalid API group `{0}`: a DNS name such as acid.zalan.do")]
    Group(String),
    /// A version that is not `v1`, `v2beta1`, `v1alpha2`….
    #[error("invalid API version `{0}`: v1, v2beta1, v1alpha2…")]
    Version(String),
    /// The kind of a built-in API.
    #[error("`{0}` is the name of a built-in kind; a custom resource needs its own kind")]
    BuiltinKind(String),
    /// Not letters and digits.
    #[error("invalid kind `{0}`: letters and digits, starting with a letter")]
    Kind(String),
}

/// Checks `group/version`: a group with a dot that is not built in, a Kubernetes version.
fn check_api_version(api_version: &str) -> Result<(), ObjectTypeError> {
    let Some((group, version)) = api_version.split_once('/') else {
        return Err(ObjectTypeError::CoreApi(api_version.to_owned()));
    };
    if builtin_group(group) {
        return Err(ObjectTypeError::BuiltinApi(api_version.to_owned()));
    }
    if !group.contains('.') || validate::dns1123_subdomain(group).is_err() {
        return Err(ObjectTypeError::Group(group.to_owned()));
    }
    let rest = version.strip_prefix('v').unwrap_or("");
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let tail = &rest[digits..];
    let tail_ok = tail.is_empty()
        || ["alpha", "beta"].iter().any(|stage| {
            tail.strip_prefix(stage)
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        });
    if digits == 0 || !tail_ok {
        return Err(ObjectTypeError::Version(version.to_owned()));
    }
    Ok(())
}

fn check_kind(kind: &str) -> Result<(), ObjectTypeError> {
    // Kinds of the built-in APIs: a custom kind of the same name would be taken for them.
    if ResourceId::kube(kind, None, "").rank < 10
        || matches!(kind, "Pod" | "Event" | "Lease" | "ReplicaSet")
    {
        return Err(ObjectTypeError::BuiltinKind(kind.to_owned()));
    }
    let ok = kind.len() <= 63
        && kind.starts_with(|c: char| c.is_ascii_alphabetic())
        && kind.chars().all(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ObjectTypeError::Kind(kind.to_owned()))
    }
}

const OPTION_KEYS: &[&str] = &["pods", "ports", "after", "holds_data"];

/// The options of `env.object(...)`: what the handle and the resource need besides the body.
struct ObjectOptions {
    pods: Option<Vec<(String, String)>>,
    ports: Vec<(String, i64)>,
    depends_on: Vec<ResourceId>,
    protected: bool,
}

fn object_options(
    c: &Ctx,
    site: &Site,
    kind: &str,
    name: &str,
    ns: &str,
    options: Map,
) -> ObjectOptions {
    let mut o = Opts::new(
        format!("env.object(\"{kind}\", \"{name}\", ...)"),
        options,
        OPTION_KEYS,
        site,
    );
    let pods = o.map("pods").map(|labels| pod_labels(&mut o, site, labels));
    let ports = o
        .map("ports")
        .map(|map| port_numbers(&mut o, site, map))
        .unwrap_or_default();
    let mut depends_on = vec![ResourceId::kube("Namespace", None, ns)];
    for dep in o.list("after") {
        if let Some(w) = dep.clone().try_cast::<Workload>() {
            depends_on.push(w.id.clone());
        } else if let Some(s) = dep.clone().try_cast::<SecretHandle>() {
            depends_on.push(s.id.clone());
        } else {
            o.diagnostics.push(
                Diagnostic::error(
                    Code::InvalidOption,
                    format!(
                        "`after` of `{name}` lists {}, not a workload or a secret",
                        crate::types::script_type(&dep)
                    ),
                )
                .at(site.at("after")),
            );
        }
    }
    let protected = o.bool("holds_data").unwrap_or(false);
    c.report(o.finish());
    ObjectOptions {
        pods,
        ports,
        depends_on,
        protected,
    }
}

/// The labels of the pods an operator makes (`pods`), checked.
fn pod_labels(o: &mut Opts, site: &Site, labels: Map) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in labels {
        let v = v.to_string();
        if let Err(e) = validate::label_key(&k).and_then(|()| validate::label_value(&v)) {
            o.diagnostics.push(site.error(Code::InvalidLabel, &k, e.0));
        }
        out.push((k.to_string(), v));
    }
    out
}

/// Named port numbers (`ports`), checked.
fn port_numbers(o: &mut Opts, site: &Site, map: Map) -> Vec<(String, i64)> {
    let mut ports = Vec::new();
    for (k, v) in map {
        match v.as_int() {
            Ok(p) if (1..=65535).contains(&p) => ports.push((k.to_string(), p)),
            _ => o.diagnostics.push(site.error(
                Code::InvalidOption,
                &k,
                format!("port `{k}` must be a number in 1-65535"),
            )),
        }
    }
    ports
}

fn declare(
    c: &Ctx,
    site: &Site,
    api_version: &str,
    kind: &str,
    name: &str,
    body: Map,
    options: Map,
) -> Workload {
    let mut valid = check_name(c, site, "object", name, false);
    if let Err(e) = check_api_version(api_version) {
        c.report1(site.error(Code::InvalidApiVersion, api_version, e.to_string()));
        valid = false;
    }
    if let Err(e) = check_kind(kind) {
        c.report1(site.error(Code::InvalidKind, kind, e.to_string()));
        valid = false;
    }
    let ns = builder::lock(&c.b).namespace();
    let opts = object_options(c, site, kind, name, &ns, options);
    let mut spec = CustomObjectSpec {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
        namespace: ns,
        fields: Vec::new(),
        metadata: Vec::new(),
        protected: opts.protected,
    };
    object_body(c, site, &mut spec, body);
    let o = lower::custom_object(&spec);
    if valid {
        builder::lock(&c.b).add(
            o.id.clone(),
            o.body,
            opts.depends_on,
            spec.protected,
            site.primary(),
        );
    }
    Workload {
        name: name.to_owned(),
        id: o.id,
        service: None,
        ports: opts.ports,
        route_port: None,
        service_ports: Vec::new(),
        pods: opts.pods,
    }
}

/// The top-level fields of a custom resource's body, checked, into its spec.
fn object_body(c: &Ctx, site: &Site, spec: &mut CustomObjectSpec, body: Map) {
    let name = spec.name.clone();
    for (key, value) in body {
        let key = key.to_string();
        if matches!(key.as_str(), "apiVersion" | "kind") {
            c.report1(site.error(
                Code::InvalidOption,
                &key,
                format!("`{key}` of `{name}` is given by env.object's arguments"),
            ));
            continue;
        }
        let value = match convert::to_value(&value) {
            Ok(v) => v,
            Err(e) => {
                c.report1(Diagnostic::error(Code::InvalidOption, e).at(site.at(&key)));
                continue;
            }
        };
        if key == "metadata" {
            spec.metadata = metadata(c, site, &name, value);
        } else {
            spec.fields.push((key, value));
        }
    }
}

/// The labels and annotations of a script's `metadata`, checked.
fn metadata(c: &Ctx, site: &Site, name: &str, given: Value) -> Vec<(String, Value)> {
    let Value::Object(given) = given else {
        c.report1(site.error(
            Code::InvalidOption,
            "metadata",
            format!("`metadata` of `{name}` must be a map"),
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in given {
        match key.as_str() {
            "labels" | "annotations" => {
                if let Value::Object(pairs) = &value {
                    for (k, v) in pairs {
                        let checked = if key == "labels" {
                            validate::label_key(k).and_then(|()| {
                                validate::label_value(v.as_str().unwrap_or_default())
                            })
                        } else {
                            validate::label_key(k)
                        };
                        if let Err(e) = checked {
                            c.report1(site.error(Code::InvalidLabel, k, e.0));
                        }
                    }
                }
                out.push((key, value));
            }
            other => c.report1(site.error(
                Code::InvalidOption,
                other,
                format!(
                    "`metadata.{other}` of `{name}` is cairn's to set; only labels and annotations may be given"
                ),
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_of_custom_resources_only() {
        assert!(check_api_version("acid.zalan.do/v1").is_ok());
        assert!(check_api_version("postgresql.cnpg.io/v1").is_ok());
        assert!(check_api_version("monitoring.coreos.com/v1alpha1").is_ok());
        assert!(check_api_version("v1").is_err());
        assert!(check_api_version("apps/v1").is_err());
        assert!(check_api_version("networking.k8s.io/v1").is_err());
        assert!(check_api_version("example.com/1").is_err());
        assert!(check_api_version("example.com/v1gamma").is_err());
        assert!(check_api_version("Example.com/v1").is_err());
        assert!(check_kind("postgresql").is_ok());
        assert!(check_kind("Cluster").is_ok());
        assert!(check_kind("my-kind").is_err());
        assert!(check_kind("1Kind").is_err());
        assert!(check_kind("Deployment").is_err());
        assert!(check_kind("Pod").is_err());
        assert!(check_kind("PrometheusRule").is_ok());
    }
}
