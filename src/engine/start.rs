//! `git orch start`: the first state commit, the work branch and the
//! `start` checkpoint. The state branch is created first and is the commit
//! point: if anything after it is interrupted, the next command repairs
//! the work branch and tag from it.

use std::collections::BTreeMap;

use anyhow::Result;
use git2::Oid;

use crate::error::refuse_with_hint;
use crate::git::Repo;
use crate::plan::Plan;
use crate::state::{
    self, names, reconcile, seal, store, transition, Event, State, TaskState, STATE_VERSION,
};

pub struct StartInput<'a> {
    pub plan: Plan,
    /// The plan file's text as written, kept in the state for the audit.
    pub source: &'a str,
    pub source_name: &'a str,
    pub base: Option<&'a str>,
}

pub fn start(repo: &Repo, input: StartInput<'_>) -> Result<store::Snapshot> {
    let plan = input.plan;
    let name = plan.name.clone();
    if repo.ref_target(&names::state(&name))?.is_some() {
        return Err(refuse_with_hint(
            format!("plan `{name}` is already started"),
            format!("see it with `git orch status {name}`; a new plan needs another name"),
        ));
    }
    for leftover in [names::work(&name), names::checkpoint_tag(&name, "start")] {
        if repo.ref_target(&leftover)?.is_some() {
            return Err(refuse_with_hint(
                format!("`{}` exists but plan `{name}` has no state branch", names::display(&leftover)),
                format!("delete the leftover refs (`git for-each-ref 'refs/*/orch/{name}/'`) or give the plan another name"),
            ));
        }
    }
    let base: Oid = match input.base.or(plan.base.as_deref()) {
        Some(rev) => repo.resolve_commit(rev)?,
        None => repo.head_commit()?,
    };
    let tag_name = format!("orch/{name}/start");
    // The plan is sealed before anything is written (see `state::seal`).
    let plan_blob = seal::plan_blob(repo, &plan)?;
    let message = format!(
        "git-orch plan {name}: start\n\nbase {base}\n{}",
        seal::tag_line(plan_blob)
    );
    // Starting a plan from a file approves its commands (`crate::trust`):
    // recorded before the state exists, so a crash after it leaves no
    // plan of ours untrusted.
    crate::trust::record(repo, &name, &plan, "start").map_err(|e| {
        refuse_with_hint(
            format!("nothing was started: cannot record the approval of plan `{name}`'s commands: {e:#}"),
            "approvals go to $XDG_DATA_HOME/git-orch/trust (default ~/.local/share/git-orch/trust): make it writable",
        )
    })?;
    seal::write(repo, &name, plan_blob)?;
    let start_tag = reconcile::new_tag(repo, &tag_name, base, &message)?;

    // Pending tasks have no record: a record is written when a task first moves.
    let mut tasks = BTreeMap::new();
    for (_, task) in plan.tasks().filter(|(_, t)| t.skip) {
        let t = transition::skip(&TaskState::pending(), "marked done before the plan started");
        tasks.insert(task.id.clone(), t);
    }
    let state = State {
        version: STATE_VERSION,
        base: base.into(),
        work: base.into(),
        started_at: state::now(),
        finished: false,
        start_tag,
        phases: BTreeMap::new(),
        rollbacks: Vec::new(),
        seq: 0,
        active: Default::default(),
        plan_seal: None,
        abandoned: false,
        limited: Default::default(),
        adopted: Vec::new(),
    };
    let files = vec![(
        format!("source/{}", input.source_name),
        input.source.as_bytes().to_vec(),
    )];
    store::create(
        repo,
        &plan,
        &state,
        &tasks,
        files,
        &Event::PlanStarted {
            base: base.to_string(),
            at: state.started_at,
        },
    )?;
    let snap = store::load(repo, &name)?;
    reconcile::reconcile(repo, &snap)?;
    Ok(snap)
}
