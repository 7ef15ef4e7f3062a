//! What an agent's own output says about an attempt: how it ended, what it
//! used, its session, the calls it was refused. Read without any wrapper
//! from what each CLI prints (Claude Code's result object, Codex's JSON
//! events, aider's text), and classified by one table per kind:
//!
//! | what the agent says | class | what git-orch does |
//! | --- | --- | --- |
//! | finished, no error | success | commits and lands its work |
//! | usage limit ("usage limit", unified limit rejected) | usage limit | parks the task until the reset it names, else `usage_limit.wait` |
//! | rate limit (429), overloaded (529), 5xx | transient | retries with the plan's backoff |
//! | a tool call refused (out of scope), nothing changed | transient | retries, the reason in the brief, same session |
//! | out of credit, bad key, unknown model, no network | fatal | fails now, never retried, the agent's message as the reason |
//!
//! Everything here is parsed from bytes an agent wrote: nothing may panic,
//! and every string kept is bounded.

use crate::plan::AgentKind;
use crate::process::Exit;

/// How an attempt ended, by the agent's own account.
#[derive(Debug, Clone, PartialEq)]
pub enum Class {
    Success,
    /// Worth another attempt: rate limited, overloaded, a server error.
    Transient(String),
    /// Its usage limit: the task parks.
    UsageLimit(String),
    /// Another attempt would fail the same way.
    Fatal(String),
}

/// The agent's report of one attempt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// `None`: its output said nothing readable; its exit code decides.
    pub class: Option<Class>,
    /// When a usage limit resets (seconds since the epoch), if it said.
    pub reset: Option<f64>,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    pub tokens_cached: Option<u64>,
    pub cost_usd: Option<f64>,
    pub model: Option<String>,
    pub session: Option<String>,
    pub turns: Option<u32>,
    /// The tool calls it was refused, as `Tool target`.
    pub denied: Vec<String>,
    /// Its last message: the handoff note, or a reviewer's verdict.
    pub last_message: Option<String>,
    /// Whether the attempt continued an earlier attempt's session.
    pub resumed: bool,
}

/// How many characters of any text an agent wrote are kept.
const TEXT_LIMIT: usize = 2000;

/// The verdict line a review brief asks a reviewing agent to end with:
/// `VERDICT: approve` or `VERDICT: reject`, comments after it.
pub const VERDICT_LINE: &str = "VERDICT:";

/// Reads what agent kind `kind` printed (`log`, its output and errors as
/// they came) and how it exited.
pub fn read(kind: AgentKind, log: &[u8], exit: &Exit) -> Report {
    let text = String::from_utf8_lossy(log);
    let mut report = match kind {
        AgentKind::Command => return Report::default(),
        AgentKind::ClaudeCode => claude(&text),
        AgentKind::Codex => codex(&text),
        AgentKind::Aider => aider(&text),
    };
    // A process that was stopped or timed out, or never started, is its
    // exit's business, whatever it printed.
    if matches!(
        exit,
        Exit::TimedOut(_) | Exit::Stopped(_) | Exit::NotStarted(_) | Exit::Signal(_)
    ) {
        report.class = None;
    }
    if report.class == Some(Class::Success) && !exit.success() {
        report.class = None;
    }
    if report.class.is_none() && !exit.success() && no_network(&text) {
        report.class = Some(Class::Fatal(format!(
            "no network: the agent could not reach its model server ({})",
            exit.describe()
        )));
    }
    report
}

fn bounded(s: &str) -> String {
    let s: String = s
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .collect();
    let s = s.trim();
    match s.char_indices().nth(TEXT_LIMIT) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn one_line(s: &str) -> String {
    bounded(s)
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

fn objects(text: &str) -> impl Iterator<Item = serde_json::Value> + '_ {
    text.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .filter(|v| v.is_object())
}

fn u64_at(v: &serde_json::Value, key: &str) -> Option<u64> {
    v.get(key).and_then(serde_json::Value::as_u64)
}

fn str_at<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(serde_json::Value::as_str)
}

/// Claude Code's `--output-format json` object or `stream-json` lines.
fn claude(text: &str) -> Report {
    let mut r = Report::default();
    let mut result = None;
    // `stream-json` says when a limit of the account rejects requests,
    // with its reset: the one sign of a usage limit (its 429 reads like
    // any rate limit's).
    let mut limit: Option<Option<f64>> = None;
    // The statuses it retried (`api_retry` events): a 429 it never retried
    // is one its server said not to retry (`x-should-retry: false`), as a
    // usage limit is; a rate limit is retried.
    let mut retried: Vec<u64> = Vec::new();
    let streamed = text.contains("\"type\":\"system\"");
    // Calls a hook refused show in `stream-json` as error results of the
    // tool calls: named by the call they answer.
    let mut calls: std::collections::HashMap<String, String> = Default::default();
    let mut refused_by_hook = Vec::new();
    for v in objects(text) {
        let content = v
            .get("message")
            .and_then(|m| m.get("content"))
            .and_then(|c| c.as_array());
        for item in content.into_iter().flatten().take(100) {
            match str_at(item, "type") {
                Some("tool_use") => {
                    let input = item.get("input");
                    let target = input
                        .and_then(|i| {
                            str_at(i, "file_path")
                                .or_else(|| str_at(i, "notebook_path"))
                                .or_else(|| str_at(i, "command"))
                        })
                        .unwrap_or("");
                    let name = str_at(item, "name").unwrap_or("a tool");
                    if let Some(id) = str_at(item, "id") {
                        if calls.len() < 1000 {
                            calls.insert(id.to_string(), one_line(&format!("{name} {target}")));
                        }
                    }
                }
                Some("tool_result")
                    if item.get("is_error").and_then(|e| e.as_bool()) == Some(true) =>
                {
                    let said = match item.get("content") {
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                        None => String::new(),
                    };
                    if said.contains("git-orch refused this call") {
                        let call = str_at(item, "tool_use_id")
                            .and_then(|id| calls.get(id).cloned())
                            .unwrap_or_else(|| "a tool call".into());
                        refused_by_hook.push(call);
                    }
                }
                _ => {}
            }
        }
        match str_at(&v, "type") {
            Some("system") if str_at(&v, "subtype") == Some("api_retry") => {
                if let Some(status) = u64_at(&v, "error_status") {
                    retried.push(status);
                }
            }
            Some("system") => {
                r.session = str_at(&v, "session_id").map(one_line).or(r.session);
                r.model = str_at(&v, "model").map(one_line).or(r.model);
            }
            Some("rate_limit_event") => {
                let info = v.get("rate_limit_info");
                let rejected = info.and_then(|i| str_at(i, "status")) == Some("rejected");
                if rejected {
                    let reset = info
                        .and_then(|i| i.get("resetsAt"))
                        .and_then(serde_json::Value::as_f64)
                        .filter(|t| t.is_finite() && *t > 0.0)
                        // Milliseconds, if it is that big.
                        .map(|t| if t > 1e11 { t / 1000.0 } else { t });
                    limit = Some(reset);
                }
            }
            Some("result") => result = Some(v),
            _ => {}
        }
    }
    let Some(v) = result else {
        return r;
    };
    r.session = str_at(&v, "session_id").map(one_line).or(r.session);
    r.turns = u64_at(&v, "num_turns").map(|n| n.min(u32::MAX as u64) as u32);
    r.cost_usd = v
        .get("total_cost_usd")
        .and_then(serde_json::Value::as_f64)
        .filter(|c| c.is_finite() && *c >= 0.0);
    if let Some(u) = v.get("usage") {
        let input = u64_at(u, "input_tokens").unwrap_or(0);
        let created = u64_at(u, "cache_creation_input_tokens").unwrap_or(0);
        let read = u64_at(u, "cache_read_input_tokens").unwrap_or(0);
        r.tokens_in = Some(input.saturating_add(created).saturating_add(read));
        r.tokens_cached = Some(read);
        r.tokens_out = u64_at(u, "output_tokens");
    }
    if let Some(models) = v.get("modelUsage").and_then(|m| m.as_object()) {
        // The model that did the most work is the attempt's model.
        let main = models
            .iter()
            .max_by_key(|(_, m)| u64_at(m, "outputTokens").unwrap_or(0));
        if let Some((name, _)) = main {
            r.model = Some(one_line(name));
        }
    }
    for d in v
        .get("permission_denials")
        .and_then(|d| d.as_array())
        .into_iter()
        .flatten()
        .take(50)
    {
        let tool = str_at(d, "tool_name").unwrap_or("a tool");
        let input = d.get("tool_input");
        let target = input
            .and_then(|i| {
                str_at(i, "file_path")
                    .or_else(|| str_at(i, "notebook_path"))
                    .or_else(|| str_at(i, "command"))
            })
            .unwrap_or("");
        r.denied.push(one_line(&format!("{tool} {target}")));
    }
    for call in refused_by_hook.into_iter().take(50) {
        if !r.denied.contains(&call) {
            r.denied.push(call);
        }
    }
    let message = str_at(&v, "result").map(bounded).unwrap_or_default();
    r.last_message = (!message.is_empty()).then(|| message.clone());
    let is_error = v.get("is_error").and_then(|e| e.as_bool()).unwrap_or(false)
        || str_at(&v, "subtype").is_some_and(|s| s.starts_with("error"));
    let status = u64_at(&v, "api_error_status");
    r.class = Some(if !is_error {
        if r.denied.is_empty() {
            Class::Success
        } else {
            Class::Transient(refused(&r.denied))
        }
    } else if status == Some(429) && (limit.is_some() || (streamed && !retried.contains(&429))) {
        Class::UsageLimit(format!("usage limit: {}", one_line(&message)))
    } else {
        classify_error(status, &message, "Claude Code")
    });
    if let Some(Class::UsageLimit(_)) = &r.class {
        r.reset = limit.flatten().or_else(|| reset_in(&message));
    }
    r
}

fn refused(denied: &[String]) -> String {
    format!(
        "the agent was refused {} tool call{}: {}",
        denied.len(),
        if denied.len() == 1 { "" } else { "s" },
        denied.join("; ")
    )
}

/// The table: an API error's status and message to a class.
fn classify_error(status: Option<u64>, message: &str, who: &str) -> Class {
    let m = message.to_ascii_lowercase();
    let said = if message.trim().is_empty() {
        format!("{who} reported an error")
    } else {
        one_line(message)
    };
    let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if let Some(rest) = message.strip_prefix("fatal: ") {
        return Class::Fatal(one_line(rest));
    }
    // Not "limit reached": OpenAI's rate limit says "Rate limit reached".
    if has(&["usage limit", "hit your usage", "usage_limit"]) {
        return Class::UsageLimit(format!("usage limit: {said}"));
    }
    if has(&[
        "credit balance",
        "insufficient_quota",
        "insufficient quota",
        "billing",
        "out of credit",
    ]) {
        return Class::Fatal(format!("out of credit: {said}"));
    }
    if matches!(status, Some(401 | 403))
        || has(&[
            "invalid api key",
            "invalid x-api-key",
            "authentication",
            "unauthorized",
            "incorrect api key",
        ])
    {
        return Class::Fatal(format!("the API key was refused: {said}"));
    }
    if status == Some(404)
        || (has(&["model"]) && has(&["not found", "does not exist", "unknown model", "not_found"]))
    {
        return Class::Fatal(format!("unknown model: {said}"));
    }
    if status == Some(429) || has(&["rate limit", "rate_limit", "429", "too many requests"]) {
        return Class::Transient(format!("rate limit: {said}"));
    }
    if matches!(status, Some(500..=599))
        || has(&[
            "overloaded",
            "529",
            "internal server error",
            "service unavailable",
            "bad gateway",
        ])
    {
        return Class::Transient(format!("the model server failed: {said}"));
    }
    if no_network(message) {
        return Class::Fatal(format!("no network: {said}"));
    }
    Class::Fatal(said)
}

/// Words a CLI uses when it cannot reach its server at all.
fn no_network(text: &str) -> bool {
    let m = text.to_ascii_lowercase();
    [
        "unable to connect",
        "connection refused",
        "econnrefused",
        "enotfound",
        "apiconnectionerror",
        "connection error",
        "error sending request",
        "failed to connect",
        "network is unreachable",
        "dns error",
        "fetch failed",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// A reset time in a limit's message: `|<epoch seconds>` (Claude Code's
/// own form), a ten-digit epoch, or an RFC 3339 time.
pub fn reset_in(message: &str) -> Option<f64> {
    for word in
        message.split(|c: char| c.is_whitespace() || c == '|' || c == '"' || c == '(' || c == ')')
    {
        let w = word.trim_end_matches(['.', ',', ';']);
        if w.len() == 10 && w.bytes().all(|b| b.is_ascii_digit()) {
            return w.parse().ok();
        }
        if w.len() >= 20 {
            if let Some(t) = crate::engine::agents::parse_reset(w) {
                return Some(t);
            }
        }
    }
    None
}

/// Codex's `exec --json` events.
fn codex(text: &str) -> Report {
    let mut r = Report::default();
    let mut failure: Option<String> = None;
    let mut completed = false;
    let mut sandbox_broken = None;
    let mut passing: Option<String> = None;
    for v in objects(text) {
        match str_at(&v, "type") {
            Some("thread.started") => r.session = str_at(&v, "thread_id").map(one_line),
            Some("turn.completed") => {
                completed = true;
                // An `error` before a turn that completed was one Codex
                // got over ("Reconnecting... 1/1").
                passing = None;
                r.turns = Some(r.turns.unwrap_or(0).saturating_add(1));
                if let Some(u) = v.get("usage") {
                    let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
                        (None, None) => None,
                        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
                    };
                    r.tokens_in = add(r.tokens_in, u64_at(u, "input_tokens"));
                    r.tokens_cached = add(r.tokens_cached, u64_at(u, "cached_input_tokens"));
                    r.tokens_out = add(r.tokens_out, u64_at(u, "output_tokens"));
                }
            }
            Some("turn.failed") => {
                failure = v
                    .get("error")
                    .and_then(|e| str_at(e, "message"))
                    .map(bounded)
                    .or(failure)
                    .or(Some(String::new()));
            }
            Some("error") => {
                passing = str_at(&v, "message").map(bounded).or(passing);
            }
            Some("item.completed") | Some("item.updated") => {
                let Some(item) = v.get("item") else { continue };
                match str_at(item, "type") {
                    Some("agent_message") => r.last_message = str_at(item, "text").map(bounded),
                    Some("command_execution") => {
                        let out = str_at(item, "aggregated_output").unwrap_or("");
                        let failed = u64_at(item, "exit_code").is_some_and(|c| c != 0)
                            || str_at(item, "status") == Some("failed");
                        let o = out.to_ascii_lowercase();
                        if failed
                            && (o.contains("bwrap")
                                || o.contains("sandbox")
                                || o.contains("landlock"))
                        {
                            sandbox_broken.get_or_insert_with(|| one_line(out));
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    // An error no completed turn followed.
    if failure.is_none() {
        failure = passing;
    }
    // Refused before any turn, on stderr (a prompt too long).
    if failure.is_none() && !completed {
        failure = text
            .lines()
            .rev()
            .find(|l| {
                let l = l.to_ascii_lowercase();
                l.contains("exceeds the maximum length") || l.contains("input_too_large")
            })
            .map(|l| format!("fatal: {}", one_line(l.trim_start_matches("Error: "))));
    }
    r.class = match (failure, completed, sandbox_broken) {
        (Some(m), _, _) => Some(classify_error(None, &m, "Codex")),
        (None, _, Some(why)) => Some(Class::Fatal(format!(
            "Codex's sandbox could not run its commands: {why}"
        ))),
        (None, true, None) => Some(Class::Success),
        (None, false, None) => None,
    };
    if let Some(Class::UsageLimit(m)) = &r.class {
        r.reset = reset_in(m).or_else(|| try_again_at(m));
    }
    r
}

/// Codex's `… or try again at Jan 1st, 2030 12:00 AM.`, taken as UTC.
fn try_again_at(message: &str) -> Option<f64> {
    let at = message.split("try again at").nth(1)?.trim();
    let words: Vec<&str> = at
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let [month, day, year, time, half, ..] = words.as_slice() else {
        return None;
    };
    let months = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let m = months
        .iter()
        .position(|x| month.to_ascii_lowercase().starts_with(x))? as u32
        + 1;
    let d: u32 = day
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .parse()
        .ok()?;
    let y: i64 = year.parse().ok()?;
    let (h, min) = time.split_once(':')?;
    let (mut h, min): (u32, u32) = (h.parse().ok()?, min.parse().ok()?);
    let half = half.trim_end_matches('.').to_ascii_uppercase();
    if h > 12 || min > 59 || !(1..=31).contains(&d) {
        return None;
    }
    match half.as_str() {
        "AM" if h == 12 => h = 0,
        "PM" if h != 12 => h += 12,
        "AM" | "PM" => {}
        _ => return None,
    }
    let text = format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:00Z");
    crate::engine::agents::parse_reset(&text)
}

/// aider's text: `Tokens: 1.2k sent, 17 received. Cost: $0.0020 message,
/// $0.0020 session.`, its edits (`Applied edit to`), and its errors.
fn aider(text: &str) -> Report {
    let mut r = Report::default();
    let mut edited = false;
    let mut error: Option<String> = None;
    for line in text.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("Tokens:") {
            let (sent, cached, received) = aider_tokens(rest);
            let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
            };
            r.tokens_in = add(r.tokens_in, sent);
            r.tokens_cached = add(r.tokens_cached, cached);
            r.tokens_out = add(r.tokens_out, received);
            r.turns = Some(r.turns.unwrap_or(0).saturating_add(1));
            if let Some(cost) = rest.split("Cost:").nth(1) {
                // `$X message, $Y session.`: the session's is the total so far.
                let session = cost
                    .split(',')
                    .find(|p| p.contains("session"))
                    .and_then(|p| p.trim().trim_start_matches('$').split_whitespace().next())
                    .and_then(|n| n.parse::<f64>().ok())
                    .filter(|c| c.is_finite() && *c >= 0.0);
                if session.is_some() {
                    r.cost_usd = session;
                }
            }
        } else if l.starts_with("Applied edit to") {
            edited = true;
        } else if l.starts_with("Model:") && r.model.is_none() {
            r.model = l
                .trim_start_matches("Model:")
                .split_whitespace()
                .next()
                .map(one_line);
        } else {
            let lower = l.to_ascii_lowercase();
            if lower.contains("litellm.") && lower.contains("error")
                || lower.contains("ratelimiterror")
                || lower.contains("apiconnectionerror")
                || lower.contains("authenticationerror")
                || lower.contains("notfounderror")
                || lower.contains("insufficient_quota")
            {
                // The first error names the cause; later lines repeat it.
                let keep = error.as_ref().is_none_or(|e| {
                    !e.to_ascii_lowercase().contains("insufficient_quota")
                        && lower.contains("insufficient_quota")
                });
                if keep {
                    error = Some(one_line(l));
                }
            }
        }
    }
    r.class = match (edited, error) {
        (true, _) => Some(Class::Success),
        (false, Some(e)) => Some(classify_error(None, &e, "aider")),
        (false, None) => None,
    };
    r
}

/// `1.2k sent, 3k cache hit, 17 received` → (sent + cache, cache, received).
fn aider_tokens(rest: &str) -> (Option<u64>, Option<u64>, Option<u64>) {
    let head = rest.split("Cost:").next().unwrap_or(rest);
    let (mut sent, mut cached, mut received) = (None, None, None);
    for part in head.split(',') {
        let mut words = part.split_whitespace();
        let Some(n) = words.next().and_then(count) else {
            continue;
        };
        let what: Vec<&str> = words.collect();
        match what.join(" ").trim_end_matches('.') {
            "sent" => sent = Some(n),
            "received" => received = Some(n),
            "cache hit" => cached = Some(n),
            "cache write" => sent = Some(sent.unwrap_or(0).saturating_add(n)),
            _ => {}
        }
    }
    let sent = match (sent, cached) {
        (Some(s), Some(c)) => Some(s.saturating_add(c)),
        (s, _) => s,
    };
    (sent, cached, received)
}

/// `594`, `1.2k`, `3.4M`.
fn count(word: &str) -> Option<u64> {
    let w = word.trim_end_matches(['.', ',']);
    let (num, mult) = match w.chars().last()? {
        'k' | 'K' => (&w[..w.len() - 1], 1e3),
        'm' | 'M' => (&w[..w.len() - 1], 1e6),
        _ => (w, 1.0),
    };
    let n: f64 = num.parse().ok()?;
    (n.is_finite() && n >= 0.0 && n * mult < 1e18).then(|| (n * mult).round() as u64)
}

/// A reviewer's verdict in its last message: the last `VERDICT:` line,
/// `approve` or `reject`, with the rest of the message as comments.
pub fn verdict(message: &str) -> Option<(bool, String)> {
    let line = message.lines().rev().find(|l| {
        l.trim_start()
            .to_ascii_uppercase()
            .starts_with(VERDICT_LINE)
    })?;
    let word = line.trim_start()[VERDICT_LINE.len()..].trim();
    let approve = match word
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()?
        .to_ascii_lowercase()
        .as_str()
    {
        "approve" | "approved" => true,
        "reject" | "rejected" => false,
        _ => return None,
    };
    let comments: String = message
        .lines()
        .filter(|l| !std::ptr::eq(*l, line))
        .collect::<Vec<_>>()
        .join("\n");
    let after = word
        .trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .trim_start_matches([':', '-', ' '])
        .trim();
    let comments = match (after.is_empty(), comments.trim().is_empty()) {
        (false, _) => after.to_string(),
        (true, false) => bounded(&comments),
        (true, true) => String::new(),
    };
    Some((approve, comments))
}

#[cfg(test)]
mod tests;
