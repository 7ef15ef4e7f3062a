//! `git orch watch` (issue 12) in a real terminal: tmux, on a private
//! socket, with a fixed size. Keys go in with `send-keys`, the screen comes
//! back with `capture-pane`; every wait polls the screen against a generous
//! deadline, no sleep is an assertion.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const DEADLINE: Duration = Duration::from_secs(60);

/// A tmux server of its own (socket in the test's temp dir) running one
/// interactive shell in the repository.
struct Tmux {
    socket: PathBuf,
    repo_home: PathBuf,
    bin_dir: PathBuf,
}

const PROMPT: &str = "orch-test$ ";

impl Tmux {
    /// A session of `width`×`height` with `sh` at a known prompt, in `dir`,
    /// with `env` on top of the hermetic environment (`NO_COLOR` is unset
    /// unless given).
    fn start(repo: &TestRepo, dir: &Path, env: &[(&str, &str)]) -> Tmux {
        static SESSIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SESSIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let t = Tmux {
            socket: repo.scratch().join(format!("tmux-{n}.sock")),
            repo_home: repo.home.clone(),
            bin_dir: repo.bin_dir.clone(),
        };
        let mut cmd = t.tmux();
        cmd.args(["new-session", "-d", "-x", "120", "-y", "32", "-c"])
            .arg(dir)
            .env("PS1", PROMPT)
            .env_remove("NO_COLOR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(["sh", "-i"]);
        let out = cmd.output().expect("run tmux");
        assert!(out.status.success(), "tmux: {}", stderr(&out));
        t.wait_for("the shell prompt", |s| s.contains(PROMPT.trim_end()));
        t
    }

    fn tmux(&self) -> Command {
        let mut cmd = Command::new("tmux");
        hermetic(&mut cmd, &self.repo_home, &self.bin_dir);
        cmd.arg("-S").arg(&self.socket).args(["-f", "/dev/null"]);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Types a line and presses Enter.
    fn type_line(&self, line: &str) {
        self.keys(&["-l", line]);
        self.keys(&["Enter"]);
    }

    fn keys(&self, keys: &[&str]) {
        let out = self
            .tmux()
            .args(["send-keys", "-t", "0"])
            .args(keys)
            .output()
            .expect("tmux send-keys");
        assert!(out.status.success(), "send-keys: {}", stderr(&out));
    }

    /// The screen as text; with `escapes`, with its colours and attributes.
    fn screen(&self, escapes: bool) -> String {
        let mut cmd = self.tmux();
        cmd.args(["capture-pane", "-p", "-t", "0"]);
        if escapes {
            cmd.arg("-e");
        }
        stdout(&cmd.output().expect("tmux capture-pane"))
    }

    /// Polls the screen until `ok` holds; returns it.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen(false);
            if ok(&s) {
                return s;
            }
            if start.elapsed() > DEADLINE {
                panic!("waited {DEADLINE:?} for {what}; the screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
    }
}

/// The screen line that shows a row (the first that contains `text`).
fn line_of<'a>(screen: &'a str, text: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(text))
        .unwrap_or_default()
}

/// The row of task `id`: the line whose text, past the border and the
/// selection mark, starts with the id.
fn row<'a>(screen: &'a str, id: &str) -> &'a str {
    screen
        .lines()
        .find(|l| {
            l.trim_start_matches(['│', '›', ' '])
                .strip_prefix(id)
                .is_some_and(|rest| rest.starts_with(' '))
        })
        .unwrap_or_default()
}

/// A plan whose task `slow` prints a line and then waits for `go` to exist;
/// `quick` just prints. Both in phase `one`; `later` in phase `two`.
fn waiting_plan(repo: &TestRepo) -> PathBuf {
    let go = repo.scratch().join("go");
    let text = format!(
        r#"name = "w"
[[gates]]
name = "unit"
run = "echo gate-output-unit"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "slow"
  files = ["a"]
  estimate = "10m"
  run = "echo started-slow; while [ ! -f '{go}' ]; do sleep 0.1; done; echo x > a"
  [[phases.tasks]]
  id = "quick"
  files = ["b"]
  run = "echo y > b"
[[phases]]
id = "two"
  [[phases.tasks]]
  id = "later"
  files = ["c"]
  run = "echo z > c"
"#,
        go = go.display()
    );
    let plan = repo.plan("w.toml", &text);
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    go
}

/// Starts `git orch run` in the background and waits until `slow` runs.
fn run_until_slow_runs(repo: &TestRepo) -> Child {
    let child = repo
        .command(BIN, &repo.path)
        .args(["run", "-j", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start git orch run");
    let start = Instant::now();
    while task_state(&status_json(repo), "slow") != "running" {
        assert!(start.elapsed() < DEADLINE, "slow never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

fn wait_until_done(repo: &TestRepo, id: &str) {
    let start = Instant::now();
    while task_state(&status_json(repo), id) != "done" {
        assert!(start.elapsed() < DEADLINE, "{id} never landed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The seconds a row's time column shows (`12.5s / est …`, `1m05s …`).
fn seconds_of(row: &str) -> f64 {
    let Some(word) = row
        .split_whitespace()
        .find(|w| w.ends_with('s') && w.starts_with(|c: char| c.is_ascii_digit()))
    else {
        return 0.0;
    };
    match word.trim_end_matches('s').split_once('m') {
        Some((m, s)) => m.parse::<f64>().unwrap_or(0.0) * 60.0 + s.parse::<f64>().unwrap_or(0.0),
        None => word.trim_end_matches('s').parse().unwrap_or(0.0),
    }
}

/// A plan carried to its end: task `second` prints 100 numbered lines.
fn finished_plan(repo: &TestRepo) {
    let plan = repo.plan(
        "w.toml",
        &PlanText::new("w")
            .gate("unit", "echo gate-output-unit")
            .task("first", |t| {
                t.files(["a"]).run("echo output-of-first; echo x > a")
            })
            .task("second", |t| {
                t.files(["b"]).run(
                    "i=1; while [ $i -le 100 ]; do printf 'second-line-%03d
' $i; i=$((i+1)); done; echo y > b",
                )
            })
            .to_string(),
    );
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    repo.orch_ok(&["run"]);
}

#[test]
fn watch_shows_a_running_task_with_its_live_log_and_its_move_to_done_without_a_keypress() {
    let repo = TestRepo::new();
    let go = waiting_plan(&repo);
    let mut run = run_until_slow_runs(&repo);
    wait_until_done(&repo, "quick");
    let tmux = Tmux::start(&repo, &repo.path, &[("NO_COLOR", "1")]);
    tmux.type_line("git orch watch");
    let s = tmux.wait_for("slow running, with its live output", |s| {
        row(s, "slow").contains("running") && s.contains("started-slow")
    });
    assert!(s.contains("· live"), "the pane says the log is live:\n{s}");
    assert!(row(&s, "slow").contains("est 10m"), "{s}");
    // Its clock goes on while the state stands still.
    let t0 = seconds_of(row(&s, "slow"));
    tmux.wait_for("slow's clock ticking", |s| {
        seconds_of(row(s, "slow")) >= t0 + 1.5
    });
    std::fs::write(&go, "").expect("release slow");
    let s = tmux.wait_for("slow done", |s| {
        row(s, "slow").contains("done") && line_of(s, "phase two").contains("checkpointed")
    });
    assert!(s.contains("tag orch/w/one"), "{s}");
    assert_eq!(run.wait().expect("run ends").code(), Some(0));
    tmux.keys(&["q"]);
    repo.fsck();
}

#[test]
fn moving_the_selection_and_opening_a_log_shows_the_log_text() {
    let repo = TestRepo::new();
    finished_plan(&repo);
    let tmux = Tmux::start(&repo, &repo.path, &[("NO_COLOR", "1")]);
    tmux.type_line("git orch watch");
    tmux.wait_for("the view", |s| s.contains("phase one"));
    // Phase, gate, first, second: one down is the gate, with its log.
    tmux.keys(&["j"]);
    tmux.wait_for("the gate's log in the pane", |s| {
        s.contains("gate unit ·") && s.contains("gate-output-unit")
    });
    tmux.keys(&["j", "Down"]);
    let s = tmux.wait_for("the tail of second's log", |s| {
        s.contains("second-line-100")
    });
    assert!(
        !s.contains("second-line-001"),
        "the pane shows only the tail:\n{s}"
    );
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("second's whole log from its top", |s| {
        s.contains("second-line-001") && s.contains("lines 1-")
    });
    assert!(s.contains("of 100"), "{s}");
    tmux.keys(&["G"]);
    tmux.wait_for("the end of the log", |s| {
        s.contains("second-line-100") && !s.contains("second-line-001")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("back to the list", |s| s.contains("phases and tasks"));
}

#[test]
fn q_and_ctrl_c_leave_the_view_and_give_the_shell_prompt_back() {
    let repo = TestRepo::new();
    finished_plan(&repo);
    let tmux = Tmux::start(&repo, &repo.path, &[("NO_COLOR", "1")]);
    for quit in ["q", "C-c"] {
        let marker = format!("watch-exited-by-{quit}-");
        tmux.type_line(&format!("git orch watch; echo {marker}$?"));
        tmux.wait_for("the view", |s| s.contains("phases and tasks"));
        tmux.keys(&[quit]);
        let s = tmux.wait_for("the prompt after the view", |s| {
            s.contains(&format!("{marker}0"))
        });
        assert!(
            !s.contains("phases and tasks"),
            "{quit}: the view is gone (alternate screen left):\n{s}"
        );
        let last = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        assert_eq!(last.trim_end(), PROMPT.trim_end(), "{quit}: {s}");
    }
    // The terminal is back in cooked mode: a typed line echoes and runs.
    tmux.type_line("echo cooked-$((40+2))");
    tmux.wait_for("the shell running a command", |s| s.contains("cooked-42"));
}

/// `ORCH_WATCH_PANIC` exists in builds with the `failpoints` feature.
#[cfg(feature = "failpoints")]
#[test]
fn a_panic_in_the_view_gives_the_terminal_back() {
    let repo = TestRepo::new();
    finished_plan(&repo);
    let tmux = Tmux::start(&repo, &repo.path, &[("NO_COLOR", "1")]);
    tmux.type_line("ORCH_WATCH_PANIC=1 git orch watch; echo watch-exited-$?");
    let s = tmux.wait_for("the exit after the panic", |s| {
        s.contains("watch-exited-101")
    });
    assert!(
        s.contains("ORCH_WATCH_PANIC is set"),
        "the message shows:\n{s}"
    );
    assert!(!s.contains("phases and tasks"), "the view is gone:\n{s}");
    tmux.type_line("echo cooked-$((40+2))");
    tmux.wait_for("the shell running a command", |s| s.contains("cooked-42"));
}

#[test]
fn no_color_keeps_colour_escapes_out_of_the_view() {
    let repo = TestRepo::new();
    finished_plan(&repo);
    let colour = |env: &[(&str, &str)]| {
        let tmux = Tmux::start(&repo, &repo.path, env);
        tmux.type_line("git orch watch");
        tmux.wait_for("the view", |s| s.contains("phases and tasks"));
        let s = tmux.screen(true);
        tmux.keys(&["q"]);
        tmux.wait_for("the prompt", |s| !s.contains("phases and tasks"));
        s
    };
    // SGR colour: 30-37/90-97 foreground, 40-47 background, 38;/48; extended.
    let has_colour = |s: &str| {
        s.split("\x1b[").skip(1).any(|seq| {
            let params = seq.split('m').next().unwrap_or("");
            params.split(';').any(|p| {
                matches!(
                    p.parse::<u32>(),
                    Ok(30..=38 | 40..=48 | 90..=97 | 100..=107)
                )
            })
        })
    };
    let painted = colour(&[]);
    assert!(
        has_colour(&painted),
        "without NO_COLOR the states are coloured:\n{painted:?}"
    );
    let plain = colour(&[("NO_COLOR", "1")]);
    assert!(plain.contains("done"), "{plain}");
    assert!(!has_colour(&plain), "NO_COLOR: no colour:\n{plain:?}");
}

#[test]
fn through_a_pipe_watch_prints_plain_listings_until_every_phase_is_checkpointed() {
    let repo = TestRepo::new();
    let go = waiting_plan(&repo);
    let mut run = run_until_slow_runs(&repo);
    let mut watch = repo
        .command(BIN, &repo.path)
        .args(["watch", "--interval", "100"])
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start watch");
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&go, "").expect("release slow");
    assert_eq!(run.wait().expect("run ends").code(), Some(0));
    let start = Instant::now();
    while watch.try_wait().expect("watch").is_none() {
        assert!(start.elapsed() < DEADLINE, "watch did not end by itself");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = watch.wait_with_output().expect("watch output");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        !text.contains('\x1b'),
        "no escape codes in a pipe:\n{text:?}"
    );
    let listings: Vec<&str> = text.split("── w at state").skip(1).collect();
    assert!(listings.len() >= 2, "a listing per change:\n{text}");
    assert!(row(listings[0], "slow").contains("running"), "{text}");
    let last = listings.last().expect("a listing");
    assert!(row(last, "slow").contains("done"), "{text}");
    assert!(
        line_of(last, "phase two").contains("checkpointed"),
        "{text}"
    );
}

#[test]
fn watch_once_and_a_dumb_terminal_print_one_plain_listing() {
    let repo = TestRepo::new();
    finished_plan(&repo);
    let out = repo.orch_ok(&["watch", "--once"]);
    assert_eq!(out.matches("── w at state").count(), 1, "{out}");
    assert!(row(&out, "second").contains("done"), "{out}");
    let tmux = Tmux::start(&repo, &repo.path, &[("NO_COLOR", "1")]);
    tmux.type_line("TERM=dumb git orch watch; echo watch-exited-$?");
    let s = tmux.wait_for("the plain listing", |s| s.contains("watch-exited-0"));
    assert!(s.contains("── w at state"), "{s}");
    assert!(!s.contains("phases and tasks"), "no full-screen view:\n{s}");
}

#[test]
fn o_reopens_a_done_task_through_the_cli_and_says_what_happened() {
    let repo = TestRepo::new();
    let go = waiting_plan(&repo);
    let mut run = run_until_slow_runs(&repo);
    wait_until_done(&repo, "quick");
    let tmux = Tmux::start(&repo, &repo.path, &[("NO_COLOR", "1")]);
    tmux.type_line("git orch watch");
    tmux.wait_for("the view on slow", |s| line_of(s, "› ").contains("slow"));
    // On a running task, `o` refuses in the view and changes nothing.
    tmux.keys(&["o"]);
    tmux.wait_for("the refusal", |s| {
        s.contains("o reopens a done task; slow is running")
    });
    tmux.keys(&["j"]);
    tmux.wait_for("quick selected", |s| line_of(s, "› ").contains("quick"));
    tmux.keys(&["o"]);
    let s = tmux.wait_for("the CLI's answer", |s| {
        s.contains("git orch task reopen quick --plan w:")
    });
    assert!(!s.contains("error:"), "{s}");
    // The state says it was reopened (the runner, still going, may well run
    // the reopened task again and land it before anyone looks at its row).
    let history = repo.git(&["log", "--format=%s", "refs/heads/orch/w/state"]);
    assert!(history.contains("task quick: reopened"), "{history}");
    std::fs::write(&go, "").expect("release slow");
    // The run may wait for the reopened task's person: it is not the test.
    let start = Instant::now();
    while run.try_wait().expect("run").is_none() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = run.kill();
    let _ = run.wait();
}

#[test]
fn watch_refuses_an_unknown_plan() {
    let repo = TestRepo::new();
    finished_plan(&repo);
    let before = repo.refs();
    let out = repo.orch(&["watch", "nope"]);
    assert_refused(&out, "watch nope");
    assert_eq!(repo.refs(), before);
}

#[test]
fn the_demo_suggests_watch_in_a_second_terminal() {
    let repo = TestRepo::new();
    let dir = repo.scratch().join("demo");
    let out = repo.orch(&["demo", "--dir", dir.to_str().expect("utf-8")]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let err = stderr(&out);
    let line = line_of(&err, "git orch watch");
    assert!(line.contains("second terminal"), "{err}");
    assert!(
        line.contains(&dir.join("calculator").display().to_string()),
        "{err}"
    );
}

/// Issue 12's "approve/reject a review" in the view: two tasks wait for a
/// person's review; `a` on one approves it (it lands), `x` on the other
/// asks for the comments, typed in the view, and rejects it with them.
/// Both through the CLI (`task approve`, `task reject -m`).
#[test]
fn a_approves_and_x_rejects_a_review_with_comments_typed_in_the_view() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "plan.toml",
        "name = \"rv\"\n[defaults]\nreview = \"manual\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"good\"\n  files = [\"good.txt\"]\n  run = \"echo good > good.txt\"\n  [[phases.tasks]]\n  id = \"meh\"\n  files = [\"meh.txt\"]\n  run = \"echo meh > meh.txt\"\n",
    );
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    let out = repo.orch(&["run", "-j", "1"]);
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "good"), "review", "{}\n{st}", both(&out));
    assert_eq!(task_state(&st, "meh"), "review", "{st}");

    let tmux = Tmux::start(&repo, &repo.path, &[("NO_COLOR", "1")]);
    tmux.type_line("git orch watch");
    tmux.wait_for("the view on good", |s| line_of(s, "› ").contains("good"));
    tmux.keys(&["a"]);
    tmux.wait_for("the CLI's answer to approve", |s| {
        s.contains("git orch task approve good --plan rv")
    });
    tmux.wait_for("good done", |s| row(s, "good").contains("done"));
    assert_eq!(
        repo.show("orch/rv/work:good.txt").as_deref(),
        Some("good\n")
    );

    tmux.keys(&["j"]);
    tmux.wait_for("meh selected", |s| line_of(s, "› ").contains("meh"));
    tmux.keys(&["x"]);
    tmux.wait_for("the prompt", |s| s.contains("reject meh, comments:"));
    // Enter with nothing typed sends nothing.
    tmux.keys(&["Enter"]);
    tmux.wait_for("comments asked for", |s| {
        s.contains("a rejection needs comments")
    });
    tmux.keys(&["-l", "say why it is meh"]);
    tmux.wait_for("the comments echoed", |s| s.contains("say why it is meh"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the CLI's answer to reject", |s| {
        s.contains("git orch task reject meh -m say why it is meh --plan rv")
    });
    // The line shows as the action starts; its state commit follows.
    let start = Instant::now();
    loop {
        let history = repo.git(&["log", "--format=%s", "refs/heads/orch/rv/state"]);
        if history.contains("task meh: rejected in review (say why it is meh)") {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "never rejected: {history}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_ne!(task_state(&status_json(&repo), "meh"), "done");
    assert!(
        repo.show("orch/rv/work:meh.txt").is_none(),
        "a rejected task does not land"
    );
    tmux.keys(&["q"]);
}

/// A running task whose runner was killed with -9 reads `stale` in the
/// view, with the command that recovers it (the status's `runner` and
/// `recover`, not a judgement of the view's own).
#[test]
fn a_task_whose_runner_was_killed_reads_stale_with_its_recover_command() {
    let repo = TestRepo::new();
    let go = waiting_plan(&repo);
    let mut run = run_until_slow_runs(&repo);
    run.kill().expect("kill -9 the runner");
    let _ = run.wait();
    let start = Instant::now();
    while task_of(&status_json(&repo), "slow")["runner"] != "gone" {
        assert!(start.elapsed() < DEADLINE, "the runner never looked gone");
        std::thread::sleep(Duration::from_millis(100));
    }
    let tmux = Tmux::start(&repo, &repo.path, &[("NO_COLOR", "1")]);
    tmux.type_line("git orch watch");
    let s = tmux.wait_for("slow stale", |s| row(s, "slow").contains("stale"));
    assert!(s.contains("git orch resume w"), "the recover command: {s}");
    tmux.keys(&["q"]);
    std::fs::write(&go, "").expect("release slow");
}

fn task_of<'a>(st: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    st["tasks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["id"] == id))
        .expect("the task in status")
}

/// A watch opened while the runner is alive notices, within a couple of
/// seconds and with no change to the state branch, that it was killed with
/// -9: the task turns `stale` with its recover command, its clock stops
/// (issue 23).
#[test]
fn an_open_watch_notices_a_runner_killed_with_9_without_a_state_change() {
    let repo = TestRepo::new();
    let go = waiting_plan(&repo);
    let mut run = run_until_slow_runs(&repo);
    wait_until_done(&repo, "quick");
    let tmux = Tmux::start(&repo, &repo.path, &[("NO_COLOR", "1")]);
    tmux.type_line("git orch watch");
    tmux.wait_for("slow running", |s| row(s, "slow").contains("running"));
    let state = repo.rev("orch/w/state");
    run.kill().expect("kill -9 the runner");
    let _ = run.wait();
    let killed = Instant::now();
    let s = tmux.wait_for("slow stale", |s| row(s, "slow").contains("stale"));
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(10), "noticed after {took:?}");
    assert!(s.contains("git orch resume w"), "the recover command: {s}");
    assert_eq!(repo.rev("orch/w/state"), state, "the state branch moved");
    // The clock stopped: the row shows no running time any more.
    let shown = row(&s, "slow").to_string();
    std::thread::sleep(Duration::from_millis(1500));
    let later = tmux.screen(false);
    assert_eq!(row(&later, "slow"), shown, "the clock goes on:\n{later}");
    tmux.keys(&["q"]);
    std::fs::write(&go, "").expect("release slow");
}

/// `git orch demo --step` on a terminal waits for Enter before each step,
/// so its advice to open `git orch watch` in a second terminal can be
/// followed (issue 23).
#[test]
fn the_demo_with_step_waits_for_enter_between_steps_on_a_terminal() {
    let repo = TestRepo::new();
    let dir = repo.scratch().join("demo");
    let tmux = Tmux::start(&repo, &repo.path, &[("NO_COLOR", "1")]);
    tmux.type_line(&format!(
        "git orch demo --step --dir {}; echo demo-exit-$?",
        dir.display()
    ));
    tmux.wait_for("the first pause", |s| s.contains("(Enter: next step)"));
    std::thread::sleep(Duration::from_millis(1500));
    let s = tmux.screen(false);
    assert!(
        !s.contains("Phase 1 by hand"),
        "it went on without Enter:\n{s}"
    );
    tmux.keys(&["Enter"]);
    tmux.wait_for("the second step", |s| s.contains("── Phase 1 by hand"));
    let start = Instant::now();
    loop {
        let s = tmux.screen(false);
        let exit = s.lines().find(|l| l.starts_with("demo-exit-"));
        if let Some(exit) = exit {
            assert_eq!(exit.trim_end(), "demo-exit-0", "{s}");
            break;
        }
        assert!(start.elapsed() < DEADLINE, "the demo never ended:\n{s}");
        if s.trim_end().ends_with("(Enter: next step)") {
            tmux.keys(&["Enter"]);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
