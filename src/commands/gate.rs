use std::io::Read;

use anyhow::Result;
use git2::Oid;
use serde_json::json;

use super::checkpoint::gates_json;
use super::{open_plan_to_run, open_repo};
use crate::cli::GateArgs;
use crate::engine::gates::{self, GateOptions, GateRun};
use crate::error::{refuse, refuse_with_hint};
use crate::git::{short, Repo};
use crate::schema::Schema;
use crate::state::store;
use crate::ui;

pub fn run(args: GateArgs) -> Result<u8> {
    if let Some(pre_push) = &args.pre_push {
        return pre_push_gate(&args, &pre_push[0]);
    }
    let (repo, snap) = open_plan_to_run(args.plan.as_deref())?;
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
        ui::json_doc(
            Schema::Gate,
            &json!({ "plan": plan, "commit": commit.to_string(), "passed": passed, "gates": gates_json(&runs) }),
        )?;
    } else {
        for r in &runs {
            ui::note(&gate_line(&plan, r));
        }
    }
    Ok(if passed { 0 } else { 1 })
}

/// `gate unit: passed in 1.2s; log: `git orch log p logs/gates/…``, one
/// per gate; a failure also says why and on which commit.
fn gate_line(plan: &str, run: &GateRun) -> String {
    let r = &run.result;
    let verdict = if r.passed {
        ui::green("passed")
    } else {
        ui::red("failed")
    };
    let how = if r.cached {
        format!(" (cached; ran in {})", ui::duration(r.seconds))
    } else {
        format!(" in {}", ui::duration(r.seconds))
    };
    let why = match (&r.reason, r.passed) {
        (Some(reason), false) => format!(" on {} ({reason})", r.commit.short()),
        _ => String::new(),
    };
    format!(
        "gate {}: {verdict}{how}{why}; log: `git orch log {plan} {}`",
        r.name, r.log
    )
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
    remote_ref: String,
}

fn parse_push_lines(input: &str) -> Result<Vec<Pushed>> {
    let mut out = Vec::new();
    for (n, line) in input.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [local_ref, local_sha, remote_ref, remote_sha] = fields[..] else {
            return Err(refuse(format!(
                "pre-push input line {} is malformed: `{line}` (expected 4 fields)",
                n + 1
            )));
        };
        let local = full_oid(local_sha).ok_or_else(|| {
            refuse(format!(
                "pre-push input line {}: `{local_sha}` is not an object id",
                n + 1
            ))
        })?;
        full_oid(remote_sha).ok_or_else(|| {
            refuse(format!(
                "pre-push input line {}: `{remote_sha}` is not an object id",
                n + 1
            ))
        })?;
        out.push(Pushed {
            local_ref: local_ref.to_string(),
            local,
            remote_ref: remote_ref.to_string(),
        });
    }
    Ok(out)
}

/// A whole object id (SHA-1 or SHA-256 hex); `Oid::from_str` alone would
/// take any hex prefix.
fn full_oid(hex: &str) -> Option<Oid> {
    let whole = matches!(hex.len(), 40 | 64) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    whole.then(|| Oid::from_str(hex).ok()).flatten()
}

/// The plan whose integration branch `name` is (`refs/heads/orch/<plan>/work`).
fn work_plan(name: &str) -> Option<&str> {
    name.strip_prefix("refs/heads/orch/")?
        .strip_suffix("/work")
        .filter(|plan| !plan.contains('/'))
}

/// Which plans' gates hold a pushed ref (SPEC §5). What lands on the remote
/// decides: a tag passes, a plan's work branch is held to that plan, the
/// state and task branches carry records and unfinished work (nothing the
/// plan vouches for), any other branch is held to the `orch.prePush` plans.
/// A plan's work pushed under another name is held to that plan too. The
/// local side may be `HEAD`, a commit id or any ref, so it only adds.
fn plans_for(local_ref: &str, remote_ref: &str, configured: &[String]) -> Vec<String> {
    if remote_ref.starts_with("refs/tags/") {
        return Vec::new();
    }
    let mut plans: Vec<String> = if let Some(plan) = work_plan(remote_ref) {
        vec![plan.to_string()]
    } else if remote_ref.starts_with("refs/heads/orch/") || !remote_ref.starts_with("refs/heads/") {
        Vec::new()
    } else {
        configured.to_vec()
    };
    if let Some(plan) = work_plan(local_ref) {
        if !plans.iter().any(|p| p == plan) {
            plans.push(plan.to_string());
        }
    }
    plans
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
    // Git only names objects it has; anything else is not git talking.
    for p in pushed.iter().filter(|p| !p.local.is_zero()) {
        if repo.git.find_object(p.local, None).is_err() {
            return Err(refuse(format!(
                "pre-push input names {} for {}, which is not in this repository",
                p.local, p.local_ref
            )));
        }
    }
    let configured = configured_plans(&repo)?;
    let mut all_runs = Vec::new();
    let mut blocked = false;
    let mut checked: Vec<(String, Oid)> = Vec::new();
    for p in &pushed {
        if p.local.is_zero() {
            continue;
        }
        for plan in plans_for(&p.local_ref, &p.remote_ref, &configured) {
            // A name that breaks the id rules is no plan: fail closed.
            crate::plan::validate_id("plan", &plan).map_err(|e| {
                refuse_with_hint(
                    format!("pushing {} names plan {e}", ui::printable(&p.remote_ref)),
                    "fix `git config --get-all orch.prePush`, or push with --no-verify",
                )
            })?;
            let snap = store::load(&repo, &plan).map_err(|_| {
                refuse_with_hint(
                    format!(
                        "pushing {} needs the gates of plan `{plan}`, which is not in this repository",
                        p.remote_ref
                    ),
                    "fix `git config --get-all orch.prePush`, or push with --no-verify",
                )
            })?;
            let commit = repo
                .git
                .find_object(p.local, None)
                .and_then(|o| o.peel_to_commit())
                .map(|c| c.id())
                .map_err(|_| {
                    refuse(format!(
                        "{} ({}) is not a commit; plan `{plan}` checks commits",
                        p.local, p.local_ref
                    ))
                })?;
            // The same commit pushed under several names is checked once.
            if checked.contains(&(plan.clone(), commit)) {
                continue;
            }
            checked.push((plan.clone(), commit));
            // The gates are the sealed plan's on the state branch, never a
            // file of the commit being pushed, and only once trusted here.
            let list: Vec<&crate::plan::Gate> = snap.plan.gates.iter().collect();
            if !list.is_empty() && crate::trust::require(&repo, &snap).is_err() {
                return Err(refuse_with_hint(
                    format!(
                        "pushing {} needs the gates of plan `{plan}`, which is not trusted here, so none was run",
                        ui::printable(&p.remote_ref)
                    ),
                    format!("see them and approve them with `git orch trust {plan}`, or push with --no-verify"),
                ));
            }
            let runs = run_and_record(&repo, &snap, &list, commit, args)?;
            for r in &runs {
                if r.result.passed {
                    ui::note(&format!("plan {plan}, {}", gate_line(&plan, r)));
                } else {
                    blocked = true;
                    ui::error(&format!(
                        "push of {} to {remote} blocked: gate `{}` of plan {plan} failed on {} ({}); log: `git orch log {plan} {}`",
                        p.remote_ref,
                        r.result.name,
                        short(commit),
                        r.result.reason.as_deref().unwrap_or("failed"),
                        r.result.log
                    ));
                }
            }
            all_runs.extend(runs);
        }
    }
    if args.json {
        ui::json_doc(
            Schema::PrePush,
            &json!({ "remote": remote, "blocked": blocked, "gates": gates_json(&all_runs) }),
        )?;
    }
    if blocked {
        ui::hint("fix the failure and push again; `git push --no-verify` or ORCH_SKIP_GATES=1 skips the gates");
        return Ok(1);
    }
    Ok(0)
}

fn configured_plans(repo: &Repo) -> Result<Vec<String>> {
    Ok(crate::config::of(repo).pre_push())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_branch_is_held_to_its_plan_and_records_are_not() {
        let configured = vec!["p".to_string()];
        let same = |r: &str| plans_for(r, r, &configured);
        assert_eq!(same("refs/heads/orch/n/work"), vec!["n".to_string()]);
        assert!(same("refs/heads/orch/n/state").is_empty());
        assert!(same("refs/heads/orch/n/tasks/a").is_empty());
        assert!(same("refs/tags/v1").is_empty());
        assert_eq!(same("refs/heads/main"), configured);
        // The local side is `HEAD` or a commit id for `git push origin HEAD:x`.
        assert_eq!(
            plans_for("HEAD", "refs/heads/main", &configured),
            configured
        );
        assert_eq!(
            plans_for("HEAD", "refs/heads/orch/n/work", &configured),
            vec!["n".to_string()]
        );
        // A plan's work pushed under another name is still that plan's.
        assert_eq!(
            plans_for("refs/heads/orch/n/work", "refs/heads/main", &configured),
            vec!["p".to_string(), "n".to_string()]
        );
        assert!(plans_for("refs/heads/main", "refs/tags/v1", &configured).is_empty());
    }

    #[test]
    fn malformed_lines_are_refused() {
        assert!(parse_push_lines("refs/heads/main abc").is_err());
        assert!(parse_push_lines("a b c d").is_err());
        let zero = "0".repeat(40);
        assert!(parse_push_lines(&format!("refs/heads/x abc refs/heads/x {zero}")).is_err());
        assert!(parse_push_lines(&format!("refs/heads/x {zero} refs/heads/x {zero}0")).is_err());
        assert_eq!(
            parse_push_lines(&format!("refs/heads/x {zero} refs/heads/x {zero}\n"))
                .map(|v| v.len())
                .unwrap_or(0),
            1
        );
    }
}
