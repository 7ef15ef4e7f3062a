use std::io::Write;
use std::path::Path;

use anyhow::Result;

use crate::cli::ImportArgs;
use crate::error::{refuse, refuse_with_hint};
use crate::plan;
use crate::plan::import::emit::{self, Format};
use crate::ui;

/// `git orch import FILE|DIR [-o PLAN_FILE] [--name N]`: a spec-kit or
/// Claudio plan as a git-orch plan, checked before it is written.
pub fn run(args: ImportArgs) -> Result<u8> {
    let format = match &args.output {
        None => Format::Toml,
        Some(out) => output_format(out)?,
    };
    if let Some(out) = &args.output {
        refuse_existing(out)?;
    }
    let imported = plan::import::import(&args.source, args.name.as_deref())?;
    let text = emit::render(&imported, format);
    check_text(&text, format)?;

    ui::note(&format!("imported {} ({})", imported.source, imported.kind));
    for line in &imported.inferred {
        ui::note(&format!("{} {line}", ui::green("inferred:")));
    }
    for line in &imported.not_imported {
        ui::note(&format!("{} {line}", ui::yellow("not imported:")));
    }
    match &args.output {
        None => ui::out(text.trim_end()),
        Some(out) => {
            write_new(out, &text)?;
            let shown = out.display();
            ui::note(&format!(
                "wrote {shown}: it passes `git orch check`; start it with `git orch start {shown}`"
            ));
        }
    }
    Ok(0)
}

fn output_format(out: &Path) -> Result<Format> {
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("toml") => Ok(Format::Toml),
        Some("yaml" | "yml") => Ok(Format::Yaml),
        _ => Err(refuse_with_hint(
            format!("cannot tell which format to write `{}` in", out.display()),
            "end the output file's name in .toml, .yaml or .yml",
        )),
    }
}

fn refuse_existing(out: &Path) -> Result<()> {
    if out.exists() || out.symlink_metadata().is_ok() {
        return Err(refuse_with_hint(
            format!(
                "`{}` already exists; import never overwrites a file",
                out.display()
            ),
            "choose another name with -o, or move the existing file away first",
        ));
    }
    Ok(())
}

/// Runs the emitted text through the same loader as `git orch check`.
pub(crate) fn check_text(text: &str, format: Format) -> Result<()> {
    let suffix = match format {
        Format::Toml => ".toml",
        Format::Yaml => ".yaml",
    };
    let mut tmp = tempfile::Builder::new()
        .prefix("git-orch-import-")
        .suffix(suffix)
        .tempfile()?;
    tmp.write_all(text.as_bytes())?;
    tmp.flush()?;
    if let Err(diagnostics) = plan::load_file(tmp.path()) {
        let first = diagnostics
            .iter()
            .find(|d| d.is_error())
            .map_or(String::new(), |d| d.render("imported plan"));
        return Err(refuse_with_hint(
            format!(
                "the imported plan does not pass `git orch check`, nothing was written: {first}"
            ),
            "this is a bug in the importer; please report it with the source file",
        ));
    }
    Ok(())
}

fn write_new(out: &Path, text: &str) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(refuse_with_hint(
                format!(
                    "`{}` already exists; import never overwrites a file",
                    out.display()
                ),
                "choose another name with -o, or move the existing file away first",
            ))
        }
        Err(e) => return Err(refuse(format!("cannot write `{}`: {e}", out.display()))),
    };
    file.write_all(text.as_bytes())
        .map_err(|e| refuse(format!("cannot write `{}`: {e}", out.display())))?;
    Ok(())
}
