//! `plan`, `apply` and `unlock`: the commands that talk to live systems. The engine plans and
//! applies; this prints.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cairn_engine::apply::Run;
use cairn_engine::history::{Applied, Origin};
use cairn_engine::lock::Held;
use cairn_engine::plan::LivePlan;
use cairn_engine::saved::{Invocation, SavedPlan};
use cairn_engine::target::Target;
use cairn_engine::{Event, Report};
use cairn_plan::plan::Plan;

use crate::args::{ApplyArgs, LiveArgs, PlanFormat, PlanOutput, ScriptArgs, TargetArgs};
use crate::shell::{CliError, EXIT_CHANGES, EXIT_ERROR, EXIT_OK, EXIT_PROTECTED, Io, with_notices};
use crate::{report, show};

/// The invocation of a plan: script, target, options.
fn invocation(script: &ScriptArgs, live: &LiveArgs) -> Invocation {
    Invocation {
        script: script.script(),
        target: live.target.spec(),
        options: live.options(),
    }
}

/// Evaluates and checks the script; prints diagnostics; `None` when there are errors.
pub(crate) fn evaluate_checked(
    io: &mut Io<'_>,
    script: &ScriptArgs,
) -> Result<Option<cairn_stdlib::Evaluation>, CliError> {
    let eval = cairn_engine::input::evaluate(&script.script(), &io.context())?;
    checked(io, eval)
}

/// Prints an evaluation's diagnostics; `None` when there are errors.
pub(crate) fn checked(
    io: &mut Io<'_>,
    eval: cairn_stdlib::Evaluation,
) -> Result<Option<cairn_stdlib::Evaluation>, CliError> {
    let diagnostics = cairn_engine::input::check_diagnostics(&eval);
    if !diagnostics.is_empty() {
        err!(
            io,
            "{}",
            report::render(&diagnostics, &eval.sources, io.color)
        )?;
    }
    if diagnostics.iter().any(cairn_model::Diagnostic::is_error) {
        return Ok(None);
    }
    Ok(Some(eval))
}

/// Connects to the target, saying what it waits for.
pub(crate) async fn connect(
    io: &mut Io<'_>,
    target: &TargetArgs,
    json: bool,
    env: &cairn_model::EnvironmentMeta,
) -> Result<Target, CliError> {
    let ctx = io.context();
    let spec = target.spec();
    Ok(with_notices(io, json, |notify| async move {
        cairn_engine::target::connect(&ctx, &spec, env, &*notify).await
    })
    .await??)
}

pub(crate) fn print_plan(io: &mut Io<'_>, plan: &Plan, live: &LiveArgs) -> Result<(), CliError> {
    let format = if live.json {
        PlanFormat::Json
    } else {
        live.format.unwrap_or(PlanFormat::Human)
    };
    match format {
        PlanFormat::Json => {
            crate::shell::json_line(io, &cairn_engine::plan::document(plan))?;
        }
        PlanFormat::Markdown => {
            out!(io, "{}", cairn_engine::plan::markdown(plan))?;
        }
        PlanFormat::Html => {} // `plan` writes the report
        PlanFormat::Human => {
            out!(io, "{}", show::plan(plan))?;
        }
    }
    Ok(())
}

/// The plan an apply is about to carry out: for people, or under `--json` the first JSON line
/// (`{"event": "plan", "plan": …}`, the document `plan --json` prints).
pub(crate) fn print_apply_plan(
    io: &mut Io<'_>,
    plan: &Plan,
    live: &LiveArgs,
) -> Result<(), CliError> {
    if !live.json {
        return print_plan(io, plan, live);
    }
    let event = serde_json::json!({ "event": "plan", "plan": cairn_engine::plan::document(plan) });
    crate::shell::json_line(io, &event)
}

/// The last JSON line of `apply --json`: whether it succeeded, the plan's counts, the steps.
pub(crate) fn summary_event(
    io: &mut Io<'_>,
    plan: &Plan,
    report: &Report,
    code: i32,
) -> Result<(), CliError> {
    let event = serde_json::json!({
        "event": "summary",
        "ok": code == EXIT_OK,
        "exit_code": code,
        "plan": plan.summary(),
        "done": report.done.len(),
        "failed": report.failed.len(),
        "skipped": report.skipped.len(),
    });
    crate::shell::json_line(io, &event)
}

/// An apply that stops before running anything (refused, stale, not confirmed): under
/// `--json` its summary is the last line all the same.
pub(crate) fn stopped(
    io: &mut Io<'_>,
    plan: &Plan,
    live: &LiveArgs,
    code: i32,
) -> Result<i32, CliError> {
    if live.json {
        summary_event(io, plan, &Report::default(), code)?;
    }
    Ok(code)
}

/// Plans on a connected target.
pub(crate) async fn make_plan(
    target: &Target,
    eval: &cairn_stdlib::Evaluation,
    live: &LiveArgs,
) -> Result<LivePlan, CliError> {
    let mut plan = cairn_engine::plan::plan(target, &eval.state, &live.options()).await?;
    let sandbox = target.sandbox_dir.is_some();
    let notes = cairn_engine::smoke::sandbox_notes(&eval.state, sandbox);
    plan.plan.notes.extend(notes);
    Ok(plan)
}

/// `cairn plan`: exit 0 when nothing would change, 2 when something would, 3 when it would
/// delete data the script allowed to delete, 1 on error. With `-o`, also saves the plan for
/// `cairn apply FILE` (the report with `--format html`); with `--report`, writes the report.
pub fn plan(
    io: &mut Io<'_>,
    script: &ScriptArgs,
    live: &LiveArgs,
    output: &PlanOutput,
) -> Result<i32, CliError> {
    let Some(eval) = evaluate_checked(io, script)? else {
        return Ok(EXIT_ERROR);
    };
    let rt = cairn_engine::target::runtime()?;
    rt.block_on(async {
        let target = connect(io, &live.target, live.json, &eval.state.environment).await?;
        let result = make_plan(&target, &eval, live).await;
        target.close().await?;
        let plan = result?;
        let html = live.format == Some(PlanFormat::Html);
        let (out, report) = (output.out.as_deref(), output.report.as_deref());
        for to in [report.map(Some), html.then_some(out)].into_iter().flatten() {
            write_report(io, &cairn_engine::report::of_plan(&eval, &script.script, &plan), to)?;
        }
        print_plan(io, &plan.plan, live)?;
        let out = out.filter(|_| !html);
        if let Some(path) = out.filter(|_| plan.plan.refusals().next().is_some()) {
            errln!(io,
                "The plan was not saved to {}: the server refuses some of its changes.",
                path.display()
            )?;
        } else if let Some(path) = out {
            let saved = cairn_engine::saved::make(&invocation(script, live), &eval.state, &plan)?;
            cairn_engine::saved::write(path, &saved)?;
            errln!(io,
                "Saved this plan to {0}: `cairn apply {0}` applies exactly it, and refuses if anything changes first.",
                path.display()
            )?;
        }
        Ok(exit_code(&plan.plan))
    })
}

/// The HTML report to `path`, or to standard output.
fn write_report(io: &mut Io<'_>, html: &str, path: Option<&Path>) -> Result<(), CliError> {
    let Some(path) = path else {
        return out!(io, "{html}");
    };
    cairn_engine::report::write(path, html)?;
    errln!(io, "Wrote the plan's report to {}.", path.display())
}

/// Stops an apply whose plan holds refusals, before anything is changed (exit 1): a change
/// the server refuses and cairn will not replace blocks the whole plan, whatever `--yes` or a
/// saved plan says.
pub(crate) fn refused(io: &mut Io<'_>, plan: &Plan) -> Result<Option<i32>, CliError> {
    let Some(n) = cairn_engine::apply::refusals(plan) else {
        return Ok(None);
    };
    errln!(
        io,
        "error: not applying anything: {n} change(s) are refused (✗ in the plan); change the script as each says"
    )?;
    Ok(Some(EXIT_ERROR))
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

/// Asks on the terminal; false when the answer is not `yes` or there is no terminal (then
/// `no_terminal` is printed as the error).
pub(crate) fn ask(
    io: &mut Io<'_>,
    question: &str,
    no_terminal: &str,
) -> Result<Option<bool>, CliError> {
    let Some(input) = io.input.as_mut() else {
        errln!(io, "error: {no_terminal}")?;
        return Ok(None);
    };
    out!(io, "{question} Only 'yes' is accepted: ")?;
    io.out.flush().map_err(CliError::Output)?;
    let mut answer = String::new();
    let _ = input.read_line(&mut answer);
    Ok(Some(answer.trim() == "yes"))
}

/// `cairn unlock`: removes an environment's lock, after confirmation.
pub fn unlock(
    io: &mut Io<'_>,
    script: &ScriptArgs,
    target: &TargetArgs,
    yes: bool,
) -> Result<i32, CliError> {
    let Some(eval) = evaluate_checked(io, script)? else {
        return Ok(EXIT_ERROR);
    };
    let rt = cairn_engine::target::runtime()?;
    rt.block_on(async {
        let target = connect(io, target, false, &eval.state.environment).await?;
        let env = eval.state.environment.name.clone();
        let result = async {
            let Some(h) = cairn_engine::lock::holder(&target, &env).await? else {
                outln!(io, "environment {env} is not locked")?;
                return Ok(EXIT_OK);
            };
            if !yes {
                let question = format!(
                    "{env} is locked by {} since {}. Remove the lock?",
                    h.identity, h.since
                );
                match ask(
                    io,
                    &question,
                    "refusing to unlock without a terminal to confirm on; pass --yes",
                )? {
                    None => return Ok(EXIT_ERROR),
                    Some(false) => {
                        outln!(io, "Unlock cancelled.")?;
                        return Ok(EXIT_ERROR);
                    }
                    Some(true) => {}
                }
            }
            cairn_engine::lock::force_unlock(&target, &env).await?;
            outln!(io, "lock of {env} removed (was held by {})", h.identity)?;
            Ok(EXIT_OK)
        }
        .await;
        target.close().await?;
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
) -> Result<i32, CliError> {
    if let Some(saved) = cairn_engine::saved::read(&script.script)? {
        if let Some(conflict) =
            cairn_engine::saved::conflicting_flag(&saved, &invocation(script, live))
        {
            return Err(cairn_engine::Error::PlannedOtherwise {
                path: script.script.clone(),
                conflict,
            }
            .into());
        }
        return apply_saved(io, &script.script, &saved, live, args);
    }
    let Some(eval) = evaluate_checked(io, script)? else {
        return Ok(EXIT_ERROR);
    };
    let rt = cairn_engine::target::runtime()?;
    rt.block_on(async {
        let target = connect(io, &live.target, live.json, &eval.state.environment).await?;
        let code = async {
            let env = eval.state.environment.name.clone();
            let Some(held) = take_lock(io, &target, &env, args, live.json).await? else {
                return Ok(EXIT_ERROR);
            };
            let origin = Origin::script(&script.script, "");
            let result = plan_and_apply(io, &target, &eval, live, args, &origin, &held).await;
            held.release().await;
            result
        }
        .await;
        target.close().await?;
        code
    })
}

/// Under the lock: plans, prints, confirms, applies.
async fn plan_and_apply(
    io: &mut Io<'_>,
    target: &Target,
    eval: &cairn_stdlib::Evaluation,
    live: &LiveArgs,
    args: &ApplyArgs,
    origin: &Origin,
    held: &Held,
) -> Result<i32, CliError> {
    let plan = make_plan(target, eval, live).await?;
    print_apply_plan(io, &plan.plan, live)?;
    if let Some(code) = refused(io, &plan.plan)? {
        return stopped(io, &plan.plan, live, code);
    }
    if !plan.plan.has_changes() {
        // Nothing to change (but perhaps the inventory's record of the cluster): the
        // environment is checked all the same, its health, then its smoke checks.
        return unchanged(io, target, eval, &plan, live, args).await;
    }
    if !confirm(io, &plan.plan, args.yes)? {
        return stopped(io, &plan.plan, live, EXIT_ERROR);
    }
    run_apply(io, target, eval, &plan, live, args, origin, &held.identity).await
}

/// `cairn apply FILE`: re-evaluates the script the plan was made from, plans again, and
/// applies only when the script, the live state and the plan are what the file says.
fn apply_saved(
    io: &mut Io<'_>,
    path: &std::path::Path,
    saved: &SavedPlan,
    output: &LiveArgs,
    args: &ApplyArgs,
) -> Result<i32, CliError> {
    let inv = cairn_engine::saved::invocation_of(saved);
    let live = LiveArgs::of_saved(&inv, output);
    let script = ScriptArgs::of(&inv.script);
    let Some(eval) = evaluate_checked(io, &script)? else {
        return Ok(EXIT_ERROR);
    };
    let described = cairn_engine::saved::describe(saved);
    if live.json {
        let event = serde_json::json!({ "event": "saved_plan", "description": described });
        crate::shell::json_line(io, &event)?;
    } else {
        outln!(io, "Applying the saved {described}.")?;
    }
    let rt = cairn_engine::target::runtime()?;
    rt.block_on(async {
        let target = connect(io, &live.target, live.json, &eval.state.environment).await?;
        let code = async {
            let env = eval.state.environment.name.clone();
            let Some(held) = take_lock(io, &target, &env, args, live.json).await? else {
                return Ok(EXIT_ERROR);
            };
            let verified = Verified {
                path,
                saved,
                script: &script,
                live: &live,
            };
            let result = apply_verified(io, &verified, &target, &eval, args, &held).await;
            held.release().await;
            result
        }
        .await;
        target.close().await?;
        code
    })
}

/// A plan file and how it was made.
struct Verified<'a> {
    path: &'a std::path::Path,
    saved: &'a SavedPlan,
    script: &'a ScriptArgs,
    live: &'a LiveArgs,
}

/// Prints why a plan file no longer describes what apply would do.
fn print_stale(
    io: &mut Io<'_>,
    path: &std::path::Path,
    problems: &[String],
) -> Result<(), CliError> {
    errln!(
        io,
        "error: refusing to apply {}: it no longer describes what would happen",
        path.display()
    )?;
    const SHOWN: usize = 12;
    for p in problems.iter().take(SHOWN) {
        errln!(io, "  - {p}")?;
    }
    if problems.len() > SHOWN {
        errln!(io, "  - and {} more", problems.len() - SHOWN)?;
    }
    errln!(
        io,
        "  hint: run `cairn plan -o {}` again and review the new plan",
        path.display()
    )?;
    Ok(())
}

/// Plans again under the lock, checks the plan file still describes it, applies.
async fn apply_verified(
    io: &mut Io<'_>,
    v: &Verified<'_>,
    target: &Target,
    eval: &cairn_stdlib::Evaluation,
    args: &ApplyArgs,
    held: &Held,
) -> Result<i32, CliError> {
    let plan = make_plan(target, eval, v.live).await?;
    let problems = cairn_engine::saved::verify(v.saved, &eval.state, &plan);
    if !problems.is_empty() {
        print_stale(io, v.path, &problems)?;
        return stopped(io, &plan.plan, v.live, EXIT_ERROR);
    }
    if let Some(code) = refused(io, &plan.plan)? {
        return stopped(io, &plan.plan, v.live, code);
    }
    if !plan.plan.has_changes() {
        // Perhaps the inventory's record of the cluster changes all the same.
        if !v.live.json {
            outln!(io, "Nothing to do: the plan has no changes.")?;
        }
        return unchanged(io, target, eval, &plan, v.live, args).await;
    }
    let origin = Origin::script(
        &v.script.script,
        &format!("saved plan made {}", v.saved.created),
    );
    run_apply(
        io,
        target,
        eval,
        &plan,
        v.live,
        args,
        &origin,
        &held.identity,
    )
    .await
}

/// Asks for confirmation on the terminal unless `yes`; false when the answer is not `yes` or
/// there is no terminal to ask on.
pub(crate) fn confirm(io: &mut Io<'_>, plan: &Plan, yes: bool) -> Result<bool, CliError> {
    if yes {
        return Ok(true);
    }
    let question = format!(
        "\nApply these changes to {} on {}?",
        plan.environment, plan.target
    );
    match ask(
        io,
        &question,
        "refusing to apply without a terminal to confirm on; pass --yes to apply anyway",
    )? {
        None => Ok(false),
        Some(false) => {
            outln!(io, "Apply cancelled.")?;
            Ok(false)
        }
        Some(true) => Ok(true),
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
    json: bool,
) -> Result<Option<Held>, CliError> {
    let identity = cairn_engine::lock::identity(&io.vars);
    let timeout = Duration::from_secs(args.lock_timeout);
    let id = &identity;
    let result = with_notices(io, json, |notify| async move {
        cairn_engine::lock::take(target, environment, id, timeout, &*notify).await
    })
    .await?;
    match result {
        Ok(held) => Ok(Some(held)),
        Err(e) => {
            errln!(
                io,
                "error: {e}\n  hint: wait for it, or remove a stale lock with `cairn unlock`"
            )?;
            Ok(None)
        }
    }
}

/// Runs the graph, showing progress as it goes.
/// A failed write does not stop the apply: it is returned beside the report.
pub(crate) async fn execute(
    io: &mut Io<'_>,
    run: Run,
    live: &LiveArgs,
) -> (Report, Result<(), CliError>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let emit: Arc<dyn Fn(Event) + Send + Sync> = Arc::new(move |e| {
        let _ = tx.send(e);
    });
    let mode = if live.json {
        crate::progress::Mode::Json
    } else if io.terminal {
        crate::progress::Mode::Live
    } else {
        crate::progress::Mode::Lines
    };
    let mut progress = crate::progress::Progress::new(mode, run.steps());
    let run = run.execute(emit);
    tokio::pin!(run);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut written = Ok(());
    let report = loop {
        tokio::select! {
            report = &mut run => break report,
            Some(event) = rx.recv() => written = written.and_then(|()| progress.event(io, &event)),
            _ = tick.tick() => written = written.and_then(|()| progress.tick(io)),
        }
    };
    while let Ok(event) = rx.try_recv() {
        written = written.and_then(|()| progress.event(io, &event));
    }
    (report, written.and_then(|()| progress.finish(io)))
}

/// An apply with nothing to change: the environment's health, then its smoke checks.
async fn unchanged(
    io: &mut Io<'_>,
    target: &Target,
    eval: &cairn_stdlib::Evaluation,
    plan: &LivePlan,
    live: &LiveArgs,
    args: &ApplyArgs,
) -> Result<i32, CliError> {
    let (ok, report) = healthy(io, target, plan, live, args).await?;
    let code = if ok {
        after_apply(io, target, &eval.state, live.json, args).await?
    } else {
        EXIT_ERROR
    };
    if live.json {
        summary_event(io, &plan.plan, &report, code)?;
    }
    Ok(code)
}

/// With nothing to change: checks that every workload the environment runs is ready (the
/// checks are silent when it is; a failure is explained), then writes the inventory. False
/// when something is not healthy.
async fn healthy(
    io: &mut Io<'_>,
    target: &Target,
    plan: &LivePlan,
    live: &LiveArgs,
    args: &ApplyArgs,
) -> Result<(bool, Report), CliError> {
    let run = cairn_engine::apply::prepare(target, plan, &args.options());
    let (report, written) = execute(io, run, live).await;
    cairn_engine::apply::conclude(target, plan, &report).await;
    written?;
    if !report.ok() && !live.json {
        outln!(
            io,
            "\nApply failed: nothing to change, but {} workload(s) are not healthy.",
            report.failed.len()
        )?;
    }
    Ok((report.ok(), report))
}

/// Runs the plan's steps as one graph, records the revision, reports. The caller holds the
/// environment's lock. A destroy (`origin.is_destroy()`) runs no smoke checks, and one that
/// left nothing removes the environment's earlier revisions.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_apply(
    io: &mut Io<'_>,
    target: &Target,
    eval: &cairn_stdlib::Evaluation,
    plan: &LivePlan,
    live: &LiveArgs,
    args: &ApplyArgs,
    origin: &Origin,
    identity: &str,
) -> Result<i32, CliError> {
    if let Some(code) = refused(io, &plan.plan)? {
        return Ok(code);
    }
    let (env, on) = (&plan.plan.environment, &plan.plan.target);
    let destroy = origin.is_destroy();
    let (verb, summary) = if destroy {
        ("Destroy", cairn_engine::destroy::summary(&plan.plan))
    } else {
        ("Apply", cairn_engine::apply::summary(&plan.plan))
    };
    if !live.json {
        let doing = if destroy { "Destroying" } else { "Applying to" };
        outln!(io, "\n{doing} {env} on {on}:")?;
    }
    let run = cairn_engine::apply::prepare(target, plan, &args.options());
    let (report, written) = execute(io, run, live).await;
    cairn_engine::apply::conclude(target, plan, &report).await;
    // The sandbox's zone and buckets are saved; an error is reported after the revision.
    let saved = cairn_engine::apply::save_twins(plan);
    // The smoke checks run before the revision is recorded: one that fails makes the apply,
    // and its revision, failed.
    let code = if report.ok() {
        if !live.json {
            outln!(io, "\n{verb} complete: {summary}.")?;
        }
        if destroy {
            EXIT_OK
        } else {
            after_apply(io, target, &eval.state, live.json, args).await?
        }
    } else {
        EXIT_ERROR
    };
    let recorded = if destroy {
        format!("destroy: {summary}")
    } else {
        summary
    };
    let applied = Applied {
        author: identity,
        summary: &recorded,
        ok: report.ok() && code == EXIT_OK,
    };
    let revision = cairn_engine::history::record(target, eval, origin, env, &applied).await;
    let complete = destroy && cairn_engine::destroy::complete(&plan.plan, &report);
    let forgotten = match &revision {
        Ok(n) if complete => Some(cairn_engine::destroy::forget_history(target, env, *n).await),
        _ => None,
    };
    saved?;
    written?;
    recorded_line(io, revision, forgotten)?;
    if live.json {
        summary_event(io, &plan.plan, &report, code)?;
    } else if !report.ok() {
        let (f, s, d) = (report.failed.len(), report.skipped.len(), report.done.len());
        outln!(
            io,
            "\n{verb} failed: {f} step(s) failed, {s} not started, {d} done."
        )?;
    }
    Ok(code)
}

/// Says which revision recorded the apply, and how many earlier ones a destroy removed.
fn recorded_line(
    io: &mut Io<'_>,
    revision: cairn_engine::Result<u32>,
    forgotten: Option<cairn_engine::Result<usize>>,
) -> Result<(), CliError> {
    match (revision, forgotten) {
        (Ok(n), None | Some(Ok(0))) => {
            errln!(io, "Recorded as revision {n} (see `cairn history`).")
        }
        (Ok(n), Some(Ok(k))) => errln!(
            io,
            "Recorded as revision {n}; the {k} earlier revision(s) of the environment were removed."
        ),
        (Ok(n), Some(Err(e))) => errln!(
            io,
            "Recorded as revision {n}; warning: its earlier revisions were not removed: {e}"
        ),
        (Err(e), _) => errln!(
            io,
            "warning: the change was not recorded in the history: {e}"
        ),
    }
}

/// After an apply whose steps all succeeded: runs the checks, prints them, and gives the exit
/// code (1 when a check failed).
pub(crate) async fn after_apply(
    io: &mut Io<'_>,
    target: &Target,
    state: &cairn_model::DesiredState,
    json: bool,
    args: &ApplyArgs,
) -> Result<i32, CliError> {
    if cairn_engine::smoke::declared(state).is_empty() {
        return Ok(EXIT_OK);
    }
    if !json {
        outln!(io, "\nSmoke checks:")?;
    }
    let timeout = Duration::from_secs(args.timeout);
    let sandbox = target.sandbox_dir.is_some();
    let outcomes = cairn_engine::smoke::run_all(&target.cluster, state, timeout, sandbox).await;
    for o in &outcomes {
        if json {
            let line = serde_json::json!({ "event": "smoke_check", "smoke_check": o });
            crate::shell::json_line(io, &line)?;
        } else {
            out!(io, "{}", o.human())?;
        }
    }
    let summary = cairn_engine::smoke::summary(&outcomes);
    if outcomes.iter().all(|o| o.ok) {
        if !json {
            outln!(io, "{summary}")?;
        }
        return Ok(EXIT_OK);
    }
    errln!(io, "error: {summary}")?;
    Ok(EXIT_ERROR)
}
