//! Help where users look for it: man pages (so `git orch --help`, which
//! git turns into `man git-orch`, works), shell completions, and colour
//! that follows `orch.color` and `NO_COLOR`.
use crate::common::*;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

fn have(program: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: `{program}` is not installed; that part of the test did not run"
        );
    }
    found
}

/// Man justifies text with extra spaces; compare words.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ------------------------------------------------------------- man pages

#[test]
fn man_prints_the_top_page_as_roff() {
    let repo = TestRepo::new();
    let page = repo.orch_ok(&["man"]);
    let th = page
        .lines()
        .take(5)
        .find(|l| l.starts_with(".TH "))
        .unwrap_or_else(|| panic!("no .TH header near the top:\n{page}"));
    assert!(th.starts_with(".TH git-orch 1 "), "{th}");
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH SUBCOMMANDS",
        ".SH EXAMPLES",
        ".SH SEE ALSO",
    ] {
        assert!(page.contains(section), "missing {section}");
    }
    assert!(
        page.contains("git\\-orch\\-report(1)"),
        "subcommands are listed as pages"
    );
    assert!(
        !page.contains("git\\-orch\\-help(1)"),
        "no page is listed that is not installed"
    );

    if have("man") {
        let file = repo.scratch().join("git-orch.1");
        std::fs::write(&file, &page).expect("write page");
        let out = repo
            .command("man", &repo.path)
            .args(["-l", "-P", "cat"])
            .arg(&file)
            .env("MANWIDTH", "100")
            .output()
            .expect("run man");
        let text = words(&stdout(&out));
        assert!(out.status.success(), "man -l failed: {}", stderr(&out));
        assert!(
            text.contains("NAME") && text.contains("git-orch - Carry a multi-phase plan"),
            "{text}"
        );
        assert!(text.contains("git orch run -j 3"), "{text}");
        assert!(
            !stderr(&out).contains("warning"),
            "roff warnings: {}",
            stderr(&out)
        );
    }
}

#[test]
fn man_install_writes_one_page_per_command() {
    let repo = TestRepo::new();
    let dir = repo.scratch().join("pages");
    let out = repo.orch(&["man", "--install", dir.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let man1 = dir.join("man1");
    assert_eq!(
        stdout(&out).trim(),
        man1.display().to_string(),
        "prints where"
    );
    for page in [
        "git-orch.1",
        "git-orch-run.1",
        "git-orch-report.1",
        "git-orch-graph.1",
        "git-orch-task.1",
        "git-orch-task-start.1",
        "git-orch-hook-install.1",
        "git-orch-completions.1",
        "git-orch-man.1",
    ] {
        let text = std::fs::read_to_string(man1.join(page))
            .unwrap_or_else(|e| panic!("{page} not installed: {e}"));
        let name = page.trim_end_matches(".1");
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!(".TH {name} 1"))),
            "{page} has no .TH {name}"
        );
    }
    let run = std::fs::read_to_string(man1.join("git-orch-run.1")).expect("run page");
    assert!(
        run.contains("\\fBgit orch run\\fR"),
        "the synopsis is how users type it"
    );
    assert!(run.contains("\\-\\-jobs"), "{run}");
    assert!(!man1.join("git-orch-help.1").exists());
    // Not on man's path: it says how to get there.
    assert!(stderr(&out).contains("MANPATH"), "{}", stderr(&out));
}

/// The README's install: the binary in `<prefix>/bin`, `git orch man
/// --install` with no DIR, and then `git orch --help` shows the page with
/// no MANPATH set, because man derives `<prefix>/share/man` from PATH.
#[test]
fn git_orch_help_finds_the_installed_page() {
    let repo = TestRepo::new();
    let prefix = repo.scratch().join("prefix");
    let bin = prefix.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    // A copy, not a symlink: the default is relative to the real executable.
    std::fs::copy(BIN, bin.join("git-orch")).expect("copy git-orch");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |program: &str, args: &[&str]| -> Output {
        repo.command(program, &repo.path)
            .args(args)
            .env("PATH", &path)
            .env_remove("MANPATH")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .env("GIT_PAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .expect("run")
    };
    let out = run("git-orch", &["man", "--install"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let man1 = prefix.join("share/man/man1");
    assert_eq!(Path::new(stdout(&out).trim()), man1.as_path());
    assert!(man1.join("git-orch.1").is_file());
    assert!(man1.join("git-orch-status.1").is_file());
    assert!(
        !stderr(&out).contains("MANPATH"),
        "no hint needed: {}",
        stderr(&out)
    );

    if have("man") {
        let out = run("git", &["orch", "--help"]);
        let text = words(&stdout(&out));
        assert!(
            out.status.success(),
            "git orch --help failed: {}",
            stderr(&out)
        );
        assert!(
            text.contains("git-orch - Carry a multi-phase plan"),
            "{text}"
        );
        assert!(text.contains("SUBCOMMANDS"), "{text}");
        let out = run("man", &["git-orch-report"]);
        assert!(stdout(&out).contains("--format"), "{}", stderr(&out));
    }
}

// ------------------------------------------------------------ completions

#[test]
fn completions_for_each_shell() {
    let repo = TestRepo::new();
    let bash = repo.orch_ok(&["completions", "bash"]);
    assert!(
        bash.contains("complete -F _git__orch"),
        "completes git-orch"
    );
    assert!(
        bash.contains("_git_orch() {"),
        "and `git orch` through git's completion"
    );
    assert!(
        !bash.contains("git__subcmd__orch"),
        "clap-rs/clap#6421 worked around"
    );
    let zsh = repo.orch_ok(&["completions", "zsh"]);
    assert!(
        zsh.starts_with("#compdef git-orch"),
        "{}",
        &zsh[..80.min(zsh.len())]
    );
    assert!(
        zsh.contains("_git-orch"),
        "the name zsh's _git calls for `git orch`"
    );
    let fish = repo.orch_ok(&["completions", "fish"]);
    assert!(
        fish.contains("complete -c git-orch"),
        "fish delegates `git orch` to git-orch"
    );
    for script in [&bash, &zsh, &fish] {
        for sub in ["report", "graph", "completions", "rollback"] {
            assert!(script.contains(sub), "{sub} missing");
        }
    }
    assert_refused(&repo.orch(&["completions", "tcsh"]), "unknown shell");
}

/// Sources the bash script and asks it what `git orch …<TAB>` offers.
#[test]
fn bash_completes_git_orch_words() {
    let repo = TestRepo::new();
    if !have("bash") {
        return;
    }
    let script = repo.scratch().join("git-orch.bash");
    std::fs::write(&script, repo.orch_ok(&["completions", "bash"])).expect("write script");
    let complete = |words: &[&str]| -> String {
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let program = format!(
            "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; _git_orch; echo \"${{COMPREPLY[*]}}\"",
            script.display(),
            quoted.join(" "),
            words.len() - 1
        );
        let out = repo
            .command("bash", &repo.path)
            .args(["-c", &program])
            .output()
            .expect("bash");
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_string()
    };
    assert_eq!(complete(&["git", "orch", "gr"]), "graph");
    assert_eq!(complete(&["git", "orch", "report", "--f"]), "--format");
    assert_eq!(
        complete(&["git", "orch", "report", "--format", ""]),
        "md json html"
    );
    assert_eq!(complete(&["git", "-C", "x", "orch", "task", "sk"]), "skip");
    assert_eq!(complete(&["git", "orch", "completions", "z"]), "zsh");
}

// ----------------------------------------------------------------- colour

/// `check`'s "plan is valid" line is green when colour is on.
fn check_colour(repo: &TestRepo, no_color: Option<&str>, git_c: Option<&str>) -> bool {
    let plan = repo.plan(
        "plan.toml",
        "name = \"c\"\n[[gates]]\nname = \"u\"\nrun = \"true\"\n[[phases]]\nid = \"p\"\n  [[phases.tasks]]\n  id = \"t\"\n  files = [\"t\"]\n",
    );
    let mut cmd = repo.command("git", &repo.path);
    cmd.env_remove("NO_COLOR");
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    if let Some(c) = git_c {
        cmd.args(["-c", c]);
    }
    let out = cmd
        .args(["orch", "check"])
        .arg(&plan)
        .output()
        .expect("git orch check");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("plan is valid"), "{err}");
    assert!(!stdout(&out).contains('\x1b'));
    err.contains("\x1b[32mplan is valid\x1b[0m")
}

#[test]
fn colour_follows_orch_color_and_no_color_wins() {
    let repo = TestRepo::new();
    // auto (unset) on a pipe: no colour.
    assert!(!check_colour(&repo, None, None));
    assert!(!check_colour(&repo, None, Some("orch.color=auto")));
    // `git -c` and the repository's config.
    assert!(check_colour(&repo, None, Some("orch.color=always")));
    repo.git(&["config", "orch.color", "always"]);
    assert!(check_colour(&repo, None, None));
    assert!(
        !check_colour(&repo, None, Some("orch.color=never")),
        "`-c` beats the file"
    );
    // NO_COLOR beats everything; an empty NO_COLOR does not count.
    assert!(!check_colour(&repo, Some("1"), None));
    assert!(!check_colour(&repo, Some("1"), Some("orch.color=always")));
    assert!(check_colour(&repo, Some(""), None));
    // The global config counts too.
    repo.git(&["config", "--unset", "orch.color"]);
    repo.git(&["config", "--global", "orch.color", "always"]);
    assert!(check_colour(&repo, None, None));
    repo.git(&["config", "orch.color", "never"]);
    assert!(
        !check_colour(&repo, None, None),
        "the repository beats the global file"
    );
}
