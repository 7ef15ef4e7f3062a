//! The integration tests, as one binary (one link instead of one per
//! file): each file under `tests/` is a module of it, sharing the hermetic
//! test-repository helper in `tests/common`. `every_test_file_is_a_module`
//! fails when a file is added under `tests/` and not listed here, so that
//! no test is silently left out.

mod common;

mod agent_review;
mod agent_runs;
mod agents;
mod agents_real;
mod cli_basics;
mod cli_edges;
mod containment;
mod containment_engine;
mod containment_paths;
mod core;
mod crash;
mod docs;
mod fixforward;
mod gates;
mod graph;
mod help;
mod hints;
mod hook_managers;
mod hostile;
mod import;
mod inputs;
mod internal_errors;
mod landing;
mod ledger;
mod live;
mod locks;
mod manual;
mod mcp;
mod mcp_inspector;
mod migrate;
mod on_failure;
mod output;
mod park;
mod plan_changes;
mod plan_fuzz;
mod races;
mod remote;
mod remote_closing;
mod remote_gates;
mod remote_races;
mod remote_transports;
mod repairs;
mod report;
mod retry;
mod review;
mod run;
mod schemas;
mod shapes;
mod trust;
mod trust_commands;
mod watch;
mod work_branch;
mod worktrees;

#[test]
fn every_test_file_is_a_module() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let listed = include_str!("suite.rs");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("tests/") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let Some(module) = name.strip_suffix(".rs") else {
            continue;
        };
        if module != "suite" && !listed.contains(&format!("\nmod {module};\n")) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "tests/suite.rs does not list {missing:?}: add a `mod` line for each"
    );
}
