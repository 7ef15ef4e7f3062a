//! `git orch import` (spec-kit and Claudio) and `git orch init`, driving the
//! real binary: the fixtures under fixtures/import/ must import to exactly
//! their expected.toml, the result must pass `check` and `start`, and every
//! plan under fixtures/examples/ must pass `check` (script.toml must also run
//! to the end).
//!
//! After an intended change to the importers' output, regenerate the
//! expected files with `UPDATE_EXPECTED=1 cargo test --test import` and
//! review the diff.

use std::path::{Path, PathBuf};

use crate::common::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Copies a directory tree, leaving out files named `expected.*`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        let src = entry.path();
        let dst = to.join(&name);
        if src.is_dir() {
            copy_tree(&src, &dst);
        } else if !name.to_string_lossy().starts_with("expected.") {
            std::fs::copy(&src, &dst).expect("copy fixture file");
        }
    }
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// Compares `actual` with the expected file (or rewrites it with UPDATE_EXPECTED=1).
fn assert_expected(expected: &Path, actual: &str) {
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        std::fs::write(expected, actual).expect("update expected file");
        return;
    }
    let want = std::fs::read_to_string(expected).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (create it with UPDATE_EXPECTED=1)",
            expected.display()
        )
    });
    if want != actual {
        let line = want
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| want.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the import, first at line {}:\n  expected: {:?}\n  actual:   {:?}\n--- whole output ---\n{actual}",
            expected.display(),
            line + 1,
            want.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

/// The plan as JSON, whatever its format, to compare TOML and YAML forms.
fn plan_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("read plan");
    if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str(&text).expect("toml")
    } else {
        serde_yaml::from_str(&text).expect("yaml")
    }
}

/// `check` passes, `start` works, and the tasks marked `skip` start skipped.
fn check_and_start(repo: &TestRepo, plan: &Path) {
    let plan_s = plan.to_str().expect("utf-8 path");
    repo.orch_ok(&["check", plan_s]);
    repo.orch_ok(&["start", plan_s]);
    let status = repo.orch_json(&["status", "--json"]);
    let skipped: Vec<String> = plan_json(plan)["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .flat_map(|p| p["tasks"].as_array().expect("tasks").clone())
        .filter(|t| t["skip"] == true)
        .map(|t| t["id"].as_str().expect("id").to_string())
        .collect();
    for t in status["tasks"].as_array().expect("status tasks") {
        let id = t["id"].as_str().expect("id");
        let want = if skipped.iter().any(|s| s == id) {
            "skipped"
        } else {
            "pending"
        };
        assert_eq!(t["state"], want, "task {id} after start: {t}");
    }
    repo.fsck();
}

#[test]
fn speckit_fixtures_import_to_their_expected_plans() {
    let dirs = subdirs(&fixtures().join("import/speckit"));
    assert!(
        dirs.len() >= 2,
        "want at least two spec-kit fixtures, found {dirs:?}"
    );
    for dir in dirs {
        let feature = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let repo = TestRepo::new();
        copy_tree(&dir, &repo.path.join("specs").join(&feature));
        let rel = format!("specs/{feature}");
        let out = repo.orch(&["import", &rel]);
        assert_eq!(out.status.code(), Some(0), "import {rel}: {}", stderr(&out));
        let text = stdout(&out);
        assert_expected(&dir.join("expected.toml"), &text);
        let err = stderr(&out);
        assert!(
            err.contains(&format!("imported {rel}/tasks.md (spec-kit)")),
            "{err}"
        );
        assert!(err.contains("inferred: "), "{err}");
        assert!(!err.starts_with("error"), "{err}");

        // The same plan from the tasks.md path and from an absolute path.
        assert_eq!(repo.orch_ok(&["import", &format!("{rel}/tasks.md")]), text);
        let abs = repo.path.join(&rel);
        assert_eq!(
            repo.orch_ok(&["import", abs.to_str().expect("utf-8")]),
            text
        );

        let plan = repo.plan(&format!("{feature}.toml"), &text);
        check_and_start(&repo, &plan);
    }
}

#[test]
fn speckit_inference_is_reported() {
    let repo = TestRepo::new();
    copy_tree(
        &fixtures().join("import/speckit/001-photo-albums"),
        &repo.path.join("specs/001-photo-albums"),
    );
    let out = repo.orch(&["import", "specs/001-photo-albums"]);
    let err = stderr(&out);
    for want in [
        "inferred: 24 tasks, 6 phases",
        "T011 depends on T006, T010",
        "skip = true for T001 and T002",
        "gate `test` runs `cargo test`",
        "checkpoint notes in the titles of phase-2",
    ] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
    let text = stdout(&out);
    let plan: toml::Table = toml::from_str(&text).expect("toml");
    assert_eq!(plan["name"].as_str(), Some("photo-albums"));
    let phases = plan["phases"].as_array().expect("phases");
    let ids: Vec<&str> = phases
        .iter()
        .map(|p| p["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        ["phase-1", "phase-2", "phase-3", "phase-4", "phase-5", "phase-n"]
    );
    let task = |id: &str| {
        phases
            .iter()
            .flat_map(|p| p["tasks"].as_array().expect("tasks"))
            .find(|t| t["id"].as_str() == Some(id))
            .unwrap_or_else(|| panic!("no task {id}"))
            .clone()
    };
    // [P] tasks have no implicit dependency; others wait for the one before.
    assert!(task("T005").get("depends_on").is_none());
    assert_eq!(task("T012")["depends_on"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        task("T022")["files"].as_array().expect("files")[0].as_str(),
        Some("docs/**")
    );
    assert!(phases[1]["title"]
        .as_str()
        .expect("title")
        .contains(" — Foundation ready"));
    assert!(task("T011")["prompt"]
        .as_str()
        .expect("prompt")
        .contains("`specs/001-photo-albums/plan.md`"));

    let repo2 = TestRepo::new();
    copy_tree(
        &fixtures().join("import/speckit/002-team-notifications"),
        &repo2.path.join("specs/002-team-notifications"),
    );
    let err = stderr(&repo2.orch(&["import", "specs/002-team-notifications"]));
    assert!(
        err.contains("not imported: T016 depends on T021: T021 is in a later phase"),
        "{err}"
    );
    assert!(err.contains("template placeholder"), "{err}");
    assert!(err.contains("T014 depends on T011, T012, T013"), "{err}");
}

#[test]
fn claudio_fixture_imports_to_its_expected_plan() {
    let dirs = subdirs(&fixtures().join("import/claudio"));
    assert!(!dirs.is_empty());
    for dir in dirs {
        let repo = TestRepo::new();
        copy_tree(&dir.join(".claudio"), &repo.path.join(".claudio"));
        let out = repo.orch(&["import", "."]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stdout(&out);
        assert_expected(&dir.join("expected.toml"), &text);
        let err = stderr(&out);
        assert!(err.contains("imported .claudio (Claudio)"), "{err}");
        assert!(err.contains("not imported: "), "{err}");
        // The .claudio directory itself, or its plan.md, or a phase's tasks.md.
        for other in [".claudio", ".claudio/plan.md", ".claudio/phase1/tasks.md"] {
            assert_eq!(repo.orch_ok(&["import", other]), text, "import {other}");
        }
        let plan = repo.plan("claudio.toml", &text);
        check_and_start(&repo, &plan);
    }
}

#[test]
fn claudio_dependencies_and_status_are_read() {
    let repo = TestRepo::new();
    copy_tree(
        &fixtures().join("import/claudio/dark-mode/.claudio"),
        &repo.path.join(".claudio"),
    );
    let out = repo.orch(&["import", ".claudio"]);
    let err = stderr(&out);
    assert!(
        err.contains("phase1-task3 depends on phase1-task1, phase1-task2"),
        "{err}"
    );
    assert!(err.contains("skip = true for phase1-task1"), "{err}");
    assert!(
        err.contains("not imported: phase2/task3/: it has no claude.md"),
        "{err}"
    );
    let plan: toml::Table = toml::from_str(&stdout(&out)).expect("toml");
    assert_eq!(plan["name"].as_str(), Some("dark-mode"));
    let phase1 = &plan["phases"].as_array().expect("phases")[0];
    assert_eq!(phase1["title"].as_str(), Some("Theme Foundation (Week 1)"));
    let t1 = &phase1["tasks"].as_array().expect("tasks")[0];
    assert_eq!(t1["title"].as_str(), Some("Design Tokens"));
    let prompt = t1["prompt"].as_str().expect("prompt");
    assert!(
        prompt.starts_with("# Task: Design Tokens Context\n"),
        "{prompt}"
    );
    assert!(
        prompt.contains("`.claudio/shared/standards/claude.md`"),
        "{prompt}"
    );
}

#[test]
fn yaml_output_is_the_same_plan() {
    let repo = TestRepo::new();
    let dir = fixtures().join("import/speckit/001-photo-albums");
    copy_tree(&dir, &repo.path.join("specs/001-photo-albums"));
    for out in ["albums.yaml", "albums.yml"] {
        let stdout = repo.orch_ok(&["import", "specs/001-photo-albums", "-o", out]);
        assert!(
            stdout.is_empty(),
            "the plan goes to the file, not stdout: {stdout}"
        );
        let written = repo.path.join(out);
        let text = std::fs::read_to_string(&written).expect("written");
        assert!(
            text.starts_with(
                "# Imported by `git orch import` from specs/001-photo-albums/tasks.md"
            ),
            "{text}"
        );
        assert_eq!(
            plan_json(&written),
            plan_json(&dir.join("expected.toml")),
            "{out}"
        );
        repo.orch_ok(&["check", out]);
    }
    repo.orch_ok(&["import", "specs/001-photo-albums", "-o", "albums.toml"]);
    assert_eq!(
        std::fs::read_to_string(repo.path.join("albums.toml")).expect("written"),
        std::fs::read_to_string(dir.join("expected.toml")).expect("expected")
    );
}

#[test]
fn name_can_be_given() {
    let repo = TestRepo::new();
    copy_tree(
        &fixtures().join("import/speckit/001-photo-albums"),
        &repo.path.join("specs/001-photo-albums"),
    );
    let text = repo.orch_ok(&["import", "specs/001-photo-albums", "--name", "albums-v2"]);
    assert!(text.contains("\nname  = \"albums-v2\"\n"), "{text}");
    let out = repo.orch(&["import", "specs/001-photo-albums", "--name", "bad name"]);
    assert_refused(&out, "bad --name");
}

#[test]
fn import_refuses_bad_input_and_never_overwrites() {
    let repo = TestRepo::new();
    copy_tree(
        &fixtures().join("import/speckit/001-photo-albums"),
        &repo.path.join("specs/001-photo-albums"),
    );
    let existing = repo.write("plan.toml", "keep me\n");
    let out = repo.orch(&["import", "specs/001-photo-albums", "-o", "plan.toml"]);
    assert_refused(&out, "existing -o");
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&existing).expect("read"),
        "keep me\n"
    );

    let out = repo.orch(&["import", "specs/001-photo-albums", "-o", "plan.json"]);
    assert_refused(&out, "-o with an unknown extension");
    assert!(!repo.path.join("plan.json").exists());

    let out = repo.orch(&["import", "specs/nope"]);
    assert_refused(&out, "missing source");

    repo.write(
        "specs/001-photo-albums/checklists/requirements.md",
        "- [ ] CHK001 Spec is complete\n",
    );
    let out = repo.orch(&[
        "import",
        "specs/001-photo-albums/checklists/requirements.md",
    ]);
    assert_refused(&out, "checklist");
    assert!(stderr(&out).contains("checklist"), "{}", stderr(&out));

    repo.write("empty/notes.md", "# Nothing here\n");
    assert_refused(
        &repo.orch(&["import", "empty"]),
        "a directory with nothing to import",
    );
    let out = repo.orch(&["import", "empty/notes.md"]);
    assert_refused(&out, "a markdown file without tasks");
    assert!(stderr(&out).contains("no tasks found"), "{}", stderr(&out));

    // Two features under specs/: the user must pick one.
    repo.write(
        "specs/002-other/tasks.md",
        "## Phase 1: A\n- [ ] T001 Do it\n",
    );
    let out = repo.orch(&["import", "specs"]);
    assert_refused(&out, "several features");
    assert!(
        stderr(&out).contains("2 spec-kit features"),
        "{}",
        stderr(&out)
    );
    assert!(!repo.refs().contains("orch/"), "import must not touch refs");
}

#[test]
fn init_writes_a_commented_plan_that_checks_and_runs_its_script_phase() {
    let repo = TestRepo::new();
    let out = repo.orch(&["init"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let file = repo.path.join("repo.toml");
    let text = std::fs::read_to_string(&file).expect("init writes <repo dir>.toml");
    for want in [
        "name  = \"repo\"",
        "kind     = \"claude-code\"",
        "kind     = \"codex\"",
        "kind        = \"aider\"",
        "[[gates]]",
        "# Gates must pass",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
    let comments = text
        .lines()
        .filter(|l| l.trim_start().starts_with('#') || l.contains("  # "))
        .count();
    assert!(
        comments > 30,
        "the starter plan explains itself: {comments} comment lines"
    );
    repo.orch_ok(&["check", "repo.toml"]);

    // Never overwritten without --force.
    std::fs::write(&file, "mine\n").expect("write");
    assert_refused(&repo.orch(&["init"]), "init over an existing file");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "mine\n");
    repo.orch_ok(&["init", "--force"]);
    assert_eq!(std::fs::read_to_string(&file).expect("read"), text);

    // A name and a YAML file.
    repo.orch_ok(&["init", "checkout-redesign", "-o", "plan.yaml"]);
    let yaml = std::fs::read_to_string(repo.path.join("plan.yaml")).expect("yaml");
    assert!(yaml.contains("name: checkout-redesign"), "{yaml}");
    repo.orch_ok(&["check", "plan.yaml"]);
    assert_refused(
        &repo.orch(&["init", "bad name", "-o", "x.toml"]),
        "bad name",
    );
    assert_refused(&repo.orch(&["init", "-o", "plan.txt"]), "unknown extension");
    assert!(!repo.path.join("x.toml").exists() && !repo.path.join("plan.txt").exists());

    // Its script phase really runs and checkpoints.
    let plan = repo.plan("starter.toml", &text);
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    repo.orch_ok(&["run", "--phase", "setup"]);
    let notes = repo
        .show("orch/repo/work:docs/NOTES.md")
        .expect("notes landed");
    assert_eq!(notes, "# Notes for repo\n");
    assert!(
        repo.rev("refs/tags/orch/repo/setup").is_some(),
        "setup is checkpointed"
    );
    repo.fsck();
}

#[test]
fn init_uses_the_projects_test_command() {
    let repo = TestRepo::new();
    repo.write("Cargo.toml", "[package]\nname = \"x\"\n");
    repo.orch_ok(&["init", "-o", "p.toml"]);
    let text = std::fs::read_to_string(repo.path.join("p.toml")).expect("read");
    assert!(text.contains("run     = \"cargo test --quiet\""), "{text}");
}

#[test]
fn example_plans_are_valid() {
    let dir = fixtures().join("examples");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures/examples")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["aider.toml", "claude.toml", "codex.toml", "script.toml"]
    );
    let repo = TestRepo::new();
    for (name, agent) in [
        ("claude.toml", "claude -p"),
        ("codex.toml", "codex exec"),
        ("aider.toml", "aider --yes"),
        ("script.toml", "sh"),
    ] {
        let path = dir.join(name);
        let out = repo.orch(&["check", path.to_str().expect("utf-8")]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stdout(&out).is_empty(),
            "{name} has warnings: {}",
            stdout(&out)
        );
        let text = std::fs::read_to_string(&path).expect("read");
        if agent != "sh" {
            assert!(text.contains(agent), "{name} uses {agent}");
            assert!(
                text.contains("$ORCH_TASK_FILE"),
                "{name} hands the task file to the agent"
            );
        }
    }
}

#[test]
fn script_example_runs_to_completion() {
    let repo = TestRepo::new();
    let plan = fixtures().join("examples/script.toml");
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    let out = repo.orch(&["run"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "run: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let status = repo.orch_json(&["status", "--json"]);
    assert!(
        status["phase"].is_null(),
        "every phase checkpointed: {status}"
    );
    for p in status["phases"].as_array().expect("phases") {
        assert_eq!(p["state"], "checkpointed", "{p}");
    }
    let states: Vec<(String, String)> = status["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| {
            (
                t["id"].as_str().expect("id").into(),
                t["state"].as_str().expect("state").into(),
            )
        })
        .collect();
    for (id, state) in &states {
        let want = if id == "charts" { "skipped" } else { "done" };
        assert_eq!(state, want, "{id}");
    }
    let summary = repo
        .show("orch/script-example/work:report/summary.md")
        .expect("summary");
    assert!(
        summary.contains("- Lisbon: 22.0 C over 2 days"),
        "{summary}"
    );
    assert!(summary.contains("- Oslo: 10.0 C over 2 days"), "{summary}");
    let clean = repo
        .show("orch/script-example/work:data/clean.csv")
        .expect("clean");
    assert!(
        !clean.contains("Nairobi,tue"),
        "incomplete rows dropped: {clean}"
    );
    assert!(repo.rev("refs/tags/orch/script-example/report").is_some());
    repo.fsck();
}

#[test]
fn speckit_inserted_task_ids_are_imported_not_dropped() {
    let repo = TestRepo::new();
    copy_tree(
        &fixtures().join("import/speckit/003-inserted-tasks"),
        &repo.path.join("specs/003-inserted-tasks"),
    );
    let out = repo.orch(&["import", "specs/003-inserted-tasks"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(!err.contains("without a task id"), "{err}");
    let plan: toml::Table = toml::from_str(&stdout(&out)).expect("toml");
    let tasks: Vec<&toml::Value> = plan["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .flat_map(|p| p["tasks"].as_array().expect("tasks"))
        .collect();
    let ids: Vec<&str> = tasks
        .iter()
        .map(|t| t["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        ["T001", "T002", "T002A", "T002b", "T-003", "T003.1", "T004", "T002-A", "T1.2"],
        "every task line of tasks.md is a task"
    );
    let deps = |id: &str| -> Vec<String> {
        tasks
            .iter()
            .find(|t| t["id"].as_str() == Some(id))
            .and_then(|t| t.get("depends_on"))
            .map(|d| {
                d.as_array()
                    .expect("array")
                    .iter()
                    .map(|v| v.as_str().expect("str").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(deps("T-003"), ["T002A"]);
    assert_eq!(deps("T004"), ["T002-A"]);
    assert_eq!(deps("T1.2"), ["T-003", "T004", "T002-A"]);
    assert!(err.contains("T-003 depends on T002A"), "{err}");
    // The imported plan is a plan git-orch runs, its odd ids included.
    let plan = repo.plan("inserted.toml", &stdout(&out));
    check_and_start(&repo, &plan);
    repo.orch_ok(&["task", "start", "T002A"]);
}

#[test]
fn speckit_work_without_a_usable_id_is_refused_not_dropped() {
    let repo = TestRepo::new();
    for (text, want) in [
        (
            "## Phase 1: A\n- [ ] T001 First\n- [ ] Update the docs\n",
            "line 3: checklist item without a task id: `Update the docs`",
        ),
        (
            "## Phase 1: A\n- [ ] T001 First\n- [ ] T001/b Odd\n- [ ] T002\n",
            "line 3: `T001/b` is not a task id git-orch can use (ids are `T` and digits, optionally with a suffix such as `T002A`, `T1.2` or `T002-A`) (and 1 more such line)",
        ),
    ] {
        repo.write("specs/001-x/tasks.md", text);
        let out = repo.orch(&["import", "specs/001-x", "-o", "x.toml"]);
        assert_refused(&out, text);
        assert!(stderr(&out).contains(want), "{}", stderr(&out));
        assert!(stdout(&out).is_empty());
        assert!(!repo.path.join("x.toml").exists());
    }
    // Indented items under a task are its steps, not lost work.
    repo.write(
        "specs/001-x/tasks.md",
        "## Phase 1: A\n- [ ] T001 First\n  - [ ] write the parser\n## Validation\n- [ ] All tests pass\n",
    );
    let text = repo.orch_ok(&["import", "specs/001-x"]);
    assert!(text.contains("Steps:\n- write the parser\n"), "{text}");
}
