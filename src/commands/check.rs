use anyhow::Result;
use serde_json::json;

use crate::cli::CheckArgs;
use crate::plan::{self, Diagnostic};
use crate::schema::Schema;
use crate::ui;

/// `git orch check FILE`: every problem, as `file:line:col: error: …`.
pub fn run(args: CheckArgs) -> Result<u8> {
    let shown = args.file.display().to_string();
    let (ok, diagnostics) = match plan::load_file(&args.file) {
        Ok((plan, warnings)) => (
            true,
            warnings.into_iter().chain(sandbox_warning(&plan)).collect(),
        ),
        Err(all) => (false, all),
    };
    if args.json {
        let list: Vec<_> = diagnostics
            .iter()
            .map(|d| diagnostic_json(d, &shown))
            .collect();
        ui::json_doc(
            Schema::Check,
            &json!({ "file": shown, "valid": ok, "diagnostics": list }),
        )?;
    } else {
        for d in &diagnostics {
            ui::out(&d.render(&shown));
        }
        if ok {
            ui::note(&format!("{shown}: {}", ui::green("plan is valid")));
        }
    }
    if ok {
        return Ok(0);
    }
    let errors: usize = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(Diagnostic::count)
        .sum();
    Err(crate::error::refuse_with_hint(
        format!(
            "{shown}: {errors} problem{} found",
            if errors == 1 { "" } else { "s" }
        ),
        "fix the lines above and run `git orch check` again",
    ))
}

/// A plan that asks for the sandbox where bubblewrap cannot run: `run`
/// will refuse it, so `check` says so now.
fn sandbox_warning(plan: &plan::Plan) -> Option<Diagnostic> {
    let wants = plan
        .tasks()
        .any(|(_, t)| plan.task_isolation(t) == plan::Isolation::Sandbox);
    if !wants {
        return None;
    }
    let why = crate::sandbox::available().err()?;
    Some(Diagnostic::warning(format!(
        "tasks ask for `isolation = \"sandbox\"`, and `run` will refuse them on this machine: {why}"
    )))
}

pub fn diagnostic_json(d: &Diagnostic, file: &str) -> serde_json::Value {
    json!({
        "file": file,
        "severity": d.severity.to_string(),
        "message": d.message,
        "line": d.line,
        "col": d.col,
    })
}
