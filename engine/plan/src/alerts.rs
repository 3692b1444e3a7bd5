//! Alert rules and their routing as Kubernetes objects, decided at plan time: a
//! `PrometheusRule` (`monitoring.coreos.com/v1`) when the cluster serves that CRD, otherwise a
//! ConfigMap holding a Prometheus rules file; the routing as an `AlertmanagerConfig`
//! (`monitoring.coreos.com/v1alpha1`) when the cluster serves that CRD, otherwise as an
//! Alertmanager configuration in a Secret. Either way the route matches on the environment's
//! label, so one environment's alerts never reach another's channel.

use std::collections::BTreeMap;

use cairn_model::{DesiredState, Provider, Resource, ResourceId, Value};

/// Whether the cluster runs the Prometheus operator (serves `monitoring.coreos.com/v1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleFormat {
    /// `PrometheusRule` objects.
    PrometheusOperator,
    /// A ConfigMap with a rules file, for a Prometheus that mounts it.
    ConfigMap,
}

/// How alert routing is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteFormat {
    /// An `AlertmanagerConfig` custom resource (`monitoring.coreos.com/v1alpha1`), with webhook
    /// URLs in a Secret it references, never inline.
    AlertmanagerConfig,
    /// A Secret holding an `alertmanager.yaml`.
    Secret,
}

/// How alert rules and their routing are rendered, decided by what the cluster serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertFormat {
    /// The rules.
    pub rules: RuleFormat,
    /// The routing.
    pub routes: RouteFormat,
}

impl From<RuleFormat> for AlertFormat {
    /// Rules as given, routing as a Secret.
    fn from(rules: RuleFormat) -> Self {
        Self {
            rules,
            routes: RouteFormat::Secret,
        }
    }
}

fn labels(env: &str) -> Value {
    Value::obj([
        ("app.kubernetes.io/managed-by", Value::str("cairn")),
        ("cairn.dev/environment", Value::str(env)),
    ])
}

/// The Kubernetes objects for the environment's alert rules and routing; they replace the
/// `Alerts` resources in what the Kubernetes provider plans.
pub fn kube_objects(state: &DesiredState, format: impl Into<AlertFormat>) -> Vec<Resource> {
    let AlertFormat {
        rules: format,
        routes: route_format,
    } = format.into();
    let env = state.environment.name.as_str();
    let Some(ns) = state.environment.namespace.as_deref() else {
        return Vec::new();
    };
    let rules: Vec<&Resource> = state
        .resources
        .iter()
        .filter(|r| r.id.provider == Provider::Alerts && r.id.kind == "AlertRule")
        .collect();
    let routes: Vec<&Resource> = state
        .resources
        .iter()
        .filter(|r| r.id.provider == Provider::Alerts && r.id.kind == "AlertRoute")
        .collect();
    let ns_id = ResourceId::kube("Namespace", None, ns);
    let mut out = Vec::new();
    if !rules.is_empty() {
        out.push(rules_object(env, ns, format, &rules, &ns_id));
    }
    let targets: Vec<&Resource> = state
        .resources
        .iter()
        .filter(|r| r.id.provider == Provider::Alerts && r.id.kind == "ScrapeTarget")
        .collect();
    if !targets.is_empty() {
        let hosts = tls_hosts(state);
        out.push(scrape_targets(env, ns, &targets, &hosts, &ns_id));
    }
    let receivers: Vec<&Value> = routes
        .iter()
        .filter_map(|r| r.body.get("receiver"))
        .collect();
    let span = routes.first().and_then(|r| r.span.clone());
    match route_format {
        // Rules without a route still get an Alertmanager configuration (a receiver with no
        // target), so that the Alertmanager which mounts it starts.
        RouteFormat::Secret if !routes.is_empty() || !rules.is_empty() => {
            let span = span.or_else(|| rules.first().and_then(|r| r.span.clone()));
            out.push(routing_secret(env, ns, &receivers, span, &ns_id));
        }
        RouteFormat::AlertmanagerConfig if !routes.is_empty() => {
            out.extend(alertmanager_config(env, ns, &receivers, span, &ns_id));
        }
        _ => {}
    }
    out
}

/// The alert rules as one group, in a `PrometheusRule` or in a ConfigMap's rule file.
fn rules_object(
    env: &str,
    ns: &str,
    format: RuleFormat,
    rules: &[&Resource],
    ns_id: &ResourceId,
) -> Resource {
    let group = Value::obj([
        ("name", Value::str(format!("cairn-{env}"))),
        (
            "rules",
            Value::Array(rules.iter().map(|r| r.body.clone()).collect()),
        ),
    ]);
    let name = format!("{env}-alert-rules");
    let meta = Value::obj([
        ("name", Value::str(name.as_str())),
        ("namespace", Value::str(ns)),
        ("labels", labels(env)),
    ]);
    let (kind, body) = match format {
        RuleFormat::PrometheusOperator => (
            "PrometheusRule",
            Value::obj([
                ("apiVersion", Value::str("monitoring.coreos.com/v1")),
                ("kind", Value::str("PrometheusRule")),
                ("metadata", meta),
                ("spec", Value::obj([("groups", Value::Array(vec![group]))])),
            ]),
        ),
        RuleFormat::ConfigMap => {
            let file = Value::obj([("groups", Value::Array(vec![group]))]).to_json();
            let text = serde_json::to_string_pretty(&file).unwrap_or_default();
            (
                "ConfigMap",
                Value::obj([
                    ("apiVersion", Value::str("v1")),
                    ("kind", Value::str("ConfigMap")),
                    ("metadata", meta),
                    (
                        "data",
                        Value::obj([(format!("{env}.rules.yaml"), Value::str(text))]),
                    ),
                ]),
            )
        }
    };
    let span = rules.first().and_then(|r| r.span.clone());
    resource(kind, ns, &name, body, span, vec![ns_id.clone()])
}

/// The scrape targets (`env.scrape`) as a Prometheus file-based discovery file in the
/// ConfigMap `<env>-scrape-targets` (`targets.json`), which `monitoring::stack` mounts: one
/// target group per job, its path as `__metrics_path__`. A probing job (`probe`: a blackbox
/// exporter) gets `probes-<job>.json` instead: every TLS host of the routes as `host:443`, the
/// targets its scrape configuration relabels into `/probe?target=` of the exporter.
fn scrape_targets(
    env: &str,
    ns: &str,
    targets: &[&Resource],
    tls_hosts: &[String],
    ns_id: &ResourceId,
) -> Resource {
    let text = |t: &Resource, key: &str| {
        t.body
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut files = Vec::new();
    let mut groups = Vec::new();
    for t in targets {
        let job = text(t, "job");
        if t.body.get("probe").is_some() {
            let probes: Vec<String> = tls_hosts.iter().map(|h| format!("{h}:443")).collect();
            let group = serde_json::json!([{ "targets": probes, "labels": { "job": job, "namespace": ns } }]);
            files.push((format!("probes-{job}.json"), group));
            continue;
        }
        let list: Vec<&str> = t
            .body
            .get("targets")
            .map(Value::as_array)
            .unwrap_or_default()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        groups.push(serde_json::json!({
            "targets": list,
            "labels": {
                "job": job,
                "namespace": ns,
                "__metrics_path__": text(t, "path"),
            },
        }));
    }
    files.push(("targets.json".to_owned(), serde_json::Value::Array(groups)));
    let data = files.into_iter().map(|(key, v)| {
        (
            key,
            Value::str(serde_json::to_string_pretty(&v).unwrap_or_default()),
        )
    });
    let name = format!("{env}-scrape-targets");
    let body = Value::obj([
        ("apiVersion", Value::str("v1")),
        ("kind", Value::str("ConfigMap")),
        ("metadata", metadata(&name, ns, env)),
        ("data", Value::obj(data)),
    ]);
    let span = targets.first().and_then(|r| r.span.clone());
    resource("ConfigMap", ns, &name, body, span, vec![ns_id.clone()])
}

/// The TLS hosts of the environment's routes (its Ingresses' `tls[].hosts`), sorted.
fn tls_hosts(state: &DesiredState) -> Vec<String> {
    let mut hosts: Vec<String> = state
        .kube_objects()
        .filter(|r| r.id.kind == "Ingress")
        .flat_map(|r| {
            r.body
                .pointer(&["spec", "tls"])
                .map(Value::as_array)
                .unwrap_or_default()
        })
        .flat_map(|t| t.get("hosts").map(Value::as_array).unwrap_or_default())
        .filter_map(|h| h.as_str().map(str::to_owned))
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

fn metadata(name: &str, ns: &str, env: &str) -> Value {
    Value::obj([
        ("name", Value::str(name)),
        ("namespace", Value::str(ns)),
        ("labels", labels(env)),
    ])
}

fn resource(
    kind: &str,
    ns: &str,
    name: &str,
    body: Value,
    span: Option<cairn_model::Span>,
    deps: Vec<ResourceId>,
) -> Resource {
    Resource {
        id: ResourceId::kube(kind, Some(ns), name),
        body,
        depends_on: deps,
        protected: false,
        span,
        field_spans: BTreeMap::new(),
    }
}

/// Where the routing Secret is mounted in an Alertmanager (`monitoring::stack`): the
/// configuration is `alertmanager.yaml` there, and the receivers' secrets (a Slack webhook, an
/// SMTP password, a sensitive webhook URL) are files beside it, read with `*_file` settings,
/// so the configuration itself holds none.
pub const ALERTMANAGER_CONFIG_DIR: &str = "/etc/alertmanager/config";

/// The routing as an Alertmanager configuration file in a Secret, with the receivers'
/// secrets as other keys of the same Secret.
fn routing_secret(
    env: &str,
    ns: &str,
    receivers: &[&Value],
    span: Option<cairn_model::Span>,
    ns_id: &ResourceId,
) -> Resource {
    let receiver = format!("cairn-{env}");
    let (receiver_doc, files) = secret_receiver(&receiver, receivers);
    let config = serde_json::json!({
        "route": {
            "receiver": receiver,
            "group_by": ["alertname", "environment"],
            "matchers": [format!("environment=\"{env}\"")],
        },
        "receivers": [receiver_doc],
    });
    let name = format!("{env}-alertmanager");
    let mut data = Value::obj([(
        "alertmanager.yaml",
        Value::str(serde_json::to_string_pretty(&config).unwrap_or_default()),
    )]);
    for (key, value) in files {
        data.insert(key, value);
    }
    let body = Value::obj([
        ("apiVersion", Value::str("v1")),
        ("kind", Value::str("Secret")),
        ("metadata", metadata(&name, ns, env)),
        ("type", Value::str("Opaque")),
        ("stringData", data),
    ]);
    resource("Secret", ns, &name, body, span, vec![ns_id.clone()])
}

/// Whether a receiver sends resolved notifications (true unless `send_resolved: false`).
fn send_resolved(target: &Value) -> bool {
    !matches!(target.get("send_resolved"), Some(Value::Bool(false)))
}

/// A receiver's secret setting: inline when plain text, else a file of the routing Secret
/// (`<key>-<n>`, in `files`) that `<setting>_file` names.
fn secret_setting(
    cfg: &mut serde_json::Map<String, serde_json::Value>,
    setting: &str,
    value: Option<&Value>,
    files: &mut Vec<(String, Value)>,
) {
    match value {
        Some(Value::String(text)) => {
            cfg.insert(setting.into(), text.clone().into());
        }
        Some(v @ Value::Sensitive(_)) => {
            let key = format!("{}-{}", setting.replace('_', "-"), files.len() + 1);
            let path = format!("{ALERTMANAGER_CONFIG_DIR}/{key}");
            cfg.insert(format!("{setting}_file"), path.into());
            files.push((key, v.clone()));
        }
        _ => {}
    }
}

/// One target of a receiver in an Alertmanager configuration file: its list and its entry.
fn secret_target(
    target: &Value,
    files: &mut Vec<(String, Value)>,
) -> Option<(&'static str, serde_json::Map<String, serde_json::Value>)> {
    let mut cfg = serde_json::Map::new();
    let key = if let Some(channel) = target.get("slack_channel").and_then(Value::as_str) {
        cfg.insert("channel".into(), channel.into());
        secret_setting(&mut cfg, "api_url", target.get("slack_api_url"), files);
        "slack_configs"
    } else if let Some(to) = target.get("email").and_then(Value::as_str) {
        cfg.insert("to".into(), to.into());
        for (field, setting) in [
            ("email_from", "from"),
            ("email_smarthost", "smarthost"),
            ("email_username", "auth_username"),
        ] {
            if let Some(v) = target.get(field).and_then(Value::as_str) {
                cfg.insert(setting.into(), v.into());
            }
        }
        secret_setting(
            &mut cfg,
            "auth_password",
            target.get("email_password"),
            files,
        );
        "email_configs"
    } else if target.get("webhook_url").is_some() {
        secret_setting(&mut cfg, "url", target.get("webhook_url"), files);
        "webhook_configs"
    } else {
        return None;
    };
    cfg.insert("send_resolved".into(), send_resolved(target).into());
    Some((key, cfg))
}

/// The receiver of an Alertmanager configuration file (its Slack, e-mail and webhook
/// targets), and the secret files it reads.
fn secret_receiver(
    receiver: &str,
    receivers: &[&Value],
) -> (
    serde_json::Map<String, serde_json::Value>,
    Vec<(String, Value)>,
) {
    let mut receiver_doc = serde_json::Map::new();
    receiver_doc.insert("name".into(), receiver.into());
    let mut files = Vec::new();
    for target in receivers {
        let Some((key, cfg)) = secret_target(target, &mut files) else {
            continue;
        };
        let entry = receiver_doc
            .entry(key)
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(items) = entry {
            items.push(cfg.into());
        }
    }
    (receiver_doc, files)
}

/// The routing as an `AlertmanagerConfig` custom resource: one receiver with the Slack, e-mail
/// and webhook targets, a route matching the environment's label. Webhook URLs (credentials in
/// their paths, often) go into a Secret the resource references by name and key.
fn alertmanager_config(
    env: &str,
    ns: &str,
    receivers: &[&Value],
    span: Option<cairn_model::Span>,
    ns_id: &ResourceId,
) -> Vec<Resource> {
    let receiver = format!("cairn-{env}");
    let secret_name = format!("{env}-alert-receivers");
    let (receiver_doc, secret_data) = receiver_doc(&receiver, &secret_name, receivers);
    let mut out = Vec::new();
    let mut deps = vec![ns_id.clone()];
    if !secret_data.is_empty() {
        let body = Value::obj([
            ("apiVersion", Value::str("v1")),
            ("kind", Value::str("Secret")),
            ("metadata", metadata(&secret_name, ns, env)),
            ("type", Value::str("Opaque")),
            ("stringData", Value::obj(secret_data)),
        ]);
        out.push(resource(
            "Secret",
            ns,
            &secret_name,
            body,
            span.clone(),
            vec![ns_id.clone()],
        ));
        deps.push(ResourceId::kube("Secret", Some(ns), &secret_name));
    }
    let name = format!("{env}-alert-routing");
    let body = Value::obj([
        ("apiVersion", Value::str("monitoring.coreos.com/v1alpha1")),
        ("kind", Value::str("AlertmanagerConfig")),
        ("metadata", metadata(&name, ns, env)),
        ("spec", routing_spec(env, &receiver, receiver_doc)),
    ]);
    out.push(resource("AlertmanagerConfig", ns, &name, body, span, deps));
    out
}

/// The receiver with the Slack, e-mail and webhook targets, and the Secret data (key →
/// value) its Slack webhooks, SMTP passwords and webhook URLs reference.
fn receiver_doc(
    receiver: &str,
    secret_name: &str,
    receivers: &[&Value],
) -> (Value, Vec<(String, Value)>) {
    let mut slack = Vec::new();
    let mut email = Vec::new();
    let mut webhook = Vec::new();
    let mut secret_data: Vec<(String, Value)> = Vec::new();
    let mut reference = |prefix: &str, n: usize, value: &Value| {
        let key = format!("{prefix}-{n}");
        secret_data.push((key.clone(), value.clone()));
        Value::obj([("name", Value::str(secret_name)), ("key", Value::str(key))])
    };
    for target in receivers {
        let resolved = ("sendResolved", Value::Bool(send_resolved(target)));
        if let Some(channel) = target.get("slack_channel").and_then(Value::as_str) {
            let mut cfg = Value::obj([("channel", Value::str(channel)), resolved]);
            if let Some(url) = target.get("slack_api_url") {
                cfg.insert("apiURL", reference("slack-api-url", slack.len() + 1, url));
            }
            slack.push(cfg);
        } else if let Some(to) = target.get("email").and_then(Value::as_str) {
            let mut cfg = Value::obj([("to", Value::str(to)), resolved]);
            for (field, setting) in [
                ("email_from", "from"),
                ("email_smarthost", "smarthost"),
                ("email_username", "authUsername"),
            ] {
                if let Some(v) = target.get(field) {
                    cfg.insert(setting, v.clone());
                }
            }
            if let Some(p) = target.get("email_password") {
                cfg.insert(
                    "authPassword",
                    reference("smtp-password", email.len() + 1, p),
                );
            }
            email.push(cfg);
        } else if let Some(url) = target.get("webhook_url") {
            let cfg = Value::obj([
                ("urlSecret", reference("webhook", webhook.len() + 1, url)),
                resolved,
            ]);
            webhook.push(cfg);
        }
    }
    let mut doc = Value::obj([("name", Value::str(receiver))]);
    for (key, items) in [
        ("slackConfigs", slack),
        ("emailConfigs", email),
        ("webhookConfigs", webhook),
    ] {
        if !items.is_empty() {
            doc.insert(key, Value::Array(items));
        }
    }
    (doc, secret_data)
}

/// A route of the environment's alerts (by their `environment` label) to its receiver.
fn routing_spec(env: &str, receiver: &str, receiver_doc: Value) -> Value {
    Value::obj([
        (
            "route",
            Value::obj([
                ("receiver", Value::str(receiver)),
                (
                    "groupBy",
                    Value::Array(vec![Value::str("alertname"), Value::str("environment")]),
                ),
                (
                    "matchers",
                    Value::Array(vec![Value::obj([
                        ("name", Value::str("environment")),
                        ("value", Value::str(env)),
                        ("matchType", Value::str("=")),
                    ])]),
                ),
            ]),
        ),
        ("receivers", Value::Array(vec![receiver_doc])),
    ])
}

/// The state the Kubernetes provider plans: alert resources replaced by their objects.
pub fn with_alert_objects(state: &DesiredState, format: impl Into<AlertFormat>) -> DesiredState {
    let format = format.into();
    let mut out = state.clone();
    let objects = kube_objects(state, format);
    out.resources.retain(|r| r.id.provider != Provider::Alerts);
    out.resources.extend(objects);
    if format.rules == RuleFormat::PrometheusOperator {
        // The stack's own Prometheus reads its rules from the file: it gets them too.
        out.resources.extend(mounted_rules(state));
    }
    if format.routes == RouteFormat::AlertmanagerConfig {
        run_alertmanagers_on_the_operator(&mut out);
    }
    out.normalize();
    out
}

/// The pod template's volumes of a Deployment.
fn volumes(r: &Resource) -> &[Value] {
    r.body
        .pointer(&["spec", "template", "spec", "volumes"])
        .map(Value::as_array)
        .unwrap_or_default()
}

/// Whether a workload of the state mounts `name` (a ConfigMap, or a Secret with `secret`).
fn mounted<'a>(state: &'a DesiredState, name: &str, secret: bool) -> Vec<&'a Resource> {
    let (source, key) = if secret {
        ("secret", "secretName")
    } else {
        ("configMap", "name")
    };
    state
        .kube_objects()
        .filter(|r| r.id.kind == "Deployment")
        .filter(|r| {
            volumes(r)
                .iter()
                .any(|v| v.pointer(&[source, key]).and_then(Value::as_str) == Some(name))
        })
        .collect()
}

/// Under the operator's rule format, the rules as a ConfigMap as well when a Deployment of the
/// environment mounts it (`monitoring::stack`'s Prometheus reads a rules file).
fn mounted_rules(state: &DesiredState) -> Vec<Resource> {
    let env = state.environment.name.as_str();
    let name = format!("{env}-alert-rules");
    if mounted(state, &name, false).is_empty() {
        return Vec::new();
    }
    let only_rules = AlertFormat {
        rules: RuleFormat::ConfigMap,
        routes: RouteFormat::AlertmanagerConfig,
    };
    kube_objects(state, only_rules)
        .into_iter()
        .filter(|r| r.id.kind == "ConfigMap" && r.id.name == name)
        .collect()
}

/// Where the routing is an `AlertmanagerConfig`, the Alertmanager that mounts the routing
/// Secret (`monitoring::stack`'s Deployment: that Secret is not rendered then) runs on the
/// operator instead: an `Alertmanager` (`monitoring.coreos.com/v1`) of the same name, image,
/// replicas and resources, whose `alertmanagerConfigSelector` selects the environment's
/// `AlertmanagerConfig` (from its own namespace: no `alertmanagerConfigNamespaceSelector`,
/// and the operator's default `OnNamespace` matching keeps other namespaces' alerts out), its
/// pods labelled as the Deployment's were, so its Service and network policies still select
/// them. What depended on the Deployment depends on the `Alertmanager`.
fn run_alertmanagers_on_the_operator(state: &mut DesiredState) {
    let env = state.environment.name.clone();
    let routing = format!("{env}-alertmanager");
    let config = state
        .kube_objects()
        .find(|r| r.id.kind == "AlertmanagerConfig")
        .map(|r| r.id.clone());
    let replaced: Vec<(ResourceId, Resource)> = mounted(state, &routing, true)
        .into_iter()
        .map(|d| (d.id.clone(), operator_alertmanager(&env, d, config.clone())))
        .collect();
    for (old, new) in replaced {
        state.resources.retain(|r| r.id != old);
        for r in &mut state.resources {
            for dep in &mut r.depends_on {
                if *dep == old {
                    *dep = new.id.clone();
                }
            }
        }
        state.resources.push(new);
    }
}

fn operator_alertmanager(env: &str, deployment: &Resource, config: Option<ResourceId>) -> Resource {
    let ns = deployment.id.scope.as_deref().unwrap_or_default();
    let at = |path: &[&str]| deployment.body.pointer(path).cloned();
    let container = at(&["spec", "template", "spec", "containers"])
        .and_then(|c| c.as_array().first().cloned())
        .unwrap_or_default();
    let mut spec = Value::obj([
        (
            "replicas",
            at(&["spec", "replicas"]).unwrap_or(Value::Int(1)),
        ),
        (
            "alertmanagerConfigSelector",
            Value::obj([(
                "matchLabels",
                Value::obj([("cairn.dev/environment", Value::str(env))]),
            )]),
        ),
    ]);
    for field in ["image", "resources"] {
        if let Some(v) = container.get(field) {
            spec.insert(field, v.clone());
        }
    }
    if let Some(labels) = at(&["spec", "template", "metadata", "labels"]) {
        spec.insert("podMetadata", Value::obj([("labels", labels)]));
    }
    let name = deployment.id.name.as_str();
    let body = Value::obj([
        ("apiVersion", Value::str("monitoring.coreos.com/v1")),
        ("kind", Value::str("Alertmanager")),
        ("metadata", metadata(name, ns, env)),
        ("spec", spec),
    ]);
    let mut deps = deployment.depends_on.clone();
    deps.extend(config);
    resource(
        "Alertmanager",
        ns,
        name,
        body,
        deployment.span.clone(),
        deps,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cairn_model::EnvironmentMeta;

    fn state() -> DesiredState {
        let rule = Value::obj([
            ("alert", Value::str("PodCrashLooping")),
            ("expr", Value::str("up == 0")),
            ("for", Value::str("5m")),
            (
                "labels",
                Value::obj([("environment", Value::str("staging"))]),
            ),
        ]);
        let route = Value::obj([(
            "receiver",
            Value::obj([("slack_channel", Value::str("#staging-alerts"))]),
        )]);
        let mk = |kind: &str, name: &str, body: Value| Resource {
            id: ResourceId::other(Provider::Alerts, kind, Some("staging"), name),
            body,
            depends_on: vec![],
            protected: false,
            span: None,
            field_spans: BTreeMap::new(),
        };
        DesiredState {
            environment: EnvironmentMeta {
                name: "staging".into(),
                namespace: Some("staging".into()),
                ..Default::default()
            },
            resources: vec![
                mk("AlertRule", "PodCrashLooping", rule),
                mk("AlertRoute", "default", route),
            ],
            generated: BTreeMap::new(),
            network: Default::default(),
        }
    }

    #[test]
    fn rules_become_a_prometheus_rule_or_a_config_map() {
        let with_operator = with_alert_objects(&state(), RuleFormat::PrometheusOperator);
        let kinds: Vec<&str> = with_operator
            .resources
            .iter()
            .map(|r| r.id.kind.as_str())
            .collect();
        assert_eq!(kinds, vec!["Secret", "PrometheusRule"]);
        let rule = &with_operator.resources[1].body.to_json();
        assert_eq!(
            rule["spec"]["groups"][0]["rules"][0]["alert"],
            "PodCrashLooping"
        );
        let plain = with_alert_objects(&state(), RuleFormat::ConfigMap);
        let cm = plain
            .resources
            .iter()
            .find(|r| r.id.kind == "ConfigMap")
            .unwrap()
            .body
            .to_json();
        let file: serde_json::Value =
            serde_json::from_str(cm["data"]["staging.rules.yaml"].as_str().unwrap()).unwrap();
        assert_eq!(file["groups"][0]["rules"][0]["for"], "5m");
    }

    #[test]
    fn routing_matches_only_the_environment() {
        let s = with_alert_objects(&state(), RuleFormat::ConfigMap);
        let secret = s
            .resources
            .iter()
            .find(|r| r.id.kind == "Secret")
            .unwrap()
            .body
            .to_json();
        let config: serde_json::Value =
            serde_json::from_str(secret["stringData"]["alertmanager.yaml"].as_str().unwrap())
                .unwrap();
        assert_eq!(config["route"]["matchers"][0], "environment=\"staging\"");
        assert_eq!(
            config["receivers"][0]["slack_configs"][0]["channel"],
            "#staging-alerts"
        );
    }
}
