//! The environment's apply lock, taken before planning and held until the revision is
//! recorded, so what is applied is what was planned under the lock.

use std::collections::BTreeMap;
use std::time::Duration;

use cairn_kube::lock::{Holder, Lock};

use crate::error::Result;
use crate::notice::{Notice, Notify};
use crate::target::Target;

/// How long a lock lives without renewal.
const LEASE: Duration = Duration::from_secs(30);

/// Who runs, for people: the CI run and job when there is one, else user@host.
pub fn owner(vars: &BTreeMap<String, String>) -> String {
    let v = |k: &str| vars.get(k).cloned().unwrap_or_default();
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
    let user = Some(v("USER"))
        .filter(|u| !u.is_empty())
        .or_else(user_of_this_process)
        .unwrap_or_else(|| "someone".to_owned());
    format!("{user}@{}", cairn_kube::lock::this_host())
}

/// The name of this process's user when `USER` is unset (a container, a cron job): its uid's
/// entry in `/etc/passwd`, else `uid N`.
fn user_of_this_process() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd.lines().find_map(|l| {
        let mut fields = l.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_owned())
    });
    Some(name.unwrap_or_else(|| format!("uid {uid}")))
}

/// The lock's holder identity: who runs (the CI run and job, or user@host), then what makes
/// it unique — host, pid and a random run token — so that no two processes (two jobs of one
/// CI run, two applies of one test process) ever share it.
pub fn identity(vars: &BTreeMap<String, String>) -> String {
    let token: u32 = rand::random();
    format!(
        "{} on {} pid {} run {token:08x}",
        owner(vars),
        cairn_kube::lock::this_host(),
        std::process::id()
    )
}

/// An environment's apply lock, held while an apply plans, confirms, applies and records.
pub struct Held {
    lock: Lock,
    /// Who holds it (also the revision's author).
    pub identity: String,
}

impl Held {
    /// Gives the lock back.
    pub async fn release(self) {
        self.lock.release().await;
    }
}

fn waiting_line(h: &Holder) -> String {
    if h.dead {
        format!(
            "the lock was held by {}, a process of this host that no longer runs: taking it",
            h.identity
        )
    } else {
        format!(
            "waiting for the lock held by {} (since {})",
            h.identity, h.since
        )
    }
}

/// Takes the environment's lock as `identity`, saying whom it waits for while it waits; an
/// error when the wait runs out.
pub async fn take(
    target: &Target,
    environment: &str,
    identity: &str,
    timeout: Duration,
    notify: &Notify,
) -> Result<Held> {
    let waiting = |h: &Holder| notify(Notice::Lock(waiting_line(h)));
    let lock = cairn_kube::lock::acquire(
        &target.cluster,
        environment,
        identity,
        LEASE,
        timeout,
        &waiting,
    )
    .await?;
    Ok(Held {
        lock,
        identity: identity.to_owned(),
    })
}

/// Who holds the environment's lock, if anyone.
pub async fn holder(target: &Target, environment: &str) -> Result<Option<Holder>> {
    Ok(cairn_kube::lock::holder(&target.cluster, environment).await?)
}

/// Removes the environment's lock, whoever holds it.
pub async fn force_unlock(target: &Target, environment: &str) -> Result<()> {
    cairn_kube::lock::force_unlock(&target.cluster, environment).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_user_the_owner_is_the_uids_name() {
        let owner = owner(&BTreeMap::new());
        let (user, host) = owner.split_once('@').expect("user@host");
        assert!(!user.is_empty() && user != "someone", "{owner}");
        assert_eq!(host, cairn_kube::lock::this_host());
        let given = BTreeMap::from([("USER".to_owned(), "ana".to_owned())]);
        assert!(super::owner(&given).starts_with("ana@"));
    }
}
