//! `plan`: every provider's part of the desired state against what it observes, as one plan.
//! The cluster is planned first (its Secret LIST is what the certificates read), then DNS,
//! certificates and buckets; their rows, notes and observations join the cluster's.

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_apply::provider::{Part, Provider};
use cairn_kube::KubePlan;
use cairn_model::{DesiredState, Provider as Kind};
use cairn_plan::alerts::{AlertFormat, RouteFormat, RuleFormat, with_alert_objects};
use cairn_plan::plan::{Action, Plan, shown_value};

use crate::error::{Error, Result};
use crate::target::Target;

/// How to plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Take over fields another field manager owns (server-side apply force).
    pub force_conflicts: bool,
    /// Take over declared objects that exist without cairn's labels.
    pub adopt: bool,
    /// Plan on a cluster other than the one the environment's inventory names.
    pub accept_cluster: bool,
    /// Allow deleting more than 30 % of a DNS zone's records, and taking over others' records.
    pub force: bool,
}

/// Everything a plan found, per provider, and the combined printable plan.
pub struct LivePlan {
    /// The printable plan: every provider's rows and notes.
    pub plan: Plan,
    /// The cluster's part.
    pub kube: KubePlan,
    /// The other providers' parts, in plan order (DNS, certificates, buckets).
    pub parts: Vec<Box<dyn Part>>,
}

impl LivePlan {
    /// What the plan read, keyed by what it is: the cluster's objects, the zone, the buckets.
    pub fn observations(&self) -> BTreeMap<String, String> {
        let mut out = self.kube.observations();
        for part in &self.parts {
            out.extend(part.observations());
        }
        out
    }

    /// The cluster's identity (its kube-system namespace's uid).
    pub fn cluster_identity(&self) -> &str {
        &self.kube.identity
    }
}

/// The versioned JSON document of a plan (`plan --json`, `docs/plan-schema.json`).
pub fn document(plan: &Plan) -> serde_json::Value {
    serde_json::json!({
        "format_version": 1,
        "plan": plan,
        "summary": plan.summary(),
        "has_changes": plan.has_changes(),
        "deletes_data": plan.protected_deletions().next().is_some(),
    })
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('`', "'")
}

/// The Markdown comment's Network section: each connection that opens or closes.
fn md_network(out: &mut String, plan: &Plan) {
    use std::fmt::Write as _;
    if plan.network.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n**Network** (who can reach whom):\n");
    for c in &plan.network {
        let sign = match c.action {
            cairn_plan::plan::PathAction::Open => "+",
            cairn_plan::plan::PathAction::Close => "-",
        };
        let end = |p: &str| md_escape(&p.replace("/any-pod", "/*"));
        let flag = c.crosses.as_ref().map_or_else(String::new, |ns| {
            format!(
                " — **‼ to or from `{}`, another environment's namespace**",
                md_escape(ns)
            )
        });
        let _ = writeln!(
            out,
            "- `{sign} {} -> {} {}`{flag}",
            end(&c.from),
            end(&c.to),
            md_escape(&c.ports)
        );
    }
}

/// The plan as a Markdown summary for a pull-request comment: counts, then a table of what
/// changes, field-level detail folded per resource.
pub fn markdown(plan: &Plan) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let s = plan.summary();
    let _ = writeln!(
        out,
        "### cairn plan: `{}` on `{}`\n",
        md_escape(&plan.environment),
        md_escape(&plan.target)
    );
    if plan.has_changes() {
        let _ = writeln!(
            out,
            "**{} to add, {} to change, {} to replace, {} to destroy** ({} unchanged{}).\n",
            s.create,
            s.update,
            s.replace,
            s.delete,
            s.unchanged,
            if s.kept > 0 {
                format!(", {} protected and kept", s.kept)
            } else {
                String::new()
            }
        );
        let _ = writeln!(out, "| | resource | detail |\n|---|---|---|");
        for c in plan.changes.iter().filter(|c| c.action != Action::NoOp) {
            let mut detail: Vec<String> = c
                .fields
                .iter()
                .map(|f| {
                    format!(
                        "`{}`: {} → {}",
                        md_escape(&f.path),
                        md_escape(&shown_value(&f.before)),
                        md_escape(&shown_value(&f.after))
                    )
                })
                .collect();
            if let Some(reason) = &c.reason {
                detail.push(md_escape(reason));
            }
            if let Some(help) = &c.help {
                detail.push(format!("help: {}", md_escape(help)));
            }
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} |",
                c.action.symbol(),
                md_escape(&c.id.to_string()),
                detail.join("<br>")
            );
        }
    } else {
        let _ = writeln!(
            out,
            "**No changes**: {} resources match the script.",
            s.unchanged
        );
    }
    md_network(&mut out, plan);
    for note in &plan.notes {
        let _ = writeln!(out, "\n> {}", md_escape(note));
    }
    out
}

/// Alert rules become a PrometheusRule when the cluster runs the Prometheus operator,
/// otherwise a ConfigMap; their routing an AlertmanagerConfig where the operator serves
/// v1alpha1, else a Secret. The state with the alert objects, and the plan's note.
async fn with_alerts(
    target: &Target,
    state: &DesiredState,
) -> Result<(DesiredState, Option<String>)> {
    let has_alerts = state
        .resources
        .iter()
        .any(|r| r.id.provider == Kind::Alerts);
    if !has_alerts {
        return Ok((state.clone(), None));
    }
    let operator = target.cluster.serves("monitoring.coreos.com/v1").await?;
    let (rules, note) = if operator {
        (
            RuleFormat::PrometheusOperator,
            "alerts: the cluster serves monitoring.coreos.com/v1: rules as a PrometheusRule",
        )
    } else {
        (
            RuleFormat::ConfigMap,
            "alerts: no Prometheus operator in the cluster: rules as a ConfigMap holding a Prometheus rules file",
        )
    };
    let routes = if target
        .cluster
        .serves("monitoring.coreos.com/v1alpha1")
        .await?
    {
        RouteFormat::AlertmanagerConfig
    } else {
        RouteFormat::Secret
    };
    let with = with_alert_objects(state, AlertFormat { rules, routes });
    let mut note = note.to_owned();
    for am in with.kube_objects().filter(|r| r.id.kind == "Alertmanager") {
        note.push_str(&format!(
            "; routing as an AlertmanagerConfig, which {} (run by the operator) selects",
            am.id
        ));
    }
    Ok((with, Some(note)))
}

/// Plans every provider's part of `state` on `target`.
pub async fn plan(
    target: &Target,
    state: &DesiredState,
    options: &PlanOptions,
) -> Result<LivePlan> {
    plan_with(target, state, options, None).await
}

/// Plans `state`, or with `destroy` the removal of everything the environment owns.
pub(crate) async fn plan_with(
    target: &Target,
    state: &DesiredState,
    options: &PlanOptions,
    destroy: Option<cairn_kube::Destroy>,
) -> Result<LivePlan> {
    let (with_alerts, alert_note) = with_alerts(target, state).await?;
    let kube_options = cairn_kube::PlanOptions {
        force_conflicts: options.force_conflicts,
        adopt: options.adopt,
        accept_cluster: options.accept_cluster,
        kept: cairn_acme::kept_secrets(state).into_iter().collect(),
        destroy,
    };
    let kube = cairn_kube::plan(&target.cluster, &with_alerts, &kube_options).await?;
    let mut plan = kube.plan.clone();
    plan.notes.extend(alert_note);
    // Who reaches whom before (the live objects the plan read) and after; a destroy removes
    // every path, which its deletions already say.
    if destroy.is_none() {
        let live = cairn_plan::netdiff::live_state(&with_alerts, kube.live_objects());
        plan.network = cairn_plan::netdiff::changes(&with_alerts, &live);
    }
    let mut parts: Vec<Box<dyn Part>> = Vec::new();
    let dns = cairn_dns::DnsProvider {
        sandbox_dir: target.sandbox_dir.clone(),
        force: options.force,
    }
    .plan_zone(state)
    .await?;
    let acme = cairn_acme::AcmeProvider {
        secrets: kube.secret_store(&target.cluster, &state.environment.name),
        dns: dns.as_ref().map(|d| Arc::clone(&d.backend)),
        sandbox: target.is_sandbox(),
    };
    parts.extend(dns.map(|d| Box::new(d) as Box<dyn Part>));
    let s3 = cairn_s3::S3Provider {
        sandbox_dir: target.sandbox_dir.clone(),
        destroy: destroy.map(|d| d.delete_data),
    };
    for provider in [&acme as &dyn Provider, &s3] {
        let part = provider.plan(state).await.map_err(provider_error)?;
        parts.extend(part);
    }
    for part in &parts {
        plan.unsupported.retain(|id| id.provider != part.kind());
        plan.changes.extend(part.changes());
        plan.notes.extend(part.notes());
    }
    Ok(LivePlan { plan, kube, parts })
}

/// A provider's error as the engine's, keeping the typed ones typed.
fn provider_error(e: cairn_apply::provider::ProviderError) -> Error {
    let e = match e.downcast::<cairn_acme::CertsError>() {
        Ok(e) => return Error::Certificates(e),
        Err(e) => e,
    };
    match e.downcast::<cairn_s3::BucketsError>() {
        Ok(e) => Error::Buckets(e),
        Err(e) => Error::Provider(e),
    }
}
