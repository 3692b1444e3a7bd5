//! `cairn status`: is the environment healthy right now? Rollouts, certificate expiry,
//! backup freshness and the script's smoke checks, with a non-zero exit code when anything is stale or unhealthy, so it can
//! run as a scheduled CI check.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cairn_model::{Provider, ResourceId};
use cairn_s3::{Freshness, InMemoryS3, MemBucket, S3Backend, S3Settings};
use serde::Serialize;
use serde_json::Value as J;

use crate::live::{LiveArgs, SANDBOX_DIR, close, connect, evaluate_checked, runtime};
use crate::{EXIT_ERROR, EXIT_OK, Io, ScriptArgs};

/// A certificate with fewer days left than this is reported as expiring.
const CERT_WARN_DAYS: u32 = 14;

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Health {
    Ok,
    Unhealthy,
    Stale,
    Missing,
}

#[derive(Debug, Serialize)]
struct Item {
    what: String,
    health: Health,
    detail: String,
}

fn age(d: Duration) -> String {
    let h = d.as_secs() / 3600;
    if h >= 48 {
        format!("{}d {}h", h / 24, h % 24)
    } else {
        format!("{h}h {}m", (d.as_secs() % 3600) / 60)
    }
}

fn rollouts(
    state: &cairn_model::DesiredState,
    live: &BTreeMap<ResourceId, J>,
    out: &mut Vec<Item>,
) {
    for r in state
        .kube_objects()
        .filter(|r| matches!(r.id.kind.as_str(), "Deployment" | "StatefulSet"))
    {
        let what = format!("rollout {}", r.id);
        let item = match live.get(&r.id) {
            None => Item {
                what,
                health: Health::Missing,
                detail: "not applied".to_owned(),
            },
            Some(obj) => match cairn_kube::readiness(&r.id.kind, obj) {
                Ok(true) => {
                    let ready = obj
                        .pointer("/status/readyReplicas")
                        .and_then(J::as_i64)
                        .unwrap_or(0);
                    Item {
                        what,
                        health: Health::Ok,
                        detail: format!("{ready} ready"),
                    }
                }
                Ok(false) => {
                    let ready = obj
                        .pointer("/status/readyReplicas")
                        .and_then(J::as_i64)
                        .unwrap_or(0);
                    let want = obj
                        .pointer("/spec/replicas")
                        .and_then(J::as_i64)
                        .unwrap_or(1);
                    Item {
                        what,
                        health: Health::Unhealthy,
                        detail: format!("{ready}/{want} ready"),
                    }
                }
                Err(f) => Item {
                    what,
                    health: Health::Unhealthy,
                    detail: f.message,
                },
            },
        };
        out.push(item);
    }
}

fn certificates(
    state: &cairn_model::DesiredState,
    live: &BTreeMap<ResourceId, J>,
    out: &mut Vec<Item>,
) {
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
        let health = match &status.action {
            cairn_acme::Action::NoChange => Health::Ok,
            cairn_acme::Action::Issue(cairn_acme::IssueReason::Missing) => Health::Missing,
            cairn_acme::Action::Issue(_) => Health::Unhealthy,
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

async fn backups(
    io: &Io<'_>,
    state: &cairn_model::DesiredState,
    live: &LiveArgs,
    out: &mut Vec<Item>,
) -> Result<(), String> {
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
    let backend: Arc<dyn S3Backend> = if live.sandbox {
        let file = io.cwd.join(SANDBOX_DIR).join("s3.json");
        let buckets: BTreeMap<String, MemBucket> = match std::fs::read_to_string(&file) {
            Ok(text) => {
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?
            }
            Err(_) => BTreeMap::new(),
        };
        Arc::new(InMemoryS3::with_buckets(buckets))
    } else {
        let Some(settings) = state.environment.providers.get("backups") else {
            return Ok(());
        };
        let settings =
            S3Settings::from_settings(settings).map_err(|e| format!("S3 settings: {e}"))?;
        cairn_s3::connect(&settings)
            .await
            .map_err(|e| e.to_string())?
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

/// `cairn status`.
pub fn status(io: &mut Io<'_>, script: &ScriptArgs, live: &LiveArgs) -> Result<i32, String> {
    let Some(eval) = evaluate_checked(io, script)? else {
        return Ok(EXIT_ERROR);
    };
    let rt = runtime()?;
    let items = rt.block_on(async {
        let target = connect(io, live, &eval.state.environment).await?;
        let live_objects = cairn_kube::live_objects(&target.cluster, &eval.state)
            .await
            .map_err(|e| e.to_string());
        let mut items = Vec::new();
        let result = match live_objects {
            Ok(objects) => {
                rollouts(&eval.state, &objects, &mut items);
                certificates(&eval.state, &objects, &mut items);
                let result = backups(io, &eval.state, live, &mut items).await;
                let timeout = Duration::from_secs(120);
                for o in crate::smoke::run_all(&target.cluster, &eval.state, timeout).await {
                    items.push(Item {
                        what: format!("smoke check {}", o.name),
                        health: if o.ok { Health::Ok } else { Health::Unhealthy },
                        detail: crate::smoke::with_log(&o),
                    });
                }
                result
            }
            Err(e) => Err(e),
        };
        close(target).await?;
        result.map(|()| items)
    })?;
    let healthy = items.iter().all(|i| matches!(i.health, Health::Ok));
    if live.json {
        let doc = serde_json::json!({ "format_version": 1, "healthy": healthy, "items": items });
        let _ = writeln!(
            io.out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
    } else {
        let _ = writeln!(
            io.out,
            "Status of environment {}\n",
            eval.state.environment.name
        );
        for i in &items {
            let mark = match i.health {
                Health::Ok => "✓",
                Health::Stale => "! stale",
                Health::Missing => "✗ missing",
                Health::Unhealthy => "✗",
            };
            let _ = writeln!(io.out, "  {mark} {}: {}", i.what, i.detail);
        }
        let bad = items
            .iter()
            .filter(|i| !matches!(i.health, Health::Ok))
            .count();
        let _ = writeln!(
            io.out,
            "\n{}",
            if healthy {
                format!("{} checks, all healthy.", items.len())
            } else {
                format!("{bad} of {} checks need attention.", items.len())
            }
        );
    }
    Ok(if healthy { EXIT_OK } else { EXIT_ERROR })
}
