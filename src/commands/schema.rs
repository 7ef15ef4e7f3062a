//! `git orch schema [NAME]`: the JSON Schema of a `--json` output, as built
//! into the binary (the same bytes as `schemas/<name>.json`); without a
//! name, the names, one a line.

use anyhow::Result;

use crate::cli::SchemaArgs;
use crate::error::refuse;
use crate::schema::Schema;
use crate::ui;

pub fn run(args: SchemaArgs) -> Result<u8> {
    let Some(name) = args.name else {
        for s in Schema::ALL {
            ui::out(s.name());
        }
        return Ok(0);
    };
    let schema = Schema::from_name(&name).ok_or_else(|| {
        let known: Vec<&str> = Schema::ALL.iter().map(|s| s.name()).collect();
        refuse(format!(
            "there is no schema `{}`; the schemas are: {}",
            ui::printable(&name),
            known.join(", ")
        ))
    })?;
    let text = schema.text();
    ui::out(text.strip_suffix('\n').unwrap_or(text));
    Ok(0)
}
