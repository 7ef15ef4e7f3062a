//! The run report as one self-contained HTML file: inline CSS, the report
//! data as inline JSON, a small script that draws the timeline from it, and
//! the dependency graph as inline SVG. Nothing is fetched, so it opens from
//! a mail attachment or a CI artifact in any browser, offline. The tables
//! are rendered here, not by the script, so the page reads without JS too.

use super::graph::{self, Dag};
use super::report_md::vs_estimate;
use super::{html_escape as esc, offset, short, utc_time};
use crate::engine::report::Report;
use crate::ui::duration;

const STYLE: &str = r#"
:root { --bg:#f8fafc; --fg:#0f172a; --muted:#64748b; --card:#ffffff; --line:#e2e8f0;
  --done:#22c55e; --failed:#ef4444; --conflict:#f97316; --skipped:#9ca3af; --running:#f59e0b; --interrupted:#a78bfa; --pending:#cbd5e1; }
@media (prefers-color-scheme: dark) {
  :root { --bg:#0b1120; --fg:#e2e8f0; --muted:#94a3b8; --card:#111827; --line:#1f2937; }
}
* { box-sizing: border-box; }
body { margin:0; padding:24px 32px 64px; background:var(--bg); color:var(--fg);
  font:14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { margin:0 0 4px; font-size:24px; }
h2 { margin:32px 0 12px; font-size:18px; border-bottom:1px solid var(--line); padding-bottom:4px; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:12.5px; }
.meta { color:var(--muted); margin:0; }
.cards { display:flex; flex-wrap:wrap; gap:12px; margin-top:16px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 14px; min-width:120px; }
.card b { display:block; font-size:20px; }
.card span { color:var(--muted); font-size:12px; }
table { border-collapse:collapse; width:100%; background:var(--card); border:1px solid var(--line); }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; color:var(--muted); font-weight:600; }
.pill { display:inline-block; padding:0 8px; border-radius:999px; font-size:12px; color:#111827; background:var(--pending); }
.pill.done, .pill.checkpointed, .pill.passed { background:var(--done); }
.pill.failed { background:var(--failed); color:#fff; }
.pill.conflict { background:var(--conflict); }
.pill.skipped { background:var(--skipped); }
.pill.running, .pill.active { background:var(--running); }
.pill.interrupted { background:var(--interrupted); }
.over { color:var(--failed); } .under { color:#16a34a; }
.legend { display:flex; gap:14px; flex-wrap:wrap; color:var(--muted); font-size:12px; margin-bottom:8px; }
.legend i { display:inline-block; width:12px; height:12px; border-radius:3px; vertical-align:-2px; margin-right:4px; }
.timeline { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:8px 12px 12px; overflow-x:auto; }
.tl-grid { display:grid; grid-template-columns:64px 1fr; min-width:640px; }
.tl-label { color:var(--muted); font-size:11px; height:26px; line-height:20px; }
.tl-labels { padding-top:18px; }
.tl-axis, .tl-track { position:relative; }
.tl-track { overflow:hidden; }
.tl-axis { height:22px; border-bottom:1px solid var(--line); }
.tl-tick { position:absolute; top:0; font-size:11px; color:var(--muted); transform:translateX(-50%); white-space:nowrap; }
.tl-gridline { position:absolute; top:0; bottom:0; width:1px; background:var(--line); }
.tl-phase { position:absolute; top:0; bottom:0; background:rgba(99,102,241,.07); border-left:1px dashed rgba(99,102,241,.6); }
.tl-phase span { position:absolute; bottom:1px; left:4px; font-size:11px; color:#6366f1; white-space:nowrap; }
.tl-marker { position:absolute; top:0; bottom:0; width:0; border-left:2px solid #16a34a; }
.tl-marker.failed { border-left-color:var(--failed); border-left-style:dotted; }
.tl-marker.rollback, .tl-marker.undo { border-left-color:#7c3aed; border-left-style:dashed; }
.tl-marker span { position:absolute; top:0; left:3px; font-size:11px; white-space:nowrap; color:var(--fg);
  background:var(--card); padding:0 3px; border-radius:3px; opacity:.9; }
.bar { position:absolute; height:20px; min-width:4px; border-radius:4px; font-size:11px; line-height:20px;
  padding:0 4px; overflow:hidden; white-space:nowrap; color:#111827; text-decoration:none; box-shadow:0 0 0 1px rgba(0,0,0,.15) inset; }
.bar.done { background:var(--done); } .bar.failed { background:var(--failed); color:#fff; }
.bar.conflict { background:var(--conflict); } .bar.skipped { background:var(--skipped); }
.bar.running { background:repeating-linear-gradient(45deg, var(--running) 0 8px, #fbbf24 8px 16px); }
.bar.interrupted { background:var(--interrupted); }
.graph { background:#ffffff; border:1px solid var(--line); border-radius:8px; padding:8px; overflow:auto; }
details { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:6px 12px; margin:6px 0; }
summary { cursor:pointer; font-weight:600; }
pre { white-space:pre-wrap; margin:8px 0; }
.muted { color:var(--muted); }
"#;

const SCRIPT: &str = r#"
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var root = document.getElementById('timeline');
  root.textContent = '';
  var t0 = data.started_at;
  var t1 = data.ended_at;
  data.attempts.forEach(function (a) { t1 = Math.max(t1, a.end === null ? data.generated_at : a.end); });
  var span = Math.max(t1 - t0, 1);
  function pct(t) { return ((t - t0) / span * 100).toFixed(4) + '%'; }
  function dur(s) {
    s = Math.max(0, s);
    if (s < 60) return s.toFixed(1) + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm' + String(Math.floor(s % 60)).padStart(2, '0') + 's';
    return Math.floor(s / 3600) + 'h' + String(Math.floor((s % 3600) / 60)).padStart(2, '0') + 'm';
  }
  function local(t) { return new Date(t * 1000).toLocaleString(); }
  function el(tag, cls, parent) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (parent) parent.appendChild(e);
    return e;
  }
  var grid = el('div', 'tl-grid', root);
  el('div', '', grid);
  var axis = el('div', 'tl-axis', grid);
  var steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400];
  var step = steps[steps.length - 1];
  for (var i = 0; i < steps.length; i++) { if (span / steps[i] <= 8) { step = steps[i]; break; } }
  var rowH = 26, slots = Math.max(data.slots, 1);
  var labels = el('div', 'tl-labels', grid);
  var track = el('div', 'tl-track', grid);
  track.style.height = (18 + slots * rowH + 16) + 'px';
  for (var s = 0; s <= span + 1e-9; s += step) {
    var tick = el('div', 'tl-tick', axis);
    tick.style.left = pct(t0 + s);
    tick.textContent = '+' + dur(s).replace(/\.0s$/, 's');
    el('div', 'tl-gridline', track).style.left = pct(t0 + s);
  }
  for (var r = 0; r < slots; r++) {
    el('div', 'tl-label', labels).textContent = 'slot ' + (r + 1);
  }
  data.phases.forEach(function (p) {
    if (p.started_at === null) return;
    var end = p.checkpoint ? p.checkpoint.at : null;
    data.attempts.forEach(function (a) {
      if (a.phase === p.id && a.n > 0 && !p.checkpoint) end = Math.max(end || 0, a.end === null ? t1 : a.end);
    });
    if (end === null) end = p.started_at;
    var band = el('div', 'tl-phase', track);
    band.dataset.phase = p.id;
    band.style.left = pct(p.started_at);
    band.style.width = ((Math.max(end - p.started_at, 0)) / span * 100).toFixed(4) + '%';
    band.title = 'phase ' + p.id + ' (' + p.state + ')';
    el('span', '', band).textContent = p.id;
  });
  var lastTag = null, lastAt = -1;
  data.events.forEach(function (e) {
    var kind = null, label = '';
    if (e.kind === 'checkpoint') { kind = e.outcome === 'passed' ? 'checkpoint' : 'failed'; label = (e.outcome === 'passed' ? '◆ ' : '✗ ') + e.subject; }
    else if (e.kind === 'rollback') { kind = 'rollback'; label = '↶ to ' + e.subject; }
    else if (e.kind === 'undo') { kind = 'undo'; label = '↷ undo'; }
    if (!kind) return;
    var m = el('div', 'tl-marker ' + kind, track);
    m.dataset.kind = kind;
    m.style.left = pct(e.time);
    m.title = e.summary + ' — ' + local(e.time);
    var at = (e.time - t0) / span;
    if (lastTag && at - lastAt < 0.06) {
      // Too close to the previous marker to have a label of its own.
      lastTag.textContent += ' · ' + label;
      return;
    }
    var tag = el('span', '', m);
    tag.textContent = label;
    if (at > 0.8) { tag.style.left = 'auto'; tag.style.right = '3px'; }
    lastTag = tag;
    lastAt = at;
  });
  data.attempts.forEach(function (a) {
    var end = a.end === null ? data.generated_at : a.end;
    var bar = el('a', 'bar ' + a.outcome, track);
    bar.href = '#task-' + a.task;
    bar.dataset.task = a.task;
    bar.dataset.attempt = a.n;
    bar.dataset.slot = a.slot;
    bar.style.left = pct(a.start);
    bar.style.width = (Math.max(end - a.start, 0) / span * 100).toFixed(4) + '%';
    bar.style.top = (18 + a.slot * rowH) + 'px';
    bar.textContent = a.task;
    bar.title = a.task + (a.n > 0 ? ' · attempt ' + a.n : '') + ' · ' + a.outcome + ' · ' + dur(end - a.start) +
      '\nstarted ' + local(a.start) + (a.reason ? '\n' + a.reason : '') +
      (a.changed.length ? '\nchanged: ' + a.changed.join(', ') : '');
  });
  root.dataset.rendered = String(data.attempts.length);
})();
"#;

fn pill(state: &str) -> String {
    format!("<span class=\"pill {0}\">{0}</span>", esc(state))
}

fn opt_secs(s: Option<f64>) -> String {
    s.map_or("—".to_string(), duration)
}

fn json_for_script(r: &Report) -> String {
    // `<` never appears outside JSON strings, so `\u003c` keeps the JSON
    // valid and makes `</script>` in a note harmless.
    serde_json::to_string(r)
        .unwrap_or_else(|_| "{}".to_string())
        .replace('<', "\\u003c")
}

pub fn render(r: &Report, dag: &Dag) -> String {
    let mut o = String::new();
    let title = r
        .title
        .as_deref()
        .map_or(String::new(), |t| format!(" — {t}"));
    let state_branch = r.state_ref.trim_start_matches("refs/heads/");
    o += "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    o += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
    o += &format!(
        "<title>git orch report: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&r.plan)
    );
    o += &format!(
        "<header><h1>Report: {}{}</h1>\n<p class=\"meta\">Started {} · last event {} · work <code>{}</code> · state <code>{}</code> at <code>{}</code> · generated {}</p></header>\n",
        esc(&r.plan),
        esc(&title),
        utc_time(r.started_at),
        utc_time(r.ended_at),
        short(&r.work),
        esc(state_branch),
        short(&r.state_commit),
        utc_time(r.generated_at)
    );
    let t = &r.totals;
    let status = if r.finished {
        "finished".to_string()
    } else {
        r.current_phase
            .as_ref()
            .map_or("all checkpointed".to_string(), |p| format!("in {p}"))
    };
    let vs = if t.estimated_seconds > 0.0 {
        vs_estimate(Some(t.measured_seconds / t.estimated_seconds))
    } else {
        "—".to_string()
    };
    o += "<section class=\"cards\">";
    for (value, label) in [
        (esc(&status), "status"),
        (
            format!("{}/{}", t.done + t.skipped, t.tasks),
            "tasks settled",
        ),
        (t.failed.to_string(), "failed"),
        (t.conflict.to_string(), "conflicts"),
        (t.attempts.to_string(), "attempts"),
        (duration(t.wall_seconds), "wall time"),
        (duration(t.task_seconds), "task time"),
        (vs, "vs estimates"),
        // An undone rollback is no rollback (its row says it was undone).
        (
            r.rollbacks
                .iter()
                .filter(|rb| !rb.undone)
                .count()
                .to_string(),
            "rollbacks",
        ),
    ] {
        o += &format!("<div class=\"card\"><b>{value}</b><span>{label}</span></div>");
    }
    o += "</section>\n";

    o += "<section><h2>Timeline</h2>\n<div class=\"legend\">";
    for s in [
        "done",
        "failed",
        "conflict",
        "skipped",
        "running",
        "interrupted",
    ] {
        o += &format!("<span><i style=\"background:var(--{s})\"></i>{s}</span>");
    }
    o += "<span>◆ checkpoint</span><span>✗ gates failed</span><span>↶ rollback</span><span>shaded: phase</span></div>\n";
    o += &format!(
        "<div id=\"timeline\" class=\"timeline\" data-slots=\"{}\" data-attempts=\"{}\"><p class=\"muted\">The timeline is drawn by JavaScript; the tables below hold the same data.</p></div>\n</section>\n",
        r.slots,
        r.attempts.len()
    );

    o += "<section><h2>Dependency graph</h2>\n<div class=\"graph\">";
    o += &graph::svg(dag);
    o += "</div></section>\n";

    o += "<section><h2>Phases</h2>\n<table><tr><th>phase</th><th>state</th><th>tasks</th><th>started</th><th>checkpoint</th><th>gates</th></tr>\n";
    for p in &r.phases {
        let cp = p.checkpoint.as_ref().map_or("—".to_string(), |c| {
            format!(
                "<code>{}</code> → <code>{}</code> at {}",
                esc(&c.tag),
                short(&c.commit),
                offset(r.started_at, c.at)
            )
        });
        let gates: Vec<String> = p
            .gates
            .iter()
            .map(|g| pill_named(&g.name, if g.passed { "passed" } else { "failed" }))
            .collect();
        o += &format!(
            "<tr id=\"phase-{id}\"><td><b>{id}</b>{title}</td><td>{}</td><td>{}</td><td>{}</td><td>{cp}</td><td>{}</td></tr>\n",
            pill(&p.state),
            p.tasks.len(),
            p.started_at.map_or("—".to_string(), |s| offset(r.started_at, s)),
            if gates.is_empty() { "—".to_string() } else { gates.join(" ") },
            id = esc(&p.id),
            title = p.title.as_deref().map_or(String::new(), |t| format!("<br><span class=\"muted\">{}</span>", esc(t))),
        );
    }
    o += "</table></section>\n";

    o += "<section><h2>Cost and time</h2>\n<table><tr><th>what</th><th>time</th><th>estimate</th><th>tokens in</th><th>tokens out</th><th>cost</th></tr>\n";
    for row in crate::engine::ledger::table(r) {
        o += "<tr>";
        for c in &row {
            o += &format!("<td>{}</td>", esc(c));
        }
        o += "</tr>\n";
    }
    o += &format!(
        "</table>\n<p>{}</p></section>\n",
        esc(&crate::engine::ledger::remaining_words(&r.ledger))
    );
    o += "<section><h2>Tasks</h2>\n<table><tr><th>task</th><th>phase</th><th>state</th><th>attempts</th><th>time</th><th>estimate</th><th>vs estimate</th><th>changed files</th></tr>\n";
    for task in &r.tasks {
        let ratio = vs_estimate(task.vs_estimate);
        let class = match task.vs_estimate {
            Some(v) if v > 1.0 => "over",
            Some(_) => "under",
            None => "",
        };
        let changed: Vec<String> = task
            .changed
            .iter()
            .map(|c| format!("<code>{}</code>", esc(c)))
            .collect();
        let reason = task
            .reason
            .as_deref()
            .filter(|_| matches!(task.state.as_str(), "failed" | "conflict" | "skipped"))
            .map_or(String::new(), |r| {
                format!("<br><span class=\"muted\">{}</span>", esc(r))
            });
        o += &format!(
            "<tr id=\"task-{id}\"><td><b>{id}</b>{title}</td><td>{}</td><td>{}{reason}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{ratio}</td><td>{}</td></tr>\n",
            esc(&task.phase),
            pill(&task.state),
            task.attempts,
            opt_secs(task.seconds),
            esc(task.estimate.as_deref().unwrap_or("—")),
            if changed.is_empty() { "—".to_string() } else { changed.join("<br>") },
            id = esc(&task.id),
            title = task.title.as_deref().map_or(String::new(), |t| format!("<br><span class=\"muted\">{}</span>", esc(t))),
        );
    }
    o += "</table></section>\n";

    if r.phases.iter().any(|p| !p.gates.is_empty()) {
        o += "<section><h2>Gates</h2>\n<table><tr><th>phase</th><th>gate</th><th>result</th><th>took</th><th>commit</th><th>log</th></tr>\n";
        for p in &r.phases {
            for g in &p.gates {
                o += &format!(
                    "<tr><td>{}</td><td><b>{}</b><br><code class=\"muted\">{}</code></td><td>{}{}</td><td>{}</td><td><code>{}</code></td><td><code>git orch log {} {}:{}</code></td></tr>\n",
                    esc(&p.id),
                    esc(&g.name),
                    esc(&g.command),
                    pill(if g.passed { "passed" } else { "failed" }),
                    if g.cached { " cached" } else { "" },
                    duration(g.seconds),
                    g.commit.short(),
                    esc(&r.plan),
                    esc(&p.id),
                    esc(&g.name)
                );
            }
        }
        o += "</table></section>\n";
    }

    o += "<section><h2>Failures</h2>\n";
    if r.failures.is_empty() {
        o += "<p class=\"muted\">None.</p>\n";
    } else {
        o +=
            "<table><tr><th>what</th><th>phase</th><th>when</th><th>reason</th><th>log</th></tr>\n";
        for f in &r.failures {
            let what = match f.attempt {
                Some(n) => format!("task <b>{}</b> (attempt {n})", esc(&f.name)),
                None => format!("gate <b>{}</b>", esc(&f.name)),
            };
            o += &format!(
                "<tr class=\"failure\"><td>{what}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                esc(&f.phase),
                f.at.map_or("—".to_string(), |a| offset(r.started_at, a)),
                esc(f.reason.as_deref().unwrap_or("failed")),
                super::failure_log_command(r, f)
                    .map_or("—".to_string(), |read| format!("<code>{}</code>", esc(&read))),
            );
        }
        o += "</table>\n";
    }
    o += "</section>\n";

    o += "<section><h2>Rollbacks</h2>\n";
    if r.rollbacks.is_empty() {
        o += "<p class=\"muted\">None.</p>\n";
    } else {
        o += "<table><tr><th>to</th><th>when</th><th>undone</th><th>discarded work kept in</th></tr>\n";
        for rb in &r.rollbacks {
            let kept: Vec<String> = rb
                .preserved
                .iter()
                .map(|p| format!("<code>{}</code>", esc(p)))
                .collect();
            o += &format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                esc(&rb.to),
                offset(r.started_at, rb.at),
                if rb.undone { "yes" } else { "no" },
                if kept.is_empty() {
                    "—".to_string()
                } else {
                    kept.join("<br>")
                }
            );
        }
        o += "</table>\n";
    }
    o += "</section>\n";

    o += "<section><h2>Handoff notes</h2>\n";
    let notes: Vec<_> = r.tasks.iter().filter(|t| t.handoff.is_some()).collect();
    if notes.is_empty() {
        o += "<p class=\"muted\">None yet.</p>\n";
    }
    for t in notes {
        o += &format!(
            "<details class=\"handoff\"><summary>{}</summary><pre>{}</pre></details>\n",
            esc(&t.id),
            esc(t.handoff.as_deref().unwrap_or(""))
        );
    }
    o += "</section>\n";

    o += &format!(
        "<section><h2>History</h2>\n<details><summary>{} state change(s) on <code>{}</code></summary>\n<table><tr><th>when</th><th>commit</th><th>event</th></tr>\n",
        r.events.len(),
        esc(state_branch)
    );
    for e in &r.events {
        o += &format!(
            "<tr><td title=\"{}\">{}</td><td><code>{}</code></td><td>{}</td></tr>\n",
            utc_time(e.time),
            offset(r.started_at, e.time),
            short(&e.commit),
            esc(&e.summary)
        );
    }
    o += "</table></details></section>\n";

    o += &format!(
        "<script type=\"application/json\" id=\"report-data\">{}</script>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        json_for_script(r)
    );
    o
}

fn pill_named(name: &str, state: &str) -> String {
    format!(
        "<span class=\"pill {}\" title=\"{}\">{}</span>",
        esc(state),
        esc(state),
        esc(name)
    )
}
