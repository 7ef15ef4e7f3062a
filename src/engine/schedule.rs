//! The scheduling decision, as a pure function of a snapshot: which ready
//! tasks a runner may start now. The runner (`run.rs`) claims what this
//! returns; the property tests below drive it through whole simulated runs.

use std::collections::BTreeSet;

use anyhow::Result;

use crate::plan::{scopes_may_overlap, Task};
use crate::state::{Snapshot, TaskStatus};

/// The tasks a runner limits itself to (`run --phase`, `run --task`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection<'a> {
    pub phase: Option<&'a str>,
    pub task: Option<&'a str>,
}

/// Ready tasks of the current phase that this runner may start now, in
/// plan order, at most `jobs` minus what it already runs: tasks with a
/// command, whose dependencies are settled, whose write scope cannot
/// overlap the scope of any task running (here, in `running`, or elsewhere,
/// per the state) nor of one picked before them. A task without `files`
/// overlaps everything, so it runs alone. A task run by agents waits while
/// every one of them is at its `parallel` cap.
pub fn schedule(
    snap: &Snapshot,
    running: &BTreeSet<String>,
    only: Selection<'_>,
    jobs: usize,
) -> Result<Vec<String>> {
    let room = jobs.max(1).saturating_sub(running.len());
    let mut busy: Vec<&Task> = Vec::new();
    for id in snap.state.active.iter().chain(running.iter()) {
        // A parked task keeps its worktree and its files until it wakes.
        if running.contains(id)
            || matches!(
                snap.task_status(id)?,
                TaskStatus::Running | TaskStatus::Parked
            )
        {
            if let Some((_, t)) = snap.plan.task(id) {
                busy.push(t);
            }
        }
    }
    let mut picked: Vec<&Task> = Vec::new();
    // Tasks per agent, running and picked: a task whose agents are all at
    // their caps waits (its claim chooses the agent again, atomically).
    let mut in_use = super::agents::in_use(snap)?;
    let limited = super::agents::limited_now(snap);
    for (phase, task) in snap.ready_tasks()? {
        if picked.len() >= room {
            break;
        }
        if only.task.is_some_and(|id| id != task.id)
            || only.phase.is_some_and(|id| id != phase.id)
            || snap.plan.task_run(task).is_none()
        {
            continue;
        }
        let clashes = busy
            .iter()
            .chain(picked.iter())
            .any(|other| scopes_may_overlap(&other.files, &task.files));
        if clashes {
            continue;
        }
        match super::agents::route(&snap.plan, task, &in_use, &limited) {
            super::agents::Route::Busy => continue,
            super::agents::Route::Agent(a) => *in_use.entry(a).or_insert(0) += 1,
            super::agents::Route::Command => {}
        }
        picked.push(task);
    }
    Ok(picked.into_iter().map(|t| t.id.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Defaults, Phase, Plan, Scope};
    use crate::state::{transition, Checkpoint, CommitId, PhaseState, State, TagRecord, TaskState};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn tag(name: &str) -> TagRecord {
        TagRecord {
            name: name.into(),
            object: git2::Oid::zero().into(),
            target: git2::Oid::zero().into(),
            tagger_name: String::new(),
            tagger_email: String::new(),
            time: 0,
            offset_minutes: 0,
            message: String::new(),
        }
    }

    /// A freshly started plan: skipped tasks skipped, the rest pending.
    fn snapshot(plan: Plan) -> Snapshot {
        let tasks = plan
            .tasks()
            .map(|(_, t)| {
                let mut s = TaskState::pending();
                if t.skip {
                    s = transition::skip(&s, "skip");
                }
                (t.id.clone(), s)
            })
            .collect();
        let state = State {
            version: crate::state::STATE_VERSION,
            base: git2::Oid::zero().into(),
            work: git2::Oid::zero().into(),
            started_at: 0.0,
            finished: false,
            start_tag: tag("start"),
            phases: BTreeMap::new(),
            rollbacks: Vec::new(),
            seq: 0,
            active: Default::default(),
            plan_seal: None,
            abandoned: false,
            limited: Default::default(),
            adopted: Vec::new(),
        };
        Snapshot::in_memory(plan, state, tasks)
    }

    fn task(id: &str, files: &[&str], deps: &[&str]) -> Task {
        Task {
            id: id.into(),
            run: Some("true".into()),
            files: files.iter().map(|s| s.to_string()).collect(),
            depends_on: deps.iter().map(|s| s.to_string()).collect(),
            ..Task::default()
        }
    }

    fn plan(phases: Vec<Vec<Task>>) -> Plan {
        Plan {
            name: "p".into(),
            title: None,
            base: None,
            defaults: Defaults::default(),
            gates: Vec::new(),
            notify: Vec::new(),
            agents: Default::default(),
            worktrees: Default::default(),
            phases: phases
                .into_iter()
                .enumerate()
                .map(|(i, tasks)| Phase {
                    id: format!("ph{i}"),
                    title: None,
                    gates: Vec::new(),
                    tasks,
                    review: None,
                    on_gate_failure: None,
                    on_conflict: None,
                    on_failure: None,
                })
                .collect(),
        }
    }

    fn all(snap: &Snapshot, jobs: usize) -> Vec<String> {
        schedule(snap, &BTreeSet::new(), Selection::default(), jobs).expect("schedule")
    }

    #[test]
    fn picks_in_plan_order_within_jobs_and_scopes() {
        let snap = snapshot(plan(vec![vec![
            task("a", &["src/a/**"], &[]),
            task("b", &["src/a/x.rs"], &[]),
            task("c", &["src/c/**"], &[]),
            task("d", &["docs/*.md"], &["a"]),
            task("e", &["e"], &[]),
        ]]));
        assert_eq!(all(&snap, 8), ["a", "c", "e"]);
        assert_eq!(all(&snap, 2), ["a", "c"]);
        let running: BTreeSet<String> = ["a".to_string()].into();
        assert_eq!(
            schedule(&snap, &running, Selection::default(), 2).expect("schedule"),
            ["c"],
            "room for one more; b clashes with a"
        );
        let only_b = Selection {
            task: Some("b"),
            phase: None,
        };
        assert_eq!(
            schedule(&snap, &BTreeSet::new(), only_b, 4).expect("schedule"),
            ["b"]
        );
        let other_phase = Selection {
            phase: Some("ph1"),
            task: None,
        };
        assert!(schedule(&snap, &BTreeSet::new(), other_phase, 4)
            .expect("schedule")
            .is_empty());
    }

    #[test]
    fn agents_at_their_caps_hand_tasks_to_fallbacks_or_make_them_wait() {
        let mut p = plan(vec![vec![
            task("a", &["a"], &[]),
            task("b", &["b"], &[]),
            task("c", &["c"], &[]),
            task("d", &["d"], &[]),
        ]]);
        for (name, cap) in [("first", 1), ("second", 1)] {
            p.agents.insert(
                name.into(),
                crate::plan::Agent {
                    run: "true".into(),
                    parallel: Some(cap),
                    ..Default::default()
                },
            );
        }
        let both = crate::plan::AgentChoice::Many(vec!["first".into(), "second".into()]);
        for t in &mut p.phases[0].tasks {
            t.run = None;
            t.agent = Some(both.clone());
        }
        // d has its own command: no agent, no cap.
        p.phases[0].tasks[3].run = Some("true".into());
        let snap = snapshot(p.clone());
        assert_eq!(all(&snap, 8), ["a", "b", "d"], "one each, then c waits");
        // An agent at its usage limit takes nothing until it resets; one
        // whose limit has passed is free again.
        let mut snap = snapshot(p.clone());
        snap.state
            .limited
            .insert("first".into(), crate::state::now() + 600.0);
        assert_eq!(all(&snap, 8), ["a", "d"], "second only, then all wait");
        let mut snap = snapshot(p);
        snap.state
            .limited
            .insert("first".into(), crate::state::now() - 1.0);
        assert_eq!(all(&snap, 8), ["a", "b", "d"], "first's limit has passed");
    }

    #[test]
    fn a_task_without_files_runs_alone() {
        let snap = snapshot(plan(vec![vec![
            task("a", &[], &[]),
            task("b", &["b"], &[]),
        ]]));
        assert_eq!(all(&snap, 4), ["a"]);
        let mut snap = snap;
        set(&mut snap, "b", TaskStatus::Running); // run by another runner
        assert!(all(&snap, 4).is_empty());
    }

    #[test]
    fn manual_tasks_and_later_phases_are_never_picked() {
        let mut manual = task("m", &["m"], &[]);
        manual.run = None;
        let snap = snapshot(plan(vec![vec![manual], vec![task("later", &["l"], &[])]]));
        assert!(all(&snap, 4).is_empty());
    }

    // The property test: random plans run to completion by a simulated
    // runner, with some picks claimed by "another runner" and some tasks
    // done by hand, finishing in random order.

    const SEGMENTS: &[&str] = &["a", "b", "ab", "*", "**", "a*", "{a,b}", "?b"];

    fn glob() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(SEGMENTS), 1..4).prop_map(|s| s.join("/"))
    }

    /// Every path of 1-3 segments over a small alphabet.
    fn all_paths() -> Vec<String> {
        let segs = ["a", "b", "ab", "ba", "bb"];
        let mut out: Vec<String> = segs.iter().map(|s| s.to_string()).collect();
        let mut last = out.clone();
        for _ in 1..3 {
            last = last
                .iter()
                .flat_map(|p| segs.iter().map(move |s| format!("{p}/{s}")))
                .collect();
            out.extend(last.iter().cloned());
        }
        out
    }

    #[derive(Debug, Clone)]
    struct Spec {
        files: Vec<String>,
        /// Indices of earlier tasks (modulo the task's own index).
        deps: Vec<usize>,
        manual: bool,
        skip: bool,
    }

    fn spec() -> impl Strategy<Value = Spec> {
        (
            prop_oneof![1 => Just(Vec::new()), 5 => prop::collection::vec(glob(), 1..3)],
            prop::collection::vec(any::<usize>(), 0..3),
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.1),
        )
            .prop_map(|(files, deps, manual, skip)| Spec {
                files,
                deps,
                manual,
                skip,
            })
    }

    /// Random phases of random tasks; dependencies point only at earlier
    /// tasks (of this phase or an earlier one), so they form a DAG.
    fn random_plan() -> impl Strategy<Value = Plan> {
        prop::collection::vec(prop::collection::vec(spec(), 1..7), 1..4).prop_map(|phases| {
            let mut n = 0usize;
            let phases = phases
                .into_iter()
                .map(|specs| {
                    specs
                        .into_iter()
                        .map(|s| {
                            let id = format!("t{n}");
                            let deps: BTreeSet<String> = if n == 0 {
                                BTreeSet::new()
                            } else {
                                s.deps.iter().map(|d| format!("t{}", d % n)).collect()
                            };
                            n += 1;
                            let mut t = task(&id, &[], &[]);
                            t.files = s.files;
                            t.depends_on = deps.into_iter().collect();
                            t.run = (!s.manual).then(|| "true".to_string());
                            t.skip = s.skip;
                            t
                        })
                        .collect()
                })
                .collect();
            plan(phases)
        })
    }

    /// Moves a task as the engine would, through the transitions.
    fn set(snap: &mut Snapshot, id: &str, to: TaskStatus) {
        let t = snap.task(id).expect("in memory");
        let zero = CommitId::from(git2::Oid::zero());
        let t = match to {
            TaskStatus::Running => transition::claim(&t, zero, claim(), "/wt".into(), 0.0),
            TaskStatus::Done => transition::land(
                &t,
                transition::Finished {
                    head: zero,
                    at: 0.0,
                    spent: None,
                    log: None,
                },
                None,
                Vec::new(),
                false,
            ),
            other => panic!("the simulation never moves a task to {other:?}"),
        }
        .expect("a move the simulation makes is allowed");
        snap.set_task(id, t);
    }

    fn claim() -> crate::state::Claim {
        crate::state::Claim {
            host: "h".into(),
            pid: 1,
            proc_start: None,
            since: 0.0,
            manual: false,
            lease: None,
        }
    }

    fn files_of<'a>(snap: &'a Snapshot, id: &str) -> &'a [String] {
        snap.plan.task(id).map_or(&[], |(_, t)| t.files.as_slice())
    }

    /// What must hold whenever a task has just started.
    fn check_start(snap: &Snapshot, id: &str, paths: &[String]) -> Result<(), TestCaseError> {
        let (phase, task) = snap.plan.task(id).expect("scheduled task is in the plan");
        prop_assert_eq!(snap.current_phase().map(|p| &p.id), Some(&phase.id));
        for dep in &task.depends_on {
            prop_assert!(
                snap.task_status(dep).expect("in memory").is_settled(),
                "{} started before its dependency {}",
                id,
                dep
            );
        }
        let others: Vec<&str> = snap
            .plan
            .tasks()
            .map(|(_, t)| t.id.as_str())
            .filter(|o| *o != id && snap.task_status(o).ok() == Some(TaskStatus::Running))
            .collect();
        if task.files.is_empty() {
            prop_assert!(
                others.is_empty(),
                "{} has no files but runs with {:?}",
                id,
                others
            );
        }
        let mine = Scope::new(&task.files).expect("valid globs");
        for other in others {
            let theirs = files_of(snap, other);
            prop_assert!(
                !theirs.is_empty(),
                "{} runs with {} that has no files",
                id,
                other
            );
            prop_assert!(
                !scopes_may_overlap(&task.files, theirs),
                "{} and {} may overlap but run together",
                id,
                other
            );
            let theirs = Scope::new(theirs).expect("valid globs");
            if let Some(p) = paths.iter().find(|p| mine.matches(p) && theirs.matches(p)) {
                prop_assert!(false, "{} and {} both write {} at once", id, other, p);
            }
        }
        Ok(())
    }

    fn simulate(plan: Plan, jobs: usize, choices: &[u32]) -> Result<(), TestCaseError> {
        let paths = all_paths();
        let mut snap = snapshot(plan);
        let mut ours: BTreeSet<String> = BTreeSet::new();
        let mut others: BTreeSet<String> = BTreeSet::new();
        let mut starts: BTreeMap<String, usize> = BTreeMap::new();
        let mut pick = {
            let mut i = 0usize;
            move |n: usize| {
                i += 1;
                choices[i % choices.len()] as usize % n.max(1)
            }
        };
        for _step in 0..10_000 {
            let picks = schedule(&snap, &ours, Selection::default(), jobs).expect("schedule");
            prop_assert!(
                ours.len() + picks.len() <= jobs,
                "more than {} at once",
                jobs
            );
            for id in picks {
                let task = snap.plan.task(&id).map(|(_, t)| t.clone()).expect("task");
                prop_assert!(task.run.is_some(), "manual task {} scheduled", id);
                prop_assert_eq!(snap.task_status(&id).ok(), Some(TaskStatus::Pending));
                set(&mut snap, &id, TaskStatus::Running);
                check_start(&snap, &id, &paths)?;
                *starts.entry(id.clone()).or_default() += 1;
                // Now and then another runner claims what we picked.
                if pick(5) == 0 {
                    others.insert(id);
                } else {
                    ours.insert(id);
                }
            }
            if ours.is_empty() && others.is_empty() {
                let Some(phase) = snap.current_phase().cloned() else {
                    break;
                };
                if snap.unsettled_tasks(&phase).expect("in memory").is_empty() {
                    let checkpoint = Checkpoint {
                        commit: git2::Oid::zero().into(),
                        tag: tag(&phase.id),
                        at: 0.0,
                    };
                    snap.state.phases.insert(
                        phase.id.clone(),
                        PhaseState {
                            checkpoint: Some(checkpoint),
                            ..PhaseState::default()
                        },
                    );
                    continue;
                }
                // Only manual tasks can be ready: a person does one.
                let manual = snap
                    .ready_tasks()
                    .expect("in memory")
                    .into_iter()
                    .map(|(_, t)| t.id.clone())
                    .find(|id| snap.plan.task(id).is_some_and(|(_, t)| t.run.is_none()));
                let Some(id) = manual else {
                    let open: Vec<_> = snap
                        .unsettled_tasks(&phase)
                        .expect("in memory")
                        .iter()
                        .map(|t| t.id.clone())
                        .collect();
                    return Err(TestCaseError::fail(format!(
                        "deadlock: nothing runs, nothing is scheduled, open: {open:?}"
                    )));
                };
                set(&mut snap, &id, TaskStatus::Running);
                check_start(&snap, &id, &paths)?;
                *starts.entry(id.clone()).or_default() += 1;
                others.insert(id);
                continue;
            }
            // One running task finishes, chosen at random.
            let running: Vec<String> = ours.iter().chain(others.iter()).cloned().collect();
            let done = &running[pick(running.len())];
            ours.remove(done);
            others.remove(done);
            set(&mut snap, done, TaskStatus::Done);
        }
        prop_assert!(snap.current_phase().is_none(), "the run never finished");
        for (_, t) in snap.plan.tasks() {
            let n = starts.get(&t.id).copied().unwrap_or(0);
            prop_assert_eq!(n, usize::from(!t.skip), "task {} started {} times", t.id, n);
        }
        Ok(())
    }

    /// `PROPTEST_CASES` for a longer run, else `default`.
    fn cases(default: u32) -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases(500)))]
        #[test]
        fn random_runs_respect_deps_scopes_and_jobs_and_finish(
            plan in random_plan(),
            jobs in 1usize..5,
            choices in prop::collection::vec(any::<u32>(), 1..64),
        ) {
            simulate(plan, jobs, &choices)?;
        }
    }
}
