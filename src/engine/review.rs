//! Review before landing (issue 11). A task whose plan names a `review`
//! is not landed when its command succeeds: its committed head is shown
//! to its reviewer first. A command reviewer approves by exiting 0; an
//! agent reviewer writes a verdict file (`ORCH_VERDICT_FILE`, one JSON
//! object `{"verdict": "approve"|"reject", "comments": "…"}`); a `"manual"`
//! review puts the task in the `review` state until `git orch task approve`
//! or `task reject`. The landing after an approval lands exactly the
//! reviewed head; a rejection fails the attempt with the comments as its
//! reason, so the next attempt (in the same worktree, while the task has
//! attempts left) reads them in its brief.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use git2::Oid;
use serde::Deserialize;

use super::tasks::{self, Finish, Landed};
use super::workspace;
use crate::error::{refuse, refuse_with_hint};
use crate::git::Repo;
use crate::plan::{Plan, Review, Task};
use crate::process::{self, Job};
use crate::state::{self, store, transition, Event, Snapshot, TaskStatus};

/// How the reason of a rejected attempt begins; the runner retries such a
/// failure like a transient one.
pub const REJECTED: &str = "rejected in review";

/// Whether a failed task's reason is a rejection.
pub fn is_rejection(reason: &str) -> bool {
    reason.starts_with(REJECTED)
}

/// What an automatic reviewer said.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub approve: bool,
    /// `command`, `agent NAME`.
    pub reviewer: String,
    pub comments: String,
    pub log: Vec<u8>,
}

#[derive(Deserialize)]
struct VerdictFile {
    verdict: String,
    #[serde(default)]
    comments: Option<String>,
}

/// Where an agent reviewer of `task` writes its verdict.
pub fn verdict_file(repo: &Repo, plan: &str, task: &str) -> PathBuf {
    workspace::task_files_dir(repo, plan).join(format!("{task}@verdict.json"))
}

/// Runs the command or agent reviewer of `task` in its worktree on the
/// committed `head`; `None` for a manual review (a person decides).
/// `env` is the task's environment; the reviewer also gets
/// `ORCH_REVIEW_BASE`, `ORCH_REVIEW_HEAD` and `ORCH_VERDICT_FILE`.
#[allow(clippy::too_many_arguments)]
pub fn run_reviewer(
    repo: &Repo,
    plan: &Plan,
    plan_name: &str,
    task: &Task,
    worktree: &Path,
    mut env: Vec<(String, String)>,
    base: Oid,
    head: Oid,
    on_line: &mut dyn FnMut(&str),
) -> Option<Verdict> {
    let review = plan.task_review(task)?;
    let mut kind = crate::plan::AgentKind::Command;
    let (command, reviewer, extra, timeout) = match review {
        Review::Word(_) => return None,
        Review::Run { run } => (
            run.clone(),
            review.describe(),
            Vec::new(),
            plan.task_timeout(task),
        ),
        Review::Agent { agent } => {
            let profile = plan.agents.get(agent)?;
            kind = profile.kind;
            let brief = review_brief_file(repo, plan_name, &task.id);
            let dir = workspace::agent_dir(repo, plan_name, &format!("{}@review", task.id));
            let inv = crate::agent::invocation(
                agent,
                profile,
                &crate::agent::Context {
                    worktree,
                    brief: &brief,
                    dir: &dir,
                    files: &task.files,
                    purpose: crate::agent::Purpose::Review,
                    resume: None,
                },
            );
            let prepared = inv.prepare().and_then(|_| {
                if kind.is_command() {
                    return Ok(());
                }
                let text = review_brief(repo, plan_name, task, base, head);
                std::fs::write(&brief, text).map_err(anyhow::Error::from)
            });
            if let Err(e) = prepared {
                return Some(Verdict {
                    approve: false,
                    reviewer: review.describe(),
                    comments: format!("the review cannot start: {e:#}"),
                    log: Vec::new(),
                });
            }
            (
                inv.line(),
                review.describe(),
                inv.env,
                plan.attempt_timeout(task, Some(agent))
                    .or((!kind.is_command()).then_some(crate::engine::agents::KIND_TIMEOUT)),
            )
        }
    };
    let file = verdict_file(repo, plan_name, &task.id);
    let _ = std::fs::remove_file(&file);
    let mut all = extra;
    all.append(&mut env);
    all.push(("ORCH_REVIEW_BASE".into(), base.to_string()));
    all.push(("ORCH_REVIEW_HEAD".into(), head.to_string()));
    all.push(("ORCH_VERDICT_FILE".into(), file.display().to_string()));
    // A sandboxed task's reviewer runs in a sandbox too, reading: what it
    // runs may be a file the task rewrote.
    let sandbox = match crate::sandbox::for_task(
        repo,
        plan,
        plan_name,
        task,
        worktree,
        vec![file.clone()],
        crate::sandbox::Access::Read,
    ) {
        Ok(sandbox) => sandbox,
        Err(e) => {
            return Some(Verdict {
                approve: false,
                reviewer,
                comments: format!("the review cannot run in its sandbox: {e:#}"),
                log: Vec::new(),
            })
        }
    };
    if let Some(s) = &sandbox {
        all.extend(s.env.iter().cloned());
    }
    let job = Job {
        command: &command,
        dir: worktree,
        env: all,
        timeout,
        pgid_file: Some(workspace::pgid_file(repo, plan_name, &task.id)),
        contain: true,
        wrap: sandbox.as_ref().map(|s| s.args.clone()),
    };
    let finished = process::run(&job, |line| on_line(&format!("review: {line}")));
    if let Some(s) = sandbox {
        // A reading sandbox adopts nothing: finishing only tidies it.
        let _ = s.finish(repo);
    }
    let tail = |log: &[u8]| {
        let text = String::from_utf8_lossy(log);
        let lines: Vec<&str> = text.lines().rev().take(20).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    };
    let (approve, comments) = match review {
        Review::Run { .. } if finished.exit.success() => (true, String::new()),
        Review::Run { .. } => (
            false,
            format!(
                "the review command {}:\n{}",
                finished.exit.describe(),
                tail(&finished.log)
            ),
        ),
        // A kind agent says its verdict in its own last message, unless it
        // wrote the verdict file.
        _ if !kind.is_command() && !file.exists() => {
            let report = crate::agent::report::read(kind, &finished.log, &finished.exit);
            let said = report
                .last_message
                .as_deref()
                .and_then(crate::agent::report::verdict);
            match (&report.class, said) {
                (Some(crate::agent::Class::Success), Some((approve, comments)))
                    if finished.exit.success() =>
                {
                    (approve, comments)
                }
                (Some(crate::agent::Class::Success), None) if finished.exit.success() => (
                    false,
                    format!(
                        "the reviewer ended without a `{} approve` or `{} reject` line",
                        crate::agent::report::VERDICT_LINE,
                        crate::agent::report::VERDICT_LINE
                    ),
                ),
                (Some(c), _) if *c != crate::agent::Class::Success => {
                    let why = match c {
                        crate::agent::Class::Transient(w)
                        | crate::agent::Class::UsageLimit(w)
                        | crate::agent::Class::Fatal(w) => w.as_str(),
                        crate::agent::Class::Success => "",
                    };
                    (false, format!("the reviewer failed: {why}"))
                }
                _ => (
                    false,
                    format!(
                        "the reviewer {}:\n{}",
                        finished.exit.describe(),
                        tail(&finished.log)
                    ),
                ),
            }
        }
        _ => match std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice::<VerdictFile>(&b).ok())
        {
            Some(v) if v.verdict == "approve" && finished.exit.success() => {
                (true, v.comments.unwrap_or_default())
            }
            Some(v) if v.verdict == "reject" => (false, v.comments.unwrap_or_default()),
            _ => (
                false,
                format!(
                    "the reviewer {} and wrote no verdict of `approve` or `reject` to ORCH_VERDICT_FILE",
                    finished.exit.describe()
                ),
            ),
        },
    };
    let _ = std::fs::remove_file(&file);
    Some(Verdict {
        approve,
        reviewer,
        comments,
        log: finished.log,
    })
}

/// Where a kind reviewer's brief is written.
fn review_brief_file(repo: &Repo, plan: &str, task: &str) -> PathBuf {
    workspace::task_files_dir(repo, plan).join(format!("{task}@review.md"))
}

/// At most this much of a change is put in a review brief.
const REVIEW_DIFF_LIMIT: usize = 256 * 1024;

/// A kind reviewer's brief: the task's own brief, the change, and the
/// verdict line to end with.
fn review_brief(repo: &Repo, plan: &str, task: &Task, base: Oid, head: Oid) -> String {
    let brief =
        std::fs::read_to_string(workspace::task_file(repo, plan, &task.id)).unwrap_or_default();
    let diff = repo
        .git(&[
            "diff",
            "--no-color",
            "--no-ext-diff",
            &base.to_string(),
            &head.to_string(),
        ])
        .unwrap_or_default();
    let mut diff = diff;
    if diff.len() > REVIEW_DIFF_LIMIT {
        let mut cut = REVIEW_DIFF_LIMIT;
        while !diff.is_char_boundary(cut) {
            cut -= 1;
        }
        diff.truncate(cut);
        diff += "\n[… the rest of the change is cut]\n";
    }
    format!(
        "# Review of task {id}\n\nYou review the change another agent made for task {id}. Read it, and the files in this worktree as you need; change nothing.\n\nEnd your answer with exactly one line `{v} approve` or `{v} reject`, followed on the same line by your comments (what is wrong and what to change, for a rejection).\n\n## The change ({base}..{head})\n\n```diff\n{diff}\n```\n\n## The task's brief\n\n{brief}\n",
        id = task.id,
        v = crate::agent::report::VERDICT_LINE,
        base = crate::git::short(base),
        head = crate::git::short(head),
    )
}

/// The reason a rejected attempt fails with.
fn rejection_reason(reviewer: &str, comments: &str) -> String {
    let comments = comments.trim();
    if comments.is_empty() {
        format!("{REJECTED} ({reviewer}), no comments")
    } else {
        format!("{REJECTED} ({reviewer}): {comments}")
    }
}

/// Running → review: the task's committed `head` waits for a person.
pub fn to_review(
    repo: &Repo,
    plan: &str,
    id: &str,
    head: Oid,
    finished: &process::Finished,
    reviewer: &str,
) -> Result<()> {
    store::transact(repo, plan, |snap, change| {
        if snap.task_status(id)? != TaskStatus::Running {
            return Ok(());
        }
        let t = change.task(id)?;
        let attempt = t.attempts.max(1);
        let path = state::layout::task_log(id, attempt);
        let f = transition::Finished {
            head: head.into(),
            at: state::now(),
            spent: Some(finished.seconds),
            log: Some(path.clone()),
        };
        let t = transition::review(&t, f, reviewer.to_string()).map_err(|w| w.about(id))?;
        change.put_task(id, t);
        change.file(path, finished.log.clone());
        change.event = Some(Event::TaskReview {
            task: id.to_string(),
            attempt,
            head: head.to_string(),
            reviewer: reviewer.to_string(),
            at: state::now(),
        });
        Ok(())
    })?;
    Ok(())
}

/// Records an approval (one state commit; the landing is the next one).
pub fn record_approval(
    repo: &Repo,
    plan: &str,
    id: &str,
    reviewer: &str,
    comments: &str,
) -> Result<()> {
    store::transact(repo, plan, |snap, change| {
        let t = snap.task(id)?;
        change.event = Some(Event::TaskApproved {
            task: id.to_string(),
            attempt: t.attempts,
            reviewer: reviewer.to_string(),
            comments: (!comments.trim().is_empty()).then(|| comments.to_string()),
            at: state::now(),
        });
        Ok(())
    })?;
    Ok(())
}

/// Records a rejection of a running task (an automatic reviewer's) or of
/// one in review (a person's): failed, its head and worktree kept, the
/// comments its reason. `log` is the attempt's log with the review's.
/// Returns the reason and the log's path.
pub fn record_rejection(
    repo: &Repo,
    plan: &str,
    id: &str,
    head: Option<Oid>,
    reviewer: &str,
    comments: &str,
    log: Option<(Vec<u8>, f64)>,
) -> Result<(String, Option<String>)> {
    let reason = rejection_reason(reviewer, comments);
    let ((), snap) = store::transact(repo, plan, |snap, change| {
        let t = change.task(id)?;
        let attempt = t.attempts.max(1);
        let at = state::now();
        let next = match snap.task_status(id)? {
            TaskStatus::Review => transition::reject(&t, reason.clone(), at),
            // An attempt's, or work done by hand (running, a conflict
            // resolved, a failed task fixed): failed with its head.
            _ => {
                let path = state::layout::task_log(id, attempt);
                let (bytes, seconds) = log.clone().unwrap_or_default();
                change.file(path.clone(), bytes);
                transition::fail(
                    &t,
                    reason.clone(),
                    head.map(Into::into),
                    at,
                    Some(seconds),
                    Some(path),
                )
            }
        }
        .map_err(|w| w.about(id))?;
        change.put_task(id, next);
        change.event = Some(Event::TaskRejected {
            task: id.to_string(),
            attempt,
            reviewer: reviewer.to_string(),
            comments: comments.to_string(),
            at,
        });
        Ok(())
    })?;
    Ok((reason, snap.task(id)?.log))
}

/// A task that must be in review for `task approve` / `task reject`.
fn in_review(snap: &Snapshot, id: &str, verb: &str) -> Result<(String, Oid)> {
    tasks::find_task(snap, id)?;
    let t = snap.task(id)?;
    let state::Now::Review { attempt, reviewer } = &t.now else {
        return Err(refuse_with_hint(
            format!(
                "task `{id}` is {}, not in review: only a task waiting in review can be {verb}",
                t.state().as_str()
            ),
            format!("see `git orch status {}`", snap.plan_name),
        ));
    };
    let head = attempt
        .head
        .ok_or_else(|| refuse(format!("task `{id}` is in review without a head")))?;
    Ok((reviewer.clone(), head.oid()))
}

/// `git orch task approve ID`: lands exactly the reviewed head.
pub fn approve(repo: &Repo, plan: &str, id: &str) -> Result<(Landed, Snapshot)> {
    let snap = store::load(repo, plan)?;
    tasks::refuse_if_finished(&snap)?;
    let (_, head) = in_review(&snap, id, "approved")?;
    let worktree = snap.task(id)?.worktree().map(PathBuf::from);
    record_approval(repo, plan, id, "manual", "")?;
    let handoff = workspace::read_handoff_note(&workspace::handoff_file(repo, plan, id));
    let result = tasks::land_committed(
        repo,
        plan,
        id,
        head,
        Finish {
            message: &format!("{id}: work of git-orch task"),
            handoff,
            log: None,
            seconds: None,
            outcome: "The task's command exited 0; its work was approved in review.",
        },
    )?;
    // Only the worktree git-orch made for the task goes back to the pool,
    // not whatever path the state names.
    let own = workspace::task_worktree(repo, plan, id);
    if let (Landed::Done { .. }, Some(wt)) = (&result.0, worktree) {
        if wt == own {
            let _ = workspace::park(repo, plan, &wt);
        }
    }
    Ok(result)
}

/// What `task reject` did.
pub struct Rejected {
    pub reason: String,
    /// Attempts it has had, and may have in all.
    pub attempts: u32,
    pub allowed: u32,
}

/// `git orch task reject ID -m COMMENTS`: the attempt fails with the
/// comments; the next `git orch run` retries it in its worktree while it
/// has attempts left (`retries` + 1).
pub fn reject(repo: &Repo, plan: &str, id: &str, comments: &str) -> Result<Rejected> {
    let snap = store::load(repo, plan)?;
    tasks::refuse_if_finished(&snap)?;
    if comments.trim().is_empty() {
        return Err(refuse_with_hint(
            "a rejection needs comments for the task's agent",
            format!("`git orch task reject {id} -m \"what to change\"`"),
        ));
    }
    in_review(&snap, id, "rejected")?;
    let (reason, _) = record_rejection(repo, plan, id, None, "manual", comments, None)?;
    let snap = store::load(repo, plan)?;
    let t = snap.task(id)?;
    Ok(Rejected {
        reason,
        attempts: t.attempts,
        allowed: attempts_allowed(&snap, id, t.agent.as_deref()),
    })
}

/// How many attempts a task may have in all: `retries` + 1.
pub fn attempts_allowed(snap: &Snapshot, id: &str, agent: Option<&str>) -> u32 {
    snap.plan
        .task(id)
        .map_or(1, |(_, t)| snap.plan.retry_policy(t, agent).retries + 1)
}

/// Failed tasks whose last attempt was rejected and that have attempts
/// left: the runner retries them in their worktrees.
pub fn rejected_to_retry(snap: &Snapshot) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for id in &snap.state.active {
        let t = snap.task(id)?;
        if t.state() != TaskStatus::Failed || !t.reason().is_some_and(is_rejection) {
            continue;
        }
        if t.attempts < attempts_allowed(snap, id, t.agent.as_deref()) {
            out.push(id.clone());
        }
    }
    Ok(out)
}

/// How `task done` ended.
pub enum ByHand {
    /// Landed (no review, or its reviewer approved), in conflict, or out
    /// of its scope.
    Landed(Landed),
    /// Committed at `head`, waiting for a person's `task approve`.
    InReview { head: Oid, reviewer: String },
    /// Its reviewer rejected `head`: failed, the comments its reason.
    Rejected { head: Oid, reason: String },
}

/// `task done` (and MCP `task_done`): the task's work is committed in its
/// worktree, then reviewed as `run` reviews an attempt before it lands, so
/// a review the plan asks for is never skipped by finishing a task by hand.
/// A `"manual"` review leaves it waiting in review (`task approve` lands
/// it); a command or agent reviewer runs here, on the committed head, and
/// a rejection fails the task instead of landing it. Without a review, it
/// lands at once.
pub fn done_by_hand(
    repo: &Repo,
    plan: &str,
    id: &str,
    worktree: &Path,
    keep_out: &[String],
    finish: Finish<'_>,
    on_line: &mut dyn FnMut(&str),
) -> Result<(ByHand, Snapshot)> {
    let snap = store::load(repo, plan)?;
    let (phase, task) = tasks::find_task(&snap, id)?;
    let Some(review) = snap.plan.task_review(task).cloned() else {
        let head = tasks::commit_by_hand(repo, worktree, finish.message, keep_out)?;
        let (landed, after) = tasks::land_by_hand(repo, plan, id, head, finish)?;
        return Ok((ByHand::Landed(landed), after));
    };
    // The reviewer is one of the plan's commands: refused, with nothing
    // committed, unless the plan is trusted here.
    if !review.is_manual() {
        crate::trust::require(repo, &snap)?;
    }
    let head = tasks::commit_by_hand(repo, worktree, finish.message, keep_out)?;
    // The note given now is the note read when the task is approved.
    if let Some(note) = &finish.handoff {
        let file = workspace::handoff_file(repo, plan, id);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
        }
        std::fs::write(&file, note)
            .with_context(|| format!("cannot write `{}`", file.display()))?;
    }
    let t = snap.task(id)?;
    let base = t.base().unwrap_or(snap.state.work).oid();
    let env = super::run::task_env(repo, plan, &phase.id, id, worktree, base);
    let verdict = if review.is_manual() {
        None
    } else {
        run_reviewer(
            repo, &snap.plan, plan, task, worktree, env, base, head, on_line,
        )
    };
    match verdict {
        // A person decides (also when the reviewer cannot be found).
        None => {
            let reviewer = review.describe();
            let after = review_by_hand(repo, plan, id, head, &reviewer)?;
            Ok((ByHand::InReview { head, reviewer }, after))
        }
        Some(v) if !v.approve => {
            // The attempt's log (a failed or conflicting task has one)
            // with the review's after it.
            let attempt_log = state::layout::task_log(id, t.attempts.max(1));
            let mut log = match t.log.as_deref() {
                Some(path) if path == attempt_log => {
                    repo.read_path(snap.tree, path)?.unwrap_or_default()
                }
                _ => Vec::new(),
            };
            log.extend_from_slice(b"\n--- review (task done by hand) ---\n");
            log.extend_from_slice(&v.log);
            let (reason, _) = record_rejection(
                repo,
                plan,
                id,
                Some(head),
                &v.reviewer,
                &v.comments,
                Some((log, 0.0)),
            )?;
            let after = store::load(repo, plan)?;
            Ok((ByHand::Rejected { head, reason }, after))
        }
        Some(v) => {
            record_approval(repo, plan, id, &v.reviewer, &v.comments)?;
            let (landed, after) = tasks::land_by_hand(repo, plan, id, head, finish)?;
            Ok((ByHand::Landed(landed), after))
        }
    }
}

/// Running, conflict or failed (by hand) → review: `head` waits for
/// `reviewer`.
fn review_by_hand(
    repo: &Repo,
    plan: &str,
    id: &str,
    head: Oid,
    reviewer: &str,
) -> Result<Snapshot> {
    let ((), after) = store::transact(repo, plan, |snap, change| {
        let status = snap.task_status(id)?;
        if !matches!(
            status,
            TaskStatus::Running | TaskStatus::Conflict | TaskStatus::Failed
        ) {
            return Err(refuse(format!(
                "task `{id}` is {}, not running",
                status.as_str()
            )));
        }
        let t = change.task(id)?;
        super::remote::refuse_unless_ours(&t, id)?;
        let at = state::now();
        let f = transition::Finished {
            head: head.into(),
            at,
            spent: t.started_at().map(|s| at - s),
            log: None,
        };
        let attempt = t.attempts.max(1);
        let t = transition::review(&t, f, reviewer.to_string()).map_err(|w| w.about(id))?;
        change.put_task(id, t);
        change.event = Some(Event::TaskReview {
            task: id.to_string(),
            attempt,
            head: head.to_string(),
            reviewer: reviewer.to_string(),
            at,
        });
        Ok(())
    })?;
    Ok(after)
}
