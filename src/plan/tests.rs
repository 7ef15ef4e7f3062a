//! Fixture tests: each bad plan in `fixtures/plans` must be rejected with a
//! message a user can act on, at the right line; the good ones must load
//! identically from TOML and YAML and survive the JSON round trip that the
//! state branch relies on.

use super::*;
use std::path::Path;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/plans")).join(name)
}

fn load_ok(name: &str) -> (Plan, Vec<Diagnostic>) {
    match load_file(&fixture(name)) {
        Ok(r) => r,
        Err(d) => panic!("{name} should load: {:#?}", d),
    }
}

fn errors(name: &str) -> Vec<Diagnostic> {
    match load_file(&fixture(name)) {
        Ok((plan, _)) => panic!("{name} should fail, loaded {plan:?}"),
        Err(d) => d,
    }
}

/// Assert one error mentions `needle` and sits on `line` (when given).
fn expect(name: &str, needle: &str, line: Option<usize>) {
    let diags = errors(name);
    let found = diags
        .iter()
        .find(|d| d.is_error() && d.message.contains(needle))
        .unwrap_or_else(|| panic!("{name}: no error containing {needle:?} in {diags:#?}"));
    if line.is_some() {
        assert_eq!(found.line, line, "{name}: {}", found.render(name));
        assert!(found.col.is_some(), "{name}: no column");
    }
}

#[test]
fn bad_fixtures_are_rejected_with_located_messages() {
    expect("bad-syntax.toml", "", Some(6));
    expect(
        "bad-unknown-key.toml",
        "unknown key `fils` in phases[0].tasks[1]",
        Some(12),
    );
    expect(
        "bad-unknown-key.yaml",
        "unknown key `fils` in phases[0].tasks[1]",
        Some(8),
    );
    expect("bad-type.toml", "invalid type", Some(4));
    expect(
        "bad-duplicate-id.toml",
        "task id `a` is used twice",
        Some(14),
    );
    expect(
        "bad-cycle.toml",
        "dependency cycle: a -> b -> c -> a",
        Some(7),
    );
    expect(
        "bad-later-dep.toml",
        "`early` (phase `one`) depends on `late` of the later phase `two`",
        Some(9),
    );
    expect(
        "bad-unknown-dep.toml",
        "task `a` depends on unknown task `ghost`",
        Some(9),
    );
    expect("bad-id.toml", "invalid task id `a..b`", Some(7));
    expect("bad-reserved-phase.toml", "reserved", Some(4));
    expect(
        "bad-duration.toml",
        "defaults.timeout: duration `90` has no unit",
        Some(4),
    );
    expect("bad-duration.toml", "task `a` estimate", Some(12));
    expect("bad-glob.toml", "`../outside/**` contains `..`", Some(8));
    expect("bad-glob.toml", "`/etc/*` is absolute", Some(9));
    expect("bad-empty.toml", "empty", None);
}

#[test]
fn every_problem_is_reported() {
    let count = |name| errors(name).iter().filter(|d| d.is_error()).count();
    assert_eq!(count("bad-duration.toml"), 2);
    assert_eq!(count("bad-glob.toml"), 2);
}

#[test]
fn all_unknown_keys_are_reported() {
    let text = "name = \"p\"\nfoo = 1\n[[phases]]\nid = \"x\"\nbar = 2\n";
    let d = load_str(text, Format::Toml).expect_err("unknown keys");
    assert_eq!(d.len(), 2, "{d:#?}");
    assert!(d[0].message.contains("`foo` in the top level"));
    assert_eq!(d[0].line, Some(2));
    assert!(d[1].message.contains("`bar` in phases[0]"));
    assert_eq!(d[1].line, Some(5));
}

#[test]
fn good_plans_load_identically_in_both_formats() {
    let (toml_plan, toml_warnings) = load_ok("good.toml");
    let (yaml_plan, yaml_warnings) = load_ok("good.yaml");
    assert_eq!(toml_plan, yaml_plan);
    // No warnings: plan-wide gates cover every phase and every task declares `files`.
    assert!(toml_warnings.is_empty(), "{toml_warnings:#?}");
    assert_eq!(toml_warnings, yaml_warnings);
    assert_eq!(toml_plan.defaults.merge, MergeStrategy::Squash);
    assert_eq!(toml_plan.defaults.checkout, CheckoutMode::Sparse);
}

#[test]
fn json_round_trip_is_lossless() {
    for name in ["good.toml", "good.yaml", "bom-crlf.toml"] {
        let (plan, _) = load_ok(name);
        let json = serde_json::to_string(&plan).expect("serialise");
        let back: Plan = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(plan, back, "{name}");
        assert!(validate(&back, None).iter().all(|d| !d.is_error()));
    }
}

#[test]
fn bom_and_crlf_are_accepted() {
    let (plan, warnings) = load_ok("bom-crlf.toml");
    assert_eq!(plan.name, "crlf");
    assert_eq!(plan.tasks().count(), 1);
    assert!(warnings.is_empty(), "{warnings:#?}");
    // Locations still count lines correctly with CRLF.
    let text = "\u{feff}name = \"p\"\r\n[[phases]]\r\nid = \"one\"\r\nnope = 1\r\n";
    let d = load_str(text, Format::Toml).expect_err("unknown key");
    assert_eq!((d[0].line, d[0].col), (Some(4), Some(1)));
}

#[test]
fn helpers_follow_defaults() {
    let (plan, _) = load_ok("good.toml");
    let names: Vec<&str> = plan.tasks().map(|(_, t)| t.id.as_str()).collect();
    assert_eq!(names, ["schema", "models", "endpoints", "docs"]);
    let (phase, schema) = plan.task("schema").expect("schema");
    assert_eq!(phase.id, "setup");
    assert_eq!(plan.phase_index("api"), Some(1));
    assert!(plan.phase("nope").is_none());
    assert_eq!(plan.task_run(schema), Some("scripts/agent.sh"));
    let (_, endpoints) = plan.task("endpoints").expect("endpoints");
    assert_eq!(plan.task_run(endpoints), Some("make endpoints"));
    assert_eq!(
        plan.task_timeout(schema),
        Some(std::time::Duration::from_secs(1800))
    );
    let (_, models) = plan.task("models").expect("models");
    assert_eq!(
        plan.task_timeout(models),
        Some(std::time::Duration::from_secs(5400))
    );
    let gates: Vec<&str> = plan
        .gates_for("setup")
        .iter()
        .map(|g| g.name.as_str())
        .collect();
    assert_eq!(gates, ["unit", "fmt"]);
    assert_eq!(plan.gates_for("api").len(), 1);
    assert!(plan.task("docs").is_some_and(|(_, t)| t.skip));
}

#[test]
fn warnings_name_the_phase_and_task() {
    let text = "name: p\nphases:\n  - id: one\n    tasks:\n      - id: a\n";
    let (_, w) = load_str(text, Format::Yaml).expect("warnings only");
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(w[0].message.contains("phase `one` has no gates"));
    assert_eq!(w[0].line, Some(3));
    assert!(w[1].message.contains("task `a` declares no `files`"));
    assert_eq!(w[1].line, Some(5));
    assert_eq!(
        w[1].render("p.yaml"),
        format!("p.yaml:5:9: warning: {}", w[1].message)
    );
}

#[test]
fn structural_errors() {
    let cases: &[(&str, Format, &str)] = &[
        ("", Format::Yaml, "empty"),
        ("- a\n- b\n", Format::Yaml, "holds a list"),
        ("just text\n", Format::Yaml, "single value"),
        ("name = \"p\"\n", Format::Toml, "no phases"),
        ("name = \"p\"\n[[phases]]\nid = \"x\"\n", Format::Toml, "phase `x` has no tasks"),
        ("phases = []\n", Format::Toml, "missing key `name`"),
        ("name: p\nphases: [{id: x, tasks: [{id: a, files: [x], depends_on: [a]}]}]\n", Format::Yaml, "depends on itself"),
        ("name = \"p\"\n[defaults]\nparallel = 0\n[[phases]]\nid = \"x\"\ntasks = [{id = \"a\", files = [\"x\"]}]\n", Format::Toml, "at least 1"),
        ("name = \"p\"\n[defaults]\nmerge = \"fast\"\n", Format::Toml, "unknown variant `fast`"),
        ("name = \"p\"\n[[gates]]\nname = \"u\"\nrun = \"\"\n[[gates]]\nname = \"u\"\nrun = \"x\"\n[[phases]]\nid = \"x\"\ntasks = [{id = \"a\", files = [\"x\"]}]\n", Format::Toml, "gate name `u` is used twice"),
        ("name = \"a b\"\n", Format::Toml, "invalid plan id `a b`"),
    ];
    for (text, format, needle) in cases {
        let d = load_str(text, *format).expect_err(needle);
        assert!(
            d.iter().any(|d| d.message.contains(needle)),
            "{needle}: {d:#?}"
        );
    }
}

#[test]
fn file_errors_are_single_diagnostics() {
    let d = load_file(Path::new("plan.json")).expect_err("extension");
    assert_eq!(d.len(), 1);
    assert!(d[0].message.contains(".toml, .yaml or .yml"));
    let d = load_file(&fixture("missing.toml")).expect_err("missing");
    assert!(d[0].message.contains("cannot read"));
    assert_eq!(Format::from_path(Path::new("X.YML")), Some(Format::Yaml));
    assert_eq!(
        Format::from_path(Path::new("plan.Toml")),
        Some(Format::Toml)
    );
    assert_eq!(Format::from_path(Path::new("plan")), None);
}

#[test]
fn render_shapes() {
    let d = Diagnostic::error("unknown key `foo` in phases[0].tasks[1]").at(Some((12, 5)));
    assert_eq!(
        d.render("plan.toml"),
        "plan.toml:12:5: error: unknown key `foo` in phases[0].tasks[1]"
    );
    assert_eq!(
        Diagnostic::warning("w").render("plan.toml"),
        "plan.toml: warning: w"
    );
}

/// Not a check: `cargo test -- --ignored --nocapture show_messages` prints
/// every fixture's diagnostics for a human to read.
#[test]
#[ignore]
fn show_messages() {
    let dir = fixture("");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    for name in names {
        let diags = match load_file(&fixture(&name)) {
            Ok((_, w)) => w,
            Err(d) => d,
        };
        for d in diags {
            eprintln!("{}", d.render(&name));
        }
    }
}

#[test]
fn many_problems_are_cut_to_the_first_hundred_and_counted() {
    let mut text = String::from("name = \"p\"\n");
    for i in 0..1000 {
        text.push_str(&format!("k{i} = 1\n"));
    }
    let diags = load_str(&text, Format::Toml).expect_err("unknown keys");
    assert_eq!(diags.len(), diag::MAX_DIAGNOSTICS + 1);
    let last = diags.last().expect("last");
    assert_eq!(
        last.message,
        "and 900 more problems (fix the first ones and check again)"
    );
    assert_eq!(last.count(), 900);
    let total: usize = diags
        .iter()
        .filter(|d| d.is_error())
        .map(Diagnostic::count)
        .sum();
    assert_eq!(total, 1000);
    assert!(
        diags[..100].iter().all(|d| d.line.is_some()),
        "the shown ones are located"
    );
    // Located where they are: `k5` is on line 7.
    let k5 = diags
        .iter()
        .find(|d| d.message.contains("`k5`"))
        .expect("k5 shown");
    assert_eq!(k5.line, Some(7));
}

#[test]
fn deep_nesting_and_huge_plans_are_refused_before_parsing() {
    for (text, format) in [
        (
            format!(
                "name: p\nphases: {}{}\n",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
            Format::Yaml,
        ),
        (
            format!(
                "name: p\nphases: {}1{}\n",
                "{a: ".repeat(50_000),
                "}".repeat(50_000)
            ),
            Format::Yaml,
        ),
        (
            format!(
                "name = \"p\"\nx = {}{}\n",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
            Format::Toml,
        ),
    ] {
        let diags = load_str(&text, format).expect_err("too deep");
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(
            diags[0].message.contains("nested more than 128 deep"),
            "{diags:?}"
        );
        assert_eq!(diags[0].line, Some(2));
    }
    // Nesting just under the limit is the parser's to judge.
    let ok_depth = format!("name = \"p\"\nx = {}{}\n", "[".repeat(100), "]".repeat(100));
    let diags = load_str(&ok_depth, Format::Toml).expect_err("unknown key x");
    assert!(!diags[0].message.contains("nested"), "{diags:?}");

    let many = format!("name: p\nphases: []\nx: [{}]\n", "[],".repeat(300_000));
    let diags = load_str(&many, Format::Yaml).expect_err("too many brackets");
    assert!(diags[0].message.contains("more than 262144"), "{diags:?}");

    let big = format!("name = \"p\"\n#{}\n", "x".repeat(4 << 20));
    let diags = load_str(&big, Format::Toml).expect_err("too big");
    assert!(diags[0].message.contains("too big"), "{diags:?}");
}

#[test]
fn agents_load_the_same_from_toml_and_yaml_and_resolve_per_task() {
    let toml = r#"
name = "a"
[defaults]
agent = "writer"
retries = 1
[agents.writer]
run = "w"
parallel = 2
timeout = "10m"
env = { K = "v" }
retry_backoff = "2s"
retry_on = { exit_codes = [75], output = "limit", timeout = true }
[agents.tester]
run = "t"
retries = 3
[[phases]]
id = "p"
  [[phases.tasks]]
  id = "x"
  files = ["x"]
  [[phases.tasks]]
  id = "y"
  files = ["y"]
  agent = ["tester", "writer"]
  [[phases.tasks]]
  id = "z"
  files = ["z"]
  run = "own"
"#;
    let yaml = r#"
name: a
defaults: { agent: writer, retries: 1 }
agents:
  writer:
    run: w
    parallel: 2
    timeout: 10m
    env: { K: v }
    retry_backoff: 2s
    retry_on: { exit_codes: [75], output: limit, timeout: true }
  tester: { run: t, retries: 3 }
phases:
  - id: p
    tasks:
      - { id: x, files: [x] }
      - { id: y, files: [y], agent: [tester, writer] }
      - { id: z, files: [z], run: own }
"#;
    let (t, _) = load_str(toml, Format::Toml).expect("toml loads");
    let (y, _) = load_str(yaml, Format::Yaml).expect("yaml loads");
    assert_eq!(t, y);
    let json = serde_json::to_string(&t).expect("json");
    assert_eq!(serde_json::from_str::<Plan>(&json).expect("back"), t);
    let task = |id: &str| t.task(id).expect("task").1;
    assert_eq!(t.task_agents(task("x")), ["writer"]);
    assert_eq!(t.task_agents(task("y")), ["tester", "writer"]);
    assert!(t.task_agents(task("z")).is_empty(), "its own run wins");
    assert_eq!(t.task_run(task("x")), Some("w"));
    assert_eq!(t.task_run(task("z")), Some("own"));
    assert_eq!(
        t.attempt_timeout(task("x"), Some("writer")),
        Some(Duration::from_secs(600))
    );
    let p = t.retry_policy(task("x"), Some("writer"));
    assert_eq!(
        (p.retries, p.backoff),
        (1, Duration::from_secs(2)),
        "defaults.retries"
    );
    assert!(p.on.is_some_and(|o| o.timeout && o.exit_codes == [75]));
    let p = t.retry_policy(task("y"), Some("tester"));
    assert_eq!(
        (p.retries, p.backoff),
        (3, Duration::from_secs(5)),
        "the agent's"
    );
}
