//! A finished or abandoned shared plan leaves no task, lease or gate
//! branch on the remote (issue 22); preserved refs stay. A clone that ran
//! tasks and syncs the plan another machine closed drops its own ordinary
//! task branches without "repairing" them into preserved refs.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::remote::{finish, grouped_plan, start_shared, trust_on_the_others, Cluster};

/// The server's refs under `prefixes`, one `oid name` a line.
fn server_refs(cluster: &Cluster, prefixes: &[&str]) -> String {
    let mut args = vec!["for-each-ref", "--format=%(objectname) %(refname)"];
    args.extend(prefixes);
    cluster.server(&args)
}

const LITTER: [&str; 3] = [
    "refs/heads/orch/p/tasks/",
    "refs/heads/orch/p/leases/",
    "refs/heads/orch/p/gates/",
];

#[test]
fn a_finished_shared_plan_leaves_no_task_or_lease_branch_and_the_other_clone_repairs_nothing() {
    let cluster = Cluster::new(2, true);
    let log = cluster.clones[0].scratch().join("ran.log");
    start_shared(&cluster, &grouped_plan(4, &log));
    trust_on_the_others(&cluster);
    // m1 runs the whole plan: its clone has every task's branch.
    let (m0, m1) = (&cluster.clones[0], &cluster.clones[1]);
    let out = finish(cluster.spawn_run(1, &["--lease", "3"]), 120);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        server_refs(&cluster, &LITTER[..2]).lines().count() >= 8,
        "the run pushed task and lease branches: {}",
        cluster.server(&["for-each-ref"])
    );
    assert!(m1.refs().contains("orch/p/tasks/"), "{}", m1.refs());

    m0.orch_ok(&["sync", "p", "--remote", "origin"]);
    m0.orch_ok(&["finish", "p"]);
    let doc = m0.orch_json(&["sync", "p", "--remote", "origin", "--json"]);
    assert!(schema_errors(&doc).is_empty(), "{:?}", schema_errors(&doc));
    assert!(
        doc["deleted"].as_array().is_some_and(|d| d.len() >= 8),
        "{doc}"
    );
    assert_eq!(server_refs(&cluster, &LITTER), "", "no branch litter");
    assert_eq!(server_refs(&cluster, &["refs/orch/p/preserved/"]), "");

    // m1 syncs the finished plan: its ordinary branches go, unrepaired,
    // and nothing of them reaches the remote.
    m1.orch_ok(&["sync", "p", "--remote", "origin"]);
    let out = m1.orch(&["status", "p"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(!stderr(&out).contains("repair"), "{}", both(&out));
    m1.orch_ok(&["sync", "p", "--remote", "origin"]);
    let refs = m1.refs();
    assert!(
        !refs.contains("orch/p/tasks/")
            && !refs.contains("orch/p/leases/")
            && !refs.contains("preserved/"),
        "m1 keeps no task, lease or repair ref: {refs}"
    );
    assert_eq!(server_refs(&cluster, &LITTER), "");
    assert_eq!(server_refs(&cluster, &["refs/orch/p/preserved/"]), "");
    assert!(
        server_refs(&cluster, &["refs/heads/orch/p/state", "refs/tags/orch/p/"])
            .lines()
            .count()
            >= 3,
        "state and tags stay as the record"
    );
    m0.fsck();
    m1.fsck();
}

#[test]
fn an_abandoned_shared_plan_keeps_a_runners_pushed_work_preserved_and_leaves_no_branches() {
    let cluster = Cluster::new(2, true);
    // On m1 the task commits half its work, then hangs.
    let plan = &PlanText::new("p")
        .task("slow", |t| {
            t.files(["slow.txt"]).run(
                r#"echo half > slow.txt && git add slow.txt && git commit -q -m "slow: half done"
sleep 60
"#,
            )
        })
        .to_string();
    start_shared(&cluster, plan);
    trust_on_the_others(&cluster);
    let (m0, m1) = (&cluster.clones[0], &cluster.clones[1]);
    let mut runner = cluster.spawn_run(1, &["--lease", "3"]);
    let half = poll_for("m1 to push its work", Duration::from_secs(30), || {
        let head = cluster.server(&["log", "-1", "--format=%H %s", "orch/p/tasks/slow"]);
        head.contains("half done")
            .then(|| head.split(' ').next().unwrap_or("").to_string())
    });
    m0.orch_ok(&["sync", "p", "--remote", "origin"]);
    m0.orch_ok(&["abandon", "p"]);
    let out = m0.orch(&["sync", "p", "--remote", "origin"]);
    assert_eq!(
        code(&out),
        Some(0),
        "{}\nserver: {}\nm0: {}",
        both(&out),
        cluster.server(&["log", "--format=%s", "orch/p/state"]),
        m0.git(&["log", "--format=%s", "orch/p/state"])
    );
    assert_eq!(server_refs(&cluster, &LITTER), "", "no branch litter");
    let kept = server_refs(&cluster, &["refs/orch/p/preserved/"]);
    assert!(
        kept.lines()
            .any(|l| l.starts_with(&half) && l.ends_with("/tasks/slow")),
        "the work m1 pushed is kept: {kept}"
    );

    // m1's runner is stopped (or gives up) however it notices.
    let deadline = Instant::now() + Duration::from_secs(20);
    while runner.try_wait().expect("poll").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = runner.kill();
    let _ = runner.wait();
    if let Ok(pgid) = std::fs::read_to_string(m1.path.join(".git/orch/run/p/slow.pgid")) {
        if let Some(pgid) = pgid.split_whitespace().next() {
            let _ = Command::new("kill")
                .args(["-9", "--", &format!("-{pgid}")])
                .status();
        }
    }
    m1.orch_ok(&["sync", "p", "--remote", "origin"]);
    let out = m1.orch(&["status", "p"]);
    assert!(
        !stderr(&out).contains("repair:"),
        "m1's branch is kept already, not repaired: {}",
        both(&out)
    );
    m1.orch_ok(&["sync", "p", "--remote", "origin"]);
    assert_eq!(server_refs(&cluster, &LITTER), "");
    let kept = server_refs(&cluster, &["refs/orch/p/preserved/"]);
    assert!(!kept.contains("/repair/"), "{kept}");
    assert!(!m1.refs().contains("orch/p/tasks/"), "{}", m1.refs());
    m0.fsck();
    m1.fsck();
}
