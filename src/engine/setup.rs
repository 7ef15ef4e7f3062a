//! A new task worktree made ready for a real project: the files a task
//! needs that git does not track (`.env`, local config) copied in from the
//! main checkout, chosen by the plan's `[worktrees] include` and by the
//! repository's `.worktreeinclude`, then the plan's `setup` command run
//! once in it (install dependencies).
//!
//! Only *ignored* files are copied: a copy git would see as untracked would
//! be committed with the task's work by its `add -A` (and fail its scope
//! check). `.worktreeinclude` is read as Claude Code defines it: gitignore
//! patterns, and a file is copied only when it matches one *and* git
//! ignores it. A plan pattern that matches a file git does not ignore is
//! refused, naming it, before anything runs: the plan asked for something
//! that cannot be done safely. A file the new checkout already holds (the
//! task's base tracks it) is never overwritten.
//!
//! A worktree is marked ready (a file in its git admin dir, outside the
//! checkout) once this succeeded, so a worktree recycled from the pool
//! costs a `stat` here and no process: ignored files survive the forced
//! checkout that recycles it, build directories included. A worktree whose
//! setup failed or was interrupted has no mark and is set up again by the
//! next task that gets it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::error::refuse_with_hint;
use crate::git::Repo;
use crate::plan::{parse_duration, Plan};
use crate::process::{self, Exit, Finished, Job};

/// The repository's own list, as Claude Code, Codex and others read it.
pub const WORKTREEINCLUDE: &str = ".worktreeinclude";

/// The mark of a worktree that is ready, in its git admin dir.
const READY_MARK: &str = "orch-ready";

/// Whether a new worktree of this plan needs anything beyond its checkout.
fn wanted(repo: &Repo, plan: &Plan) -> bool {
    !plan.worktrees.is_empty() || repo.root.join(WORKTREEINCLUDE).is_file()
}

/// The main checkout, the plan and its patterns.
type CacheKey = (PathBuf, String, Vec<String>);

/// The main checkout's files to copy into a new worktree (relative paths),
/// computed once per process and plan; refuses a plan pattern that matches
/// a file git does not ignore.
pub fn included_files(repo: &Repo, plan: &Plan) -> Result<Vec<String>> {
    static CACHE: Mutex<BTreeMap<CacheKey, Vec<String>>> = Mutex::new(BTreeMap::new());
    if !wanted(repo, plan) {
        return Ok(Vec::new());
    }
    let key = (
        repo.root.clone(),
        plan.name.clone(),
        plan.worktrees.include.clone(),
    );
    if let Some(found) = CACHE.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(found);
    }
    let found = select(repo, plan)?;
    if let Ok(mut c) = CACHE.lock() {
        c.insert(key, found.clone());
    }
    Ok(found)
}

fn select(repo: &Repo, plan: &Plan) -> Result<Vec<String>> {
    let root = repo.root.clone();
    let list = |args: &[String]| -> Result<BTreeSet<String>> {
        let mut all = vec!["ls-files", "-z", "--others", "--ignored"];
        all.extend(args.iter().map(String::as_str));
        let out = repo.git_in(&root, &all)?;
        Ok(out
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect())
    };
    let mut asked = BTreeSet::new();
    if !plan.worktrees.include.is_empty() {
        let args: Vec<String> = plan
            .worktrees
            .include
            .iter()
            .map(|p| format!("--exclude={p}"))
            .collect();
        asked = list(&args)?;
    }
    let mut listed = BTreeSet::new();
    let file = root.join(WORKTREEINCLUDE);
    if file.is_file() {
        listed = list(&[format!("--exclude-from={}", file.display())])?;
    }
    let candidates: Vec<String> = asked.union(&listed).cloned().collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let ignored = ignored_among(repo, &root, &candidates)?;
    let refused: Vec<&String> = asked.iter().filter(|p| !ignored.contains(*p)).collect();
    if !refused.is_empty() {
        let names: Vec<String> = refused.iter().map(|p| format!("`{p}`")).collect();
        return Err(refuse_with_hint(
            format!(
                "plan `{}`: [worktrees] include matches {} that git does not ignore, so its copy in a task's worktree would be committed with the task's work",
                plan.name,
                names.join(", ")
            ),
            "add it to .gitignore (or .git/info/exclude), or take the pattern out of [worktrees] include",
        ));
    }
    Ok(candidates
        .into_iter()
        .filter(|p| ignored.contains(p))
        .collect())
}

/// The untracked files among `paths` (relative to `dir`) that git ignores there.
fn ignored_among(repo: &Repo, dir: &Path, paths: &[String]) -> Result<BTreeSet<String>> {
    let mut args = vec![
        "--literal-pathspecs",
        "ls-files",
        "-z",
        "--others",
        "--ignored",
        "--exclude-standard",
        "--",
    ];
    args.extend(paths.iter().map(String::as_str));
    Ok(repo
        .git_in(dir, &args)?
        .split('\0')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect())
}

/// Where a worktree's ready mark is: its admin dir, from its `.git` file.
fn ready_mark(worktree: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(worktree.join(".git")).ok()?;
    let dir = PathBuf::from(text.strip_prefix("gitdir:")?.trim());
    let dir = if dir.is_absolute() {
        dir
    } else {
        worktree.join(dir)
    };
    Some(dir.join(READY_MARK))
}

/// How [`ensure`] left a worktree.
pub enum Setup {
    /// Nothing to do: already ready, or the plan wants nothing.
    Ready,
    /// Made ready now; what it did, for the task's log.
    MadeReady { log: Vec<u8> },
    /// The setup command failed (or was stopped): the worktree is not
    /// marked, and `reason` says why the task cannot run.
    Failed { reason: String, finished: Finished },
}

/// Makes a task's worktree ready if it is not: copies the included files
/// that its checkout does not hold, runs `setup` with the task's `env`
/// (each output line to `on_line` too), and marks it.
pub fn ensure(
    repo: &Repo,
    plan: &Plan,
    for_task: Option<(&str, &crate::plan::Task)>,
    worktree: &Path,
    mut env: Vec<(String, String)>,
    pgid_file: Option<PathBuf>,
    on_line: &mut dyn FnMut(&str),
) -> Result<Setup> {
    if !wanted(repo, plan) {
        return Ok(Setup::Ready);
    }
    let mark = ready_mark(worktree);
    if mark.as_ref().is_some_and(|m| m.exists()) {
        return Ok(Setup::Ready);
    }
    let mut log = Vec::new();
    fn say(on_line: &mut dyn FnMut(&str), line: &str, log: &mut Vec<u8>) {
        on_line(line);
        log.extend_from_slice(line.as_bytes());
        log.push(b'\n');
    }
    let copied = copy_included(repo, plan, worktree)?;
    if !copied.copied.is_empty() {
        say(
            on_line,
            &format!(
                "git-orch: copied from the main checkout: {}",
                copied.copied.join(", ")
            ),
            &mut log,
        );
    }
    for (path, why) in &copied.skipped {
        say(
            on_line,
            &format!("git-orch: not copied: {path} ({why})"),
            &mut log,
        );
    }
    if let Some(command) = plan.worktrees.setup.as_deref() {
        say(on_line, &format!("git-orch: setup: {command}"), &mut log);
        // The setup of a sandboxed task's worktree runs in its sandbox.
        let sandbox = match for_task {
            Some((plan_name, task)) => crate::sandbox::for_task(
                repo,
                plan,
                plan_name,
                task,
                worktree,
                Vec::new(),
                crate::sandbox::Access::Work,
            )?,
            None => None,
        };
        if let Some(s) = &sandbox {
            env.extend(s.env.iter().cloned());
        }
        let job = Job {
            command,
            dir: worktree,
            env,
            timeout: plan
                .worktrees
                .setup_timeout
                .as_deref()
                .and_then(|t| parse_duration(t).ok()),
            pgid_file,
            contain: true,
            wrap: sandbox.as_ref().map(|s| s.args.clone()),
        };
        let mut finished = process::run(&job, |line| on_line(line));
        if let Some(s) = sandbox {
            if let Err(e) = s.finish(repo) {
                finished.exit =
                    Exit::NotStarted(format!("what it left in its sandbox is refused: {e:#}"));
            }
        }
        log.append(&mut finished.log);
        if !finished.exit.success() {
            let reason = match &finished.exit {
                Exit::Stopped(stop) => stop.describe(),
                exit => format!(
                    "the worktree's setup `{command}` failed: {}",
                    exit.describe()
                ),
            };
            finished.log = log;
            return Ok(Setup::Failed { reason, finished });
        }
        say(
            on_line,
            &format!(
                "git-orch: setup done in {}",
                crate::render::duration(finished.seconds)
            ),
            &mut log,
        );
    }
    if let Some(mark) = mark {
        std::fs::write(&mark, b"").with_context(|| format!("cannot write `{}`", mark.display()))?;
    }
    Ok(Setup::MadeReady { log })
}

struct Copied {
    copied: Vec<String>,
    skipped: Vec<(String, &'static str)>,
}

/// Copies the included files into `worktree`, never over a file it holds;
/// a copy the worktree's own checkout does not ignore (its base's
/// `.gitignore` differs from the main checkout's) is taken out again.
fn copy_included(repo: &Repo, plan: &Plan, worktree: &Path) -> Result<Copied> {
    let mut out = Copied {
        copied: Vec::new(),
        skipped: Vec::new(),
    };
    for rel in included_files(repo, plan)? {
        let (from, to) = (repo.root.join(&rel), worktree.join(&rel));
        if std::fs::symlink_metadata(&to).is_ok() {
            out.skipped
                .push((rel, "the task's checkout already holds it"));
            continue;
        }
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
        }
        let meta = std::fs::symlink_metadata(&from)
            .with_context(|| format!("cannot read `{}`", from.display()))?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&from)
                .with_context(|| format!("cannot read `{}`", from.display()))?;
            std::os::unix::fs::symlink(&target, &to)
                .with_context(|| format!("cannot write `{}`", to.display()))?;
        } else {
            std::fs::copy(&from, &to).with_context(|| {
                format!("cannot copy `{}` to `{}`", from.display(), to.display())
            })?;
        }
        out.copied.push(rel);
    }
    if out.copied.is_empty() {
        return Ok(out);
    }
    let ignored = ignored_among(repo, worktree, &out.copied)?;
    let (kept, unignored): (Vec<String>, Vec<String>) =
        out.copied.drain(..).partition(|p| ignored.contains(p));
    for rel in unignored {
        let _ = std::fs::remove_file(worktree.join(&rel));
        out.skipped
            .push((rel, "the task's checkout does not ignore it"));
    }
    out.copied = kept;
    Ok(out)
}

/// Refuses, changing nothing, a task started by hand (`task start`,
/// `task retry --by-hand`, MCP `task_start`) of a plan whose `[worktrees]
/// setup` this user has not approved here: starting it would run that
/// command. A plan with no setup starts by hand untrusted (nothing of it
/// runs). Call before the task is claimed.
pub fn require_trusted(repo: &Repo, snap: &crate::state::Snapshot) -> Result<()> {
    if snap.plan.worktrees.setup.is_none() {
        return Ok(());
    }
    crate::trust::require(repo, snap)
}

/// [`ensure`] for a task started by hand (`task start`): a setup that
/// fails marks the task failed, with its reason and the setup's log, and
/// is an error of the work (exit 1); its worktree stays for a look.
/// The setup runs only for a trusted plan ([`require_trusted`], checked
/// again here in case the plan changed since the caller checked).
pub fn ensure_by_hand(
    repo: &Repo,
    plan: &str,
    id: &str,
    begun: &super::tasks::Begun,
    on_line: &mut dyn FnMut(&str),
) -> Result<()> {
    use crate::state::{self, layout, store, transition, Event, TaskStatus};
    let snap = store::load(repo, plan)?;
    require_trusted(repo, &snap)?;
    let phase = snap
        .plan
        .task(id)
        .map(|(p, _)| p.id.clone())
        .unwrap_or_default();
    let env = super::run::task_env(repo, plan, &phase, id, &begun.worktree, begun.base);
    let Setup::Failed { reason, finished } = ensure(
        repo,
        &snap.plan,
        snap.plan.task(id).map(|(_, t)| (plan, t)),
        &begun.worktree,
        env,
        None,
        on_line,
    )?
    else {
        return Ok(());
    };
    store::transact(repo, plan, |s, change| {
        if s.task_status(id)? != TaskStatus::Running {
            return Ok(());
        }
        let t = change.task(id)?;
        let attempt = t.attempts.max(1);
        let path = layout::task_log(id, attempt);
        let t = transition::fail(
            &t,
            reason.clone(),
            None,
            state::now(),
            Some(finished.seconds),
            Some(path.clone()),
        )
        .map_err(|w| w.about(id))?;
        change.put_task(id, t);
        change.file(path.clone(), finished.log.clone());
        change.event = Some(Event::TaskFailed {
            task: id.to_string(),
            attempt,
            reason: reason.clone(),
            scope: Vec::new(),
            log: Some(path),
            at: state::now(),
        });
        Ok(())
    })?;
    Err(crate::error::after_commit(
        anyhow::anyhow!(
            "{reason} (its worktree is kept at {}); fix what the setup needs, then `git orch task retry {id}`",
            begun.worktree.display()
        ),
        format!("task {id}: failed"),
    ))
}
