//! Issue 23: the pre-push gate next to the hook managers people already use,
//! with the real `pre-commit`, `lefthook` and `husky` (versions in
//! `tests/tools.versions`, installed by `.ci/run`), in every install order:
//! git-orch first, the manager first, and the manager installing again after
//! its config changed. In each state a failing gate must block `git push` to
//! a bare remote, a passing one must let it through, and `hook status` must
//! say truthfully whether the gate runs: every check pushes a failing gate
//! and compares what happened with what status said.
use crate::common::*;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// ---------------------------------------------------------------- helpers

/// The real binary of `tool`, or `None` after a loud SKIP line. A pyenv (or
/// similar) shim needs the user's environment, which the hermetic commands
/// clear, so the file it stands for is used instead.
fn tool(test: &str, name: &str) -> Option<PathBuf> {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let Some(path) = found else {
        // Straight to the stderr stream: the test harness swallows eprintln!
        // of a passing test, and a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "SKIP {test}: {name} is not installed (.ci/run installs it)"
        );
        return None;
    };
    let shim = std::fs::read(&path).is_ok_and(|t| t.windows(5).any(|w| w == b"pyenv"));
    if shim {
        let real = Command::new("pyenv")
            .args(["which", name])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        if let Some(real) = real {
            return Some(real);
        }
    }
    Some(path)
}

/// A repository with a bare remote `origin`, and plan `p` whose gate fails
/// while `flag` exists and records each passing run in `marker`.
struct Setup {
    repo: TestRepo,
    bare: PathBuf,
    flag: PathBuf,
    marker: PathBuf,
    n: usize,
}

impl Setup {
    fn new() -> Setup {
        let repo = TestRepo::new();
        let bare = repo.scratch().join("remote.git");
        repo.git_in(
            &repo.scratch(),
            &["init", "-q", "--bare", &bare.to_string_lossy()],
        );
        repo.git(&["remote", "add", "origin", &bare.to_string_lossy()]);
        // `main` tracks its remote branch and is up to date, as a user's
        // checkout usually is: then lefthook finds no files to push.
        repo.git(&["push", "-q", "--no-verify", "-u", "origin", "main"]);
        let flag = repo.scratch().join("gate-fails");
        let marker = repo.scratch().join("gate-ran");
        let plan = format!(
            "name = \"p\"\n\n[[gates]]\nname = \"unit\"\nrun = '''if [ -e '{}' ]; then echo the-gate-failed; exit 1; fi; echo \"ran ${{PRE_COMMIT_RUNNING_LEGACY:-}}\" >> '{}' '''\n\n[[phases]]\nid = \"one\"\n\n  [[phases.tasks]]\n  id = \"t\"\n  files = [\"**\"]\n",
            flag.display(),
            marker.display()
        );
        let file = repo.plan("p.toml", &plan);
        repo.orch_ok(&["start", &file.to_string_lossy()]);
        repo.git(&["push", "-q", "--no-verify", "origin", "orch/p/work"]);
        Setup {
            repo,
            bare,
            flag,
            marker,
            n: 0,
        }
    }

    fn hooks(&self) -> PathBuf {
        self.repo.path.join(".git/hooks")
    }

    fn run(&self, program: &Path, args: &[&str]) -> Output {
        self.repo
            .command(&program.to_string_lossy(), &self.repo.path)
            .args(args)
            .output()
            .expect("run tool")
    }

    fn run_ok(&self, program: &Path, args: &[&str]) -> String {
        let out = self.run(program, args);
        assert_eq!(
            code(&out),
            Some(0),
            "{} {args:?}: {}",
            program.display(),
            both(&out)
        );
        both(&out)
    }

    /// A new commit on `orch/p/work`, made with `main` checked out again
    /// after: the push names a branch that is not HEAD, as git-orch's do.
    fn advance(&mut self) -> String {
        self.n += 1;
        let repo = &self.repo;
        repo.git(&["checkout", "-q", "orch/p/work"]);
        let file = format!("f{}.txt", self.n);
        repo.write(&file, &format!("{}\n", self.n));
        repo.git(&["add", "--", &file]);
        repo.git(&["commit", "-q", "--no-verify", "-m", &format!("edit {file}")]);
        let c = repo.rev("HEAD").expect("HEAD");
        repo.git(&["checkout", "-q", "main"]);
        c
    }

    fn push(&self) -> Output {
        self.repo
            .command("git", &self.repo.path)
            .args(["push", "origin", "orch/p/work"])
            .output()
            .expect("git push")
    }

    fn remote_work(&self) -> Option<String> {
        let out = self
            .repo
            .command("git", &self.bare)
            .args(["rev-parse", "--verify", "-q", "refs/heads/orch/p/work"])
            .output()
            .expect("rev-parse");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn gate_runs(&self) -> usize {
        std::fs::read_to_string(&self.marker).map_or(0, |s| s.lines().count())
    }

    fn status(&self) -> (bool, String) {
        let json = self.repo.orch_json(&["hook", "status", "--json"]);
        let text = self.repo.orch_ok(&["hook", "status"]);
        let would_run = json["would_run"].as_bool().expect("would_run");
        assert_eq!(
            text.contains("would run: yes"),
            would_run,
            "text and json disagree: {text} {json}"
        );
        (would_run, format!("{text}{json}"))
    }

    /// Pushes a new commit with a failing gate and checks `hook status` said
    /// what happened: "would run: yes" exactly when the push was blocked.
    /// Returns whether it was blocked.
    fn status_is_true(&mut self, context: &str) -> bool {
        let (would_run, said) = self.status();
        std::fs::write(&self.flag, "").expect("flag");
        let before = self.remote_work();
        let c = self.advance();
        let out = self.push();
        let blocked = code(&out) != Some(0);
        assert_eq!(
            blocked, would_run,
            "{context}: hook status said would_run={would_run}, but the push was {}\nstatus: {said}\npush: {}",
            if blocked { "blocked" } else { "let through" },
            both(&out)
        );
        if blocked {
            assert_eq!(self.remote_work(), before, "{context}: the remote moved");
            assert!(
                both(&out).contains("`unit`") && both(&out).contains("error:"),
                "{context}: the push says which gate failed: {}",
                both(&out)
            );
        } else {
            assert_eq!(self.remote_work().as_deref(), Some(c.as_str()), "{context}");
        }
        blocked
    }

    /// The gate runs on push: a failing gate blocks it, a passing one lets
    /// it through, and status says yes.
    fn gate_holds(&mut self, context: &str) {
        assert!(
            self.status_is_true(context),
            "{context}: the failing gate did not block the push"
        );
        std::fs::remove_file(&self.flag).expect("unflag");
        let runs = self.gate_runs();
        let out = self.push();
        assert_eq!(code(&out), Some(0), "{context}: {}", both(&out));
        assert_eq!(
            self.gate_runs(),
            runs + 1,
            "{context}: the gate did not run"
        );
        // pre-commit marks the hook it runs first; the gate must not inherit
        // that, or pre-commit's hooks in the gate's own git commands fail.
        let seen = std::fs::read_to_string(&self.marker).expect("marker");
        assert!(
            seen.lines().all(|l| l == "ran "),
            "{context}: the gate saw PRE_COMMIT_RUNNING_LEGACY: {seen}"
        );
        assert_eq!(
            self.remote_work(),
            self.repo.rev("orch/p/work"),
            "{context}: the passing push did not land"
        );
    }

    fn install(&self) -> Output {
        self.repo.orch(&["hook", "install"])
    }
}

fn write_exec(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

// ------------------------------------------------------------- pre-commit

/// `.pre-commit-config.yaml` with a local pre-push hook that records its
/// runs (so pre-commit's own hooks are seen to keep running).
fn pre_commit_config(s: &Setup, extra: &str) -> PathBuf {
    let ran = s.repo.scratch().join("pre-commit-ran");
    s.repo.write(
        ".pre-commit-config.yaml",
        &format!(
            "repos:\n- repo: local\n  hooks:\n  - id: mark\n    name: mark\n    entry: sh -c 'echo ran >> {}'\n    language: system\n    stages: [pre-push]\n    pass_filenames: false\n    always_run: true\n{extra}",
            ran.display()
        ),
    );
    // Committed on main, so checking out the work branch and back (see
    // `advance`) leaves it in place.
    s.repo.git(&["add", ".pre-commit-config.yaml"]);
    s.repo
        .git(&["commit", "-q", "--no-verify", "-m", "pre-commit config"]);
    ran
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

#[test]
fn git_orch_then_pre_commit_both_run_and_status_says_installed() {
    let Some(pc) = tool("git_orch_then_pre_commit", "pre-commit") else {
        return;
    };
    let mut s = Setup::new();
    let ran = pre_commit_config(&s, "");
    let out = s.install();
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    s.gate_holds("git-orch alone");
    s.run_ok(&pc, &["install", "-t", "pre-push"]);
    assert!(s.hooks().join("pre-push.legacy").is_file());
    let (would_run, said) = s.status();
    assert!(would_run && said.contains("installed: yes"), "{said}");
    assert!(said.contains("manager:   pre-commit"), "{said}");
    let before = lines(&ran);
    s.gate_holds("pre-commit installed over git-orch");
    assert!(
        lines(&ran) > before,
        "pre-commit's own hook stopped running"
    );

    // What status used to tell the user to do: it must change nothing
    // that breaks the push (it made every push fail).
    let out = s.install();
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(both(&out).contains("already installed"), "{}", both(&out));
    s.gate_holds("git orch hook install again");

    // pre-commit reinstalled after its config changed keeps the gate.
    pre_commit_config(&s, "  - id: mark2\n    name: mark2\n    entry: 'true'\n    language: system\n    stages: [pre-push]\n    pass_filenames: false\n");
    s.run_ok(&pc, &["install", "-t", "pre-push"]);
    s.gate_holds("pre-commit reinstalled");
}

#[test]
fn pre_commit_then_git_orch_goes_behind_it_where_pre_commit_keeps_it() {
    let Some(pc) = tool("pre_commit_then_git_orch", "pre-commit") else {
        return;
    };
    let mut s = Setup::new();
    let ran = pre_commit_config(&s, "");
    // The user's own hook, which pre-commit keeps as pre-push.legacy.
    let own = s.repo.scratch().join("own-hook-ran");
    let own_hook = format!(
        "#!/bin/sh\n# the user's own\necho ran >> '{}'\n",
        own.display()
    );
    write_exec(&s.hooks().join("pre-push"), &own_hook);
    s.run_ok(&pc, &["install", "-t", "pre-push"]);
    assert!(!s.status_is_true("pre-commit alone"));
    let text = both(&s.repo.orch(&["hook", "status"]));
    assert!(text.contains("git orch hook install"), "{text}");

    let out = s.install();
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(both(&out).contains("pre-commit"), "{}", both(&out));
    let legacy = s.hooks().join("pre-push.legacy");
    assert!(
        std::fs::read_to_string(&legacy)
            .expect("legacy")
            .contains("# git-orch pre-push hook"),
        "the shim is pre-commit's legacy hook"
    );
    let (own_before, pc_before) = (lines(&own), lines(&ran));
    s.gate_holds("git-orch behind pre-commit");
    assert!(
        lines(&own) > own_before,
        "the user's own hook stopped running"
    );
    assert!(
        lines(&ran) > pc_before,
        "pre-commit's own hook stopped running"
    );

    // pre-commit reinstalled after a config change keeps pre-push.legacy.
    pre_commit_config(&s, "  - id: mark2\n    name: mark2\n    entry: 'true'\n    language: system\n    stages: [pre-push]\n    pass_filenames: false\n");
    s.run_ok(&pc, &["install", "-t", "pre-push"]);
    s.gate_holds("pre-commit reinstalled");

    // `pre-commit install -f` drops its legacy hook: status says so.
    s.run_ok(&pc, &["install", "-f", "-t", "pre-push"]);
    assert!(!s.status_is_true("pre-commit install -f"));
    s.install();
    s.gate_holds("installed again after -f");

    // Uninstalled, pre-commit and the user's hook are as they were.
    s.repo.orch_ok(&["hook", "uninstall"]);
    assert_eq!(
        std::fs::read_to_string(&legacy).expect("legacy back"),
        own_hook,
        "the user's hook is pre-commit's legacy hook again"
    );
    assert!(!s.status_is_true("git-orch uninstalled"));
    s.run_ok(&pc, &["uninstall", "-t", "pre-push"]);
    assert_eq!(
        std::fs::read_to_string(s.hooks().join("pre-push")).expect("hook"),
        own_hook
    );
}

#[test]
fn the_loop_an_older_install_made_with_pre_commit_is_reported_and_repaired() {
    let Some(pc) = tool("the_loop_with_pre_commit", "pre-commit") else {
        return;
    };
    let mut s = Setup::new();
    pre_commit_config(&s, "");
    s.install();
    s.run_ok(&pc, &["install", "-t", "pre-push"]);
    // What `git orch hook install` did before: pre-commit's hook chained
    // behind a second copy of the shim, which pre-commit runs as legacy.
    let hooks = s.hooks();
    std::fs::rename(hooks.join("pre-push"), hooks.join("pre-push.orch-chained")).expect("mv");
    std::fs::copy(hooks.join("pre-push.legacy"), hooks.join("pre-push")).expect("cp");
    let (would_run, said) = s.status();
    assert!(!would_run && said.contains("every push fails"), "{said}");
    // Every push fails, even with a passing gate, and the gate never runs.
    s.advance();
    let runs = s.gate_runs();
    let out = s.push();
    assert_ne!(code(&out), Some(0), "{}", both(&out));
    assert!(both(&out).contains("migration mode"), "{}", both(&out));
    assert_eq!(s.gate_runs(), runs);

    let out = s.install();
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        std::fs::read_to_string(hooks.join("pre-push"))
            .expect("hook")
            .contains("File generated by pre-commit"),
        "pre-commit is in front again"
    );
    assert!(!hooks.join("pre-push.orch-chained").exists());
    s.gate_holds("repaired");
    // `pre-commit uninstall` puts the shim back in front.
    s.run_ok(&pc, &["uninstall", "-t", "pre-push"]);
    s.gate_holds("pre-commit uninstalled");
}

// --------------------------------------------------------------- lefthook

/// `lefthook.yml` with a pre-push command of the user's own.
fn lefthook_config(s: &Setup, extra: &str) {
    s.repo.write(
        "lefthook.yml",
        &format!("pre-push:\n  commands:\n    own:\n      run: echo lefthook-own\n{extra}"),
    );
}

/// Adds what `git orch hook install` printed to lefthook's files: the part
/// for `lefthook.yml` under the user's own, the script file beside it.
fn apply_lefthook_snippet(s: &Setup, printed: &str) {
    let (yml, script) = printed
        .split_once("# .lefthook/pre-push/")
        .expect("the snippet names the script file");
    let (name, script) = script.split_once('\n').expect("script name line");
    let name = name.split_whitespace().next().expect("script name");
    let yml: String = yml
        .lines()
        .filter(|l| !l.starts_with('#') && *l != "pre-push:")
        .map(|l| format!("{l}\n"))
        .collect();
    let config = std::fs::read_to_string(s.repo.path.join("lefthook.yml")).expect("config");
    s.repo.write("lefthook.yml", &format!("{config}{yml}"));
    s.repo.write(&format!(".lefthook/pre-push/{name}"), script);
}

/// `git orch hook install` where lefthook owns the hook: exit 2, nothing
/// written, the snippet on stdout.
fn install_refused(s: &Setup) -> String {
    let files = |s: &Setup| {
        let mut v: Vec<_> = std::fs::read_dir(s.hooks())
            .expect("hooks")
            .flatten()
            .map(|e| (e.file_name(), std::fs::read(e.path()).unwrap_or_default()))
            .collect();
        v.sort();
        v
    };
    let before = files(s);
    let out = s.install();
    assert_refused(&out, "install where lefthook owns pre-push");
    assert!(stderr(&out).contains("lefthook"), "{}", both(&out));
    assert_eq!(files(s), before, "the refusal changed the hooks");
    let printed = stdout(&out);
    assert!(printed.contains("use_stdin: true"), "{printed}");
    printed
}

#[test]
fn lefthook_then_git_orch_prints_lefthooks_config_and_it_holds() {
    let Some(lh) = tool("lefthook_then_git_orch", "lefthook") else {
        return;
    };
    let mut s = Setup::new();
    lefthook_config(&s, "");
    s.run_ok(&lh, &["install"]);
    assert!(!s.status_is_true("lefthook alone"));
    let printed = install_refused(&s);

    // As a pre-push *command*, lefthook skips it on this push (main is
    // checked out and has nothing to push): status must not call it on.
    let config = std::fs::read_to_string(s.repo.path.join("lefthook.yml")).expect("config");
    s.repo.write(
        "lefthook.yml",
        &format!("{config}    git-orch:\n      run: git orch gate --pre-push {{1}} {{2}}\n      use_stdin: true\n"),
    );
    assert!(!s.status_is_true("the gate as a lefthook command"));
    s.repo.write("lefthook.yml", &config);

    apply_lefthook_snippet(&s, &printed);
    let out = s.install();
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        stderr(&out).contains("already run through lefthook"),
        "{}",
        both(&out)
    );
    s.gate_holds("the gate as a lefthook script");

    // lefthook.yml changes: lefthook installs itself again on its next run.
    lefthook_config(&s, "    more:\n      run: echo more\n");
    apply_lefthook_snippet(&s, &printed);
    s.gate_holds("lefthook after its config changed");
    s.run_ok(&lh, &["install"]);
    s.gate_holds("lefthook reinstalled");
}

#[test]
fn git_orch_then_lefthook_which_sets_it_aside_is_reported_then_configured() {
    let Some(lh) = tool("git_orch_then_lefthook", "lefthook") else {
        return;
    };
    let mut s = Setup::new();
    let out = s.install();
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    s.gate_holds("git-orch alone");
    lefthook_config(&s, "");
    s.run_ok(&lh, &["install"]);
    assert!(s.hooks().join("pre-push.old").is_file());
    // lefthook never runs pre-push.old: a failing gate pushes through, and
    // status says it does not run.
    assert!(!s.status_is_true("lefthook installed over git-orch"));
    let (_, said) = s.status();
    assert!(said.contains("pre-push.old"), "{said}");
    let printed = install_refused(&s);
    apply_lefthook_snippet(&s, &printed);
    s.gate_holds("configured in lefthook");
}

#[test]
fn git_orch_forced_in_front_of_lefthook_is_set_aside_at_its_next_config_change() {
    let Some(lh) = tool("git_orch_forced_over_lefthook", "lefthook") else {
        return;
    };
    let mut s = Setup::new();
    lefthook_config(&s, "");
    s.run_ok(&lh, &["install"]);
    let out = s.repo.orch(&["hook", "install", "--force"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let (_, said) = s.status();
    assert!(said.contains("pre-push.old"), "status warns: {said}");
    s.gate_holds("forced in front of lefthook");
    // Any change to lefthook.yml: lefthook's next run installs its hook
    // again and moves git-orch's to pre-push.old. Status follows.
    lefthook_config(&s, "    more:\n      run: echo more\n");
    s.run_ok(&lh, &["install"]);
    assert!(!s.status_is_true("lefthook reinstalled over the forced hook"));
    let printed = install_refused(&s);
    apply_lefthook_snippet(&s, &printed);
    s.gate_holds("configured in lefthook");
}

#[test]
fn core_hooks_path_with_lefthook_yml_but_no_lefthook_installs_the_hook() {
    let mut s = Setup::new();
    s.repo.git(&["config", "core.hooksPath", ".githooks"]);
    lefthook_config(&s, "");
    let out = s.install();
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        s.repo.path.join(".githooks/pre-push").is_file(),
        "{}",
        both(&out)
    );
    assert!(stderr(&out).contains("warning:"), "{}", both(&out));
    s.gate_holds("lefthook.yml, lefthook not installed");

    // Once lefthook is installed into that directory, it sets the hook
    // aside; status follows.
    let Some(lh) = tool("core_hooks_path_with_lefthook_yml", "lefthook") else {
        return;
    };
    s.run_ok(&lh, &["install", "--force"]);
    assert!(s.repo.path.join(".githooks/pre-push.old").is_file());
    assert!(!s.status_is_true("lefthook installed into core.hooksPath"));
    let printed = install_refused_in(&s, ".githooks");
    apply_lefthook_snippet(&s, &printed);
    s.gate_holds("configured in lefthook");
}

/// [`install_refused`] for a `core.hooksPath` directory.
fn install_refused_in(s: &Setup, dir: &str) -> String {
    let before = std::fs::read_dir(s.repo.path.join(dir))
        .expect("dir")
        .count();
    let out = s.install();
    assert_refused(&out, "install where lefthook owns core.hooksPath");
    assert_eq!(
        std::fs::read_dir(s.repo.path.join(dir))
            .expect("dir")
            .count(),
        before
    );
    stdout(&out)
}

// ------------------------------------------------------------------ husky

#[test]
fn husky_then_git_orch_prints_the_line_for_its_pre_push_file_and_it_holds() {
    let Some(husky) = tool("husky_then_git_orch", "husky") else {
        return;
    };
    let mut s = Setup::new();
    // What `npm install` runs through husky's `prepare` script.
    s.run_ok(&husky, &[]);
    assert_eq!(s.repo.git(&["config", "core.hooksPath"]).trim(), ".husky/_");
    assert!(!s.status_is_true("husky alone"));
    let out = s.install();
    assert_refused(&out, "install where husky owns core.hooksPath");
    assert!(!s.repo.path.join(".husky/pre-push").exists());
    s.repo.write(".husky/pre-push", &stdout(&out));
    let out = s.install();
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        stderr(&out).contains("already run through husky"),
        "{}",
        both(&out)
    );
    s.gate_holds("the gate in .husky/pre-push");
    // husky installs again on every `npm install`.
    s.run_ok(&husky, &[]);
    s.gate_holds("husky reinstalled");
}

#[test]
fn git_orch_then_husky_in_its_own_directory_is_reported_then_configured() {
    let Some(husky) = tool("git_orch_then_husky", "husky") else {
        return;
    };
    let mut s = Setup::new();
    let out = s.install();
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    s.gate_holds("git-orch alone");
    // husky in a directory of the user's choosing: core.hooksPath moves
    // there, and git no longer runs .git/hooks/pre-push.
    s.run_ok(&husky, &[".config/husky"]);
    assert!(!s.status_is_true("husky installed after git-orch"));
    let out = s.install();
    assert_refused(&out, "install where husky owns core.hooksPath");
    assert!(stderr(&out).contains("husky"), "{}", both(&out));
    assert!(
        stdout(&out).starts_with("# .config/husky/pre-push\n"),
        "names husky's file: {}",
        both(&out)
    );
    s.repo.write(".config/husky/pre-push", &stdout(&out));
    s.gate_holds("the gate in .config/husky/pre-push");
}
