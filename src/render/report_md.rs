//! The run report as markdown: readable in a terminal, and rendered (with
//! its mermaid graph) by GitHub, GitLab and most editors.

use super::graph::{self, Dag};
use super::{offset, short, utc_time};
use crate::engine::report::{Attempt, Report};
use crate::ui::duration;

/// A table cell: no line breaks, pipes escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn code(text: &str) -> String {
    format!("`{}`", cell(text).replace('`', "'"))
}

fn secs(s: Option<f64>) -> String {
    s.map_or("—".to_string(), duration)
}

/// `+23%` over, `-40%` under the estimate.
pub fn vs_estimate(ratio: Option<f64>) -> String {
    ratio.map_or("—".to_string(), |r| {
        let pct = ((r - 1.0) * 100.0).round() as i64;
        if pct > 0 {
            format!("+{pct}%")
        } else {
            format!("{pct}%")
        }
    })
}

/// Demotes the note's own headings so they nest under the report's.
fn nested(note: &str, levels: usize) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in note.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && line.starts_with('#') {
            out += &"#".repeat(levels);
        }
        out += line;
        out.push('\n');
    }
    out
}

fn attempt_time(r: &Report, a: &Attempt) -> String {
    let end = a.end.unwrap_or(r.generated_at);
    duration((end - a.start).max(0.0))
}

pub fn render(r: &Report, dag: &Dag) -> String {
    let mut o = String::new();
    let title = r
        .title
        .as_deref()
        .map_or(String::new(), |t| format!(" — {t}"));
    o += &format!("# Report: {}{title}\n\n", r.plan);
    let status = if r.finished {
        "finished".to_string()
    } else {
        match &r.current_phase {
            Some(p) => format!("active, in phase `{p}`"),
            None => "every phase checkpointed".to_string(),
        }
    };
    let t = &r.totals;
    o += &format!("- Status: {status}\n");
    o += &format!(
        "- Started: {} · last event: {} · wall time {}\n",
        utc_time(r.started_at),
        utc_time(r.ended_at),
        duration(t.wall_seconds)
    );
    o += &format!(
        "- Tasks: {} — {} done, {} failed, {} conflict, {} skipped, {} running, {} pending; {} attempt(s)\n",
        t.tasks, t.done, t.failed, t.conflict, t.skipped, t.running, t.pending, t.attempts
    );
    o += &format!("- Task time: {}", duration(t.task_seconds));
    if t.estimated_seconds > 0.0 {
        o += &format!(
            " (tasks with an estimate: {} measured against {} estimated, {})",
            duration(t.measured_seconds),
            duration(t.estimated_seconds),
            vs_estimate(Some(t.measured_seconds / t.estimated_seconds))
        );
    }
    o += "\n";
    o += &format!(
        "- Work branch: `orch/{}/work` at `{}` · state: `{}` at `{}`\n\n",
        r.plan,
        short(&r.work),
        r.state_ref.trim_start_matches("refs/heads/"),
        short(&r.state_commit)
    );

    o += "## Phases\n\n| phase | state | tasks | started | checkpoint | gates |\n| --- | --- | --- | --- | --- | --- |\n";
    for p in &r.phases {
        let done = r
            .tasks
            .iter()
            .filter(|t| t.phase == p.id && matches!(t.state.as_str(), "done" | "skipped"))
            .count();
        let cp = p.checkpoint.as_ref().map_or("—".to_string(), |c| {
            format!(
                "{} → `{}` ({})",
                code(&c.tag),
                short(&c.commit),
                offset(r.started_at, c.at)
            )
        });
        let gates = if p.gates.is_empty() {
            "—".to_string()
        } else {
            p.gates
                .iter()
                .map(|g| format!("{} {}", cell(&g.name), if g.passed { "✓" } else { "✗" }))
                .collect::<Vec<_>>()
                .join(", ")
        };
        o += &format!(
            "| {} | {} | {done}/{} | {} | {cp} | {gates} |\n",
            code(&p.id),
            p.state,
            p.tasks.len(),
            p.started_at
                .map_or("—".to_string(), |s| offset(r.started_at, s)),
        );
    }

    o += "\n## Cost and time\n\n| what | time | estimate | tokens in | tokens out | cost |\n| --- | --- | --- | --- | --- | --- |\n";
    for row in crate::engine::ledger::table(r) {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        o += &format!("| {} |\n", cells.join(" | "));
    }
    o += &format!("\n{}\n", crate::engine::ledger::remaining_words(&r.ledger));

    o += "\n## Tasks\n\n| task | phase | state | attempts | time | estimate | vs estimate | changed files |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n";
    for task in &r.tasks {
        let changed = if task.changed.is_empty() {
            "—".to_string()
        } else {
            task.changed
                .iter()
                .map(|c| code(c))
                .collect::<Vec<_>>()
                .join(", ")
        };
        o += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {changed} |\n",
            code(&task.id),
            code(&task.phase),
            match &task.agent {
                Some(a) => format!("{} ({})", task.state, cell(a)),
                None => task.state.clone(),
            },
            task.attempts,
            secs(task.seconds),
            task.estimate.as_deref().map_or("—".to_string(), cell),
            vs_estimate(task.vs_estimate),
        );
    }

    o += "\n## Timeline\n\nEvery attempt, in order of start (times after the plan's start; `slot` is its row in the HTML report's timeline).\n\n| start | task | attempt | outcome | took | slot |\n| --- | --- | --- | --- | --- | --- |\n";
    if r.attempts.is_empty() {
        o += "| — | no task has run yet | | | | |\n";
    }
    let mut order: Vec<&Attempt> = r.attempts.iter().collect();
    order.sort_by(|a, b| a.start.total_cmp(&b.start));
    for a in order {
        o += &format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            offset(r.started_at, a.start),
            code(&a.task),
            a.n,
            a.outcome,
            attempt_time(r, a),
            a.slot + 1
        );
    }

    let gated: Vec<_> = r.phases.iter().filter(|p| !p.gates.is_empty()).collect();
    if !gated.is_empty() {
        o += "\n## Gates\n\nThe latest gate run of each phase.\n\n| phase | gate | result | took | commit | log |\n| --- | --- | --- | --- | --- | --- |\n";
        for p in gated {
            for g in &p.gates {
                o += &format!(
                    "| {} | {} | {}{} | {} | `{}` | {} |\n",
                    code(&p.id),
                    code(&g.name),
                    if g.passed { "passed" } else { "failed" },
                    if g.cached { " (cached)" } else { "" },
                    duration(g.seconds),
                    g.commit.short(),
                    code(&g.log)
                );
            }
        }
    }

    o += "\n## Failures\n\n";
    if r.failures.is_empty() {
        o += "None.\n";
    }
    for f in &r.failures {
        let what = match f.attempt {
            Some(n) => format!("task `{}` (attempt {n})", f.name),
            None => format!("gate `{}`", f.name),
        };
        o += &format!(
            "- {what} in phase `{}`: {}",
            f.phase,
            cell(f.reason.as_deref().unwrap_or("failed"))
        );
        if let Some(at) = f.at {
            o += &format!(" at {}", offset(r.started_at, at));
        }
        if let Some(read) = super::failure_log_command(r, f) {
            o += &format!(" — log: `{read}`");
        }
        o += "\n";
    }

    o += "\n## Rollbacks\n\n";
    if r.rollbacks.is_empty() && !r.events.iter().any(|e| e.kind == "rollback") {
        o += "None.\n";
    }
    for rb in &r.rollbacks {
        o += &format!(
            "- to `{}` at {}{}; discarded work kept in {}\n",
            rb.to,
            offset(r.started_at, rb.at),
            if rb.undone { " (undone)" } else { "" },
            if rb.preserved.is_empty() {
                "nothing (nothing was discarded)".to_string()
            } else {
                rb.preserved
                    .iter()
                    .map(|p| code(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
    }
    for e in r.events.iter().filter(|e| e.kind == "undo") {
        o += &format!(
            "- {} at {}\n",
            cell(&e.summary),
            offset(r.started_at, e.time)
        );
    }

    let attempts: Vec<_> = r
        .tasks
        .iter()
        .flat_map(|t| t.usage.iter().map(move |u| (t.id.as_str(), u)))
        .collect();
    if !attempts.is_empty() {
        o += "\n## Agent attempts\n\n| task | attempt | agent | model | tokens in (cached) | tokens out | cost | session | outcome |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
        for (id, u) in attempts {
            let mut outcome = u.outcome.clone().unwrap_or_else(|| "-".into());
            if let Some(why) = &u.reason {
                outcome += &format!(": {why}");
            }
            if !u.denied.is_empty() {
                outcome += &format!("; refused: {}", u.denied.join("; "));
            }
            if let Some(e) = &u.error {
                outcome += &format!("; {e}");
            }
            o += &format!(
                "| {} | {} | {} | {} | {} ({}) | {} | {} | {}{} | {} |\n",
                cell(id),
                u.attempt,
                cell(u.agent.as_deref().unwrap_or("-")),
                cell(u.model.as_deref().unwrap_or("-")),
                u.tokens_in.unwrap_or(0),
                u.tokens_cached.unwrap_or(0),
                u.tokens_out.unwrap_or(0),
                u.cost_usd.map_or("-".to_string(), |c| format!("${c:.4}")),
                cell(u.session.as_deref().unwrap_or("-")),
                if u.resumed { " (resumed)" } else { "" },
                cell(&outcome)
            );
        }
    }

    o += "\n## Handoff notes\n\n";
    let notes: Vec<_> = r.tasks.iter().filter(|t| t.handoff.is_some()).collect();
    if notes.is_empty() {
        o += "None yet.\n";
    }
    for t in notes {
        o += &format!("### {}\n\n", t.id);
        o += &nested(t.handoff.as_deref().unwrap_or(""), 3);
        o += "\n";
    }

    o += "\n## Dependency graph\n\n```mermaid\n";
    o += &graph::mermaid(dag);
    o += "```\n\n## History\n\n";
    for e in &r.events {
        o += &format!(
            "- {} `{}` {}\n",
            offset(r.started_at, e.time),
            short(&e.commit),
            cell(&e.summary)
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_headings_nest_but_code_is_left_alone() {
        let note = "# Handoff\n\n## Notes\n```sh\n# a comment\n```\n";
        assert_eq!(
            nested(note, 3),
            "#### Handoff\n\n##### Notes\n```sh\n# a comment\n```\n"
        );
    }

    #[test]
    fn estimate_ratio() {
        assert_eq!(vs_estimate(Some(1.234)), "+23%");
        assert_eq!(vs_estimate(Some(0.5)), "-50%");
        assert_eq!(vs_estimate(None), "—");
    }
}
