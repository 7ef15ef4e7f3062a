//! Write scopes: the `files` globs a task declares. The scheduler uses
//! [`scopes_may_overlap`] to keep tasks that might write the same path from
//! running at once, and [`Scope::matches`] to catch scope violations.
//!
//! Globs use globset with `literal_separator(true)`: `*`, `?` and classes
//! stay within one path segment, `**` spans any number of segments, and
//! `{a,b}` alternatives are supported.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// A compiled set of `files` globs.
#[derive(Debug, Clone)]
pub struct Scope {
    set: GlobSet,
}

impl Scope {
    pub fn new(globs: &[String]) -> Result<Scope, String> {
        let mut builder = GlobSetBuilder::new();
        for g in globs {
            builder.add(check_glob(g)?);
        }
        let set = builder.build().map_err(|e| format!("invalid globs: {e}"))?;
        Ok(Scope { set })
    }

    /// Does `path` (relative to the repository root, `/`-separated) fall in the scope?
    pub fn matches(&self, path: &str) -> bool {
        self.set.is_match(path)
    }
}

fn compile(glob: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(glob).literal_separator(true).build()
}

/// Compile one `files`/`reads` glob, rejecting the ones that could never
/// match a repository path (absolute, `..`, `./`, trailing `/`).
pub fn check_glob(glob: &str) -> Result<Glob, String> {
    if glob.is_empty() {
        return Err("empty glob".into());
    }
    if glob.starts_with('/') {
        return Err(format!(
            "glob `{glob}` is absolute; write it relative to the repository root"
        ));
    }
    if glob.split('/').any(|s| s == "..") {
        return Err(format!(
            "glob `{glob}` contains `..`; a scope must stay inside the repository"
        ));
    }
    if glob.split('/').any(|s| s == ".") {
        return Err(format!(
            "glob `{glob}` contains a `.` component; write paths without `./`"
        ));
    }
    if glob.ends_with('/') {
        return Err(format!(
            "glob `{glob}` ends with `/` and matches no file; write `{glob}**` for everything under it"
        ));
    }
    compile(glob).map_err(|e| format!("invalid glob `{glob}`: {}", e.kind()))
}

/// Can some path match a glob of `a` and a glob of `b`?
///
/// This is conservative: it answers `false` only when no path can match
/// both, so a `true` may be a false alarm (two tasks that could have run in
/// parallel run one after the other) but a `false` is never wrong. A task
/// with no `files` may write anywhere, so an empty scope overlaps everything.
///
/// Each glob is brace-expanded into plain alternatives and split into
/// `/`-separated segments. Two alternatives are compared segment by segment,
/// from the front and from the back, stopping at the first `**` on either
/// side (it can stand for any number of segments, so beyond it segments no
/// longer line up). Two segments:
/// - both literal: disjoint if they differ;
/// - one literal: disjoint if the other's glob does not match it;
/// - both with wildcards: disjoint if their literal prefixes (text before the
///   first wildcard) are incompatible, i.e. neither is a prefix of the other,
///   or likewise their literal suffixes (text after the last wildcard).
///
/// Without `**` the segment counts must be equal; with `**` on one side only,
/// the other side needs at least as many segments as the first has besides
/// `**`. Any construct the analysis does not model (a character class that
/// could match `/`, huge brace expansions, an invalid glob) counts as overlap.
pub fn scopes_may_overlap(a: &[String], b: &[String]) -> bool {
    if a.is_empty() || b.is_empty() {
        return true;
    }
    a.iter().any(|x| b.iter().any(|y| globs_may_overlap(x, y)))
}

fn globs_may_overlap(a: &str, b: &str) -> bool {
    if compile(a).is_err() || compile(b).is_err() {
        return true;
    }
    let (Some(xs), Some(ys)) = (expand_braces(a), expand_braces(b)) else {
        return true;
    };
    xs.iter()
        .any(|x| ys.iter().any(|y| patterns_may_overlap(x, y)))
}

fn patterns_may_overlap(a: &str, b: &str) -> bool {
    if class_may_match_separator(a) || class_may_match_separator(b) {
        return true;
    }
    let sa: Vec<&str> = a.split('/').collect();
    let sb: Vec<&str> = b.split('/').collect();
    let lined_up = |x: &&str, y: &&str| *x != "**" && *y != "**";
    let front = sa.iter().zip(&sb).take_while(|(x, y)| lined_up(x, y));
    let back = sa
        .iter()
        .rev()
        .zip(sb.iter().rev())
        .take_while(|(x, y)| lined_up(x, y));
    if front.chain(back).any(|(x, y)| !segments_may_overlap(x, y)) {
        return false;
    }
    let fixed = |s: &[&str]| s.iter().filter(|s| **s != "**").count();
    let (ra, rb) = (sa.contains(&"**"), sb.contains(&"**"));
    match (ra, rb) {
        (false, false) => sa.len() == sb.len(),
        (true, false) => sb.len() >= fixed(&sa),
        (false, true) => sa.len() >= fixed(&sb),
        (true, true) => true,
    }
}

const SPECIAL: &[char] = &['*', '?', '[', ']', '\\', '{', '}'];

fn segments_may_overlap(x: &str, y: &str) -> bool {
    let (wx, wy) = (x.contains(SPECIAL), y.contains(SPECIAL));
    match (wx, wy) {
        (false, false) => x == y,
        (true, false) => compile(x).map_or(true, |g| g.compile_matcher().is_match(y)),
        (false, true) => compile(y).map_or(true, |g| g.compile_matcher().is_match(x)),
        (true, true) => {
            let (px, py) = (literal_prefix(x), literal_prefix(y));
            let (sx, sy) = (literal_suffix(x), literal_suffix(y));
            (px.starts_with(py) || py.starts_with(px)) && (sx.ends_with(sy) || sy.ends_with(sx))
        }
    }
}

/// The literal text before the first wildcard.
fn literal_prefix(s: &str) -> &str {
    &s[..s.find(SPECIAL).unwrap_or(s.len())]
}

/// The literal text after the last wildcard (or class end).
fn literal_suffix(s: &str) -> &str {
    &s[s.rfind(SPECIAL).map_or(0, |i| i + 1)..]
}

/// Classes are matched as written, not as segments: a negated class, a
/// range, or one naming `/` may match the separator, which the segment
/// analysis cannot model.
fn class_may_match_separator(p: &str) -> bool {
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' => {
                let body: String = chars.clone().take_while(|&c| c != ']').collect();
                if body.is_empty() || body.contains(['/', '!', '^', '-']) {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// The `sparse-checkout` patterns that materialise at least what `globs`
/// match: each glob with its `{…}` alternatives spelled out, since
/// sparse-checkout knows no braces. `None` when some glob cannot be put
/// that way (too many alternatives, a trailing space that gitignore syntax
/// would drop): the caller checks out everything instead.
pub fn sparse_patterns(globs: &[String]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for glob in globs {
        for alt in expand_braces(glob)? {
            if alt.is_empty() || alt.ends_with(' ') {
                return None;
            }
            if !out.contains(&alt) {
                out.push(alt);
            }
        }
    }
    Some(out)
}

/// All alternatives of `{…}` groups (nested too). `None` when there would be
/// too many to compare, so the caller can give the conservative answer.
fn expand_braces(p: &str) -> Option<Vec<String>> {
    const LIMIT: usize = 256;
    let Some((open, close)) = first_group(p) else {
        return Some(vec![p.to_string()]);
    };
    let (head, body, tail) = (&p[..open], &p[open + 1..close], &p[close + 1..]);
    let mut out = Vec::new();
    for alt in split_top_level(body) {
        for rest in expand_braces(&format!("{head}{alt}{tail}"))? {
            out.push(rest);
            if out.len() > LIMIT {
                return None;
            }
        }
    }
    Some(out)
}

/// Byte offsets of the first top-level `{` and its matching `}`, skipping
/// escapes and character classes where braces are literal.
fn first_group(p: &str) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    let mut open = None;
    let mut iter = p.char_indices();
    while let Some((i, c)) = iter.next() {
        match c {
            '\\' => {
                iter.next();
            }
            '[' => {
                for (_, c) in iter.by_ref() {
                    if c == ']' {
                        break;
                    }
                }
            }
            '{' => {
                if depth == 0 {
                    open = Some(i);
                }
                depth += 1;
            }
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return open.map(|o| (o, i));
                }
            }
            _ => {}
        }
    }
    None
}

fn split_top_level(body: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    let mut iter = body.char_indices();
    while let Some((i, c)) = iter.next() {
        match c {
            '\\' => {
                iter.next();
            }
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn overlap(a: &str, b: &str) -> bool {
        let r = scopes_may_overlap(&[a.to_string()], &[b.to_string()]);
        assert_eq!(
            r,
            scopes_may_overlap(&[b.to_string()], &[a.to_string()]),
            "symmetry {a} {b}"
        );
        r
    }

    #[test]
    fn obvious_cases() {
        assert!(!overlap("src/db/**", "src/api/**"));
        assert!(overlap("src/**", "src/db/x.rs"));
        assert!(!overlap("*.rs", "src/*.rs"));
        assert!(overlap("src/*.rs", "src/main.rs"));
        assert!(overlap("src/{a,b}/**", "src/b/x"));
        assert!(!overlap("src/{a,b}/**", "src/c/x"));
        assert!(!overlap("**/*.rs", "docs/*.md"));
        assert!(overlap("**/*.rs", "main.rs"));
        assert!(overlap("a/**/b", "a/b"));
        assert!(!overlap("a/**/b/c", "a/c"));
        assert!(!overlap("src/m*x.rs", "src/main.rs"));
        assert!(overlap("src/ma*", "src/m*n.rs"));
        assert!(!overlap("src/a*", "src/b*"));
        assert!(overlap("**", "anything/at/all"));
        assert!(overlap("a/[!x]", "a/b"));
    }

    #[test]
    fn sparse_patterns_spell_out_braces() {
        let globs = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            sparse_patterns(&globs(&["{a,b}/**", "src/{x,y/{p,q}}.rs", "a/**"])),
            Some(globs(&[
                "a/**",
                "b/**",
                "src/x.rs",
                "src/y/p.rs",
                "src/y/q.rs"
            ]))
        );
        assert_eq!(sparse_patterns(&globs(&["[{]x"])), Some(globs(&["[{]x"])));
        let huge = "{a,b,c,d}{a,b,c,d}{a,b,c,d}{a,b,c,d}{a,b,c,d}".to_string();
        assert_eq!(sparse_patterns(&[huge]), None);
        assert_eq!(sparse_patterns(&globs(&["x "])), None);
    }

    #[test]
    fn empty_scope_overlaps_everything() {
        assert!(scopes_may_overlap(&[], &["src/**".to_string()]));
        assert!(scopes_may_overlap(&["x".to_string()], &[]));
    }

    #[test]
    fn scope_matching() {
        let s = Scope::new(&["src/*.rs".into(), "docs/**".into()]).expect("valid globs");
        assert!(s.matches("src/main.rs"));
        assert!(!s.matches("src/sub/main.rs"));
        assert!(s.matches("docs/a/b.md"));
        for bad in ["/abs/**", "a/../b", "./src/**", "src/", ""] {
            assert!(Scope::new(&[bad.to_string()]).is_err(), "{bad}");
        }
        assert!(Scope::new(&["{a,b".to_string()]).is_err());
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            1 => Just("**".to_string()),
            6 => prop::collection::vec(
                prop::sample::select(vec!["a", "b", "ab", "*", "?", "[ab]", "{a,b}", "{a,}", "[!a]", "a*b"]),
                1..4
            )
            .prop_map(|t| t.concat()),
        ]
    }

    fn glob() -> impl Strategy<Value = String> {
        prop::collection::vec(segment(), 1..4).prop_map(|s| s.join("/"))
    }

    /// Every path of 1-4 segments over a two-letter alphabet: small enough
    /// to test exhaustively, rich enough to hit every kind of segment.
    fn all_paths() -> Vec<String> {
        let segs = ["a", "b", "aa", "ab", "ba", "bb"];
        let mut out: Vec<String> = segs.iter().map(|s| s.to_string()).collect();
        let mut last = out.clone();
        for _ in 1..4 {
            last = last
                .iter()
                .flat_map(|p| segs.iter().map(move |s| format!("{p}/{s}")))
                .collect();
            out.extend(last.iter().cloned());
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn never_says_disjoint_when_a_path_matches_both(a in glob(), b in glob()) {
            let (Ok(ga), Ok(gb)) = (compile(&a), compile(&b)) else {
                return Ok(());
            };
            let (ma, mb) = (ga.compile_matcher(), gb.compile_matcher());
            if overlap(&a, &b) {
                return Ok(());
            }
            for p in all_paths() {
                prop_assert!(!(ma.is_match(&p) && mb.is_match(&p)), "{} and {} both match {}", a, b, p);
            }
        }
    }
}
