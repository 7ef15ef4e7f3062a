//! `git orch synth-land` (hidden): claims and lands the next N ready tasks
//! with a made-up commit each (it rewrites `synthetic.txt`, so the work
//! tree does not grow: the task's scope must allow it), through the same
//! claim and landing transactions `run` uses but with no worktree and no
//! command. It writes the state history a run of N tasks writes, fast, so
//! scripts/bench-state.sh can measure plans of 10,000 tasks.

use anyhow::Result;
use git2::{build::TreeUpdateBuilder, FileMode};

use super::open_plan;
use crate::cli::SynthArgs;
use crate::engine::tasks::{self, claim_for_this_process, Finish, Landed};
use crate::ui;

pub fn run(args: SynthArgs) -> Result<u8> {
    let (repo, first) = open_plan(args.plan.as_deref())?;
    let plan = first.plan_name.clone();
    let mut landed = 0usize;
    while landed < args.count {
        let snap = crate::state::store::load(&repo, &plan)?;
        let Some((_, task)) = snap.ready_tasks()?.into_iter().next() else {
            break;
        };
        let id = task.id.clone();
        let claimed = tasks::claim_task(&repo, &plan, &id, claim_for_this_process(false))?;
        let base = repo.git.find_commit(claimed.base)?;
        let mut update = TreeUpdateBuilder::new();
        let blob = repo.git.blob(format!("{id}\n").as_bytes())?;
        update.upsert("synthetic.txt", blob, FileMode::Blob);
        let tree = update.create_updated(&repo.git, &base.tree()?)?;
        let head = repo.write_commit(tree, &[claimed.base], &format!("task {id}"), None)?;
        let finish = Finish {
            message: "synthetic",
            handoff: None,
            log: Some(format!("synthetic task {id}\n").into_bytes()),
            seconds: Some(0.01),
            outcome: "synthetic: no command ran",
        };
        match tasks::land_committed(&repo, &plan, &id, head, finish)?.0 {
            Landed::Done { .. } => landed += 1,
            _ => {
                ui::note(&format!("task {id} did not land; stopping"));
                return Ok(1);
            }
        }
    }
    repo.maintain();
    ui::out(&format!("landed {landed} synthetic task(s)"));
    Ok(0)
}
