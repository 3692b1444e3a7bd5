//! `status`: is the environment healthy right now? Rollouts, certificate expiry, backup
//! freshness and the script's smoke checks, one item each.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cairn_model::{DesiredState, Provider, ResourceId};
use cairn_plan::plan::Action;
use cairn_s3::{Freshness, S3Backend, S3Settings};
use serde::Serialize;
use serde_json::Value as J;

use crate::error::Result;
use crate::target::Target;

/// A certificate with fewer days left than this is reported as expiring.
const CERT_WARN_DAYS: u32 = 14;

/// How one thing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// Healthy.
    Ok,
    /// Failing (a rollout, a certificate to renew, a smoke check).
    Unhealthy,
    /// Too old (a backup).
    Stale,
    /// Not there (not applied, no backup yet).
    Missing,
    /// Not looked at: a smoke check the sandbox cannot answer (neither healthy nor not).
    NotRun,
}

impl Health {
    /// Whether it needs attention (a check not run does not).
    pub fn bad(self) -> bool {
        !matches!(self, Health::Ok | Health::NotRun)
    }
}

/// One thing `status` looked at.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// What (`rollout Deployment/web`, `backup …`).
    pub what: String,
    /// How it is.
    pub health: Health,
    /// Why, for people.
    pub detail: String,
}

fn age(d: Duration) -> String {
    let h = d.as_secs() / 3600;
    if h >= 48 {
        format!("{}d {}h", h / 24, h % 24)
    } else {
        format!("{h}h {}m", (d.as_secs() % 3600) / 60)
    }
}

/// Each Deployment and StatefulSet: ready, or why not (its pods explained: a crash loop with
/// its log, an image that cannot be pulled, unschedulable pods, a quota).
async fn rollouts(
    target: &Target,
    state: &DesiredState,
    live: &BTreeMap<ResourceId, J>,
    out: &mut Vec<Item>,
) {
    let counts = |obj: &J| {
        let n = |p: &str| obj.pointer(p).and_then(J::as_i64);
        let want = n("/spec/replicas").unwrap_or(1);
        let ready = n("/status/readyReplicas").unwrap_or(0);
        let updated = n("/status/updatedReplicas").unwrap_or(0);
        (ready, want, updated)
    };
    for r in state
        .kube_objects()
        .filter(|r| matches!(r.id.kind.as_str(), "Deployment" | "StatefulSet"))
    {
        let what = format!("rollout {}", r.id);
        let (health, detail) = match live.get(&r.id) {
            None => (Health::Missing, "not applied".to_owned()),
            Some(obj) => match cairn_kube::readiness(&r.id.kind, obj) {
                Ok(true) => (Health::Ok, format!("{} ready", counts(obj).0)),
                Ok(false) => {
                    let (ready, want, updated) = counts(obj);
                    let mut detail = format!("{ready}/{want} ready, {updated}/{want} updated");
                    if let Some(f) = cairn_kube::why_not_ready(&target.cluster, obj).await {
                        detail = format!("{detail}: {}", failure_text(&f));
                    }
                    (Health::Unhealthy, detail)
                }
                Err(f) => (Health::Unhealthy, failure_text(&f)),
            },
        };
        out.push(Item {
            what,
            health,
            detail,
        });
    }
}

/// An environment with a lifetime (`expires: "7d"`): when it expires; stale once past.
async fn lifetime(target: &Target, state: &DesiredState, out: &mut Vec<Item>) -> Result<()> {
    use crate::destroy::{Expiry, expiry};
    let expiry = expiry(target, state).await?;
    let health = match &expiry {
        Expiry::Never => return Ok(()),
        Expiry::NotApplied => Health::Missing,
        e if e.expired() => Health::Stale,
        _ => Health::Ok,
    };
    let mut detail = expiry.text();
    if expiry.expired() {
        detail.push_str(": `cairn destroy --expired` removes it");
    }
    out.push(Item {
        what: format!("lifetime of {}", state.environment.name),
        health,
        detail,
    });
    Ok(())
}

/// A failure's message with its details, one per line under it.
fn failure_text(f: &cairn_apply::Failure) -> String {
    let mut text = f.message.clone();
    for d in &f.details {
        text.push_str("\n      ");
        text.push_str(d);
    }
    text
}

fn certificates(state: &DesiredState, live: &BTreeMap<ResourceId, J>, out: &mut Vec<Item>) {
    for r in state
        .resources
        .iter()
        .filter(|r| r.id.provider == Provider::Acme && r.id.kind == "Certificate")
    {
        let what = format!("certificate {}", r.id.name);
        let Ok(settings) = cairn_acme::CertSettings::from_resource(r) else {
            continue;
        };
        let secret = live.get(&ResourceId::kube(
            "Secret",
            Some(&settings.namespace),
            &settings.secret_name,
        ));
        let status = cairn_acme::inspect(secret, &settings, SystemTime::now(), CERT_WARN_DAYS);
        let health = match status.action {
            Action::NoOp => Health::Ok,
            Action::Create => Health::Missing,
            _ => Health::Unhealthy,
        };
        let detail = match status.not_after {
            Some(t) => format!(
                "{}; {} days left",
                status.describe(),
                cairn_acme::days_until(t, SystemTime::now())
            ),
            None => status.describe(),
        };
        out.push(Item {
            what,
            health,
            detail,
        });
    }
}

async fn backups(target: &Target, state: &DesiredState, out: &mut Vec<Item>) -> Result<()> {
    let jobs: Vec<_> = state
        .kube_objects()
        .filter(|r| r.id.kind == "CronJob")
        .filter_map(|r| {
            let ann = |k: &str| {
                r.body
                    .pointer(&["metadata", "annotations", k])
                    .and_then(cairn_model::Value::as_str)
                    .map(str::to_owned)
            };
            let schedule = r
                .body
                .pointer(&["spec", "schedule"])
                .and_then(cairn_model::Value::as_str)?
                .to_owned();
            Some((
                r.id.name.clone(),
                ann("cairn.dev/backup-bucket")?,
                ann("cairn.dev/backup-prefix")?,
                schedule,
            ))
        })
        .collect();
    if jobs.is_empty() {
        return Ok(());
    }
    let backend: Arc<dyn S3Backend> = if let Some(dir) = &target.sandbox_dir {
        cairn_s3::open_sandbox(dir)?
    } else {
        let Some(settings) = state.environment.providers.get("backups") else {
            return Ok(());
        };
        let settings =
            S3Settings::from_settings(settings).map_err(cairn_s3::BucketsError::Settings)?;
        cairn_s3::connect(&settings)
            .await
            .map_err(cairn_s3::BucketsError::S3)?
    };
    for (job, bucket, prefix, schedule) in jobs {
        let what = format!("backup {job} → s3://{bucket}/{prefix}");
        let item = match cairn_s3::backup_status(
            backend.as_ref(),
            &bucket,
            &prefix,
            &schedule,
            SystemTime::now(),
        )
        .await
        {
            Ok(status) => {
                let newest = status
                    .newest
                    .as_ref()
                    .map(|o| format!("{} ({} bytes)", o.key, o.size))
                    .unwrap_or_default();
                match status.freshness {
                    Freshness::Fresh { age: a } => Item {
                        what,
                        health: Health::Ok,
                        detail: format!("newest {newest}, {} old", age(a)),
                    },
                    Freshness::Stale { age: a, allowed } => Item {
                        what,
                        health: Health::Stale,
                        detail: format!(
                            "newest {newest} is {} old, more than the {} the schedule `{schedule}` allows",
                            age(a),
                            age(allowed)
                        ),
                    },
                    Freshness::Missing => Item {
                        what,
                        health: Health::Missing,
                        detail: "no backup yet".to_owned(),
                    },
                }
            }
            Err(e) => Item {
                what,
                health: Health::Unhealthy,
                detail: e.to_string(),
            },
        };
        out.push(item);
    }
    Ok(())
}

/// The status for people: one line per item, then how many need attention.
pub fn text(environment: &str, items: &[Item]) -> String {
    let mut out = format!("Status of environment {environment}\n\n");
    for i in items {
        let mark = match i.health {
            Health::Ok => "✓",
            Health::Stale => "! stale",
            Health::Missing => "✗ missing",
            Health::Unhealthy => "✗",
            Health::NotRun => "- not run",
        };
        out.push_str(&format!("  {mark} {}: {}\n", i.what, i.detail));
    }
    let bad = items.iter().filter(|i| i.health.bad()).count();
    let not_run = items.iter().filter(|i| i.health == Health::NotRun).count();
    out.push_str(&if bad == 0 {
        format!("\n{} checks, all healthy", items.len())
    } else {
        format!("\n{bad} of {} checks need attention", items.len())
    });
    out.push_str(&if not_run == 0 {
        ".\n".to_owned()
    } else {
        format!(" ({not_run} not run on the sandbox).\n")
    });
    out
}

/// The versioned JSON document of a status (`status --json`).
pub fn document(items: &[Item]) -> serde_json::Value {
    let healthy = !items.iter().any(|i| i.health.bad());
    serde_json::json!({ "format_version": 1, "healthy": healthy, "items": items })
}

/// Looks at everything the environment declares: rollouts, certificates, backups (read from
/// S3), then runs the smoke checks (on the sandbox, those it can answer).
pub async fn status(target: &Target, state: &DesiredState) -> Result<Vec<Item>> {
    let objects = cairn_kube::live_objects(&target.cluster, state).await?;
    let mut items = Vec::new();
    rollouts(target, state, &objects, &mut items).await;
    lifetime(target, state, &mut items).await?;
    certificates(state, &objects, &mut items);
    let result = backups(target, state, &mut items).await;
    let timeout = Duration::from_secs(120);
    let sandbox = target.sandbox_dir.is_some();
    for o in crate::smoke::run_all(&target.cluster, state, timeout, sandbox).await {
        items.push(Item {
            what: format!("smoke check {}", o.name),
            health: match o.verdict {
                crate::smoke::Verdict::Passed => Health::Ok,
                crate::smoke::Verdict::Failed => Health::Unhealthy,
                crate::smoke::Verdict::NotRun => Health::NotRun,
            },
            detail: crate::smoke::with_log(&o),
        });
    }
    result.map(|()| items)
}
