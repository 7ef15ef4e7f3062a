//! `git orch watch`: a live view of a plan with no daemon. It looks at the
//! state branch every `--interval` (one ref read) and re-reads the state
//! only when the branch moved (and once a second judges again whether the
//! runners of running tasks are alive, as `status` does: a runner killed
//! with -9 moves no ref), building what it shows from the object
//! `status --json` prints ([`model`]). A running task's output is tailed
//! from the file its runner writes as it runs
//! ([`crate::engine::workspace::live_log`]); a finished task's or a gate's
//! log from the state tree.
//!
//! On a terminal it is a full-screen view ([`screen`]); through a pipe,
//! with `TERM=dumb`, or with `--plain`, it prints the `status` listing each
//! time the state changes, until every phase is checkpointed (`--once`:
//! once).

mod model;
mod screen;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use git2::Oid;

use super::status;
use crate::cli::WatchArgs;
use crate::engine::{runner, workspace};
use crate::git::Repo;
use crate::state::{names, store, Snapshot};
use crate::ui;

pub use model::{Model, Row};

pub fn run(args: WatchArgs) -> Result<u8> {
    let (repo, snap) = super::open_plan(args.plan.as_deref())?;
    let interval = Duration::from_millis(args.interval);
    let full_screen = !args.plain
        && !args.once
        && std::io::stdout().is_terminal()
        && std::io::stdin().is_terminal()
        && std::env::var("TERM").is_ok_and(|t| !t.is_empty() && t != "dumb");
    let follow = Follow::new(repo, snap)?;
    if full_screen {
        screen::run(follow, interval)
    } else {
        plain(follow, interval, args.once)
    }
}

/// The plain listing: `status` as it prints, under a line that says when,
/// each time the state branch moves; ends once the plan is finished, or
/// when the reader goes away.
fn plain(mut follow: Follow, interval: Duration, once: bool) -> Result<u8> {
    loop {
        let snap = &follow.snap;
        let records = snap.all_tasks()?;
        ui::out(&format!(
            "── {} at state {} ({})",
            snap.plan_name,
            crate::git::short(snap.commit),
            crate::render::utc_time(crate::state::now())
        ));
        status::render(snap, &records);
        // Every phase checkpointed: nothing moves until a rollback.
        if once || snap.state.finished || snap.current_phase().is_none() {
            return Ok(0);
        }
        loop {
            if crate::process::stop_requested().is_some() {
                return Ok(0);
            }
            std::thread::sleep(interval);
            if follow.refresh()? {
                break;
            }
        }
    }
}

/// The state branch, followed: the latest snapshot and its view model.
pub struct Follow {
    pub repo: Repo,
    pub snap: Snapshot,
    pub model: Model,
    /// When the model was built: a running task's clock goes on from it.
    pub loaded: Instant,
    /// When the runners of the running tasks were last judged.
    judged: Instant,
}

/// How often the view re-judges whether the runners it shows as alive
/// still are: a runner killed with -9 leaves the state branch as it was.
const JUDGE_RUNNERS: Duration = Duration::from_secs(1);

impl Follow {
    fn new(repo: Repo, snap: Snapshot) -> Result<Follow> {
        let model = model_of(&snap)?;
        Ok(Follow {
            repo,
            snap,
            model,
            loaded: Instant::now(),
            judged: Instant::now(),
        })
    }

    /// Re-reads the state if its branch moved, and rebuilds the view when
    /// a running task's runner is judged otherwise than it shows (killed
    /// with -9, say, which moves no ref); whether anything changed.
    pub fn refresh(&mut self) -> Result<bool> {
        let name = names::state(&self.snap.plan_name);
        let now: Option<Oid> = self.repo.ref_target(&name)?;
        if now.is_none_or(|oid| oid == self.snap.commit) {
            if self.judged.elapsed() < JUDGE_RUNNERS {
                return Ok(false);
            }
            self.judged = Instant::now();
            if !self.runners_changed() {
                return Ok(false);
            }
        } else {
            self.snap = store::load(&self.repo, &self.snap.plan_name)?;
        }
        self.model = model_of(&self.snap)?;
        self.loaded = Instant::now();
        self.judged = Instant::now();
        Ok(true)
    }

    /// Whether a running task's runner is now judged (as `status` judges
    /// it, [`runner::view`]) otherwise than the model says.
    fn runners_changed(&self) -> bool {
        let plan = &self.snap.plan_name;
        self.model
            .tasks
            .iter()
            .filter(|t| t.state == "running")
            .any(|t| {
                let judged = self
                    .snap
                    .task(&t.id)
                    .ok()
                    .and_then(|r| runner::view(plan, &t.id, &r))
                    .map(|(r, _)| r.as_str());
                judged != t.runner.as_deref()
            })
    }

    /// Seconds a task has run: as the status said, plus the time since
    /// for one still running.
    pub fn seconds(&self, task: &model::TaskRow) -> Option<f64> {
        let extra = (task.state == "running").then(|| self.loaded.elapsed().as_secs_f64());
        task.seconds.map(|s| s + extra.unwrap_or(0.0))
    }

    /// The log of a row: where it is, and its text (at most the last
    /// `limit` bytes).
    pub fn log(&self, row: &Row, limit: usize) -> (String, String) {
        match row {
            Row::Task(id) => {
                let Some(task) = self.model.task(id) else {
                    return (format!("task {id}"), String::new());
                };
                let named = task
                    .title
                    .as_deref()
                    .map_or_else(|| format!("task {id}"), |t| format!("task {id} — {t}"));
                if model::Word::of(task).is_live() {
                    let path = workspace::live_log(&self.repo, &self.snap.plan_name, id);
                    let text =
                        tail_of_file(&path, limit).unwrap_or_else(|| "(no output yet)".to_string());
                    return (format!("{named} · live"), text);
                }
                match &task.log {
                    Some(path) => (format!("{named} · {path}"), self.stored(path, limit)),
                    None => (named, "(it has no log yet)".to_string()),
                }
            }
            Row::Gate(phase, name) => match self.model.gate(phase, name) {
                Some(g) => (
                    format!("gate {name} · {}", g.log),
                    self.stored(&g.log, limit),
                ),
                None => (format!("gate {name}"), String::new()),
            },
            Row::Phase(id) => {
                let text = self.model.phase(id).map_or_else(String::new, |p| {
                    let mut s = format!("phase {id}: {} of {} tasks settled\n", p.done, p.tasks);
                    if let Some(t) = &p.title {
                        s.push_str(&format!("{t}\n"));
                    }
                    if let Some(tag) = &p.tag {
                        s.push_str(&format!("checkpoint tag {tag}\n"));
                    }
                    s
                });
                (format!("phase {id}"), text)
            }
        }
    }

    fn stored(&self, path: &str, limit: usize) -> String {
        match self.repo.read_path(self.snap.tree, path) {
            Ok(Some(bytes)) => {
                let start = bytes.len().saturating_sub(limit);
                String::from_utf8_lossy(&bytes[start..]).into_owned()
            }
            Ok(None) => format!("(no log at {path} in the state tree)"),
            Err(e) => format!("(cannot read {path}: {e:#})"),
        }
    }

    pub fn plan(&self) -> &str {
        &self.snap.plan_name
    }

    pub fn exe() -> Option<PathBuf> {
        std::env::current_exe().ok()
    }
}

fn model_of(snap: &Snapshot) -> Result<Model> {
    let records = snap.all_tasks()?;
    let value = serde_json::to_value(status::status_report(snap, &records))?;
    Model::from_status(value)
}

/// The last `limit` bytes of a file, from the start of a line.
fn tail_of_file(path: &std::path::Path, limit: usize) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let start = len.saturating_sub(limit as u64);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let from = if start > 0 {
        bytes.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1)
    } else {
        0
    };
    Some(String::from_utf8_lossy(&bytes[from..]).into_owned())
}
