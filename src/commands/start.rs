use anyhow::Result;
use serde_json::json;

use super::open_repo;
use crate::cli::StartArgs;
use crate::engine::start::{start, StartInput};
use crate::git::short;
use crate::schema::Schema;
use crate::ui;

pub fn run(args: StartArgs) -> Result<u8> {
    let shown = args.file.display().to_string();
    let (plan, warnings) = super::load_plan_file(&args.file, "started")?;
    let repo = open_repo()?;
    // Refused now rather than at the first landing.
    crate::git::version::require_for_plan(&plan)?;
    let source = std::fs::read_to_string(&args.file)?;
    let source_name = args
        .file
        .file_name()
        .map_or("plan.toml".to_string(), |n| n.to_string_lossy().to_string());
    let snap = start(
        &repo,
        StartInput {
            plan,
            source: &source,
            source_name: &source_name,
            base: args.base.as_deref(),
        },
    )?;
    // Warnings only once it started: a refusal's stderr starts with `error:`.
    for w in &warnings {
        ui::note(&w.render(&shown));
    }
    let name = &snap.plan_name;
    if args.json {
        ui::json_doc(
            Schema::Start,
            &json!({ "plan": name, "base": snap.state.base, "work": snap.state.work, "state": snap.commit.to_string() }),
        )?;
    } else {
        let base = snap.state.base.oid();
        ui::note(&format!(
            "started plan {} at {}",
            ui::bold(name),
            short(base)
        ));
        ui::note(&format!("  work branch   orch/{name}/work"));
        ui::note(&format!("  state branch  orch/{name}/state"));
        ui::note(&format!("  checkpoint    orch/{name}/start"));
        ui::hint(&format!(
            "run it with `git orch run {name}`, or work by hand with `git orch task start ID`"
        ));
    }
    Ok(0)
}
