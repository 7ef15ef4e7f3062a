//! `git orch report`: a real plan run by `git orch run` with real task
//! commands, then reported as JSON, markdown and HTML. The HTML is loaded
//! in headless Chromium and the rendered DOM must hold the timeline bars
//! the page's script draws, one per task attempt.
use crate::common::*;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Two phases: `a` and `b` run at the same time (so they need two timeline
/// slots), `c` waits for `a`, then `d` fails in the second phase.
const PLAN: &str = r#"
name  = "p"
title = "Report <test> & \"friends\""

[[gates]]
name = "unit"
run  = "test -f a.txt"

[[phases]]
id    = "setup"
title = "Set up"

  [[phases.tasks]]
  id       = "a"
  title    = "Write a"
  run      = "sleep 0.6; echo a > a.txt; echo 'notes from a: </script><b>x</b>' > \"$ORCH_HANDOFF_FILE\""
  files    = ["a.txt"]
  estimate = "1m"

  [[phases.tasks]]
  id    = "b"
  run   = "sleep 0.6; echo b > b.txt"
  files = ["b.txt"]

  [[phases.tasks]]
  id         = "c"
  run        = "echo c > c.txt"
  files      = ["c.txt"]
  depends_on = ["a"]

[[phases]]
id = "build"

  [[phases.tasks]]
  id         = "d"
  run        = "echo 'd is broken' >&2; exit 3"
  files      = ["d.txt"]
  depends_on = ["b"]

  [[phases.tasks]]
  id    = "e"
  files = ["e.txt"]
"#;

/// Starts PLAN and runs it to the failure of `d`.
fn run_plan() -> TestRepo {
    let repo = TestRepo::new();
    let plan = repo.plan("plan.toml", PLAN);
    repo.orch_ok(&["start", plan.to_str().expect("utf-8 path")]);
    let out = repo.orch(&["run", "-j", "3"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "run must stop at d: {}",
        stderr(&out)
    );
    repo
}

fn attempts_of<'a>(report: &'a Value, task: &str) -> Vec<&'a Value> {
    report["attempts"]
        .as_array()
        .expect("attempts array")
        .iter()
        .filter(|a| a["task"] == task)
        .collect()
}

fn task<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["tasks"]
        .as_array()
        .expect("tasks array")
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no task {id} in the report"))
}

#[test]
fn json_report_tells_what_ran_when_and_how_it_ended() {
    let repo = run_plan();
    let r = repo.orch_json(&["report", "--format", "json"]);
    assert_eq!(r["plan"], "p");
    assert_eq!(r["current_phase"], "build");

    // One attempt per task that ran; `e` never started (d failed first or
    // it ran: either way it is not failed).
    let a = attempts_of(&r, "a");
    assert_eq!(a.len(), 1, "{r:#}");
    assert_eq!(a[0]["outcome"], "done");
    assert_eq!(a[0]["n"], 1);
    assert_eq!(a[0]["changed"], serde_json::json!(["a.txt"]));
    let d = attempts_of(&r, "d");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["outcome"], "failed");
    assert_eq!(d[0]["log"], log_path("d", 1));

    // a and b ran at the same time, so they are on different rows.
    let (sa, sb) = (&a[0], &attempts_of(&r, "b")[0]);
    assert!(
        sa["start"].as_f64() < sb["end"].as_f64() && sb["start"].as_f64() < sa["end"].as_f64(),
        "a and b should overlap: {sa} {sb}"
    );
    assert_ne!(sa["slot"], sb["slot"]);
    assert!(r["slots"].as_u64() >= Some(2));
    // Every attempt's bar fits in the plan's time span.
    let (t0, t1) = (
        r["started_at"].as_f64().expect("start"),
        r["ended_at"].as_f64().expect("end"),
    );
    for at in r["attempts"].as_array().expect("attempts") {
        let (s, e) = (
            at["start"].as_f64().expect("start"),
            at["end"].as_f64().expect("ended"),
        );
        assert!(
            t0 - 1.0 <= s && s <= e && e <= t1 + 1e-6,
            "attempt outside the span: {at}"
        );
    }
    // c waited for a.
    let c = &attempts_of(&r, "c")[0];
    assert!(c["start"].as_f64() >= sa["end"].as_f64().map(|e| e - 0.001));

    // Time against estimate, changed files, handoff notes.
    let ta = task(&r, "a");
    assert_eq!(ta["estimate_seconds"], 60);
    let seconds = ta["seconds"].as_f64().expect("a was measured");
    assert!(seconds >= 0.5, "a slept 0.6s: {seconds}");
    let ratio = ta["vs_estimate"].as_f64().expect("ratio");
    assert!((ratio - seconds / 60.0).abs() < 1e-9);
    assert_eq!(ta["changed"], serde_json::json!(["a.txt"]));
    assert!(ta["handoff"]
        .as_str()
        .expect("a has a note")
        .contains("notes from a"));
    assert!(task(&r, "d")["handoff"].is_null());

    // Gates per phase, the checkpoint, the failure with its reason and log.
    let setup = &r["phases"][0];
    assert_eq!(setup["state"], "checkpointed");
    assert_eq!(setup["checkpoint"]["tag"], "orch/p/setup");
    assert_eq!(setup["gates"][0]["name"], "unit");
    assert_eq!(setup["gates"][0]["passed"], true);
    let failures = r["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["name"], "d");
    assert!(failures[0]["reason"]
        .as_str()
        .expect("reason")
        .contains("exit code 3"));
    assert_eq!(failures[0]["log"], log_path("d", 1));
    assert!(repo
        .show(&format!("orch/p/state:{}", log_path("d", 1)))
        .expect("log exists")
        .contains("d is broken"));

    // The history: one event per state commit, in order.
    let events = r["events"].as_array().expect("events");
    let log = repo.git(&["rev-list", "--first-parent", "--count", "orch/p/state"]);
    assert_eq!(events.len().to_string(), log.trim());
    assert_eq!(events[0]["kind"], "start");
    assert!(events
        .iter()
        .any(|e| e["kind"] == "checkpoint" && e["outcome"] == "passed" && e["subject"] == "setup"));
    assert!(events.iter().any(|e| e["summary"]
        .as_str()
        .is_some_and(|s| s.starts_with("task d: failed"))));
    let times: Vec<f64> = events
        .iter()
        .map(|e| e["time"].as_f64().expect("time"))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1] + 1e-6),
        "events out of order: {times:?}"
    );
}

#[test]
fn retries_rollbacks_and_undo_are_in_the_report() {
    let repo = run_plan();
    repo.orch_ok(&["task", "reset", "d"]);
    let out = repo.orch(&["run", "--task", "d"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "d fails again: {}",
        stderr(&out)
    );
    repo.orch_ok(&["rollback", "--to", "setup"]);
    repo.orch_ok(&["rollback", "--undo"]);

    let r = repo.orch_json(&["report", "--format", "json"]);
    let d = attempts_of(&r, "d");
    let numbers: Vec<_> = d.iter().map(|a| a["n"].as_u64()).collect();
    assert_eq!(numbers, vec![Some(1), Some(2)], "{r:#}");
    assert!(d.iter().all(|a| a["outcome"] == "failed"));
    assert_eq!(d[1]["log"], log_path("d", 2));
    assert_eq!(r["failures"].as_array().map(Vec::len), Some(2));
    let kinds: Vec<&str> = r["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"rollback") && kinds.contains(&"undo"),
        "{kinds:?}"
    );
    let rollbacks = r["rollbacks"].as_array().expect("rollbacks");
    assert_eq!(rollbacks.len(), 1);
    assert_eq!(rollbacks[0]["to"], "setup");
    assert_eq!(rollbacks[0]["undone"], true);
    // The HTML report's count leaves the undone rollback out (issue 23);
    // its table still lists it, as undone.
    let html = repo.orch_ok(&["report", "--format", "html"]);
    assert!(
        html.contains("<b>0</b><span>rollbacks</span>"),
        "an undone rollback counted: {}",
        &html[..html.len().min(3000)]
    );
    assert!(html.contains("<td>setup</td>"), "the row is kept");

    let md = repo.orch_ok(&["report"]);
    assert!(
        md.contains("## Rollbacks") && md.contains("to `setup`"),
        "{md}"
    );
    // A failure's log is named as `git orch log` reads it, and it does.
    assert!(md.contains("git orch log p d --attempt 2"), "{md}");
    assert!(!md.contains("git show orch/p/state:"), "{md}");
    let shown = repo.orch_ok(&["log", "p", "d", "--attempt", "2"]);
    assert_eq!(
        Some(shown.as_str()),
        repo.show(&format!("orch/p/state:{}", log_path("d", 2)))
            .as_deref()
    );
}

#[test]
fn running_and_skipped_tasks_have_their_own_bars() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "plan.toml",
        &PlanText::new("p")
            .task("x", |t| t.files(["x.txt"]))
            .task("y", |t| t.files(["y.txt"]))
            .to_string(),
    );
    repo.orch_ok(&["start", plan.to_str().expect("utf-8 path")]);
    repo.orch_ok(&["task", "start", "x"]);
    repo.orch_ok(&["task", "skip", "y"]);
    let r = repo.orch_json(&["report", "--format", "json"]);
    let x = attempts_of(&r, "x");
    assert_eq!(x.len(), 1);
    assert_eq!(x[0]["outcome"], "running");
    assert!(x[0]["end"].is_null());
    let y = attempts_of(&r, "y");
    assert_eq!(y.len(), 1);
    assert_eq!(y[0]["outcome"], "skipped");
    assert_eq!(r["totals"]["running"], 1);
    assert_eq!(r["totals"]["skipped"], 1);
}

#[test]
fn markdown_report_has_every_section() {
    let repo = run_plan();
    let md = repo.orch_ok(&["report"]);
    for section in [
        "# Report: p — Report <test> & \"friends\"",
        "## Phases",
        "## Tasks",
        "## Timeline",
        "## Gates",
        "## Failures",
        "## Rollbacks",
        "## Handoff notes",
        "## Dependency graph",
        "```mermaid",
        "## History",
    ] {
        assert!(md.contains(section), "missing {section:?} in:\n{md}");
    }
    assert!(md.contains("| `a` | `setup` | done | 1 |"), "{md}");
    assert!(md.contains("`a.txt`"), "{md}");
    assert!(
        md.contains("task `d` (attempt 1) in phase `build`: exit code 3"),
        "{md}"
    );
    assert!(md.contains("log: `git orch log p d --attempt 1`"), "{md}");
    // The handoff note's own headings nest under the report's.
    assert!(md.contains("### a\n\n#### Handoff: a — Write a"), "{md}");
    assert!(md.contains("notes from a"), "{md}");
}

#[test]
fn report_refusals_change_nothing() {
    let repo = TestRepo::new();
    assert_refused(&repo.orch(&["report"]), "report with no plan");
    let repo = run_plan();
    let before = repo.refs();
    assert_refused(&repo.orch(&["report", "nope"]), "unknown plan");
    assert_refused(&repo.orch(&["report", "--format", "pdf"]), "unknown format");
    let out = repo.orch(&[
        "report",
        "-o",
        "/nonexistent-dir/x/report.html",
        "--format",
        "html",
    ]);
    assert_refused(&out, "unwritable output");
    assert!(
        stderr(&out).contains("/nonexistent-dir/x/report.html"),
        "{}",
        stderr(&out)
    );
    assert_eq!(repo.refs(), before);
    repo.fsck();
}

// ------------------------------------------------------------- the HTML

#[test]
fn html_report_is_self_contained_and_its_timeline_renders_in_chromium() {
    let repo = run_plan();
    let file = repo.scratch().join("report.html");
    let out = repo.orch(&[
        "report",
        "--format",
        "html",
        "-o",
        file.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "-o writes the file, not stdout");
    let html = std::fs::read_to_string(&file).expect("report written");
    let json = repo.orch_json(&["report", "--format", "json"]);
    let attempts = json["attempts"].as_array().expect("attempts").len();

    // Self-contained: nothing to fetch (the SVG namespace is a name, not a fetch).
    assert!(html.starts_with("<!doctype html>"));
    for external in ["<link", "src=", "@import", "url(http", "https://"] {
        assert!(
            !html.contains(external),
            "the report must not load `{external}`"
        );
    }
    assert_eq!(
        html.replace("http://www.w3.org/2000/svg", "")
            .matches("http://")
            .count(),
        0
    );
    // The dependency graph is inline SVG, one node per task, phases as clusters.
    assert_eq!(html.matches("<g class=\"node ").count(), 5);
    assert_eq!(html.matches("<g class=\"cluster\"").count(), 2);
    // The handoff note's `</script>` cannot end the data island early.
    assert_eq!(
        html.matches("</script>").count(),
        2,
        "only the two real script ends"
    );
    assert!(html.contains("notes from a: &lt;/script&gt;&lt;b&gt;x&lt;/b&gt;"));
    // Before any script runs, the page has no bar at all: the bars below
    // are the script's work.
    assert_eq!(html.matches("class=\"bar ").count(), 0);

    let Some(dom) = render_in_chromium(&file) else {
        return;
    };
    assert!(
        dom.contains(&format!("data-rendered=\"{attempts}\"")),
        "the timeline script did not finish; DOM:\n{}",
        &dom[..dom.len().min(4000)]
    );
    let bars: Vec<&str> = dom
        .match_indices("<a class=\"bar ")
        .map(|(i, _)| &dom[i..(i + 200).min(dom.len())])
        .collect();
    assert_eq!(bars.len(), attempts, "one bar per task attempt");
    for id in ["a", "b", "c", "d"] {
        assert!(
            bars.iter()
                .any(|b| b.contains(&format!("data-task=\"{id}\""))),
            "no timeline bar for task {id}"
        );
    }
    assert!(bars
        .iter()
        .any(|b| b.starts_with("<a class=\"bar failed\"") && b.contains("data-task=\"d\"")));
    assert!(bars
        .iter()
        .any(|b| b.starts_with("<a class=\"bar done\"") && b.contains("data-task=\"a\"")));
    // Two rows, because a and b overlapped.
    assert_eq!(dom.matches("<div class=\"tl-label\">slot ").count(), 2);
    // Phases and the checkpoint are marked.
    assert!(dom.contains("class=\"tl-phase\" data-phase=\"setup\""));
    assert!(dom.contains("class=\"tl-marker checkpoint\""));
    assert!(dom.contains("◆ setup"));
}

/// The page's DOM after its scripts ran, from headless Chromium; `None`
/// (said out loud) when no Chromium is installed outside CI.
fn render_in_chromium(file: &Path) -> Option<String> {
    let Some(browser) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    else {
        let message = "chromium is not installed (Debian: `apt-get install chromium`): \
                       the HTML timeline was NOT checked in a browser";
        assert!(
            std::env::var_os("CI").is_none(),
            "{message}; .ci/run installs it, so CI must have it"
        );
        // Straight to stderr, past the test harness's capture, so it is seen.
        let _ = writeln!(std::io::stderr(), "SKIPPED: {message}");
        return None;
    };
    let profile = tempfile::TempDir::new().expect("profile dir");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .env("HOME", profile.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().expect("chromium stdout");
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut dom);
        dom
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match child.try_wait().expect("wait for chromium") {
            Some(_) => break,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within 120s");
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let dom = reader.join().expect("read the DOM");
    assert!(dom.contains("<html"), "chromium printed no DOM: {dom}");
    Some(dom)
}

/// Issue 23: a phase's box in the HTML report's dependency graph is sized
/// by its title too, so a long title is shown whole and inside the box, as
/// Chromium lays it out (each header's right edge against its box's).
#[test]
fn the_dependency_graph_fits_long_phase_titles_in_chromium() {
    let repo = TestRepo::new();
    let title = "Move every notification channel onto the new event bus";
    let plan = repo.plan(
        "plan.toml",
        &format!(
            "name = \"p\"\n[[phases]]\nid = \"bus\"\ntitle = \"{title}\"\n  [[phases.tasks]]\n  id = \"a\"\n[[phases]]\nid = \"z\"\n  [[phases.tasks]]\n  id = \"b\"\n"
        ),
    );
    repo.orch_ok(&["start", plan.to_str().expect("utf-8 path")]);
    let html = repo.orch_ok(&["report", "--format", "html"]);
    let start = html.find("<svg").expect("an inline SVG graph");
    let end = html[start..].find("</svg>").expect("its end") + start + "</svg>".len();
    let svg = &html[start..end];
    assert!(
        svg.contains(&format!(">bus — {title} · active</text>")),
        "the whole title is in the graph: {svg}"
    );
    // A page of the graph alone, and a script that measures it.
    let page = format!(
        "<!doctype html><html><body>{svg}<script>\n\
         const out = [];\n\
         for (const g of document.querySelectorAll('g.cluster')) {{\n\
           const r = g.querySelector('rect'), t = g.querySelector('text');\n\
           const b = t.getBBox();\n\
           const edge = r.x.baseVal.value + r.width.baseVal.value;\n\
           out.push(g.dataset.phase + '=' + (b.width > 0 && b.x + b.width <= edge ? 'fits' : 'clipped'));\n\
         }}\n\
         document.body.setAttribute('data-fit', out.join(','));\n\
         </script></body></html>"
    );
    let file = repo.scratch().join("graph.html");
    std::fs::write(&file, page).expect("write the page");
    let Some(dom) = render_in_chromium(&file) else {
        return;
    };
    assert!(
        dom.contains("data-fit=\"bus=fits,z=fits\""),
        "a phase header leaves its box: {}",
        &dom[dom.find("<body").unwrap_or(0)..][..300.min(dom.len())]
    );
}
