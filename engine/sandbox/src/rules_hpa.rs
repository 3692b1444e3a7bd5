//! What kube-apiserver refuses in a HorizontalPodAutoscaler (autoscaling/v2), as
//! `pkg/apis/autoscaling/validation/validation.go` checks it: `validateHorizontalPodAutoscalerSpec`,
//! `ValidateCrossVersionObjectReference`, `validateMetricSpec` and `validateMetricTarget` for the
//! Resource, Pods and Object sources.

use serde_json::Value;

use crate::defaults::Cause;

fn invalid(field: &str, value: &str, detail: &str) -> Cause {
    (
        "FieldValueInvalid".into(),
        format!("Invalid value: {value}: {detail}"),
        field.into(),
    )
}

fn required(field: &str, detail: &str) -> Cause {
    let message = if detail.is_empty() {
        "Required value".to_owned()
    } else {
        format!("Required value: {detail}")
    };
    ("FieldValueRequired".into(), message, field.into())
}

fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

/// Every problem of an autoscaler's spec.
pub(crate) fn autoscaler(v: &Value) -> Vec<Cause> {
    let spec = v.get("spec").cloned().unwrap_or(Value::Null);
    let mut out = Vec::new();
    let min = int(&spec, "minReplicas");
    let max = int(&spec, "maxReplicas").unwrap_or(0);
    if let Some(m) = min.filter(|m| *m < 1) {
        out.push(invalid(
            "spec.minReplicas",
            &m.to_string(),
            "must be greater than or equal to 1",
        ));
    }
    if max < 1 {
        out.push(invalid(
            "spec.maxReplicas",
            &max.to_string(),
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|m| max < m) {
        out.push(invalid(
            "spec.maxReplicas",
            &max.to_string(),
            "must be greater than or equal to `minReplicas`",
        ));
    }
    let target = spec.get("scaleTargetRef").cloned().unwrap_or(Value::Null);
    reference(&target, "spec.scaleTargetRef", &mut out);
    let metrics = spec.get("metrics").and_then(Value::as_array);
    for (i, m) in metrics.into_iter().flatten().enumerate() {
        metric(m, &format!("spec.metrics[{i}]"), &mut out);
    }
    out
}

/// `ValidateCrossVersionObjectReference`: a kind and a name, each a valid path segment.
fn reference(r: &Value, at: &str, out: &mut Vec<Cause>) {
    for key in ["kind", "name"] {
        match r.get(key).and_then(Value::as_str).unwrap_or("") {
            "" => out.push(required(&format!("{at}.{key}"), "")),
            s if s == "." || s == ".." => out.push(invalid(
                &format!("{at}.{key}"),
                &format!("{s:?}"),
                &format!("may not be '{s}'"),
            )),
            s if s.contains('/') || s.contains('%') => out.push(invalid(
                &format!("{at}.{key}"),
                &format!("{s:?}"),
                &format!(
                    "may not contain '{}'",
                    if s.contains('/') { "/" } else { "%" }
                ),
            )),
            _ => {}
        }
    }
}

/// The metric source types the server knows, as its NotSupported error lists them.
const SOURCES: &[&str] = &[
    "ContainerResource",
    "External",
    "Object",
    "Pods",
    "Resource",
];

/// `validateMetricSpec` with the targets of its Resource source.
fn metric(m: &Value, at: &str, out: &mut Vec<Cause>) {
    let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
    if ty.is_empty() {
        out.push(required(
            &format!("{at}.type"),
            "must specify a metric source type",
        ));
    }
    if !SOURCES.contains(&ty) {
        let list: Vec<String> = SOURCES.iter().map(|s| format!("{s:?}")).collect();
        out.push((
            "FieldValueNotSupported".into(),
            format!(
                "Unsupported value: {ty:?}: supported values: {}",
                list.join(", ")
            ),
            format!("{at}.type"),
        ));
        return;
    }
    let field = lower_first(ty);
    let Some(source) = m.get(&field).filter(|s| !s.is_null()) else {
        out.push(required(
            &format!("{at}.{field}"),
            "must populate information for the given metric source",
        ));
        return;
    };
    if ty == "Resource" || ty == "ContainerResource" {
        if source
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            out.push(required(
                &format!("{at}.{field}.name"),
                "must specify a resource name",
            ));
        }
        let t = source.get("target").cloned().unwrap_or(Value::Null);
        if t.get("averageUtilization").is_none() && t.get("averageValue").is_none() {
            out.push(required(
                &format!("{at}.{field}.target.averageUtilization"),
                "must set either a target raw value or a target utilization",
            ));
        }
        target(&t, &format!("{at}.{field}.target"), out);
    }
}

/// `validateMetricTarget`.
fn target(t: &Value, at: &str, out: &mut Vec<Cause>) {
    let ty = t.get("type").and_then(Value::as_str).unwrap_or("");
    if ty.is_empty() {
        out.push(required(
            &format!("{at}.type"),
            "must specify a metric target type",
        ));
    }
    if !matches!(ty, "Utilization" | "Value" | "AverageValue") {
        out.push(invalid(
            &format!("{at}.type"),
            &format!("{ty:?}"),
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    if let Some(u) = int(t, "averageUtilization").filter(|u| *u < 1) {
        out.push(invalid(
            &format!("{at}.averageUtilization"),
            &u.to_string(),
            "must be greater than 0",
        ));
    }
}

/// `ContainerResource` → `containerResource`, the field a source type is held in.
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
        .unwrap_or_default()
}
