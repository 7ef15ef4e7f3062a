//! Best-effort source locations for problems the parser cannot see (bad
//! ids, cycles, …). Searching the text is crude but works for both formats
//! without a span-preserving parser, and a wrong guess only costs a line
//! number, never a missed error.

use std::collections::HashMap;

/// 1-based (line, column) of a byte offset; the column counts characters.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut off = offset.min(text.len());
    while !text.is_char_boundary(off) {
        off -= 1;
    }
    let before = &text[..off];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A parser's position brought inside the text: an error "at the end of
/// the stream" is reported on the last line, just after its last character,
/// not on a line the file does not have.
pub fn clamp(text: &str, (line, col): (usize, usize)) -> (usize, usize) {
    let last = text.split('\n').count();
    if line == 0 {
        (1, 1)
    } else if line > last {
        line_col(text, text.len())
    } else {
        (line, col.max(1))
    }
}

/// Lines without their terminators, so CRLF files behave like LF ones.
fn lines(source: &str) -> impl Iterator<Item = (usize, &str)> {
    source
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

fn col(line: &str, byte: usize) -> usize {
    line[..byte].chars().count() + 1
}

fn is_key_boundary(c: char) -> bool {
    c.is_whitespace() || matches!(c, '{' | ',' | '-' | '"' | '\'')
}

/// Where `key` starts in `line` if the line assigns it (`key =`, `key:`,
/// also quoted keys and inline tables); returns the byte offset of the key
/// and the rest of the line after the `=`/`:`.
fn assignments<'a>(line: &'a str, key: &'a str) -> impl Iterator<Item = (usize, &'a str)> + 'a {
    line.match_indices(key).filter_map(move |(i, _)| {
        let before_ok = line[..i].chars().next_back().is_none_or(is_key_boundary);
        let mut rest = &line[i + key.len()..];
        rest = rest.strip_prefix(['"', '\'']).unwrap_or(rest).trim_start();
        let rest = rest.strip_prefix(['=', ':'])?;
        // Leading quote of a quoted key belongs to the key's location.
        let start = if i > 0 && line[..i].ends_with(['"', '\'']) {
            i - 1
        } else {
            i
        };
        before_ok.then_some((start, rest.trim_start()))
    })
}

/// Does `rest` (the text after `=`/`:`) start with the scalar `value`?
fn value_matches(rest: &str, value: &str) -> bool {
    for q in ['"', '\''] {
        if let Some(r) = rest.strip_prefix(q) {
            return r.strip_prefix(value).is_some_and(|r| r.starts_with(q));
        }
    }
    rest.strip_prefix(value).is_some_and(|r| {
        r.is_empty() || r.starts_with(|c: char| c.is_whitespace() || matches!(c, ',' | '}' | '#'))
    })
}

fn key_values<'a>(
    source: &'a str,
    key: &'a str,
    value: &'a str,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    lines(source).flat_map(move |(n, line)| {
        assignments(line, key)
            .filter(|(_, rest)| value_matches(rest, value))
            .map(|(b, _)| (n, col(line, b)))
            .collect::<Vec<_>>()
    })
}

/// The `nth` (0-based) place where `key` is set to `value`.
pub fn key_value(source: &str, key: &str, value: &str, nth: usize) -> Option<(usize, usize)> {
    key_values(source, key, value).nth(nth)
}

/// Every place where some keys are set, found in one pass over the source,
/// so that looking up the n-th place of a value costs nothing per object:
/// finding the definition of each of 10,000 tasks with [`key_value`] reads
/// the whole file 10,000 times.
pub struct Sites<'a> {
    source: &'a str,
    found: HashMap<(&'a str, &'a str), Vec<(usize, usize)>>,
}

impl<'a> Sites<'a> {
    pub fn new(source: &'a str, keys: &[&'a str]) -> Sites<'a> {
        let mut found: HashMap<(&str, &str), Vec<(usize, usize)>> = HashMap::new();
        for (n, line) in lines(source) {
            for &key in keys {
                for (b, rest) in assignments(line, key) {
                    found
                        .entry((key, scalar(rest)))
                        .or_default()
                        .push((n, col(line, b)));
                }
            }
        }
        Sites { source, found }
    }

    /// Same as [`key_value`] for a key given to [`Sites::new`].
    pub fn key_value(&self, key: &str, value: &str, nth: usize) -> Option<(usize, usize)> {
        if value.contains(|c: char| c.is_whitespace() || matches!(c, ',' | '}' | '#' | '"' | '\''))
        {
            // Not a single token: [`scalar`] cannot have isolated it.
            return key_value(self.source, key, value, nth);
        }
        self.found.get(&(key, value))?.get(nth).copied()
    }
}

/// The value at the start of `rest` as [`value_matches`] would match it: a
/// quoted string's content, else the text up to a space, `,`, `}` or `#`.
fn scalar(rest: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(r) = rest.strip_prefix(q) {
            return r.find(q).map_or("\0", |end| &r[..end]);
        }
    }
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, ',' | '}' | '#'))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The first place at or after `from_line` where `key` is set to `value`,
/// else the first anywhere (YAML keys may come in any order).
pub fn key_value_near(
    source: &str,
    key: &str,
    value: &str,
    from_line: usize,
) -> Option<(usize, usize)> {
    near(key_values(source, key, value), from_line)
}

/// The first place where `key` is set, whatever its value.
pub fn key(source: &str, key: &str) -> Option<(usize, usize)> {
    lines(source).find_map(|(n, line)| {
        assignments(line, key)
            .next()
            .map(|(b, _)| (n, col(line, b)))
    })
}

/// The first place at or after `from_line` where `key` is set, else the first.
pub fn key_near(source: &str, key: &str, from_line: usize) -> Option<(usize, usize)> {
    let found = lines(source).filter_map(|(n, line)| {
        assignments(line, key)
            .next()
            .map(|(b, _)| (n, col(line, b)))
    });
    near(found, from_line)
}

/// The first place where `needle` appears (a table header's name, `agents.x`).
pub fn text(source: &str, needle: &str) -> Option<(usize, usize)> {
    lines(source).find_map(|(n, line)| line.find(needle).map(|b| (n, col(line, b))))
}

/// The first place where each of `keys` is set, found in one pass: [`key`]
/// for each of 100,000 unknown keys would read the file 100,000 times.
/// Finds what [`key`] finds for keys written at the start of a line (or of
/// a YAML list item); others are left for [`key`] to search.
pub fn first_keys<'a>(source: &str, keys: &[&'a str]) -> HashMap<&'a str, (usize, usize)> {
    let wanted: HashMap<&str, &'a str> = keys.iter().map(|k| (*k, *k)).collect();
    let mut found: HashMap<&'a str, (usize, usize)> = HashMap::new();
    for (n, line) in lines(source) {
        let body = line.trim_start();
        let body = body.strip_prefix("- ").map_or(body, str::trim_start);
        let start = line.len() - body.len();
        let quoted = body.starts_with(['"', '\'']);
        let name_start = usize::from(quoted);
        let end = body[name_start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
            .map_or(body.len(), |e| e + name_start);
        let Some(&key) = wanted.get(&body[name_start..end]) else {
            continue;
        };
        if found.contains_key(key) {
            continue;
        }
        // The same test as [`key`]: an assignment of this key on this line,
        // and the first one on it, so both agree.
        if let Some((b, _)) = assignments(line, key).next() {
            if b == start {
                found.insert(key, (n, col(line, b)));
            }
        }
    }
    found
}

/// The first place at or after `from_line` where the string `value`
/// appears as a list item or a quoted string (globs, dependency names).
pub fn item_near(source: &str, value: &str, from_line: usize) -> Option<(usize, usize)> {
    let quoted = [format!("\"{value}\""), format!("'{value}'")];
    let found = lines(source).filter_map(|(n, line)| {
        if let Some(b) = quoted.iter().find_map(|q| line.find(q.as_str())) {
            return Some((n, col(line, b)));
        }
        let rest = line.trim_start().strip_prefix('-')?.trim_start();
        value_matches(rest, value).then(|| (n, col(line, line.len() - rest.len())))
    });
    near(found, from_line)
}

fn near(
    mut found: impl Iterator<Item = (usize, usize)>,
    from_line: usize,
) -> Option<(usize, usize)> {
    let first = found.next()?;
    if first.0 >= from_line {
        return Some(first);
    }
    Some(found.find(|p| p.0 >= from_line).unwrap_or(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_to_positions() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab\r\ncd", 5), (2, 2));
        assert_eq!(line_col("é\nx", 99), (2, 2));
        assert_eq!(clamp("{a", (2, 1)), (1, 3));
        assert_eq!(clamp("a\n", (3, 1)), (2, 1));
        assert_eq!(clamp("a\nb", (2, 0)), (2, 1));
    }

    #[test]
    fn sites_agree_with_key_value() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/fuzz/plan");
        let mut texts: Vec<String> = std::fs::read_dir(dir)
            .expect("seed corpus")
            .map(|e| std::fs::read_to_string(e.expect("entry").path()).unwrap_or_default())
            .collect();
        texts.push(
            "id = 'a b'\nid = \"a\"\nid = a b\n- { id: a, name: \"\" }\nid = \"x\"y\"\n".into(),
        );
        for text in &texts {
            let sites = Sites::new(text, &["id", "name"]);
            let values = [
                "a", "a b", "", "x", "x\"y", "unit", "schema", "t1", "setup", "zz",
            ];
            for key in ["id", "name"] {
                for value in values {
                    for nth in 0..3 {
                        assert_eq!(
                            sites.key_value(key, value, nth),
                            key_value(text, key, value, nth),
                            "{key} {value:?} {nth} in {text}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn first_keys_agree_with_key() {
        let text =
            "name = 'p'\nfils = 1\n  \"quoted\" = 2\n- item: 3\nx.y = 4\nitem: 5\nfils = 6\n";
        let keys = ["fils", "quoted", "item", "x", "name", "gone"];
        let found = first_keys(text, &keys);
        for k in keys {
            if let Some(pos) = found.get(k) {
                assert_eq!(Some(*pos), key(text, k), "{k}");
            }
        }
        assert_eq!(found.get("fils"), Some(&(2, 1)));
        assert_eq!(found.get("item"), Some(&(4, 3)));
        assert_eq!(found.get("quoted"), Some(&(3, 3)));
        assert!(!found.contains_key("gone"));
    }

    #[test]
    fn finds_assignments_in_both_formats() {
        let toml = "name = \"p\"\n[[phases]]\nid = \"a\"\n  [[phases.tasks]]\n  id = 'a'\n";
        assert_eq!(key_value(toml, "id", "a", 0), Some((3, 1)));
        assert_eq!(key_value(toml, "id", "a", 1), Some((5, 3)));
        assert_eq!(key_value(toml, "id", "b", 0), None);
        let yaml = "name: p\nphases:\n  - id: a\n    tasks:\n      - { id: b, files: [x] }\n";
        assert_eq!(key_value(yaml, "id", "a", 0), Some((3, 5)));
        assert_eq!(key_value(yaml, "id", "b", 0), Some((5, 11)));
        assert_eq!(key(yaml, "tasks"), Some((4, 5)));
        assert_eq!(item_near("files:\n  - src/**\n", "src/**", 0), Some((2, 5)));
        assert_eq!(
            item_near("files = [\"src/**\"]\n", "src/**", 0),
            Some((1, 10))
        );
        assert_eq!(item_near("a = 'x'\nb = 'x'\n", "x", 2), Some((2, 5)));
        assert_eq!(
            key_value_near("t = '1'\nt = '1'\n", "t", "1", 9),
            Some((1, 1))
        );
    }
}
