//! Event hooks: `[[notify]]` in the plan and `orch.notify` in git config
//! run a command on chosen events (see [`crate::plan::NOTIFY_EVENTS`]) with
//! the event as one JSON object on stdin. Hooks run one after another on a
//! thread of their own, in the order the events happen, so a slow hook
//! never holds the run up; each is stopped after its timeout (10s unless the
//! plan says). A hook that fails, hangs or cannot start is a warning: it
//! never changes what the command does or its exit code.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::git::Repo;
use crate::plan::{Plan, NOTIFY_EVENTS};
use crate::ui;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// git config: a command run on every event (multi-valued: one hook per value).
pub const CONFIG_KEY: &str = "orch.notify";
/// git config: the events the `orch.notify` hooks run on (commas or spaces); all when unset.
pub const CONFIG_EVENTS_KEY: &str = "orch.notifyEvents";

#[derive(Debug, Clone)]
struct Hook {
    run: String,
    /// `None`: every event.
    events: Option<Vec<String>>,
    timeout: Duration,
}

impl Hook {
    fn wants(&self, event: &str) -> bool {
        self.events
            .as_ref()
            .is_none_or(|e| e.iter().any(|x| x == event))
    }
}

/// The hooks of one plan, and the thread that runs them.
pub struct Notifier {
    plan: String,
    queue: Mutex<Option<mpsc::Sender<(String, Value)>>>,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
    wanted: Vec<String>,
}

/// The plan's hooks, then git config's.
fn hooks(repo: &Repo, plan: &Plan) -> Vec<Hook> {
    let mut hooks: Vec<Hook> = plan
        .notify
        .iter()
        .map(|n| Hook {
            run: n.run.clone(),
            events: n.events.clone(),
            timeout: n
                .timeout
                .as_deref()
                .and_then(|t| crate::plan::parse_duration(t).ok())
                .unwrap_or(DEFAULT_TIMEOUT),
        })
        .collect();
    let config = crate::config::of(repo);
    let events = config.get(CONFIG_EVENTS_KEY).map(|v| {
        let names: Vec<String> = v
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        for n in names
            .iter()
            .filter(|n| !NOTIFY_EVENTS.contains(&n.as_str()))
        {
            ui::warn(&format!(
                "{CONFIG_EVENTS_KEY}: unknown event `{}`; events are {}",
                ui::printable(n),
                NOTIFY_EVENTS.join(", ")
            ));
        }
        names
    });
    for run in config.get_all(CONFIG_KEY) {
        if !run.trim().is_empty() {
            hooks.push(Hook {
                run: run.to_string(),
                events: events.clone(),
                timeout: DEFAULT_TIMEOUT,
            });
        }
    }
    hooks
}

impl Notifier {
    pub fn new(repo: &Repo, plan_name: &str, plan: &Plan) -> Notifier {
        let hooks = hooks(repo, plan);
        let mut wanted: Vec<String> = Vec::new();
        for e in NOTIFY_EVENTS {
            if hooks.iter().any(|h| h.wants(e)) {
                wanted.push(e.to_string());
            }
        }
        if hooks.is_empty() {
            return Notifier {
                plan: plan_name.to_string(),
                queue: Mutex::new(None),
                worker: Mutex::new(None),
                wanted,
            };
        }
        let (tx, rx) = mpsc::channel::<(String, Value)>();
        let dir = repo.root.clone();
        let plan = plan_name.to_string();
        let worker = std::thread::spawn(move || {
            for (event, body) in rx {
                for hook in hooks.iter().filter(|h| h.wants(&event)) {
                    if let Err(why) = run_hook(hook, &dir, &plan, &event, &body) {
                        ui::warn(&format!(
                            "notify hook `{}` on {event}: {why}; the run goes on",
                            ui::printable(&hook.run)
                        ));
                    }
                }
            }
        });
        Notifier {
            plan: plan_name.to_string(),
            queue: Mutex::new(Some(tx)),
            worker: Mutex::new(Some(worker)),
            wanted,
        }
    }

    /// Sends `event` with `fields` (an object) to the hooks that chose it.
    pub fn emit(&self, event: &str, fields: Value) {
        debug_assert!(NOTIFY_EVENTS.contains(&event), "unknown event {event}");
        if !self.wanted.iter().any(|e| e == event) {
            return;
        }
        let mut body = json!({
            "schema": crate::schema::Schema::NotifyEvent.name(),
            "schema_version": crate::schema::Schema::NotifyEvent.version(),
            "event": event,
            "plan": self.plan,
            "at": crate::state::now(),
        });
        if let (Some(b), Value::Object(f)) = (body.as_object_mut(), fields) {
            b.extend(f);
        }
        if let Ok(q) = self.queue.lock() {
            if let Some(q) = q.as_ref() {
                let _ = q.send((event.to_string(), body));
            }
        }
    }

    /// Waits for the hooks of every event sent so far (each time-limited).
    pub fn finish(&self) {
        if let Ok(mut q) = self.queue.lock() {
            q.take();
        }
        let worker = self.worker.lock().ok().and_then(|mut w| w.take());
        if let Some(w) = worker {
            let _ = w.join();
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.finish();
    }
}

/// One hook, one event: `sh -c RUN` in the repository's root, its process
/// group stopped at the timeout. Its stdout is dropped (stdout is for
/// git-orch's data); the last line of its stderr explains a failure.
fn run_hook(
    hook: &Hook,
    dir: &std::path::Path,
    plan: &str,
    event: &str,
    body: &Value,
) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&hook.run)
        .current_dir(dir)
        .env("ORCH_EVENT", event)
        .env("ORCH_PLAN", plan)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start it: {e}"))?;
    let pid = child.id() as i32;
    let mut text = body.to_string();
    text.push('\n');
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        std::thread::spawn(move || {
            let _ = stdin.write_all(text.as_bytes());
        });
    }
    let (tx, rx) = mpsc::channel();
    if let Some(mut err) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    }
    let deadline = Instant::now() + hook.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                crate::process::kill_group(pid);
                let _ = child.wait();
                return Err(format!(
                    "took longer than {}, stopped",
                    ui::duration(hook.timeout.as_secs_f64())
                ));
            }
            Err(e) => return Err(format!("cannot be waited for: {e}")),
        }
    };
    if status.success() {
        return Ok(());
    }
    let stderr = rx
        .recv_timeout(Duration::from_millis(200))
        .unwrap_or_default();
    let last = String::from_utf8_lossy(&stderr)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", ui::printable(l.trim())))
        .unwrap_or_default();
    let how = match status.code() {
        Some(c) => format!("exit code {c}"),
        None => "killed by a signal".to_string(),
    };
    Err(format!("failed ({how}){last}"))
}

/// The events a checkpoint makes: `phase-checkpointed` or `gates-failed`.
pub fn checkpointed(n: &Notifier, report: &crate::engine::checkpoint::CheckpointReport) {
    let plan = &n.plan;
    let phase = &report.phase;
    if report.passed {
        n.emit(
            "phase-checkpointed",
            json!({
                "phase": phase,
                "commit": report.commit.to_string(),
                "tag": format!("orch/{plan}/{phase}"),
                "next_phase": report.snap.current_phase().map(|p| p.id.clone()),
            }),
        );
        return;
    }
    let gates: Vec<Value> = report
        .runs
        .iter()
        .map(|r| {
            json!({
                "name": r.result.name,
                "passed": r.result.passed,
                "reason": r.result.reason,
                "log": format!("git orch log {plan} {phase}:{}", r.result.name),
            })
        })
        .collect();
    n.emit(
        "gates-failed",
        json!({ "phase": phase, "commit": report.commit.to_string(), "gates": gates }),
    );
}

/// `task-parked`: a task's agent hit a usage limit; the task waits until
/// `until` (seconds since the epoch), its worktree kept.
pub fn task_parked(n: &Notifier, task: &str, phase: Option<&str>, until: f64, reason: &str) {
    n.emit(
        "task-parked",
        json!({
            "task": task,
            "phase": phase,
            "until": until,
            "until_utc": crate::render::utc_time(until),
            "reason": reason,
        }),
    );
}

/// `task-failed`: a task's attempt failed, or it conflicts on landing
/// (`"outcome": "conflict"`, with the files).
pub fn task_failed(
    n: &Notifier,
    task: &str,
    phase: Option<&str>,
    outcome: &str,
    reason: &str,
    files: &[String],
) {
    n.emit(
        "task-failed",
        json!({
            "task": task,
            "phase": phase,
            "outcome": outcome,
            "reason": reason,
            "files": files,
            "log": format!("git orch log {} {task}", n.plan),
        }),
    );
}

/// `task-review`: a task's work is committed and waits for a person's
/// review (`git orch task approve` / `task reject`).
pub fn task_review(n: &Notifier, task: &str, phase: Option<&str>, head: &str) {
    n.emit(
        "task-review",
        json!({
            "task": task,
            "phase": phase,
            "commit": head,
            "log": format!("git orch log {} {task}", n.plan),
        }),
    );
}
