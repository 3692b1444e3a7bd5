//! Every Kubernetes object cairn renders is a valid object of its k8s-openapi type: it
//! deserializes, and serializing it back gives exactly the same JSON (so no field was unknown
//! and silently dropped).

use cairn_tests::{cairn, ci_vars, root};
use k8s_openapi::api::{
    apps::v1 as apps, batch::v1 as batch, core::v1 as core, networking::v1 as net, rbac::v1 as rbac,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn strict<T: DeserializeOwned + Serialize>(doc: &serde_json::Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if &back == doc {
        Ok(())
    } else {
        Err(format!(
            "fields lost or changed in a round trip:\nrendered: {doc}\ntyped:    {back}"
        ))
    }
}

fn check_doc(doc: &serde_json::Value) -> Result<&'static str, String> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    let api = doc["apiVersion"].as_str().unwrap_or_default();
    match (api, kind) {
        ("v1", "Namespace") => strict::<core::Namespace>(doc).map(|()| "Namespace"),
        ("v1", "ResourceQuota") => strict::<core::ResourceQuota>(doc).map(|()| "ResourceQuota"),
        ("v1", "LimitRange") => strict::<core::LimitRange>(doc).map(|()| "LimitRange"),
        ("v1", "Secret") => strict::<core::Secret>(doc).map(|()| "Secret"),
        ("v1", "ConfigMap") => strict::<core::ConfigMap>(doc).map(|()| "ConfigMap"),
        ("v1", "PersistentVolumeClaim") => {
            strict::<core::PersistentVolumeClaim>(doc).map(|()| "PersistentVolumeClaim")
        }
        ("v1", "Service") => strict::<core::Service>(doc).map(|()| "Service"),
        ("apps/v1", "Deployment") => strict::<apps::Deployment>(doc).map(|()| "Deployment"),
        ("apps/v1", "StatefulSet") => strict::<apps::StatefulSet>(doc).map(|()| "StatefulSet"),
        ("batch/v1", "Job") => strict::<batch::Job>(doc).map(|()| "Job"),
        ("batch/v1", "CronJob") => strict::<batch::CronJob>(doc).map(|()| "CronJob"),
        ("networking.k8s.io/v1", "NetworkPolicy") => {
            strict::<net::NetworkPolicy>(doc).map(|()| "NetworkPolicy")
        }
        ("networking.k8s.io/v1", "Ingress") => strict::<net::Ingress>(doc).map(|()| "Ingress"),
        ("v1", "ServiceAccount") => strict::<core::ServiceAccount>(doc).map(|()| "ServiceAccount"),
        ("autoscaling/v2", "HorizontalPodAutoscaler") => {
            strict::<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler>(doc)
                .map(|()| "HorizontalPodAutoscaler")
        }
        ("rbac.authorization.k8s.io/v1", "Role") => strict::<rbac::Role>(doc).map(|()| "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            strict::<rbac::RoleBinding>(doc).map(|()| "RoleBinding")
        }
        (api, kind) if api.contains("cairn.dev") => Ok(if kind.is_empty() { "?" } else { "cairn" }),
        // Operators' custom resources: no k8s-openapi type; their CRDs validate them.
        ("acid.zalan.do/v1" | "postgresql.cnpg.io/v1", _) => Ok("custom"),
        (api, kind) => Err(format!("no k8s-openapi type checked for {api} {kind}")),
    }
}

#[test]
fn a_lost_field_is_caught() {
    let doc = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "dataa": {"a": "b"}});
    assert!(check_doc(&doc).is_err());
}

#[test]
fn every_rendered_kubernetes_object_is_strictly_valid() {
    for env in ["staging", "production"] {
        let script = root().join(format!("environments/{env}.rhai"));
        let out = cairn(
            &["render", &script.to_string_lossy(), "--format", "json"],
            ci_vars(),
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        let docs: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("JSON array");
        let mut kinds = std::collections::BTreeSet::new();
        for doc in &docs {
            match check_doc(doc) {
                Ok(kind) => {
                    kinds.insert(kind);
                }
                Err(e) => panic!("{env}: {} {}: {e}", doc["kind"], doc["metadata"]["name"]),
            }
        }
        for kind in [
            "Namespace",
            "ResourceQuota",
            "LimitRange",
            "Secret",
            "ConfigMap",
            "PersistentVolumeClaim",
            "Service",
            "Deployment",
            "StatefulSet",
            "Job",
            "CronJob",
            "NetworkPolicy",
            "Ingress",
        ] {
            assert!(kinds.contains(kind), "{env} renders no {kind}");
        }
    }
}

#[test]
fn every_object_of_the_other_seed_environments_is_strictly_valid() {
    for env in ["rsolv-staging", "ventros-staging", "spacetime-staging"] {
        let script = root().join(format!("environments/{env}.rhai"));
        let out = cairn(
            &["render", &script.to_string_lossy(), "--format", "json"],
            ci_vars(),
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        let docs: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("JSON array");
        assert!(docs.len() > 10, "{env} renders {} objects", docs.len());
        for doc in &docs {
            if let Err(e) = check_doc(doc) {
                panic!("{env}: {} {}: {e}", doc["kind"], doc["metadata"]["name"]);
            }
        }
    }
}
