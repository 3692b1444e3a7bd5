//! `cairn history` and `cairn rollback`: the revisions each apply records in the cluster, and
//! applying an earlier one again (the engine's `history`).

use cairn_engine::history::Origin;
use cairn_engine::target::Target;

use crate::args::{ApplyArgs, LiveArgs, ReadArgs, ScriptArgs};
use crate::live::{checked, confirm, connect, evaluate_checked, make_plan, run_apply, take_lock};
use crate::shell::{CliError, EXIT_ERROR, EXIT_OK, Io};

/// `cairn history`: the environment's revisions, newest first.
pub fn history(io: &mut Io<'_>, script: &ScriptArgs, live: &ReadArgs) -> Result<i32, CliError> {
    let Some(eval) = evaluate_checked(io, script)? else {
        return Ok(EXIT_ERROR);
    };
    let env = eval.state.environment.name.clone();
    let rt = cairn_engine::target::runtime()?;
    let revisions = rt.block_on(async {
        let target = connect(io, &live.target, live.json, &eval.state.environment).await?;
        let result = cairn_engine::history::list(&target, &env).await;
        target.close().await?;
        Ok::<_, CliError>(result?)
    })?;
    if live.json {
        crate::shell::json_line(io, &cairn_engine::history::document(&env, &revisions))?;
        return Ok(EXIT_OK);
    }
    out!(io, "{}", cairn_engine::history::table(&env, &revisions))?;
    Ok(EXIT_OK)
}

/// Evaluates a revision's sources with today's variables and prints their diagnostics; `None`
/// when they have errors.
pub(crate) fn evaluate_revision(
    io: &mut Io<'_>,
    revision: &cairn_engine::history::Revision,
    env_file: Option<&std::path::Path>,
) -> Result<Option<(cairn_stdlib::Evaluation, String)>, CliError> {
    let (eval, evaluated_as) =
        cairn_engine::history::evaluate_revision(revision, env_file, &io.context())?;
    Ok(checked(io, eval)?.map(|eval| (eval, evaluated_as)))
}

/// `cairn rollback --to N`: plans revision N's state against the live one, confirms, applies.
pub fn rollback(
    io: &mut Io<'_>,
    script: &ScriptArgs,
    live: &LiveArgs,
    args: &ApplyArgs,
    to: u32,
) -> Result<i32, CliError> {
    let Some(current) = evaluate_checked(io, script)? else {
        return Ok(EXIT_ERROR);
    };
    let rt = cairn_engine::target::runtime()?;
    rt.block_on(async {
        let target = connect(io, &live.target, live.json, &current.state.environment).await?;
        let code = roll_back(io, &target, &current, script, live, args, to).await;
        target.close().await?;
        code
    })
}

async fn roll_back(
    io: &mut Io<'_>,
    target: &Target,
    current: &cairn_stdlib::Evaluation,
    script: &ScriptArgs,
    live: &LiveArgs,
    args: &ApplyArgs,
    to: u32,
) -> Result<i32, CliError> {
    let env = current.state.environment.name.clone();
    let revisions = cairn_engine::history::list(target, &env).await?;
    let revision = cairn_engine::history::find(&revisions, &env, to)?;
    if revision.outcome != "succeeded" {
        errln!(
            io,
            "warning: revision {to} was an apply that failed; rolling back to it may fail the same way"
        )?;
    }
    let Some((eval, evaluated_as)) = evaluate_revision(io, revision, script.env_file.as_deref())?
    else {
        return Ok(EXIT_ERROR);
    };
    let rolling_back = cairn_engine::history::rolling_back(&env, revision, &eval)?;
    if !live.json {
        outln!(io, "{rolling_back}")?;
    }
    let Some(held) = take_lock(io, target, &env, args, live.json).await? else {
        return Ok(EXIT_ERROR);
    };
    let origin = Origin {
        script: revision.script.clone(),
        evaluated_as,
        note: format!("rollback to revision {to}"),
    };
    let result = async {
        let plan = make_plan(target, &eval, live).await?;
        crate::live::print_apply_plan(io, &plan.plan, live)?;
        if let Some(code) = crate::live::refused(io, &plan.plan)? {
            return Ok(code);
        }
        if !plan.plan.has_changes() {
            cairn_engine::apply::conclude(target, &plan, &Default::default()).await;
            if live.json {
                crate::live::summary_event(io, &plan.plan, &Default::default(), EXIT_OK)?;
            } else {
                outln!(io, "Nothing to do: {env} already matches revision {to}.")?;
            }
            return Ok(EXIT_OK);
        }
        if !confirm(io, &plan.plan, args.yes)? {
            return Ok(EXIT_ERROR);
        }
        run_apply(
            io,
            target,
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
