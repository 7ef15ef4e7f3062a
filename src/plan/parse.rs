//! Turning plan text into a [`Plan`]: format detection, parsing, and
//! converting parser errors into located diagnostics. The text is parsed
//! twice (untyped, then typed) so that emptiness, the top-level shape and
//! every unknown key can be reported clearly before serde's first error.

use super::locate;
use super::schema::{self, Node, UnknownKey};
use super::{validate, Diagnostic, Plan};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
}

impl Format {
    /// By extension: `.toml`, `.yaml`, `.yml`, in any case.
    pub fn from_path(p: &Path) -> Option<Format> {
        let ext = p.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "toml" => Some(Format::Toml),
            "yaml" | "yml" => Some(Format::Yaml),
            _ => None,
        }
    }
}

type Loaded = Result<(Plan, Vec<Diagnostic>), Vec<Diagnostic>>;

/// Parse and validate. `Ok` carries the warnings; `Err` carries every
/// diagnostic (errors first, then warnings).
pub fn load_str(text: &str, format: Format) -> Loaded {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let plan = match format {
        Format::Toml => parse_toml(text)?,
        Format::Yaml => parse_yaml(text)?,
    };
    let diags = validate(&plan, Some(text));
    if diags.iter().any(Diagnostic::is_error) {
        Err(diags)
    } else {
        Ok((plan, diags))
    }
}

/// [`load_str`] on a file whose format is given by its extension.
pub fn load_file(path: &Path) -> Loaded {
    let Some(format) = Format::from_path(path) else {
        return Err(vec![Diagnostic::error(format!(
            "cannot tell the format of `{}`: a plan file must end in .toml, .yaml or .yml",
            path.display()
        ))]);
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic::error(format!(
            "cannot read plan file `{}`: {e}",
            path.display()
        ))]
    })?;
    load_str(&text, format)
}

fn empty_file() -> Vec<Diagnostic> {
    vec![Diagnostic::error(
        "the plan file is empty: it needs at least a `name` and one phase with tasks",
    )]
}

fn parse_toml(text: &str) -> Result<Plan, Vec<Diagnostic>> {
    let table: toml::Table = toml::from_str(text).map_err(|e| vec![toml_diag(text, &e)])?;
    if table.is_empty() {
        return Err(empty_file());
    }
    let unknown = schema::unknown_keys(&Node::from(&toml::Value::Table(table)));
    toml::from_str::<Plan>(text).map_err(|e| {
        let first = toml_diag(text, &e);
        if unknown.is_empty() {
            vec![first]
        } else {
            unknown_key_diags(text, &unknown, &first)
        }
    })
}

fn toml_diag(text: &str, e: &toml::de::Error) -> Diagnostic {
    let pos = e.span().map(|s| locate::line_col(text, s.start));
    let pos = pos.map(|p| locate::clamp(text, p));
    Diagnostic::error(tidy(e.message())).at(pos)
}

fn parse_yaml(text: &str) -> Result<Plan, Vec<Diagnostic>> {
    use serde_yaml::Value;
    let value: Value = serde_yaml::from_str(text).map_err(|e| vec![yaml_diag(text, &e)])?;
    let kind = match &value {
        Value::Null => return Err(empty_file()),
        Value::Mapping(m) if m.is_empty() => return Err(empty_file()),
        Value::Mapping(_) => None,
        Value::Sequence(_) => Some("a list"),
        Value::Tagged(_) => Some("a tagged value"),
        _ => Some("a single value"),
    };
    if let Some(kind) = kind {
        return Err(vec![Diagnostic::error(format!(
            "the plan must be a mapping of keys (`name:`, `phases:`, …), but the file holds {kind}"
        ))
        .at(Some((1, 1)))]);
    }
    let unknown = schema::unknown_keys(&Node::from(&value));
    serde_yaml::from_str::<Plan>(text).map_err(|e| {
        let first = yaml_diag(text, &e);
        if unknown.is_empty() {
            vec![first]
        } else {
            unknown_key_diags(text, &unknown, &first)
        }
    })
}

fn yaml_diag(text: &str, e: &serde_yaml::Error) -> Diagnostic {
    let mut msg = e.to_string();
    let pos = e.location().map(|l| (l.line(), l.column()));
    // The location is rendered separately, so drop serde_yaml's copy of it.
    if let Some((l, c)) = pos {
        msg = msg.replacen(&format!(" at line {l} column {c}"), "", 1);
    }
    let pos = pos.map(|p| locate::clamp(text, p));
    Diagnostic::error(tidy(&msg)).at(pos)
}

/// One diagnostic per unknown key. The parser located only the first one
/// it met; the others are found by searching the text.
fn unknown_key_diags(text: &str, unknown: &[UnknownKey], parser: &Diagnostic) -> Vec<Diagnostic> {
    let mut parser_pos = parser.line.zip(parser.col);
    unknown
        .iter()
        .map(|u| {
            let pos = if parser.message.contains(&format!("unknown key `{}`", u.key)) {
                parser_pos.take()
            } else {
                None
            };
            Diagnostic::error(u.message()).at(pos.or_else(|| locate::key(text, &u.key)))
        })
        .collect()
}

/// Parser messages in our vocabulary ("key", not "field") and on one line.
fn tidy(msg: &str) -> String {
    msg.trim()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
        .replace("missing field", "missing key")
        .replace("unknown field", "unknown key")
}
