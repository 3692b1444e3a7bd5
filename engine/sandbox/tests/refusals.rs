//! What a real kube-apiserver refuses, the emulator refuses: the recorded exchanges 900–923
//! (immutable fields, claim resizes, the Recreate trap, a conflict after `kubectl scale`)
//! replayed in order, then the rest of the immutability rules of the kinds cairn writes, each
//! held to Kubernetes' own validation (v1.26: field path, error type, message), on writes and
//! dry runs alike, and k3s's storage (the `local-path` class, binding, expansion).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

use std::time::Duration;

use helpers::*;
use serde_json::{Value, json};

/// A refusal compared with its recording: status, reason, details and every cause's field
/// and reason exactly; messages exactly, except where the server prints a Go struct (a pod
/// template, a `cmp.Diff` of a claim's spec), which is compared up to that dump.
fn same_refusal(file: &str, rec: &Value, mine: &Value, problems: &mut Vec<String>) {
    for k in ["kind", "status", "reason", "code"] {
        if rec[k] != mine[k] {
            problems.push(format!("{file}: {k} {}, recorded {}", mine[k], rec[k]));
        }
    }
    for k in ["name", "group", "kind"] {
        if rec["details"][k] != mine["details"][k] {
            let (m, r) = (&mine["details"][k], &rec["details"][k]);
            problems.push(format!("{file}: details.{k} {m}, recorded {r}"));
        }
    }
    let causes = |v: &Value| -> Vec<(Value, Value, String)> {
        v["details"]["causes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["field"].clone(),
                    c["reason"].clone(),
                    comparable(c["message"].as_str().unwrap_or("")),
                )
            })
            .collect()
    };
    if causes(rec) != causes(mine) {
        problems.push(format!(
            "{file}: causes {:?}, recorded {:?}",
            causes(mine),
            causes(rec)
        ));
    }
    let (r, m) = (
        rec["message"].as_str().unwrap_or(""),
        mine["message"].as_str().unwrap_or(""),
    );
    if comparable(r) != comparable(m) {
        problems.push(format!("{file}: message {m:?}, recorded {r:?}"));
    }
}

/// A message without the Go dumps: the first line (a claim's diff follows it), and an
/// `Invalid value: core.X{…}: rule` reduced to `Invalid value: core.X{…}: rule`.
fn comparable(message: &str) -> String {
    let first = message.lines().next().unwrap_or("");
    match first.find("core.PodTemplateSpec{") {
        Some(i) => {
            let rule = first.rsplit(": ").next().unwrap_or("");
            format!("{}core.PodTemplateSpec{{…}}: {rule}", &first[..i])
        }
        None => first.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_the_recorded_refusals() {
    let h = Harness::start().await;
    let mut problems = Vec::new();
    for f in files_between(900, 923) {
        let rec = recording(&f);
        if f.starts_with("909") {
            // The claim is bound by the PV controller: wait for it, as the recording did.
            wait_for(&h, &rec.path, |o| o["status"]["phase"] == "Bound").await;
        }
        // What controllers wrote between the recorded requests (a Job's pods, a rollout's
        // status, a scaled Deployment's replicas) is there once they have run; pod timing
        // differs, so status is not compared.
        let settled = f.starts_with("904") || f.starts_with("918") || f.starts_with("920");
        if settled {
            h.settle().await;
        }
        let (status, mut body) = h.replay(&rec).await;
        let mut rec = rec;
        if settled {
            for o in [&mut rec.body, &mut body] {
                o["status"] = Value::Null;
                if let Some(fields) = o["metadata"]["managedFields"].as_array_mut() {
                    fields.retain(|e| e["subresource"] != "status");
                }
            }
        }
        if status != rec.status {
            problems.push(format!(
                "{f}: status {status}, recorded {}: {body}",
                rec.status
            ));
            continue;
        }
        if rec.body["kind"] == "Status" {
            same_refusal(&f, &rec.body, &body, &mut problems);
        } else {
            for d in diff_objects(&rec.body, &body) {
                problems.push(format!("{f}: {d}"));
            }
        }
        if f.starts_with("903") {
            // A refused write changes nothing.
            let (_, job) = h
                .call(
                    "GET",
                    "/apis/batch/v1/namespaces/rec-refuse/jobs/migrate",
                    None,
                    None,
                )
                .await;
            let cmd = &job["spec"]["template"]["spec"]["containers"][0]["command"];
            if cmd != &json!(["sh", "-c", "echo v1"]) {
                problems.push(format!("903: the refused write changed the Job: {cmd}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    h.stop().await;
}

async fn wait_for(h: &Harness, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let (_, o) = h.call("GET", path, None, None).await;
        if done(&o) {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} did not get there");
}

fn apply_path(api: &str, ns: Option<&str>, plural: &str, name: &str, dry_run: bool) -> String {
    let ns = ns.map(|n| format!("/namespaces/{n}")).unwrap_or_default();
    let dry = if dry_run { "&dryRun=All" } else { "" };
    format!("{api}{ns}/{plural}/{name}?fieldManager=cairn&force=true{dry}")
}

async fn apply(h: &Harness, path: &str, body: &Value) -> (u16, Value) {
    h.call(
        "PATCH",
        path,
        Some("application/apply-patch+yaml"),
        Some(serde_json::to_vec(body).unwrap()),
    )
    .await
}

/// One immutability rule: `first` is applied, then `second` is refused by a dry run and by the
/// write alike with `field: message` (the message's first line, Go dumps cut as above), and the
/// object keeps its first version.
struct Rule {
    name: &'static str,
    api: &'static str,
    plural: &'static str,
    first: Value,
    second: Value,
    field: &'static str,
    message: &'static str,
}

fn meta(kind: &str, api_version: &str, name: &str, ns: Option<&str>) -> Value {
    let mut m = json!({"name": name});
    if let Some(ns) = ns {
        m["namespace"] = json!(ns);
    }
    json!({"apiVersion": api_version, "kind": kind, "metadata": m})
}

fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

fn rules() -> Vec<Rule> {
    let ns = Some("rules");
    let cm = |name: &str, imm: bool, v: &str| {
        with(
            meta("ConfigMap", "v1", name, ns),
            json!({"immutable": imm, "data": {"k": v}}),
        )
    };
    let secret = |ty: &str| {
        with(
            meta("Secret", "v1", "typed", ns),
            json!({"type": ty, "stringData": {"k": "v"}}),
        )
    };
    let frozen_secret = |v: &str| {
        with(
            meta("Secret", "v1", "frozen", ns),
            json!({"immutable": true, "stringData": {"k": v}}),
        )
    };
    let svc = |ip: Option<&str>| {
        let mut spec = json!({"selector": {"app": "web"}, "ports": [{"port": 80}]});
        if let Some(ip) = ip {
            spec["clusterIP"] = json!(ip);
        }
        with(meta("Service", "v1", "web", ns), json!({"spec": spec}))
    };
    let dep = |kind: &str, api: &str, sel: &str| {
        with(
            meta(kind, api, "web", ns),
            json!({"spec": {
            "selector": {"matchLabels": {"app": sel}},
            "template": {"metadata": {"labels": {"app": sel}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}),
        )
    };
    let sts = |service: &str| {
        with(
            meta("StatefulSet", "apps/v1", "db", ns),
            json!({"spec": {
            "serviceName": service, "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}}}}),
        )
    };
    let job = |completions: i64| {
        with(
            meta("Job", "batch/v1", "once", ns),
            json!({"spec": {"completions": completions,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "once", "image": "busybox:1.36"}]}}}}),
        )
    };
    let rb = |role: &str| {
        with(
            meta("RoleBinding", "rbac.authorization.k8s.io/v1", "bind", ns),
            json!({
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "rules"}]}),
        )
    };
    // Left alone by the emulated scheduler, so that nothing else changes it meanwhile.
    let pod = |restart: &str| {
        with(
            meta("Pod", "v1", "p", ns),
            json!({"spec": {"schedulerName": "nobody", "restartPolicy": restart,
                "containers": [{"name": "c", "image": "nginx:1.27"}]}}),
        )
    };
    let quota = |scope: &str| {
        with(
            meta("ResourceQuota", "v1", "q", ns),
            json!({"spec": {"hard": {"pods": "5"}, "scopes": [scope]}}),
        )
    };
    let pv = |path: &str| {
        with(
            meta("PersistentVolume", "v1", "rules-pv", None),
            json!({"spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "manual", "hostPath": {"path": path}}}),
        )
    };
    let sc = |mode: &str| {
        with(
            meta("StorageClass", "storage.k8s.io/v1", "fast", None),
            json!({"provisioner": "example.com/fast", "volumeBindingMode": mode}),
        )
    };
    let sc_param = |v: &str| {
        with(
            meta("StorageClass", "storage.k8s.io/v1", "slow", None),
            json!({"provisioner": "example.com/slow", "parameters": {"tier": v}}),
        )
    };
    let pvc = |size: &str| {
        with(
            meta("PersistentVolumeClaim", "v1", "claim", ns),
            json!({"spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": "none-here", "resources": {"requests": {"storage": size}}}}),
        )
    };
    let crd = |scope: &str| {
        with(
            meta(
                "CustomResourceDefinition",
                "apiextensions.k8s.io/v1",
                "gadgets.example.com",
                None,
            ),
            json!({"spec": {
        "group": "example.com", "scope": scope, "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
        "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}),
        )
    };
    vec![
        Rule {
            name: "configmap data when immutable",
            api: "/api/v1",
            plural: "configmaps",
            first: cm("frozen", true, "a"),
            second: cm("frozen", true, "b"),
            field: "data",
            message: "Forbidden: field is immutable when `immutable` is set",
        },
        Rule {
            name: "configmap immutable unset",
            api: "/api/v1",
            plural: "configmaps",
            first: cm("frozen-flag", true, "a"),
            second: cm("frozen-flag", false, "a"),
            field: "immutable",
            message: "Forbidden: field is immutable when `immutable` is set",
        },
        Rule {
            name: "secret data when immutable",
            api: "/api/v1",
            plural: "secrets",
            first: frozen_secret("a"),
            second: frozen_secret("b"),
            field: "data",
            message: "Forbidden: field is immutable when `immutable` is set",
        },
        Rule {
            name: "secret type",
            api: "/api/v1",
            plural: "secrets",
            first: secret("Opaque"),
            second: secret("kubernetes.io/basic-auth"),
            field: "type",
            message: "Invalid value: \"kubernetes.io/basic-auth\": field is immutable",
        },
        Rule {
            name: "service clusterIP",
            api: "/api/v1",
            plural: "services",
            first: svc(None),
            second: svc(Some("None")),
            field: "spec.clusterIPs[0]",
            message: "Invalid value: []string{\"None\"}: may not change once set",
        },
        Rule {
            name: "deployment selector",
            api: "/apis/apps/v1",
            plural: "deployments",
            first: dep("Deployment", "apps/v1", "web"),
            second: dep("Deployment", "apps/v1", "www"),
            field: "spec.selector",
            message: "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"www\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
        },
        Rule {
            name: "daemonset selector",
            api: "/apis/apps/v1",
            plural: "daemonsets",
            first: dep("DaemonSet", "apps/v1", "web"),
            second: dep("DaemonSet", "apps/v1", "www"),
            field: "spec.selector",
            message: "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"www\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
        },
        Rule {
            name: "statefulset serviceName",
            api: "/apis/apps/v1",
            plural: "statefulsets",
            first: sts("db"),
            second: sts("db-headless"),
            field: "spec",
            message: "Forbidden: updates to statefulset spec for fields other than 'replicas', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        },
        Rule {
            name: "job completions",
            api: "/apis/batch/v1",
            plural: "jobs",
            first: job(1),
            second: job(2),
            field: "spec.completions",
            message: "Invalid value: 2: field is immutable",
        },
        Rule {
            name: "rolebinding roleRef",
            api: "/apis/rbac.authorization.k8s.io/v1",
            plural: "rolebindings",
            first: rb("reader"),
            second: rb("writer"),
            field: "roleRef",
            message: "Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"writer\"}: cannot change roleRef",
        },
        Rule {
            name: "pod spec",
            api: "/api/v1",
            plural: "pods",
            first: pod("Always"),
            second: pod("Never"),
            field: "spec",
            message: "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        },
        Rule {
            name: "resourcequota scopes",
            api: "/api/v1",
            plural: "resourcequotas",
            first: quota("BestEffort"),
            second: quota("NotBestEffort"),
            field: "spec.scopes",
            message: "Invalid value: []core.ResourceQuotaScope{\"NotBestEffort\"}: field is immutable",
        },
        Rule {
            name: "persistentvolume source",
            api: "/api/v1",
            plural: "persistentvolumes",
            first: pv("/srv/a"),
            second: pv("/srv/b"),
            field: "spec.persistentvolumesource",
            message: "Forbidden: spec.persistentvolumesource is immutable after creation",
        },
        Rule {
            name: "storageclass binding mode",
            api: "/apis/storage.k8s.io/v1",
            plural: "storageclasses",
            first: sc("Immediate"),
            second: sc("WaitForFirstConsumer"),
            field: "volumeBindingMode",
            message: "Invalid value: \"WaitForFirstConsumer\": field is immutable",
        },
        Rule {
            name: "storageclass parameters",
            api: "/apis/storage.k8s.io/v1",
            plural: "storageclasses",
            first: sc_param("a"),
            second: sc_param("b"),
            field: "parameters",
            message: "Forbidden: updates to parameters are forbidden.",
        },
        Rule {
            name: "unbound claim resized",
            api: "/api/v1",
            plural: "persistentvolumeclaims",
            first: pvc("1Gi"),
            second: pvc("2Gi"),
            field: "spec",
            message: "Forbidden: spec is immutable after creation except resources.requests for bound claims",
        },
        Rule {
            name: "crd scope",
            api: "/apis/apiextensions.k8s.io/v1",
            plural: "customresourcedefinitions",
            first: crd("Namespaced"),
            second: crd("Cluster"),
            field: "spec.scope",
            message: "Invalid value: \"Cluster\": field is immutable",
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutable_fields_of_every_kind_are_refused() {
    let h = Harness::start_k3s().await;
    let (s, _) = apply(
        &h,
        "/api/v1/namespaces/rules?fieldManager=cairn&force=true",
        &meta("Namespace", "v1", "rules", None),
    )
    .await;
    assert_eq!(s, 201);
    let mut problems = Vec::new();
    for r in rules() {
        let name = r.first["metadata"]["name"].as_str().unwrap().to_owned();
        let ns = r.first["metadata"]["namespace"].as_str();
        let (s, mut first) =
            apply(&h, &apply_path(r.api, ns, r.plural, &name, false), &r.first).await;
        if s != 201 {
            problems.push(format!("{}: first apply {s}: {first}", r.name));
            continue;
        }
        // A CRD's scope and kind are fixed once it is established, not before.
        if r.plural == "customresourcedefinitions" {
            let get = format!("{}/{}/{name}", r.api, r.plural);
            first = wait_for(&h, &get, |o| {
                o["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Established" && c["status"] == "True")
                })
            })
            .await;
        }
        for dry_run in [true, false] {
            let (s, body) = apply(
                &h,
                &apply_path(r.api, ns, r.plural, &name, dry_run),
                &r.second,
            )
            .await;
            let causes = body["details"]["causes"].as_array().map_or(0, Vec::len);
            if causes != 1 {
                problems.push(format!("{}: {causes} causes: {body}", r.name));
            }
            let cause = &body["details"]["causes"][0];
            let message = comparable(cause["message"].as_str().unwrap_or(""));
            if s != 422 || cause["field"] != r.field || message != r.message {
                problems.push(format!(
                    "{} (dry run {dry_run}): {s} {} {message:?}",
                    r.name, cause["field"]
                ));
            }
            let top = body["message"].as_str().unwrap_or("");
            if !top.contains(&format!("is invalid: {}: ", r.field)) {
                problems.push(format!("{}: message {top:?}", r.name));
            }
        }
        let (_, now) = h
            .call(
                "GET",
                &apply_path(r.api, ns, r.plural, &name, false)
                    .replace("?fieldManager=cairn&force=true", ""),
                None,
                None,
            )
            .await;
        let kept = |o: &Value| {
            let mut o = o.clone();
            for k in ["status", "metadata"] {
                o[k] = Value::Null;
            }
            o
        };
        if kept(&now) != kept(&first) {
            problems.push(format!("{}: a refused write changed the object", r.name));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutable_fields_still_change() {
    let h = Harness::start_k3s().await;
    let ns = Some("mut");
    apply(
        &h,
        "/api/v1/namespaces/mut?fieldManager=cairn&force=true",
        &meta("Namespace", "v1", "mut", None),
    )
    .await;
    // A ConfigMap without `immutable`, a Secret's data, a Deployment's template, a
    // StatefulSet's replicas, a Service's ports and type: all accepted.
    let cases = [
        (
            "/api/v1",
            "configmaps",
            with(
                meta("ConfigMap", "v1", "c", ns),
                json!({"data": {"k": "1"}}),
            ),
            with(
                meta("ConfigMap", "v1", "c", ns),
                json!({"data": {"k": "2"}}),
            ),
            ("/data/k", json!("2")),
        ),
        (
            "/api/v1",
            "services",
            with(
                meta("Service", "v1", "s", ns),
                json!({"spec": {"ports": [{"port": 80}]}}),
            ),
            with(
                meta("Service", "v1", "s", ns),
                json!({"spec": {"type": "NodePort", "ports": [{"port": 81}]}}),
            ),
            ("/spec/type", json!("NodePort")),
        ),
        (
            "/apis/apps/v1",
            "statefulsets",
            with(
                meta("StatefulSet", "apps/v1", "db", ns),
                json!({"spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}}}}),
            ),
            with(
                meta("StatefulSet", "apps/v1", "db", ns),
                json!({"spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:17"}]}}}}),
            ),
            ("/spec/replicas", json!(3)),
        ),
        (
            "/api/v1",
            "pods",
            with(
                meta("Pod", "v1", "p", ns),
                json!({"spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "nginx:1.27"}]}}),
            ),
            with(
                meta("Pod", "v1", "p", ns),
                json!({"spec": {"schedulerName": "nobody", "activeDeadlineSeconds": 60,
                    "containers": [{"name": "c", "image": "nginx:1.28"}]}}),
            ),
            ("/spec/containers/0/image", json!("nginx:1.28")),
        ),
        // `ValidateResourceQuotaUpdate` compares scopes as a set and leaves the scope
        // selector alone.
        (
            "/api/v1",
            "resourcequotas",
            with(
                meta("ResourceQuota", "v1", "q", ns),
                json!({"spec": {"hard": {"pods": "5"}, "scopes": ["NotTerminating", "NotBestEffort"]}}),
            ),
            with(
                meta("ResourceQuota", "v1", "q", ns),
                json!({"spec": {"hard": {"pods": "5"}, "scopes": ["NotBestEffort", "NotTerminating"],
                    "scopeSelector": {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}}),
            ),
            (
                "/spec/scopeSelector/matchExpressions/0/values/0",
                json!("high"),
            ),
        ),
    ];
    for (api, plural, a, b, (pointer, changed)) in cases {
        let name = a["metadata"]["name"].as_str().unwrap().to_owned();
        let (s1, _) = apply(&h, &apply_path(api, ns, plural, &name, false), &a).await;
        let (s2, body) = apply(&h, &apply_path(api, ns, plural, &name, false), &b).await;
        assert_eq!((s1, s2), (201, 200), "{plural}: {body}");
        assert_eq!(body.pointer(pointer), Some(&changed), "{plural}: {body}");
    }
    // The Recreate trap is avoided by saying `rollingUpdate: null`: the defaulted block goes.
    let dep = |strategy: Value| {
        with(
            meta("Deployment", "apps/v1", "web", ns),
            json!({"spec": {"strategy": strategy,
        "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}),
        )
    };
    let path = apply_path("/apis/apps/v1", ns, "deployments", "web", false);
    let (s, _) = apply(&h, &path, &dep(json!({"type": "RollingUpdate"}))).await;
    assert_eq!(s, 201);
    let (s, body) = apply(
        &h,
        &path,
        &dep(json!({"type": "Recreate", "rollingUpdate": null})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["spec"]["strategy"], json!({"type": "Recreate"}));
    // A PUT that leaves out what the server allocated keeps it (`patchAllocatedValues`).
    let svc = |ports: Value| {
        with(
            meta("Service", "v1", "np", ns),
            json!({"spec": {"type": "NodePort", "selector": {"app": "np"}, "ports": ports}}),
        )
    };
    let path = apply_path("/api/v1", ns, "services", "np", false);
    let (s, made) = apply(&h, &path, &svc(json!([{"name": "http", "port": 80}]))).await;
    assert_eq!(s, 201, "{made}");
    let body = serde_json::to_vec(&svc(json!([{"name": "http", "port": 8080}]))).unwrap();
    let (s, put) = h
        .call(
            "PUT",
            "/api/v1/namespaces/mut/services/np",
            Some("application/json"),
            Some(body),
        )
        .await;
    assert_eq!(s, 200, "{put}");
    assert_eq!(put["spec"]["clusterIP"], made["spec"]["clusterIP"]);
    assert_eq!(put["spec"]["clusterIPs"], made["spec"]["clusterIPs"]);
    assert_eq!(
        put["spec"]["ports"][0]["nodePort"],
        made["spec"]["ports"][0]["nodePort"]
    );
    assert_eq!(put["spec"]["ports"][0]["port"], 8080);
    // A StatefulSet's `OnDelete` has the same trap (`ValidateStatefulSetSpec`), once the
    // strategy was left to its default (`RollingUpdate` with `partition: 0`).
    let sts = |strategy: Value| {
        let mut spec = json!({"serviceName": "queue",
        "selector": {"matchLabels": {"app": "queue"}}, "template": {"metadata": {"labels": {"app": "queue"}}, "spec": {"containers": [{"name": "q", "image": "rabbitmq:3"}]}}});
        if !strategy.is_null() {
            spec["updateStrategy"] = strategy;
        }
        with(
            meta("StatefulSet", "apps/v1", "queue", ns),
            json!({ "spec": spec }),
        )
    };
    let path = apply_path("/apis/apps/v1", ns, "statefulsets", "queue", false);
    let (s, body) = apply(&h, &path, &sts(Value::Null)).await;
    assert_eq!(s, 201);
    assert_eq!(
        body["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    let (s, body) = apply(&h, &path, &sts(json!({"type": "OnDelete"}))).await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(
        body["message"],
        "StatefulSet.apps \"queue\" is invalid: spec.updateStrategy.rollingUpdate: Invalid value: apps.RollingUpdateStatefulSetStrategy{Partition:0, MaxUnavailable:(*intstr.IntOrString)(nil)}: only allowed for updateStrategy 'RollingUpdate'"
    );
    let (s, body) = apply(
        &h,
        &path,
        &sts(json!({"type": "OnDelete", "rollingUpdate": null})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_bind_and_grow_like_k3s() {
    let h = Harness::start_k3s().await;
    apply(
        &h,
        "/api/v1/namespaces/vol?fieldManager=cairn&force=true",
        &meta("Namespace", "v1", "vol", None),
    )
    .await;
    let claim = |size: &str| {
        with(
            meta("PersistentVolumeClaim", "v1", "data", Some("vol")),
            json!({"spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}),
        )
    };
    let path = apply_path(
        "/api/v1",
        Some("vol"),
        "persistentvolumeclaims",
        "data",
        false,
    );
    // DefaultStorageClass: k3s's local-path; WaitForFirstConsumer: Pending until a pod uses it.
    let (s, created) = apply(&h, &path, &claim("1Gi")).await;
    assert_eq!(s, 201);
    assert_eq!(created["spec"]["storageClassName"], "local-path");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let get = "/api/v1/namespaces/vol/persistentvolumeclaims/data";
    let (_, pending) = h.call("GET", get, None, None).await;
    assert_eq!(pending["status"]["phase"], "Pending");
    let pod = with(
        meta("Pod", "v1", "user", Some("vol")),
        json!({"spec": {
        "containers": [{"name": "c", "image": "busybox:1.36"}],
        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}}),
    );
    let (s, _) = apply(
        &h,
        &apply_path("/api/v1", Some("vol"), "pods", "user", false),
        &pod,
    )
    .await;
    assert_eq!(s, 201);
    let bound = wait_for(&h, get, |o| o["status"]["phase"] == "Bound").await;
    let pv_name = bound["spec"]["volumeName"].as_str().unwrap().to_owned();
    assert_eq!(
        pv_name,
        format!("pvc-{}", bound["metadata"]["uid"].as_str().unwrap())
    );
    assert_eq!(
        bound["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"],
        "rancher.io/local-path"
    );
    assert_eq!(
        bound["metadata"]["annotations"]["volume.kubernetes.io/selected-node"],
        "sandbox-node"
    );
    wait_for(&h, "/api/v1/namespaces/vol/pods/user", |o| {
        o["status"]["phase"] == "Running"
    })
    .await;
    // local-path cannot expand: 403 from the resize admission, on a dry run too.
    for dry in [true, false] {
        let (s, body) = apply(
            &h,
            &apply_path(
                "/api/v1",
                Some("vol"),
                "persistentvolumeclaims",
                "data",
                dry,
            ),
            &claim("2Gi"),
        )
        .await;
        assert_eq!(s, 403, "{body}");
        assert_eq!(
            body["message"],
            "persistentvolumeclaims \"data\" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"
        );
    }
    // Shrinking is refused by validation.
    let (s, body) = apply(&h, &path, &claim("500Mi")).await;
    assert_eq!(s, 422);
    assert_eq!(
        body["details"]["causes"][0]["field"],
        "spec.resources.requests.storage"
    );
    assert_eq!(
        body["details"]["causes"][0]["message"],
        "Forbidden: field can not be less than previous value"
    );
    // A class that allows expansion: the claim grows in place, the volume with it.
    let sc = with(
        meta("StorageClass", "storage.k8s.io/v1", "growing", None),
        json!({"provisioner": "rancher.io/local-path", "allowVolumeExpansion": true}),
    );
    apply(
        &h,
        "/apis/storage.k8s.io/v1/storageclasses/growing?fieldManager=cairn&force=true",
        &sc,
    )
    .await;
    let big = |size: &str| {
        with(
            meta("PersistentVolumeClaim", "v1", "big", Some("vol")),
            json!({"spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": "growing", "resources": {"requests": {"storage": size}}}}),
        )
    };
    let big_path = apply_path(
        "/api/v1",
        Some("vol"),
        "persistentvolumeclaims",
        "big",
        false,
    );
    apply(&h, &big_path, &big("1Gi")).await;
    let get_big = "/api/v1/namespaces/vol/persistentvolumeclaims/big";
    wait_for(&h, get_big, |o| o["status"]["phase"] == "Bound").await; // Immediate binding
    let (s, body) = apply(&h, &big_path, &big("3Gi")).await;
    assert_eq!(s, 200, "{body}");
    wait_for(&h, get_big, |o| o["status"]["capacity"]["storage"] == "3Gi").await;
    // A claim deleted while a pod uses it stays, terminating, until the pod is gone
    // (pvc-protection); then its provisioned volume goes with it (reclaim policy Delete).
    h.call("DELETE", get, None, None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, held) = h.call("GET", get, None, None).await;
    assert!(
        held["metadata"]["deletionTimestamp"].is_string()
            && held["metadata"]["finalizers"] == json!(["kubernetes.io/pvc-protection"]),
        "{held}"
    );
    h.call("DELETE", "/api/v1/namespaces/vol/pods/user", None, None)
        .await;
    wait_for(&h, get, |o| o["code"] == 404).await;
    wait_for(&h, &format!("/api/v1/persistentvolumes/{pv_name}"), |o| {
        o["code"] == 404
    })
    .await;
    h.stop().await;
}

/// A CRD's `x-kubernetes-validations` rule `self == oldSelf` (how operators mark a field
/// immutable) is enforced on updates of its objects, with the rule's message; other fields
/// still change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_keep_fields_their_schema_makes_immutable() {
    let h = Harness::start_k3s().await;
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "databases.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "databases", "singular": "database", "kind": "Database"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object", "properties": {
                    "storage": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "Value is immutable"}]},
                    "engine": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf"}]},
                    "size": {"type": "integer"}}}}}}}]}});
    let (s, _) = apply(&h, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/databases.example.com?fieldManager=cairn&force=true", &crd).await;
    assert_eq!(s, 201);
    apply(
        &h,
        "/api/v1/namespaces/crs?fieldManager=cairn&force=true",
        &meta("Namespace", "v1", "crs", None),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let db = |storage: &str, engine: &str, size: i64| {
        with(
            meta("Database", "example.com/v1", "main", Some("crs")),
            json!({"spec": {"storage": storage, "engine": engine, "size": size}}),
        )
    };
    let path = "/apis/example.com/v1/namespaces/crs/databases/main?fieldManager=cairn&force=true";
    let (s, body) = apply(&h, path, &db("10Gi", "pg", 1)).await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = apply(&h, path, &db("10Gi", "pg", 3)).await;
    assert_eq!(s, 200, "a field without the rule changes: {body}");
    let (s, body) = apply(&h, &format!("{path}&dryRun=All"), &db("20Gi", "mysql", 3)).await;
    assert_eq!(s, 422, "{body}");
    // Each field with its rule's message (the server does not fix their order).
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("Database.example.com \"main\" is invalid: ["),
        "{message}"
    );
    for part in [
        "spec.storage: Invalid value: \"string\": Value is immutable",
        "spec.engine: Invalid value: \"string\": failed rule: self == oldSelf",
    ] {
        assert!(message.contains(part), "{message}");
    }
    let fields: Vec<&str> = body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields.len(), 2, "{fields:?}");
    h.stop().await;
}

/// RetroactiveDefaultStorageClass (beta, on in v1.26): a claim made when the cluster had no
/// default class may be given one later; a class, once set, still may not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_without_a_class_may_get_one() {
    let h = Harness::start().await;
    let ns = Some("late");
    apply(
        &h,
        "/api/v1/namespaces/late?fieldManager=cairn&force=true",
        &meta("Namespace", "v1", "late", None),
    )
    .await;
    let claim = |class: Option<&str>| {
        let mut spec = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
        if let Some(c) = class {
            spec["storageClassName"] = json!(c);
        }
        with(
            meta("PersistentVolumeClaim", "v1", "data", ns),
            json!({ "spec": spec }),
        )
    };
    let path = apply_path("/api/v1", ns, "persistentvolumeclaims", "data", false);
    let (s, made) = apply(&h, &path, &claim(None)).await;
    assert_eq!(s, 201, "{made}");
    assert!(made["spec"]["storageClassName"].is_null(), "{made}");
    let (s, body) = apply(&h, &path, &claim(Some("manual"))).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["spec"]["storageClassName"], "manual");
    let (s, body) = apply(&h, &path, &claim(Some("other"))).await;
    assert_eq!(s, 422, "{body}");
    h.stop().await;
}
