//! One apply at a time per environment: a `coordination.k8s.io/v1` Lease (`cairn-<env>` in
//! the `default` namespace) held while an apply runs, renewed in the background, released at
//! the end by its holder only. Each process holds it under an identity of its own (the CI's
//! names are for people to read; a random run token makes it unique), so two jobs of one CI run
//! never both hold it. A lease whose holder stopped renewing (a crashed run) expires and is
//! taken over; one whose holder is a dead process on this same host is taken at once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kube::Api;
use kube::api::{DeleteParams, DynamicObject, PostParams, Preconditions};
use serde_json::{Value as J, json};
use tokio::task::JoinHandle;

use crate::kinds;
use crate::{Cluster, KubeError};

/// Namespace of the lock Leases.
pub const LOCK_NAMESPACE: &str = "default";

/// Who holds an environment's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The holder's identity (`user@host (pid N)`, or the CI run).
    pub identity: String,
    /// When it took the lock (RFC 3339).
    pub since: String,
    /// Seconds until the lock expires if not renewed.
    pub expires_in: i64,
    /// The holder is a process of this host that no longer runs.
    pub dead: bool,
}

const HOST_ANNOTATION: &str = "cairn.dev/holder-host";
const PID_ANNOTATION: &str = "cairn.dev/holder-pid";
const PID_NAMESPACE_ANNOTATION: &str = "cairn.dev/holder-pid-namespace";

/// The PID namespace this process sees (`pid:[4026531836]`): two containers can share a host
/// name (host networking) and still not see each other's processes.
pub fn this_pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

const UNKNOWN_HOST: &str = "unknown-host";

/// This machine's name, as the lock records it.
pub fn this_host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| UNKNOWN_HOST.to_owned())
}

/// Whether process `pid` of this host runs (a zombie has exited).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// Whether the lease's holder is a process this one could see, and it is gone: same known
/// host name, same PID namespace, and no such process. Anything less certain (an unknown
/// host, no `/proc`, another container) leaves the lease to expire.
fn dead_here(lease: &J) -> bool {
    let note = |k: &str| {
        lease
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(k))
            .and_then(J::as_str)
    };
    let host = this_host();
    let Some(pid_namespace) = this_pid_namespace() else {
        return false;
    };
    let pid = note(PID_ANNOTATION).and_then(|p| p.parse::<u32>().ok());
    host != UNKNOWN_HOST
        && note(HOST_ANNOTATION) == Some(host.as_str())
        && note(PID_NAMESPACE_ANNOTATION) == Some(pid_namespace.as_str())
        && pid.is_some_and(|p| !alive(p))
}

/// A held lock; dropping it stops the renewal, [`Lock::release`] gives it back.
pub struct Lock {
    api: Api<DynamicObject>,
    name: String,
    identity: String,
    renewal: JoinHandle<()>,
}

fn lease_name(env: &str) -> String {
    format!("cairn-{env}")
}

fn api(cluster: &Cluster) -> Result<Api<DynamicObject>, KubeError> {
    let kind = kinds::kind("Lease").ok_or_else(|| KubeError::Internal("no Lease kind".into()))?;
    Ok(Api::namespaced_with(
        cluster.client.clone(),
        LOCK_NAMESPACE,
        &kind.api_resource(),
    ))
}

/// `2026-11-23T17:59:35.000000Z` for a time.
pub fn micro_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Seconds since the epoch of an RFC 3339 UTC time (`…Z`), as the API server writes them.
pub fn parse_time(s: &str) -> Option<i64> {
    let (date, time) = s.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

fn holder_of(lease: &J) -> Option<Holder> {
    let spec = lease.get("spec")?;
    let identity = spec
        .get("holderIdentity")
        .and_then(J::as_str)
        .filter(|s| !s.is_empty())?
        .to_owned();
    let duration = spec
        .get("leaseDurationSeconds")
        .and_then(J::as_i64)
        .unwrap_or(0);
    let renewed = spec
        .get("renewTime")
        .and_then(J::as_str)
        .and_then(parse_time)
        .unwrap_or(0);
    let since = spec
        .get("acquireTime")
        .and_then(J::as_str)
        .unwrap_or_default()
        .to_owned();
    Some(Holder {
        identity,
        since,
        expires_in: renewed + duration - now_secs(),
        dead: dead_here(lease),
    })
}

fn lease_body(
    name: &str,
    identity: &str,
    ttl: Duration,
    acquired: &str,
    resource_version: Option<&str>,
) -> Result<DynamicObject, KubeError> {
    let now = micro_time(SystemTime::now());
    let mut metadata = json!({
        "name": name, "namespace": LOCK_NAMESPACE, "labels": { crate::MANAGED_BY: "cairn" },
        "annotations": {
            HOST_ANNOTATION: this_host(),
            PID_ANNOTATION: std::process::id().to_string(),
            PID_NAMESPACE_ANNOTATION: this_pid_namespace().unwrap_or_default(),
        },
    });
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = J::String(rv.to_owned());
    }
    serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {
            "holderIdentity": identity,
            "leaseDurationSeconds": ttl.as_secs(),
            "acquireTime": if acquired.is_empty() { now.clone() } else { acquired.to_owned() },
            "renewTime": now,
        },
    }))
    .map_err(|e| KubeError::Internal(e.to_string()))
}

/// Who holds the lock of `env`, if anyone (an expired lease counts as free).
pub async fn holder(cluster: &Cluster, env: &str) -> Result<Option<Holder>, KubeError> {
    let api = api(cluster)?;
    let name = lease_name(env);
    match api
        .get_opt(&name)
        .await
        .map_err(|e| KubeError::api(format!("get lease {name}"), e))?
    {
        Some(obj) => {
            let lease =
                serde_json::to_value(&obj).map_err(|e| KubeError::Internal(e.to_string()))?;
            Ok(holder_of(&lease).filter(|h| h.expires_in > 0 && !h.dead))
        }
        None => Ok(None),
    }
}

/// Takes the lock of `env` for `identity`, waiting up to `wait` while someone else holds it;
/// `waiting` is told who holds it, once. Fails naming the holder when the wait runs out.
pub async fn acquire(
    cluster: &Cluster,
    env: &str,
    identity: &str,
    ttl: Duration,
    wait: Duration,
    waiting: &(dyn Fn(&Holder) + Send + Sync),
) -> Result<Lock, KubeError> {
    let api = api(cluster)?;
    let name = lease_name(env);
    let deadline = tokio::time::Instant::now() + wait;
    let mut told = false;
    loop {
        let current = api
            .get_opt(&name)
            .await
            .map_err(|e| KubeError::api(format!("get lease {name}"), e))?;
        let lease = current
            .as_ref()
            .map(|obj| serde_json::to_value(obj).map_err(|e| KubeError::Internal(e.to_string())))
            .transpose()?;
        let held = lease
            .as_ref()
            .and_then(holder_of)
            .filter(|h| h.identity != identity && h.expires_in > 0 && !h.dead);
        if let Some(h) = held {
            if tokio::time::Instant::now() >= deadline {
                return Err(KubeError::Locked {
                    environment: env.to_owned(),
                    holder: h.identity,
                    since: h.since,
                    expires_in: h.expires_in,
                });
            }
            if !told {
                waiting(&h);
                told = true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let attempt = take(
            &api,
            &name,
            identity,
            ttl,
            current.as_ref(),
            lease.as_ref(),
            waiting,
        );
        match attempt.await? {
            Ok(()) => break,
            // Someone else was quicker (AlreadyExists, or a stale resourceVersion): look again.
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(KubeError::api(format!("take lease {name}"), e)),
        }
    }
    let renewal = tokio::spawn(renew(api.clone(), name.clone(), identity.to_owned(), ttl));
    Ok(Lock {
        api,
        name,
        identity: identity.to_owned(),
        renewal,
    })
}

/// Takes a lease no one else holds: creates it, or replaces it (at its resourceVersion) when
/// it is ours, expired, or its holder is dead (`waiting` is told of a dead holder's lease
/// taken over before it expired).
async fn take(
    api: &Api<DynamicObject>,
    name: &str,
    identity: &str,
    ttl: Duration,
    current: Option<&DynamicObject>,
    lease: Option<&J>,
    waiting: &(dyn Fn(&Holder) + Send + Sync),
) -> Result<Result<(), kube::Error>, KubeError> {
    let (Some(obj), Some(lease)) = (current, lease) else {
        let body = lease_body(name, identity, ttl, "", None)?;
        return Ok(api.create(&PostParams::default(), &body).await.map(|_| ()));
    };
    if let Some(h) = holder_of(lease).filter(|h| h.dead && h.expires_in > 0) {
        waiting(&h);
    }
    let rv = obj.metadata.resource_version.clone();
    let body = lease_body(name, identity, ttl, "", rv.as_deref())?;
    Ok(api
        .replace(name, &PostParams::default(), &body)
        .await
        .map(|_| ()))
}

/// Renews the lease every third of its time to live while it is still ours.
async fn renew(api: Api<DynamicObject>, name: String, identity: String, ttl: Duration) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        let Ok(Some(obj)) = api.get_opt(&name).await else {
            return;
        };
        let Ok(lease) = serde_json::to_value(&obj) else {
            return;
        };
        if holder_of(&lease).is_none_or(|h| h.identity != identity) {
            return;
        }
        let acquired = lease
            .pointer("/spec/acquireTime")
            .and_then(J::as_str)
            .unwrap_or_default()
            .to_owned();
        let rv = obj.metadata.resource_version.clone();
        if let Ok(body) = lease_body(&name, &identity, ttl, &acquired, rv.as_deref()) {
            let _ = api.replace(&name, &PostParams::default(), &body).await;
        }
    }
}

impl Lock {
    /// Gives the lock back (deletes the Lease if it is still ours).
    pub async fn release(self) {
        self.renewal.abort();
        if let Ok(Some(obj)) = self.api.get_opt(&self.name).await {
            let ours = serde_json::to_value(&obj)
                .ok()
                .and_then(|l| holder_of(&l))
                .is_some_and(|h| h.identity == self.identity);
            if ours {
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        resource_version: obj.metadata.resource_version.clone(),
                        uid: None,
                    }),
                    ..DeleteParams::default()
                };
                let _ = self.api.delete(&self.name, &params).await;
            }
        }
    }
}

impl Lock {
    /// Stops renewing without giving the lock back, as a crashed run would: the lock expires
    /// after its duration.
    pub fn abandon(self) {
        self.renewal.abort();
    }
}

/// Removes the lock of `env` whoever holds it (`cairn unlock`).
pub async fn force_unlock(cluster: &Cluster, env: &str) -> Result<bool, KubeError> {
    let api = api(cluster)?;
    let name = lease_name(env);
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(KubeError::api(format!("delete lease {name}"), e)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_456_775) + Duration::from_micros(123);
        let text = micro_time(t);
        assert_eq!(text, "2026-11-23T17:59:35.000123Z");
        assert_eq!(parse_time(&text), Some(1_795_456_775));
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Some(1_709_164_800));
    }
}
