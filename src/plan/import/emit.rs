//! Writing an imported plan as TOML or YAML: a comment header saying where
//! it came from and what was inferred, then the plan in the layout of the
//! spec's example (keys aligned, tasks indented under their phase).

use serde_yaml::{Mapping, Value};

use super::Imported;
use crate::plan::{CheckoutMode, Gate, MergeStrategy, Plan, Task};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
}

/// Example commands that run a task with a coding agent, for the header.
const AGENTS: &[(&str, &str)] = &[
    (
        "Claude Code",
        r#"claude -p "$(cat "$ORCH_TASK_FILE")" --permission-mode acceptEdits"#,
    ),
    (
        "Codex",
        r#"codex exec --sandbox workspace-write "$(cat "$ORCH_TASK_FILE")""#,
    ),
    (
        "aider",
        r#"aider --yes --no-gitignore --message-file "$ORCH_TASK_FILE""#,
    ),
];

/// The whole file.
pub fn render(imp: &Imported, format: Format) -> String {
    let mut out = header(imp, format);
    out.push('\n');
    out.push_str(&match format {
        Format::Toml => toml_plan(&imp.plan),
        Format::Yaml => yaml_plan(&imp.plan),
    });
    out
}

/// Wraps `text` into comment lines of at most ~78 columns; continuation
/// lines are indented by `indent` more spaces.
fn comment(out: &mut String, text: &str, indent: usize) {
    let mut line = String::from("#");
    let mut first = true;
    for word in text.split(' ') {
        if !first && line.len() + 1 + word.len() > 78 && line.trim_end_matches('#').len() > 2 {
            out.push_str(line.trim_end());
            out.push('\n');
            line = format!("#{}", " ".repeat(indent));
        }
        line.push(' ');
        line.push_str(word);
        first = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn header(imp: &Imported, format: Format) -> String {
    let mut h = String::new();
    comment(
        &mut h,
        &format!(
            "Imported by `git orch import` from {} ({}).",
            imp.source, imp.kind
        ),
        2,
    );
    h.push_str("# Review it, then `git orch check` and `git orch start` it.\n#\n");
    for line in &imp.inferred {
        comment(&mut h, &format!("inferred: {line}"), 4);
    }
    for line in &imp.not_imported {
        comment(&mut h, &format!("not imported: {line}"), 4);
    }
    h.push_str("#\n");
    let has_run = imp.plan.defaults.run.is_some() || imp.plan.tasks().all(|(_, t)| t.run.is_some());
    if !has_run {
        let (section, key) = match format {
            Format::Toml => ("[defaults]", "run = "),
            Format::Yaml => ("defaults:", "run: "),
        };
        h.push_str(&format!(
            "# No task has a command yet, so every task is manual (`git orch task start ID`,\n\
             # then `git orch task done ID`). To let `git orch run` do them, add under\n\
             # `{section}` the command of your coding agent, for example:\n"
        ));
        for (agent, cmd) in AGENTS {
            h.push_str(&format!("#   {key}'{cmd}'   # {agent}\n"));
        }
    }
    if imp.plan.gates.is_empty() && imp.plan.phases.iter().all(|p| p.gates.is_empty()) {
        let gates = match format {
            Format::Toml => "[[gates]] entry",
            Format::Yaml => "`gates:` entry",
        };
        h.push_str(&format!(
            "# No gates either: add a {gates} (your tests, linters) so that\n\
             # each checkpoint checks something.\n"
        ));
    }
    h
}

/// A TOML string: literal `'…'` when that needs no escape and reads better,
/// basic `"…"` otherwise; multi-line strings use the `'''`/`"""` forms.
pub fn toml_str(s: &str) -> String {
    let controls = s.chars().any(|c| c.is_control() && c != '\n' && c != '\t');
    if s.contains('\n') {
        if !controls && !s.contains("'''") && s.contains(['\\', '"']) && !s.ends_with('\'') {
            return format!("'''\n{s}'''");
        }
        let mut out = String::from("\"\"\"\n");
        let chars: Vec<char> = s.chars().collect();
        for (i, &c) in chars.iter().enumerate() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' if chars.get(i + 1).is_none_or(|&n| n == '"') => out.push_str("\\\""),
                '\n' | '\t' => out.push(c),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
                c => out.push(c),
            }
        }
        out.push_str("\"\"\"");
        return out;
    }
    if !controls && s.contains(['\\', '"']) && !s.contains('\'') && !s.contains('\t') {
        return format!("'{s}'");
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_array(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", inner.join(", "))
}

/// `key = value` lines with the `=` aligned, each prefixed by `indent`.
fn table(out: &mut String, indent: &str, pairs: &[(&str, String)]) {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in pairs {
        out.push_str(&format!("{indent}{k:width$} = {v}\n"));
    }
}

fn gate_pairs(g: &Gate) -> Vec<(&'static str, String)> {
    let mut p = vec![("name", toml_str(&g.name)), ("run", toml_str(&g.run))];
    if let Some(t) = &g.timeout {
        p.push(("timeout", toml_str(t)));
    }
    p
}

fn task_pairs(t: &Task) -> Vec<(&'static str, String)> {
    let mut p = vec![("id", toml_str(&t.id))];
    let opt = |p: &mut Vec<(&'static str, String)>, k: &'static str, v: &Option<String>| {
        if let Some(v) = v {
            p.push((k, toml_str(v)));
        }
    };
    let arr = |p: &mut Vec<(&'static str, String)>, k: &'static str, v: &[String]| {
        if !v.is_empty() {
            p.push((k, toml_array(v)));
        }
    };
    opt(&mut p, "title", &t.title);
    opt(&mut p, "run", &t.run);
    arr(&mut p, "files", &t.files);
    arr(&mut p, "reads", &t.reads);
    arr(&mut p, "depends_on", &t.depends_on);
    opt(&mut p, "estimate", &t.estimate);
    opt(&mut p, "timeout", &t.timeout);
    if t.skip {
        p.push(("skip", "true".into()));
    }
    // The prompt last: it is long and would hide the keys after it.
    opt(&mut p, "prompt", &t.prompt);
    p
}

/// The plan as TOML.
pub fn toml_plan(plan: &Plan) -> String {
    let mut out = String::new();
    let mut top = vec![("name", toml_str(&plan.name))];
    if let Some(t) = &plan.title {
        top.push(("title", toml_str(t)));
    }
    if let Some(b) = &plan.base {
        top.push(("base", toml_str(b)));
    }
    table(&mut out, "", &top);
    let d = &plan.defaults;
    let mut defaults = Vec::new();
    if let Some(r) = &d.run {
        defaults.push(("run", toml_str(r)));
    }
    if let Some(t) = &d.timeout {
        defaults.push(("timeout", toml_str(t)));
    }
    if let Some(n) = d.parallel {
        defaults.push(("parallel", n.to_string()));
    }
    if d.merge != MergeStrategy::default() {
        defaults.push(("merge", toml_str(&d.merge.to_string())));
    }
    if d.checkout != CheckoutMode::default() {
        defaults.push(("checkout", toml_str(&d.checkout.to_string())));
    }
    if !defaults.is_empty() {
        out.push_str("\n[defaults]\n");
        table(&mut out, "", &defaults);
    }
    for g in &plan.gates {
        out.push_str("\n[[gates]]\n");
        table(&mut out, "", &gate_pairs(g));
    }
    for phase in &plan.phases {
        out.push_str("\n[[phases]]\n");
        let mut pairs = vec![("id", toml_str(&phase.id))];
        if let Some(t) = &phase.title {
            pairs.push(("title", toml_str(t)));
        }
        table(&mut out, "", &pairs);
        for g in &phase.gates {
            out.push_str("\n  [[phases.gates]]\n");
            table(&mut out, "  ", &gate_pairs(g));
        }
        for t in &phase.tasks {
            out.push_str("\n  [[phases.tasks]]\n");
            table(&mut out, "  ", &task_pairs(t));
        }
    }
    out
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

fn strings(v: &[String]) -> Value {
    Value::Sequence(v.iter().map(|x| s(x)).collect())
}

fn gate_yaml(g: &Gate) -> Value {
    let mut m = Mapping::new();
    m.insert(s("name"), s(&g.name));
    m.insert(s("run"), s(&g.run));
    if let Some(t) = &g.timeout {
        m.insert(s("timeout"), s(t));
    }
    Value::Mapping(m)
}

/// The plan as YAML, keys in the same order as the TOML form.
pub fn yaml_plan(plan: &Plan) -> String {
    let mut root = Mapping::new();
    root.insert(s("name"), s(&plan.name));
    if let Some(t) = &plan.title {
        root.insert(s("title"), s(t));
    }
    if let Some(b) = &plan.base {
        root.insert(s("base"), s(b));
    }
    let d = &plan.defaults;
    let mut defaults = Mapping::new();
    if let Some(r) = &d.run {
        defaults.insert(s("run"), s(r));
    }
    if let Some(t) = &d.timeout {
        defaults.insert(s("timeout"), s(t));
    }
    if let Some(n) = d.parallel {
        defaults.insert(s("parallel"), Value::Number(n.into()));
    }
    if d.merge != MergeStrategy::default() {
        defaults.insert(s("merge"), s(&d.merge.to_string()));
    }
    if d.checkout != CheckoutMode::default() {
        defaults.insert(s("checkout"), s(&d.checkout.to_string()));
    }
    if !defaults.is_empty() {
        root.insert(s("defaults"), Value::Mapping(defaults));
    }
    if !plan.gates.is_empty() {
        root.insert(
            s("gates"),
            Value::Sequence(plan.gates.iter().map(gate_yaml).collect()),
        );
    }
    let mut phases = Vec::new();
    for phase in &plan.phases {
        let mut m = Mapping::new();
        m.insert(s("id"), s(&phase.id));
        if let Some(t) = &phase.title {
            m.insert(s("title"), s(t));
        }
        if !phase.gates.is_empty() {
            m.insert(
                s("gates"),
                Value::Sequence(phase.gates.iter().map(gate_yaml).collect()),
            );
        }
        let mut tasks = Vec::new();
        for t in &phase.tasks {
            let mut tm = Mapping::new();
            tm.insert(s("id"), s(&t.id));
            let opt = |tm: &mut Mapping, k: &str, v: &Option<String>| {
                if let Some(v) = v {
                    tm.insert(s(k), s(v));
                }
            };
            let arr = |tm: &mut Mapping, k: &str, v: &[String]| {
                if !v.is_empty() {
                    tm.insert(s(k), strings(v));
                }
            };
            opt(&mut tm, "title", &t.title);
            opt(&mut tm, "run", &t.run);
            arr(&mut tm, "files", &t.files);
            arr(&mut tm, "reads", &t.reads);
            arr(&mut tm, "depends_on", &t.depends_on);
            opt(&mut tm, "estimate", &t.estimate);
            opt(&mut tm, "timeout", &t.timeout);
            if t.skip {
                tm.insert(s("skip"), Value::Bool(true));
            }
            opt(&mut tm, "prompt", &t.prompt);
            tasks.push(Value::Mapping(tm));
        }
        m.insert(s("tasks"), Value::Sequence(tasks));
        phases.push(Value::Mapping(m));
    }
    root.insert(s("phases"), Value::Sequence(phases));
    serde_yaml::to_string(&Value::Mapping(root)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: &str) -> String {
        let doc = format!("k = {}\n", toml_str(v));
        let t: toml::Table = toml::from_str(&doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
        t["k"].as_str().expect("string").to_string()
    }

    #[test]
    fn toml_strings_round_trip() {
        for v in [
            "plain",
            "with \"quotes\"",
            "it's",
            "both ' and \"",
            "back\\slash",
            "tab\there",
            "line one\nline two\n",
            "ends with a quote\n\"",
            "triple \"\"\" quotes\nand more\n",
            "triple ''' single\nwith \\ too\n",
            "control \u{7} bell\n",
            "ends with '\n'",
            "",
        ] {
            assert_eq!(roundtrip(v), v, "{v:?} as {}", toml_str(v));
        }
        assert_eq!(toml_str("a \"b\""), "'a \"b\"'");
        assert_eq!(toml_str("x"), "\"x\"");
    }

    #[test]
    fn comments_wrap() {
        let mut out = String::new();
        comment(&mut out, &"word ".repeat(40), 2);
        assert!(
            out.lines().all(|l| l.len() <= 80 && l.starts_with('#')),
            "{out}"
        );
        assert!(out.lines().count() > 1);
    }
}
