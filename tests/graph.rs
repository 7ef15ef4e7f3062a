//! `git orch graph`: the plan's DAG as mermaid and dot, phases as
//! clusters, task states as styles, from a started plan or a plan file.
use crate::common::*;

use std::io::Write;
use std::process::{Command, Stdio};

const PLAN: &str = r#"
name = "g"
title = "Graph \"test\""

[[phases]]
id    = "setup"
title = "Design & setup"

  [[phases.tasks]]
  id    = "schema"
  title = "Database <schema>"
  run   = "echo s > s.txt"
  files = ["s.txt"]

  [[phases.tasks]]
  id         = "models.v2"
  run        = "exit 4"
  files      = ["m.txt"]
  depends_on = ["schema"]

[[phases]]
id = "end"

  [[phases.tasks]]
  id         = "api"
  files      = ["api.txt"]
  depends_on = ["models.v2", "schema"]

  [[phases.tasks]]
  id    = "old"
  files = ["old.txt"]
  skip  = true
"#;

fn node_line<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("no line with {label:?} in:\n{text}"))
}

#[test]
fn mermaid_from_a_plan_file_needs_no_started_plan() {
    let repo = TestRepo::new();
    let plan = repo.plan("plan.toml", PLAN);
    let m = repo.orch_ok(&["graph", "--file", plan.to_str().expect("utf-8 path")]);
    assert!(m.lines().any(|l| l == "flowchart LR"), "{m}");
    // Phases are subgraphs, in order, each closed.
    let setup = m
        .find("  subgraph p_setup[\"setup — Design & setup\"]")
        .expect("setup cluster");
    let end = m.find("  subgraph p_end[\"end\"]").expect("end cluster");
    assert!(setup < end);
    assert_eq!(m.matches("\n  end\n").count(), 2, "{m}");
    // Every task is a node in its phase's subgraph, styled by its state.
    assert!(node_line(&m, "t_schema[").ends_with(":::pending"));
    assert!(
        node_line(&m, "t_schema[").contains("#lt;schema#gt;"),
        "labels are escaped"
    );
    assert!(node_line(&m, "t_models_v2[\"models.v2\"]").ends_with(":::pending"));
    assert!(
        node_line(&m, "t_old[").ends_with(":::skipped"),
        "`skip = true` shows as skipped"
    );
    let api = m.find("t_api[").expect("api node");
    assert!(api > end, "api sits in the `end` subgraph");
    // One edge per dependency, across phases too.
    for edge in [
        "t_schema --> t_models_v2",
        "t_models_v2 --> t_api",
        "t_schema --> t_api",
    ] {
        assert!(
            m.lines().any(|l| l.trim() == edge),
            "missing edge {edge}:\n{m}"
        );
    }
    assert_eq!(m.matches(" --> ").count(), 3);
    for state in [
        "pending", "running", "done", "failed", "conflict", "skipped",
    ] {
        assert!(
            m.contains(&format!("classDef {state} fill:")),
            "no style for {state}"
        );
    }
    // Nothing was started.
    assert!(repo.rev("orch/g/state").is_none());
}

#[test]
fn graph_of_a_started_plan_shows_task_and_phase_states() {
    let repo = TestRepo::new();
    let plan = repo.plan("plan.toml", PLAN);
    repo.orch_ok(&["start", plan.to_str().expect("utf-8 path")]);
    let out = repo.orch(&["run"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "models.v2 fails: {}",
        stderr(&out)
    );

    let m = repo.orch_ok(&["graph"]);
    assert!(node_line(&m, "t_schema[").ends_with(":::done"), "{m}");
    assert!(node_line(&m, "t_models_v2[").ends_with(":::failed"), "{m}");
    assert!(node_line(&m, "t_api[").ends_with(":::pending"), "{m}");
    assert!(
        m.contains("style p_setup fill:#ffffff,stroke:#d97706"),
        "active phase: {m}"
    );

    let d = repo.orch_ok(&["graph", "g", "--format", "dot"]);
    assert!(d.starts_with("digraph \"g\" {"), "{d}");
    assert!(d.contains("subgraph \"cluster_setup\" {"), "{d}");
    assert!(d.contains("subgraph \"cluster_end\" {"), "{d}");
    assert!(
        d.contains("label=\"setup — Design & setup [active]\""),
        "{d}"
    );
    assert!(
        node_line(&d, "\"schema\" [").contains("fillcolor=\"#dcfce7\""),
        "done is green: {d}"
    );
    assert!(
        node_line(&d, "\"models.v2\" [").contains("fillcolor=\"#fee2e2\""),
        "failed is red: {d}"
    );
    assert!(
        node_line(&d, "\"old\" [").contains("dashed"),
        "skipped is dashed: {d}"
    );
    assert!(
        d.contains("label=\"g — Graph \\\"test\\\"\""),
        "quotes escaped: {d}"
    );
    for edge in [
        "\"schema\" -> \"models.v2\";",
        "\"models.v2\" -> \"api\";",
        "\"schema\" -> \"api\";",
    ] {
        assert!(d.contains(edge), "missing {edge}: {d}");
    }
    // Each task node sits inside its phase's cluster.
    let cluster_end = d.find("subgraph \"cluster_end\"").expect("end cluster");
    assert!(d.find("\"schema\" [").expect("schema") < cluster_end);
    assert!(d.find("\"api\" [").expect("api") > cluster_end);
    assert_dot_is_valid(&d);
}

#[test]
fn dot_from_a_plan_file_is_valid() {
    let repo = TestRepo::new();
    let plan = repo.plan("plan.toml", PLAN);
    let d = repo.orch_ok(&[
        "graph",
        "--file",
        plan.to_str().expect("utf-8 path"),
        "--format",
        "dot",
    ]);
    assert_eq!(
        d.matches("fillcolor=\"#f9fafb\"").count(),
        3,
        "three pending tasks: {d}"
    );
    assert_dot_is_valid(&d);
}

#[test]
fn graph_refusals() {
    let repo = TestRepo::new();
    assert_refused(&repo.orch(&["graph"]), "no started plan");
    let plan = repo.plan("plan.toml", PLAN);
    let path = plan.to_str().expect("utf-8 path");
    repo.orch_ok(&["start", path]);
    assert_refused(
        &repo.orch(&["graph", "g", "--file", path]),
        "both PLAN and --file",
    );
    assert_refused(&repo.orch(&["graph", "--format", "svg"]), "unknown format");
    let bad = repo.plan("bad.toml", "name = \"b\"\n[[phases]]\nid = \"x\"\n  [[phases.tasks]]\n  id = \"t\"\n  depends_on = [\"ghost\"]\n");
    let out = repo.orch(&["graph", "--file", bad.to_str().expect("utf-8 path")]);
    assert_refused(&out, "invalid plan file");
    assert!(
        stderr(&out).contains("bad.toml:6:"),
        "located problem: {}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

/// `dot` must accept the graph; skipped (and said so) without Graphviz.
fn assert_dot_is_valid(dot_text: &str) {
    let Ok(mut child) = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: Graphviz `dot` is not installed; the dot output was not validated"
        );
        return;
    };
    child
        .stdin
        .take()
        .expect("dot stdin")
        .write_all(dot_text.as_bytes())
        .expect("feed dot");
    let out = child.wait_with_output().expect("run dot");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "dot rejected the graph: {err}\n{dot_text}"
    );
    assert!(
        !err.contains("Warning") && !err.contains("Error"),
        "dot complained: {err}"
    );
    let svg = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        svg.matches("class=\"cluster\"").count(),
        2,
        "two clusters drawn"
    );
    assert_eq!(svg.matches("class=\"node\"").count(), 4, "four tasks drawn");
    assert_eq!(
        svg.matches("class=\"edge\"").count(),
        3,
        "three edges drawn"
    );
}
