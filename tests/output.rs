//! Output that is the contract, as insta snapshots under `tests/snapshots/`:
//! plain `git orch status`, the markdown report and the error messages a
//! user reads. A change to any of them shows as a diff of a `.snap` file
//! to review (`cargo insta review`, or compare the `.snap.new` insta
//! leaves), never as a silently loosened assertion. What varies from run
//! to run is redacted: the temp paths, commit ids, durations and dates.

use crate::common::*;

use std::process::Output;

/// insta's settings for this repository's output: its temp dir, commit
/// ids and dates replaced by fixed words, so a snapshot holds only what a
/// run always prints. With `timed`, durations too (`0.4s`, `1m05s`): the
/// output of a run; an error message keeps the durations it quotes.
fn redacted(repo: &TestRepo, timed: bool) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    let scratch = repo.scratch().display().to_string();
    for (pattern, word) in [
        (regex::escape(&scratch), "[TMP]".to_string()),
        (
            regex::escape(&std::env::temp_dir().display().to_string()),
            "[TMPDIR]".to_string(),
        ),
        (r"\b[0-9a-f]{7,40}\b".to_string(), "[COMMIT]".to_string()),
        (
            r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d)?(\.\d+)?(Z|[+-]\d\d:?\d\d| UTC)?".to_string(),
            "[DATE]".to_string(),
        ),
    ] {
        settings.add_filter(&pattern, word);
    }
    if timed {
        settings.add_filter(r"\b(\d+\.\ds|\d+m\d\ds|\d+h\d\dm)\b", "[DUR]");
    }
    settings
}

/// What a user sees of a command: the line they typed, its exit code and
/// both streams.
fn transcript(args: &[&str], out: &Output) -> String {
    let exit = code(out).map_or("by a signal".to_string(), |c| c.to_string());
    let mut text = format!("$ git orch {}\nexit {exit}\n", args.join(" "));
    for (name, stream) in [("stdout", stdout(out)), ("stderr", stderr(out))] {
        if !stream.is_empty() {
            text += &format!("--- {name}\n{stream}");
            if !stream.ends_with('\n') {
                text.push('\n');
            }
        }
    }
    text
}

/// Each command's transcript, one after the other.
fn transcripts(repo: &TestRepo, commands: &[&[&str]]) -> String {
    commands
        .iter()
        .map(|args| transcript(args, &repo.orch(args)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Two phases: in `one`, `a` lands, `b` fails and `c` waits for `a`;
/// phase `two` waits for `one`.
fn part_way() -> TestRepo {
    let repo = new_started(
        &PlanText::new("p")
            .gate("unit", "true")
            .task("a", |t| t.files(["a.txt"]).run("echo a > a.txt"))
            .task("b", |t| {
                t.files(["b.txt"])
                    .run("echo 'b is broken' >&2; exit 3")
                    .title("Write b")
            })
            .task("c", |t| t.files(["c.txt"]).depends_on(["a"]))
            .phase("two", |p| p.task("d", |t| t.files(["d.txt"])))
            .to_string(),
    );
    let out = repo.orch(&["run", "-j", "1"]);
    assert_eq!(code(&out), Some(1), "b fails the run: {}", both(&out));
    repo
}

#[test]
fn plain_status_of_a_plan_part_way() {
    let repo = part_way();
    let status = repo.orch_ok(&["status"]);
    redacted(&repo, true).bind(|| insta::assert_snapshot!("plain_status_part_way", status));
}

#[test]
fn plain_status_of_a_plan_just_started() {
    let repo = new_started(
        &PlanText::new("p")
            .task("a", |t| t.files(["a/**"]))
            .task("b", |t| t.files(["b/**"]).depends_on(["a"]))
            .to_string(),
    );
    let status = repo.orch_ok(&["status"]);
    redacted(&repo, true).bind(|| insta::assert_snapshot!("plain_status_just_started", status));
}

#[test]
fn the_markdown_report_of_a_plan_part_way() {
    let repo = part_way();
    let report = repo.orch_ok(&["report"]);
    redacted(&repo, true).bind(|| insta::assert_snapshot!("markdown_report_part_way", report));
}

#[test]
fn error_messages_of_bad_plans() {
    let repo = TestRepo::new();
    let plans = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/plans");
    let mut text = Vec::new();
    for name in [
        "bad-cycle.toml",
        "bad-duplicate-id.toml",
        "bad-duration.toml",
        "bad-syntax.toml",
        "bad-type.toml",
        "bad-unknown-dep.toml",
        "bad-unknown-key.toml",
        "bad-unknown-key.yaml",
    ] {
        // A copy beside the repository, so the message names a path the
        // filters redact.
        let file = repo.plan(
            name,
            &std::fs::read_to_string(plans.join(name)).expect("a bad plan fixture"),
        );
        let args = ["check", file.to_str().expect("utf-8 path")];
        let out = repo.orch(&args);
        assert_refused(&out, name);
        text.push(transcript(&args, &out));
    }
    redacted(&repo, false).bind(|| insta::assert_snapshot!("errors_bad_plans", text.join("\n")));
}

#[test]
fn error_messages_of_unknown_tasks_and_plans() {
    let repo = new_started(
        &PlanText::new("p")
            .task("a", |t| t.files(["a/**"]))
            .to_string(),
    );
    let before = repo.refs();
    let text = transcripts(
        &repo,
        &[
            &["task", "start", "nope"],
            &["task", "done", "nope"],
            &["log", "p", "nope"],
            &["status", "nope"],
            &["report", "nope"],
        ],
    );
    assert_eq!(repo.refs(), before, "a refusal changes nothing");
    redacted(&repo, false).bind(|| insta::assert_snapshot!("errors_unknown_names", text));
}

#[test]
fn error_messages_of_refused_commands() {
    let empty = TestRepo::new();
    let no_plan = transcripts(&empty, &[&["status"], &["run"], &["report"]]);
    let repo = new_started(
        &PlanText::new("p")
            .task("a", |t| t.files(["a/**"]))
            .task("b", |t| t.files(["b/**"]).depends_on(["a"]))
            .to_string(),
    );
    let again = repo.plan(
        "again.toml",
        &PlanText::new("p")
            .task("a", |t| t.files(["a/**"]))
            .to_string(),
    );
    let before = repo.refs();
    let refused = transcripts(
        &repo,
        &[
            &["start", again.to_str().expect("utf-8 path")],
            &["report", "--format", "pdf"],
            &["task", "done", "a"],
            &["task", "start", "b"],
            &["rollback"],
            &["finish"],
        ],
    );
    assert_eq!(repo.refs(), before, "a refusal changes nothing");
    redacted(&empty, false).bind(|| insta::assert_snapshot!("errors_no_plan", no_plan));
    redacted(&repo, false).bind(|| insta::assert_snapshot!("errors_refused", refused));
}
