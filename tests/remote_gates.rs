//! Gates once per shared plan (issue 22): a checkpoint made by one machine
//! is taken by the others instead of each running its gates again;
//! `orch.gates = local` makes a machine gate every checkpoint itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};

use crate::common::*;
use crate::remote::{assert_landed_once, finish, start_shared, trust_on_the_others, Cluster};

/// `tasks` tasks per phase over `phases` phases (`t0`, `t1`, … writing
/// `d<i%6>/t<i>.txt`), and one plan-wide gate that takes `gate_secs`,
/// records `<commit> <machine>` in `log` and fails where `fail_on` says.
fn gated_plan(phases: usize, tasks: usize, gate_secs: u32, fail_on: &str, log: &Path) -> String {
    let mut text = format!(
        r#"name = "p"
[[gates]]
name = "suite"
run = '''
sleep {gate_secs}
echo "$ORCH_COMMIT $GATE_MACHINE" >> {log}
case "$GATE_MACHINE" in {fail_on}) exit 1;; esac
'''
"#,
        log = log.display()
    );
    for p in 0..phases {
        text += &format!("[[phases]]\nid = \"ph{p}\"\n");
        for j in 0..tasks {
            let i = p * tasks + j;
            text += &format!(
                r#"  [[phases.tasks]]
  id = "t{i}"
  files = ["d{g}/t{i}.txt"]
  run = 'sleep 0.{pause}; mkdir -p d{g} && echo t{i} > d{g}/t{i}.txt'
"#,
                g = i % 6,
                pause = 2 + j % 3
            );
        }
    }
    text
}

/// `git orch run --remote origin --json` in clone `i`, its gates seeing
/// `GATE_MACHINE=m<i>`, with `config` as `-c` settings.
fn spawn(cluster: &Cluster, i: usize, config: &str) -> Child {
    let c = &cluster.clones[i];
    let mut cmd = c.command(BIN, &c.path);
    cmd.args([
        "run", "p", "--remote", "origin", "--lease", "3", "-j", "1", "--json",
    ])
    .env("GATE_MACHINE", format!("m{i}"))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if !config.is_empty() {
        cmd.env("GIT_CONFIG_PARAMETERS", config);
    }
    cmd.spawn().expect("spawn a runner")
}

/// The gate runs the log recorded: machines by the commit gated.
fn gate_runs(log: &Path) -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut runs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let (commit, machine) = line.split_once(' ').expect("a gate log line");
        runs.entry(commit.to_string())
            .or_default()
            .push(machine.to_string());
    }
    runs
}

fn run_doc(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", both(out)))
}

#[test]
fn three_machines_run_each_checkpoints_gates_once_and_the_others_take_it() {
    let cluster = Cluster::new(3, true);
    let log = cluster.clones[0].scratch().join("gates.log");
    // The gate outlasts the 3-s lease: its lock must be renewed, or a
    // waiting runner would take it over and run the gate again.
    start_shared(&cluster, &gated_plan(2, 3, 4, "none", &log));
    trust_on_the_others(&cluster);
    let runners: Vec<Child> = (0..3).map(|i| spawn(&cluster, i, "")).collect();
    let outs: Vec<_> = runners.into_iter().map(|r| finish(r, 240)).collect();
    for out in &outs {
        assert_eq!(code(out), Some(0), "{}", both(out));
    }
    assert_landed_once(&cluster, 6);
    let runs = gate_runs(&log);
    assert_eq!(runs.len(), 2, "two checkpoints gated: {runs:?}");
    for (commit, machines) in &runs {
        assert_eq!(machines.len(), 1, "gates of {commit} ran once: {runs:?}");
    }
    // Every runner checkpointed each phase or took another's checkpoint.
    for out in &outs {
        let doc = run_doc(out);
        assert!(schema_errors(&doc).is_empty(), "{:?}", schema_errors(&doc));
        let mut phases: Vec<String> = doc["checkpoints"]
            .as_array()
            .into_iter()
            .chain(doc["taken_checkpoints"].as_array())
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect();
        phases.sort();
        assert_eq!(phases, ["ph0", "ph1"], "{doc}");
        assert!(doc["lost_races"].is_u64(), "{doc}");
        assert!(
            stderr(out).contains("lost race(s) on the remote"),
            "{}",
            both(out)
        );
    }
    // The gate locks go with the finished plan.
    let first = &cluster.clones[0];
    first.orch_ok(&["finish", "p"]);
    first.orch_ok(&["sync", "p", "--remote", "origin"]);
    assert_eq!(
        cluster.server(&["for-each-ref", "refs/heads/orch/p/gates/"]),
        ""
    );
}

#[test]
fn gates_that_fail_on_one_machine_stop_every_runner_without_running_again() {
    let cluster = Cluster::new(3, true);
    let log = cluster.clones[0].scratch().join("gates.log");
    start_shared(&cluster, &gated_plan(1, 3, 1, "m0|m1|m2", &log));
    trust_on_the_others(&cluster);
    let runners: Vec<Child> = (0..3).map(|i| spawn(&cluster, i, "")).collect();
    for r in runners {
        let out = finish(r, 240);
        assert_eq!(code(&out), Some(1), "{}", both(&out));
        assert_eq!(run_doc(&out)["gate_failure"], "ph0", "{}", both(&out));
    }
    let runs = gate_runs(&log);
    assert_eq!(runs.values().map(Vec::len).sum::<usize>(), 1, "{runs:?}");
}

#[test]
fn a_machine_with_local_gates_gates_every_checkpoint_itself_and_stops_where_they_fail() {
    let cluster = Cluster::new(2, true);
    let log = cluster.clones[0].scratch().join("gates.log");
    // The gate fails on m1 alone: m0 checkpoints, m1 (local gates) must
    // find it failing here whoever gated first.
    start_shared(&cluster, &gated_plan(1, 4, 1, "m1", &log));
    trust_on_the_others(&cluster);
    let shared = spawn(&cluster, 0, "");
    let local = spawn(&cluster, 1, "'orch.gates=local'");
    let out = finish(local, 240);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert_eq!(run_doc(&out)["gate_failure"], "ph0", "{}", both(&out));
    let out = finish(shared, 240);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(run_doc(&out)["checkpoints"], serde_json::json!(["ph0"]));
    let runs = gate_runs(&log);
    let machines: Vec<&String> = runs.values().flatten().collect();
    // Once, or twice when its own checkpoint lost to m0's while its gates
    // ran (the result of that first run is not the checkpoint's).
    assert!(
        (1..=2).contains(&machines.iter().filter(|m| **m == "m1").count()),
        "m1 gated the checkpoint itself: {runs:?}"
    );
    assert_eq!(
        machines.iter().filter(|m| **m == "m0").count(),
        1,
        "{runs:?}"
    );
    assert!(cluster
        .server(&["tag", "-l", "orch/p/ph0"])
        .contains("orch/p/ph0"));
}

#[test]
fn a_gate_lock_whose_holder_died_is_taken_over_once_its_lease_runs_out() {
    let cluster = Cluster::new(2, true);
    let log = cluster.clones[0].scratch().join("gates.log");
    let pid = cluster.clones[0].scratch().join("gate.pid");
    // On m0 the gate hangs (its pid recorded); elsewhere it passes.
    let plan = format!(
        r#"name = "p"
[[gates]]
name = "suite"
run = '''
if [ "$GATE_MACHINE" = m0 ]; then echo $$ > {pid}; exec sleep 60; fi
echo "$ORCH_COMMIT $GATE_MACHINE" >> {log}
'''
[[phases]]
id = "ph0"
  [[phases.tasks]]
  id = "t0"
  files = ["d0/t0.txt"]
  run = 'mkdir -p d0 && echo t0 > d0/t0.txt'
"#,
        pid = pid.display(),
        log = log.display()
    );
    start_shared(&cluster, &plan);
    trust_on_the_others(&cluster);
    let mut holder = spawn(&cluster, 0, "");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !(pid.exists()
        && cluster
            .server(&["for-each-ref", "refs/heads/orch/p/gates/ph0"])
            .contains("gates/ph0"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "m0 never took the gate lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // m0 dies with its gate.
    holder.kill().expect("kill -9 the holder");
    let _ = holder.wait();
    let gate = std::fs::read_to_string(&pid).expect("the gate's pid");
    let _ = std::process::Command::new("kill")
        .args(["-9", gate.trim()])
        .status();
    let started = std::time::Instant::now();
    let out = finish(spawn(&cluster, 1, ""), 120);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        stderr(&out).contains("waiting for the gates of phase ph0"),
        "m1 waited for the live lock first: {}",
        both(&out)
    );
    assert_eq!(run_doc(&out)["checkpoints"], serde_json::json!(["ph0"]));
    let runs = gate_runs(&log);
    assert_eq!(
        runs.values().flatten().collect::<Vec<_>>(),
        ["m1"],
        "{runs:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}
