//! `cairn drift`: what changed outside cairn since its last apply (the engine's `drift`), for
//! people or as JSON.

use cairn_engine::plan::LivePlan;

use crate::args::{ReadArgs, ScriptArgs};
use crate::live::{connect, evaluate_checked};
use crate::shell::{CliError, EXIT_CHANGES, EXIT_ERROR, EXIT_OK, Io};

/// `cairn drift`: exit 0 when nothing drifted, 2 when something did, 1 on error.
pub fn drift(io: &mut Io<'_>, script: &ScriptArgs, live: &ReadArgs) -> Result<i32, CliError> {
    let Some(eval) = evaluate_checked(io, script)? else {
        return Ok(EXIT_ERROR);
    };
    let env = eval.state.environment.name.clone();
    let rt = cairn_engine::target::runtime()?;
    let (plan, baseline) = rt.block_on(async {
        let target = connect(io, &live.target, live.json, &eval.state.environment).await?;
        let result = async {
            let options = cairn_engine::plan::PlanOptions::default();
            let plan = cairn_engine::plan::plan(&target, &eval.state, &options).await?;
            let last = cairn_engine::drift::baseline(&target, &env).await?;
            Ok::<(LivePlan, _), CliError>((plan, last))
        }
        .await;
        target.close().await?;
        result
    })?;
    // The baseline: the last successful revision, evaluated with today's variables. When it
    // no longer evaluates (a variable gone, a plugin moved), the field managers decide.
    let base_state = match &baseline {
        Some(rev) => match crate::history::evaluate_revision(io, rev, script.env_file.as_deref()) {
            Ok(Some((eval, _))) => Some(eval.state),
            Ok(None) | Err(_) => None,
        },
        None => None,
    };
    let found = cairn_engine::drift::classify(&plan, &eval.state, base_state.as_ref());
    let compared_with = cairn_engine::drift::compared_with(baseline.as_ref(), base_state.is_some());
    let target = &plan.plan.target;
    if live.json {
        let doc =
            cairn_engine::drift::document(&env, target, &compared_with, baseline.as_ref(), &found);
        crate::shell::json_line(io, &doc)?;
    } else {
        let text = cairn_engine::drift::text(&env, target, &compared_with, &found);
        out!(io, "{text}")?;
    }
    Ok(if found.drifted.is_empty() && found.added.is_empty() {
        EXIT_OK
    } else {
        EXIT_CHANGES
    })
}
