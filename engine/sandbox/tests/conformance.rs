//! Conformance of the emulator with the recorded kube-apiserver v1.26.1 exchanges in
//! `testdata/kube-api/`, over real HTTPS with kube's client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

use std::time::Duration;

use helpers::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_openapi() {
    let h = Harness::start().await;
    for f in [
        "010-discovery-version.json",
        "011-discovery-api.json",
        "012-discovery-api-v1.json",
        "014-discovery-apis-apps-v1.json",
        "015-discovery-apis-batch-v1.json",
        "016-discovery-apis-networking.k8s.io-v1.json",
        "017-discovery-apis-policy-v1.json",
        "018-discovery-apis-coordination.k8s.io-v1.json",
        "019-discovery-apis-rbac.authorization.k8s.io-v1.json",
        "020-discovery-apis-apiextensions.k8s.io-v1.json",
    ] {
        let rec = recording(f);
        let (status, body) = h.replay(&rec).await;
        assert_eq!(status, rec.status, "{f}");
        assert_eq!(body, rec.body, "{f}: body differs");
    }
    // /apis: the recorded groups, each with only the versions the emulator serves (a group
    // with none is left out), every one of which answers with its resources; storage.k8s.io/v1
    // for StorageClasses, autoscaling/v2 for HorizontalPodAutoscalers. kubectl is never sent to a
    // version that is not there.
    let rec = recording("013-discovery-apis.json");
    let (s, body) = h.call("GET", "/apis", None, None).await;
    assert_eq!(s, 200);
    let served: Vec<String> = body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["versions"].as_array().unwrap().clone())
        .map(|v| v["groupVersion"].as_str().unwrap().to_string())
        .collect();
    for gv in &served {
        let (s, list) = h.call("GET", &format!("/apis/{gv}"), None, None).await;
        assert_eq!(
            (s, list["kind"].as_str()),
            (200, Some("APIResourceList")),
            "{gv}"
        );
    }
    for g in body["groups"].as_array().unwrap() {
        let recorded = rec.body["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == g["name"])
            .unwrap_or_else(|| panic!("{} is not a recorded group", g["name"]));
        assert_eq!(g["preferredVersion"], recorded["preferredVersion"]);
    }
    for gone in [
        "autoscaling/v1",
        "storage.k8s.io/v1beta1",
        "events.k8s.io/v1",
    ] {
        assert!(!served.iter().any(|s| s == gone), "{gone} is advertised");
        let (s, _) = h.call("GET", &format!("/apis/{gone}"), None, None).await;
        assert_eq!(s, 404, "{gone}");
    }
    assert!(served.iter().any(|s| s == "storage.k8s.io/v1"));
    assert!(served.iter().any(|s| s == "autoscaling/v2"));
    let (s, body) = h.call("GET", "/apis/apps", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(body["kind"], "APIGroup");
    assert_eq!(body["preferredVersion"]["groupVersion"], "apps/v1");
    let (s, text, ct) = h.call_text("GET", "/openapi/v3", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(ct, "text/plain; charset=utf-8");
    let index: Value = serde_json::from_str(&text).unwrap();
    assert!(index["paths"]["apis/apps/v1"]["serverRelativeURL"].is_string());
    let (s, text, _) = h
        .call_text("GET", "/openapi/v3/apis/apps/v1", None, None)
        .await;
    assert_eq!(s, 200);
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"].is_object());
    let (s, text, _) = h.call_text("GET", "/openapi/v2", None, None).await;
    assert_eq!(s, 200);
    assert!(text.starts_with("{\"swagger\":\"2.0\""));
    // As gnostic protobuf for either protobuf name (kubectl 1.20 asks for the `@` one), always
    // answered with the dotted content type; JSON for a JSON Accept; 406 with no body otherwise.
    let proto = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
    for accept in [
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        proto,
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf, application/json",
    ] {
        let (s, body, ct) = get_accept(&h.client, "/openapi/v2", accept).await;
        assert_eq!((s, ct.as_str()), (200, proto), "{accept}");
        // Document.swagger = 1: "2.0"
        assert_eq!(&body[..5], b"\x0a\x032.0", "{accept}");
        assert!(body.len() > 1_000_000);
    }
    let (s, body, ct) = get_accept(&h.client, "/openapi/v2", "application/json, */*").await;
    assert_eq!((s, ct.as_str()), (200, "application/json"));
    assert!(body.starts_with(b"{\"swagger\":\"2.0\""));
    let (s, body, _) = get_accept(&h.client, "/openapi/v2", "application/yaml").await;
    assert_eq!((s, body.len()), (406, 0));
    // Bad token: 401 with the recorded Status.
    let rec = recording("363-error-bad-token.json");
    let (s, body) = h.call_with_token("GET", &rec.path, "not-the-token").await;
    assert_eq!(s, 401);
    assert_eq!(body, rec.body);
    h.stop().await;
}

/// The main scenario, in the recorded order: first applies, re-applies, conflicts, errors,
/// lists, optimistic concurrency, CRDs, deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_the_recorded_scenario() {
    let h = Harness::start().await;
    let mut problems = Vec::new();

    // 1xx: first apply of each kind.
    for f in files_between(100, 119) {
        let rec = recording(&f);
        let (status, body) = h.replay(&rec).await;
        if status != rec.status {
            problems.push(format!("{f}: status {status}, recorded {}", rec.status));
            continue;
        }
        for d in diff_objects(&rec.body, &body) {
            problems.push(format!("{f}: {d}"));
        }
    }

    // Wait for the controllers to settle, then the re-applies.
    h.settle().await;
    let (_, before) = h
        .call(
            "GET",
            "/apis/apps/v1/namespaces/rec-ns/deployments/web",
            None,
            None,
        )
        .await;
    let rv0 = before["metadata"]["resourceVersion"].clone();
    let cairn_time = manager_entry(&before, "cairn")["time"].clone();
    let rec = recording("201-reapply-deployment-identical.json");
    let (s, after) = h.replay(&rec).await;
    check(&mut problems, "201 status", s == 200);
    check(
        &mut problems,
        "201 no-op keeps resourceVersion",
        after["metadata"]["resourceVersion"] == rv0,
    );
    check(
        &mut problems,
        "201 no-op keeps the managedFields time",
        manager_entry(&after, "cairn")["time"] == cairn_time,
    );
    let rec = recording("202-dryrun-apply-deployment-changed.json");
    let (s, dry) = h.replay(&rec).await;
    check(&mut problems, "202 status", s == 200);
    check(
        &mut problems,
        "202 replicas 3",
        dry["spec"]["replicas"] == 3,
    );
    check(
        &mut problems,
        "202 generation 2",
        dry["metadata"]["generation"] == 2,
    );
    check(
        &mut problems,
        "202 resourceVersion unchanged",
        dry["metadata"]["resourceVersion"] == rv0,
    );
    let (_, got) = h
        .call(
            "GET",
            "/apis/apps/v1/namespaces/rec-ns/deployments/web",
            None,
            None,
        )
        .await;
    check(
        &mut problems,
        "203 replicas still 2",
        got["spec"]["replicas"] == 2,
    );
    check(
        &mut problems,
        "203 generation 1",
        got["metadata"]["generation"] == 1,
    );
    let (s, changed) = h
        .replay(&recording("204-reapply-deployment-replicas-changed.json"))
        .await;
    check(&mut problems, "204 status", s == 200);
    check(
        &mut problems,
        "204 generation 2",
        changed["metadata"]["generation"] == 2,
    );
    check(
        &mut problems,
        "204 resourceVersion moved",
        changed["metadata"]["resourceVersion"] != rv0,
    );
    let rec = recording("205-reapply-deployment-field-removed.json");
    let (s, removed) = h.replay(&rec).await;
    check(&mut problems, "205 status", s == 200);
    let labels: Vec<&String> = removed["metadata"]["labels"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    check(
        &mut problems,
        &format!("205 label tier removed ({labels:?})"),
        removed["metadata"]["labels"].get("tier").is_none(),
    );
    let env: Vec<Value> = removed["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].clone())
        .collect();
    check(
        &mut problems,
        &format!("205 env DEBUG removed ({env:?})"),
        env == vec![json!("LOG_LEVEL"), json!("DB_PASSWORD")],
    );
    check(
        &mut problems,
        "205 generation 3",
        removed["metadata"]["generation"] == 3,
    );
    for d in diff_fields(
        &manager_entry(&rec.body, "cairn")["fieldsV1"],
        &manager_entry(&removed, "cairn")["fieldsV1"],
    ) {
        problems.push(format!("205 managedFields: {d}"));
    }
    let (_, secret) = h
        .call(
            "GET",
            "/api/v1/namespaces/rec-ns/secrets/db-credentials",
            None,
            None,
        )
        .await;
    let (s, again) = h
        .replay(&recording("206-reapply-secret-stringdata-identical.json"))
        .await;
    check(&mut problems, "206 status", s == 200);
    check(
        &mut problems,
        "206 no-op",
        again["metadata"]["resourceVersion"] == secret["metadata"]["resourceVersion"],
    );
    let (s, sec) = h
        .replay(&recording("207-reapply-secret-stringdata-key-removed.json"))
        .await;
    check(&mut problems, "207 status", s == 200);
    check(
        &mut problems,
        "207 data.password kept",
        sec["data"].get("password").is_some() && sec["data"].get("username").is_some(),
    );
    let rec = recording("208-apply-noncanonical-quantities.json");
    let (s, q) = h.replay(&rec).await;
    check(&mut problems, "208 status", s == 201);
    check(
        &mut problems,
        "208 canonical quantities",
        q["spec"]["template"]["spec"]["containers"][0]["resources"]
            == rec.body["spec"]["template"]["spec"]["containers"][0]["resources"],
    );
    h.settle().await;
    let (_, q0) = h
        .call(
            "GET",
            "/apis/apps/v1/namespaces/rec-ns/deployments/quantities",
            None,
            None,
        )
        .await;
    let (s, q1) = h
        .replay(&recording("210-reapply-noncanonical-quantities.json"))
        .await;
    check(&mut problems, "210 status", s == 200);
    check(
        &mut problems,
        "210 no-op after normalisation",
        q0["metadata"]["resourceVersion"] == q1["metadata"]["resourceVersion"],
    );

    // 25x: dry-run create.
    let (s, d) = h
        .replay(&recording("250-dryrun-apply-new-configmap.json"))
        .await;
    check(&mut problems, "250 status 201", s == 201);
    check(
        &mut problems,
        "250 uid set",
        d["metadata"]["uid"].is_string(),
    );
    check(
        &mut problems,
        "250 no resourceVersion",
        d["metadata"].get("resourceVersion").is_none(),
    );
    let (s, _) = h
        .replay(&recording("251-get-after-dryrun-create.json"))
        .await;
    check(&mut problems, "251 404", s == 404);

    // 30x: conflicts.
    for f in files_between(300, 306) {
        let rec = recording(&f);
        let (status, body) = h.replay(&rec).await;
        if status != rec.status {
            problems.push(format!("{f}: status {status}, recorded {}", rec.status));
            continue;
        }
        if status == 409 {
            if body != rec.body {
                problems.push(format!("{f}: body {body}, recorded {}", rec.body));
            }
        } else {
            check(
                &mut problems,
                &format!("{f} replicas"),
                body["spec"]["replicas"] == rec.body["spec"]["replicas"],
            );
            let mine = managers(&body);
            let theirs = managers(&rec.body);
            check(
                &mut problems,
                &format!("{f} managers {mine:?} vs recorded {theirs:?}"),
                mine == theirs,
            );
            for m in &theirs {
                if m.0 == "kube-controller-manager" {
                    continue;
                }
                for d in diff_fields(
                    &manager_entry(&rec.body, &m.0)["fieldsV1"],
                    &manager_entry(&body, &m.0)["fieldsV1"],
                ) {
                    problems.push(format!("{f} managedFields of {}: {d}", m.0));
                }
            }
        }
    }

    // 35x: errors, compared whole.
    for f in files_between(350, 365) {
        if f.starts_with("363") {
            continue;
        }
        let rec = recording(&f);
        let (status, body) = h.replay(&rec).await;
        if status != rec.status {
            problems.push(format!(
                "{f}: status {status}, recorded {} ({body})",
                rec.status
            ));
        } else if body != rec.body {
            problems.push(format!("{f}: body {body}\n   recorded {}", rec.body));
        }
    }

    // 40x: a Deployment refused by a ResourceQuota.
    for f in files_between(400, 403) {
        let rec = recording(&f);
        let (status, body) = h.replay(&rec).await;
        check(
            &mut problems,
            &format!("{f} status {status}"),
            status == rec.status,
        );
        if f.starts_with("402") {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (_, q) = h.replay(&rec).await;
            check(
                &mut problems,
                &format!("402 quota status {}", q["status"]),
                q["status"] == rec.body["status"],
            );
        } else {
            let _ = body;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, rs) = h.replay(&recording("404-quota-ns-replicasets.json")).await;
    let rs = &rs["items"][0];
    check(
        &mut problems,
        &format!("404 RS replicas 1: {}", rs["status"]),
        rs["status"]["replicas"] == 1,
    );
    let cond = &rs["status"]["conditions"][0];
    // The refused pod's name is new on every retry (each half second), so the Deployment,
    // read a moment later, may carry a later attempt's message: its form is what is compared.
    let quota_refusal = |c: &Value| {
        let msg = c["message"].as_str().unwrap_or("");
        c["type"] == "ReplicaFailure"
            && c["reason"] == "FailedCreate"
            && msg.starts_with("pods \"web-")
            && msg.ends_with("\" is forbidden: exceeded quota: pod-count, requested: pods=1, used: pods=1, limited: pods=1")
    };
    check(
        &mut problems,
        &format!("404 ReplicaFailure: {cond}"),
        quota_refusal(cond),
    );
    let (_, d) = h.replay(&recording("405-quota-ns-deployment.json")).await;
    let has_failure = d["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(quota_refusal));
    check(
        &mut problems,
        &format!("405 Deployment carries ReplicaFailure: {}", d["status"]),
        has_failure,
    );
    let (_, pods) = h.replay(&recording("406-quota-ns-pods.json")).await;
    check(
        &mut problems,
        "406 one pod admitted",
        pods["items"].as_array().map(Vec::len) == Some(1),
    );
    let (_, events) = h.replay(&recording("407-quota-ns-events.json")).await;
    let failed = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["reason"] == "FailedCreate"
                && e["type"] == "Warning"
                && e["source"]["component"] == "replicaset-controller"
        })
        .count();
    check(&mut problems, "407 FailedCreate events", failed >= 1);

    // The ConfigMaps the list recordings page through.
    for n in ["list-a", "list-b", "list-c", "list-d"] {
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n, "namespace": "rec-ns", "labels": {"app.kubernetes.io/part-of": "rec-demo", "rec.example.com/page": "yes"}}, "data": {"key": "value"}});
        let (s, _) = h
            .call(
                "PATCH",
                &format!("/api/v1/namespaces/rec-ns/configmaps/{n}?fieldManager=cairn&force=true"),
                Some("application/apply-patch+yaml"),
                Some(serde_json::to_vec(&body).unwrap()),
            )
            .await;
        check(&mut problems, &format!("apply {n}"), s == 201);
    }

    // 45x: lists.
    for f in files_between(450, 457) {
        let rec = recording(&f);
        let (status, body) = h.replay(&rec).await;
        if status != rec.status {
            problems.push(format!("{f}: status {status}, recorded {}", rec.status));
            continue;
        }
        let names = |b: &Value| -> Vec<String> {
            b["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    format!(
                        "{}/{}",
                        i["metadata"]["namespace"].as_str().unwrap_or(""),
                        i["metadata"]["name"].as_str().unwrap()
                    )
                })
                .collect()
        };
        if names(&body) != names(&rec.body) {
            problems.push(format!(
                "{f}: items {:?}, recorded {:?}",
                names(&body),
                names(&rec.body)
            ));
        }
        check(
            &mut problems,
            &format!("{f} remainingItemCount"),
            body["metadata"]["remainingItemCount"] == rec.body["metadata"]["remainingItemCount"],
        );
        check(
            &mut problems,
            &format!("{f} continue present"),
            body["metadata"].get("continue").is_some()
                == rec.body["metadata"].get("continue").is_some(),
        );
        check(
            &mut problems,
            &format!("{f} kind"),
            body["kind"] == rec.body["kind"],
        );
    }

    // 55x: optimistic concurrency.
    let (_, lease) = h.replay(&recording("550-lease-get.json")).await;
    let (s, _) = h.replay(&recording("551-lease-apply-change.json")).await;
    check(&mut problems, "551 status", s == 200);
    let mut stale = recording("552-lease-put-stale.json");
    stale.body_sent["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"].clone();
    let (s, body) = h.replay(&stale).await;
    check(&mut problems, "552 409", s == 409);
    check(&mut problems, "552 body", body == stale.body);
    let (_, current) = h
        .call(
            "GET",
            "/apis/coordination.k8s.io/v1/namespaces/rec-ns/leases/web-leader",
            None,
            None,
        )
        .await;
    let mut put = recording("553-lease-put-current.json");
    put.body_sent["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
    let (s, body) = h.replay(&put).await;
    check(&mut problems, "553 200", s == 200);
    check(
        &mut problems,
        "553 holder",
        body["spec"]["holderIdentity"] == put.body["spec"]["holderIdentity"],
    );
    let rec = recording("554-create-existing.json");
    let (s, body) = h.replay(&rec).await;
    check(&mut problems, "554 409", s == 409);
    check(&mut problems, &format!("554 body {body}"), body == rec.body);

    // 60x: CRDs.
    let rec = recording("600-crd-apply.json");
    let (s, crd) = h.replay(&rec).await;
    check(&mut problems, "600 201", s == 201);
    for d in diff_objects(&rec.body, &crd) {
        problems.push(format!("600: {d}"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rec = recording("602-crd-status-2.json");
    let (s, crd) = h.replay(&rec).await;
    check(&mut problems, "602 200", s == 200);
    check(
        &mut problems,
        "602 established",
        crd["status"]["conditions"][1]["type"] == "Established"
            && crd["status"]["conditions"][1]["status"] == "True",
    );
    check(
        &mut problems,
        "602 acceptedNames",
        crd["status"]["acceptedNames"] == rec.body["status"]["acceptedNames"],
    );
    for f in ["603-crd-discovery.json", "604-crd-discovery-group.json"] {
        let rec = recording(f);
        let (s, mut body) = h.replay(&rec).await;
        check(&mut problems, &format!("{f} status"), s == 200);
        let mut expected = rec.body.clone();
        strip_key(&mut body, "storageVersionHash");
        strip_key(&mut expected, "storageVersionHash");
        check(&mut problems, &format!("{f} body {body}"), body == expected);
    }
    for f in files_between(605, 611) {
        let rec = recording(&f);
        let (status, body) = h.replay(&rec).await;
        if status != rec.status {
            problems.push(format!(
                "{f}: status {status}, recorded {} ({body})",
                rec.status
            ));
            continue;
        }
        if status >= 400 && status != 404 {
            check(&mut problems, &format!("{f} body {body}"), body == rec.body);
        } else if status < 300 && rec.body.get("items").is_none() {
            for d in diff_objects(&rec.body, &body) {
                problems.push(format!("{f}: {d}"));
            }
        }
    }
    let (s, _, _) = h
        .call_text(
            "GET",
            "/openapi/v3/apis/monitoring.example.com/v1",
            None,
            None,
        )
        .await;
    check(&mut problems, "CRD OpenAPI v3 document", s == 200);

    // 70x: deletion.
    let (s, body) = h
        .replay(&recording("700-delete-deployment-background.json"))
        .await;
    check(&mut problems, "700 200", s == 200);
    check(
        &mut problems,
        "700 Status Success",
        body["status"] == "Success" && body["details"]["kind"] == "deployments",
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, rs) = h
        .replay(&recording("701-replicasets-after-background-delete.json"))
        .await;
    check(
        &mut problems,
        &format!("701 no ReplicaSets left: {}", rs["items"]),
        rs["items"].as_array().is_some_and(Vec::is_empty),
    );
    let (s, body) = h
        .replay(&recording("702-delete-deployment-foreground.json"))
        .await;
    check(&mut problems, "702 200", s == 200);
    check(
        &mut problems,
        "702 foregroundDeletion",
        body["metadata"]["finalizers"] == json!(["foregroundDeletion"])
            && body["metadata"]["deletionTimestamp"].is_string(),
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (s, _) = h
        .replay(&recording("704-deployment-gone-after-foreground.json"))
        .await;
    check(&mut problems, "704 404", s == 404);
    let (s, ns) = h.replay(&recording("705-delete-namespace.json")).await;
    check(
        &mut problems,
        "705 200 Terminating",
        s == 200 && ns["status"]["phase"] == "Terminating",
    );
    let rec = recording("707-create-in-terminating-namespace.json");
    let (s, body) = h.replay(&rec).await;
    // The emulator finalizes namespaces fast; a 404 after it is gone is what the server says too.
    check(
        &mut problems,
        &format!("707 403 or 404: {s} {body}"),
        (s == 403 && body == rec.body) || s == 404,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, _) = h.replay(&recording("709-namespace-gone.json")).await;
    check(&mut problems, "709 404", s == 404);
    let (s, body) = h.replay(&recording("710-delete-crd.json")).await;
    check(
        &mut problems,
        "710 200",
        s == 200 && body["metadata"]["deletionTimestamp"].is_string(),
    );

    h.stop().await;
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_readiness_logs_and_persistence() {
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Api, Patch, PatchParams};
    use kube::runtime::wait::{await_condition, conditions};

    let dir = std::env::temp_dir().join(format!("cairn-sandbox-test-{}", std::process::id()));
    let state_file = dir.join("state.json");
    let _ = std::fs::remove_file(&state_file);
    let h = Harness::start_with(cairn_sandbox::SandboxConfig {
        state_file: Some(state_file.clone()),
        pod_start_delay: Duration::from_millis(50),
        outcomes: vec![(
            "crashy".into(),
            cairn_sandbox::PodOutcome::CrashLoop {
                exit_code: 3,
                logs: vec!["starting".into(), "boom: missing DATABASE_URL".into()],
            },
        )],
    })
    .await;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "w"}});
    let (s, _) = h
        .call(
            "PATCH",
            "/api/v1/namespaces/w?fieldManager=cairn",
            Some("application/apply-patch+yaml"),
            Some(serde_json::to_vec(&ns).unwrap()),
        )
        .await;
    assert_eq!(s, 201);

    // A watch from a list resourceVersion sees ADDED, MODIFIED, DELETED then a BOOKMARK
    // (after the namespace controller has created kube-root-ca.crt).
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (_, list) = h
        .call("GET", "/api/v1/namespaces/w/configmaps", None, None)
        .await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let client = h.client.clone();
    let watch_path = format!(
        "/api/v1/namespaces/w/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=1&allowWatchBookmarks=true"
    );
    let watcher = tokio::spawn(async move { send(&client, "GET", &watch_path, None, None).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cm = |step: &str| {
        serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched"}, "data": {"step": step}})).unwrap()
    };
    let (s, _) = h
        .call(
            "POST",
            "/api/v1/namespaces/w/configmaps",
            Some("application/json"),
            Some(cm("created")),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = h
        .call(
            "PUT",
            "/api/v1/namespaces/w/configmaps/watched",
            Some("application/json"),
            Some(cm("updated")),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = h
        .call(
            "DELETE",
            "/api/v1/namespaces/w/configmaps/watched",
            None,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, text, ct) = watcher.await.unwrap();
    assert_eq!((s, ct.as_str()), (200, "application/json"));
    let types: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(types, ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]);

    // kube-runtime's await_condition sees a Deployment complete its rollout.
    let deployments: Api<Deployment> = Api::namespaced(h.client.clone(), "w");
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}
    }))
    .unwrap();
    deployments
        .patch("web", &PatchParams::apply("cairn"), &Patch::Apply(&d))
        .await
        .unwrap();
    let done = tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(
            deployments.clone(),
            "web",
            conditions::is_deployment_completed(),
        ),
    )
    .await
    .expect("deployment completes within 10 s")
    .unwrap()
    .unwrap();
    let status = done.status.unwrap();
    assert_eq!(status.ready_replicas, Some(2));
    assert_eq!(status.available_replicas, Some(2));

    // A crash-looping image: CrashLoopBackOff, restarts, logs served by /log.
    let crashy = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "crashy"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "crashy"}},
                 "template": {"metadata": {"labels": {"app": "crashy"}}, "spec": {"containers": [{"name": "app", "image": "example/crashy:1"}]}}}
    });
    let (s, _) = h
        .call(
            "PATCH",
            "/apis/apps/v1/namespaces/w/deployments/crashy?fieldManager=cairn",
            Some("application/apply-patch+yaml"),
            Some(serde_json::to_vec(&crashy).unwrap()),
        )
        .await;
    assert_eq!(s, 201);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_, pods) = h
        .call(
            "GET",
            "/api/v1/namespaces/w/pods?labelSelector=app%3Dcrashy",
            None,
            None,
        )
        .await;
    let pod = &pods["items"][0];
    let cs = &pod["status"]["containerStatuses"][0];
    assert_eq!(
        cs["state"]["waiting"]["reason"], "CrashLoopBackOff",
        "{pod}"
    );
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 3);
    assert!(cs["restartCount"].as_i64().unwrap() >= 1);
    let name = pod["metadata"]["name"].as_str().unwrap();
    let (s, logs, _) = h
        .call_text(
            "GET",
            &format!(
                "/api/v1/namespaces/w/pods/{name}/log?container=app&tailLines=1&previous=true"
            ),
            None,
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(logs, "boom: missing DATABASE_URL\n");

    // Persistence: a new emulator on the same state file sees the objects.
    h.stop().await;
    let h2 = Harness::start_with(cairn_sandbox::SandboxConfig {
        state_file: Some(state_file.clone()),
        ..cairn_sandbox::SandboxConfig::default()
    })
    .await;
    let (s, d) = h2
        .call(
            "GET",
            "/apis/apps/v1/namespaces/w/deployments/web",
            None,
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(d["spec"]["replicas"], 2);
    h2.sandbox.clear_requests();
    let _ = h2.call("GET", "/api/v1/namespaces", None, None).await;
    let reqs = h2.sandbox.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("GET", "/api/v1/namespaces")
    );
    h2.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Debian's kubectl 1.20 drives the emulator through a written kubeconfig: get (server-side
/// Tables), apply --server-side, delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_apply_delete() {
    let kubectl = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../.test-tools/kubernetes-client/usr/bin/kubectl");
    assert!(
        kubectl.exists(),
        "kubectl not found at {}: run scripts/install-test-servers",
        kubectl.display()
    );
    let h = Harness::start_k3s().await;
    let dir = std::env::temp_dir().join(format!("cairn-sandbox-kubectl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    h.sandbox.write_kubeconfig(&kubeconfig, "sandbox").unwrap();
    let manifest = dir.join("cm.yaml");
    let run = |args: Vec<String>| {
        let kubectl = kubectl.clone();
        let kubeconfig = kubeconfig.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(kubectl)
                    .arg("--kubeconfig")
                    .arg(kubeconfig)
                    .args(args)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let args = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
    // Discovery names only what is served: kubectl finds every group it is sent to.
    let out = run(args("api-resources")).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("storageclasses"), "{stdout}");
    assert!(stdout.contains("horizontalpodautoscalers"), "{stdout}");
    let out = run(args("get storageclass")).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("local-path"), "{stdout}");
    let out = run(args("get namespaces")).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("kube-system") && stdout.contains("Active"),
        "{stdout}"
    );

    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: k\n  namespace: default\ndata:\n  a: \"1\"\n",
    )
    .unwrap();
    let m = manifest.display().to_string();
    let out = run(args(&format!("apply --server-side -f {m}"))).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("serverside-applied"));
    let (_, cm) = h
        .call("GET", "/api/v1/namespaces/default/configmaps/k", None, None)
        .await;
    assert_eq!(cm["data"]["a"], "1");
    assert_eq!(manager_entry(&cm, "kubectl")["operation"], "Apply");

    // An autoscaler (autoscaling/v2): applied when valid, refused as the server refuses it.
    let hpa = |min: i64, max: i64| {
        format!(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\n  namespace: default\nspec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}\n  minReplicas: {min}\n  maxReplicas: {max}\n  metrics:\n  - type: Resource\n    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 70}}}}\n"
        )
    };
    std::fs::write(&manifest, hpa(2, 5)).unwrap();
    let out = run(args(&format!("apply --server-side -f {m}"))).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&manifest, hpa(3, 2)).unwrap();
    let out = run(args(&format!("apply --server-side -f {m}"))).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains(
                "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"
            ),
        "{stderr}"
    );
    let out = run(args("get hpa -n default")).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("web"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(args("get configmaps -n default")).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("k "),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = run(args("delete configmap k -n default")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (s, _) = h
        .call("GET", "/api/v1/namespaces/default/configmaps/k", None, None)
        .await;
    assert_eq!(s, 404);
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// kubectl 1.20 reads /openapi/v2 as gnostic protobuf: client-side validation of apply (an
/// unknown field is refused before any request) and `diff --server-side` (a server-side dry run
/// compared with the live object; exit 1 with changes, 0 without).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_diff_and_validated_apply() {
    let kubectl = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../.test-tools/kubernetes-client/usr/bin/kubectl");
    assert!(
        kubectl.exists(),
        "kubectl not found at {}: run scripts/install-test-servers",
        kubectl.display()
    );
    let h = Harness::start().await;
    let dir = std::env::temp_dir().join(format!("cairn-sandbox-kubediff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    h.sandbox.write_kubeconfig(&kubeconfig, "sandbox").unwrap();
    let run = |args: String| {
        let kubectl = kubectl.clone();
        let kubeconfig = kubeconfig.clone();
        async move {
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new(kubectl)
                    .arg("--kubeconfig")
                    .arg(kubeconfig)
                    .args(args.split(' '))
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let manifest = dir.join("app.yaml");
    let m = manifest.display().to_string();
    let write = |replicas: u32, value: &str| {
        std::fs::write(
            &manifest,
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\n\
                 data:\n  a: \"{value}\"\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  \
                 name: app\n  namespace: default\nspec:\n  replicas: {replicas}\n  selector:\n    \
                 matchLabels:\n      app: app\n  template:\n    metadata:\n      labels:\n        \
                 app: app\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.25\n        \
                 ports:\n        - containerPort: 80\n        resources:\n          requests:\n            \
                 cpu: 100m\n"
            ),
        )
        .unwrap();
    };

    // Nothing there yet: everything is new.
    write(1, "1");
    let (code, out, err) = run(format!("diff --server-side -f {m}")).await;
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.contains("+  a: \"1\""), "{out}");
    assert!(out.contains("+  replicas: 1"), "{out}");
    let (s, _) = h
        .call(
            "GET",
            "/api/v1/namespaces/default/configmaps/app",
            None,
            None,
        )
        .await;
    assert_eq!(s, 404, "diff is a dry run");

    // apply with client-side validation (the default).
    let (code, out, err) = run(format!("apply --server-side -f {m}")).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("configmap/app serverside-applied"), "{out}");
    assert!(
        out.contains("deployment.apps/app serverside-applied"),
        "{out}"
    );
    let (_, d) = h
        .call(
            "GET",
            "/apis/apps/v1/namespaces/default/deployments/app",
            None,
            None,
        )
        .await;
    assert_eq!(d["spec"]["replicas"], 1);

    // One object by name: a one-row Table with the kind's columns, as for lists.
    let (code, out, err) = run("get deployment app -n default".to_string()).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.starts_with("NAME   READY   UP-TO-DATE   AVAILABLE   AGE"),
        "{out}"
    );

    // explain reads the same document.
    let (code, out, err) = run("explain deployment.spec.replicas".to_string()).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("FIELD:    replicas <integer>"), "{out}");

    // Unchanged: no differences, exit 0.
    let (code, out, err) = run(format!("diff --server-side -f {m}")).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(out, "");

    // Changed: the differences, exit 1; the live objects stay as they were.
    write(3, "2");
    let (code, out, err) = run(format!("diff --server-side -f {m}")).await;
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(
        out.contains("-  a: \"1\"") && out.contains("+  a: \"2\""),
        "{out}"
    );
    assert!(
        out.contains("-  replicas: 1") && out.contains("+  replicas: 3"),
        "{out}"
    );
    let (_, cm) = h
        .call(
            "GET",
            "/api/v1/namespaces/default/configmaps/app",
            None,
            None,
        )
        .await;
    assert_eq!(cm["data"]["a"], "1");

    // The scale subresource, as `kubectl scale` uses it: replicas change, recorded as an
    // Update by kubectl on the `scale` subresource.
    let (code, out, err) = run("scale deployment app -n default --replicas=2".to_string()).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("deployment.apps/app scaled"), "{out}");
    let (s, sc) = h
        .call(
            "GET",
            "/apis/apps/v1/namespaces/default/deployments/app/scale",
            None,
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(sc["kind"], "Scale");
    assert_eq!(sc["spec"]["replicas"], 2);
    assert_eq!(sc["status"]["selector"], "app=app");
    let (_, d) = h
        .call(
            "GET",
            "/apis/apps/v1/namespaces/default/deployments/app",
            None,
            None,
        )
        .await;
    assert_eq!(d["spec"]["replicas"], 2);
    let scaled = d["metadata"]["managedFields"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["subresource"] == "scale"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(scaled["manager"], "kubectl", "{d}");
    assert_eq!(scaled["operation"], "Update");
    assert!(
        scaled["fieldsV1"]["f:spec"]["f:replicas"].is_object(),
        "{scaled}"
    );
    let (code, out, err) = run("scale deployment app -n default --replicas=1".to_string()).await;
    assert_eq!(code, Some(0), "{out}\n{err}");

    // A CRD (validated against apiextensions' schema), then one of its objects: as a real
    // server does, the emulator then publishes the kind's definition and PATCH path in
    // /openapi/v2, so kubectl validates, explains and diffs it.
    std::fs::write(
        &manifest,
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  \
         name: widgets.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n  names:\n    \
         plural: widgets\n    singular: widget\n    kind: Widget\n  versions:\n  - name: v1\n    \
         served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        \
         properties:\n          spec:\n            type: object\n            properties:\n              \
         size:\n                type: integer\n",
    )
    .unwrap();
    let (code, out, err) = run(format!("apply --server-side -f {m}")).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    let (code, out, err) =
        run("wait --for=condition=Established --timeout=10s crd/widgets.example.com".to_string())
            .await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    std::fs::write(
        &manifest,
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: default\n\
         spec:\n  size: 3\n",
    )
    .unwrap();
    let (code, out, err) = run(format!("apply --server-side -f {m}")).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains("widget.example.com/w serverside-applied"),
        "{out}"
    );
    let (code, out, err) = run("explain widget.spec.size".to_string()).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("FIELD:    size <integer>"), "{out}");
    std::fs::write(
        &manifest,
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: default\n\
         spec:\n  size: 4\n",
    )
    .unwrap();
    let (code, out, err) = run(format!("diff --server-side -f {m}")).await;
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(
        out.contains("-  size: 3") && out.contains("+  size: 4"),
        "{out}"
    );
    let (_, w) = h
        .call(
            "GET",
            "/apis/example.com/v1/namespaces/default/widgets/w",
            None,
            None,
        )
        .await;
    assert_eq!(w["spec"]["size"], 3, "diff is a dry run");
    std::fs::write(
        &manifest,
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: default\n\
         spec:\n  size: big\n",
    )
    .unwrap();
    let (code, out, err) = run(format!("apply --server-side -f {m}")).await;
    assert_ne!(code, Some(0), "{out}");
    assert!(
        err.contains("ValidationError(Widget.spec.size)") && err.contains("expected \"integer\""),
        "{err}"
    );

    // Validation from the protobuf schema: an unknown field and a wrong type are refused by
    // kubectl itself, before any request.
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n  namespace: default\nspec: {}\n",
    )
    .unwrap();
    let (code, out, err) = run(format!("apply --server-side -f {m}")).await;
    assert_ne!(code, Some(0), "{out}");
    assert!(
        err.contains("ValidationError(ConfigMap)") && err.contains("unknown field \"spec\""),
        "{err}"
    );
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: bad\n  namespace: default\n\
         spec:\n  replicas: many\n  selector:\n    matchLabels:\n      app: bad\n  template:\n    \
         metadata:\n      labels:\n        app: bad\n    spec:\n      containers:\n      - name: bad\n        \
         image: nginx\n",
    )
    .unwrap();
    let (code, out, err) = run(format!("apply --server-side -f {m}")).await;
    assert_ne!(code, Some(0), "{out}");
    assert!(
        err.contains("ValidationError(Deployment.spec.replicas)"),
        "{err}"
    );
    for path in [
        "/api/v1/namespaces/default/configmaps/bad",
        "/apis/apps/v1/namespaces/default/deployments/bad",
    ] {
        let (s, _) = h.call("GET", path, None, None).await;
        assert_eq!(s, 404, "{path}");
    }
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rolling update proceeds as the deployment controller paces it: with maxSurge 1 and
/// maxUnavailable 0, never more than replicas + 1 pods are asked for and never fewer than
/// `replicas` stay available; the old ReplicaSet goes down one by one. A crash-looping new
/// template stops the rollout with the old pods serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_updates_are_paced_by_max_surge_and_max_unavailable() {
    let h = Harness::start_with(cairn_sandbox::SandboxConfig {
        pod_start_delay: Duration::from_millis(120),
        outcomes: vec![(
            "crashy".into(),
            cairn_sandbox::PodOutcome::CrashLoop {
                exit_code: 1,
                logs: vec!["boom".into()],
            },
        )],
        ..cairn_sandbox::SandboxConfig::default()
    })
    .await;
    let apply = |image: &str| {
        let body = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": 4,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": image}]}}
            }
        });
        serde_json::to_vec(&body).unwrap()
    };
    let path = "/apis/apps/v1/namespaces/default/deployments/web?fieldManager=t";
    let ready = |d: &Value| {
        d["status"]["updatedReplicas"] == 4
            && d["status"]["availableReplicas"] == 4
            && d["status"]["replicas"] == 4
    };
    let get = || async {
        h.call(
            "GET",
            "/apis/apps/v1/namespaces/default/deployments/web",
            None,
            None,
        )
        .await
        .1
    };
    let (s, _) = h
        .call(
            "PATCH",
            path,
            Some("application/apply-patch+yaml"),
            Some(apply("nginx:1.25")),
        )
        .await;
    assert_eq!(s, 201);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !ready(&get().await) {
        assert!(std::time::Instant::now() < deadline, "{}", get().await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Roll to a new image, sampling the ReplicaSets as it goes.
    let (s, _) = h
        .call(
            "PATCH",
            path,
            Some("application/apply-patch+yaml"),
            Some(apply("nginx:1.27")),
        )
        .await;
    assert_eq!(s, 200);
    let mut max_spec = 0;
    let mut min_available = i64::MAX;
    let mut old_steps = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, list) = h
            .call(
                "GET",
                "/apis/apps/v1/namespaces/default/replicasets",
                None,
                None,
            )
            .await;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let spec: i64 = items
            .iter()
            .map(|r| r["spec"]["replicas"].as_i64().unwrap_or(0))
            .sum();
        let available: i64 = items
            .iter()
            .map(|r| r["status"]["availableReplicas"].as_i64().unwrap_or(0))
            .sum();
        max_spec = max_spec.max(spec);
        min_available = min_available.min(available);
        if let Some(old) = items
            .iter()
            .find(|r| r["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25")
        {
            old_steps.insert(old["spec"]["replicas"].as_i64().unwrap_or(0));
        }
        let d = get().await;
        if ready(&d) && d["status"]["observedGeneration"] == 2 && spec == 4 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "rollout stuck: {d}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(max_spec, 5, "replicas + maxSurge at most");
    assert!(min_available >= 4, "maxUnavailable 0: {min_available}");
    assert!(
        old_steps.len() >= 3,
        "the old ReplicaSet went down step by step: {old_steps:?}"
    );

    // A new template that crash-loops: one surge pod, the old ones keep serving.
    let (s, _) = h
        .call(
            "PATCH",
            path,
            Some("application/apply-patch+yaml"),
            Some(apply("crashy")),
        )
        .await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, list) = h
        .call(
            "GET",
            "/apis/apps/v1/namespaces/default/replicasets",
            None,
            None,
        )
        .await;
    let by_image = |image: &str| {
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["spec"]["template"]["spec"]["containers"][0]["image"] == image)
            .map(|r| r["spec"]["replicas"].as_i64().unwrap_or(-1))
    };
    assert_eq!(by_image("crashy"), Some(1), "{list}");
    assert_eq!(by_image("nginx:1.27"), Some(4), "{list}");
    let d = get().await;
    assert_eq!(d["status"]["availableReplicas"], 4, "{d}");
    assert_eq!(d["status"]["updatedReplicas"], 1, "{d}");
    h.stop().await;
}
