use std::io::Read;

use anyhow::Result;
use git2::Oid;
use serde_json::json;

use super::checkpoint::{gates_json, print_gates};
use super::{open_plan, open_repo};
use crate::cli::GateArgs;
use crate::engine::gates::{self, GateOptions, GateRun};
use crate::error::{refuse, refuse_with_hint};
use crate::git::{short, Repo};
use crate::state::store;
use crate::ui;

pub fn run(args: GateArgs) -> Result<u8> {
    if let Some(pre_push) = &args.pre_push {
        return pre_push_gate(&args, &pre_push[0]);
    }
    let (repo, snap) = open_plan(args.plan.as_deref())?;
    let plan = snap.plan_name.clone();
    let commit = match &args.commit {
        Some(rev) => repo.resolve_commit(rev)?,
        None => repo.head_commit()?,
    };
    let mut list: Vec<&crate::plan::Gate> = snap.plan.gates.iter().collect();
    if let Some(phase) = &args.phase {
        let p = snap.plan.phase(phase).ok_or_else(|| {
            refuse_with_hint(
                format!("plan `{plan}` has no phase `{phase}`"),
                "see `git orch status`",
            )
        })?;
        list.extend(p.gates.iter());
    }
    if list.is_empty() {
        ui::note(&format!(
            "plan {plan} has no gates{}",
            args.phase
                .as_ref()
                .map_or(String::new(), |p| format!(" for phase {p}"))
        ));
    }
    let runs = run_and_record(&repo, &snap, &list, commit, &args)?;
    let passed = runs.iter().all(|r| r.result.passed);
    if args.json {
        ui::json(
            &json!({ "plan": plan, "commit": commit.to_string(), "passed": passed, "gates": gates_json(&runs) }),
        );
    } else {
        print_gates(&plan, &runs);
    }
    Ok(if passed { 0 } else { 1 })
}

fn run_and_record(
    repo: &Repo,
    snap: &store::Snapshot,
    list: &[&crate::plan::Gate],
    commit: Oid,
    args: &GateArgs,
) -> Result<Vec<GateRun>> {
    let on_line =
        |gate: &str, line: &str| ui::note(&format!("{} {line}", ui::dim(&format!("[{gate}]"))));
    let on_start = |gate: &str| ui::note(&format!("running gate {gate} on {}…", short(commit)));
    let opts = GateOptions {
        no_cache: args.no_cache,
        jobs: args.jobs,
        on_line: &on_line,
        on_start: &on_start,
    };
    let runs = gates::run_gates(repo, snap, list, commit, &opts)?;
    gates::record_adhoc(repo, &snap.plan_name, &runs)?;
    Ok(runs)
}

/// One pushed ref, as git writes it on the hook's stdin (githooks(5)).
struct Pushed {
    local_ref: String,
    local: Oid,
}

fn parse_push_lines(input: &str) -> Result<Vec<Pushed>> {
    let mut out = Vec::new();
    for (n, line) in input.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [local_ref, local_sha, _remote_ref, remote_sha] = fields[..] else {
            return Err(refuse(format!(
                "pre-push input line {} is malformed: `{line}` (expected 4 fields)",
                n + 1
            )));
        };
        let local = Oid::from_str(local_sha).map_err(|_| {
            refuse(format!(
                "pre-push input line {}: `{local_sha}` is not an object id",
                n + 1
            ))
        })?;
        Oid::from_str(remote_sha).map_err(|_| {
            refuse(format!(
                "pre-push input line {}: `{remote_sha}` is not an object id",
                n + 1
            ))
        })?;
        out.push(Pushed {
            local_ref: local_ref.to_string(),
            local,
        });
    }
    Ok(out)
}

/// Which plans' gates hold a pushed ref (SPEC §5).
fn plans_for(local_ref: &str, configured: &[String]) -> Vec<String> {
    if local_ref.starts_with("refs/tags/") {
        return Vec::new();
    }
    if let Some(rest) = local_ref.strip_prefix("refs/heads/orch/") {
        if let Some(plan) = rest.strip_suffix("/work") {
            if !plan.contains('/') {
                return vec![plan.to_string()];
            }
        }
        // The state branch and task branches carry records and unfinished
        // work, not code the plan vouches for.
        return Vec::new();
    }
    if local_ref.starts_with("refs/heads/") {
        return configured.to_vec();
    }
    Vec::new()
}

fn pre_push_gate(args: &GateArgs, remote: &str) -> Result<u8> {
    if std::env::var("ORCH_SKIP_GATES").as_deref() == Ok("1") {
        ui::warn("ORCH_SKIP_GATES=1: git-orch gates skipped");
        return Ok(0);
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| refuse(format!("cannot read the pushed refs on stdin: {e}")))?;
    let pushed = parse_push_lines(&input)?;
    let repo = open_repo()?;
    let configured = configured_plans(&repo)?;
    let mut all_runs = Vec::new();
    let mut blocked = false;
    for p in &pushed {
        if p.local.is_zero() {
            continue;
        }
        for plan in plans_for(&p.local_ref, &configured) {
            let snap = store::load(&repo, &plan).map_err(|_| {
                refuse_with_hint(
                    format!("pushing {} needs the gates of plan `{plan}`, which is not in this repository", p.local_ref),
                    "fix `git config --get-all orch.prePush`, or push with --no-verify",
                )
            })?;
            let list: Vec<&crate::plan::Gate> = snap.plan.gates.iter().collect();
            let commit = repo
                .git
                .find_object(p.local, None)
                .and_then(|o| o.peel_to_commit())
                .map(|c| c.id())
                .map_err(|_| refuse(format!("{} is not a commit", p.local)))?;
            let runs = run_and_record(&repo, &snap, &list, commit, args)?;
            for r in runs.iter().filter(|r| !r.result.passed) {
                blocked = true;
                ui::error(&format!(
                    "push of {} to {remote} blocked: gate `{}` of plan {plan} failed on {} ({}); log: `git show orch/{plan}/state:{}`",
                    p.local_ref,
                    r.result.name,
                    short(commit),
                    r.result.reason.as_deref().unwrap_or("failed"),
                    r.result.log
                ));
            }
            for r in runs.iter().filter(|r| r.result.passed) {
                ui::note(&format!(
                    "gate {} of plan {plan}: passed{} on {}",
                    r.result.name,
                    if r.result.cached { " (cached)" } else { "" },
                    short(commit)
                ));
            }
            all_runs.extend(runs);
        }
    }
    if args.json {
        ui::json(&json!({ "remote": remote, "blocked": blocked, "gates": gates_json(&all_runs) }));
    }
    if blocked {
        ui::hint("fix the failure and push again; `git push --no-verify` or ORCH_SKIP_GATES=1 skips the gates");
        return Ok(1);
    }
    Ok(0)
}

fn configured_plans(repo: &Repo) -> Result<Vec<String>> {
    let mut plans = Vec::new();
    let config = repo.git.config()?;
    let mut entries = config.multivar("orch.prePush", None)?;
    while let Some(entry) = entries.next() {
        let entry = entry?;
        if let Some(v) = entry.value() {
            for plan in v.split([',', ' ']).filter(|s| !s.is_empty()) {
                if !plans.iter().any(|p| p == plan) {
                    plans.push(plan.to_string());
                }
            }
        }
    }
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_branch_is_held_to_its_plan_and_records_are_not() {
        let configured = vec!["p".to_string()];
        assert_eq!(
            plans_for("refs/heads/orch/n/work", &configured),
            vec!["n".to_string()]
        );
        assert!(plans_for("refs/heads/orch/n/state", &configured).is_empty());
        assert!(plans_for("refs/heads/orch/n/tasks/a", &configured).is_empty());
        assert!(plans_for("refs/tags/v1", &configured).is_empty());
        assert_eq!(plans_for("refs/heads/main", &configured), configured);
    }

    #[test]
    fn malformed_lines_are_refused() {
        assert!(parse_push_lines("refs/heads/main abc").is_err());
        assert!(parse_push_lines("a b c d").is_err());
        let zero = "0".repeat(40);
        assert_eq!(
            parse_push_lines(&format!("refs/heads/x {zero} refs/heads/x {zero}\n"))
                .map(|v| v.len())
                .unwrap_or(0),
            1
        );
    }
}
