//! `git orch sync`: fetch and push a plan's refs through a git remote.

use anyhow::Result;
use serde::Serialize;

use super::open_repo;
use crate::cli::SyncArgs;
use crate::engine::remote;
use crate::schema::Schema;
use crate::state::store;
use crate::ui;

pub fn run(args: SyncArgs) -> Result<u8> {
    let repo = open_repo()?;
    let name = remote::chosen(&repo, args.remote.as_deref()).unwrap_or_else(|| "origin".into());
    crate::state::sync::check_remote(&repo, &name)?;
    let plan = match args.plan {
        Some(p) => {
            crate::plan::validate_id("plan", &p)
                .map_err(|e| crate::error::refuse(format!("bad plan name `{p}`: {e}")))?;
            p
        }
        None if store::plan_names(&repo)?.is_empty() => only_remote_plan(&repo, &name)?,
        None => store::resolve_plan(&repo, None)?,
    };
    // A commit made by hand on the work branch is a landing of its own,
    // published with the state (see `engine::adopt`).
    if store::plan_names(&repo)?.contains(&plan) {
        super::adopt_and_say(&repo, &plan)?;
    }
    let report = remote::sync_plan(&repo, &plan, &name)?;
    if args.json {
        let standing = crate::state::sync::standing(&repo, &name, &plan)?;
        let snap = store::load(&repo, &plan)?;
        ui::json_doc(
            Schema::Sync,
            &SyncDoc {
                behind: standing.map_or(0, |s| s.behind),
                ahead: standing.map_or(0, |s| s.ahead),
                trusted: crate::trust::is_trusted(&repo, &snap),
                report: &report,
            },
        )?;
        return Ok(0);
    }
    ui::out(&format!(
        "plan {plan}: in step with {name} at {} ({} state commits fetched, {} pushed)",
        &report.state[..report.state.len().min(12)],
        report.fetched,
        report.pushed
    ));
    for r in &report.refs {
        ui::note(&format!("  pushed {r}"));
    }
    if !report.deleted.is_empty() {
        ui::note(&format!(
            "  deleted {} task, lease and gate branch(es) of the closed plan on {name}",
            report.deleted.len()
        ));
    }
    // A plan fetched from another machine (or changed there) runs nothing
    // here yet: say what comes next.
    if !crate::trust::is_trusted(&repo, &store::load(&repo, &plan)?) {
        ui::hint(&format!(
            "plan {plan} runs none of its commands here until you approve them: `git orch trust {plan}` shows them"
        ));
    }
    Ok(0)
}

/// The plans `remote` has (their state branches).
fn remote_plans(repo: &crate::git::Repo, remote: &str) -> Result<Vec<String>> {
    let listed = crate::state::sync::ls_remote(repo, remote, &["refs/heads/orch/*/state"])?;
    Ok(listed
        .lines()
        .filter_map(|l| l.split('\t').nth(1))
        .filter_map(|r| r.strip_prefix("refs/heads/orch/")?.strip_suffix("/state"))
        .filter(|p| crate::plan::validate_id("plan", p).is_ok())
        .map(str::to_string)
        .collect())
}

/// No plan here and none named: the remote's plan, when it has one; a
/// fresh clone's `git orch sync` brings what it shares.
fn only_remote_plan(repo: &crate::git::Repo, remote: &str) -> Result<String> {
    let plans = remote_plans(repo, remote)?;
    match plans.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(crate::error::refuse_with_hint(
            format!("no plan here, and `{remote}` has none"),
            "start one with `git orch start FILE`, then `git orch sync` publishes it",
        )),
        many => Err(crate::error::refuse_with_hint(
            format!("no plan here, and `{remote}` has {}: name one", many.len()),
            format!(
                "e.g. `git orch sync {} --remote {remote}` ({})",
                many[0],
                many.join(", ")
            ),
        )),
    }
}

/// The `sync --json` document: what was fetched and pushed, and how the
/// two sides stand after it (as of the fetch it made).
#[derive(Serialize)]
struct SyncDoc<'a> {
    #[serde(flatten)]
    report: &'a remote::SyncReport,
    /// State commits the remote has and this clone does not, and back.
    behind: usize,
    ahead: usize,
    /// Whether this user approved the plan's commands here (a plan
    /// fetched from another machine needs `git orch trust` to run).
    trusted: bool,
}

/// Before `run --remote`: the plan's refs brought in step with the remote,
/// then every state change of this process shared through it.
pub fn before_run(plan: Option<&str>, flag: Option<&str>, lease: Option<&str>) -> Result<()> {
    let repo = open_repo()?;
    let Some(name) = remote::chosen(&repo, flag) else {
        if lease.is_some() {
            return Err(crate::error::refuse_with_hint(
                "`--lease` is for runs shared through a remote",
                "add `--remote NAME` (or set orch.remote)",
            ));
        }
        return Ok(());
    };
    let length = remote::lease_length(&repo, lease)?;
    crate::state::sync::check_remote(&repo, &name)?;
    let plans = match plan {
        Some(p) => {
            crate::plan::validate_id("plan", p)
                .map_err(|e| crate::error::refuse(format!("bad plan name `{p}`: {e}")))?;
            vec![p.to_string()]
        }
        None => match store::plan_names(&repo)? {
            // A fresh clone: the plan the remote shares.
            local if local.is_empty() => vec![only_remote_plan(&repo, &name)?],
            local => local,
        },
    };
    for p in &plans {
        remote::sync_plan(&repo, p, &name)?;
    }
    remote::activate(&repo, &name, length)
}
