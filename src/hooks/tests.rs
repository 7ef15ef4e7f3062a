//! Real git repos, a real bare remote, a real `git push`, the real shim and a
//! fake `git-orch` first on PATH.

use super::managers::LEFTHOOK_SCRIPT;
use super::*;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

const FAKE_GIT_ORCH: &str = r#"#!/bin/sh
printf '%s\n' "$*" >>"$FAKE_LOG.args"
cat >>"$FAKE_LOG.stdin"
exit "${FAKE_STATUS:-0}"
"#;

/// A hook that records its args and stdin, then exits with $OLD_STATUS.
const OLD_HOOK: &str = "#!/bin/sh\n# the user's own hook\nprintf '%s\\n' \"$*\" >>\"$OLD_LOG.args\"\ncat >>\"$OLD_LOG.stdin\"\nexit \"${OLD_STATUS:-0}\"\n";

struct Sandbox {
    _dir: tempfile::TempDir,
    root: PathBuf,
    work: PathBuf,
    remote: PathBuf,
    path_var: String,
    extra_env: Vec<(String, String)>,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let bin = root.join("bin");
        fs::create_dir_all(&bin).expect("bin");
        fs::create_dir_all(root.join("home")).expect("home");
        write_exec(&bin.join("git-orch"), FAKE_GIT_ORCH, 0o755);
        let path_var = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let sb = Sandbox {
            work: root.join("work"),
            remote: root.join("remote.git"),
            root,
            _dir: dir,
            path_var,
            extra_env: Vec::new(),
        };
        sb.ok(&sb.root, &["init", "-q", "--bare", "remote.git"]);
        sb.ok(&sb.root, &["init", "-q", "-b", "main", "work"]);
        let remote = sb.remote.display().to_string();
        sb.ok(&sb.work, &["remote", "add", "origin", &remote]);
        sb.commit("first");
        sb
    }

    fn cmd(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("git");
        c.args(args).current_dir(cwd);
        for var in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_CONFIG",
            "GIT_CONFIG_GLOBAL",
            "GIT_CONFIG_PARAMETERS",
            "GIT_EXEC_PATH",
            "ORCH_SKIP_GATES",
            "FAKE_STATUS",
            "OLD_STATUS",
        ] {
            c.env_remove(var);
        }
        c.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.root.join("home"))
            .env("XDG_CONFIG_HOME", self.root.join("home"))
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .env("PATH", &self.path_var)
            .env("FAKE_LOG", self.root.join("fake"))
            .env("OLD_LOG", self.root.join("old"));
        for (k, v) in &self.extra_env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, cwd: &Path, args: &[&str]) -> Output {
        self.cmd(cwd, args).output().expect("run git")
    }

    fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        let out = self.run(cwd, args);
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn commit(&self, msg: &str) -> String {
        self.ok(&self.work, &["commit", "-q", "--allow-empty", "-m", msg]);
        self.ok(&self.work, &["rev-parse", "HEAD"])
    }

    fn push(&self, refs: &[&str]) -> Output {
        let mut args = vec!["push", "-q", "origin"];
        args.extend_from_slice(refs);
        self.run(&self.work, &args)
    }

    fn remote_rev(&self, r: &str) -> Option<String> {
        let out = self.run(&self.remote, &["rev-parse", "--verify", "-q", r]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// What the caller of `install` computes.
    fn env(&self) -> HookEnv {
        let hooks = self.ok(&self.work, &["rev-parse", "--git-path", "hooks"]);
        let hooks = PathBuf::from(hooks);
        let hooks_dir = if hooks.is_absolute() {
            hooks
        } else {
            self.work.join(hooks)
        };
        let out = self.run(&self.work, &["config", "core.hooksPath"]);
        let hooks_path_config = out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string());
        HookEnv {
            hooks_dir,
            hooks_path_config,
            worktree_root: self.work.clone(),
        }
    }

    fn log(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.root.join(name)).ok()
    }
}

fn write_exec(path: &Path, text: &str, mode: u32) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).expect("mkdir");
    }
    fs::write(path, text).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn shim_is_marked_and_posix() {
    assert!(PRE_PUSH_SHIM.starts_with("#!/bin/sh\n"));
    assert!(PRE_PUSH_SHIM.contains("# git-orch pre-push hook (managed by git orch hook install)"));
    assert!(PRE_PUSH_SHIM.contains(MARKER));
    let out = Command::new("sh")
        .args(["-n", "-c", PRE_PUSH_SHIM])
        .output()
        .expect("sh -n");
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn install_into_empty_dir_runs_gate_with_all_refs() {
    let sb = Sandbox::new();
    let env = sb.env();
    let hooks = env.hooks_dir.clone();
    fs::remove_dir_all(&hooks).expect("rm hooks dir");
    let outcome = install(&env, false).expect("install");
    assert_eq!(
        outcome,
        InstallOutcome::Installed {
            path: hooks.join("pre-push"),
            chained: None,
            behind: None,
            warning: None,
        }
    );
    assert_eq!(mode(&hooks.join("pre-push")), 0o755);
    assert_eq!(
        fs::read_to_string(hooks.join("pre-push")).expect("read"),
        PRE_PUSH_SHIM
    );

    sb.ok(&sb.work, &["branch", "feature"]);
    let head = sb.commit("second");
    let out = sb.push(&["main", "feature"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdin = sb.log("fake.stdin").expect("gate ran");
    let lines: Vec<&str> = stdin.lines().collect();
    assert_eq!(lines.len(), 2, "{stdin}");
    assert!(stdin.contains(&format!("refs/heads/main {head} refs/heads/main ")));
    assert!(stdin.contains("refs/heads/feature"));
    let args = sb.log("fake.args").expect("args");
    assert_eq!(
        args.trim(),
        format!("gate --pre-push origin {}", sb.remote.display())
    );
    assert_eq!(sb.remote_rev("main").as_deref(), Some(head.as_str()));
    // No temp files left behind.
    let leftovers: Vec<_> = fs::read_dir(&hooks)
        .expect("ls")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n != "pre-push")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn failing_existing_hook_runs_first_and_blocks() {
    let mut sb = Sandbox::new();
    let first = sb.ok(&sb.work, &["rev-parse", "HEAD"]);
    let out = sb.push(&["main"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let env = sb.env();
    let hook = env.hook_path();
    write_exec(&hook, OLD_HOOK, 0o755);
    let outcome = install(&env, false).expect("install");
    assert_eq!(
        outcome,
        InstallOutcome::Installed {
            path: hook.clone(),
            chained: Some(env.chained_path()),
            behind: None,
            warning: None,
        }
    );
    assert_eq!(
        fs::read_to_string(env.chained_path()).expect("chained"),
        OLD_HOOK
    );

    sb.ok(&sb.work, &["branch", "feature"]);
    sb.commit("second");
    sb.extra_env.push(("OLD_STATUS".into(), "1".into()));
    let out = sb.push(&["main", "feature"]);
    assert!(!out.status.success());
    let old_stdin = sb.log("old.stdin").expect("old hook ran");
    assert_eq!(old_stdin.lines().count(), 2, "{old_stdin}");
    assert_eq!(
        sb.log("old.args").expect("old args").trim(),
        format!("origin {}", sb.remote.display())
    );
    assert!(sb.log("fake.stdin").is_none(), "gate must not run");
    assert_eq!(sb.remote_rev("main").as_deref(), Some(first.as_str()));
    assert_eq!(sb.remote_rev("feature"), None);

    // Both pass: both run, push goes through.
    sb.extra_env.clear();
    let out = sb.push(&["main"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sb.log("old.stdin").expect("old").lines().count(), 3);
    assert_eq!(sb.log("fake.stdin").expect("gate").lines().count(), 1);
}

#[test]
fn install_twice_then_uninstall_restores_original() {
    let sb = Sandbox::new();
    let env = sb.env();
    let hook = env.hook_path();
    let original = b"#!/bin/sh\n# mine\r\nexit 0\n\xff\n";
    fs::write(&hook, original).expect("write");
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o750)).expect("chmod");

    assert!(matches!(
        install(&env, false).expect("install"),
        InstallOutcome::Installed {
            chained: Some(_),
            ..
        }
    ));
    let chained_mode = mode(&env.chained_path());
    assert_eq!(chained_mode, 0o750);
    let before = fs::read(&hook).expect("read");
    assert_eq!(
        install(&env, false).expect("again"),
        InstallOutcome::AlreadyInstalled {
            path: hook.clone(),
            behind: None
        }
    );
    assert_eq!(fs::read(&hook).expect("read"), before);
    assert_eq!(fs::read(env.chained_path()).expect("read"), original);

    let st = status(&env).expect("status");
    assert!(st.installed && st.executable && st.would_run);
    assert_eq!(st.chained, Some(env.chained_path()));
    assert_eq!(st.manager, None);

    assert_eq!(
        uninstall(&env).expect("uninstall"),
        UninstallOutcome::Removed {
            path: hook.clone(),
            restored: Some(env.chained_path())
        }
    );
    assert_eq!(fs::read(&hook).expect("read"), original);
    assert_eq!(mode(&hook), 0o750);
    assert!(!exists(&env.chained_path()));
    // Uninstalling a foreign hook refuses and changes nothing.
    let err = uninstall(&env).expect_err("foreign");
    assert!(
        format!("{err:#}").contains("is not the git-orch hook"),
        "{err:#}"
    );
    assert_eq!(fs::read(&hook).expect("read"), original);
    assert!(!status(&env).expect("status").would_run);
}

#[test]
fn outdated_shim_is_rewritten_and_plain_uninstall_removes() {
    let sb = Sandbox::new();
    let env = sb.env();
    let hook = env.hook_path();
    write_exec(
        &hook,
        "#!/bin/sh\n# git-orch pre-push hook (old)\nexit 0\n",
        0o755,
    );
    let st = status(&env).expect("status");
    assert!(st.installed);
    assert!(st.note.as_deref().unwrap_or("").contains("out of date"));
    assert_eq!(
        install(&env, false).expect("install"),
        InstallOutcome::Installed {
            path: hook.clone(),
            chained: None,
            behind: None,
            warning: None,
        }
    );
    assert_eq!(fs::read_to_string(&hook).expect("read"), PRE_PUSH_SHIM);
    assert_eq!(
        uninstall(&env).expect("uninstall"),
        UninstallOutcome::Removed {
            path: hook.clone(),
            restored: None
        }
    );
    assert!(!exists(&hook));
    assert_eq!(
        uninstall(&env).expect("again"),
        UninstallOutcome::NotInstalled
    );
}

#[test]
fn refuses_to_clobber_existing_chained_hook() {
    let sb = Sandbox::new();
    let env = sb.env();
    write_exec(&env.hook_path(), "#!/bin/sh\nexit 0\n", 0o755);
    write_exec(&env.chained_path(), "#!/bin/sh\nexit 1\n", 0o700);
    let err = install(&env, false).expect_err("must refuse");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("pre-push.orch-chained already exists"),
        "{msg}"
    );
    assert_eq!(
        fs::read_to_string(env.hook_path()).expect("r"),
        "#!/bin/sh\nexit 0\n"
    );
    assert_eq!(
        fs::read_to_string(env.chained_path()).expect("r"),
        "#!/bin/sh\nexit 1\n"
    );
    assert_eq!(mode(&env.chained_path()), 0o700);
}

#[test]
fn custom_hooks_path_installs_there_and_runs() {
    let sb = Sandbox::new();
    sb.ok(&sb.work, &["config", "core.hooksPath", ".githooks"]);
    let env = sb.env();
    assert_eq!(env.hooks_dir, sb.work.join(".githooks"));
    assert_eq!(env.hooks_path_config.as_deref(), Some(".githooks"));
    let outcome = install(&env, false).expect("install");
    assert_eq!(
        outcome,
        InstallOutcome::Installed {
            path: sb.work.join(".githooks/pre-push"),
            chained: None,
            behind: None,
            warning: None,
        }
    );
    let out = sb.push(&["main"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sb.log("fake.stdin").expect("gate ran").lines().count(), 1);
}

/// husky v9's layout: `core.hooksPath=.husky/_`, its hooks there run
/// `.husky/<hook>`.
fn husky_v9(sb: &Sandbox) {
    sb.ok(&sb.work, &["config", "core.hooksPath", ".husky/_"]);
    write_exec(
        &sb.work.join(".husky/_/h"),
        "#!/usr/bin/env sh\nsh -e \"$(dirname \"$(dirname \"$0\")\")/$(basename \"$0\")\" \"$@\"\n",
        0o755,
    );
    write_exec(
        &sb.work.join(".husky/_/pre-push"),
        "#!/usr/bin/env sh\n. \"$(dirname \"$0\")/h\"\n",
        0o755,
    );
}

#[test]
fn husky_hooks_path_is_managed_and_untouched() {
    let sb = Sandbox::new();
    husky_v9(&sb);
    let env = sb.env();
    match install(&env, false).expect("install") {
        InstallOutcome::ManagedBy { manager, snippet } => {
            assert_eq!(manager, Manager::Husky);
            assert_eq!(
                snippet,
                "# .husky/pre-push\ngit orch gate --pre-push \"$@\"\n"
            );
        }
        other => panic!("expected ManagedBy, got {other:?}"),
    }
    assert!(!sb.work.join(".husky/pre-push").exists(), "nothing written");
    let st = status(&env).expect("status");
    assert_eq!(st.manager, Some(Manager::Husky));
    assert!(!st.installed && !st.would_run);

    // Once husky's config calls the gate, status says it runs, and install
    // says so and writes nothing.
    write_exec(
        &sb.work.join(".husky/pre-push"),
        "git orch gate --pre-push \"$@\"\n",
        0o644,
    );
    let st = status(&env).expect("status");
    assert!(st.would_run, "{st:?}");
    assert!(matches!(
        install(&env, false).expect("install"),
        InstallOutcome::RunsThrough {
            manager: Manager::Husky,
            ..
        }
    ));
    // The push really goes through husky's files to the gate.
    sb.commit("second");
    let out = sb.push(&["main"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sb.log("fake.stdin").expect("gate ran").lines().count(), 1);
    assert_eq!(
        sb.log("fake.args").expect("gate ran").trim(),
        format!("gate --pre-push origin {}", sb.remote.display())
    );
    // Without husky's own hooks (`npm install` not run yet) git runs nothing.
    fs::remove_file(sb.work.join(".husky/_/pre-push")).expect("rm");
    let st = status(&env).expect("status");
    assert!(!st.would_run, "{st:?}");

    // --force installs into .husky/_ anyway.
    assert!(matches!(
        install(&env, true).expect("force"),
        InstallOutcome::Installed { .. }
    ));
    assert!(sb.work.join(".husky/_/pre-push").is_file());
}

#[test]
fn a_manager_config_without_its_hooks_is_not_a_manager() {
    // Issue 23: lefthook.yml (or .pre-commit-config.yaml) in a repository
    // whose core.hooksPath has no hook of theirs: install writes the hook.
    let sb = Sandbox::new();
    fs::write(sb.work.join("lefthook.yml"), "pre-push: {}\n").expect("w");
    fs::write(sb.work.join(".pre-commit-config.yaml"), "repos: []\n").expect("w");
    sb.ok(&sb.work, &["config", "core.hooksPath", ".hooks"]);
    let env = sb.env();
    match install(&env, false).expect("install") {
        InstallOutcome::Installed { path, warning, .. } => {
            assert_eq!(path, sb.work.join(".hooks/pre-push"));
            let w = warning.expect("warns about lefthook");
            assert!(
                w.contains("lefthook.yml") && w.contains("pre-push.old"),
                "{w}"
            );
        }
        other => panic!("expected Installed, got {other:?}"),
    }
    let st = status(&env).expect("status");
    assert!(st.installed && st.would_run, "{st:?}");
}

#[test]
fn lefthook_gate_needs_a_script_not_a_command() {
    let sb = Sandbox::new();
    let root = &sb.work;
    assert_eq!(managers::lefthook_gate(root), LefthookGate::Absent);
    fs::write(
        root.join("lefthook.yml"),
        "pre-push:\n  commands:\n    g:\n      run: git orch gate --pre-push {1} {2}\n",
    )
    .expect("w");
    assert_eq!(
        managers::lefthook_gate(root),
        LefthookGate::Command(root.join("lefthook.yml"))
    );
    // The snippet, both files of it.
    let snippet = Manager::Lefthook.snippet();
    let (yml, script) = snippet
        .split_once("# .lefthook/pre-push/")
        .expect("two files");
    fs::write(root.join("lefthook-local.yml"), yml).expect("w");
    let script = script.split_once('\n').expect("name line").1;
    write_exec(
        &root.join(".lefthook/pre-push").join(LEFTHOOK_SCRIPT),
        script,
        0o644,
    );
    assert_eq!(
        managers::lefthook_gate(root),
        LefthookGate::Script(root.join("lefthook-local.yml"))
    );
    // Skipped, it does not count.
    fs::write(
        root.join("lefthook-local.yml"),
        yml.replace("runner: sh", "runner: sh\n      skip: true"),
    )
    .expect("w");
    assert_eq!(
        managers::lefthook_gate(root),
        LefthookGate::Command(root.join("lefthook.yml"))
    );
    // As a job in a group.
    fs::write(
        root.join("lefthook-local.yml"),
        format!("pre-push:\n  jobs:\n    - group:\n        jobs:\n          - script: {LEFTHOOK_SCRIPT}\n            runner: sh\n"),
    )
    .expect("w");
    assert_eq!(
        managers::lefthook_gate(root),
        LefthookGate::Script(root.join("lefthook-local.yml"))
    );
}

#[test]
fn skip_gates_env_skips_gate_but_runs_chained() {
    let mut sb = Sandbox::new();
    let env = sb.env();
    write_exec(&env.hook_path(), OLD_HOOK, 0o755);
    install(&env, false).expect("install");
    sb.extra_env.push(("ORCH_SKIP_GATES".into(), "1".into()));
    sb.extra_env.push(("FAKE_STATUS".into(), "1".into()));
    let head = sb.commit("second");
    let out = sb.push(&["main"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("warning: ORCH_SKIP_GATES=1: git-orch gates skipped"));
    assert!(sb.log("fake.stdin").is_none(), "gate must not run");
    assert_eq!(sb.log("old.stdin").expect("chained ran").lines().count(), 1);
    assert_eq!(sb.remote_rev("main").as_deref(), Some(head.as_str()));
}

#[test]
fn failing_gate_blocks_push() {
    let mut sb = Sandbox::new();
    install(&sb.env(), false).expect("install");
    sb.extra_env.push(("FAKE_STATUS".into(), "1".into()));
    let out = sb.push(&["main"]);
    assert!(!out.status.success());
    assert_eq!(sb.log("fake.stdin").expect("gate ran").lines().count(), 1);
    assert_eq!(sb.remote_rev("main"), None);
}

#[test]
fn missing_git_orch_fails_closed() {
    let mut sb = Sandbox::new();
    install(&sb.env(), false).expect("install");
    let real_path = std::env::var("PATH").unwrap_or_default();
    let found = Command::new("sh")
        .args(["-c", "command -v git-orch"])
        .env("PATH", &real_path)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(true);
    if found {
        return; // a real git-orch is installed; cannot test its absence
    }
    sb.path_var = real_path;
    let out = sb.push(&["main"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("error: git-orch not found on PATH; install it or push with --no-verify"),
        "{}",
        stderr(&out)
    );
    assert_eq!(sb.remote_rev("main"), None);
}

#[test]
fn uninstall_restores_when_shim_deleted_by_hand() {
    let sb = Sandbox::new();
    let env = sb.env();
    write_exec(&env.hook_path(), OLD_HOOK, 0o711);
    install(&env, false).expect("install");
    fs::remove_file(env.hook_path()).expect("rm");
    let st = status(&env).expect("status");
    assert!(!st.installed && st.chained.is_some());
    assert!(matches!(
        uninstall(&env).expect("uninstall"),
        UninstallOutcome::Removed {
            restored: Some(_),
            ..
        }
    ));
    assert_eq!(fs::read_to_string(env.hook_path()).expect("r"), OLD_HOOK);
    assert_eq!(mode(&env.hook_path()), 0o711);
}

#[test]
fn install_resumes_after_interrupted_link() {
    let sb = Sandbox::new();
    let env = sb.env();
    write_exec(&env.hook_path(), OLD_HOOK, 0o755);
    // State left by an install killed between linking and writing the shim.
    fs::hard_link(env.hook_path(), env.chained_path()).expect("link");
    assert!(matches!(
        install(&env, false).expect("install"),
        InstallOutcome::Installed {
            chained: Some(_),
            ..
        }
    ));
    assert_eq!(
        fs::read_to_string(env.hook_path()).expect("r"),
        PRE_PUSH_SHIM
    );
    assert_eq!(fs::read_to_string(env.chained_path()).expect("r"), OLD_HOOK);
}
