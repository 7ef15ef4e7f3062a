//! `git orch demo`: a throwaway repository and a built-in plan carried
//! through every step a user would take, each shown as the command typed.
//! It runs this very binary as a child process, so what it prints is
//! exactly what those commands print.

use std::cell::Cell;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};

use crate::cli::DemoArgs;
use crate::ui;

const PLAN: &str = r##"name  = "demo"
title = "A tiny shell calculator, built in two phases"

[defaults]
parallel = 3

[agents.fixer]            # fixes forward when phase 2's gates fail (on_gate_failure)
role = "bug fixer"
run  = '''
[ -n "$DEMO_FIXER" ] || { echo "fixer: off in this run (DEMO_FIXER is not set)"; exit 1; }
for f in lib/*.sh; do
  head -1 "$f" | grep -q '^# ' && continue
  { echo "# $(basename "$f" .sh)"; cat "$f"; } > "$f.new" && mv "$f.new" "$f"
  echo "fixer: gave $f a header comment"
done
'''

[[gates]]                 # every checkpoint and every push of orch/demo/work
name = "tests"
run  = "sh test.sh"

[[phases]]
id    = "setup"
title = "Add and multiply, written by hand"

  [[phases.tasks]]
  id       = "add"
  title    = "add()"
  prompt   = "Write lib/add.sh defining add() that prints the sum of its two arguments."
  files    = ["lib/add.sh"]
  estimate = "5m"

  [[phases.tasks]]
  id       = "mul"
  title    = "mul()"
  prompt   = "Write lib/mul.sh defining mul()."
  files    = ["lib/mul.sh"]
  estimate = "5m"

[[phases]]
id    = "more"
title = "More operations, run by agents in parallel"

  [[phases.gates]]        # this phase's own gate
  name = "headers"
  run  = "for f in lib/*.sh; do head -1 $f | grep -q '^# ' || { echo \"$f has no header comment\"; exit 1; }; done"

  [phases.on_gate_failure] # a failing gate: a fix task by the fixer, then the gates again
  agent    = "fixer"
  attempts = 1

  [[phases.tasks]]
  id     = "sub"
  title  = "sub()"
  files  = ["lib/sub.sh"]
  run    = "sleep 1; printf '# subtraction\nsub() { echo $(($1 - $2)); }\n' > lib/sub.sh; echo wrote lib/sub.sh"

  [[phases.tasks]]
  id     = "div"
  title  = "div()"
  files  = ["lib/div.sh"]
  run    = "sleep 1; if [ -n \"$DEMO_BUG\" ]; then printf 'div() { echo $(($1 / $2)); }\n'; else printf '# division\ndiv() { echo $(($1 / $2)); }\n'; fi > lib/div.sh; echo wrote lib/div.sh"

  [[phases.tasks]]
  id         = "docs"
  title      = "Document the operations"
  files      = ["docs/**"]
  depends_on = ["sub", "div"]
  run        = "mkdir -p docs && ls lib > docs/OPERATIONS && echo 'sub and div are documented' > \"$ORCH_HANDOFF_FILE\""
"##;

const TEST_SH: &str = r#"# The project's tests: every operation in lib/ must compute right.
set -e
for f in lib/*.sh; do . "./$f"; done
check() { [ "$("$1" "$2" "$3")" = "$4" ] || { echo "FAIL: $1 $2 $3 != $4"; exit 1; }; }
type add >/dev/null 2>&1 && check add 2 3 5
type mul >/dev/null 2>&1 && check mul 4 5 20
type sub >/dev/null 2>&1 && check sub 9 4 5
type div >/dev/null 2>&1 && check div 8 2 4
echo "all tests passed"
"#;

struct Demo {
    exe: PathBuf,
    repo: PathBuf,
    /// Wait for Enter before each step after the first (until stdin ends).
    step_by_step: Cell<bool>,
    /// A pause before each step after the first.
    pace: Duration,
    /// Whether a step has been shown yet.
    begun: Cell<bool>,
}

/// `arg` as a POSIX shell reads it back: as it is when it is made of
/// characters no shell treats specially, else in single quotes (a `'`
/// inside as `'\''`), so a command the demo shows can be copied and run.
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// A command line with every word quoted as [`shell_quote`] does.
fn shell_line(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Demo {
    fn step(&self, title: &str) {
        if self.begun.replace(true) {
            if self.step_by_step.get() {
                ui::note(&ui::dim("(Enter: next step)"));
                let mut line = String::new();
                // End of input (Ctrl-D) goes on without waiting again.
                if std::io::stdin().read_line(&mut line).unwrap_or(0) == 0 {
                    self.step_by_step.set(false);
                }
            }
            if !self.pace.is_zero() {
                std::thread::sleep(self.pace);
            }
        }
        ui::note("");
        ui::note(&ui::bold(&format!("── {title}")));
    }

    fn say(&self, text: &str) {
        ui::note(&ui::dim(&format!("# {text}")));
    }

    /// Shows and runs `git orch ARGS`; returns (exit code, stdout). Output
    /// goes straight to the terminal except for `task start`, whose path
    /// the demo needs.
    fn orch(&self, args: &[&str], env: &[(&str, &str)]) -> Result<(i32, String)> {
        let capture = args.first() == Some(&"task");
        let shown_env: String = env
            .iter()
            .map(|(k, v)| format!("{k}={} ", shell_quote(v)))
            .collect();
        ui::note(&format!(
            "{} {shown_env}git orch {}",
            ui::green("$"),
            shell_line(args)
        ));
        let mut cmd = Command::new(&self.exe);
        cmd.args(args)
            .current_dir(&self.repo)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit());
        cmd.stdout(if capture {
            Stdio::piped()
        } else {
            Stdio::inherit()
        });
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().context("cannot run git-orch")?;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        print!("{stdout}");
        Ok((out.status.code().unwrap_or(-1), stdout))
    }

    fn expect(&self, args: &[&str], env: &[(&str, &str)], code: i32) -> Result<String> {
        let (got, stdout) = self.orch(args, env)?;
        if got != code {
            return Err(anyhow!(
                "demo: `git orch {}` exited {got}, expected {code}",
                args.join(" ")
            ));
        }
        if code != 0 {
            self.say(&format!("(exit code {got}, as expected)"));
        }
        Ok(stdout)
    }

    fn git(&self, args: &[&str], show: bool) -> Result<String> {
        if show {
            ui::note(&format!("{} git {}", ui::green("$"), shell_line(args)));
        }
        let out = Command::new("git")
            .args(args)
            .current_dir(&self.repo)
            .stdin(Stdio::null())
            .output()
            .context("cannot run git")?;
        if !out.status.success() {
            return Err(anyhow!(
                "demo: `git {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if show {
            print!("{text}");
        }
        Ok(text)
    }

    fn write(&self, dir: &Path, rel: &str, text: &str) -> Result<()> {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write `{}`", path.display()))
    }
}

pub fn run(args: DemoArgs) -> Result<u8> {
    let mut tmp = None;
    let root = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
            if std::fs::read_dir(dir)?.next().is_some() {
                return Err(crate::error::refuse(format!(
                    "`{}` is not empty; the demo needs an empty directory",
                    dir.display()
                )));
            }
            dir.canonicalize()?
        }
        None => {
            let dir = tempfile::Builder::new()
                .prefix("git-orch-demo-")
                .tempdir()?;
            let path = dir.path().canonicalize()?;
            tmp = Some(dir);
            path
        }
    };
    // Waiting for Enter needs a person at a terminal: without one (a pipe,
    // CI, the tests) the demo runs straight through.
    let step_by_step = args.step && std::io::stdin().is_terminal();
    if args.step && !step_by_step {
        ui::note("stdin is not a terminal: `--step` does not wait for Enter");
    }
    let demo = Demo {
        exe: std::env::current_exe().context("cannot find the git-orch executable")?,
        repo: root.join("calculator"),
        step_by_step: Cell::new(step_by_step),
        pace: Duration::from_secs_f64(args.pace.unwrap_or(0.0)),
        begun: Cell::new(false),
    };
    let result = script(&demo, &root);
    if args.keep || args.dir.is_some() {
        if let Some(dir) = tmp.take() {
            let _ = dir.keep();
        }
        ui::note(&format!(
            "\nthe demo repository is kept at {}",
            demo.repo.display()
        ));
    }
    result?;
    Ok(0)
}

fn script(demo: &Demo, root: &Path) -> Result<()> {
    std::fs::create_dir_all(&demo.repo)?;
    demo.step("A repository with tests, and a plan");
    demo.git(&["init", "-q", "-b", "main"], true)?;
    demo.git(&["config", "user.name", "Demo User"], false)?;
    demo.git(&["config", "user.email", "demo@example.com"], false)?;
    demo.write(&demo.repo, "test.sh", TEST_SH)?;
    demo.write(&demo.repo, "README", "A tiny calculator.\n")?;
    demo.git(&["add", "-A"], false)?;
    demo.git(
        &["commit", "-q", "-m", "Initial commit: README and tests"],
        true,
    )?;
    let plan_file = root.join("calculator.toml");
    std::fs::write(&plan_file, PLAN)?;
    demo.say(&format!(
        "the plan is in {} (two phases, gates, five tasks)",
        shell_quote(&plan_file.display().to_string())
    ));
    let plan_arg = plan_file.display().to_string();
    demo.expect(&["check", &plan_arg], &[], 0)?;
    demo.expect(&["start", &plan_arg], &[], 0)?;
    let slow = if demo.step_by_step.get() || !demo.pace.is_zero() {
        ""
    } else {
        " (`git orch demo --step` waits for Enter between steps, `--pace 5` pauses 5 s)"
    };
    demo.say(&format!(
        "to see it live, run `git orch watch` in a second terminal: cd {} && git orch watch{slow}",
        shell_quote(&demo.repo.display().to_string())
    ));
    demo.expect(&["status"], &[], 0)?;

    demo.step("Phase 1 by hand: each task in its own worktree");
    for (id, body) in [
        ("add", "# addition\nadd() { echo $(($1 + $2)); }\n"),
        ("mul", "# multiplication\nmul() { echo $(($1 * $2)); }\n"),
    ] {
        let path = demo.expect(&["task", "start", id], &[], 0)?;
        let worktree = PathBuf::from(path.trim());
        demo.say(&format!(
            "(you, or an agent, write lib/{id}.sh in that worktree)"
        ));
        demo.write(&worktree, &format!("lib/{id}.sh"), body)?;
        demo.expect(&["task", "done", id, "-m", &format!("Add {id}()")], &[], 0)?;
    }
    demo.step("Checkpoint: the gates run in a clean checkout, then the phase is tagged");
    demo.expect(&["checkpoint"], &[], 0)?;

    demo.step("Phase 2 automatically: three tasks, two at once, one with a bug");
    demo.say("DEMO_BUG makes the div task forget its header comment: the phase gate will catch it; the fixer agent is off in this run, so its fix-forward attempt fails and the run stops");
    demo.expect(&["run", "-j", "3"], &[("DEMO_BUG", "1")], 1)?;
    demo.expect(&["status"], &[], 0)?;

    demo.step("Roll back to the last checkpoint; what is discarded is kept in refs");
    demo.expect(&["rollback"], &[], 0)?;
    demo.git(
        &[
            "for-each-ref",
            "--format=%(refname)",
            "refs/orch/demo/preserved/",
        ],
        true,
    )?;
    demo.step("Changed your mind? Undo the rollback, exactly");
    demo.expect(&["rollback", "--undo"], &[], 0)?;
    demo.expect(&["rollback"], &[], 0)?;

    demo.step("Run phase 2 again, the bug still in, the fixer on: it fixes forward");
    demo.say("the gate fails; git-orch makes the fix task more.fix-1 on the work head, with the gate's output in its brief; the fixer agent fixes lib/div.sh, the fix lands, the gates pass, the phase checkpoints");
    demo.expect(
        &["run", "-j", "3"],
        &[("DEMO_BUG", "1"), ("DEMO_FIXER", "1")],
        0,
    )?;
    demo.expect(&["status"], &[], 0)?;

    demo.step("Everything is in git");
    demo.expect(&["log"], &[], 0)?;
    demo.git(&["log", "--oneline", "--graph", "orch/demo/work"], true)?;
    demo.git(&["tag", "-l", "orch/*", "-n1"], true)?;
    let note = format!("orch/demo/state:{}", crate::state::layout::handoff("docs"));
    demo.git(&["show", &note], true)?;
    demo.expect(&["finish"], &[], 0)?;
    demo.git(&["fsck", "--no-progress"], true)?;
    ui::note(&format!(
        "\n{} the plan went through 2 phases, 5 tasks, a failing gate, a rollback and its undo, and a fix-forward",
        ui::green("demo complete:")
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_leaves_plain_words_and_quotes_the_rest_so_sh_reads_them_back() {
        assert_eq!(shell_quote("run"), "run");
        assert_eq!(shell_quote("/tmp/x-1/plan.toml"), "/tmp/x-1/plan.toml");
        assert_eq!(shell_quote("Add add()"), "'Add add()'");
        assert_eq!(shell_quote("orch/*"), "'orch/*'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(
            shell_line(&["task", "done", "add", "-m", "Add add()"]),
            "task done add -m 'Add add()'"
        );
    }
}
