//! What the watch shows, read from the very object `status --json` prints
//! ([`crate::commands::status::status_report`], serialised and read back
//! into these structs), so the live view and the snapshot can never tell
//! two stories. Fields that later versions of the status object add
//! (`runner`/`recover` for a dead runner, an agent, a cost) are read when
//! present and shown where the row has room; without them the row is as
//! `status` shows it.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Model {
    pub plan: String,
    #[serde(default)]
    pub title: Option<String>,
    pub work: String,
    pub state_commit: String,
    #[serde(default)]
    pub finished: bool,
    #[serde(default)]
    pub phase: Option<String>,
    pub phases: Vec<PhaseRow>,
    pub tasks: Vec<TaskRow>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PhaseRow {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    pub state: String,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub tasks: usize,
    #[serde(default)]
    pub done: usize,
    #[serde(default)]
    pub gates: Vec<GateRow>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GateRow {
    pub name: String,
    pub passed: bool,
    #[serde(default)]
    pub seconds: f64,
    #[serde(default)]
    pub cached: bool,
    /// Path of its log in the state tree.
    pub log: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TaskRow {
    pub id: String,
    pub phase: String,
    #[serde(default)]
    pub title: Option<String>,
    pub state: String,
    #[serde(default)]
    pub seconds: Option<f64>,
    #[serde(default)]
    pub estimate_seconds: Option<u64>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub reason: Option<String>,
    /// Path of its latest log in the state tree.
    #[serde(default)]
    pub log: Option<String>,
    /// `alive`, `gone` or `other-host` for a running task (a later status field).
    #[serde(default)]
    pub runner: Option<String>,
    /// The command that recovers a task whose runner is gone.
    #[serde(default)]
    pub recover: Option<String>,
    /// Who runs it (issue 11's agents), and what it cost so far.
    #[serde(default)]
    pub agent: Option<String>,
    /// `status --json`'s `cost_usd`: summed over its attempts' usage files.
    #[serde(default, alias = "cost_usd")]
    pub cost: Option<f64>,
    /// A parked task's wake time (seconds since the epoch).
    #[serde(default)]
    pub wakes_at: Option<f64>,
    /// Each attempt's usage and its agent's own outcome (`status --json`).
    #[serde(default)]
    pub usage: Vec<AttemptUsage>,
}

/// What the view shows of an attempt's usage.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct AttemptUsage {
    #[serde(default)]
    pub tokens_in: Option<u64>,
    #[serde(default)]
    pub tokens_out: Option<u64>,
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub denied: Vec<String>,
}

impl TaskRow {
    /// Its latest attempt as its agent told it: tokens, and what went
    /// wrong (`rate limit: …`, `2 calls refused`).
    pub fn latest_attempt(&self) -> Option<String> {
        let u = self.usage.last()?;
        let mut out = format!(
            "{}k/{}k tok",
            u.tokens_in.unwrap_or(0) / 1000,
            u.tokens_out.unwrap_or(0) / 1000
        );
        if let Some(reason) = u
            .reason
            .as_deref()
            .filter(|_| u.outcome.as_deref() != Some("success"))
        {
            out += &format!(" · {}", reason.chars().take(60).collect::<String>());
        }
        if !u.denied.is_empty() {
            out += &format!(" · {} refused", u.denied.len());
        }
        Some(out)
    }
}

impl Model {
    pub fn from_status(value: serde_json::Value) -> anyhow::Result<Model> {
        Ok(serde_json::from_value(value)?)
    }

    pub fn tasks_of<'a>(&'a self, phase: &'a str) -> impl Iterator<Item = &'a TaskRow> + 'a {
        self.tasks.iter().filter(move |t| t.phase == phase)
    }

    /// The rows of the view in order: each phase, its gates, its tasks.
    pub fn rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        for p in &self.phases {
            rows.push(Row::Phase(p.id.clone()));
            for g in &p.gates {
                rows.push(Row::Gate(p.id.clone(), g.name.clone()));
            }
            for t in self.tasks_of(&p.id) {
                rows.push(Row::Task(t.id.clone()));
            }
        }
        rows
    }

    pub fn phase(&self, id: &str) -> Option<&PhaseRow> {
        self.phases.iter().find(|p| p.id == id)
    }

    pub fn task(&self, id: &str) -> Option<&TaskRow> {
        self.tasks.iter().find(|t| t.id == id)
    }

    pub fn gate(&self, phase: &str, name: &str) -> Option<&GateRow> {
        self.phase(phase)?.gates.iter().find(|g| g.name == name)
    }

    /// How many tasks are done or skipped.
    pub fn settled(&self) -> usize {
        self.phases.iter().map(|p| p.done).sum()
    }
}

/// One line of the view; the selection is kept by this key across
/// refreshes, so a row moving does not move the cursor to another task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    Phase(String),
    Gate(String, String),
    Task(String),
}

/// How a task's state reads in the view. The status word as it is, except
/// where the view knows more: a running task whose runner is gone is
/// stale (with the command that recovers it), one on another machine says
/// so. States that later versions add (parked, in review, waiting for a
/// person) have their own words; any other word is shown as it comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Word {
    Pending,
    Running,
    Elsewhere,
    Stale,
    Parked,
    Review,
    Waiting,
    Done,
    Failed,
    Conflict,
    Skipped,
    Other(String),
}

/// The tone a word is painted in (when colour is on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Good,
    Busy,
    Bad,
    Person,
}

impl Word {
    pub fn of(task: &TaskRow) -> Word {
        match (task.state.as_str(), task.runner.as_deref()) {
            ("running", Some("gone")) => Word::Stale,
            ("running", Some("other-host")) => Word::Elsewhere,
            ("pending", _) => Word::Pending,
            ("running", _) => Word::Running,
            ("parked", _) => Word::Parked,
            ("review" | "in-review", _) => Word::Review,
            ("waiting" | "needs-input", _) => Word::Waiting,
            ("done", _) => Word::Done,
            ("failed", _) => Word::Failed,
            ("conflict", _) => Word::Conflict,
            ("skipped", _) => Word::Skipped,
            (other, _) => Word::Other(other.to_string()),
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Word::Pending => "pending",
            Word::Running => "running",
            Word::Elsewhere => "running (other host)",
            Word::Stale => "stale",
            Word::Parked => "parked",
            Word::Review => "in review",
            Word::Waiting => "waiting for you",
            Word::Done => "done",
            Word::Failed => "failed",
            Word::Conflict => "conflict",
            Word::Skipped => "skipped",
            Word::Other(w) => w,
        }
    }

    pub fn tone(&self) -> Tone {
        match self {
            Word::Done => Tone::Good,
            Word::Running | Word::Elsewhere => Tone::Busy,
            Word::Failed | Word::Conflict | Word::Stale => Tone::Bad,
            Word::Parked | Word::Review | Word::Waiting => Tone::Person,
            Word::Pending | Word::Skipped | Word::Other(_) => Tone::Plain,
        }
    }

    /// Whether its output is being written now (the live log).
    pub fn is_live(&self) -> bool {
        matches!(self, Word::Running)
    }
}

/// A task row's note: why it failed, or what recovers a stale one.
pub fn note(task: &TaskRow) -> Option<String> {
    match Word::of(task) {
        Word::Stale => Some(match &task.recover {
            Some(cmd) => format!("runner gone; recover: {cmd}"),
            None => "runner gone".to_string(),
        }),
        Word::Parked => task
            .wakes_at
            .map(|t| format!("wakes at {}", crate::render::utc_time(t))),
        Word::Failed | Word::Conflict | Word::Pending | Word::Skipped => task.reason.clone(),
        _ => None,
    }
}

/// What the actions may be applied to: `r` on a failed or conflicting
/// task, `o` on a done one (the CLI refuses the rest, and says why).
pub fn can_retry(task: &TaskRow) -> bool {
    matches!(Word::of(task), Word::Failed | Word::Conflict | Word::Stale)
}

pub fn can_reopen(task: &TaskRow) -> bool {
    Word::of(task) == Word::Done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(state: &str, extra: serde_json::Value) -> TaskRow {
        let mut v = serde_json::json!({"id": "a", "phase": "p", "state": state});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        serde_json::from_value(v).expect("task row")
    }

    #[test]
    fn a_running_task_whose_runner_is_gone_reads_stale_with_its_recovery() {
        let t = task(
            "running",
            serde_json::json!({"runner": "gone", "recover": "git orch resume p"}),
        );
        assert_eq!(Word::of(&t), Word::Stale);
        assert_eq!(Word::of(&t).tone(), Tone::Bad);
        assert_eq!(
            note(&t).as_deref(),
            Some("runner gone; recover: git orch resume p")
        );
        let alive = task("running", serde_json::json!({"runner": "alive"}));
        assert_eq!(Word::of(&alive), Word::Running);
        let other = task("running", serde_json::json!({"runner": "other-host"}));
        assert_eq!(Word::of(&other).label(), "running (other host)");
    }

    #[test]
    fn states_for_a_person_have_words_of_their_own() {
        let words: Vec<String> = ["parked", "review", "waiting", "done", "mystery"]
            .iter()
            .map(|s| {
                Word::of(&task(s, serde_json::json!({})))
                    .label()
                    .to_string()
            })
            .collect();
        assert_eq!(
            words,
            ["parked", "in review", "waiting for you", "done", "mystery"]
        );
        assert_eq!(
            Word::of(&task("parked", serde_json::json!({}))).tone(),
            Tone::Person
        );
    }

    #[test]
    fn rows_are_each_phase_then_its_gates_then_its_tasks() {
        let m: Model = serde_json::from_value(serde_json::json!({
            "plan": "x", "work": "0", "state_commit": "0",
            "phases": [
                {"id": "one", "state": "checkpointed",
                 "gates": [{"name": "unit", "passed": true, "log": "l"}]},
                {"id": "two", "state": "active"}
            ],
            "tasks": [
                {"id": "a", "phase": "one", "state": "done"},
                {"id": "b", "phase": "two", "state": "running"}
            ]
        }))
        .expect("model");
        assert_eq!(
            m.rows(),
            vec![
                Row::Phase("one".into()),
                Row::Gate("one".into(), "unit".into()),
                Row::Task("a".into()),
                Row::Phase("two".into()),
                Row::Task("b".into()),
            ]
        );
    }
}
