//! `git orch agents`: each agent profile of a plan, its kind, the CLI found
//! on PATH and its version (and whether the tests ran that version), and
//! the command line git-orch passes. A missing CLI or an untested version
//! is a warning, never an error. Also `git orch guard`, the hook git-orch
//! gives Claude Code.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::agent::{self, Context, Purpose};
use crate::cli::{AgentsArgs, GuardArgs, TaskShowArgs};
use crate::engine::workspace;
use crate::error::refuse_with_hint;
use crate::plan::{Agent, AgentKind, Plan};
use crate::ui;

/// The versions the suite ran each CLI at (`tests/tools.versions`), and
/// the range taken as tested: the same minor release, that patch or later.
pub const TESTED: &[(AgentKind, &str)] = &[
    (AgentKind::ClaudeCode, "2.1.197"),
    (AgentKind::Codex, "0.171.0"),
    (AgentKind::Aider, "0.86.2"),
];

#[derive(Serialize)]
struct Row {
    name: String,
    kind: &'static str,
    /// The program the profile runs (`command`, or the kind's default).
    command: String,
    /// Where it was found on PATH; null: not found.
    found: Option<String>,
    version: Option<String>,
    /// `>=2.1.197, <2.2`; null for a `command` agent.
    tested: Option<String>,
    /// Whether `version` is in `tested`; null when either is unknown.
    tested_version: Option<bool>,
    /// What git-orch runs for an attempt (paths of one task shown as
    /// `<worktree>`, `<brief>`, `<agent-dir>`).
    argv: Vec<String>,
    env: Vec<(String, String)>,
    warnings: Vec<String>,
}

pub fn run(args: AgentsArgs) -> Result<u8> {
    let (plan, trusted) = load(args.plan.as_deref())?;
    let rows: Vec<Row> = plan
        .agents
        .iter()
        .map(|(name, profile)| row(name, profile, trusted))
        .collect();
    if args.json {
        ui::json_doc(
            crate::schema::Schema::Agents,
            &serde_json::json!({ "plan": plan.name, "agents": rows }),
        )?;
        return Ok(0);
    }
    if rows.is_empty() {
        ui::out(&format!(
            "plan {} has no [agents]; `git orch init` writes profiles for Claude Code, Codex and aider",
            plan.name
        ));
        return Ok(0);
    }
    for r in &rows {
        let found = match (&r.found, &r.version) {
            (Some(p), Some(v)) => format!("{p} ({v})"),
            (Some(p), None) => format!("{p} (version unknown)"),
            (None, _) => "not found on PATH".into(),
        };
        // A plan's strings (a shared plan's too) never drive the terminal.
        ui::out(&ui::printable(&format!(
            "{}  kind {}  {}",
            r.name, r.kind, found
        )));
        if let Some(t) = &r.tested {
            ui::out(&format!("  tested: {t}"));
        }
        let line: Vec<String> = r.argv.iter().map(|a| agent::quote(a)).collect();
        ui::out(&ui::printable(&format!("  runs: {}", line.join(" "))));
        for w in &r.warnings {
            ui::note(&format!(
                "{} {}",
                ui::yellow("warning:"),
                ui::printable(&format!("agent {}: {w}", r.name))
            ));
        }
    }
    Ok(0)
}

/// A started plan by name (or the one active plan), or a plan file.
/// The plan, and whether its commands are trusted here (a plan file is
/// not: it is what one reads before trusting it).
fn load(named: Option<&str>) -> Result<(Plan, bool)> {
    if let Some(path) = named.map(Path::new).filter(|p| p.is_file()) {
        return crate::plan::load_file(path)
            .map(|(p, _)| (p, false))
            .map_err(|problems| {
                let shown = path.display().to_string();
                let first = problems
                    .iter()
                    .find(|d| d.is_error())
                    .map_or(String::new(), |d| d.render(&shown));
                refuse_with_hint(
                    format!("invalid plan: {first}"),
                    format!("see every problem with `git orch check {shown}`"),
                )
            });
    }
    let (repo, snap) = super::open_plan(named)?;
    let trusted = crate::trust::is_trusted(&repo, &snap);
    Ok(((*snap.plan).clone(), trusted))
}

fn row(name: &str, profile: &Agent, trusted: bool) -> Row {
    let program = agent::program(profile);
    let files: Vec<String> = Vec::new();
    let cx = Context {
        worktree: Path::new("<worktree>"),
        brief: Path::new("<brief>"),
        dir: Path::new("<agent-dir>"),
        files: &files,
        purpose: Purpose::Work,
        resume: None,
    };
    let inv = agent::invocation(name, profile, &cx);
    let mut warnings = Vec::new();
    let (found, version, tested, tested_version) = if profile.kind.is_command() {
        (None, None, None, None)
    } else {
        let found = which(&program);
        // Asking a CLI its version runs it: a program the plan names by
        // path (or one found through a relative `PATH` entry) is the
        // plan's own, run only once the plan is trusted here.
        let plans_own = program.contains('/') || found.as_ref().is_some_and(|p| p.is_relative());
        let version = found
            .as_deref()
            .filter(|_| trusted || !plans_own)
            .and_then(version_of);
        if found.is_some() && plans_own && !trusted {
            warnings.push(format!(
                "`{program}` is not run for its version: the plan names it and is not trusted here (`git orch trust`)"
            ));
        }
        let pinned = TESTED
            .iter()
            .find(|(k, _)| *k == profile.kind)
            .map(|(_, v)| *v);
        let range = pinned.map(range_of);
        let ok = match (&version, pinned) {
            (Some(v), Some(p)) => Some(in_range(v, p)),
            _ => None,
        };
        match (&found, &version, ok) {
            (None, _, _) => warnings.push(format!(
                "`{program}` is not on PATH; its tasks fail to start until it is installed"
            )),
            (Some(_), None, _) if trusted || !plans_own => {
                warnings.push(format!("`{program} --version` said no version"))
            }
            (Some(_), None, _) => {}
            (Some(_), Some(v), Some(false)) => warnings.push(format!(
                "version {v} is not one the tests ran ({}); its output may be read wrongly",
                range.clone().unwrap_or_default()
            )),
            _ => {}
        }
        (found.map(|p| p.display().to_string()), version, range, ok)
    };
    Row {
        name: name.to_string(),
        kind: profile.kind.name(),
        command: program,
        found,
        version,
        tested,
        tested_version,
        argv: inv.argv,
        env: inv.env,
        warnings,
    }
}

/// `program` as `sh` would find it.
fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The first `x.y.z` in what `program --version` prints (10 s at most).
fn version_of(program: &Path) -> Option<String> {
    let mut child = std::process::Command::new(program)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .env("DISABLE_AUTOUPDATER", "1")
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    child
        .stdout
        .take()?
        .take(4096)
        .read_to_string(&mut out)
        .ok()?;
    out.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|w| w.split('.').filter(|p| !p.is_empty()).count() >= 3)
        .map(|w| w.trim_matches('.').to_string())
}

fn parts(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

fn range_of(pinned: &str) -> String {
    let p = parts(pinned);
    format!(
        ">={pinned}, <{}.{}",
        p.first().copied().unwrap_or(0),
        p.get(1).copied().unwrap_or(0) + 1
    )
}

fn in_range(version: &str, pinned: &str) -> bool {
    let (v, p) = (parts(version), parts(pinned));
    v.len() >= 2 && p.len() >= 2 && v[0] == p[0] && v[1] == p[1] && v >= p
}

/// `git orch guard`: exit 0 lets the call through, 2 refuses it with the
/// reason on stderr (which Claude Code gives the model).
pub fn guard(args: GuardArgs) -> Result<u8> {
    let mut input = Vec::new();
    let read = std::io::stdin()
        .take(8 << 20)
        .read_to_end(&mut input)
        .map_err(|e| e.to_string());
    let rules = agent::guard::Rules {
        worktree: &args.worktree,
        files: &args.files,
        shell: args.shell,
        read_only: args.read_only,
    };
    match read.and_then(|_| agent::guard::check(&input, &rules)) {
        Ok(()) => Ok(0),
        Err(why) => {
            ui::note(&format!("git-orch refused this call: {why}"));
            Ok(2)
        }
    }
}

/// `git orch task show ID [--agent]`.
pub fn show_task(args: TaskShowArgs) -> Result<u8> {
    let (repo, snap) = super::open_plan(args.plan.as_deref())?;
    let plan = snap.plan_name.clone();
    let Some((_, task)) = snap.plan.task(&args.id) else {
        return Err(refuse_with_hint(
            format!("plan {plan} has no task `{}`", args.id),
            "see its tasks with `git orch status`",
        ));
    };
    let record = snap.task(&args.id)?;
    // The agent of its latest attempt, else the first the plan gives it.
    let name = record
        .agent
        .clone()
        .or_else(|| snap.plan.task_agents(task).first().cloned());
    let invocation = name.as_ref().and_then(|n| {
        let profile = snap.plan.agents.get(n)?;
        let resume = record
            .usage
            .iter()
            .rev()
            .find(|u| u.agent.as_deref() == Some(n.as_str()) && u.session.is_some())
            .and_then(|u| u.session.clone());
        let worktree = workspace::task_worktree(&repo, &plan, &task.id);
        let brief = workspace::task_file(&repo, &plan, &task.id);
        let dir = workspace::agent_dir(&repo, &plan, &task.id);
        let cx = Context {
            worktree: &worktree,
            brief: &brief,
            dir: &dir,
            files: &task.files,
            purpose: Purpose::Work,
            resume: resume.as_deref(),
        };
        Some(agent::invocation(n, profile, &cx))
    });
    if args.json {
        let inv = invocation.as_ref().filter(|_| args.agent);
        ui::json_doc(
            crate::schema::Schema::TaskShow,
            &serde_json::json!({
                "plan": plan,
                "task": task.id,
                "state": record.state().as_str(),
                "agent": name,
                "attempts": record.attempts,
                "usage": record.usage,
                "invocation": inv.map(|i| serde_json::json!({
                    "argv": i.argv,
                    "env": i.env,
                    "stdin": i.stdin.as_ref().map(|p| p.display().to_string()),
                    "line": i.line(),
                })),
            }),
        )?;
        return Ok(0);
    }
    if args.agent {
        let Some(inv) = invocation else {
            ui::out(&format!(
                "task {} runs no agent: its own `run` (or `defaults.run`)",
                task.id
            ));
            return Ok(0);
        };
        ui::out(&format!("agent: {}", name.unwrap_or_default()));
        let argv: Vec<String> = inv.argv.iter().map(|a| agent::quote(a)).collect();
        // A plan's strings (a shared plan's too) never drive the terminal.
        ui::out(&ui::printable(&format!("argv: {}", argv.join(" "))));
        if let Some(f) = &inv.stdin {
            ui::out(&ui::printable(&format!("stdin: {}", f.display())));
        }
        for (k, v) in &inv.env {
            ui::out(&ui::printable(&format!("env: {k}={v}")));
        }
        return Ok(0);
    }
    ui::out(&format!(
        "task {}: {}, {} attempt(s){}",
        task.id,
        record.state().as_str(),
        record.attempts,
        name.map(|n| format!(", agent {n}")).unwrap_or_default()
    ));
    for u in &record.usage {
        let mut line = format!(
            "  attempt {}: {} tokens in ({} cached), {} out",
            u.attempt,
            u.tokens_in.unwrap_or(0),
            u.tokens_cached.unwrap_or(0),
            u.tokens_out.unwrap_or(0)
        );
        if let Some(c) = u.cost_usd {
            line += &format!(", ${c:.4}");
        }
        if let Some(m) = &u.model {
            line += &format!(", model {m}");
        }
        if let Some(s) = &u.session {
            line += &format!(", session {s}{}", if u.resumed { " (resumed)" } else { "" });
        }
        if let Some(o) = &u.outcome {
            line += &format!(", {o}");
        }
        if let Some(r) = &u.reason {
            line += &format!(": {r}");
        }
        ui::out(&line);
        for d in &u.denied {
            ui::out(&format!("    refused: {d}"));
        }
        if let Some(e) = &u.error {
            ui::out(&format!("    usage file: {e}"));
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_is_tested_within_its_minor_release_from_the_pinned_patch() {
        assert!(in_range("2.1.197", "2.1.197"));
        assert!(in_range("2.1.200", "2.1.197"));
        assert!(!in_range("2.1.100", "2.1.197"));
        assert!(!in_range("2.2.0", "2.1.197"));
        assert_eq!(range_of("0.171.0"), ">=0.171.0, <0.172");
    }
}
