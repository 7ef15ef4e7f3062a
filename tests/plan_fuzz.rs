//! The stable-toolchain fuzzer of plan parsing and validation, run by
//! `cargo test` (the libFuzzer target in fuzz/ goes deeper, see
//! scripts/fuzz.sh). Inputs are arbitrary text, the seed corpus with random
//! mutations, and structured near-valid plans (valid and hostile ids,
//! globs, dependencies, durations) rendered as TOML and YAML and then
//! mutated. For every input, in both formats:
//! - parsing and validation never panic;
//! - a rejected plan has at least one error, every message is one line, and
//!   every location lies inside the file;
//! - an accepted plan validates again without its source text (as it does
//!   when read back from the state branch) and round-trips through JSON to
//!   an equal plan;
//! - a structured plan parses back to exactly itself, and validating its
//!   text finds the same problems as validating the plan alone.

use git_orch::plan::{load_str, validate, Defaults, Diagnostic, Format, Gate, Phase, Plan, Task};
use proptest::prelude::*;

fn check(text: &str, format: Format) -> Result<Option<Plan>, TestCaseError> {
    let lines = text.split('\n').count();
    match load_str(text, format) {
        Ok((plan, warnings)) => {
            prop_assert!(warnings.iter().all(|d| !d.is_error()), "Ok with an error");
            let again = validate(&plan, None);
            prop_assert!(
                again.iter().all(|d| !d.is_error()),
                "valid with its text, invalid without: {:?}",
                again
            );
            let json = serde_json::to_string(&plan).expect("a plan serialises");
            let back: Plan = serde_json::from_str(&json).expect("a plan reads back");
            prop_assert_eq!(&back, &plan);
            Ok(Some(plan))
        }
        Err(diags) => {
            prop_assert!(diags.iter().any(Diagnostic::is_error), "Err with no error");
            for d in &diags {
                prop_assert!(!d.message.contains('\n'), "two-line message: {:?}", d);
                if let Some(line) = d.line {
                    prop_assert!(line >= 1 && line <= lines, "line {} of {}", line, lines);
                    prop_assert!(d.col.is_some_and(|c| c >= 1), "bad column: {:?}", d);
                }
                let _ = d.render("plan.toml");
            }
            Ok(None)
        }
    }
}

fn check_both(text: &str) -> Result<(), TestCaseError> {
    check(text, Format::Toml)?;
    check(text, Format::Yaml)?;
    Ok(())
}

fn seeds() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/fuzz/plan");
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .expect("seed corpus")
        .map(|e| e.expect("dir entry").path())
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).expect("read seed")).into_owned())
        .collect();
    out.sort();
    assert!(out.len() >= 20, "seed corpus is missing");
    out
}

const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    ":",
    ",",
    "\"",
    "'",
    "#",
    "- ",
    "\n",
    "\r\n",
    "\t",
    "  ",
    "\u{feff}",
    "\0",
    "é",
    "[[phases]]\nid = \"x\"\n",
    "[[phases.tasks]]\nid = \"y\"\n",
    "depends_on = [\"a\"]\n",
    "files = [\"**\"]\n",
    "- id: z\n",
    "&a ",
    "*a",
    "!!str ",
    "<<: ",
    "..",
    "/",
    ".lock",
    "start",
    "1h",
    "0",
    "-1",
    "true",
    "null",
    "~",
];

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, usize),
    Delete(usize, usize),
    DupLine(usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, t)| Edit::Insert(at, t)),
        (any::<usize>(), 1usize..12).prop_map(|(at, n)| Edit::Delete(at, n)),
        any::<usize>().prop_map(Edit::DupLine),
    ];
    prop::collection::vec(edit, 0..6)
}

fn boundary(text: &str, at: usize) -> usize {
    let mut at = if text.is_empty() {
        0
    } else {
        at % (text.len() + 1)
    };
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut s = text.to_string();
    for e in edits {
        match *e {
            Edit::Insert(at, t) => {
                let at = boundary(&s, at);
                s.insert_str(at, TOKENS[t]);
            }
            Edit::Delete(at, n) => {
                let from = boundary(&s, at);
                let to = boundary(&s, from.saturating_add(n).min(s.len()));
                s.replace_range(from..to.max(from), "");
            }
            Edit::DupLine(at) => {
                let lines: Vec<&str> = s.split('\n').collect();
                let i = at % lines.len();
                let mut out: Vec<&str> = lines[..=i].to_vec();
                out.extend(&lines[i..]);
                s = out.join("\n");
            }
        }
    }
    s
}

// Structured plans: mostly valid pieces, with hostile ones mixed in.

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec!["a", "b", "c", "t1", "t2", "x.y", "a-b", "s_3", "start"])
            .prop_map(String::from),
        1 => prop::sample::select(vec![
            "", "..", "a..b", "a/b", "/abs", "-x", "x.", "x.lock", "@{-1}", "a~1", "a^", "a:b",
            "a b", "a\nb", "\u{1b}[31m", "é", "HEAD", "refs/heads/x",
        ])
        .prop_map(String::from),
        1 => "[A-Za-z0-9][A-Za-z0-9._-]{0,70}",
    ]
}

fn glob() -> impl Strategy<Value = String> {
    let seg = prop::sample::select(vec![
        "src",
        "a",
        "b",
        "*",
        "**",
        "*.rs",
        "{a,b}",
        "[ab]",
        "?",
        "x{y,{z,w}}",
        "..",
        ".",
        "",
        "[!a]",
        "\\*",
    ]);
    prop::collection::vec(seg, 1..4).prop_map(|s| s.join("/"))
}

fn duration() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.3,
        prop::sample::select(vec![
            "30s",
            "45m",
            "2h",
            "1h30m",
            "0s",
            "5",
            "-1m",
            "",
            "1d",
            "99999999999999999999h",
        ])
        .prop_map(String::from),
    )
}

fn text() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.3,
        prop_oneof![
            "[ -~]{0,20}",
            Just(" ".to_string()),
            Just("é\t\"'\\".into())
        ],
    )
}

fn task() -> impl Strategy<Value = Task> {
    (
        id(),
        text(),
        text(),
        prop::collection::vec(glob(), 0..3),
        prop::collection::vec(glob(), 0..2),
        prop::collection::vec(id(), 0..3),
        duration(),
        duration(),
        prop::bool::weighted(0.1),
        prop::option::of(prop::bool::ANY),
        prop::option::of(prop::bool::ANY),
    )
        .prop_map(
            |(
                id,
                title,
                run,
                files,
                reads,
                depends_on,
                estimate,
                timeout,
                skip,
                sandbox,
                network,
            )| Task {
                id,
                title,
                run,
                files,
                reads,
                depends_on,
                estimate,
                timeout,
                skip,
                isolation: sandbox.map(|s| {
                    if s {
                        git_orch::plan::Isolation::Sandbox
                    } else {
                        git_orch::plan::Isolation::None
                    }
                }),
                network,
                ..Task::default()
            },
        )
}

fn gate() -> impl Strategy<Value = Gate> {
    (id(), "[ -~]{0,10}", duration()).prop_map(|(name, run, timeout)| Gate { name, run, timeout })
}

fn plan() -> impl Strategy<Value = Plan> {
    let phase = (
        id(),
        text(),
        prop::collection::vec(gate(), 0..2),
        prop::collection::vec(task(), 0..4),
    )
        .prop_map(|(id, title, gates, tasks)| Phase {
            id,
            title,
            gates,
            tasks,
            review: None,
            on_gate_failure: None,
            on_conflict: None,
            on_failure: None,
        });
    (
        id(),
        text(),
        text(),
        text(),
        duration(),
        prop::option::of(0usize..5),
        prop::collection::vec(gate(), 0..2),
        prop::collection::vec(phase, 0..4),
    )
        .prop_map(
            |(name, title, base, run, timeout, parallel, gates, phases)| Plan {
                name,
                title,
                base,
                defaults: Defaults {
                    run,
                    timeout,
                    parallel,
                    ..Defaults::default()
                },
                gates,
                phases,
                notify: Vec::new(),
                agents: Default::default(),
                worktrees: Default::default(),
            },
        )
}

fn messages(diags: &[Diagnostic]) -> Vec<(bool, String)> {
    let mut m: Vec<_> = diags
        .iter()
        .map(|d| (d.is_error(), d.message.clone()))
        .collect();
    m.sort();
    m
}

/// A plan rendered as text parses back to itself, and its text changes
/// nothing but the locations of the problems found.
fn structured(plan: &Plan, text: &str, format: Format) -> Result<(), TestCaseError> {
    let alone = validate(plan, None);
    match load_str(text, format) {
        Ok((back, warnings)) => {
            prop_assert_eq!(&back, plan);
            prop_assert_eq!(messages(&warnings), messages(&alone));
        }
        Err(diags) => {
            // Rejected by the parser itself (an empty file) or by validation.
            if alone.iter().any(Diagnostic::is_error) {
                prop_assert_eq!(messages(&diags), messages(&alone));
            } else {
                prop_assert!(
                    plan.name.is_empty() || plan.phases.is_empty(),
                    "valid plan rejected from text: {:?}",
                    diags
                );
            }
        }
    }
    check(text, format)?;
    Ok(())
}

/// `PROPTEST_CASES` for a longer run, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(400)))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check_both(&text)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        check_both(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn mutated_seeds_never_panic(seed in any::<prop::sample::Index>(), edits in edits()) {
        let seeds = seeds();
        let text = mutate(&seeds[seed.index(seeds.len())], &edits);
        check_both(&text)?;
    }

    #[test]
    fn structured_plans_round_trip_and_mutations_never_panic(plan in plan(), edits in edits()) {
        let toml_text = toml::to_string(&plan).expect("any plan renders as TOML");
        structured(&plan, &toml_text, Format::Toml)?;
        let yaml_text = serde_yaml::to_string(&plan).expect("any plan renders as YAML");
        structured(&plan, &yaml_text, Format::Yaml)?;
        check(&mutate(&toml_text, &edits), Format::Toml)?;
        check(&mutate(&yaml_text, &edits), Format::Yaml)?;
    }
}

#[test]
fn every_seed_parses_without_panic() {
    for text in seeds() {
        check_both(&text).expect("seed");
    }
}

/// Deep nesting is refused by the parsers' own limits, not a stack overflow.
#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let depth = 20_000;
    let toml_text = format!("name = {}{}", "[".repeat(depth), "]".repeat(depth));
    let yaml_text = format!("name: {}{}", "[".repeat(depth), "]".repeat(depth));
    let yaml_block: String = (0..5000)
        .map(|i| format!("{}- \n", "  ".repeat(i)))
        .collect();
    for (text, format) in [
        (&toml_text, Format::Toml),
        (&yaml_text, Format::Yaml),
        (&yaml_block, Format::Yaml),
    ] {
        assert!(load_str(text, format).is_err());
    }
}

/// Validation walks dependencies without recursion deep enough to overflow
/// the stack of a test thread (2 MiB), on a 10,000-task chain and cycle.
#[test]
fn deep_dependency_chains_validate() {
    let n = 10_000;
    let task = |i: usize, dep: Option<usize>| Task {
        id: format!("t{i}"),
        files: vec![format!("f{i}")],
        depends_on: dep.map(|d| format!("t{d}")).into_iter().collect(),
        ..Task::default()
    };
    let mut plan = Plan {
        name: "deep".into(),
        title: None,
        base: None,
        defaults: Defaults::default(),
        gates: vec![],
        notify: vec![],
        agents: Default::default(),
        worktrees: Default::default(),
        phases: vec![Phase {
            id: "p".into(),
            title: None,
            gates: vec![],
            tasks: (0..n).map(|i| task(i, i.checked_sub(1))).collect(),
            review: None,
            on_gate_failure: None,
            on_conflict: None,
            on_failure: None,
        }],
    };
    let diags = validate(&plan, None);
    assert!(diags.iter().all(|d| !d.is_error()), "{:?}", &diags[..1]);
    plan.phases[0].tasks[0].depends_on = vec![format!("t{}", n - 1)];
    let diags = validate(&plan, None);
    let cycle = diags
        .iter()
        .find(|d| d.message.starts_with("dependency cycle"))
        .expect("the cycle is found");
    let last = n - 1;
    let head = format!("dependency cycle: t0 -> t{last} -> t{}", last - 1);
    assert!(
        cycle.message.starts_with(&head),
        "{}",
        &cycle.message[..200]
    );
    assert!(cycle.message.contains("t2 -> t1 -> t0 (each"));
}
