use anyhow::Result;
use serde_json::json;

use crate::cli::CheckArgs;
use crate::plan::{self, Diagnostic};
use crate::ui;

/// `git orch check FILE`: every problem, as `file:line:col: error: …`.
pub fn run(args: CheckArgs) -> Result<u8> {
    let shown = args.file.display().to_string();
    let (ok, diagnostics) = match plan::load_file(&args.file) {
        Ok((_, warnings)) => (true, warnings),
        Err(all) => (false, all),
    };
    if args.json {
        let list: Vec<_> = diagnostics
            .iter()
            .map(|d| diagnostic_json(d, &shown))
            .collect();
        ui::json(&json!({ "file": shown, "valid": ok, "diagnostics": list }));
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

pub fn diagnostic_json(d: &Diagnostic, file: &str) -> serde_json::Value {
    json!({
        "file": file,
        "severity": d.severity.to_string(),
        "message": d.message,
        "line": d.line,
        "col": d.col,
    })
}
