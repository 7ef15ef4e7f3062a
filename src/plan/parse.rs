//! Turning plan text into a [`Plan`]: format detection, parsing, and
//! converting parser errors into located diagnostics. The text is parsed
//! twice (untyped, then typed) so that emptiness, the top-level shape and
//! every unknown key can be reported clearly before serde's first error.

use super::diag::cap;
use super::locate;
use super::schema::{self, Node, UnknownKey};
use super::{validate, Diagnostic, Plan};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
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

/// A plan file over this size is refused unread: the 10,000-task plans of
/// the tests are under 1 MiB.
pub const MAX_PLAN_BYTES: usize = 4 << 20;

/// More `[` and `{` than this are refused before parsing: a 10,000-task
/// TOML plan has about 40,000, and each costs the parsers hundreds of
/// bytes of memory (4 MiB of `[[]]` would take a gigabyte).
pub const MAX_BRACKETS: usize = 256 << 10;

/// `[` and `{` nested deeper than this are refused before parsing (the
/// YAML parser's cost grows with the square of the depth, and neither
/// parser accepts more than about 128 levels anyway).
pub const MAX_NESTING: usize = 128;

/// Parse and validate. `Ok` carries the warnings; `Err` carries the
/// diagnostics (errors first, then warnings), at most
/// [`super::diag::MAX_DIAGNOSTICS`] of them and a line counting the rest.
pub fn load_str(text: &str, format: Format) -> Loaded {
    match load_uncapped(text, format) {
        Ok((plan, warnings)) => Ok((plan, cap(warnings))),
        Err(diags) => Err(cap(diags)),
    }
}

fn load_uncapped(text: &str, format: Format) -> Loaded {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.len() > MAX_PLAN_BYTES {
        return Err(vec![too_big(text.len())]);
    }
    if let Some((pos, deep)) = too_deep(text) {
        let msg = if deep {
            format!(
                "`[` and `{{` are nested more than {MAX_NESTING} deep here: no plan is that deep"
            )
        } else {
            format!("the plan has more than {MAX_BRACKETS} `[` and `{{`: no plan is that big")
        };
        return Err(vec![Diagnostic::error(msg).at(Some(pos))]);
    }
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

fn too_big(len: usize) -> Diagnostic {
    let shown = if len > MAX_PLAN_BYTES + 1 {
        format!("{len} bytes")
    } else {
        "more".to_string()
    };
    Diagnostic::error(format!(
        "the plan file is too big ({shown}; the limit is {} MiB): is it the right file?",
        MAX_PLAN_BYTES >> 20
    ))
}

/// Where `[`/`{` first nest deeper than [`MAX_NESTING`] (with `true`), or
/// the one past [`MAX_BRACKETS`] (with `false`). Every bracket in the text
/// counts, those in strings too: a crude count that only errs towards
/// more, and no real plan comes near either limit.
pub(crate) fn too_deep(text: &str) -> Option<((usize, usize), bool)> {
    let mut depth = 0usize;
    let mut count = 0usize;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                count += 1;
                if depth > MAX_NESTING || count > MAX_BRACKETS {
                    return Some((locate::line_col(text, i), depth > MAX_NESTING));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// [`load_str`] on a file whose format is given by its extension.
pub fn load_file(path: &Path) -> Loaded {
    let Some(format) = Format::from_path(path) else {
        return Err(vec![Diagnostic::error(format!(
            "cannot tell the format of `{}`: a plan file must end in .toml, .yaml or .yml",
            path.display()
        ))]);
    };
    let cannot = |e: String| {
        vec![Diagnostic::error(format!(
            "cannot read plan file `{}`: {e}",
            path.display()
        ))]
    };
    // Opened without blocking and looked at before it is read: a FIFO
    // would wait for a writer forever, a device never end (/dev/zero), and
    // a directory is no plan. Never more than the limit is read.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| cannot(e.to_string()))?;
    let kind = file
        .metadata()
        .map_err(|e| cannot(e.to_string()))?
        .file_type();
    if !kind.is_file() {
        return Err(vec![Diagnostic::error(format!(
            "`{}` is not a plan file but {}: give the path of a regular file",
            path.display(),
            file_kind(&kind)
        ))]);
    }
    let mut bytes = Vec::new();
    file.take(MAX_PLAN_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot(e.to_string()))?;
    if bytes.len() > MAX_PLAN_BYTES {
        return Err(vec![too_big(bytes.len())]);
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| cannot("stream did not contain valid UTF-8".into()))?;
    load_str(&text, format)
}

/// What a path that is not a regular file is, in words.
fn file_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "something other than a regular file"
    }
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

/// One diagnostic per unknown key, in the order they are written. The
/// parser located only the first one it met; the others are found by
/// searching the text, all in one pass (only the first
/// [`super::diag::MAX_DIAGNOSTICS`] that pass misses are searched for one
/// by one: the rest are cut by [`cap`] anyway).
fn unknown_key_diags(text: &str, unknown: &[UnknownKey], parser: &Diagnostic) -> Vec<Diagnostic> {
    let mut parser_pos = parser.line.zip(parser.col);
    let names: Vec<&str> = unknown.iter().map(|u| u.key.as_str()).collect();
    let first = locate::first_keys(text, &names);
    let mut searched = 0;
    let mut diags: Vec<Diagnostic> = unknown
        .iter()
        .map(|u| {
            let d = Diagnostic::error(u.message());
            let pos = if parser.message.contains(&format!("unknown key `{}`", u.key)) {
                parser_pos.take()
            } else {
                None
            };
            let pos = pos.or_else(|| first.get(u.key.as_str()).copied());
            let pos = pos.or_else(|| {
                searched += 1;
                (searched <= super::diag::MAX_DIAGNOSTICS)
                    .then(|| locate::key(text, &u.key))
                    .flatten()
            });
            d.at(pos)
        })
        .collect();
    // Stable: keys found at the same place keep their tree order.
    diags.sort_by_key(|d| (d.line.is_none(), d.line, d.col));
    diags
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
