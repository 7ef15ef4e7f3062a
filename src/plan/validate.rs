//! Semantic checks on a parsed plan. They run on freshly loaded files and
//! again on plans read back from the state branch, so they need no source
//! text; when it is given, problems get a best-effort line and column.
//! Every problem is reported, not just the first.

use super::locate;
use super::scope::check_glob;
use super::{parse_duration, validate_id, Diagnostic, Gate, Plan, Task};
use std::collections::HashMap;

type Pos = Option<(usize, usize)>;

/// Errors first, then warnings, each in plan order.
pub fn validate(plan: &Plan, source: Option<&str>) -> Vec<Diagnostic> {
    let mut v = Validator {
        plan,
        src: source,
        anchors: Anchors::new(plan, source),
        out: Vec::new(),
    };
    v.plan_level();
    v.phases();
    v.dependencies();
    let (mut errors, warnings): (Vec<_>, Vec<_>) =
        v.out.into_iter().partition(Diagnostic::is_error);
    errors.extend(warnings);
    errors
}

/// Where each named thing (plan name, gate, phase, task) is defined in the
/// source. Ids may repeat (that is one of the errors), so the n-th object
/// with a given id is matched with the n-th place that id is written.
struct Anchors {
    name: Pos,
    plan_gates: Vec<Pos>,
    phases: Vec<Pos>,
    phase_gates: Vec<Vec<Pos>>,
    tasks: Vec<Vec<Pos>>,
}

impl Anchors {
    fn new(plan: &Plan, src: Option<&str>) -> Anchors {
        let mut seen: HashMap<(&str, String), usize> = HashMap::new();
        let sites = src.map(|s| locate::Sites::new(s, &["name", "id"]));
        let mut find = |key: &'static str, value: &str| -> Pos {
            let sites = sites.as_ref()?;
            let n = seen.entry((key, value.to_string())).or_insert(0);
            *n += 1;
            sites.key_value(key, value, *n - 1)
        };
        let name = find("name", &plan.name);
        let plan_gates = plan.gates.iter().map(|g| find("name", &g.name)).collect();
        let mut phases = Vec::new();
        let mut phase_gates = Vec::new();
        let mut tasks = Vec::new();
        for p in &plan.phases {
            phases.push(find("id", &p.id));
            phase_gates.push(p.gates.iter().map(|g| find("name", &g.name)).collect());
            tasks.push(p.tasks.iter().map(|t| find("id", &t.id)).collect());
        }
        Anchors {
            name,
            plan_gates,
            phases,
            phase_gates,
            tasks,
        }
    }
}

struct Validator<'a> {
    plan: &'a Plan,
    src: Option<&'a str>,
    anchors: Anchors,
    out: Vec<Diagnostic>,
}

fn line_of(pos: Pos) -> usize {
    pos.map_or(0, |p| p.0)
}

impl Validator<'_> {
    fn error(&mut self, msg: String, pos: Pos) {
        self.out.push(Diagnostic::error(msg).at(pos));
    }

    fn warning(&mut self, msg: String, pos: Pos) {
        self.out.push(Diagnostic::warning(msg).at(pos));
    }

    /// The source to search for a location, while it is worth it: past
    /// [`super::diag::MAX_DIAGNOSTICS`] problems, none are shown, so none
    /// are searched for (each search reads the whole text).
    fn searchable(&self) -> Option<&str> {
        self.src
            .filter(|_| self.out.len() < super::diag::MAX_DIAGNOSTICS)
    }

    /// Where `key = value` is written, preferring the place nearest after `anchor`.
    fn kv(&self, key: &str, value: &str, anchor: Pos) -> Pos {
        let Some(src) = self.searchable() else {
            return anchor;
        };
        let found = locate::key_value_near(src, key, value, line_of(anchor));
        found.or(anchor)
    }

    fn item(&self, value: &str, anchor: Pos) -> Pos {
        let Some(src) = self.searchable() else {
            return anchor;
        };
        let found = locate::item_near(src, value, line_of(anchor));
        found.or(anchor)
    }

    fn duration(&mut self, what: &str, key: &str, value: Option<&String>, anchor: Pos) {
        if let Some(s) = value {
            if let Err(e) = parse_duration(s) {
                let pos = self.kv(key, s, anchor);
                self.error(format!("{what}: {e}"), pos);
            }
        }
    }

    fn run(&mut self, what: &str, value: Option<&String>, anchor: Pos) {
        if value.is_some_and(|r| r.trim().is_empty()) {
            let pos = self.kv("run", value.map_or("", |s| s.as_str()), anchor);
            self.error(
                format!("{what}: `run` is empty; give a command or remove the key"),
                pos,
            );
        }
    }

    fn plan_level(&mut self) {
        let plan = self.plan;
        if let Err(e) = validate_id("plan", &plan.name) {
            self.error(e, self.anchors.name);
        }
        if plan.base.as_ref().is_some_and(|b| b.trim().is_empty()) {
            let pos = self.src.and_then(|s| locate::key(s, "base"));
            self.error(
                "`base` is empty; name a revision or remove the key to build on HEAD".into(),
                pos,
            );
        }
        let d = &plan.defaults;
        self.duration("defaults.timeout", "timeout", d.timeout.as_ref(), None);
        if d.parallel == Some(0) {
            let pos = self
                .src
                .and_then(|s| locate::key_value(s, "parallel", "0", 0));
            self.error("defaults.parallel must be at least 1".into(), pos);
        }
        self.run("defaults", d.run.as_ref(), None);
        self.agents();
        if let Some(choice) = &d.agent {
            let pos = self.src.and_then(|s| locate::key(s, "agent"));
            self.agent_refs("defaults", choice, pos);
            if d.run.is_some() {
                self.warning(
                    "defaults: both `run` and `agent` are given; tasks without their own `run` use the agent".into(),
                    pos,
                );
            }
        }
        self.retry_keys(
            "defaults",
            d.retry_backoff.as_ref(),
            d.retry_on.as_ref(),
            None,
        );
        let anchors = self.anchors.plan_gates.clone();
        self.gates(&plan.gates, "gates", &anchors, &mut HashMap::new());
        self.notify();
        self.review_key("defaults", d.review.as_ref(), None);
        self.fix_key("defaults", d.on_gate_failure.as_ref(), None);
        self.fix_key("defaults", d.on_conflict.as_ref(), None);
        self.worktrees();
    }

    /// `[worktrees]`: a setup command that is not empty, patterns that are
    /// not empty, a valid timeout.
    fn worktrees(&mut self) {
        let w = &self.plan.worktrees;
        if let Some(setup) = &w.setup {
            if setup.trim().is_empty() {
                let pos = self.kv("setup", setup, None);
                self.error(
                    "worktrees.setup is empty; give a command or remove the key".into(),
                    pos,
                );
            }
        }
        for p in &w.include {
            if p.trim().is_empty() || p.trim_start().starts_with('#') || p.starts_with('!') {
                let pos = self.item(p, None);
                self.error(
                    format!("worktrees.include: `{p}` is not a pattern of files to copy (empty, a comment or a negation)"),
                    pos,
                );
            }
        }
        self.duration(
            "worktrees.setup_timeout",
            "setup_timeout",
            w.setup_timeout.as_ref(),
            None,
        );
    }

    /// `review`: `"manual"`, `{ run = "…" }` or `{ agent = "<an agent>" }`.
    fn review_key(&mut self, what: &str, review: Option<&super::Review>, pos: Pos) {
        let problem = match review {
            Some(super::Review::Word(w)) if w != "manual" => format!("{what}: `review = \"{w}\"` is not a reviewer; write `review = \"manual\"`, `review = {{ run = \"…\" }}` or `review = {{ agent = \"…\" }}`"),
            Some(super::Review::Run { run }) if run.trim().is_empty() => {
                format!("{what}: the review command is empty")
            }
            Some(super::Review::Agent { agent }) if !self.plan.agents.contains_key(agent) => {
                format!("{what}: review by unknown agent `{agent}`; add `[agents.{agent}]` with its `run`")
            }
            _ => return,
        };
        // Located only when wrong: a search for each of 10,000 phases or
        // tasks would read the whole text 10,000 times.
        let at = self
            .searchable()
            .and_then(|s| locate::key_near(s, "review", line_of(pos)))
            .or(pos);
        self.error(problem, at);
    }

    /// `on_gate_failure`: a known agent, at least one attempt.
    fn fix_key(&mut self, what: &str, fix: Option<&super::OnGateFailure>, pos: Pos) {
        let Some(fix) = fix else { return };
        let known = self.plan.agents.contains_key(&fix.agent);
        if known && fix.attempts != Some(0) {
            return;
        }
        let at = self
            .searchable()
            .and_then(|s| locate::key(s, "on_gate_failure"))
            .or(pos);
        if !known {
            self.error(
                format!("{what}: on_gate_failure names unknown agent `{}`; add `[agents.{}]` with its `run`", fix.agent, fix.agent),
                at,
            );
        }
        if fix.attempts == Some(0) {
            self.error(
                format!("{what}: on_gate_failure.attempts must be at least 1"),
                at,
            );
        }
    }

    /// `[agents.<name>]`: an id for a name, a command, a cap of at least 1,
    /// valid durations and pattern.
    fn agents(&mut self) {
        let plan = self.plan;
        for (name, agent) in &plan.agents {
            self.located(
                |s| locate::text(s, &format!("agents.{name}")).or_else(|| locate::key(s, name)),
                |v, pos| v.agent(name, agent, pos),
            );
        }
    }

    /// Runs `check` (which reports at its anchor `pos`) without an anchor,
    /// and again at the anchor `find` finds only when it reported
    /// something: finding the anchor of each of 20,000 agents or hooks
    /// that are fine would read the whole text 20,000 times.
    fn located(&mut self, find: impl Fn(&str) -> Pos, check: impl Fn(&mut Self, Pos)) {
        let before = self.out.len();
        check(self, None);
        if self.out.len() == before {
            return;
        }
        let Some(src) = self.src.filter(|_| before < super::diag::MAX_DIAGNOSTICS) else {
            return;
        };
        self.out.truncate(before);
        check(self, find(src));
    }

    /// A `command` agent runs its `run`; a kind's command line is built
    /// by git-orch from `command`, `model` and `args`, so it has no `run`.
    fn agent_kind(&mut self, what: &str, agent: &super::Agent, pos: Pos) {
        use super::AgentKind;
        if agent.kind == AgentKind::Command {
            if agent.run.trim().is_empty() {
                let at = self.kv("run", &agent.run, pos);
                self.error(
                    format!("{what}: `run` is missing or empty; give its command line, or a `kind` (claude-code, codex, aider)"),
                    at,
                );
            }
            for (key, set) in [
                ("command", agent.command.is_some()),
                ("model", agent.model.is_some()),
                ("args", !agent.args.is_empty()),
                ("shell", agent.shell.is_some()),
            ] {
                if set {
                    self.error(
                        format!("{what}: `{key}` is for a `kind` of agent (claude-code, codex, aider); a `run` agent's command line is its `run`"),
                        pos,
                    );
                }
            }
        } else if !agent.run.is_empty() {
            let at = self.kv("run", &agent.run, pos);
            self.error(
                format!(
                    "{what}: a `kind = \"{}\"` agent has no `run`: git-orch builds its command line; use `command`, `model` and `args`",
                    agent.kind.name()
                ),
                at,
            );
        }
        if agent.command.as_ref().is_some_and(|c| c.trim().is_empty()) {
            self.error(
                format!("{what}: `command` is empty; leave it out for the CLI on PATH"),
                pos,
            );
        }
        // What no command line or environment can carry: refused here,
        // not found out by the task that cannot start.
        let mut strings: Vec<(&str, &str)> = vec![("run", &agent.run)];
        strings.extend(agent.command.as_deref().map(|c| ("command", c)));
        strings.extend(agent.model.as_deref().map(|m| ("model", m)));
        strings.extend(agent.args.iter().map(|a| ("args", a.as_str())));
        strings.extend(
            agent
                .env
                .iter()
                .flat_map(|(k, v)| [("env", k.as_str()), ("env", v.as_str())]),
        );
        if let Some((key, _)) = strings.iter().find(|(_, s)| s.contains('\0')) {
            self.error(
                format!("{what}: `{key}` holds a NUL character, which no command line or environment can carry"),
                pos,
            );
        }
        for name in agent.env.keys() {
            if name.is_empty() || name.contains('=') {
                self.error(
                    format!(
                        "{what}: `env` names a variable `{}`: a name is not empty and has no `=`",
                        name.escape_debug()
                    ),
                    pos,
                );
            }
        }
    }

    fn agent(&mut self, name: &str, agent: &super::Agent, pos: Pos) {
        let what = format!("agent `{name}`");
        if let Err(e) = validate_id("agent", name) {
            self.error(e, pos);
        }
        self.agent_kind(&what, agent, pos);
        if agent.parallel == Some(0) {
            let at = self.kv("parallel", "0", pos);
            self.error(
                format!("{what}: `parallel` must be at least 1 (leave it out for no cap)"),
                at,
            );
        }
        self.duration(
            &format!("{what} timeout"),
            "timeout",
            agent.timeout.as_ref(),
            pos,
        );
        self.retry_keys(
            &what,
            agent.retry_backoff.as_ref(),
            agent.retry_on.as_ref(),
            pos,
        );
        if let Some(limit) = &agent.usage_limit {
            self.duration(
                &format!("{what} usage_limit.wait"),
                "wait",
                limit.wait.as_ref(),
                pos,
            );
            if limit.parks == Some(0) {
                let at = self.kv("parks", "0", pos);
                self.error(
                    format!("{what}: `usage_limit.parks` must be at least 1 (a usage limit parks its task; leave it out for {})", super::MAX_PARKS),
                    at,
                );
            }
            if let Some(pattern) = &limit.output {
                if let Err(e) = regex::Regex::new(pattern) {
                    let at = self.kv("output", pattern, pos);
                    let e = e.to_string();
                    let last = e.lines().last().unwrap_or("").trim();
                    let last = last.trim_start_matches("error: ").to_string();
                    self.error(
                        format!("{what}: `usage_limit.output` is not a regular expression: {last}"),
                        at,
                    );
                }
            }
        }
    }

    /// A task's or the defaults' `agent`: names of `[agents]`, at least one.
    fn agent_refs(&mut self, what: &str, choice: &super::AgentChoice, pos: Pos) {
        let names = choice.names();
        if names.is_empty() {
            let at = self
                .searchable()
                .and_then(|s| locate::key_near(s, "agent", line_of(pos)));
            self.error(
                format!("{what}: `agent` is an empty list; name at least one agent"),
                at.or(pos),
            );
        }
        for name in names {
            if self.plan.agents.contains_key(name) {
                continue;
            }
            let at = match self.searchable() {
                Some(src) => locate::key_value_near(src, "agent", name, line_of(pos))
                    .or_else(|| locate::item_near(src, name, line_of(pos)))
                    .or(pos),
                None => pos,
            };
            let known: Vec<String> = self.plan.agents.keys().map(|k| format!("`{k}`")).collect();
            let msg = if known.is_empty() {
                format!("{what}: unknown agent `{name}`; the plan has no `[agents]`: add `[agents.{name}]` with its `run`")
            } else {
                format!(
                    "{what}: unknown agent `{name}`; the plan's agents are {}",
                    known.join(", ")
                )
            };
            self.error(msg, at);
        }
    }

    /// `retry_backoff` is a duration, `retry_on.output` a regular expression.
    fn retry_keys(
        &mut self,
        what: &str,
        backoff: Option<&String>,
        on: Option<&super::RetryOn>,
        pos: Pos,
    ) {
        if let Some(b) = backoff {
            if let Err(e) = super::parse_backoff(b) {
                let at = self.kv("retry_backoff", b, pos);
                self.error(format!("{what} retry_backoff: {e}"), at);
            }
        }
        if on.is_some_and(|o| o.exit_codes.contains(&super::USAGE_LIMIT_EXIT)) {
            let at = self.searchable().and_then(|src| {
                let near = locate::key_near(src, "retry_on", line_of(pos)).or(pos);
                locate::key_near(src, "exit_codes", line_of(near))
            });
            self.warning(
                format!(
                    "{what}: `retry_on.exit_codes` lists {code}, which never retries: exit {code} is a usage limit and always parks the task (see `usage_limit`); drop {code} from the list",
                    code = super::USAGE_LIMIT_EXIT
                ),
                at.or(pos),
            );
        }
        if let Some(pattern) = on.and_then(|o| o.output.as_ref()) {
            if let Err(e) = regex::Regex::new(pattern) {
                let at = self.kv("output", pattern, pos);
                let e = e.to_string();
                let last = e.lines().last().unwrap_or("").trim();
                let last = last.trim_start_matches("error: ").to_string();
                self.error(
                    format!("{what}: `retry_on.output` is not a regular expression: {last}"),
                    at,
                );
            }
        }
    }

    /// `[[notify]]`: a command, known event names, a valid timeout.
    fn notify(&mut self) {
        let plan = self.plan;
        for (i, n) in plan.notify.iter().enumerate() {
            self.located(
                |s| locate::key_value(s, "run", &n.run, 0),
                |v, pos| v.notify_hook(i, n, pos),
            );
        }
    }

    fn notify_hook(&mut self, i: usize, n: &super::Notify, pos: Pos) {
        let what = format!("notify[{i}]");
        if n.run.trim().is_empty() {
            self.error(
                format!("{what}: `run` is empty; give a command or remove the hook"),
                pos,
            );
        }
        for e in n.events.iter().flatten() {
            if !super::NOTIFY_EVENTS.contains(&e.as_str()) {
                let at = self.item(e, pos);
                self.error(
                    format!(
                        "{what}: unknown event `{e}`; events are {}",
                        super::NOTIFY_EVENTS.join(", ")
                    ),
                    at,
                );
            }
        }
        self.duration(
            &format!("{what} timeout"),
            "timeout",
            n.timeout.as_ref(),
            pos,
        );
    }

    /// Gate names become file names, so they follow the id rules, and must
    /// be unique among the gates one checkpoint runs.
    fn gates<'g>(
        &mut self,
        gates: &'g [Gate],
        path: &str,
        anchors: &[Pos],
        names: &mut HashMap<&'g str, String>,
    ) {
        for (i, g) in gates.iter().enumerate() {
            let here = format!("{path}[{i}]");
            let pos = anchors.get(i).copied().flatten();
            if let Err(e) = validate_id("gate", &g.name) {
                self.error(format!("{here}: {e}"), pos);
            } else if let Some(first) = names.get(g.name.as_str()) {
                self.error(
                    format!("gate name `{}` is used twice ({first} and {here})", g.name),
                    pos,
                );
            } else {
                names.insert(&g.name, here.clone());
            }
            self.run(&format!("gate `{}`", g.name), Some(&g.run), pos);
            self.duration(
                &format!("gate `{}` timeout", g.name),
                "timeout",
                g.timeout.as_ref(),
                pos,
            );
        }
    }

    fn phases(&mut self) {
        let plan = self.plan;
        if plan.phases.is_empty() {
            self.error(
                "the plan has no phases; add at least one phase with tasks".into(),
                None,
            );
        }
        let mut phase_ids: HashMap<&str, usize> = HashMap::new();
        let mut task_ids: HashMap<&str, &str> = HashMap::new();
        let plan_gate_names: HashMap<&str, String> = plan
            .gates
            .iter()
            .enumerate()
            .map(|(i, g)| (g.name.as_str(), format!("gates[{i}]")))
            .collect();
        for (i, phase) in plan.phases.iter().enumerate() {
            let pos = self.anchors.phases[i];
            let what = format!("phase `{}`", phase.id);
            self.review_key(&what, phase.review.as_ref(), pos);
            self.fix_key(&what, phase.on_gate_failure.as_ref(), pos);
            self.fix_key(&what, phase.on_conflict.as_ref(), pos);
            if let Err(e) = validate_id("phase", &phase.id) {
                self.error(e, pos);
            } else if let Some(first) = phase_ids.get(phase.id.as_str()) {
                let msg = format!(
                    "phase id `{}` is used twice (phases[{first}] and phases[{i}])",
                    phase.id
                );
                self.error(msg, pos);
            } else {
                phase_ids.insert(&phase.id, i);
            }
            let anchors = self.anchors.phase_gates[i].clone();
            self.gates(
                &phase.gates,
                &format!("phases[{i}].gates"),
                &anchors,
                &mut plan_gate_names.clone(),
            );
            if phase.tasks.is_empty() {
                self.error(
                    format!(
                        "phase `{}` has no tasks; add tasks or remove the phase",
                        phase.id
                    ),
                    pos,
                );
            }
            if plan.gates.is_empty() && phase.gates.is_empty() {
                let msg = format!(
                    "phase `{}` has no gates: its checkpoint checks nothing",
                    phase.id
                );
                self.warning(msg, pos);
            }
            for (j, task) in phase.tasks.iter().enumerate() {
                let pos = self.anchors.tasks[i][j];
                if let Err(e) = validate_id("task", &task.id) {
                    self.error(e, pos);
                } else if let Some(first) = task_ids.get(task.id.as_str()) {
                    let msg = format!(
                        "task id `{}` is used twice (in phase `{first}` and phase `{}`); task ids must be unique in the plan",
                        task.id, phase.id
                    );
                    self.error(msg, pos);
                } else {
                    task_ids.insert(&task.id, &phase.id);
                }
                self.task(task, pos);
            }
        }
        // The state tree keeps task `x`'s record as `x.json` beside its
        // directory `x/`: a task named `x.json` would be both.
        for (i, phase) in plan.phases.iter().enumerate() {
            for (j, task) in phase.tasks.iter().enumerate() {
                if let Some(other) = task.id.strip_suffix(".json") {
                    if task_ids.contains_key(other) {
                        let msg = format!(
                            "task id `{}` is task `{other}`'s record file name in the state branch; rename one of them",
                            task.id
                        );
                        self.error(msg, self.anchors.tasks[i][j]);
                    }
                }
            }
        }
    }

    fn task(&mut self, task: &Task, pos: Pos) {
        let what = format!("task `{}`", task.id);
        self.review_key(&what, task.review.as_ref(), pos);
        self.run(&what, task.run.as_ref(), pos);
        if let Some(choice) = &task.agent {
            self.agent_refs(&what, choice, pos);
            if task.run.is_some() {
                let at = self
                    .searchable()
                    .and_then(|s| locate::key_near(s, "agent", line_of(pos)));
                self.warning(
                    format!("{what}: both `run` and `agent` are given; its own `run` is used and the agent is not"),
                    at.or(pos),
                );
            }
        }
        self.retry_keys(
            &what,
            task.retry_backoff.as_ref(),
            task.retry_on.as_ref(),
            pos,
        );
        self.duration(
            &format!("{what} estimate"),
            "estimate",
            task.estimate.as_ref(),
            pos,
        );
        self.duration(
            &format!("{what} timeout"),
            "timeout",
            task.timeout.as_ref(),
            pos,
        );
        for (key, globs) in [("files", &task.files), ("reads", &task.reads)] {
            for g in globs {
                if let Err(e) = check_glob(g) {
                    let at = self.item(g, pos);
                    self.error(format!("{what} `{key}`: {e}"), at);
                }
            }
        }
        if !self.plan.task_network(task)
            && self.plan.task_isolation(task) != super::Isolation::Sandbox
        {
            let at = self.kv("network", "false", pos);
            self.error(
                format!("{what}: `network = false` needs `isolation = \"sandbox\"`"),
                at,
            );
        }
        if task.files.is_empty() && !task.skip {
            let msg =
                format!("{what} declares no `files`: it may write anywhere, so it will run alone");
            self.warning(msg, pos);
        }
    }

    /// Unknown, self, later-phase and cyclic dependencies.
    fn dependencies(&mut self) {
        let plan = self.plan;
        // First occurrence wins for duplicated ids; duplicates are reported elsewhere.
        let mut index: HashMap<&str, (usize, usize)> = HashMap::new();
        let mut flat: Vec<(usize, usize, &Task)> = Vec::new();
        for (i, phase) in plan.phases.iter().enumerate() {
            for (j, task) in phase.tasks.iter().enumerate() {
                index.entry(task.id.as_str()).or_insert((i, flat.len()));
                flat.push((i, j, task));
            }
        }
        let mut edges: Vec<Vec<usize>> = vec![Vec::new(); flat.len()];
        for (k, &(i, j, task)) in flat.iter().enumerate() {
            let pos = self.anchors.tasks[i][j];
            for dep in &task.depends_on {
                // Located only when wrong: searching the text for each of
                // 10,000 dependencies would be quadratic.
                let at = || self.item(dep, pos);
                match index.get(dep.as_str()) {
                    _ if *dep == task.id => {
                        self.error(format!("task `{}` depends on itself", task.id), at());
                    }
                    None => {
                        let msg = format!("task `{}` depends on unknown task `{dep}`", task.id);
                        self.error(msg, at());
                    }
                    Some(&(dep_phase, _)) if dep_phase > i => {
                        let msg = format!(
                            "task `{}` (phase `{}`) depends on `{dep}` of the later phase `{}`; \
                             a task may depend only on tasks of its own or an earlier phase",
                            task.id, plan.phases[i].id, plan.phases[dep_phase].id
                        );
                        self.error(msg, at());
                    }
                    Some(&(_, target)) => edges[k].push(target),
                }
            }
        }
        for cycle in find_cycles(&edges) {
            let mut names: Vec<&str> = cycle.iter().map(|&k| flat[k].2.id.as_str()).collect();
            names.push(names[0]);
            let (i, j, _) = flat[cycle[0]];
            let msg = format!(
                "dependency cycle: {} (each task depends on the next)",
                names.join(" -> ")
            );
            self.error(msg, self.anchors.tasks[i][j]);
        }
    }
}

/// Each cycle found by a depth-first search, as node indices in dependency
/// order, starting from the node reached first in plan order. The search
/// keeps its own stack, so a chain of any length cannot overflow the
/// thread's (a 10,000-task chain used to).
fn find_cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let mut mark = vec![Mark::New; edges.len()];
    let mut out = Vec::new();
    // The path being explored, each node with the index of its next edge.
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for root in 0..edges.len() {
        if mark[root] != Mark::New {
            continue;
        }
        mark[root] = Mark::OnStack;
        stack.push((root, 0));
        while let Some(&mut (u, ref mut next)) = stack.last_mut() {
            let Some(&v) = edges[u].get(*next) else {
                mark[u] = Mark::Done;
                stack.pop();
                continue;
            };
            *next += 1;
            match mark[v] {
                Mark::New => {
                    mark[v] = Mark::OnStack;
                    stack.push((v, 0));
                }
                Mark::OnStack => {
                    if let Some(at) = stack.iter().position(|&(x, _)| x == v) {
                        out.push(stack[at..].iter().map(|&(x, _)| x).collect());
                    }
                }
                Mark::Done => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_in_dependency_order() {
        // 0 -> 1 -> 2 -> 0, and 3 -> 3 excluded (self edges never reach here).
        let edges = vec![vec![1], vec![2], vec![0], vec![]];
        assert_eq!(find_cycles(&edges), vec![vec![0, 1, 2]]);
        let two = vec![vec![1], vec![0], vec![3], vec![2]];
        assert_eq!(find_cycles(&two).len(), 2);
    }
}
