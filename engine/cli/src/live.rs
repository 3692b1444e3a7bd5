//! `plan` and `apply`: the commands that talk to live systems.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cairn_kube::{ApplyOptions, Cluster, Event, KubePlan, PlanOptions};
use cairn_plan::alerts::{AlertFormat, RouteFormat, RuleFormat, with_alert_objects};
use cairn_plan::plan::{Action, Change, Plan};

use crate::{EXIT_CHANGES, EXIT_ERROR, EXIT_OK, EXIT_PROTECTED, Io, ScriptArgs, report, show};

/// Where and how to plan or apply.
#[derive(clap::Args, Debug, Clone)]
pub struct LiveArgs {
    /// Use the embedded Kubernetes API emulator, with state kept under .cairn/ in the working
    /// directory, instead of a real cluster
    #[arg(long)]
    pub sandbox: bool,
    /// The kubeconfig file (default: KUBECONFIG, then ~/.kube/config)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: the script's kube_context(...), then the current one)
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Print the plan as JSON (the same as `--format json`)
    #[arg(long)]
    pub json: bool,
    /// Output format of the plan: human, json, or markdown (a pull-request comment)
    #[arg(long, value_enum, default_value = "human")]
    pub format: PlanFormat,
    /// Take over fields another field manager owns (server-side apply force)
    #[arg(long)]
    pub force_conflicts: bool,
    /// Take over declared objects that exist without cairn's labels (made with kubectl or
    /// another tool), as `env.adopt(kind, name)` does for one
    #[arg(long)]
    pub adopt: bool,
    /// Plan and apply on a cluster other than the one the environment's inventory names (a
    /// restore from backup onto a new cluster)
    #[arg(long)]
    pub accept_cluster: bool,
    /// Allow deleting more than 30 % of a DNS zone's records, and taking over records another
    /// owner created
    #[arg(long)]
    pub force: bool,
}

/// How a plan is printed.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFormat {
    /// For people at a terminal.
    Human,
    /// The versioned JSON document (`docs/plan-schema.json`).
    Json,
    /// A Markdown summary for pull-request comments.
    Markdown,
}

/// Options of `apply` only.
#[derive(clap::Args, Debug, Clone)]
pub struct ApplyArgs {
    /// Apply without asking for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// How long one step may take to become ready, in seconds
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
    /// How long to wait for another apply of the same environment to finish, in seconds
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub lock_timeout: u64,
    /// How many requests to the cluster may be in flight at once; a step waiting for a
    /// rollout holds none, and a 429 from the server is waited out and sent again
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,
}

/// The directory of the sandbox's state.
pub const SANDBOX_DIR: &str = ".cairn/sandbox";

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// A connected target, and the sandbox behind it if any.
pub(crate) struct Target {
    pub(crate) cluster: Cluster,
    sandbox: Option<cairn_sandbox::Sandbox>,
    /// The sandbox's locks, held until the command ends (dropping the files unlocks them).
    _locks: Vec<std::fs::File>,
}

pub(crate) async fn connect(
    io: &mut Io<'_>,
    live: &LiveArgs,
    env: &cairn_model::EnvironmentMeta,
) -> Result<Target, String> {
    let script_context = env.kube_context.as_deref();
    let pinned_at = env.kube_context_at.as_ref();
    if live.sandbox {
        let paths = crate::sandbox::paths(&io.cwd);
        crate::sandbox::private_dirs(&paths)?;
        // One sandbox command at a time: its zone and buckets are files too.
        let commands = crate::sandbox::lock(
            io,
            &paths.commands_lock,
            "another cairn command uses the sandbox",
        )?;
        // A sandbox started with `cairn sandbox up` owns the state: talk to it.
        if crate::sandbox::running(&paths).is_some() {
            let cluster = Cluster::connect(Some(&paths.kubeconfig), Some("sandbox"))
                .await
                .map_err(|e| e.to_string())?;
            return Ok(Target {
                cluster,
                sandbox: None,
                _locks: vec![commands],
            });
        }
        let state =
            crate::sandbox::lock(io, &paths.state_lock, "the background sandbox is starting")?;
        let dir = paths.dir.clone();
        let config = cairn_sandbox::SandboxConfig {
            state_file: Some(dir.join("state.json")),
            ..cairn_sandbox::SandboxConfig::default()
        };
        let sandbox = cairn_sandbox::Sandbox::start(config)
            .await
            .map_err(|e| format!("cannot start the sandbox: {e}"))?;
        let cluster = Cluster::from_kubeconfig_yaml(&sandbox.kubeconfig_yaml("sandbox"), "sandbox")
            .await
            .map_err(|e| e.to_string())?;
        return Ok(Target {
            cluster,
            sandbox: Some(sandbox),
            _locks: vec![commands, state],
        });
    }
    let path = live.kubeconfig.clone().or_else(|| {
        io.vars
            .get("KUBECONFIG")
            .and_then(|k| k.split(':').find(|p| !p.is_empty()))
            .map(PathBuf::from)
    });
    if let (Some(asked), Some(pinned)) = (live.context.as_deref(), script_context)
        && asked != pinned
    {
        let at = pinned_at
            .map(|s| format!(" ({}:{})", s.file, s.line))
            .unwrap_or_default();
        let contexts = Cluster::contexts(path.as_deref()).join(", ");
        return Err(format!(
            "the script pins cluster context {pinned}{at}, and --context asks for {asked}: refusing to plan or apply this environment on another cluster; contexts in the kubeconfig: {contexts}"
        ));
    }
    let context = live.context.as_deref().or(script_context);
    let cluster = Cluster::connect(path.as_deref(), context)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Target {
        cluster,
        sandbox: None,
        _locks: Vec::new(),
    })
}

pub(crate) async fn close(target: Target) -> Result<(), String> {
    if let Some(sandbox) = target.sandbox {
        sandbox
            .shutdown()
            .await
            .map_err(|e| format!("cannot save the sandbox's state: {e}"))?;
    }
    Ok(())
}

/// Evaluates and checks the script; prints diagnostics; `None` when there are errors.
pub(crate) fn evaluate_checked(
    io: &mut Io<'_>,
    script: &ScriptArgs,
) -> Result<Option<cairn_stdlib::Evaluation>, String> {
    let eval = crate::evaluate(io, script)?;
    let diagnostics = crate::check_diagnostics(&eval);
    if !diagnostics.is_empty() {
        let _ = write!(
            io.err,
            "{}",
            report::render(&diagnostics, &eval.sources, io.color)
        );
    }
    if diagnostics.iter().any(cairn_model::Diagnostic::is_error) {
        return Ok(None);
    }
    Ok(Some(eval))
}

/// Everything a plan found, per provider, and the combined printable plan.
pub(crate) struct LivePlan {
    pub(crate) plan: Plan,
    pub(crate) kube: KubePlan,
    pub(crate) dns: Option<crate::dns::DnsPart>,
    pub(crate) certs: Option<crate::certs::CertPart>,
    pub(crate) buckets: Option<crate::s3::Buckets>,
}

pub(crate) async fn make_plan(
    io: &Io<'_>,
    target: &Target,
    eval: &cairn_stdlib::Evaluation,
    live: &LiveArgs,
) -> Result<LivePlan, String> {
    let options = PlanOptions {
        force_conflicts: live.force_conflicts,
        adopt: live.adopt,
        accept_cluster: live.accept_cluster,
    };
    // Alert rules become a PrometheusRule when the cluster runs the Prometheus operator,
    // otherwise a ConfigMap; their routing an Alertmanager configuration.
    let has_alerts = eval
        .state
        .resources
        .iter()
        .any(|r| r.id.provider == cairn_model::Provider::Alerts);
    let mut alert_note = None;
    let state = if has_alerts {
        let operator = target
            .cluster
            .serves("monitoring.coreos.com/v1")
            .await
            .map_err(|e| e.to_string())?;
        let format = if operator {
            RuleFormat::PrometheusOperator
        } else {
            RuleFormat::ConfigMap
        };
        alert_note = Some(if operator {
            "alerts: the cluster serves monitoring.coreos.com/v1: rules as a PrometheusRule"
        } else {
            "alerts: no Prometheus operator in the cluster: rules as a ConfigMap holding a Prometheus rules file"
        });
        // Routing: an AlertmanagerConfig where the operator serves v1alpha1, else a Secret.
        let routes = match target
            .cluster
            .serves("monitoring.coreos.com/v1alpha1")
            .await
        {
            Ok(true) => RouteFormat::AlertmanagerConfig,
            Ok(false) => RouteFormat::Secret,
            Err(e) => return Err(e.to_string()),
        };
        with_alert_objects(
            &eval.state,
            AlertFormat {
                rules: format,
                routes,
            },
        )
    } else {
        eval.state.clone()
    };
    let kube = cairn_kube::plan(&target.cluster, &state, &options)
        .await
        .map_err(|e| e.to_string())?;
    let sandbox_dir = live.sandbox.then(|| io.cwd.join(SANDBOX_DIR));
    let dns = crate::dns::plan(&eval.state, sandbox_dir.as_deref(), live.force).await?;
    let mut plan = kube.plan.clone();
    plan.notes.extend(alert_note.map(str::to_owned));
    if let Some(part) = &dns {
        plan.unsupported
            .retain(|id| id.provider != cairn_model::Provider::Dns);
        let changed = crate::dns::changes(part);
        let changed_ids: std::collections::BTreeSet<String> = changed
            .iter()
            .map(|c| c.id.to_string().to_ascii_lowercase())
            .collect();
        for r in eval
            .state
            .resources
            .iter()
            .filter(|r| r.id.provider == cairn_model::Provider::Dns)
        {
            if !changed_ids.contains(&r.id.to_string().to_ascii_lowercase()) {
                plan.changes.push(Change {
                    id: r.id.clone(),
                    action: Action::NoOp,
                    fields: Vec::new(),
                    reason: None,
                    holds_data: false,
                    help: None,
                    server_message: None,
                    declared_at: None,
                });
            }
        }
        plan.changes.extend(changed);
        plan.notes.push(format!("DNS: {}", part.backend.describe()));
        plan.notes
            .extend(part.plan.warnings.iter().map(|w| format!("DNS: {w}")));
    }
    let certs = crate::certs::plan(
        &eval.state,
        &kube,
        dns.as_ref().map(|d| d.backend.clone()),
        live.sandbox,
    )?;
    if let Some(part) = &certs {
        plan.unsupported
            .retain(|id| id.provider != cairn_model::Provider::Acme);
        plan.changes.extend(crate::certs::changes(part));
        plan.notes.extend(crate::certs::notes(part));
        if live.sandbox {
            plan.notes.push(format!(
                "certificates: {} stands in for the ACME issuer",
                cairn_acme::LOCAL_CA_DESCRIPTION
            ));
        }
    }
    let buckets = crate::s3::plan(&eval.state, sandbox_dir.as_deref()).await?;
    if let Some(b) = &buckets {
        plan.unsupported
            .retain(|id| id.provider != cairn_model::Provider::S3);
        plan.changes.extend(crate::s3::changes(b));
        if live.sandbox {
            plan.notes.push(
                "buckets: an in-memory S3 stands in (kept under .cairn/sandbox/s3.json)".to_owned(),
            );
        }
    }
    Ok(LivePlan {
        plan,
        kube,
        dns,
        certs,
        buckets,
    })
}

pub(crate) fn print_plan(io: &mut Io<'_>, plan: &Plan, live: &LiveArgs) {
    let format = if live.json {
        PlanFormat::Json
    } else {
        live.format
    };
    match format {
        PlanFormat::Json => {
            let doc = serde_json::json!({
                "format_version": 1,
                "plan": plan,
                "summary": plan.summary(),
                "has_changes": plan.has_changes(),
                "deletes_data": plan.protected_deletions().next().is_some(),
            });
            let _ = writeln!(
                io.out,
                "{}",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            );
        }
        PlanFormat::Markdown => {
            let _ = write!(io.out, "{}", show::plan_markdown(plan));
        }
        PlanFormat::Human => {
            let _ = write!(io.out, "{}", show::plan(plan));
        }
    }
}

/// `cairn plan`: exit 0 when nothing would change, 2 when something would, 3 when it would
/// delete data the script allowed to delete, 1 on error. With `out`, also saves the plan for
/// `cairn apply FILE`.
pub fn plan(
    io: &mut Io<'_>,
    script: &ScriptArgs,
    live: &LiveArgs,
    out: Option<&std::path::Path>,
) -> Result<i32, String> {
    let Some(eval) = evaluate_checked(io, script)? else {
        return Ok(EXIT_ERROR);
    };
    let rt = runtime()?;
    rt.block_on(async {
        let target = connect(io, live, &eval.state.environment).await?;
        let result = make_plan(io, &target, &eval, live).await;
        close(target).await?;
        let plan = result?;
        print_plan(io, &plan.plan, live);
        if let Some(path) = out.filter(|_| plan.plan.refusals().next().is_some()) {
            let _ = writeln!(
                io.err,
                "The plan was not saved to {}: the server refuses some of its changes.",
                path.display()
            );
        } else if let Some(path) = out {
            let saved = crate::saved::make(script, live, &eval.state, &plan)?;
            crate::saved::write(path, &saved)?;
            let _ = writeln!(
                io.err,
                "Saved this plan to {0}: `cairn apply {0}` applies exactly it, and refuses if anything changes first.",
                path.display()
            );
        }
        Ok(exit_code(&plan.plan))
    })
}

/// Stops an apply whose plan holds refusals, before anything is changed (exit 1): a change
/// the server refuses and cairn will not replace blocks the whole plan, whatever `--yes` or a
/// saved plan says.
pub(crate) fn refused(io: &mut Io<'_>, plan: &Plan) -> Option<i32> {
    let n = plan.refusals().count();
    if n == 0 {
        return None;
    }
    let _ = writeln!(
        io.err,
        "error: not applying anything: {n} change(s) are refused (✗ in the plan); change the script as each says"
    );
    Some(EXIT_ERROR)
}

/// The exit code of a plan.
pub(crate) fn exit_code(plan: &Plan) -> i32 {
    if plan.refusals().next().is_some() {
        EXIT_ERROR
    } else if plan.protected_deletions().next().is_some() {
        EXIT_PROTECTED
    } else if plan.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    }
}

/// Who runs, for people: the CI run and job when there is one, else user@host.
pub(crate) fn lock_owner(io: &Io<'_>) -> String {
    let v = |k: &str| io.vars.get(k).cloned().unwrap_or_default();
    if !v("GITHUB_RUN_ID").is_empty() {
        return format!(
            "{} run {} attempt {} job {} ({})",
            v("GITHUB_REPOSITORY"),
            v("GITHUB_RUN_ID"),
            v("GITHUB_RUN_ATTEMPT"),
            v("GITHUB_JOB"),
            v("GITHUB_ACTOR")
        );
    }
    if !v("CI_JOB_ID").is_empty() {
        return format!("CI job {} ({})", v("CI_JOB_ID"), v("GITLAB_USER_LOGIN"));
    }
    format!("{}@{}", v("USER"), cairn_kube::lock::this_host())
}

/// The lock's holder identity: who runs (the CI run and job, or user@host), then what makes
/// it unique — host, pid and a random run token — so that no two processes (two jobs of one
/// CI run, two applies of one test process) ever share it.
pub(crate) fn lock_identity(io: &Io<'_>) -> String {
    let token: u32 = rand::random();
    format!(
        "{} on {} pid {} run {token:08x}",
        lock_owner(io),
        cairn_kube::lock::this_host(),
        std::process::id()
    )
}

/// `cairn unlock`: removes an environment's lock, after confirmation.
pub fn unlock(
    io: &mut Io<'_>,
    script: &ScriptArgs,
    live: &LiveArgs,
    yes: bool,
) -> Result<i32, String> {
    let Some(eval) = evaluate_checked(io, script)? else {
        return Ok(EXIT_ERROR);
    };
    let rt = runtime()?;
    rt.block_on(async {
        let target = connect(io, live, &eval.state.environment).await?;
        let env = eval.state.environment.name.clone();
        let result = async {
            let holder = cairn_kube::lock::holder(&target.cluster, &env)
                .await
                .map_err(|e| e.to_string())?;
            let Some(h) = holder else {
                let _ = writeln!(io.out, "environment {env} is not locked");
                return Ok(EXIT_OK);
            };
            if !yes {
                let Some(input) = io.input.as_mut() else {
                    let _ = writeln!(
                        io.err,
                        "error: refusing to unlock without a terminal to confirm on; pass --yes"
                    );
                    return Ok(EXIT_ERROR);
                };
                let _ = write!(
                    io.out,
                    "{env} is locked by {} since {}. Remove the lock? Only 'yes' is accepted: ",
                    h.identity, h.since
                );
                let _ = io.out.flush();
                let mut answer = String::new();
                let _ = input.read_line(&mut answer);
                if answer.trim() != "yes" {
                    let _ = writeln!(io.out, "Unlock cancelled.");
                    return Ok(EXIT_ERROR);
                }
            }
            cairn_kube::lock::force_unlock(&target.cluster, &env)
                .await
                .map_err(|e| e.to_string())?;
            let _ = writeln!(io.out, "lock of {env} removed (was held by {})", h.identity);
            Ok(EXIT_OK)
        }
        .await;
        close(target).await?;
        result
    })
}

/// `cairn apply`: plan, confirm, apply, report. `script` may also be a plan file written by
/// `cairn plan -o`: then exactly that plan is applied, without asking again.
pub fn apply(
    io: &mut Io<'_>,
    script: &ScriptArgs,
    live: &LiveArgs,
    args: &ApplyArgs,
) -> Result<i32, String> {
    if let Some(saved) = crate::saved::read(&script.script)? {
        if let Some(conflict) = crate::saved::conflicting_flag(&saved, script, live) {
            return Err(format!(
                "{} was planned with other settings: {conflict}; a plan file is applied where and how it was made (plan again for another target)",
                script.script.display()
            ));
        }
        return apply_saved(io, &script.script, &saved, live, args);
    }
    let Some(eval) = evaluate_checked(io, script)? else {
        return Ok(EXIT_ERROR);
    };
    let rt = runtime()?;
    rt.block_on(async {
        let target = connect(io, live, &eval.state.environment).await?;
        let code = async {
            let env = eval.state.environment.name.clone();
            let Some(held) = take_lock(io, &target, &env, args).await else {
                return Ok(EXIT_ERROR);
            };
            let result = async {
                let plan = make_plan(io, &target, &eval, live).await?;
                print_plan(io, &plan.plan, live);
                if let Some(code) = refused(io, &plan.plan) {
                    return Ok(code);
                }
                if !plan.plan.has_changes() {
                    // Nothing to change (but perhaps the inventory's record of the cluster):
                    // the environment is checked all the same.
                    cairn_kube::finish(&target.cluster, &plan.kube, &Default::default()).await;
                    let timeout = Duration::from_secs(args.timeout);
                    return crate::smoke::after_apply(
                        io,
                        &target.cluster,
                        &eval.state,
                        live.json,
                        timeout,
                    )
                    .await;
                }
                if !confirm(io, &plan.plan, args.yes) {
                    return Ok(EXIT_ERROR);
                }
                let origin = crate::history::Origin::script(&script.script, "");
                run_apply(
                    io,
                    &target,
                    &eval,
                    &plan,
                    live,
                    args,
                    &origin,
                    &held.identity,
                )
                .await
            }
            .await;
            held.release().await;
            result
        }
        .await;
        close(target).await?;
        code
    })
}

/// `cairn apply FILE`: re-evaluates the script the plan was made from, plans again, and
/// applies only when the script, the live state and the plan are what the file says.
fn apply_saved(
    io: &mut Io<'_>,
    path: &std::path::Path,
    saved: &crate::saved::SavedPlan,
    output: &LiveArgs,
    args: &ApplyArgs,
) -> Result<i32, String> {
    let (script, live) = crate::saved::args_of(saved, output);
    let Some(eval) = evaluate_checked(io, &script)? else {
        return Ok(EXIT_ERROR);
    };
    let _ = writeln!(
        io.out,
        "Applying the saved {}.",
        crate::saved::describe(saved)
    );
    let rt = runtime()?;
    rt.block_on(async {
        let target = connect(io, &live, &eval.state.environment).await?;
        let code = async {
            let env = eval.state.environment.name.clone();
            let Some(held) = take_lock(io, &target, &env, args).await else {
                return Ok(EXIT_ERROR);
            };
            let result =
                apply_verified(io, path, saved, &target, &eval, &script, &live, args, &held).await;
            held.release().await;
            result
        }
        .await;
        close(target).await?;
        code
    })
}

/// Plans again under the lock, checks the plan file still describes it, applies.
#[allow(clippy::too_many_arguments)]
async fn apply_verified(
    io: &mut Io<'_>,
    path: &std::path::Path,
    saved: &crate::saved::SavedPlan,
    target: &Target,
    eval: &cairn_stdlib::Evaluation,
    script: &ScriptArgs,
    live: &LiveArgs,
    args: &ApplyArgs,
    held: &Held,
) -> Result<i32, String> {
    let plan = make_plan(io, target, eval, live).await?;
    let problems = crate::saved::verify(saved, &eval.state, &plan);
    if !problems.is_empty() {
        let _ = writeln!(
            io.err,
            "error: refusing to apply {}: it no longer describes what would happen",
            path.display()
        );
        const SHOWN: usize = 12;
        for p in problems.iter().take(SHOWN) {
            let _ = writeln!(io.err, "  - {p}");
        }
        if problems.len() > SHOWN {
            let _ = writeln!(io.err, "  - and {} more", problems.len() - SHOWN);
        }
        let _ = writeln!(
            io.err,
            "  hint: run `cairn plan -o {}` again and review the new plan",
            path.display()
        );
        return Ok(EXIT_ERROR);
    }
    if let Some(code) = refused(io, &plan.plan) {
        return Ok(code);
    }
    if !plan.plan.has_changes() {
        // Perhaps the inventory's record of the cluster changes all the same.
        cairn_kube::finish(&target.cluster, &plan.kube, &Default::default()).await;
        let _ = writeln!(io.out, "Nothing to do: the plan has no changes.");
        let timeout = Duration::from_secs(args.timeout);
        return crate::smoke::after_apply(io, &target.cluster, &eval.state, live.json, timeout)
            .await;
    }
    let origin = crate::history::Origin::script(
        &script.script,
        &format!("saved plan made {}", saved.created),
    );
    run_apply(io, target, eval, &plan, live, args, &origin, &held.identity).await
}

/// Asks for confirmation on the terminal unless `yes`; false when the answer is not `yes` or
/// there is no terminal to ask on.
pub(crate) fn confirm(io: &mut Io<'_>, plan: &Plan, yes: bool) -> bool {
    if yes {
        return true;
    }
    let Some(input) = io.input.as_mut() else {
        let _ = writeln!(
            io.err,
            "error: refusing to apply without a terminal to confirm on; pass --yes to apply anyway"
        );
        return false;
    };
    let _ = write!(
        io.out,
        "\nApply these changes to {} on {}? Only 'yes' is accepted: ",
        plan.environment, plan.target
    );
    let _ = io.out.flush();
    let mut answer = String::new();
    let _ = input.read_line(&mut answer);
    if answer.trim() != "yes" {
        let _ = writeln!(io.out, "Apply cancelled.");
        return false;
    }
    true
}

/// An environment's apply lock, held while an apply plans, confirms, applies and records.
pub(crate) struct Held {
    lock: cairn_kube::lock::Lock,
    /// Who holds it (also the revision's author).
    pub(crate) identity: String,
}

impl Held {
    pub(crate) async fn release(self) {
        self.lock.release().await;
    }
}

/// Takes the environment's lock, saying whom it waits for while it waits; `None` (with the
/// error printed) when the wait runs out. Taken before planning, so what is applied is what
/// was planned under the lock: another apply cannot slip in between.
pub(crate) async fn take_lock(
    io: &mut Io<'_>,
    target: &Target,
    environment: &str,
    args: &ApplyArgs,
) -> Option<Held> {
    let identity = lock_identity(io);
    let (wait_tx, mut wait_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let waiting = move |h: &cairn_kube::lock::Holder| {
        let line = if h.dead {
            format!(
                "the lock was held by {}, a process of this host that no longer runs: taking it",
                h.identity
            )
        } else {
            format!(
                "waiting for the lock held by {} (since {})",
                h.identity, h.since
            )
        };
        let _ = wait_tx.send(line);
    };
    let acquire = cairn_kube::lock::acquire(
        &target.cluster,
        environment,
        &identity,
        Duration::from_secs(30),
        Duration::from_secs(args.lock_timeout),
        &waiting,
    );
    tokio::pin!(acquire);
    let result = loop {
        tokio::select! {
            result = &mut acquire => break result,
            Some(line) = wait_rx.recv() => {
                let _ = writeln!(io.out, "{line}");
            }
        }
    };
    while let Ok(line) = wait_rx.try_recv() {
        let _ = writeln!(io.out, "{line}");
    }
    match result {
        Ok(lock) => Some(Held {
            lock,
            identity: identity.clone(),
        }),
        Err(e) => {
            let _ = writeln!(
                io.err,
                "error: {e}\n  hint: wait for it, or remove a stale lock with `cairn unlock`"
            );
            None
        }
    }
}

/// Runs the plan's steps as one graph, records the revision, reports. The caller holds the
/// environment's lock.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_apply(
    io: &mut Io<'_>,
    target: &Target,
    eval: &cairn_stdlib::Evaluation,
    plan: &LivePlan,
    live: &LiveArgs,
    args: &ApplyArgs,
    origin: &crate::history::Origin,
    identity: &str,
) -> Result<i32, String> {
    if let Some(code) = refused(io, &plan.plan) {
        return Ok(code);
    }
    let _ = writeln!(
        io.out,
        "\nApplying to {} on {}:",
        plan.plan.environment, plan.plan.target
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let emit: Arc<dyn Fn(Event) + Send + Sync> = Arc::new(move |e| {
        let _ = tx.send(e);
    });
    let options = ApplyOptions {
        timeout: Duration::from_secs(args.timeout),
        concurrency: usize::from(args.parallelism),
    };
    target.cluster.set_requests_in_flight(options.concurrency);
    let mut nodes = cairn_kube::nodes(&target.cluster, &plan.kube, &options);
    if let Some(part) = &plan.dns {
        nodes.extend(crate::dns::nodes(part, options.timeout));
    }
    if let Some(part) = &plan.certs {
        nodes.extend(crate::certs::nodes(part, &target.cluster, options.timeout));
    }
    if let Some(b) = &plan.buckets {
        nodes.extend(crate::s3::nodes(b));
    }
    let mut progress = crate::progress::Progress::new(
        if live.json {
            crate::progress::Mode::Json
        } else if io.terminal {
            crate::progress::Mode::Live
        } else {
            crate::progress::Mode::Lines
        },
        nodes
            .iter()
            .filter(|n| n.action != cairn_plan::plan::Action::NoOp)
            .map(|n| (n.id.clone(), n.action))
            .collect(),
    );
    let run = cairn_apply::execute(nodes, options.concurrency, emit);
    tokio::pin!(run);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let report = loop {
        tokio::select! {
            report = &mut run => break report,
            Some(event) = rx.recv() => progress.event(io, &event),
            _ = tick.tick() => progress.tick(io),
        }
    };
    while let Ok(event) = rx.try_recv() {
        progress.event(io, &event);
    }
    progress.finish(io);
    cairn_kube::finish(&target.cluster, &plan.kube, &report).await;
    // The sandbox's zone and buckets are saved; an error is reported after the revision.
    let saved = plan
        .dns
        .as_ref()
        .map_or(Ok(()), crate::dns::save)
        .and(plan.buckets.as_ref().map_or(Ok(()), crate::s3::save));
    let s = plan.plan.summary();
    let summary = format!(
        "{} added, {} changed, {} replaced, {} destroyed",
        s.create, s.update, s.replace, s.delete
    );
    let revision = crate::history::record(
        target,
        eval,
        origin,
        &plan.plan.environment,
        identity,
        &summary,
        report.ok(),
    )
    .await;
    saved?;
    match revision {
        Ok(n) => {
            let _ = writeln!(io.err, "Recorded as revision {n} (see `cairn history`).");
        }
        Err(e) => {
            let _ = writeln!(
                io.err,
                "warning: the apply was not recorded in the history: {e}"
            );
        }
    }
    if report.ok() {
        let _ = writeln!(io.out, "\nApply complete: {summary}.");
        let timeout = Duration::from_secs(args.timeout);
        crate::smoke::after_apply(io, &target.cluster, &eval.state, live.json, timeout).await
    } else {
        let _ = writeln!(
            io.out,
            "\nApply failed: {} step(s) failed, {} not started, {} done.",
            report.failed.len(),
            report.skipped.len(),
            report.done.len()
        );
        Ok(EXIT_ERROR)
    }
}
