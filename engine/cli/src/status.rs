//! `cairn status`: is the environment healthy right now? Rollouts, certificate expiry,
//! backup freshness and the script's smoke checks (the engine's `status`), with a non-zero
//! exit code when anything is stale or unhealthy, so it can run as a scheduled CI check.

use crate::args::{ReadArgs, ScriptArgs};
use crate::live::{connect, evaluate_checked};
use crate::shell::{CliError, EXIT_ERROR, EXIT_OK, Io};

/// `cairn status`.
pub fn status(io: &mut Io<'_>, script: &ScriptArgs, live: &ReadArgs) -> Result<i32, CliError> {
    let Some(eval) = evaluate_checked(io, script)? else {
        return Ok(EXIT_ERROR);
    };
    let rt = cairn_engine::target::runtime()?;
    let items = rt.block_on(async {
        let target = connect(io, &live.target, live.json, &eval.state.environment).await?;
        let result = cairn_engine::status::status(&target, &eval.state).await;
        target.close().await?;
        Ok::<_, CliError>(result?)
    })?;
    let healthy = !items.iter().any(|i| i.health.bad());
    if live.json {
        crate::shell::json_line(io, &cairn_engine::status::document(&items))?;
    } else {
        out!(
            io,
            "{}",
            cairn_engine::status::text(&eval.state.environment.name, &items)
        )?;
    }
    Ok(if healthy { EXIT_OK } else { EXIT_ERROR })
}
