//! The full-screen view: ratatui on crossterm, which speaks plain ANSI to
//! whatever terminal is at the other end (tmux, SSH, a console). The
//! terminal is put back on every way out: q, Ctrl-C, an error, and a panic
//! (ratatui's init installs a hook that restores it before the message).
//!
//! Actions run this very binary (`git orch task reopen ID --plan P`) in a
//! thread, with its output captured: the same code path as typing the
//! command, and nothing it prints can tear the screen.

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph};
use ratatui::{DefaultTerminal, Frame};

use super::model::{self, Model, Row, Tone, Word};
use super::Follow;
use crate::ui;

/// How much of a log the side pane reads (its tail), and the full view.
const PANE_BYTES: usize = 64 << 10;
const FULL_BYTES: usize = 8 << 20;

pub fn run(mut follow: Follow, interval: Duration) -> Result<u8> {
    let colour = ui::colour_on();
    let mut terminal = ratatui::try_init().context(
        "cannot take the terminal for the full-screen view (try `git orch watch --plain`)",
    )?;
    let mut app = App::new(&follow.model, colour);
    let result = app.event_loop(&mut terminal, &mut follow, interval);
    ratatui::restore();
    result
}

enum Mode {
    List,
    /// The selected row's whole log, scrolled to `top` (a line index).
    Log {
        top: usize,
    },
}

struct App {
    rows: Vec<Row>,
    selected: usize,
    mode: Mode,
    colour: bool,
    /// The last action's result, or what is being done.
    message: String,
    action: Option<mpsc::Receiver<String>>,
    /// The selected row's log: title and lines (sanitised).
    log_title: String,
    log_lines: Vec<String>,
    /// `x` on a task in review: its id and the comments typed so far.
    rejecting: Option<(String, String)>,
}

impl App {
    fn new(model: &Model, colour: bool) -> App {
        let rows = model.rows();
        // Start on the first task that is running, else the first of the
        // current phase.
        let selected = rows
            .iter()
            .position(|r| {
                matches!(r, Row::Task(id) if model.task(id).is_some_and(|t| t.state == "running"))
            })
            .or_else(|| {
                rows.iter().position(
                    |r| matches!(r, Row::Task(id) if model.task(id).is_some_and(|t| Some(&t.phase) == model.phase.as_ref())),
                )
            })
            .unwrap_or(0);
        App {
            rows,
            selected,
            mode: Mode::List,
            colour,
            message: String::new(),
            action: None,
            log_title: String::new(),
            log_lines: Vec::new(),
            rejecting: None,
        }
    }

    fn event_loop(
        &mut self,
        terminal: &mut DefaultTerminal,
        follow: &mut Follow,
        interval: Duration,
    ) -> Result<u8> {
        let mut checked = Instant::now();
        self.reload_log(follow);
        loop {
            if checked.elapsed() >= interval {
                checked = Instant::now();
                match follow.refresh() {
                    Ok(true) => self.sync_rows(&follow.model),
                    Ok(false) => {}
                    Err(e) => self.message = format!("cannot read the state: {e:#}"),
                }
                self.reload_log(follow);
            }
            if let Some(rx) = &self.action {
                if let Ok(done) = rx.try_recv() {
                    self.message = done;
                    self.action = None;
                    if follow.refresh().unwrap_or(false) {
                        self.sync_rows(&follow.model);
                    }
                    self.reload_log(follow);
                }
            }
            terminal
                .draw(|f| self.draw(f, follow))
                .context("cannot draw on the terminal")?;
            // The tests' way to check that a panic gives the terminal back.
            #[cfg(feature = "failpoints")]
            if std::env::var_os("ORCH_WATCH_PANIC").is_some() {
                panic!("ORCH_WATCH_PANIC is set");
            }
            if !event::poll(interval.min(Duration::from_millis(100)))? {
                continue;
            }
            if let Event::Key(key) = event::read()? {
                if key.kind != KeyEventKind::Press {
                    continue;
                }
                if !self.key(key, follow) {
                    return Ok(0);
                }
            }
        }
    }

    /// Keeps the selection on the same row when the rows change.
    fn sync_rows(&mut self, model: &Model) {
        let current = self.rows.get(self.selected).cloned();
        self.rows = model.rows();
        if let Some(at) = current.and_then(|c| self.rows.iter().position(|r| *r == c)) {
            self.selected = at;
        }
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }

    fn reload_log(&mut self, follow: &Follow) {
        let Some(row) = self.rows.get(self.selected) else {
            return;
        };
        let limit = match self.mode {
            Mode::List => PANE_BYTES,
            Mode::Log { .. } => FULL_BYTES,
        };
        let (title, text) = follow.log(row, limit);
        self.log_title = title;
        self.log_lines = text.lines().map(printable).collect();
        // A stale task's row is too narrow for what recovers it: the pane
        // says it first.
        if let Some(task) = self.selected_task(&follow.model) {
            if Word::of(task) == Word::Stale {
                if let Some(note) = model::note(task) {
                    self.log_lines.insert(0, String::new());
                    self.log_lines.insert(0, printable(&note));
                }
            }
        }
    }

    /// Handles a key; false when it is time to quit.
    fn key(&mut self, key: KeyEvent, follow: &Follow) -> bool {
        let ctrl_c =
            key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
        if ctrl_c {
            return false;
        }
        if let Some((id, text)) = self.rejecting.as_mut() {
            match key.code {
                KeyCode::Esc => {
                    self.rejecting = None;
                    self.message = "reject cancelled".to_string();
                }
                KeyCode::Enter if text.trim().is_empty() => {
                    self.message = format!(
                        "reject {id}: a rejection needs comments (what to change), Esc cancels"
                    );
                    return true;
                }
                KeyCode::Enter => {
                    let (id, text) = (id.clone(), text.trim().to_string());
                    self.rejecting = None;
                    self.act(follow, &["task", "reject", &id, "-m", &text]);
                }
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) => text.push(c),
                _ => {}
            }
            if let Some((id, text)) = &self.rejecting {
                self.message = format!("reject {id}, comments: {text}▏ (Enter sends, Esc cancels)");
            }
            return true;
        }
        match self.mode {
            Mode::Log { top } => {
                let last = self.log_lines.len().saturating_sub(1);
                let top = match key.code {
                    KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('h') | KeyCode::Left => {
                        self.mode = Mode::List;
                        self.reload_log(follow);
                        return true;
                    }
                    KeyCode::Up | KeyCode::Char('k') => top.saturating_sub(1),
                    KeyCode::Down | KeyCode::Char('j') => top + 1,
                    KeyCode::PageUp => top.saturating_sub(20),
                    KeyCode::PageDown | KeyCode::Char(' ') => top + 20,
                    KeyCode::Home | KeyCode::Char('g') => 0,
                    KeyCode::End | KeyCode::Char('G') => last,
                    _ => top,
                };
                self.mode = Mode::Log { top: top.min(last) };
            }
            Mode::List => {
                let last = self.rows.len().saturating_sub(1);
                let before = self.selected;
                match key.code {
                    KeyCode::Char('q') | KeyCode::Esc => return false,
                    KeyCode::Up | KeyCode::Char('k') => {
                        self.selected = self.selected.saturating_sub(1)
                    }
                    KeyCode::Down | KeyCode::Char('j') => {
                        self.selected = (self.selected + 1).min(last)
                    }
                    KeyCode::PageUp => self.selected = self.selected.saturating_sub(10),
                    KeyCode::PageDown => self.selected = (self.selected + 10).min(last),
                    KeyCode::Home | KeyCode::Char('g') => self.selected = 0,
                    KeyCode::End | KeyCode::Char('G') => self.selected = last,
                    KeyCode::Enter | KeyCode::Char('l') | KeyCode::Right => {
                        self.mode = Mode::Log { top: 0 };
                        self.reload_log(follow);
                    }
                    KeyCode::Char('r') => self.retry(follow),
                    KeyCode::Char('o') => self.reopen(follow),
                    KeyCode::Char('a') => self.review(follow, true),
                    KeyCode::Char('x') => self.review(follow, false),
                    _ => {}
                }
                if self.selected != before {
                    self.reload_log(follow);
                }
            }
        }
        true
    }

    fn selected_task<'a>(&self, model: &'a Model) -> Option<&'a model::TaskRow> {
        match self.rows.get(self.selected)? {
            Row::Task(id) => model.task(id),
            _ => None,
        }
    }

    fn retry(&mut self, follow: &Follow) {
        let Some(task) = self.selected_task(&follow.model) else {
            self.message = "r retries a task: select one".to_string();
            return;
        };
        if !model::can_retry(task) {
            self.message = format!(
                "r retries a failed task; {} is {}",
                task.id,
                Word::of(task).label()
            );
            return;
        }
        if !cli_has(&["task", "retry"]) {
            self.message = format!(
                "this git-orch has no `task retry`; `git orch task reset {}` then `git orch run` does it",
                task.id
            );
            return;
        }
        let id = task.id.clone();
        self.act(follow, &["task", "retry", &id]);
    }

    /// `a` approves a task in review (`git orch task approve ID`); `x` asks
    /// for the comments, then rejects it (`task reject ID -m …`).
    fn review(&mut self, follow: &Follow, approve: bool) {
        let key = if approve { 'a' } else { 'x' };
        let Some(task) = self.selected_task(&follow.model) else {
            self.message = format!("{key} acts on a task in review: select one");
            return;
        };
        if Word::of(task) != Word::Review {
            self.message = format!(
                "{key} {} a task in review; {} is {}",
                if approve { "approves" } else { "rejects" },
                task.id,
                Word::of(task).label()
            );
            return;
        }
        let id = task.id.clone();
        if approve {
            self.act(follow, &["task", "approve", &id]);
        } else {
            self.message = format!("reject {id}, comments: ▏ (Enter sends, Esc cancels)");
            self.rejecting = Some((id, String::new()));
        }
    }

    fn reopen(&mut self, follow: &Follow) {
        let Some(task) = self.selected_task(&follow.model) else {
            self.message = "o reopens a done task: select one".to_string();
            return;
        };
        if !model::can_reopen(task) {
            self.message = format!(
                "o reopens a done task; {} is {}",
                task.id,
                Word::of(task).label()
            );
            return;
        }
        let id = task.id.clone();
        self.act(follow, &["task", "reopen", &id]);
    }

    /// Runs `git orch ARGS --plan PLAN` in a thread; its outcome becomes
    /// the message line.
    fn act(&mut self, follow: &Follow, args: &[&str]) {
        if self.action.is_some() {
            self.message = "wait: the last action is still running".to_string();
            return;
        }
        let Some(exe) = Follow::exe() else {
            self.message = "cannot find the git-orch executable".to_string();
            return;
        };
        let mut argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        argv.extend(["--plan".to_string(), follow.plan().to_string()]);
        let shown = format!("git orch {}", argv.join(" "));
        self.message = format!("{shown} …");
        let dir = follow.repo.root.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let out = Command::new(exe)
                .args(&argv)
                .current_dir(dir)
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .output();
            let _ = tx.send(outcome(&shown, out));
        });
        self.action = Some(rx);
    }

    fn draw(&self, f: &mut Frame, follow: &Follow) {
        let area = f.area();
        let [head, body, foot] = Layout::default()
            .direction(Direction::Vertical)
            .constraints([
                Constraint::Length(1),
                Constraint::Min(3),
                Constraint::Length(2),
            ])
            .areas(area);
        f.render_widget(Paragraph::new(self.header(&follow.model)), head);
        match self.mode {
            Mode::List => {
                let wide = body.width >= 110;
                let [left, right] = Layout::default()
                    .direction(if wide {
                        Direction::Horizontal
                    } else {
                        Direction::Vertical
                    })
                    .constraints([Constraint::Percentage(55), Constraint::Percentage(45)])
                    .areas(body);
                self.draw_rows(f, left, follow);
                self.draw_tail(f, right);
            }
            Mode::Log { top } => self.draw_log(f, body, top),
        }
        let keys = match self.mode {
            Mode::List => {
                "↑↓/jk move · Enter/l log · r retry · o reopen · a approve · x reject · q quit"
            }
            Mode::Log { .. } => "↑↓/jk PgUp/PgDn g/G scroll · Esc/h back · Ctrl-C quit",
        };
        let message = if self.message.is_empty() {
            Line::raw("")
        } else {
            Line::raw(printable(&self.message))
        };
        f.render_widget(
            Paragraph::new(vec![message, Line::styled(keys, self.dim())]),
            foot,
        );
    }

    fn header(&self, m: &Model) -> Line<'static> {
        let title = m
            .title
            .as_deref()
            .map_or(String::new(), |t| format!(" — {t}"));
        let state = match (&m.phase, m.finished) {
            (_, true) => "finished".to_string(),
            (None, false) => "every phase checkpointed".to_string(),
            (Some(p), false) => format!("phase {p}"),
        };
        Line::from(vec![
            Span::styled(
                format!("plan {}", m.plan),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::raw(printable(&title)),
            Span::raw(format!(
                "   {}/{} settled · work {} · {state} · state {}",
                m.settled(),
                m.tasks.len(),
                short(&m.work),
                short(&m.state_commit)
            )),
        ])
    }

    fn draw_rows(&self, f: &mut Frame, area: Rect, follow: &Follow) {
        let m = &follow.model;
        let items: Vec<ListItem> = self
            .rows
            .iter()
            .map(|row| ListItem::new(self.row_line(row, follow, m)))
            .collect();
        let list = List::new(items)
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" phases and tasks "),
            )
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED))
            .highlight_symbol("› ");
        let mut state = ListState::default().with_selected(Some(self.selected));
        f.render_stateful_widget(list, area, &mut state);
    }

    fn row_line(&self, row: &Row, follow: &Follow, m: &Model) -> Line<'static> {
        match row {
            Row::Phase(id) => {
                let Some(p) = m.phase(id) else {
                    return Line::raw(id.clone());
                };
                let current = if m.phase.as_deref() == Some(id) {
                    "▶"
                } else {
                    " "
                };
                let tone = match p.state.as_str() {
                    "checkpointed" => Tone::Good,
                    "failed" => Tone::Bad,
                    "active" => Tone::Busy,
                    _ => Tone::Plain,
                };
                Line::from(vec![
                    Span::styled(
                        format!("{current} phase {id} "),
                        Style::new().add_modifier(Modifier::BOLD),
                    ),
                    Span::styled(format!("[{}]", p.state), self.tone(tone)),
                    Span::raw(format!(" {}/{}", p.done, p.tasks)),
                    Span::styled(
                        p.tag
                            .as_ref()
                            .map_or(String::new(), |t| format!("  tag {t}")),
                        self.dim(),
                    ),
                ])
            }
            Row::Gate(phase, name) => {
                let Some(g) = m.gate(phase, name) else {
                    return Line::raw(name.clone());
                };
                let (word, tone) = match (g.passed, g.cached) {
                    (true, true) => ("passed (cached)", Tone::Good),
                    (true, false) => ("passed", Tone::Good),
                    (false, _) => ("failed", Tone::Bad),
                };
                Line::from(vec![
                    Span::raw(format!("    gate {:<11} ", printable(name))),
                    Span::styled(format!("{word:<16}"), self.tone(tone)),
                    Span::styled(ui::duration(g.seconds), self.dim()),
                ])
            }
            Row::Task(id) => {
                let Some(t) = m.task(id) else {
                    return Line::raw(id.clone());
                };
                let word = Word::of(t);
                let time = match (follow.seconds(t), t.estimate_seconds) {
                    (Some(a), Some(e)) => {
                        format!("{} / est {}", ui::duration(a), ui::duration(e as f64))
                    }
                    (Some(a), None) => ui::duration(a),
                    (None, Some(e)) => format!("est {}", ui::duration(e as f64)),
                    (None, None) => String::new(),
                };
                let mut spans = vec![
                    Span::raw(format!("    {id:<16} ")),
                    Span::styled(format!("{:<16}", word.label()), self.tone(word.tone())),
                    Span::styled(format!("{time:<19}"), self.dim()),
                ];
                if t.attempts > 1 {
                    spans.push(Span::raw(format!(" try {}", t.attempts)));
                }
                if let Some(agent) = &t.agent {
                    spans.push(Span::raw(format!(" {}", printable(agent))));
                }
                if let Some(cost) = t.cost {
                    spans.push(Span::raw(format!(" ${cost:.2}")));
                }
                if let Some(latest) = t.latest_attempt() {
                    spans.push(Span::styled(format!(" {}", printable(&latest)), self.dim()));
                }
                if let Some(note) = model::note(t) {
                    spans.push(Span::styled(
                        format!(" {}", printable(&note)),
                        self.tone(word.tone()),
                    ));
                }
                Line::from(spans)
            }
        }
    }

    /// The selected row's log tail, as many lines as fit.
    fn draw_tail(&self, f: &mut Frame, area: Rect) {
        let fit = usize::from(area.height.saturating_sub(2));
        let start = self.log_lines.len().saturating_sub(fit);
        let lines: Vec<Line> = self.log_lines[start..]
            .iter()
            .map(|l| Line::raw(l.clone()))
            .collect();
        let block = Block::default()
            .borders(Borders::ALL)
            .title(format!(" {} ", printable(&self.log_title)));
        f.render_widget(Paragraph::new(lines).block(block), area);
    }

    fn draw_log(&self, f: &mut Frame, area: Rect, top: usize) {
        let fit = usize::from(area.height.saturating_sub(2));
        let end = (top + fit).min(self.log_lines.len());
        let top = top.min(end);
        let lines: Vec<Line> = self.log_lines[top..end]
            .iter()
            .map(|l| Line::raw(l.clone()))
            .collect();
        let block = Block::default().borders(Borders::ALL).title(format!(
            " {} · lines {}-{} of {} ",
            printable(&self.log_title),
            top + 1,
            end,
            self.log_lines.len()
        ));
        f.render_widget(Paragraph::new(lines).block(block), area);
    }

    fn tone(&self, tone: Tone) -> Style {
        if !self.colour {
            return Style::new();
        }
        match tone {
            Tone::Plain => Style::new(),
            Tone::Good => Style::new().fg(Color::Green),
            Tone::Busy => Style::new().fg(Color::Yellow),
            Tone::Bad => Style::new().fg(Color::Red),
            Tone::Person => Style::new().fg(Color::Magenta),
        }
    }

    fn dim(&self) -> Style {
        if self.colour {
            Style::new().add_modifier(Modifier::DIM)
        } else {
            Style::new()
        }
    }
}

/// Whether this binary's command line has `git orch WORDS…` (an action
/// the view offers only once the CLI has it).
fn cli_has(words: &[&str]) -> bool {
    use clap::CommandFactory;
    let mut cmd = crate::cli::Cli::command();
    for w in words {
        match cmd.find_subcommand(w) {
            Some(sub) => cmd = sub.clone(),
            None => return false,
        }
    }
    true
}

/// The result line of an action: the command and what it said.
fn outcome(shown: &str, out: std::io::Result<std::process::Output>) -> String {
    let out = match out {
        Ok(out) => out,
        Err(e) => return format!("{shown}: cannot run it: {e}"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let said = |pick: &dyn Fn(&str) -> bool| {
        stderr
            .lines()
            .chain(stdout.lines())
            .map(str::trim)
            .find(|l| !l.is_empty() && pick(l))
            .map(str::to_string)
    };
    if out.status.success() {
        let what = said(&|l: &str| !l.starts_with("hint:")).unwrap_or_else(|| "done".to_string());
        format!("{shown}: {what}")
    } else {
        let what = said(&|l: &str| l.starts_with("error:"))
            .or_else(|| said(&|_| true))
            .unwrap_or_else(|| format!("exited {}", out.status.code().unwrap_or(-1)));
        format!("{shown}: {what}")
    }
}

fn short(oid: &str) -> &str {
    crate::state::ids::short_text(oid)
}

/// A line of a log as the screen shows it: tabs as spaces, control
/// characters escaped (a task's output must not drive the terminal).
fn printable(line: &str) -> String {
    ui::printable(&line.replace('\t', "    "))
}
