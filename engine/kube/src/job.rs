//! Running a one-off Job to completion (a smoke check's SQL query): create it, wait until it
//! completes or fails, read its pod's log.

use std::time::{Duration, Instant};

use kube::Api;
use kube::api::{
    DeleteParams, DynamicObject, ListParams, LogParams, PostParams, PropagationPolicy,
};
use serde_json::Value as J;

use crate::{Cluster, KubeError, kinds};

/// How a Job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRun {
    /// The Job's name.
    pub name: String,
    /// Whether it completed.
    pub succeeded: bool,
    /// Why it failed (the Job's condition, or the timeout); empty when it succeeded.
    pub message: String,
    /// The last log lines of its pod (the newest pod when there were retries).
    pub logs: Vec<String>,
}

/// Lines of log kept from a Job's pod.
const LOG_LINES: usize = 20;

/// Creates the Job `body` (its `metadata.name` and `metadata.namespace` set) and waits for it,
/// at most `timeout`. A Job that completes is deleted with its pods; one that fails or times out
/// is left for inspection (its `ttlSecondsAfterFinished`, if any, cleans it up) and its pod's
/// log is returned.
pub async fn run_job(cluster: &Cluster, body: &J, timeout: Duration) -> Result<JobRun, KubeError> {
    let kind = kinds::kind("Job").ok_or_else(|| KubeError::Internal("no Job kind".to_owned()))?;
    let name = body
        .pointer("/metadata/name")
        .and_then(J::as_str)
        .unwrap_or_default()
        .to_owned();
    let ns = body
        .pointer("/metadata/namespace")
        .and_then(J::as_str)
        .unwrap_or("default")
        .to_owned();
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), &ns, &kind.api_resource());
    let object: DynamicObject = serde_json::from_value(body.clone())
        .map_err(|e| KubeError::Internal(format!("the Job {ns}/{name}: {e}")))?;
    api.create(&PostParams::default(), &object)
        .await
        .map_err(|e| KubeError::api(format!("create Job {ns}/{name}"), e))?;
    let start = Instant::now();
    let (succeeded, message) = loop {
        let obj = api
            .get(&name)
            .await
            .map_err(|e| KubeError::api(format!("get Job {ns}/{name}"), e))?;
        let obj = serde_json::to_value(&obj).map_err(|e| KubeError::Internal(e.to_string()))?;
        match crate::readiness("Job", &obj) {
            Ok(true) => break (true, String::new()),
            Err(f) => break (false, f.message),
            Ok(false) => {}
        }
        if start.elapsed() > timeout {
            break (
                false,
                format!("the job did not finish within {}s", timeout.as_secs()),
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let logs = if succeeded {
        Vec::new()
    } else {
        pod_log(cluster, &ns, &name).await
    };
    if succeeded {
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        // Best effort: a Job left behind is harmless and carries no cairn labels.
        let _ = api.delete(&name, &params).await;
    }
    Ok(JobRun {
        name,
        succeeded,
        message,
        logs,
    })
}

/// The last log lines of the newest pod of Job `name`.
async fn pod_log(cluster: &Cluster, ns: &str, name: &str) -> Vec<String> {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(cluster.client.clone(), ns);
    let Ok(list) = pods
        .list(&ListParams::default().labels(&format!("job-name={name}")))
        .await
    else {
        return Vec::new();
    };
    let Some(pod) = list
        .items
        .iter()
        .max_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0))
    else {
        return Vec::new();
    };
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let params = LogParams {
        tail_lines: Some(LOG_LINES as i64),
        ..LogParams::default()
    };
    match pods.logs(&pod_name, &params).await {
        Ok(text) => {
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            let start = lines.len().saturating_sub(LOG_LINES);
            lines[start..].to_vec()
        }
        Err(_) => Vec::new(),
    }
}
