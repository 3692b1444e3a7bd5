//! Test helpers: the harness (an emulator and a kube client) and recording access.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use cairn_sandbox::{Sandbox, SandboxConfig};
use http_body_util::BodyExt;
use serde_json::Value;

pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/kube-api")
}

pub struct Recording {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub body_sent: Value,
    pub status: u16,
    pub body: Value,
}

pub fn recording(file: &str) -> Recording {
    let text = std::fs::read_to_string(testdata().join(file)).expect(file);
    let v: Value = serde_json::from_str(&text).unwrap();
    Recording {
        method: v["request"]["method"].as_str().unwrap().to_string(),
        path: v["request"]["path"].as_str().unwrap().to_string(),
        content_type: v["request"]["content_type"].as_str().map(str::to_string),
        body_sent: v["request"]["body"].clone(),
        status: v["response"]["status"].as_u64().unwrap() as u16,
        body: v["response"]["body"].clone(),
    }
}

/// Recording files whose number is in `from..=to`, in order.
pub fn files_between(from: u32, to: u32) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(testdata())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.ends_with(".json")
                && n.get(0..3)
                    .and_then(|x| x.parse::<u32>().ok())
                    .is_some_and(|x| x >= from && x <= to)
        })
        .collect();
    out.sort();
    out
}

pub struct Harness {
    pub sandbox: Sandbox,
    pub client: kube::Client,
}

pub async fn client_for(sandbox: &Sandbox, token: Option<&str>) -> kube::Client {
    let mut yaml = sandbox.kubeconfig_yaml("sandbox");
    if let Some(t) = token {
        yaml = yaml.replace(&sandbox.token(), t);
    }
    let kc = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    kube::Client::try_from(config).unwrap()
}

impl Harness {
    /// The emulator as the recorded kube-apiserver was: without k3s's `local-path`
    /// StorageClass (the recorded cluster had no default class, so 111's claim has none).
    pub async fn start() -> Harness {
        let h = Harness::start_k3s().await;
        let (s, _) = h
            .call(
                "DELETE",
                "/apis/storage.k8s.io/v1/storageclasses/local-path",
                None,
                None,
            )
            .await;
        assert_eq!(s, 200, "the emulator starts with k3s's local-path class");
        h
    }

    /// The emulator as `cairn sandbox` runs it: a k3s-like cluster with `local-path`.
    pub async fn start_k3s() -> Harness {
        Harness::start_with(SandboxConfig {
            pod_start_delay: Duration::from_millis(50),
            ..SandboxConfig::default()
        })
        .await
    }

    pub async fn start_with(config: SandboxConfig) -> Harness {
        let sandbox = Sandbox::start(config).await.unwrap();
        let client = client_for(&sandbox, None).await;
        Harness { sandbox, client }
    }

    pub async fn stop(self) {
        self.sandbox.shutdown().await.unwrap();
    }

    /// Lets the controllers settle.
    pub async fn settle(&self) {
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    pub async fn call_text(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (u16, String, String) {
        send(&self.client, method, path, content_type, body).await
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let (s, text, _) = self.call_text(method, path, content_type, body).await;
        (
            s,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn call_with_token(&self, method: &str, path: &str, token: &str) -> (u16, Value) {
        let client = client_for(&self.sandbox, Some(token)).await;
        let (s, text, _) = send(&client, method, path, None, None).await;
        (
            s,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn replay(&self, rec: &Recording) -> (u16, Value) {
        let body = match &rec.body_sent {
            Value::Null => None,
            Value::String(s) => Some(s.clone().into_bytes()),
            v => Some(serde_json::to_vec(v).unwrap()),
        };
        self.call(&rec.method, &rec.path, rec.content_type.as_deref(), body)
            .await
    }
}

pub async fn send(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> (u16, String, String) {
    let mut b = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Accept", "application/json");
    if let Some(ct) = content_type {
        b = b.header("Content-Type", ct);
    }
    let req = b
        .body(kube::client::Body::from(body.unwrap_or_default()))
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned(), ct)
}

/// A GET with the given Accept header: status, raw body and content type.
pub async fn get_accept(client: &kube::Client, path: &str, accept: &str) -> (u16, Vec<u8>, String) {
    let req = http::Request::builder()
        .method("GET")
        .uri(path)
        .header("Accept", accept)
        .body(kube::client::Body::from(Vec::new()))
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.to_vec(), ct)
}

pub fn check(problems: &mut Vec<String>, what: &str, ok: bool) {
    if !ok {
        problems.push(what.to_string());
    }
}

const VOLATILE: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "time",
    "clusterIP",
    "clusterIPs",
    "nodePort",
    "controller-uid",
    "lastTransitionTime",
    "lastUpdateTime",
    "managedFields",
];

/// Differences between a recorded object and the emulator's, ignoring volatile fields
/// (managedFields are compared as field sets per manager).
pub fn diff_objects(recorded: &Value, mine: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff(recorded, mine, "", &mut out);
    let rec_mf = managers(recorded);
    for (m, op) in &rec_mf {
        let entry = manager_entry(mine, m);
        if entry.is_null() {
            out.push(format!("managedFields: no entry for {m} ({op})"));
            continue;
        }
        for d in diff_fields(&manager_entry(recorded, m)["fieldsV1"], &entry["fieldsV1"]) {
            out.push(format!("managedFields of {m}: {d}"));
        }
    }
    out
}

fn diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                if VOLATILE.contains(&k.as_str()) {
                    continue;
                }
                match y.get(k) {
                    Some(w) => diff(v, w, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}: missing (recorded {v})")),
                }
            }
            for (k, w) in y {
                if !x.contains_key(k) && !VOLATILE.contains(&k.as_str()) {
                    out.push(format!("{path}.{k}: unexpected {w}"));
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                diff(v, w, &format!("{path}[{i}]"), out);
            }
        }
        _ => {
            if a != b {
                out.push(format!("{path}: {b}, recorded {a}"));
            }
        }
    }
}

/// Differences between two fieldsV1 trees (uid-keyed entries ignored).
pub fn diff_fields(recorded: &Value, mine: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff(recorded, mine, "", &mut out);
    out
}

pub fn managers(v: &Value) -> Vec<(String, String)> {
    let mut m: Vec<(String, String)> = v["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["manager"].as_str().unwrap_or("").to_string(),
                        e["operation"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    m.sort();
    m.dedup();
    m
}

pub fn manager_entry(v: &Value, manager: &str) -> Value {
    v["metadata"]["managedFields"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["manager"] == manager).cloned())
        .unwrap_or(Value::Null)
}

pub fn strip_key(v: &mut Value, key: &str) {
    match v {
        Value::Object(m) => {
            m.shift_remove(key);
            for c in m.values_mut() {
                strip_key(c, key);
            }
        }
        Value::Array(a) => {
            for c in a {
                strip_key(c, key);
            }
        }
        _ => {}
    }
}
