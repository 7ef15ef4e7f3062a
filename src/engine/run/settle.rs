//! What becomes of an attempt once its command ended: landed, failed (a
//! retry when the failure is transient), in conflict, in review, or
//! interrupted with its work kept; each one a state change.

use anyhow::Result;

use super::{Done, Observer, TaskOutcome};
use crate::agent::Class;
use crate::engine::agents::{self, AttemptEnd};
use crate::engine::tasks::{self, Finish, Landed};
use crate::engine::workspace;
use crate::git::Repo;
use crate::process::{self, Exit};
use crate::state::{self, names, store, transition, Snapshot, TaskStatus};

/// How an attempt's command ended, with the agent it ran with, when its
/// failure may be retried: the command itself failed (not its commit, a
/// tampering check or a forged plan).
pub(super) fn attempt_end(
    snap: &Snapshot,
    done: &Done,
    forged: bool,
) -> Option<(AttemptEnd, Option<String>)> {
    let ran = done.result.as_ref().ok()?;
    if forged || !ran.tampered.is_empty() {
        return None;
    }
    // A kind agent's own account decides, by its table (crate::agent::report).
    if let Some(class) = ran.report.as_ref().and_then(|r| r.class.clone()) {
        let agent = done.agent.clone();
        match class {
            Class::Success if ran.finished.exit.success() => return None,
            Class::Success => {}
            Class::UsageLimit(why) => return Some((AttemptEnd::UsageLimit(why), agent)),
            Class::Transient(why) => return Some((AttemptEnd::Transient(why), agent)),
            Class::Fatal(why) => return Some((AttemptEnd::Failure(why), agent)),
        }
    }
    if ran.finished.exit.success() {
        return None;
    }
    let (_, task) = snap.plan.task(&done.id)?;
    let policy = snap.plan.retry_policy(task, done.agent.as_deref());
    let (exit, log) = (&ran.finished.exit, &ran.finished.log);
    if agents::usage_limited(&snap.plan, done.agent.as_deref(), exit, log) {
        let why = format!("{} (usage limit)", exit.describe());
        return Some((AttemptEnd::UsageLimit(why), done.agent.clone()));
    }
    let end = agents::classify(exit, log, policy.on.as_ref());
    Some((end, done.agent.clone()))
}

/// Lands a finished task or records its failure (one state commit).
pub(super) fn settle(
    repo: &Repo,
    plan: &str,
    done: Done,
    observer: &dyn Observer,
) -> Result<(String, TaskOutcome)> {
    let id = done.id;
    let mut verdict = None;
    let (finished, head) = match done.result {
        Ok(ran) if !ran.tampered.is_empty() => {
            let why = format!(
                "tampered with the repository outside its worktree: {}",
                ran.tampered.join("; ")
            );
            return failed(repo, plan, id, why, &ran.finished);
        }
        // Its agent says it did not do the task (its work, if any, is
        // committed on its branch and stays there).
        Ok(ran) if agent_failure(&ran).is_some() => {
            let why = agent_failure(&ran).unwrap_or_default();
            return failed(repo, plan, id, why, &ran.finished);
        }
        Ok(ran) => {
            verdict = ran.verdict;
            (ran.finished, ran.head)
        }
        Err(e) => (
            process::Finished {
                exit: Exit::NotStarted(e),
                seconds: 0.0,
                log: Vec::new(),
            },
            None,
        ),
    };
    let worktree = done
        .worktree
        .unwrap_or_else(|| workspace::task_worktree(repo, plan, &id));
    // Stopped before its work was committed (a task's git killed by the
    // same Ctrl-C counts too): back to pending. Committed work still lands.
    let stop = match &finished.exit {
        Exit::Stopped(stop) => Some(*stop),
        _ => process::stop_requested().filter(|_| !matches!(head, Some(Ok(_)))),
    };
    if let Some(stop) = stop {
        return interrupted(repo, plan, id, stop.describe(), &finished);
    }
    if let Some(Err(reason)) = &head {
        return failed(repo, plan, id, reason.clone(), &finished);
    }
    if let Some(Ok(head)) = head {
        let now = store::load(repo, plan)?;
        let review = now
            .plan
            .task(&id)
            .and_then(|(_, t)| now.plan.task_review(t))
            .cloned();
        match (&review, verdict) {
            (Some(r), _) if r.is_manual() => {
                crate::engine::review::to_review(repo, plan, &id, head, &finished, "manual")?;
                return Ok((id, TaskOutcome::Review { head }));
            }
            (_, Some(v)) if !v.approve => {
                let mut log = finished.log.clone();
                log.extend_from_slice(b"\n--- review ---\n");
                log.extend_from_slice(&v.log);
                let (reason, log) = crate::engine::review::record_rejection(
                    repo,
                    plan,
                    &id,
                    Some(head),
                    &v.reviewer,
                    &v.comments,
                    Some((log, finished.seconds)),
                )?;
                return Ok((id, TaskOutcome::Failed { reason, log }));
            }
            (_, Some(v)) => {
                crate::engine::review::record_approval(repo, plan, &id, &v.reviewer, &v.comments)?;
            }
            _ => {}
        }
        let handoff = workspace::read_handoff_note(&workspace::handoff_file(repo, plan, &id));
        let outcome = format!(
            "The task's command exited 0 after {}.",
            crate::render::duration(finished.seconds)
        );
        // Lets the next run finish parking the worktree if we die between
        // landing and parking (a worktree done by hand is never moved).
        let marker = workspace::parking_marker(repo, plan, &id);
        workspace::touch(&marker);
        let result = tasks::land_committed(
            repo,
            plan,
            &id,
            head,
            Finish {
                message: &format!("{id}: work of git-orch task"),
                handoff,
                log: Some(finished.log.clone()),
                seconds: Some(finished.seconds),
                outcome: &outcome,
            },
        );
        if !matches!(result, Ok((Landed::Done { .. }, _))) {
            let _ = std::fs::remove_file(&marker);
        }
        if let Ok((_, after)) = &result {
            for note in &after.repairs {
                observer.repaired(note);
            }
        }
        return match result {
            Ok((Landed::Done { commit, .. }, _)) => {
                crate::failpoint!("task-landed");
                let _ = workspace::park_clean(repo, plan, &worktree);
                let _ = std::fs::remove_file(&marker);
                Ok((
                    id,
                    TaskOutcome::Landed {
                        commit,
                        seconds: finished.seconds,
                    },
                ))
            }
            Ok((Landed::Conflict { files }, _)) => Ok((id, TaskOutcome::Conflict { files })),
            Ok((Landed::OutOfScope { paths }, snap)) => Ok((
                id.clone(),
                TaskOutcome::Failed {
                    reason: format!(
                        "{}: {}",
                        crate::engine::recover::OUT_OF_SCOPE,
                        paths.join(", ")
                    ),
                    log: snap.task(&id)?.log,
                },
            )),
            Err(e) => failed(repo, plan, id, format!("{e:#}"), &finished),
        };
    }
    let reason = finished.exit.describe();
    failed(repo, plan, id, reason, &finished)
}

/// Why a kind agent's own report says its attempt failed, if it does.
fn agent_failure(ran: &super::Ran) -> Option<String> {
    match ran.report.as_ref()?.class.as_ref()? {
        Class::Success => None,
        Class::Transient(w) | Class::UsageLimit(w) | Class::Fatal(w) => Some(w.clone()),
    }
}

/// Returns a task this run stopped to pending, its work preserved first and
/// the attempt's log kept, with the reason (`interrupted (SIGINT)`) on it:
/// `resume` (or `run`) runs it again.
pub(super) fn interrupted(
    repo: &Repo,
    plan: &str,
    id: String,
    reason: String,
    finished: &process::Finished,
) -> Result<(String, TaskOutcome)> {
    let work = store::load(repo, plan)?.state.work.oid();
    let tag = tasks::preserve_tag(&format!("interrupted-{id}"));
    let kept = tasks::preserve_task(repo, plan, &id, &tag, work)?;
    store::transact(repo, plan, |snap, change| {
        if snap.task_status(&id)? != TaskStatus::Running {
            return Ok(());
        }
        let t = change.task(&id)?;
        let attempt = t.attempts.max(1);
        let path = state::layout::task_log(&id, attempt);
        let t = transition::interrupt(&t, reason.clone(), Some(path.clone()))
            .map_err(|w| w.about(&id))?;
        change.put_task(&id, t);
        change.file(path.clone(), finished.log.clone());
        change.event = Some(state::Event::TaskInterrupted {
            task: id.clone(),
            attempt,
            reason: reason.clone(),
            log: Some(path),
            at: state::now(),
        });
        Ok(())
    })?;
    let _ = std::fs::remove_file(workspace::parking_marker(repo, plan, &id));
    // All kept above: the worktree goes back to the pool and a pending
    // task has no branch.
    // Only the worktree git-orch made for it: one a person added on the
    // branch is theirs, and so is the branch under it.
    let branch = names::task_branch(plan, &id);
    if let Some(path) = tasks::own_worktree_on_branch(repo, plan, &id)? {
        let _ = repo.task_git(&path, &["reset", "-q", "--hard"]);
        let _ = repo.task_git(&path, &["clean", "-q", "-fd"]);
        let _ = workspace::park(repo, plan, &path);
    }
    if tasks::own_worktree_on_branch(repo, plan, &id)?.is_none()
        && tasks::Held::of(repo, plan)?.by(&id).is_none()
    {
        if let Some(head) = repo.ref_target(&branch)? {
            let _ = repo.cas_delete(&branch, head);
        }
    }
    Ok((id, TaskOutcome::Interrupted { reason, kept }))
}

/// Fails a task that ran while the plan was forged, whatever its command
/// did; its work stays in its worktree and branch.
pub(super) fn fail_forger(
    repo: &Repo,
    plan: &str,
    done: Done,
    why: String,
) -> Result<(String, TaskOutcome)> {
    fail_done(repo, plan, done, format!("tampered with git-orch: {why}"))
}

/// Fails a task for `why` whatever its command did (a forged plan, a usage
/// limit that does not reset: [`super::parking::Parking::TooOften`]); its
/// work stays in its worktree and branch.
pub(super) fn fail_done(
    repo: &Repo,
    plan: &str,
    done: Done,
    why: String,
) -> Result<(String, TaskOutcome)> {
    let finished = match done.result {
        Ok(ran) => ran.finished,
        Err(e) => process::Finished {
            exit: Exit::NotStarted(e),
            seconds: 0.0,
            log: Vec::new(),
        },
    };
    failed(repo, plan, done.id, why, &finished)
}

/// Records a task's failure (with its log) and reports it.
pub(super) fn failed(
    repo: &Repo,
    plan: &str,
    id: String,
    reason: String,
    finished: &process::Finished,
) -> Result<(String, TaskOutcome)> {
    record_failure(repo, plan, &id, &reason, finished)?;
    let log = Some(log_path(repo, plan, &id)?);
    Ok((id, TaskOutcome::Failed { reason, log }))
}

pub(super) fn log_path(repo: &Repo, plan: &str, id: &str) -> Result<String> {
    Ok(store::load(repo, plan)?.task(id)?.log.unwrap_or_default())
}

pub(super) fn record_failure(
    repo: &Repo,
    plan: &str,
    id: &str,
    reason: &str,
    finished: &process::Finished,
) -> Result<()> {
    store::transact(repo, plan, |snap, change| {
        if snap.task_status(id)? != TaskStatus::Running {
            return Ok(());
        }
        let t = change.task(id)?;
        let attempt = t.attempts.max(1);
        let path = state::layout::task_log(id, attempt);
        let t = transition::fail(
            &t,
            reason.to_string(),
            None,
            state::now(),
            Some(finished.seconds),
            Some(path.clone()),
        )
        .map_err(|w| w.about(id))?;
        change.put_task(id, t);
        change.file(path.clone(), finished.log.clone());
        change.event = Some(state::Event::TaskFailed {
            task: id.to_string(),
            attempt,
            reason: reason.to_string(),
            scope: Vec::new(),
            log: Some(path),
            at: state::now(),
        });
        Ok(())
    })?;
    Ok(())
}
