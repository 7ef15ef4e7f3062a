//! Plans for the tests: starting one, the stand-in agent that works for
//! them, and [`PlanText`], a builder for the plan files most tests write
//! (one or two phases of tasks with files, commands, dependencies, gates
//! and agents), so that a test says what its plan holds and not how TOML
//! spells it.
//!
//! ```ignore
//! let text = PlanText::new("p")
//!     .gate("both", "test -f a.txt && test -f b.txt")
//!     .task("a", |t| t.files(["a.txt"]).run("echo a > a.txt"))
//!     .task("b", |t| t.files(["b.txt"]).depends_on(["a"]))
//!     .to_string();
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use super::TestRepo;

/// Writes `text` as `plan.toml` beside the repository and starts it
/// (asserting success).
pub fn started(repo: &TestRepo, text: &str) {
    let plan = repo.plan("plan.toml", text);
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
}

/// A new [`TestRepo`] with the plan `text` started in it.
pub fn new_started(text: &str) -> TestRepo {
    let repo = TestRepo::new();
    started(&repo, text);
    repo
}

/// `fixtures/fake-agent`: the stand-in agent the tests run instead of a
/// real one (its modes succeed, fail, flake, park, fix, …; see the script).
pub fn fake_agent() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fake-agent")
}

/// `value` as a TOML string (quoted and escaped as TOML wants).
pub fn toml_str(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

/// `values` as a TOML array of strings.
fn toml_strs<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = values.into_iter().map(toml_str).collect();
    format!("[{}]", items.join(", "))
}

/// The text of a plan file, built a table at a time; `to_string()` gives
/// the TOML. Tasks added with [`PlanText::task`] go to the last phase (a
/// phase `one` when there is none yet).
#[derive(Debug, Clone)]
pub struct PlanText {
    name: String,
    /// Plan keys after `name` (`title`), each a TOML line.
    keys: Vec<String>,
    /// The keys of `[defaults]`, each a TOML line.
    defaults: Vec<String>,
    /// Tables before the phases (`[defaults]`, `[[gates]]`, `[agents.x]`),
    /// each already TOML.
    head: Vec<String>,
    phases: Vec<PhaseText>,
}

impl PlanText {
    pub fn new(name: &str) -> PlanText {
        PlanText {
            name: name.to_string(),
            keys: Vec::new(),
            defaults: Vec::new(),
            head: Vec::new(),
            phases: Vec::new(),
        }
    }

    /// The plan's title.
    pub fn title(mut self, title: &str) -> PlanText {
        self.keys.push(format!("title = {}\n", toml_str(title)));
        self
    }

    /// `defaults.KEY`, a string (`default_str("isolation", "sandbox")`).
    pub fn default_str(self, key: &str, value: &str) -> PlanText {
        self.default_toml(key, &toml_str(value))
    }

    /// `defaults.KEY`, its value as TOML (`default_toml("parallel", "3")`).
    pub fn default_toml(mut self, key: &str, toml_value: &str) -> PlanText {
        self.defaults.push(format!("{key} = {toml_value}\n"));
        self
    }

    /// A plan-wide gate: `[[gates]]` with `name` and `run`.
    pub fn gate(mut self, name: &str, run: &str) -> PlanText {
        self.head.push(format!(
            "[[gates]]\nname = {}\nrun = {}\n",
            toml_str(name),
            toml_str(run)
        ));
        self
    }

    /// An agent profile `[agents.NAME]` whose command is `run`.
    pub fn agent(self, name: &str, run: &str) -> PlanText {
        self.agent_with(name, run, "")
    }

    /// An agent profile with more keys after `run`, as TOML lines
    /// (`env = { … }`, `parallel = 2`).
    pub fn agent_with(mut self, name: &str, run: &str, more: &str) -> PlanText {
        self.head
            .push(format!("[agents.{name}]\nrun = {}\n{more}", toml_str(run)));
        self
    }

    /// Any TOML before the phases, as it is (`[defaults]`, `[worktrees]`, …).
    pub fn raw(mut self, toml: &str) -> PlanText {
        self.head.push(toml.to_string());
        self
    }

    /// A phase `id`, filled by `build`.
    pub fn phase(mut self, id: &str, build: impl FnOnce(PhaseText) -> PhaseText) -> PlanText {
        self.phases.push(build(PhaseText::new(id)));
        self
    }

    /// A task `id`, filled by `build`, in the last phase (opening a phase
    /// `one` when there is none).
    pub fn task(mut self, id: &str, build: impl FnOnce(TaskText) -> TaskText) -> PlanText {
        if self.phases.is_empty() {
            self.phases.push(PhaseText::new("one"));
        }
        let phase = self.phases.last_mut().expect("a phase was just made");
        phase.tasks.push(build(TaskText::new(id)));
        self
    }
}

impl fmt::Display for PlanText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "name = {}", toml_str(&self.name))?;
        for key in &self.keys {
            write!(f, "{key}")?;
        }
        if !self.defaults.is_empty() {
            writeln!(f, "[defaults]")?;
            for key in &self.defaults {
                write!(f, "{key}")?;
            }
        }
        for table in &self.head {
            write!(f, "{table}")?;
            if !table.ends_with('\n') {
                writeln!(f)?;
            }
        }
        for phase in &self.phases {
            write!(f, "{phase}")?;
        }
        Ok(())
    }
}

/// One `[[phases]]` of a [`PlanText`].
#[derive(Debug, Clone)]
pub struct PhaseText {
    id: String,
    /// Keys of the phase itself, and its gates, each already TOML.
    keys: Vec<String>,
    gates: Vec<String>,
    tasks: Vec<TaskText>,
}

impl PhaseText {
    fn new(id: &str) -> PhaseText {
        PhaseText {
            id: id.to_string(),
            keys: Vec::new(),
            gates: Vec::new(),
            tasks: Vec::new(),
        }
    }

    /// A gate of this phase: `[[phases.gates]]` with `name` and `run`.
    pub fn gate(mut self, name: &str, run: &str) -> PhaseText {
        self.gates.push(format!(
            "  [[phases.gates]]\n  name = {}\n  run = {}\n",
            toml_str(name),
            toml_str(run)
        ));
        self
    }

    /// A key of the phase, its value as TOML (`key("depends_on", r#"["one"]"#)`).
    pub fn key(mut self, key: &str, toml_value: &str) -> PhaseText {
        self.keys.push(format!("{key} = {toml_value}\n"));
        self
    }

    /// A task `id` of this phase, filled by `build`.
    pub fn task(mut self, id: &str, build: impl FnOnce(TaskText) -> TaskText) -> PhaseText {
        self.tasks.push(build(TaskText::new(id)));
        self
    }
}

impl fmt::Display for PhaseText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[[phases]]\nid = {}", toml_str(&self.id))?;
        for key in &self.keys {
            write!(f, "{key}")?;
        }
        for gate in &self.gates {
            write!(f, "{gate}")?;
        }
        for task in &self.tasks {
            write!(f, "{task}")?;
        }
        Ok(())
    }
}

/// One `[[phases.tasks]]` of a [`PhaseText`]: its keys in the order given.
#[derive(Debug, Clone)]
pub struct TaskText {
    id: String,
    keys: Vec<String>,
}

impl TaskText {
    fn new(id: &str) -> TaskText {
        TaskText {
            id: id.to_string(),
            keys: Vec::new(),
        }
    }

    /// A key of the task, its value as TOML (`key("retries", "2")`).
    pub fn key(mut self, key: &str, toml_value: &str) -> TaskText {
        self.keys.push(format!("{key} = {toml_value}"));
        self
    }

    /// The command that does the task.
    pub fn run(self, command: &str) -> TaskText {
        self.key("run", &toml_str(command))
    }

    /// The files the task may change (globs).
    pub fn files<'a>(self, globs: impl IntoIterator<Item = &'a str>) -> TaskText {
        self.key("files", &toml_strs(globs))
    }

    /// The tasks it waits for.
    pub fn depends_on<'a>(self, ids: impl IntoIterator<Item = &'a str>) -> TaskText {
        self.key("depends_on", &toml_strs(ids))
    }

    /// The agent of `[agents]` that does it.
    pub fn agent(self, name: &str) -> TaskText {
        self.key("agent", &toml_str(name))
    }

    pub fn title(self, title: &str) -> TaskText {
        self.key("title", &toml_str(title))
    }

    pub fn prompt(self, prompt: &str) -> TaskText {
        self.key("prompt", &toml_str(prompt))
    }

    pub fn timeout(self, timeout: &str) -> TaskText {
        self.key("timeout", &toml_str(timeout))
    }
}

impl fmt::Display for TaskText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  [[phases.tasks]]\n  id = {}", toml_str(&self.id))?;
        for key in &self.keys {
            writeln!(f, "  {key}")?;
        }
        Ok(())
    }
}

#[test]
fn a_plan_text_is_the_toml_it_describes() {
    let text = PlanText::new("p")
        .title("A plan")
        .default_str("isolation", "sandbox")
        .default_toml("parallel", "3")
        .gate("both", "test -f a.txt")
        .agent("writer", r#"sh "x" succeed 'a.txt'"#)
        .task("a", |t| t.files(["a.txt"]).run("echo a > a.txt"))
        .phase("two", |p| {
            p.gate("g", "true")
                .task("b", |t| t.files(["b/**"]).depends_on(["a"]).agent("writer"))
        })
        .to_string();
    let doc: toml::Value = toml::from_str(&text).expect("a plan text is TOML");
    let want: toml::Value = toml::from_str(
        r#"name = "p"
title = "A plan"
[defaults]
isolation = "sandbox"
parallel = 3
[[gates]]
name = "both"
run = "test -f a.txt"
[agents.writer]
run = '''sh "x" succeed 'a.txt''''
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  files = ["a.txt"]
  run = "echo a > a.txt"
[[phases]]
id = "two"
  [[phases.gates]]
  name = "g"
  run = "true"
  [[phases.tasks]]
  id = "b"
  files = ["b/**"]
  depends_on = ["a"]
  agent = "writer"
"#,
    )
    .expect("the expected plan is TOML");
    assert_eq!(doc, want, "{text}");
}
