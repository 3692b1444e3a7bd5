//! What `apply` shows while it runs: on a terminal, finished steps scroll by above a live
//! block of the steps running and waiting, with their elapsed times; without a terminal, a
//! line per event; with `--json`, one JSON object per event.

use std::collections::BTreeMap;
use std::time::Instant;

use cairn_engine::Event;
use cairn_model::ResourceId;
use cairn_plan::plan::Action;

use crate::shell::{CliError, Io};
use crate::show;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A live view, redrawn in place (a terminal).
    Live,
    /// A line per event (logs, CI).
    Lines,
    /// A JSON object per event.
    Json,
}

enum State {
    Pending,
    Running(Instant),
    Waiting(Instant, String),
    Finished,
}

/// The progress of one apply.
pub struct Progress {
    mode: Mode,
    start: Instant,
    steps: BTreeMap<ResourceId, (Action, State)>,
    /// Lines of the live block currently on screen.
    drawn: usize,
    done: usize,
    failed: usize,
}

impl Progress {
    /// Progress over these steps.
    pub fn new(mode: Mode, steps: Vec<(ResourceId, Action)>) -> Self {
        Self {
            mode,
            start: Instant::now(),
            steps: steps
                .into_iter()
                .map(|(id, a)| (id, (a, State::Pending)))
                .collect(),
            drawn: 0,
            done: 0,
            failed: 0,
        }
    }

    /// Takes in one event.
    pub fn event(&mut self, io: &mut Io<'_>, event: &Event) -> Result<(), CliError> {
        let now = Instant::now();
        let (id, state) = match event {
            Event::Started { id, .. } => (id, State::Running(now)),
            Event::Waiting { id, what } => {
                let since = match self.steps.get(id) {
                    Some((_, State::Running(t) | State::Waiting(t, _))) => *t,
                    _ => now,
                };
                (id, State::Waiting(since, what.clone()))
            }
            Event::Done { id, .. } => {
                self.done += 1;
                (id, State::Finished)
            }
            Event::Failed { id, .. } => {
                self.failed += 1;
                (id, State::Finished)
            }
            Event::Skipped { id, .. } => (id, State::Finished),
            // Kept by the executor; nothing to show.
            Event::Accepted { .. } => return Ok(()),
        };
        if let Some(entry) = self.steps.get_mut(id) {
            entry.1 = state;
        }
        match self.mode {
            Mode::Json => {
                outln!(io, "{}", serde_json::to_string(event).unwrap_or_default())?;
            }
            Mode::Lines => {
                out!(io, "{}", show::event(event))?;
            }
            Mode::Live => {
                // Started and waiting live in the block; the rest scrolls above it.
                let permanent = match event {
                    Event::Started { .. } | Event::Waiting { .. } => None,
                    other => Some(show::event(other)),
                };
                self.redraw(io, permanent.as_deref())?;
            }
        }
        Ok(())
    }

    /// Refreshes elapsed times (live view only).
    pub fn tick(&mut self, io: &mut Io<'_>) -> Result<(), CliError> {
        if self.mode == Mode::Live {
            self.redraw(io, None)?;
        }
        Ok(())
    }

    /// Clears the live block at the end.
    pub fn finish(&mut self, io: &mut Io<'_>) -> Result<(), CliError> {
        if self.mode == Mode::Live {
            self.erase(io)?;
            io.out.flush().map_err(CliError::Output)?;
        }
        Ok(())
    }

    fn erase(&mut self, io: &mut Io<'_>) -> Result<(), CliError> {
        if self.drawn > 0 {
            out!(io, "\x1b[{}A\r\x1b[J", self.drawn)?;
            self.drawn = 0;
        }
        Ok(())
    }

    fn redraw(&mut self, io: &mut Io<'_>, permanent: Option<&str>) -> Result<(), CliError> {
        self.erase(io)?;
        if let Some(text) = permanent {
            out!(io, "{text}")?;
        }
        let block = self.block();
        out!(io, "{block}")?;
        self.drawn = block.lines().count();
        io.out.flush().map_err(CliError::Output)?;
        Ok(())
    }

    /// The live block: a status line, then each running or waiting step.
    fn block(&self) -> String {
        let total = self.steps.len();
        let mut running = Vec::new();
        let mut pending = 0;
        for (id, (action, state)) in &self.steps {
            match state {
                State::Pending => pending += 1,
                State::Running(t) => running.push(format!(
                    "  {} {id} {:>5.1}s\n",
                    action.symbol(),
                    t.elapsed().as_secs_f64()
                )),
                State::Waiting(t, what) => running.push(format!(
                    "  … {id}: waiting for {what} {:>5.1}s\n",
                    t.elapsed().as_secs_f64()
                )),
                State::Finished => {}
            }
        }
        // Keep the block short on a small terminal: the first steps, then a count.
        const SHOWN: usize = 12;
        let more = running.len().saturating_sub(SHOWN);
        running.truncate(SHOWN);
        let mut out = format!(
            "── {}/{total} done{} · {} running · {pending} queued · {:.1}s\n",
            self.done,
            if self.failed > 0 {
                format!(" · {} failed", self.failed)
            } else {
                String::new()
            },
            running.len() + more,
            self.start.elapsed().as_secs_f64()
        );
        out.extend(running);
        if more > 0 {
            out.push_str(&format!("  … and {more} more\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_view_redraws_in_place_and_keeps_finished_steps() {
        let a = ResourceId::kube("ConfigMap", Some("ns"), "a");
        let b = ResourceId::kube("Deployment", Some("ns"), "b");
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut io = Io {
            out: &mut out,
            err: &mut err,
            vars: BTreeMap::new(),
            color: false,
            terminal: true,
            input: None,
            cwd: std::path::PathBuf::new(),
        };
        let mut p = Progress::new(
            Mode::Live,
            vec![(a.clone(), Action::Create), (b.clone(), Action::Update)],
        );
        p.event(
            &mut io,
            &Event::Started {
                id: a.clone(),
                action: Action::Create,
            },
        )
        .expect("written");
        p.event(
            &mut io,
            &Event::Done {
                id: a.clone(),
                action: Action::Create,
                elapsed_ms: 5,
            },
        )
        .expect("written");
        p.event(
            &mut io,
            &Event::Waiting {
                id: b.clone(),
                what: "rollout".into(),
            },
        )
        .expect("written");
        p.finish(&mut io).expect("written");
        let text = String::from_utf8(out).expect("utf-8");
        // The finished step stays, the block is erased each time (cursor up + clear).
        assert!(text.contains("✓ ConfigMap/ns/a created"), "{text}");
        assert!(
            text.contains("Deployment/ns/b: waiting for rollout"),
            "{text}"
        );
        assert!(
            text.contains("── 1/2 done · 1 running · 0 queued"),
            "{text}"
        );
        assert!(text.ends_with("\x1b[J"), "{text:?}");
        assert_eq!(text.matches("\x1b[").count() % 2, 0, "{text:?}");
    }
}
