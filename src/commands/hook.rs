use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;

use super::open_repo;
use crate::error::refuse_with_hint;
use crate::hooks::{self, HookEnv, InstallOutcome, UninstallOutcome};
use crate::schema::Schema;
use crate::ui;

fn hook_env() -> Result<HookEnv> {
    let repo = open_repo()?;
    let dir = std::env::current_dir()?;
    let hooks_dir = PathBuf::from(
        repo.git_in(
            &dir,
            &["rev-parse", "--path-format=absolute", "--git-path", "hooks"],
        )?
        .trim(),
    );
    let worktree_root = repo
        .git
        .workdir()
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.root.clone());
    Ok(HookEnv {
        hooks_dir,
        hooks_path_config: repo.config_string("core.hooksPath"),
        worktree_root,
    })
}

pub fn install(force: bool) -> Result<u8> {
    let env = hook_env()?;
    match hooks::install(&env, force)? {
        InstallOutcome::Installed {
            path,
            chained,
            behind,
            warning,
        } => {
            ui::note(&format!(
                "installed the git-orch pre-push hook at {}",
                path.display()
            ));
            if let Some(m) = behind {
                ui::note(&format!(
                    "{m}'s pre-push hook runs it first thing; `{m} install` keeps it there"
                ));
            }
            if let Some(c) = chained {
                ui::note(&format!(
                    "the existing hook is kept at {} and still runs first",
                    c.display()
                ));
            }
            if let Some(w) = warning {
                ui::warn(&w);
            }
        }
        InstallOutcome::AlreadyInstalled { path, behind } => {
            ui::note(&format!("already installed at {}", path.display()));
            if let Some(m) = behind {
                ui::note(&format!("{m}'s pre-push hook runs it first thing"));
            }
        }
        InstallOutcome::RunsThrough { manager, config } => ui::note(&format!(
            "the gates already run through {manager} ({}); nothing was written",
            config.display()
        )),
        InstallOutcome::ManagedBy { manager, snippet } => {
            ui::out(snippet.trim_end());
            return Err(refuse_with_hint(
                format!(
                    "{manager} owns the pre-push hook in {} and would set a git-orch hook aside; nothing was written",
                    env.hooks_dir.display()
                ),
                "add the lines above to the files their `#` lines name, then `git orch hook status` says whether the gates run (or install anyway with --force)",
            ));
        }
    }
    Ok(0)
}

pub fn uninstall() -> Result<u8> {
    let env = hook_env()?;
    match hooks::uninstall(&env)? {
        UninstallOutcome::Removed { path, restored } => {
            ui::note(&format!(
                "removed the git-orch pre-push hook from {}",
                path.display()
            ));
            if restored.is_some() {
                ui::note("the previous pre-push hook is back in place");
            }
        }
        UninstallOutcome::NotInstalled => ui::note("the git-orch pre-push hook is not installed"),
    }
    Ok(0)
}

pub fn status(json_out: bool) -> Result<u8> {
    let env = hook_env()?;
    let s = hooks::status(&env)?;
    if json_out {
        ui::json_doc(
            Schema::HookStatus,
            &json!({
                "path": s.path.display().to_string(), "installed": s.installed,
                "chained": s.chained.as_ref().map(|c| c.display().to_string()), "executable": s.executable,
                "would_run": s.would_run, "manager": s.manager.as_ref().map(|m| m.to_string()), "note": s.note,
            }),
        )?;
        return Ok(0);
    }
    ui::out(&format!("hook:      {}", s.path.display()));
    ui::out(&format!(
        "installed: {}",
        if s.installed { "yes" } else { "no" }
    ));
    if let Some(c) = &s.chained {
        ui::out(&format!("chained:   {}", c.display()));
    }
    if let Some(m) = &s.manager {
        ui::out(&format!("manager:   {m}"));
    }
    ui::out(&format!(
        "would run: {}",
        if s.would_run { "yes" } else { "no" }
    ));
    if let Some(n) = &s.note {
        ui::note(n);
    }
    Ok(0)
}
