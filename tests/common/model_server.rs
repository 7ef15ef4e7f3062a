//! A scripted model server for driving the real agent CLIs offline
//! (issue 21): Anthropic Messages (what Claude Code speaks), OpenAI
//! Responses (Codex) and OpenAI Chat Completions (aider, through litellm),
//! on 127.0.0.1 at a random port, a thread per connection, HTTP/1.1 with
//! keep-alive. Every response is built whole and sent with a
//! `Content-Length`, so a streaming (SSE) answer is one complete event
//! stream and the connection stays open for the next request.
//!
//! It plays a [script](Turn): a queue of turns that the agent's *main*
//! requests consume in order (a request that carries the conversation and
//! the tools). Side requests (Claude Code's session title, aider's commit
//! message, token counts, `HEAD /`) are answered trivially and consume
//! nothing. When the script is used up, every main request is answered
//! with the text "Done.".
//!
//! Every request is [recorded](ModelServer::requests) with its method,
//! path, headers and body, and whether it was a main request, so tests can
//! assert on what the agent sent.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// Which API a request spoke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// Anthropic Messages, `POST /v1/messages` (Claude Code).
    Anthropic,
    /// OpenAI Responses, `POST /v1/responses` (Codex).
    Responses,
    /// OpenAI Chat Completions, `POST /v1/chat/completions` (aider).
    Chat,
    /// Anything else (`HEAD /`, token counts, model lists, …).
    Other,
}

/// An HTTP answer given as is: status, extra headers and body.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// One step of the script.
#[derive(Clone, Debug)]
pub enum Turn {
    /// Write `content` to `path`, then finish with `text`. A relative path
    /// is taken from the agent's working directory (read from its request:
    /// Claude Code's "Working directory:" line, Codex's `<cwd>`). Claude
    /// Code: a `Write` tool call, then the text once the tool result comes
    /// back (two main requests). Codex: an `apply_patch` call (the tool
    /// Codex offers: its own `apply_patch`, else `apply_patch` run through
    /// its shell tool), then the text. aider: one whole-file edit reply.
    Write {
        path: String,
        content: String,
        text: String,
    },
    /// Run `command` in the agent's shell tool, then finish with `text`.
    /// Claude Code: a `Bash` tool call; Codex: `exec_command` (its shell
    /// tool, sandboxed). aider has no shell tool: it gets `text` only.
    Shell { command: String, text: String },
    /// A plain text answer.
    Text(String),
    /// An HTTP error, per API (the same error looks different to Anthropic
    /// and OpenAI clients). `forever` repeats it for every later request.
    Fail {
        anthropic: Reply,
        openai: Reply,
        forever: bool,
    },
}

impl Turn {
    pub fn write(path: &str, content: &str) -> Turn {
        Turn::Write {
            path: path.into(),
            content: content.into(),
            text: format!("Wrote {path}."),
        }
    }

    pub fn shell(command: &str) -> Turn {
        Turn::Shell {
            command: command.into(),
            text: "Ran it.".into(),
        }
    }

    pub fn text(text: &str) -> Turn {
        Turn::Text(text.into())
    }

    /// The same HTTP error for every API.
    pub fn http_error(status: u16, body: &str, headers: &[(&str, &str)]) -> Turn {
        let mut reply = Reply::new(status, body);
        for (k, v) in headers {
            reply = reply.header(k, *v);
        }
        Turn::Fail {
            anthropic: reply.clone(),
            openai: reply,
            forever: false,
        }
    }

    /// This turn answers every later request too (a server that always
    /// says 429, say). Only meaningful for `Fail`; other turns are returned
    /// unchanged.
    pub fn forever(self) -> Turn {
        match self {
            Turn::Fail {
                anthropic, openai, ..
            } => Turn::Fail {
                anthropic,
                openai,
                forever: true,
            },
            other => other,
        }
    }

    /// A 429 rate limit (retryable), with `retry-after: 0`.
    pub fn rate_limit() -> Turn {
        Turn::Fail {
            anthropic: anthropic_error(
                429,
                "rate_limit_error",
                "Rate limited by the scripted server",
            )
            .header("retry-after", "0"),
            openai: openai_error(
                429,
                "rate_limit_exceeded",
                "Rate limit reached for requests (scripted server)",
            )
            .header("retry-after", "0"),
            forever: false,
        }
    }

    /// A 429 rate limit on every request from now on.
    pub fn rate_limit_forever() -> Turn {
        Turn::rate_limit().forever()
    }

    /// A subscription usage limit that resets at `reset` (Unix seconds).
    /// Anthropic: 429 with the unified rate-limit headers saying
    /// "rejected" and the reset time. OpenAI: 429 with error type
    /// `usage_limit_reached` and `resets_at` (what makes Codex say "You've
    /// hit your usage limit").
    pub fn usage_limit(reset: u64) -> Turn {
        let anthropic = anthropic_error(
            429,
            "rate_limit_error",
            "This request would exceed your account's rate limit. Please try again later.",
        )
        .header("x-should-retry", "false")
        .header("anthropic-ratelimit-unified-status", "rejected")
        .header("anthropic-ratelimit-unified-reset", reset.to_string())
        .header(
            "anthropic-ratelimit-unified-representative-claim",
            "five_hour",
        )
        .header("anthropic-ratelimit-unified-5h-status", "rejected")
        .header("anthropic-ratelimit-unified-5h-reset", reset.to_string())
        .header("anthropic-ratelimit-unified-5h-utilization", "1.0");
        let now = now_secs();
        let openai = Reply::new(
            429,
            json!({"error": {
                "type": "usage_limit_reached",
                "message": "The usage limit has been reached",
                "plan_type": "plus",
                "resets_at": reset,
                "resets_in_seconds": reset.saturating_sub(now),
            }})
            .to_string(),
        );
        Turn::Fail {
            anthropic,
            openai,
            forever: false,
        }
    }

    /// Out of credit. Anthropic: 400 "Credit balance is too low". OpenAI:
    /// 429 `insufficient_quota`.
    pub fn credit_too_low() -> Turn {
        Turn::Fail {
            anthropic: anthropic_error(
                400,
                "invalid_request_error",
                "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
            ),
            openai: openai_error(
                429,
                "insufficient_quota",
                "You exceeded your current quota, please check your plan and billing details.",
            ),
            forever: false,
        }
    }

    /// 529 overloaded (Anthropic's code; OpenAI clients get a 503).
    pub fn overloaded() -> Turn {
        Turn::Fail {
            anthropic: anthropic_error(529, "overloaded_error", "Overloaded"),
            openai: openai_error(503, "server_error", "The server is overloaded"),
            forever: false,
        }
    }

    /// A 5xx server error.
    pub fn server_error(status: u16) -> Turn {
        Turn::Fail {
            anthropic: anthropic_error(status, "api_error", "Internal server error"),
            openai: openai_error(status, "server_error", "Internal server error"),
            forever: false,
        }
    }
}

fn anthropic_error(status: u16, kind: &str, message: &str) -> Reply {
    Reply::new(
        status,
        json!({"type": "error", "error": {"type": kind, "message": message}}).to_string(),
    )
}

fn openai_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::new(
        status,
        json!({"error": {"message": message, "type": code, "param": null, "code": code}})
            .to_string(),
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub api: Api,
    /// A main request: it took (or would have taken) a turn of the script.
    pub main: bool,
    /// The status the server answered with.
    pub status: u16,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct State {
    script: VecDeque<Turn>,
    /// The first main request of a `Write` turn was answered with the tool
    /// call; the next one finishes the turn.
    write_sent: bool,
    requests: Vec<Request>,
    ids: AtomicU64,
}

/// The server: started with [`ModelServer::start`], stopped when dropped.
pub struct ModelServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    accept: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl ModelServer {
    /// Binds 127.0.0.1 at a random port (in the calling thread's network
    /// namespace) and serves `script`.
    pub fn start(script: Vec<Turn>) -> ModelServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the model server");
        let port = listener.local_addr().expect("local addr").port();
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            write_sent: false,
            requests: Vec::new(),
            ids: AtomicU64::new(1),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve(conn, &st));
            }
        });
        ModelServer {
            port,
            state,
            stop,
            accept: Mutex::new(Some(accept)),
        }
    }

    /// Stops listening: from now on a connection to the port is refused
    /// (connections already open are still answered). For "no model
    /// server reachable".
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        let handle = self.accept.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// The main requests so far (those that consume turns).
    pub fn main_requests(&self) -> Vec<Request> {
        self.requests().into_iter().filter(|r| r.main).collect()
    }

    /// Turns not yet played.
    pub fn remaining(&self) -> usize {
        self.lock().script.len()
    }

    /// Appends turns to the script (for a second run against one server).
    pub fn push(&self, turns: Vec<Turn>) {
        let mut st = self.lock();
        st.script.extend(turns);
    }

    /// A one-line summary of every request, for assertion messages.
    pub fn log(&self) -> String {
        self.requests()
            .iter()
            .map(|r| {
                let tools: Vec<String> = r
                    .json()
                    .and_then(|j| j["tools"].as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .map(|t| {
                        let name = t["name"].as_str().or(t["function"]["name"].as_str());
                        format!(
                            "{}:{}",
                            t["type"].as_str().unwrap_or("?"),
                            name.unwrap_or("?")
                        )
                    })
                    .collect();
                format!(
                    "{} {} -> {} ({}{} bytes){}\n",
                    r.method,
                    r.path,
                    r.status,
                    if r.main { "main, " } else { "" },
                    r.body.len(),
                    if tools.is_empty() {
                        String::new()
                    } else {
                        format!(" tools: {}", tools.join(" "))
                    }
                )
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>) {
    let Ok(write_half) = conn.try_clone() else {
        return;
    };
    let mut out = write_half;
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("/").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v): &(String, String)| v.clone())
        };
        let mut body = Vec::new();
        if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut size = String::new();
                if reader.read_line(&mut size).unwrap_or(0) == 0 {
                    return;
                }
                let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                    .unwrap_or(0);
                if n == 0 {
                    let mut end = String::new();
                    let _ = reader.read_line(&mut end);
                    break;
                }
                let mut chunk = vec![0; n + 2];
                if reader.read_exact(&mut chunk).is_err() {
                    return;
                }
                chunk.truncate(n);
                body.extend(chunk);
            }
        } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body = vec![0; n];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
        }
        if get("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            // Too late to matter (the body was read); clients that send it
            // wait at most a moment.
        }
        let path = target.split('?').next().unwrap_or("/").to_string();
        let api = match (method.as_str(), path.as_str()) {
            ("POST", "/v1/messages") => Api::Anthropic,
            ("POST", "/v1/responses") => Api::Responses,
            ("POST", "/v1/chat/completions") => Api::Chat,
            _ => Api::Other,
        };
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let main = json.as_ref().is_some_and(|j| is_main(api, j));
        let (reply, stream) = {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            let reply = answer(&mut st, api, &path, json.as_ref(), main);
            st.requests.push(Request {
                method: method.clone(),
                path: path.clone(),
                headers: headers.clone(),
                body,
                api,
                main,
                status: reply.status,
            });
            let stream = reply
                .headers
                .iter()
                .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream"));
            (reply, stream)
        };
        let _ = stream;
        let mut head = format!(
            "HTTP/1.1 {} {}\r\ncontent-length: {}\r\nconnection: keep-alive\r\n",
            reply.status,
            reason(reply.status),
            reply.body.len()
        );
        for (k, v) in &reply.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if method != "HEAD" {
            bytes.extend_from_slice(reply.body.as_bytes());
        }
        if out.write_all(&bytes).and_then(|()| out.flush()).is_err() {
            return;
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

/// Whether a request is one of the agent's main requests (one that plays a
/// turn): it carries the agent's tools (Anthropic, Responses), or for Chat
/// Completions it is not aider's commit-message or summary request.
fn is_main(api: Api, body: &Value) -> bool {
    match api {
        Api::Anthropic | Api::Responses => body
            .get("tools")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty()),
        Api::Chat => {
            let system = body["messages"]
                .as_array()
                .and_then(|m| m.first())
                .map(|m| m["content"].to_string())
                .unwrap_or_default()
                .to_ascii_lowercase();
            !(system.contains("commit message") || system.contains("summariz"))
        }
        Api::Other => false,
    }
}

fn answer(st: &mut State, api: Api, path: &str, body: Option<&Value>, main: bool) -> Reply {
    let id = st.ids.fetch_add(1, Ordering::SeqCst);
    let Some(body) = body else {
        return match path {
            "/" => Reply::new(200, "{}"),
            "/v1/models" => Reply::new(200, json!({"object":"list","data":[]}).to_string()),
            _ => Reply::new(200, "{}"),
        };
    };
    if api == Api::Other {
        if path.ends_with("/count_tokens") {
            return Reply::new(200, json!({"input_tokens": 100}).to_string());
        }
        return Reply::new(200, "{}");
    }
    let stream = body["stream"].as_bool().unwrap_or(api == Api::Responses);
    let model = body["model"]
        .as_str()
        .unwrap_or("scripted-model")
        .to_string();
    if !main {
        let text = match api {
            Api::Anthropic => "{\"title\": \"Scripted task\"}".to_string(),
            _ => "Update files".to_string(),
        };
        return text_reply(api, stream, &model, id, &text);
    }
    let Some(turn) = st.script.front().cloned() else {
        return text_reply(api, stream, &model, id, "Done.");
    };
    match turn {
        Turn::Text(text) => {
            st.script.pop_front();
            text_reply(api, stream, &model, id, &text)
        }
        Turn::Fail {
            anthropic,
            openai,
            forever,
        } => {
            if !forever {
                st.script.pop_front();
            }
            if api == Api::Anthropic {
                anthropic
            } else {
                openai
            }
        }
        Turn::Shell { command, text } => {
            if api == Api::Chat || st.write_sent {
                st.write_sent = false;
                st.script.pop_front();
                return text_reply(api, stream, &model, id, &text);
            }
            st.write_sent = true;
            let call_id = format!("call_scripted_{id}");
            if api == Api::Anthropic {
                let blocks = vec![
                    json!({"type": "tool_use", "id": format!("toolu_scripted_{id}"),
                    "name": "Bash", "input": {"command": command, "description": "scripted"}}),
                ];
                anthropic_message(stream, &model, id, blocks, "tool_use")
            } else {
                let item = json!({"type": "function_call", "id": format!("fc_{id}"),
                    "call_id": call_id, "name": "exec_command",
                    "arguments": json!({"cmd": command}).to_string(), "status": "completed"});
                responses_stream(&model, id, vec![item])
            }
        }
        Turn::Write {
            path: file,
            content,
            text,
        } => {
            if api == Api::Chat {
                st.script.pop_front();
                let reply = format!("{text}\n\n{file}\n```\n{content}```\n");
                return text_reply(api, stream, &model, id, &reply);
            }
            if st.write_sent {
                st.write_sent = false;
                st.script.pop_front();
                return text_reply(api, stream, &model, id, &text);
            }
            st.write_sent = true;
            let cwd = working_dir(body);
            let abs = match (&cwd, Path::new(&file).is_absolute()) {
                (Some(cwd), false) => format!("{}/{}", cwd.trim_end_matches('/'), file),
                _ => file.clone(),
            };
            if api == Api::Anthropic {
                anthropic_tool(stream, &model, id, &abs, &content)
            } else {
                codex_patch(body, &model, id, &file, &content)
            }
        }
    }
}

/// The agent's working directory, from its request: Claude Code's system
/// prompt says "Working directory: /path"; Codex's environment context says
/// `<cwd>/path</cwd>`.
fn working_dir(body: &Value) -> Option<String> {
    let text = body.to_string();
    let text = text.replace("\\n", "\n");
    for line in text.split('\n') {
        // "Working directory: /x" or "Primary working directory: /x".
        if let Some(rest) = line.split("orking directory: ").nth(1) {
            let dir: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '\\')
                .collect();
            if !dir.is_empty() {
                return Some(dir);
            }
        }
    }
    if let Some(rest) = text.split("<cwd>").nth(1) {
        if let Some(dir) = rest.split("</cwd>").next() {
            return Some(dir.to_string());
        }
    }
    None
}

fn usage_anthropic(output: u64) -> Value {
    json!({"input_tokens": 1200, "output_tokens": output,
           "cache_creation_input_tokens": 0, "cache_read_input_tokens": 300})
}

fn sse(events: &[(&str, Value)]) -> String {
    let mut out = String::new();
    for (name, data) in events {
        if name.is_empty() {
            out.push_str(&format!("data: {data}\n\n"));
        } else {
            out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
        }
    }
    out
}

fn event_stream(body: String) -> Reply {
    Reply {
        status: 200,
        headers: vec![
            ("content-type".into(), "text/event-stream".into()),
            ("cache-control".into(), "no-cache".into()),
        ],
        body,
    }
}

fn text_reply(api: Api, stream: bool, model: &str, id: u64, text: &str) -> Reply {
    match api {
        Api::Anthropic => {
            let content = vec![json!({"type": "text", "text": text})];
            anthropic_message(stream, model, id, content, "end_turn")
        }
        Api::Responses => {
            let item = json!({"type": "message", "role": "assistant", "id": format!("msg_{id}"),
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}]});
            responses_stream(model, id, vec![item])
        }
        Api::Chat | Api::Other => chat_reply(stream, model, id, text),
    }
}

fn anthropic_message(stream: bool, model: &str, id: u64, content: Vec<Value>, stop: &str) -> Reply {
    let msg_id = format!("msg_scripted_{id}");
    if !stream {
        return Reply::new(
            200,
            json!({"id": msg_id, "type": "message", "role": "assistant", "model": model,
                   "content": content, "stop_reason": stop, "stop_sequence": null,
                   "usage": usage_anthropic(25)})
            .to_string(),
        );
    }
    let mut events = vec![(
        "message_start",
        json!({"type": "message_start", "message": {"id": msg_id, "type": "message",
            "role": "assistant", "model": model, "content": [], "stop_reason": null,
            "stop_sequence": null, "usage": usage_anthropic(1)}}),
    )];
    for (i, block) in content.iter().enumerate() {
        match block["type"].as_str() {
            Some("tool_use") => {
                events.push((
                    "content_block_start",
                    json!({"type": "content_block_start", "index": i, "content_block":
                        {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}),
                ));
                events.push((
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": i, "delta":
                        {"type": "input_json_delta", "partial_json": block["input"].to_string()}}),
                ));
            }
            _ => {
                events.push((
                    "content_block_start",
                    json!({"type": "content_block_start", "index": i,
                           "content_block": {"type": "text", "text": ""}}),
                ));
                events.push((
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": i,
                           "delta": {"type": "text_delta", "text": block["text"]}}),
                ));
            }
        }
        events.push((
            "content_block_stop",
            json!({"type": "content_block_stop", "index": i}),
        ));
    }
    events.push((
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
               "usage": {"output_tokens": 25}}),
    ));
    events.push(("message_stop", json!({"type": "message_stop"})));
    event_stream(sse(&events))
}

fn anthropic_tool(stream: bool, model: &str, id: u64, path: &str, content: &str) -> Reply {
    let blocks = vec![
        json!({"type": "tool_use", "id": format!("toolu_scripted_{id}"),
        "name": "Write", "input": {"file_path": path, "content": content}}),
    ];
    anthropic_message(stream, model, id, blocks, "tool_use")
}

fn responses_stream(model: &str, id: u64, items: Vec<Value>) -> Reply {
    let resp_id = format!("resp_scripted_{id}");
    let mut events = vec![(
        "response.created",
        json!({"type": "response.created", "response": {"id": resp_id, "model": model}}),
    )];
    for (i, item) in items.iter().enumerate() {
        events.push((
            "response.output_item.done",
            json!({"type": "response.output_item.done", "output_index": i, "item": item}),
        ));
    }
    events.push((
        "response.completed",
        json!({"type": "response.completed", "response": {"id": resp_id, "model": model,
            "status": "completed", "output": items,
            "usage": {"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 300},
                      "output_tokens": 25, "output_tokens_details": {"reasoning_tokens": 5},
                      "total_tokens": 1225}}}),
    ));
    event_stream(sse(&events))
}

/// A Codex tool call that adds `file` with `content`: its own
/// `apply_patch` tool when the request offers one (freeform or function),
/// else `apply_patch` through its shell tool (Codex recognises that and
/// applies the patch itself).
fn codex_patch(body: &Value, model: &str, id: u64, file: &str, content: &str) -> Reply {
    let mut patch = format!("*** Begin Patch\n*** Add File: {file}\n");
    for line in content.lines() {
        patch.push('+');
        patch.push_str(line);
        patch.push('\n');
    }
    patch.push_str("*** End Patch\n");
    let tools: Vec<Value> = body["tools"].as_array().cloned().unwrap_or_default();
    let tool = |name: &str| tools.iter().find(|t| t["name"] == name).cloned();
    let call_id = format!("call_scripted_{id}");
    let item = if let Some(t) = tool("apply_patch") {
        if t["type"] == "custom" {
            json!({"type": "custom_tool_call", "id": format!("ctc_{id}"), "call_id": call_id,
                   "name": "apply_patch", "input": patch, "status": "completed"})
        } else {
            json!({"type": "function_call", "id": format!("fc_{id}"), "call_id": call_id,
                   "name": "apply_patch", "arguments": json!({"input": patch}).to_string(),
                   "status": "completed"})
        }
    } else if tool("exec_command").is_some() {
        let cmd = format!("apply_patch <<'EOF'\n{patch}EOF\n");
        json!({"type": "function_call", "id": format!("fc_{id}"), "call_id": call_id,
               "name": "exec_command", "arguments": json!({"cmd": cmd}).to_string(),
               "status": "completed"})
    } else if tool("shell_command").is_some() {
        let cmd = format!("apply_patch <<'EOF'\n{patch}EOF\n");
        json!({"type": "function_call", "id": format!("fc_{id}"), "call_id": call_id,
               "name": "shell_command", "arguments": json!({"command": cmd}).to_string(),
               "status": "completed"})
    } else {
        json!({"type": "function_call", "id": format!("fc_{id}"), "call_id": call_id,
               "name": "shell",
               "arguments": json!({"command": ["apply_patch", patch]}).to_string(),
               "status": "completed"})
    };
    responses_stream(model, id, vec![item])
}

fn chat_reply(stream: bool, model: &str, id: u64, text: &str) -> Reply {
    let chat_id = format!("chatcmpl-scripted-{id}");
    let usage = json!({"prompt_tokens": 600, "completion_tokens": 20, "total_tokens": 620});
    if !stream {
        return Reply::new(
            200,
            json!({"id": chat_id, "object": "chat.completion", "created": now_secs(),
                   "model": model, "choices": [{"index": 0, "message":
                   {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                   "usage": usage})
            .to_string(),
        );
    }
    let chunk = |delta: Value, finish: Value, usage: Value| {
        let mut c = json!({"id": chat_id, "object": "chat.completion.chunk",
            "created": now_secs(), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        if !usage.is_null() {
            c["usage"] = usage;
        }
        c
    };
    let mut out = String::new();
    for data in [
        chunk(
            json!({"role": "assistant", "content": text}),
            Value::Null,
            Value::Null,
        ),
        chunk(json!({}), json!("stop"), usage),
    ] {
        out.push_str(&format!("data: {data}\n\n"));
    }
    out.push_str("data: [DONE]\n\n");
    event_stream(out)
}
