//! `git orch report`: what ran, when, for how long, with what result, as
//! markdown (default), JSON (the engine's report as is) or one
//! self-contained HTML file with a timeline and the dependency graph.

use anyhow::{Context, Result};

use super::open_plan;
use crate::cli::ReportArgs;
use crate::engine::report;
use crate::render::graph::Dag;
use crate::render::{report_html, report_md};
use crate::schema::{self, Schema};
use crate::ui;

pub fn run(args: ReportArgs) -> Result<u8> {
    let (repo, snap) = open_plan(args.plan.as_deref())?;
    let data = report::build(&repo, &snap)?;
    let dag = Dag::from_snapshot(&snap)?;
    let text = match args.format.as_str() {
        "json" => schema::document(Schema::Report, &data)? + "\n",
        "html" => report_html::render(&data, &dag),
        // Free text from the state (reasons, commit subjects, handoff
        // notes) may hold control characters: escaped, they cannot drive
        // the terminal the report is printed on. JSON escapes them itself.
        _ => report_md::render(&data, &dag)
            .split_inclusive('\n')
            .map(|line| match line.strip_suffix('\n') {
                Some(l) => ui::printable(l) + "\n",
                None => ui::printable(line),
            })
            .collect(),
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write the report to `{}`", path.display()))?;
            ui::note(&format!(
                "{} the {} report of plan {} to {}",
                ui::green("wrote"),
                args.format,
                snap.plan_name,
                path.display()
            ));
        }
        None => ui::out(text.strip_suffix('\n').unwrap_or(&text)),
    }
    Ok(0)
}
