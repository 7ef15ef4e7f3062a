//! `git orch trust [PLAN] [--yes] | --revoke PLAN | --list`: show every
//! command a plan can run, and approve them on this machine.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;
use serde_json::json;

use super::{open_plan, open_repo};
use crate::cli::TrustArgs;
use crate::error::{refuse, refuse_with_hint};
use crate::git::short;
use crate::plan::PlanCommand;
use crate::schema::Schema;
use crate::trust::{self, Verdict};
use crate::ui;

pub fn run(args: TrustArgs) -> Result<u8> {
    if args.list {
        return list(args.json);
    }
    let (repo, snap) = open_plan(args.plan.as_deref())?;
    let plan = snap.plan_name.clone();
    let commands = snap.plan.commands();
    let hash = snap.plan.commands_hash();
    let doc = |trusted: bool, approved: bool, by: Option<&str>, changed: &[String]| {
        json!({
            "plan": plan, "repo": trust::repo_key(&repo), "state_commit": snap.commit.to_string(),
            "hash": hash, "trusted": trusted, "approved": approved, "by": by,
            "changed": changed, "commands": commands,
        })
    };
    if args.revoke {
        let n = trust::revoke(&repo, &plan)?;
        if args.json {
            let mut d = doc(commands.is_empty(), false, None, &[]);
            d["revoked"] = json!(n);
            ui::json_doc(Schema::Trust, &d)?;
        } else if n == 0 {
            ui::note(&format!("plan {plan} had no approval here"));
        } else {
            ui::note(&format!(
                "plan {plan}: approval revoked; it runs nothing until `git orch trust {plan}`"
            ));
        }
        return Ok(0);
    }
    let verdict = trust::verdict(&repo, &plan, &snap.plan)?;
    let changed = match &verdict {
        Verdict::Untrusted { last: Some(last) } => trust::changed(&commands, last),
        _ => Vec::new(),
    };
    if !args.json {
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
        show(&commands, &changed);
    }
    match verdict {
        Verdict::NoCommands | Verdict::Trusted(_) => {
            let by = match &verdict {
                Verdict::Trusted(a) => Some(a.by.clone()),
                _ => None,
            };
            if args.json {
                ui::json_doc(Schema::Trust, &doc(true, false, by.as_deref(), &[]))?;
            } else if by.is_none() {
                ui::note(&format!("plan {plan} runs no command: nothing to approve"));
            } else {
                ui::note(&format!(
                    "plan {plan} is trusted here ({}; {hash})",
                    match by.as_deref() {
                        Some("start") => "approved by `git orch start`",
                        _ => "approved with `git orch trust`",
                    },
                ));
            }
            Ok(0)
        }
        Verdict::Untrusted { .. } => {
            let yes = args.yes || (!args.json && ask(&plan)?);
            if !yes {
                if args.json {
                    ui::json_doc(Schema::Trust, &doc(false, false, None, &changed))?;
                }
                return Err(refuse_with_hint(
                    format!("plan `{plan}` was not trusted: nothing was approved"),
                    format!("approve these commands with `git orch trust {plan} --yes`"),
                ));
            }
            let file = trust::record(&repo, &plan, &snap.plan, "trust")?;
            if args.json {
                ui::json_doc(Schema::Trust, &doc(true, true, Some("trust"), &changed))?;
            } else {
                ui::note(&format!(
                    "plan {plan} {} on this machine ({hash}, in {})",
                    ui::green("trusted"),
                    file.display()
                ));
            }
            Ok(0)
        }
    }
}

/// Every command, where it comes from, where it runs, and its text.
fn show(commands: &[PlanCommand], changed: &[String]) {
    for c in commands {
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
                format!("; {}", ui::printable(&context.join(", ")))
            }
        ));
        for line in c.run.lines() {
            ui::out(&format!("    $ {}", ui::printable(line)));
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

fn list(json: bool) -> Result<u8> {
    let repo = open_repo()?;
    let approvals = trust::list(&repo)?;
    let store = trust::store_dir()?;
    if json {
        let rows: Vec<_> = approvals
            .iter()
            .map(|a| json!({ "plan": a.plan, "hash": a.hash, "by": a.by, "at": a.at, "commands": a.commands.len() }))
            .collect();
        ui::json_doc(
            Schema::TrustList,
            &json!({ "store": store.display().to_string(), "repo": trust::repo_key(&repo), "approvals": rows }),
        )?;
        return Ok(0);
    }
    if approvals.is_empty() {
        ui::note(&format!(
            "no plan is approved in this repository (store: {})",
            store.display()
        ));
        return Ok(0);
    }
    for a in &approvals {
        ui::out(&format!(
            "{}\t{}\t{} command{}\tby {}",
            a.plan,
            a.hash,
            a.commands.len(),
            if a.commands.len() == 1 { "" } else { "s" },
            if a.by == "start" { "start" } else { "trust" }
        ));
    }
    Ok(0)
}
