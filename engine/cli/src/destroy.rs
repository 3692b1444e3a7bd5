//! `cairn destroy`: plan the removal of everything the environment owns, confirm, delete,
//! record. Data is kept unless `--delete-data`, and then each data-holding object the script
//! does not allow to delete is confirmed by typing the environment's name.

use cairn_engine::destroy::DestroyOptions;
use cairn_engine::history::Origin;
use cairn_engine::lock::Held;
use cairn_engine::plan::LivePlan;
use cairn_engine::target::Target;

use crate::args::{ApplyArgs, LiveArgs, ScriptArgs};
use crate::live::{connect, evaluate_checked, exit_code, print_apply_plan, refused, take_lock};
use crate::shell::{CliError, EXIT_ERROR, EXIT_OK, EXIT_PROTECTED, Io};

/// Options of `destroy` only.
#[derive(clap::Args, Debug, Clone)]
pub struct DestroyArgs {
    /// Delete what holds data too: volume claims, buckets with their objects, the namespace
    /// holding them. Each one the script does not allow to delete (env.allow_delete) must be
    /// confirmed by typing the environment's name
    #[arg(long)]
    pub delete_data: bool,
    /// Only show what would be deleted (exit 0 when nothing, 2 when something, 3 when data)
    #[arg(long)]
    pub dry_run: bool,
    /// Destroy only if the environment is past its lifetime (`expires: "7d"` in the script,
    /// counted from its last apply); otherwise say when it expires and exit 0
    #[arg(long)]
    pub expired: bool,
}

/// `cairn destroy`: exit 0 when everything planned was deleted (or nothing was there), 1 on
/// error or when cancelled, 3 when `--delete-data` needs a confirmation no terminal can give.
pub fn destroy(
    io: &mut Io<'_>,
    script: &ScriptArgs,
    live: &LiveArgs,
    args: &ApplyArgs,
    destroy: &DestroyArgs,
) -> Result<i32, CliError> {
    let Some(eval) = evaluate_checked(io, script)? else {
        return Ok(EXIT_ERROR);
    };
    let rt = cairn_engine::target::runtime()?;
    rt.block_on(async {
        let target = connect(io, &live.target, live.json, &eval.state.environment).await?;
        let code = async {
            let env = eval.state.environment.name.clone();
            if destroy.expired && !expired(io, &target, &eval.state).await? {
                return Ok(EXIT_OK);
            }
            let Some(held) = take_lock(io, &target, &env, args, live.json).await? else {
                return Ok(EXIT_ERROR);
            };
            let how = How {
                live,
                args,
                destroy,
                script,
            };
            let result = plan_and_destroy(io, &target, &eval, &how, &held).await;
            held.release().await;
            result
        }
        .await;
        target.close().await?;
        code
    })
}

/// With `--expired`: whether the environment is past its lifetime (saying when it expires
/// when it is not).
async fn expired(
    io: &mut Io<'_>,
    target: &Target,
    state: &cairn_model::DesiredState,
) -> Result<bool, CliError> {
    let expiry = cairn_engine::destroy::expiry(target, state).await?;
    let env = &state.environment.name;
    if expiry.expired() {
        errln!(io, "Environment {env} {}: destroying it.", expiry.text())?;
        return Ok(true);
    }
    outln!(io, "Environment {env} {}: not destroyed.", expiry.text())?;
    Ok(false)
}

struct How<'a> {
    live: &'a LiveArgs,
    args: &'a ApplyArgs,
    destroy: &'a DestroyArgs,
    script: &'a ScriptArgs,
}

/// Under the lock: plans, prints, confirms, deletes, records.
async fn plan_and_destroy(
    io: &mut Io<'_>,
    target: &Target,
    eval: &cairn_stdlib::Evaluation,
    how: &How<'_>,
    held: &Held,
) -> Result<i32, CliError> {
    let options = DestroyOptions {
        delete_data: how.destroy.delete_data,
    };
    let plan =
        cairn_engine::destroy::plan(target, &eval.state, &how.live.options(), options).await?;
    print_apply_plan(io, &plan.plan, how.live)?;
    if let Some(code) = refused(io, &plan.plan)? {
        return crate::live::stopped(io, &plan.plan, how.live, code);
    }
    if !plan.plan.has_changes() {
        if !how.live.json {
            outln!(
                io,
                "\nNothing to destroy: environment {} owns nothing on {}.",
                plan.plan.environment,
                plan.plan.target
            )?;
        }
        return crate::live::stopped(io, &plan.plan, how.live, EXIT_OK);
    }
    if how.destroy.dry_run {
        return crate::live::stopped(io, &plan.plan, how.live, exit_code(&plan.plan));
    }
    if let Some(code) = confirm(io, &plan, eval, how.args.yes)? {
        return crate::live::stopped(io, &plan.plan, how.live, code);
    }
    let origin = Origin::destroy(&how.script.script);
    let (live, args) = (how.live, how.args);
    crate::live::run_apply(io, target, eval, &plan, live, args, &origin, &held.identity).await
}

/// Asks before deleting: the environment's name typed for data the script does not allow to
/// delete, `yes` otherwise. `Some(code)` when the destroy must not go on.
fn confirm(
    io: &mut Io<'_>,
    plan: &LivePlan,
    eval: &cairn_stdlib::Evaluation,
    yes: bool,
) -> Result<Option<i32>, CliError> {
    let env = &plan.plan.environment;
    let unconfirmed = cairn_engine::destroy::unconfirmed(&plan.plan, &eval.state);
    if unconfirmed.is_empty() {
        if yes {
            return Ok(None);
        }
        let question = format!("\nDestroy environment {env} on {}?", plan.plan.target);
        return Ok(match crate::live::ask(io, &question, NO_TERMINAL)? {
            Some(true) => None,
            Some(false) => {
                outln!(io, "Destroy cancelled.")?;
                Some(EXIT_ERROR)
            }
            None => Some(EXIT_ERROR),
        });
    }
    let list: Vec<String> = unconfirmed.iter().map(ToString::to_string).collect();
    if io.input.is_none() {
        errln!(
            io,
            "error: --delete-data would delete {} object(s) holding data that the script does not allow to delete ({}); confirm at a terminal, or allow each with env.allow_delete in the script",
            list.len(),
            list.join(", ")
        )?;
        return Ok(Some(EXIT_PROTECTED));
    }
    out!(
        io,
        "\nThis deletes {} object(s) holding data, for good: {}.\nType the environment's name ({env}) to confirm: ",
        list.len(),
        list.join(", ")
    )?;
    io.out.flush().map_err(CliError::Output)?;
    let mut answer = String::new();
    if let Some(input) = io.input.as_mut() {
        let _ = input.read_line(&mut answer);
    }
    if answer.trim() == env.as_str() {
        return Ok(None);
    }
    outln!(io, "\nDestroy cancelled.")?;
    Ok(Some(EXIT_ERROR))
}

const NO_TERMINAL: &str =
    "refusing to destroy without a terminal to confirm on; pass --yes to destroy anyway";
