//! `git orch trust [PLAN] [--yes] | --revoke PLAN | --list`: show every
//! command a plan can run, and approve them on this machine.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;

use super::{open_plan, open_repo};
use crate::cli::TrustArgs;
use crate::error::{refuse, refuse_with_hint};
use crate::git::short;
use crate::trust::{self, Verdict};
use crate::ui;

pub fn run(args: TrustArgs) -> Result<u8> {
    if args.list {
        return list();
    }
    let (repo, snap) = open_plan(args.plan.as_deref())?;
    let plan = snap.plan_name.clone();
    if args.revoke {
        let n = trust::revoke(&repo, &plan)?;
        if n == 0 {
            ui::note(&format!("plan {plan} had no approval here"));
        } else {
            ui::note(&format!(
                "plan {plan}: approval revoked; it runs nothing until `git orch trust {plan}`"
            ));
        }
        return Ok(0);
    }
    let commands = snap.plan.commands();
    let verdict = trust::verdict(&repo, &plan, &snap.plan)?;
    let changed = match &verdict {
        Verdict::Untrusted {
            last: Some(last), ..
        } => trust::changed(&commands, last),
        _ => Vec::new(),
    };
    let head = repo.git.find_commit(snap.commit)?;
    let author = head.author();
    ui::out(&format!(
        "plan {plan} (state orch/{plan}/state at {}, by {} <{}>) can run {} command{}:",
        short(snap.commit),
        ui::printable(author.name().unwrap_or("?")),
        ui::printable(author.email().unwrap_or("?")),
        commands.len(),
        if commands.len() == 1 { "" } else { "s" }
    ));
    for c in &commands {
        let mark = if changed.contains(&c.source) {
            format!(" {}", ui::yellow("(new or changed since approved)"))
        } else {
            String::new()
        };
        let context: Vec<String> = c.context.iter().map(|(k, v)| format!("{k} {v}")).collect();
        ui::out(&format!("  {}{mark}", ui::bold(&ui::printable(&c.source))));
        ui::out(&format!(
            "    {}{}",
            c.place,
            if context.is_empty() {
                String::new()
            } else {
                format!("; {}", context.join(", "))
            }
        ));
        for line in c.run.lines() {
            ui::out(&format!("    $ {}", ui::printable(line)));
        }
    }
    match verdict {
        Verdict::NoCommands => {
            ui::note(&format!("plan {plan} runs no command: nothing to approve"));
            Ok(0)
        }
        Verdict::Trusted(a) => {
            ui::note(&format!(
                "plan {plan} is trusted here ({}; {})",
                match a.by.as_str() {
                    "start" => "approved by `git orch start`",
                    _ => "approved with `git orch trust`",
                },
                a.hash
            ));
            Ok(0)
        }
        Verdict::Untrusted { hash, .. } => {
            let yes = args.yes || ask(&plan)?;
            if !yes {
                return Err(refuse_with_hint(
                    format!("plan `{plan}` was not trusted: nothing was approved"),
                    format!("approve these commands with `git orch trust {plan} --yes`"),
                ));
            }
            let file = trust::record(&repo, &plan, &snap.plan, "trust")?;
            ui::note(&format!(
                "plan {plan} {} on this machine ({hash}, in {})",
                ui::green("trusted"),
                file.display()
            ));
            Ok(0)
        }
    }
}

/// Asks on the terminal; without one (a script, an agent) the answer is no
/// and the refusal says to use `--yes`.
fn ask(plan: &str) -> Result<bool> {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Ok(false);
    }
    eprint!("Trust plan {plan} and let git-orch run these commands? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| refuse(format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
}

fn list() -> Result<u8> {
    let repo = open_repo()?;
    let approvals = trust::list(&repo)?;
    if approvals.is_empty() {
        ui::note(&format!(
            "no plan is approved in this repository (store: {})",
            trust::store_dir()?.display()
        ));
        return Ok(0);
    }
    for a in &approvals {
        ui::out(&format!(
            "{}\t{}\t{} command{}\t{}",
            a.plan,
            a.hash,
            a.commands.len(),
            if a.commands.len() == 1 { "" } else { "s" },
            match a.by.as_str() {
                "start" => "by start",
                _ => "by trust",
            }
        ));
    }
    Ok(0)
}
