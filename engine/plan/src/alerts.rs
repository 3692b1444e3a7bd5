//! Alert rules and their routing as Kubernetes objects, decided at plan time: a
//! `PrometheusRule` (`monitoring.coreos.com/v1`) when the cluster serves that CRD, otherwise a
//! ConfigMap holding a Prometheus rules file; the routing as an Alertmanager configuration in a
//! Secret, matching on the environment's label so one environment's alerts never reach
//! another's channel.

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

fn labels(env: &str) -> Value {
    Value::obj([
        ("app.kubernetes.io/managed-by", Value::str("cairn")),
        ("cairn.dev/environment", Value::str(env)),
    ])
}

/// The Kubernetes objects for the environment's alert rules and routing; they replace the
/// `Alerts` resources in what the Kubernetes provider plans.
pub fn kube_objects(state: &DesiredState, format: RuleFormat) -> Vec<Resource> {
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
        out.push(Resource {
            id: ResourceId::kube(kind, Some(ns), &name),
            body,
            depends_on: vec![ns_id.clone()],
            protected: false,
            span: rules.first().and_then(|r| r.span.clone()),
            field_spans: BTreeMap::new(),
        });
    }
    if !routes.is_empty() {
        let receiver = format!("cairn-{env}");
        let mut configs = Vec::new();
        for r in &routes {
            let Some(target) = r.body.get("receiver") else {
                continue;
            };
            if let Some(channel) = target.get("slack_channel").and_then(Value::as_str) {
                configs.push((
                    "slack_configs",
                    serde_json::json!({ "channel": channel, "send_resolved": true }),
                ));
            } else if let Some(to) = target.get("email").and_then(Value::as_str) {
                configs.push((
                    "email_configs",
                    serde_json::json!({ "to": to, "send_resolved": true }),
                ));
            } else if let Some(url) = target.get("webhook_url").and_then(Value::as_str) {
                configs.push((
                    "webhook_configs",
                    serde_json::json!({ "url": url, "send_resolved": true }),
                ));
            }
        }
        let mut receiver_doc = serde_json::Map::new();
        receiver_doc.insert("name".into(), receiver.clone().into());
        for (key, cfg) in configs {
            let entry = receiver_doc
                .entry(key)
                .or_insert_with(|| serde_json::Value::Array(Vec::new()));
            if let serde_json::Value::Array(items) = entry {
                items.push(cfg);
            }
        }
        let config = serde_json::json!({
            "route": {
                "receiver": receiver,
                "group_by": ["alertname", "environment"],
                "matchers": [format!("environment=\"{env}\"")],
            },
            "receivers": [receiver_doc],
        });
        let name = format!("{env}-alertmanager");
        out.push(Resource {
            id: ResourceId::kube("Secret", Some(ns), &name),
            body: Value::obj([
                ("apiVersion", Value::str("v1")),
                ("kind", Value::str("Secret")),
                (
                    "metadata",
                    Value::obj([
                        ("name", Value::str(name.as_str())),
                        ("namespace", Value::str(ns)),
                        ("labels", labels(env)),
                    ]),
                ),
                ("type", Value::str("Opaque")),
                (
                    "stringData",
                    Value::obj([(
                        "alertmanager.yaml",
                        Value::str(serde_json::to_string_pretty(&config).unwrap_or_default()),
                    )]),
                ),
            ]),
            depends_on: vec![ns_id],
            protected: false,
            span: routes.first().and_then(|r| r.span.clone()),
            field_spans: BTreeMap::new(),
        });
    }
    out
}

/// The state the Kubernetes provider plans: alert resources replaced by their objects.
pub fn with_alert_objects(state: &DesiredState, format: RuleFormat) -> DesiredState {
    let mut out = state.clone();
    let objects = kube_objects(state, format);
    if !objects.is_empty() {
        out.resources.retain(|r| r.id.provider != Provider::Alerts);
        out.resources.extend(objects);
        out.normalize();
    }
    out
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
