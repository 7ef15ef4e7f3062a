//! Landing integrity: the scope check judges exactly what a landing changes
//! on the work branch (content, mode, links, whatever the task's history
//! looks like and whatever the checkout mode), and nothing a task wrote is
//! dropped or lost on the way.

mod common;

use common::*;

fn start(repo: &TestRepo, toml: &str) {
    let file = repo.plan("plan.toml", toml);
    repo.orch_ok(&["start", file.to_str().expect("utf-8 path")]);
}

/// Runs the plan, which must fail (exit 1) with the work branch where it was.
fn run_fails_and_work_stays(repo: &TestRepo) -> String {
    let work = repo.rev("orch/p/work").expect("work");
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert_eq!(repo.rev("orch/p/work"), Some(work), "work branch moved");
    both(&out)
}

fn reason(repo: &TestRepo, id: &str) -> String {
    let st = status_json(repo);
    let task = st["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no task {id} in {st}"));
    task["reason"].as_str().unwrap_or("").to_string()
}

/// `git ls-tree` of one path: `mode type id\tpath`.
fn entry(repo: &TestRepo, rev: &str, path: &str) -> String {
    repo.git(&["ls-tree", rev, "--", path]).trim().to_string()
}

#[test]
fn an_out_of_scope_chmod_fails_the_task_and_nothing_lands() {
    let repo = TestRepo::new();
    repo.write("tool.sh", "echo tool\n");
    repo.commit_all("tool");
    start(
        &repo,
        r#"
name = "p"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "t"
  run = "mkdir -p src && echo in > src/in.txt && chmod +x tool.sh"
  files = ["src/**"]
"#,
    );
    let out = run_fails_and_work_stays(&repo);
    assert!(out.contains("tool.sh"), "{out}");
    assert_eq!(task_state(&status_json(&repo), "t"), "failed");
    assert!(reason(&repo, "t").contains("tool.sh"));
    assert!(entry(&repo, "orch/p/work", "tool.sh").starts_with("100644"));
    // The work is kept on its branch.
    assert!(entry(&repo, "orch/p/tasks/t", "tool.sh").starts_with("100755"));
    repo.fsck();
}

#[test]
fn an_out_of_scope_file_turned_into_a_link_fails_even_with_the_same_bytes() {
    // The file already holds the link's target, so its blob does not change:
    // only the mode says it became a link to /etc/passwd.
    let repo = TestRepo::new();
    repo.write("conf", "/etc/passwd");
    repo.commit_all("conf");
    start(
        &repo,
        r#"
name = "p"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "t"
  run = "mkdir -p src && echo in > src/in.txt && rm conf && ln -s /etc/passwd conf"
  files = ["src/**"]
"#,
    );
    let out = run_fails_and_work_stays(&repo);
    assert!(out.contains("conf"), "{out}");
    assert_eq!(task_state(&status_json(&repo), "t"), "failed");
    assert!(entry(&repo, "orch/p/work", "conf").starts_with("100644"));
    assert!(entry(&repo, "orch/p/tasks/t", "conf").starts_with("120000"));
    repo.fsck();
}
