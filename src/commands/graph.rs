//! `git orch graph`: the plan's dependency graph, phases as clusters and
//! task states as styles, as mermaid (default) or Graphviz dot. With
//! `--file` it reads a plan file that need not be started (all pending).

use anyhow::Result;

use super::open_plan;
use crate::cli::GraphArgs;
use crate::error::{refuse, refuse_with_hint};
use crate::plan;
use crate::render::graph::{self, Dag};
use crate::ui;

pub fn run(args: GraphArgs) -> Result<u8> {
    let dag = match &args.file {
        Some(_) if args.plan.is_some() => {
            return Err(refuse_with_hint(
                "give either a started PLAN or --file PLAN_FILE, not both",
                "`git orch graph NAME` for a started plan, `git orch graph --file plan.toml` for a file",
            ))
        }
        Some(path) => match plan::load_file(path) {
            Ok((plan, _)) => Dag::from_plan(&plan),
            Err(problems) => {
                let shown = path.display().to_string();
                let first = problems
                    .iter()
                    .find(|d| d.is_error())
                    .map_or(String::new(), |d| d.render(&shown));
                return Err(refuse_with_hint(
                    format!("invalid plan, no graph drawn: {first}"),
                    format!("see every problem with `git orch check {shown}`"),
                ));
            }
        },
        None => {
            let (_, snap) = open_plan(args.plan.as_deref())?;
            Dag::from_snapshot(&snap)?
        }
    };
    let text = match args.format.as_str() {
        "dot" => graph::dot(&dag),
        "mermaid" => graph::mermaid(&dag),
        other => return Err(refuse(format!("unknown graph format `{other}`"))),
    };
    ui::out(text.strip_suffix('\n').unwrap_or(&text));
    Ok(0)
}
