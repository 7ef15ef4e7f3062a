//! The plan's dependency graph as mermaid, Graphviz dot, or a standalone
//! SVG (for the HTML report). Phases are clusters, task states are styles;
//! the colours are the same in all three so a reader learns them once.

use std::collections::{HashMap, HashSet};

use crate::plan::Plan;
use crate::state::Snapshot;

/// What the renderers need: phases in order, their tasks and states.
pub struct Dag {
    pub name: String,
    pub title: Option<String>,
    pub phases: Vec<DagPhase>,
}

pub struct DagPhase {
    pub id: String,
    pub title: Option<String>,
    pub state: String,
    pub tasks: Vec<DagTask>,
}

pub struct DagTask {
    pub id: String,
    pub title: Option<String>,
    pub state: String,
    pub depends_on: Vec<String>,
}

impl Dag {
    /// A started plan, with every task and phase in its current state.
    pub fn from_snapshot(snap: &Snapshot) -> anyhow::Result<Dag> {
        let mut status = std::collections::HashMap::new();
        for (_, t) in snap.plan.tasks() {
            status.insert(t.id.clone(), snap.task_status(&t.id)?.as_str().to_string());
        }
        Ok(Dag::build(
            &snap.plan,
            |id| status.get(id).cloned().unwrap_or_default(),
            |id| snap.phase_status(id).as_str().to_string(),
        ))
    }

    /// A plan file that may not be started: all pending (`skip` tasks skipped).
    pub fn from_plan(plan: &Plan) -> Dag {
        let skipped: HashSet<&str> = plan
            .tasks()
            .filter(|(_, t)| t.skip)
            .map(|(_, t)| t.id.as_str())
            .collect();
        Dag::build(
            plan,
            |id| {
                if skipped.contains(id) {
                    "skipped"
                } else {
                    "pending"
                }
                .to_string()
            },
            |_| "pending".to_string(),
        )
    }

    fn build(
        plan: &Plan,
        task_state: impl Fn(&str) -> String,
        phase_state: impl Fn(&str) -> String,
    ) -> Dag {
        Dag {
            name: plan.name.clone(),
            title: plan.title.clone(),
            phases: plan
                .phases
                .iter()
                .map(|p| DagPhase {
                    id: p.id.clone(),
                    title: p.title.clone(),
                    state: phase_state(&p.id),
                    tasks: p
                        .tasks
                        .iter()
                        .map(|t| DagTask {
                            id: t.id.clone(),
                            title: t.title.clone(),
                            state: task_state(&t.id),
                            depends_on: t.depends_on.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    fn tasks(&self) -> impl Iterator<Item = &DagTask> {
        self.phases.iter().flat_map(|p| p.tasks.iter())
    }
}

/// Fill and border colour of a task or phase state.
pub fn state_colours(state: &str) -> (&'static str, &'static str) {
    match state {
        "running" | "active" => ("#fef3c7", "#d97706"),
        "done" | "checkpointed" => ("#dcfce7", "#16a34a"),
        "failed" => ("#fee2e2", "#dc2626"),
        "conflict" => ("#ffedd5", "#ea580c"),
        "skipped" => ("#e5e7eb", "#6b7280"),
        _ => ("#f9fafb", "#9ca3af"),
    }
}

const TASK_STATES: &[&str] = &[
    "pending", "running", "done", "failed", "conflict", "skipped",
];

fn phase_label(p: &DagPhase) -> String {
    match &p.title {
        Some(t) => format!("{} — {t}", p.id),
        None => p.id.clone(),
    }
}

/// Ids safe in mermaid (letters, digits, `_`), prefixed so that no task id
/// collides with a keyword such as `end`, and made unique.
fn mermaid_ids<'a>(prefix: &str, ids: impl Iterator<Item = &'a str>) -> HashMap<String, String> {
    let mut taken = HashSet::new();
    let mut out = HashMap::new();
    for (i, id) in ids.enumerate() {
        let clean: String = id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let mut name = format!("{prefix}{clean}");
        if !taken.insert(name.clone()) {
            name = format!("{prefix}{clean}_{i}");
            taken.insert(name.clone());
        }
        out.insert(id.to_string(), name);
    }
    out
}

fn mermaid_text(text: &str) -> String {
    text.replace('#', "#35;")
        .replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
        .replace(['\n', '\r'], " ")
}

pub fn mermaid(dag: &Dag) -> String {
    let tid = mermaid_ids("t_", dag.tasks().map(|t| t.id.as_str()));
    let pid = mermaid_ids("p_", dag.phases.iter().map(|p| p.id.as_str()));
    let mut out = format!("%% plan {}", dag.name);
    if let Some(t) = &dag.title {
        out += &format!(" — {}", t.replace('\n', " "));
    }
    out += "\nflowchart LR\n";
    for p in &dag.phases {
        out += &format!(
            "  subgraph {}[\"{}\"]\n",
            pid[&p.id],
            mermaid_text(&phase_label(p))
        );
        for t in &p.tasks {
            let label = match &t.title {
                Some(title) => format!("{}<br/>{}", t.id, mermaid_text(title)),
                None => t.id.clone(),
            };
            out += &format!("    {}[\"{label}\"]:::{}\n", tid[&t.id], t.state);
        }
        out += "  end\n";
    }
    for t in dag.tasks() {
        for d in &t.depends_on {
            if let Some(from) = tid.get(d) {
                out += &format!("  {from} --> {}\n", tid[&t.id]);
            }
        }
    }
    for state in TASK_STATES {
        let (fill, stroke) = state_colours(state);
        let dash = if *state == "skipped" {
            ",stroke-dasharray:4 3"
        } else {
            ""
        };
        out += &format!("  classDef {state} fill:{fill},stroke:{stroke},color:#111827{dash}\n");
    }
    for p in &dag.phases {
        let (_, stroke) = state_colours(&p.state);
        out += &format!(
            "  style {} fill:#ffffff,stroke:{stroke},stroke-width:2px\n",
            pid[&p.id]
        );
    }
    out
}

fn dot_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn dot(dag: &Dag) -> String {
    let label = match &dag.title {
        Some(t) => format!("{} — {t}", dag.name),
        None => dag.name.clone(),
    };
    let mut out = format!("digraph {} {{\n", dot_string(&dag.name));
    out += &format!(
        "  graph [rankdir=LR, compound=true, fontname=\"Helvetica\", labelloc=t, label={}];\n",
        dot_string(&label)
    );
    out += "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=11];\n";
    out += "  edge [color=\"#6b7280\"];\n";
    for p in &dag.phases {
        let (_, stroke) = state_colours(&p.state);
        out += &format!(
            "  subgraph {} {{\n",
            dot_string(&format!("cluster_{}", p.id))
        );
        out += &format!(
            "    label={}; style=\"rounded\"; color=\"{stroke}\"; penwidth=2;\n",
            dot_string(&format!("{} [{}]", phase_label(p), p.state))
        );
        for t in &p.tasks {
            let (fill, stroke) = state_colours(&t.state);
            let text = match &t.title {
                Some(title) => format!("{}\n{title}", t.id),
                None => t.id.clone(),
            };
            let style = if t.state == "skipped" {
                ", style=\"rounded,filled,dashed\""
            } else {
                ""
            };
            out += &format!(
                "    {} [label={}, fillcolor=\"{fill}\", color=\"{stroke}\", tooltip={}{style}];\n",
                dot_string(&t.id),
                dot_string(&text),
                dot_string(&t.state)
            );
        }
        out += "  }\n";
    }
    let known: HashSet<&str> = dag.tasks().map(|t| t.id.as_str()).collect();
    for t in dag.tasks() {
        for d in t.depends_on.iter().filter(|d| known.contains(d.as_str())) {
            out += &format!("  {} -> {};\n", dot_string(d), dot_string(&t.id));
        }
    }
    out += "}\n";
    out
}

const NODE_W: f64 = 170.0;
const NODE_H: f64 = 44.0;
const GAP_X: f64 = 46.0;
const GAP_Y: f64 = 14.0;
const PAD: f64 = 14.0;
const HEADER: f64 = 26.0;
const CLUSTER_GAP: f64 = 36.0;
const MARGIN: f64 = 10.0;
/// Tasks stacked in one column before the next column starts.
const MAX_ROWS: usize = 12;
/// A phase header's width per character (13px, semibold): generous, so
/// that a title fits whatever the font; `HEADER_CHARS` at most are shown.
const HEADER_CHAR_W: f64 = 8.5;
const HEADER_CHARS: usize = 90;

/// Column of each task inside its phase: 0 without a dependency in the
/// same phase, else one right of its deepest such dependency.
fn depths(phase: &DagPhase) -> HashMap<&str, usize> {
    fn depth<'a>(
        id: &'a str,
        by_id: &HashMap<&'a str, &'a DagTask>,
        memo: &mut HashMap<&'a str, usize>,
        visiting: &mut HashSet<&'a str>,
    ) -> usize {
        if let Some(&d) = memo.get(id) {
            return d;
        }
        if !visiting.insert(id) {
            return 0; // a cycle; validation rejects those, so just stop
        }
        let d = by_id.get(id).map_or(0, |t| {
            t.depends_on
                .iter()
                .filter(|d| by_id.contains_key(d.as_str()))
                .map(|d| depth(d.as_str(), by_id, memo, visiting) + 1)
                .max()
                .unwrap_or(0)
        });
        visiting.remove(id);
        memo.insert(id, d);
        d
    }
    let by_id: HashMap<&str, &DagTask> = phase.tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    let mut memo = HashMap::new();
    let mut visiting = HashSet::new();
    for t in &phase.tasks {
        depth(&t.id, &by_id, &mut memo, &mut visiting);
    }
    memo
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// A standalone SVG: phases left to right as boxes, tasks inside them in
/// columns by dependency depth, edges as curves with arrowheads.
pub fn svg(dag: &Dag) -> String {
    use super::html_escape as esc;
    let mut pos: HashMap<&str, (f64, f64)> = HashMap::new();
    let mut clusters = String::new();
    let mut nodes = String::new();
    let mut x = MARGIN;
    let mut height: f64 = 0.0;
    for p in &dag.phases {
        let depth = depths(p);
        let depths = depth.values().copied().max().map_or(1, |d| d + 1);
        let mut rows = vec![0usize; depths];
        // (task, depth, index within its depth)
        let mut place: Vec<(&DagTask, usize, usize)> = Vec::new();
        for t in &p.tasks {
            let d = depth.get(t.id.as_str()).copied().unwrap_or(0);
            place.push((t, d, rows[d]));
            rows[d] += 1;
        }
        // A depth with many tasks wraps into several columns, so a wide
        // phase is not one very tall column; edges still point right.
        let mut first_col = Vec::with_capacity(depths);
        let mut cols = 0;
        for &n in &rows {
            first_col.push(cols);
            cols += n.div_ceil(MAX_ROWS).max(1);
        }
        let place: Vec<(&DagTask, usize, usize)> = place
            .into_iter()
            .map(|(t, d, i)| (t, first_col[d] + i / MAX_ROWS, i % MAX_ROWS))
            .collect();
        let max_rows = rows.iter().copied().max().unwrap_or(0).clamp(1, MAX_ROWS) as f64;
        // The box fits its tasks and its header (id, title, state) alike.
        let header = truncate(&format!("{} · {}", phase_label(p), p.state), HEADER_CHARS);
        let w = (PAD * 2.0 + cols as f64 * NODE_W + (cols as f64 - 1.0) * GAP_X)
            .max(PAD * 2.0 + header.chars().count() as f64 * HEADER_CHAR_W);
        let h = HEADER + PAD * 2.0 + max_rows * NODE_H + (max_rows - 1.0) * GAP_Y;
        let (_, stroke) = state_colours(&p.state);
        clusters += &format!(
            "<g class=\"cluster\" data-phase=\"{id}\"><title>{label} ({state})</title>\
             <rect x=\"{x}\" y=\"{MARGIN}\" width=\"{w}\" height=\"{h}\" rx=\"10\" fill=\"#ffffff\" fill-opacity=\"0.6\" stroke=\"{stroke}\" stroke-width=\"2\"/>\
             <text x=\"{tx}\" y=\"{ty}\" font-size=\"13\" font-weight=\"600\" fill=\"#111827\">{short}</text></g>\n",
            id = esc(&p.id),
            label = esc(&phase_label(p)),
            state = esc(&p.state),
            tx = x + PAD,
            ty = MARGIN + 18.0,
            short = esc(&header),
        );
        for (t, c, r) in place {
            let nx = x + PAD + c as f64 * (NODE_W + GAP_X);
            let ny = MARGIN + HEADER + PAD + r as f64 * (NODE_H + GAP_Y);
            pos.insert(&t.id, (nx, ny));
            let (fill, stroke) = state_colours(&t.state);
            let dash = if t.state == "skipped" {
                " stroke-dasharray=\"4 3\""
            } else {
                ""
            };
            let sub = t.title.as_deref().unwrap_or(&t.state);
            nodes += &format!(
                "<g class=\"node state-{state}\" data-task=\"{id}\"><title>{id}{title} ({state})</title>\
                 <rect x=\"{nx}\" y=\"{ny}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"6\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.5\"{dash}/>\
                 <text x=\"{lx}\" y=\"{ly1}\" font-size=\"12\" font-weight=\"600\" fill=\"#111827\">{short_id}</text>\
                 <text x=\"{lx}\" y=\"{ly2}\" font-size=\"11\" fill=\"#4b5563\">{short_sub}</text></g>\n",
                state = esc(&t.state),
                id = esc(&t.id),
                title = t.title.as_deref().map_or(String::new(), |s| format!(" — {}", esc(s))),
                lx = nx + 8.0,
                ly1 = ny + 18.0,
                ly2 = ny + 34.0,
                short_id = esc(&truncate(&t.id, 22)),
                short_sub = esc(&truncate(sub, 25)),
            );
        }
        x += w + CLUSTER_GAP;
        height = height.max(h);
    }
    let mut edges = String::new();
    for t in dag.tasks() {
        let Some(&(tx, ty)) = pos.get(t.id.as_str()) else {
            continue;
        };
        for d in &t.depends_on {
            let Some(&(fx, fy)) = pos.get(d.as_str()) else {
                continue;
            };
            let (x1, y1) = (fx + NODE_W, fy + NODE_H / 2.0);
            let (x2, y2) = (tx, ty + NODE_H / 2.0);
            let dx = ((x2 - x1) / 2.0).max(20.0);
            edges += &format!(
                "<path class=\"edge\" data-from=\"{}\" data-to=\"{}\" d=\"M{x1},{y1} C{},{y1} {},{y2} {},{y2}\" fill=\"none\" stroke=\"#6b7280\" stroke-width=\"1.4\" marker-end=\"url(#arrow)\"/>\n",
                esc(d),
                esc(&t.id),
                x1 + dx,
                x2 - dx,
                x2 - 1.0,
            );
        }
    }
    let width = (x - CLUSTER_GAP + MARGIN).max(2.0 * MARGIN);
    let height = height + 2.0 * MARGIN;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"dag\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"system-ui, sans-serif\" role=\"img\" aria-label=\"dependency graph of plan {}\">\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#6b7280\"/></marker></defs>\n\
         {clusters}{edges}{nodes}</svg>",
        esc(&dag.name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dag() -> Dag {
        let t = |id: &str, state: &str, deps: &[&str]| DagTask {
            id: id.into(),
            title: None,
            state: state.into(),
            depends_on: deps.iter().map(|s| s.to_string()).collect(),
        };
        Dag {
            name: "p".into(),
            title: Some("Say \"hi\"".into()),
            phases: vec![
                DagPhase {
                    id: "setup".into(),
                    title: None,
                    state: "checkpointed".into(),
                    tasks: vec![t("a", "done", &[]), t("b.c", "failed", &["a"])],
                },
                DagPhase {
                    id: "end".into(),
                    title: None,
                    state: "pending".into(),
                    tasks: vec![t("end", "pending", &["b.c"]), t("b_c", "skipped", &[])],
                },
            ],
        }
    }

    #[test]
    fn mermaid_ids_are_safe_and_unique() {
        let m = mermaid(&dag());
        assert!(m.contains("subgraph p_setup[\"setup\"]"), "{m}");
        assert!(m.contains("t_a[\"a\"]:::done"), "{m}");
        assert!(m.contains("t_b_c[\"b.c\"]:::failed"), "{m}");
        // `b_c` would collide with `b.c`; `end` is a mermaid keyword.
        assert!(m.contains("t_b_c_3[\"b_c\"]:::skipped"), "{m}");
        assert!(m.contains("t_end[\"end\"]:::pending"), "{m}");
        assert!(m.contains("t_a --> t_b_c\n"), "{m}");
        assert!(m.contains("t_b_c --> t_end\n"), "{m}");
    }

    #[test]
    fn dot_quotes_everything() {
        let d = dot(&dag());
        assert!(d.contains("label=\"p — Say \\\"hi\\\"\""), "{d}");
        assert!(d.contains("subgraph \"cluster_setup\" {"), "{d}");
        assert!(d.contains("\"a\" -> \"b.c\";"), "{d}");
    }

    #[test]
    fn svg_has_one_node_per_task_and_one_edge_per_dependency() {
        let s = svg(&dag());
        assert_eq!(s.matches("<g class=\"node ").count(), 4);
        assert_eq!(s.matches("<path class=\"edge\"").count(), 2);
        assert_eq!(s.matches("<g class=\"cluster\"").count(), 2);
    }
}
