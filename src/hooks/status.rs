//! `git orch hook status`: follows the chain git runs on push (the hook,
//! what it runs first, the manager config that calls the gate) and says
//! whether a failing gate would block the push, in whatever order the
//! git-orch hook and the hook managers were installed.

use std::fs;

use anyhow::Result;

use super::managers::{self, LefthookGate, Manager, GATE_COMMAND};
use super::{
    exists, inspect, is_executable, pre_commit_warning, Found, HookEnv, HookStatus, Kind,
    LEFTHOOK_OLD_NAME,
};

/// Report what is installed and whether a push would run the gates, by
/// following the chain git runs: the hook, what it runs first, and the
/// manager configs that call the gate.
pub fn status(env: &HookEnv) -> Result<HookStatus> {
    let hook = env.hook_path();
    let front = inspect(&hook)?;
    let behind = inspect(&env.chained_path())?;
    let mut s = HookStatus {
        path: hook,
        installed: false,
        chained: exists(&env.chained_path()).then(|| env.chained_path()),
        executable: front.executable,
        would_run: false,
        manager: None,
        note: None,
    };
    if env.husky() || front.by(&Manager::Husky) {
        s.manager = Some(Manager::Husky);
        if front.ours() {
            ours_in_front(env, &mut s, &front, &behind);
            s.note = s.note.or(Some(
                "installed with --force into husky's directory; husky rewrites it on its next install"
                    .to_string(),
            ));
        } else {
            husky_status(env, &mut s);
        }
        return Ok(s);
    }
    match &front.kind {
        Kind::Ours { .. } => ours_in_front(env, &mut s, &front, &behind),
        Kind::Foreign(Some(Manager::Lefthook)) => lefthook_status(env, &mut s, &front)?,
        Kind::Foreign(Some(Manager::PreCommit)) => pre_commit_status(env, &mut s, &front, &behind)?,
        Kind::Foreign(other) => {
            s.manager = other.clone();
            let text = String::from_utf8_lossy(&front.text);
            s.would_run = front.executable && managers::shell_runs_gate(&text);
            s.note = Some(if s.would_run {
                format!("{} runs `git orch gate` itself", s.path.display())
            } else {
                format!(
                    "{} is not the git-orch hook; run `git orch hook install` (it keeps that hook and runs it first)",
                    s.path.display()
                )
            });
        }
        Kind::Missing => {
            s.note = Some(match &s.chained {
                Some(c) => format!(
                    "{} exists but the git-orch hook is missing; run `git orch hook install`",
                    c.display()
                ),
                None => "not installed; run `git orch hook install`".to_string(),
            });
        }
    }
    Ok(s)
}

/// Our shim is `<hooks_dir>/pre-push`; what it chains decides the rest.
fn ours_in_front(env: &HookEnv, s: &mut HookStatus, front: &Found, behind: &Found) {
    s.installed = true;
    s.would_run = front.executable;
    let current = matches!(front.kind, Kind::Ours { current: true });
    let legacy_ours = inspect(&env.legacy_path()).is_ok_and(|l| l.ours());
    s.note = if behind.by(&Manager::PreCommit) {
        s.manager = Some(Manager::PreCommit);
        if legacy_ours {
            // shim → pre-commit → pre-push.legacy (shim) → pre-commit again,
            // which stops with its "migration mode" error.
            s.would_run = false;
            Some("every push fails: pre-commit's hook and the git-orch hook run each other; run `git orch hook install` to repair it".to_string())
        } else {
            Some("pre-commit's hook runs behind the git-orch hook, and `pre-commit install` would move this one over its pre-push.legacy; run `git orch hook install` to put it behind pre-commit".to_string())
        }
    } else if behind.by(&Manager::Lefthook) || managers::lefthook_installed(&env.hooks_dir) {
        s.manager = Some(Manager::Lefthook);
        Some(format!(
            "lefthook moves this hook to {LEFTHOOK_OLD_NAME} and stops running it when it next installs (after any change to its config); add the lines `git orch hook install` prints to lefthook's config, then `git orch hook uninstall`"
        ))
    } else if !front.executable {
        Some(format!(
            "{} is not executable, so git skips it; run `git orch hook install` to fix it",
            s.path.display()
        ))
    } else if !current {
        Some("the hook is out of date; run `git orch hook install` to update it".to_string())
    } else if let Some(c) = s.chained.as_ref().filter(|c| !is_executable(c)) {
        Some(format!(
            "{} is not executable, so the shim skips it",
            c.display()
        ))
    } else {
        managers::lefthook_config(&env.worktree_root).map(|config| {
            format!(
                "{} is here: if lefthook is installed it moves this hook to {LEFTHOOK_OLD_NAME} and never runs it",
                config.display()
            )
        })
    };
}

fn husky_status(env: &HookEnv, s: &mut HookStatus) {
    let (file, reached) = managers::husky_user_hook(&env.hooks_dir);
    let runs = fs::read_to_string(&file).is_ok_and(|t| managers::shell_runs_gate(&t));
    s.would_run = runs && reached;
    s.note = Some(match (runs, reached) {
        (true, true) => format!("gates run through husky ({})", file.display()),
        (true, false) => format!(
            "{} runs the gates, but husky's hooks are not installed in {} (run `npx husky`)",
            file.display(),
            env.hooks_dir.display()
        ),
        _ => format!(
            "husky owns core.hooksPath and runs {}; add `{GATE_COMMAND} \"$@\"` to it",
            file.display()
        ),
    });
}

fn lefthook_status(env: &HookEnv, s: &mut HookStatus, front: &Found) -> Result<()> {
    s.manager = Some(Manager::Lefthook);
    let set_aside = inspect(&env.hooks_dir.join(LEFTHOOK_OLD_NAME))?.ours();
    let add = "add the lines `git orch hook install` prints to lefthook's config";
    s.note = Some(match managers::lefthook_gate(&env.worktree_root) {
        LefthookGate::Script(config) => {
            s.would_run = front.executable;
            format!("gates run through lefthook ({})", config.display())
        }
        LefthookGate::Command(config) => format!(
            "{} runs `git orch gate` as a pre-push command, which lefthook skips when the checked-out branch has no files to push; {add} (a script)",
            config.display()
        ),
        LefthookGate::Absent if set_aside => format!(
            "lefthook moved the git-orch hook to {LEFTHOOK_OLD_NAME} and does not run it; {add}"
        ),
        LefthookGate::Absent => format!("lefthook owns pre-push; {add}"),
    });
    Ok(())
}

fn pre_commit_status(
    env: &HookEnv,
    s: &mut HookStatus,
    front: &Found,
    behind: &Found,
) -> Result<()> {
    s.manager = Some(Manager::PreCommit);
    let legacy_path = env.legacy_path();
    let legacy = inspect(&legacy_path)?;
    if !legacy.ours() {
        s.note = Some("pre-commit owns pre-push and runs no git-orch hook; run `git orch hook install` (it goes behind pre-commit, as pre-push.legacy)".to_string());
        return Ok(());
    }
    s.path = legacy_path;
    s.installed = true;
    s.executable = legacy.executable;
    let looped = behind.by(&Manager::PreCommit);
    s.would_run = front.executable && legacy.executable && !looped;
    s.note = if looped {
        Some("every push fails: pre-commit's hook and the git-orch hook run each other; run `git orch hook install` to repair it".to_string())
    } else if !legacy.executable {
        Some(format!(
            "{} is not executable, so pre-commit skips it; run `git orch hook install` to fix it",
            s.path.display()
        ))
    } else if !matches!(legacy.kind, Kind::Ours { current: true }) {
        Some("the hook is out of date; run `git orch hook install` to update it".to_string())
    } else if let Some(w) = pre_commit_warning(env) {
        Some(w)
    } else {
        Some(
            "runs behind pre-commit's hook, as its pre-push.legacy (`pre-commit install` keeps it)"
                .to_string(),
        )
    };
    Ok(())
}
