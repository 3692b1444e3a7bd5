//! Server-side printing (`meta.k8s.io/v1` Table) for `kubectl get`.

use cairn_model::JsonPath as _;
use serde_json::{Value, json};

use crate::api::Request;
use crate::registry::ResourceType;
use crate::schema::{docs, recorded_body};
use crate::util;

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: http://kubernetes.io/docs/user-guide/identifiers#names";

fn recorded_columns(kind: &str) -> Option<Value> {
    let idx = match kind {
        "Deployment" => 0,
        "Pod" => 1,
        "Namespace" => 2,
        _ => return None,
    };
    recorded_body(docs::TABLES[idx])
        .get("columnDefinitions")
        .cloned()
}

fn age(o: &Value) -> String {
    let created = o
        .at("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .unwrap_or("");
    let secs = parse_time(created)
        .map(|t| util::now_secs().saturating_sub(t))
        .unwrap_or(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Seconds since the epoch of an RFC 3339 UTC time.
pub fn parse_time(s: &str) -> Option<u64> {
    let b = s.get(0..19)?;
    let n = |r: std::ops::Range<usize>| b.get(r).and_then(|x| x.parse::<i64>().ok());
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

fn int_at(o: &Value, p: &str) -> i64 {
    o.at(p).and_then(Value::as_i64).unwrap_or(0)
}

fn str_at(o: &Value, p: &str) -> String {
    o.at(p).and_then(Value::as_str).unwrap_or("").to_string()
}

/// The `k` of each container at `p`, comma-separated.
fn joined(o: &Value, p: &str, k: &str) -> String {
    o.at(p)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get(k).and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn cell(rt: &ResourceType, o: &Value, column: &str) -> Value {
    match (rt.kind.as_str(), column) {
        (_, "Name") => json!(str_at(o, "/metadata/name")),
        (_, "Age") => json!(age(o)),
        ("Deployment", column) => deployment_cell(o, column),
        ("Pod", column) => pod_cell(o, column),
        ("Namespace", "Status") => json!(str_at(o, "/status/phase")),
        _ => {
            // CRD printer columns carry their JSON path in the description.
            Value::Null
        }
    }
}

fn deployment_cell(o: &Value, column: &str) -> Value {
    match column {
        "Ready" => json!(format!(
            "{}/{}",
            int_at(o, "/status/readyReplicas"),
            int_at(o, "/spec/replicas")
        )),
        "Up-to-date" => json!(int_at(o, "/status/updatedReplicas")),
        "Available" => json!(int_at(o, "/status/availableReplicas")),
        "Containers" => json!(joined(o, "/spec/template/spec/containers", "name")),
        "Images" => json!(joined(o, "/spec/template/spec/containers", "image")),
        "Selector" => {
            let sel = o
                .at("/spec/selector/matchLabels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            json!(sel)
        }
        _ => Value::Null,
    }
}

fn pod_cell(o: &Value, column: &str) -> Value {
    match column {
        "Ready" => {
            let total = o
                .at("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = o
                .at("/status/containerStatuses")
                .and_then(Value::as_array)
                .map_or(0, |a| {
                    a.iter()
                        .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                        .count()
                });
            json!(format!("{ready}/{total}"))
        }
        "Status" => {
            let waiting = o
                .at("/status/containerStatuses/0/state/waiting/reason")
                .and_then(Value::as_str);
            json!(waiting.map_or_else(|| str_at(o, "/status/phase"), str::to_string))
        }
        "Restarts" => json!(int_at(o, "/status/containerStatuses/0/restartCount")),
        "IP" => json!(
            o.at("/status/podIP")
                .and_then(Value::as_str)
                .unwrap_or("<none>")
        ),
        "Node" => json!(
            o.at("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("<none>")
        ),
        _ => json!("<none>"),
    }
}

pub fn table(rt: &ResourceType, items: &[Value], rv: u64, _req: &Request) -> Value {
    let columns = recorded_columns(&rt.kind).unwrap_or_else(|| {
        json!([
            {"name": "Name", "type": "string", "format": "name", "description": NAME_DESC, "priority": 0},
            {"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0}
        ])
    });
    let names: Vec<String> = columns
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let cells: Vec<Value> = names.iter().map(|n| cell(rt, o, n)).collect();
            json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(json!({}))}})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv.to_string()}, "columnDefinitions": columns, "rows": rows})
}
