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
        "013-discovery-apis.json",
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
    let msg = cond["message"].as_str().unwrap_or("");
    check(
        &mut problems,
        &format!("404 ReplicaFailure: {cond}"),
        cond["type"] == "ReplicaFailure"
            && cond["reason"] == "FailedCreate"
            && msg.starts_with("pods \"web-")
            && msg.ends_with("\" is forbidden: exceeded quota: pod-count, requested: pods=1, used: pods=1, limited: pods=1"),
    );
    let (_, d) = h.replay(&recording("405-quota-ns-deployment.json")).await;
    let has_failure = d["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "ReplicaFailure" && c["message"] == cond["message"])
    });
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
