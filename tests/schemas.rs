//! Versioned JSON (issue 12): every `--json` output is one document that
//! opens with its schema's name and version, the schemas are the files in
//! `schemas/`, `git orch schema` prints them, and every JSON output a test
//! reads is validated against them (`crate::common::json_doc`).
use crate::common::*;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value};

/// Two phases: `one` done by hand, `two` by `run`; one plan-wide gate.
fn plan() -> String {
    PlanText::new("p")
        .gate("unit", "true")
        .task("a", |t| t.files(["a/**"]))
        .task("b", |t| t.files(["b/**"]))
        .phase("two", |p| {
            p.task("c", |t| t.files(["c/**"]).run("mkdir -p c && echo c > c/f"))
        })
        .to_string()
}

fn arg(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The names `git orch schema` lists.
fn listed(repo: &TestRepo) -> BTreeSet<String> {
    repo.orch_ok(&["schema"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_schema_name_has_a_valid_schema_file_that_git_orch_schema_prints_byte_for_byte() {
    let repo = TestRepo::new();
    let names = listed(&repo);
    assert!(names.len() >= 17, "{names:?}");
    let files: BTreeSet<String> = std::fs::read_dir(schemas_dir())
        .expect("schemas/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = names.iter().map(|n| format!("{n}.json")).collect();
    assert_eq!(files, expected, "one file per schema name, and no other");
    // Outside any repository too: the schemas are built in.
    let outside = repo.scratch().join("elsewhere");
    std::fs::create_dir_all(&outside).expect("mkdir");
    for name in &names {
        let path = schemas_dir().join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path).expect("schema file");
        let schema: Value = serde_json::from_str(&text).expect("a schema is JSON");
        jsonschema::meta::validate(&schema)
            .unwrap_or_else(|e| panic!("{name}: not a valid JSON Schema: {e}"));
        jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("{name}: does not compile: {e}"));
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        assert_eq!(schema["properties"]["schema"], json!({ "const": name }));
        assert_eq!(
            schema["properties"]["schema_version"],
            json!({ "const": 1 })
        );
        let required = schema["required"].as_array().expect("required");
        assert_eq!(required[..2], [json!("schema"), json!("schema_version")]);
        assert_eq!(
            schema["additionalProperties"], false,
            "{name}: an undocumented field is a drift"
        );
        for dir in [&repo.path, &outside] {
            let out = repo.orch_in(dir, &["schema", name]);
            assert_eq!(code(&out), Some(0), "{}", both(&out));
            assert_eq!(
                out.stdout,
                text.as_bytes(),
                "`git orch schema {name}` is schemas/{name}.json"
            );
        }
    }
}

#[test]
fn an_unknown_schema_name_is_refused_naming_the_known_ones() {
    let repo = TestRepo::new();
    let before = repo.refs();
    let out = repo.orch(&["schema", "stauts"]);
    assert_refused(&out, "unknown schema");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("`stauts`"), "{err}");
    for name in listed(&repo) {
        assert!(err.contains(&name), "names {name}: {err}");
    }
    assert!(stdout(&out).is_empty());
    assert_eq!(repo.refs(), before);
    let help = repo.orch_ok(&["schema", "-h"]);
    assert!(help.contains("Usage: git orch schema [NAME]"), "{help}");
}

/// A change that makes a valid document invalid.
type Drift = fn(&mut Value);

/// The validation the other tests rely on is not vacuous: a real document
/// passes, and each kind of drift from it fails.
#[test]
fn a_document_that_drifts_from_its_schema_fails_validation() {
    let repo = TestRepo::new();
    let plan = repo.plan("plan.toml", &plan());
    repo.orch_ok(&["start", arg(&plan)]);
    let good = status_json(&repo);
    assert!(schema_errors(&good).is_empty());
    let drifts: [(&str, Drift); 9] = [
        ("a required field gone", |d| {
            d.as_object_mut().expect("object").remove("tasks");
        }),
        ("a state word the schema does not know", |d| {
            d["tasks"][0]["state"] = json!("runing")
        }),
        ("a wrong type", |d| d["finished"] = json!("no")),
        ("a short commit id", |d| d["work"] = json!("abc1234")),
        ("an undocumented field", |d| {
            d["tasks"][0]["colour"] = json!("red")
        }),
        ("another version", |d| d["schema_version"] = json!(2)),
        ("another schema's name", |d| d["schema"] = json!("list")),
        ("a schema that does not exist", |d| {
            d["schema"] = json!("nope")
        }),
        ("no envelope", |d| {
            let o = d.as_object_mut().expect("object");
            o.remove("schema");
            o.remove("schema_version");
        }),
    ];
    for (what, drift) in drifts {
        let mut doc = good.clone();
        drift(&mut doc);
        assert!(!schema_errors(&doc).is_empty(), "{what}: passed\n{doc}");
    }
    // An output without its envelope is caught by the shared helper too.
    let bare = repo
        .command("sh", &repo.path)
        .args(["-c", "echo '{\"plan\": \"p\"}'"])
        .output()
        .expect("sh");
    let caught = std::panic::catch_unwind(|| json_doc(&bare, "a bare object"));
    assert!(
        caught.is_err(),
        "json_doc took a document without its schema"
    );
}

/// Every command with `--json` is run once; each document is validated
/// (`orch_json`, `json_doc`) and together they use every schema.
#[test]
fn every_json_output_carries_its_schema_and_matches_it() {
    let repo = TestRepo::new();
    let plan = repo.plan("plan.toml", &plan());
    let mut seen = BTreeSet::new();
    let mut doc = |v: Value| -> Value {
        seen.insert(v["schema"].as_str().expect("schema").to_string());
        assert_eq!(v["schema_version"], 1, "{v}");
        v
    };
    doc(repo.orch_json(&["check", "--json", arg(&plan)]));
    let started = doc(repo.orch_json(&["start", "--json", arg(&plan)]));
    assert_eq!(started["plan"], "p");
    let list = doc(repo.orch_json(&["list", "--json"]));
    assert_eq!(list["plans"][0]["plan"], "p", "{list}");
    let next = doc(repo.orch_json(&["task", "next", "--json"]));
    assert_eq!(next["action"], "start", "{next}");
    let begun = doc(repo.orch_json(&["task", "start", "a", "--json"]));
    let wt = Path::new(begun["worktree"].as_str().expect("worktree")).to_path_buf();
    std::fs::create_dir_all(wt.join("a")).expect("mkdir");
    std::fs::write(wt.join("a/f"), "a\n").expect("write");
    let done = doc(repo.orch_json(&["task", "done", "a", "--json"]));
    assert_eq!(done["state"], "done", "{done}");
    let reopened = doc(repo.orch_json(&["task", "reopen", "a", "--json"]));
    assert_eq!(reopened["state"], "pending", "{reopened}");
    let wt = repo.orch_ok(&["task", "start", "a"]);
    std::fs::write(Path::new(wt.trim()).join("a/f"), "a again\n").expect("write");
    doc(repo.orch_json(&["task", "done", "a", "--json"]));
    repo.orch_ok(&["task", "start", "b"]);
    let failed = doc(repo.orch_json(&["task", "fail", "b", "--json"]));
    assert_eq!(failed["state"], "failed");
    doc(repo.orch_json(&["task", "reset", "b", "--json"]));
    doc(repo.orch_json(&["task", "skip", "b", "--json"]));
    doc(repo.orch_json(&["status", "--json"]));
    doc(repo.orch_json(&["agents", "--json"]));
    doc(repo.orch_json(&["task", "show", "a", "--agent", "--json"]));
    let trusted = doc(repo.orch_json(&["trust", "p", "--json"]));
    assert_eq!(trusted["trusted"], true, "{trusted}");
    let approvals = doc(repo.orch_json(&["trust", "--list", "--json"]));
    assert_eq!(approvals["approvals"][0]["by"], "start", "{approvals}");
    doc(repo.orch_json(&["hook", "status", "--json"]));
    let gate = doc(repo.orch_json(&["gate", "--json"]));
    assert_eq!(gate["passed"], true, "{gate}");
    let work = repo.rev("orch/p/work").expect("work");
    let zero = "0".repeat(40);
    let push = format!("refs/heads/orch/p/work {work} refs/heads/orch/p/work {zero}\n");
    let out = orch_stdin(
        &repo,
        &["gate", "--pre-push", "origin", "/nowhere", "--json"],
        &push,
    );
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    doc(json_doc(&out, "gate --pre-push --json"));
    let cp = doc(repo.orch_json(&["checkpoint", "--json"]));
    assert_eq!(cp["next_phase"], "two", "{cp}");
    let stored = doc(repo.orch_json(&["log", "one:unit", "--json"]));
    assert_eq!(stored["gate"], "unit", "{stored}");
    doc(repo.orch_json(&["rollback", "--to", "start", "--json"]));
    doc(repo.orch_json(&["rollback", "--undo", "--json"]));
    let run = doc(repo.orch_json(&["run", "--json"]));
    assert_eq!(run["finished"], true, "{run}");
    assert_eq!(run["checkpoints"], json!(["two"]), "{run}");
    doc(repo.orch_json(&["resume", "--json"]));
    let log = doc(repo.orch_json(&["log", "--json"]));
    assert!(
        log["events"].as_array().is_some_and(|e| e.len() > 10),
        "{log}"
    );
    doc(repo.orch_json(&["report", "--format", "json"]));
    let finished = doc(repo.orch_json(&["finish", "--json"]));
    assert_eq!(finished["finished"], true);
    // `report -o FILE` writes the same document.
    let file = repo.scratch().join("report.json");
    repo.orch_ok(&["report", "--format", "json", "-o", arg(&file)]);
    let text = std::fs::read_to_string(&file).expect("report file");
    let report: Value = serde_json::from_str(&text).expect("JSON");
    assert!(text.starts_with("{\n  \"schema\": \"report\",\n  \"schema_version\": 1,"));
    assert!(
        schema_errors(&report).is_empty(),
        "{:?}",
        schema_errors(&report)
    );
    // A failed `check --json` (exit 2) is a document too.
    let bad = repo.plan("bad.toml", "name = \"p\"\nbogus = 1\n");
    let out = repo.orch(&["check", "--json", arg(&bad)]);
    assert_eq!(code(&out), Some(2), "{}", both(&out));
    assert_eq!(json_doc(&out, "check --json of a bad plan")["valid"], false);
    // The MCP server's error document is exercised by tests/mcp.rs.
    seen.insert("mcp-error".to_string());
    // The event hooks' stdin is exercised by tests/live.rs.
    seen.insert("notify-event".to_string());
    // `plan amend --json` and `abandon --json`: by tests/plan_changes.rs.
    seen.insert("plan-amend".to_string());
    seen.insert("abandon".to_string());
    // `sync --json` needs a remote: by tests/remote.rs.
    seen.insert("sync".to_string());
    assert_eq!(seen, listed(&repo), "every schema is exercised here");
}
