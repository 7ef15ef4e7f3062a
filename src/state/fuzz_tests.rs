//! The state loader fuzzed: a real state branch (written by the store into
//! a real repository) is hand-edited at random — records replaced by
//! random bytes or by JSON of the wrong shape, blobs turned into trees,
//! files removed, the version changed, the tree replaced by one that is
//! not a state at all — and every reader must answer with an error or a
//! value, never a panic.

use std::collections::BTreeMap;
use std::path::Path;

use git2::{build::TreeUpdateBuilder, FileMode, Oid};
use proptest::prelude::*;

use super::layout;
use super::model::{PhaseState, State, TaskState, STATE_VERSION};
use super::transition;
use super::{names, store, Event};
use crate::git::Repo;
use crate::plan::{Defaults, Phase, Plan, Task};

fn plan() -> Plan {
    let task = |id: &str, deps: &[&str]| Task {
        id: id.into(),
        run: Some("true".into()),
        files: vec![format!("{id}/**")],
        depends_on: deps.iter().map(|s| s.to_string()).collect(),
        ..Task::default()
    };
    Plan {
        name: "p".into(),
        title: None,
        base: None,
        defaults: Defaults::default(),
        gates: Vec::new(),
        notify: Vec::new(),
        agents: Default::default(),
        worktrees: Default::default(),
        phases: vec![
            Phase {
                id: "one".into(),
                title: None,
                gates: Vec::new(),
                tasks: vec![task("a", &[]), task("b", &["a"])],
                review: None,
                on_gate_failure: None,
                on_conflict: None,
                on_failure: None,
            },
            Phase {
                id: "two".into(),
                title: None,
                gates: Vec::new(),
                tasks: vec![task("c", &[])],
                review: None,
                on_gate_failure: None,
                on_conflict: None,
                on_failure: None,
            },
        ],
    }
}

/// A repository with a started plan `p` whose task `a` is running, `b`
/// failed and phase `one` has a record.
fn repository(dir: &Path) -> Repo {
    let git = git2::Repository::init(dir).expect("init");
    let sig = git2::Signature::now("t", "t@example.com").expect("sig");
    let tree = git.treebuilder(None).expect("tb").write().expect("tree");
    let tree = git.find_tree(tree).expect("tree");
    let base = git
        .commit(Some("HEAD"), &sig, &sig, "initial", &tree, &[])
        .expect("commit");
    let repo = Repo::discover(dir).expect("discover");
    let tag = super::reconcile::new_tag(&repo, "orch/p/start", base, "start\n").expect("tag");
    let mut phases = BTreeMap::new();
    phases.insert(
        "one".to_string(),
        PhaseState {
            gates_failed: true,
            ..PhaseState::default()
        },
    );
    let claim = super::Claim {
        host: "h".into(),
        pid: 1,
        proc_start: None,
        since: 0.0,
        manual: false,
        lease: None,
    };
    let running = transition::claim(
        &TaskState::pending(),
        base.into(),
        claim.clone(),
        "/wt".into(),
        0.0,
    )
    .expect("claim");
    let failed = transition::claim(&TaskState::pending(), base.into(), claim, "/wt".into(), 0.0)
        .and_then(|t| transition::fail(&t, "exit 1".into(), None, 1.0, None, None))
        .expect("fail");
    let tasks: BTreeMap<String, TaskState> =
        [("a".to_string(), running), ("b".to_string(), failed)].into();
    let state = State {
        version: STATE_VERSION,
        base: base.into(),
        work: base.into(),
        started_at: 0.0,
        finished: false,
        start_tag: tag,
        rollbacks: Vec::new(),
        seq: 0,
        active: ["a".to_string(), "b".to_string()].into(),
        plan_seal: None,
        abandoned: false,
        limited: Default::default(),
        adopted: Vec::new(),
        phases,
    };
    let event = Event::PlanStarted {
        base: base.to_string(),
        at: 0.0,
    };
    store::create(&repo, &plan(), &state, &tasks, Vec::new(), &event).expect("create");
    repo
}

#[derive(Debug, Clone)]
enum Edit {
    /// Replace a file of the state tree with these bytes.
    Bytes(usize, Vec<u8>),
    /// Replace a file with a JSON value of another shape.
    Json(usize, usize),
    /// Remove a file.
    Remove(usize),
    /// Put an empty directory where a file was.
    Tree(usize),
    /// Add a file at a path of the state's layout.
    Add(usize, usize),
}

/// Paths worth editing: the real files and the layout's other names.
fn targets(repo: &Repo, tree: Oid) -> Vec<String> {
    let mut out = Vec::new();
    let tree = repo.git.find_tree(tree).expect("tree");
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, e| {
        if e.kind() == Some(git2::ObjectType::Blob) {
            out.push(format!("{dir}{}", e.name().unwrap_or("")));
        }
        git2::TreeWalkResult::Ok
    })
    .expect("walk");
    out.extend(
        [
            layout::task_record("c"),
            layout::task_record("zzz"),
            layout::phase_record("two"),
            layout::phase_record("nope"),
            layout::V1_STATE_FILE.to_string(),
            layout::handoff("a"),
            "tasks/x".to_string(),
            "tasks/0/x".to_string(),
        ]
        .map(|s| s.to_string()),
    );
    out
}

const SHAPES: &[&str] = &[
    "null",
    "7",
    "\"text\"",
    "[]",
    "{}",
    "{\"state\": \"running\"}",
    "{\"state\": \"done\", \"attempts\": 4294967296}",
    "{\"state\": \"pending\", \"attempts\": 1.5}",
    "{\"version\": 2}",
    "{\"version\": 999}",
    "{\"version\": 1}",
    "{\"version\": 0}",
    "{\"version\": -1}",
    "{\"version\": 2, \"base\": \"zz\", \"work\": \"\", \"started_at\": 0, \"start_tag\": {}}",
    "{\"name\": \"p\", \"phases\": []}",
    "{\"name\": \"p\", \"phases\": [{\"id\": \"one\", \"tasks\": [{\"id\": \"a\"}, {\"id\": \"a\"}]}]}",
    "{\"checkpoint\": {\"commit\": \"x\"}}",
    "{\"gates\": [{\"name\": 1}]}",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(i, b)| Edit::Bytes(i, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Edit::Json(i, j)),
        any::<usize>().prop_map(Edit::Remove),
        any::<usize>().prop_map(Edit::Tree),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Edit::Add(i, j)),
    ]
}

fn apply(repo: &Repo, edits: &[Edit]) -> Oid {
    let head = repo
        .ref_target(&names::state("p"))
        .expect("ref")
        .expect("state");
    let base_tree = repo.tree_of(head).expect("tree");
    let paths = targets(repo, base_tree);
    let pick = |i: usize| paths[i % paths.len()].clone();
    // One edit at a time: a path can go from blob to tree only by a removal
    // first. An edit the tree cannot take (a file under a file) is skipped.
    let mut tree = base_tree;
    let mut step = |f: &dyn Fn(&mut TreeUpdateBuilder)| {
        let mut update = TreeUpdateBuilder::new();
        f(&mut update);
        let old = repo.git.find_tree(tree).expect("tree");
        if let Ok(t) = update.create_updated(&repo.git, &old) {
            tree = t;
        }
    };
    for e in edits {
        match e {
            Edit::Bytes(i, bytes) => {
                let blob = repo.git.blob(bytes).expect("blob");
                step(&|u| {
                    u.upsert(pick(*i), blob, FileMode::Blob);
                });
            }
            Edit::Json(i, j) | Edit::Add(i, j) => {
                let blob = repo
                    .git
                    .blob(SHAPES[j % SHAPES.len()].as_bytes())
                    .expect("blob");
                step(&|u| {
                    u.upsert(pick(*i), blob, FileMode::Blob);
                });
            }
            Edit::Remove(i) => step(&|u| {
                u.remove(pick(*i));
            }),
            Edit::Tree(i) => {
                let blob = repo.git.blob(b"x").expect("blob");
                let mut tb = repo.git.treebuilder(None).expect("tb");
                tb.insert("inner", blob, 0o100644).expect("insert");
                let sub = tb.write().expect("tree");
                step(&|u| {
                    u.remove(pick(*i));
                });
                step(&|u| {
                    u.upsert(pick(*i), sub, FileMode::Tree);
                });
            }
        }
    }
    let sig = git2::Signature::now("t", "t@example.com").expect("sig");
    let tree = repo.git.find_tree(tree).expect("tree");
    let parent = repo.git.find_commit(head).expect("commit");
    let commit = repo
        .git
        .commit(None, &sig, &sig, "hand edit", &tree, &[&parent])
        .expect("commit");
    repo.git
        .reference(&names::state("p"), commit, true, "hand edit")
        .expect("ref");
    commit
}

/// Everything a command reads from a state, in the order commands read it.
fn read_all(repo: &Repo) -> anyhow::Result<()> {
    let snap = store::load(repo, "p")?;
    let _ = snap.current_phase();
    for (phase, task) in snap.plan.tasks() {
        snap.task(&task.id)?;
        snap.task_status(&task.id)?;
        snap.blocked_reason(task, phase)?;
        snap.handoff(repo, &task.id)?;
    }
    snap.all_tasks()?;
    snap.ready_tasks()?;
    snap.settled_count()?;
    super::reconcile::reconcile(repo, &snap)?;
    crate::engine::report::build(repo, &snap)?;
    // A change on top of whatever was read must also fail cleanly or work.
    store::transact(repo, "p", |s, change| {
        let t = change.task("c")?;
        change.put_task("c", transition::skip(&t, "fuzz"));
        change.event = Some(Event::TaskReset {
            task: "c".into(),
            at: 1.0,
        });
        s.task("a")?;
        Ok(())
    })?;
    store::load(repo, "p")?.all_tasks()?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(150)
    ))]
    #[test]
    fn hand_edited_state_branches_never_panic(edits in prop::collection::vec(edit(), 1..4)) {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = repository(dir.path());
        read_all(&repo).expect("an unedited state reads");
        apply(&repo, &edits);
        let _ = read_all(&repo);
    }
}

#[test]
fn a_state_ref_at_a_commit_of_the_work_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = repository(dir.path());
    let head = repo.head_commit().expect("head");
    repo.git
        .reference(&names::state("p"), head, true, "wrong")
        .expect("ref");
    let err = store::load(&repo, "p").expect_err("not a state");
    assert!(
        err.to_string().contains("not a git-orch state branch"),
        "{err}"
    );
}
