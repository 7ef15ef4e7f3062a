//! Whether a running task's runner is still there: the one judgement that
//! `resume` (recovery), `status`, `list` and `--json` share. A claim records
//! the runner's host, pid and process start time; on the claim's own host a
//! dead pid (or a pid recycled by another process) means the runner is
//! gone; on another host nothing can be checked from here.

use crate::state::{Claim, TaskState, TaskStatus};

/// What is known of a running task's runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    Alive,
    Gone,
    OtherHost,
}

impl Runner {
    /// The names `status --json` uses (`git orch watch` reads them).
    pub fn as_str(self) -> &'static str {
        match self {
            Runner::Alive => "alive",
            Runner::Gone => "gone",
            Runner::OtherHost => "other-host",
        }
    }
}

/// The judgement on a claim's process: other host, alive, or gone.
pub fn of_claim(claim: &Claim) -> Runner {
    // A remote claim is judged by its lease (see `engine::remote`): its pid
    // may be another machine's, whatever the host is called.
    let this_machine = |l: &crate::state::Lease| {
        crate::state::sync::active().is_some_and(|r| r.machine == l.machine)
    };
    if claim.lease.as_ref().is_some_and(|l| !this_machine(l)) {
        return Runner::OtherHost;
    }
    if claim.host != crate::process::hostname() {
        Runner::OtherHost
    } else if crate::process::is_alive(claim.pid, claim.proc_start) {
        Runner::Alive
    } else {
        Runner::Gone
    }
}

/// Whether recovery (`git orch resume`, or any `run`) takes this task back:
/// it is running, claimed by a runner (not by hand) of this host that is gone.
pub fn abandoned(t: &TaskState) -> bool {
    t.state() == TaskStatus::Running
        && t.claim()
            .is_some_and(|c| !c.manual && c.lease.is_none() && of_claim(c) == Runner::Gone)
}

/// A running task's runner as `status` shows it, and the command that
/// recovers it when it is gone; `None` for a task that is not running.
///
/// A task started by hand (`git orch task start`) has no runner: the
/// process that claimed it ends as soon as it has made the worktree, and a
/// person works on. Its claim counts as alive while its worktree is there;
/// once the worktree is gone, `git orch task start ID` makes it again on
/// the task's branch (or `git orch task reset ID` gives the task up).
pub fn view(plan: &str, id: &str, t: &TaskState) -> Option<(Runner, Option<String>)> {
    if t.state() != TaskStatus::Running {
        return None;
    }
    let claim = t.claim()?;
    if claim.manual {
        let runner = match of_claim(claim) {
            Runner::OtherHost => Runner::OtherHost,
            _ if t
                .worktree()
                .is_some_and(|w| std::path::Path::new(w).is_dir()) =>
            {
                Runner::Alive
            }
            _ => Runner::Gone,
        };
        let recover =
            (runner == Runner::Gone).then(|| format!("git orch task start {id} --plan {plan}"));
        return Some((runner, recover));
    }
    let runner = of_claim(claim);
    let recover = (runner == Runner::Gone).then(|| format!("git orch resume {plan}"));
    Some((runner, recover))
}
