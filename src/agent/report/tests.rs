//! The parsers against what the real CLIs printed (tests/fixtures/agents,
//! captured from Claude Code 2.1.197, Codex 0.171.0 and aider 0.86.2
//! against the scripted model server), and against anything at all.

use super::*;
use proptest::prelude::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/agents/",
            $name
        ))
        .as_slice()
    };
}

fn claude(bytes: &[u8], code: i32) -> Report {
    read(AgentKind::ClaudeCode, bytes, &Exit::Code(code))
}

#[test]
fn claude_success_has_its_cost_tokens_session_and_model() {
    for r in [
        claude(fixture!("claude-success.json"), 0),
        claude(fixture!("claude-success.stream.jsonl"), 0),
    ] {
        assert_eq!(r.class, Some(Class::Success));
        assert_eq!(r.tokens_in, Some(3000));
        assert_eq!(r.tokens_cached, Some(600));
        assert_eq!(r.tokens_out, Some(50));
        assert!(r.cost_usd.is_some_and(|c| c > 0.0), "{r:?}");
        assert!(r.session.as_ref().is_some_and(|s| s.len() > 10), "{r:?}");
        assert!(r.model.is_some(), "{r:?}");
        assert!(r.turns.is_some());
    }
}

#[test]
fn a_claude_429_it_retried_is_a_rate_limit_and_one_it_did_not_is_a_usage_limit() {
    let init = r#"{"type":"system","subtype":"init","session_id":"s1","model":"m"}"#;
    let retry = r#"{"type":"system","subtype":"api_retry","attempt":1,"max_retries":2,"retry_delay_ms":500,"error_status":429,"error":"rate_limit"}"#;
    let result = r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":429,"result":"API Error: Request rejected (429)","session_id":"s1"}"#;
    let r = claude(format!("{init}\n{retry}\n{result}\n").as_bytes(), 1);
    assert!(matches!(r.class, Some(Class::Transient(_))), "{r:?}");
    let r = claude(format!("{init}\n{result}\n").as_bytes(), 1);
    assert!(matches!(r.class, Some(Class::UsageLimit(_))), "{r:?}");
}

#[test]
fn claude_errors_are_classified_by_the_table() {
    let r = claude(fixture!("claude-429.json"), 1);
    assert!(
        matches!(r.class, Some(Class::Transient(ref w)) if w.contains("rate limit")),
        "{r:?}"
    );
    let r = claude(fixture!("claude-credit.json"), 1);
    assert!(
        matches!(r.class, Some(Class::Fatal(ref w)) if w.contains("Credit balance")),
        "{r:?}"
    );
    let r = claude(fixture!("claude-overloaded.json"), 1);
    assert!(matches!(r.class, Some(Class::Transient(_))), "{r:?}");
    let r = claude(fixture!("claude-500.json"), 1);
    assert!(matches!(r.class, Some(Class::Transient(_))), "{r:?}");
}

#[test]
fn a_claude_write_refused_is_not_a_success_though_it_exits_0() {
    let r = claude(fixture!("claude-denied.json"), 0);
    assert_eq!(r.denied.len(), 1, "{r:?}");
    assert!(r.denied[0].starts_with("Write "), "{r:?}");
    assert!(
        matches!(r.class, Some(Class::Transient(ref w)) if w.contains("refused")),
        "{r:?}"
    );
}

#[test]
fn a_claude_usage_limit_is_known_by_its_rate_limit_event_and_names_its_reset() {
    let text = concat!(
        r#"{"type":"system","subtype":"init","session_id":"s1","model":"m"}"#,
        "\n",
        r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1893456000,"rateLimitType":"five_hour"},"session_id":"s1"}"#,
        "\n",
        r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":429,"result":"API Error: Request rejected (429) · This request would exceed your account's rate limit.","session_id":"s1"}"#,
        "\n"
    );
    let r = claude(text.as_bytes(), 1);
    assert!(matches!(r.class, Some(Class::UsageLimit(_))), "{r:?}");
    assert_eq!(r.reset, Some(1893456000.0));
}

#[test]
fn codex_events_give_session_usage_and_classes() {
    let r = read(
        AgentKind::Codex,
        fixture!("codex-success.jsonl"),
        &Exit::Code(0),
    );
    assert_eq!(r.class, Some(Class::Success));
    assert_eq!(
        (r.tokens_in, r.tokens_cached, r.tokens_out),
        (Some(2400), Some(600), Some(50))
    );
    assert!(r.session.is_some());
    assert_eq!(r.last_message.as_deref(), Some("Wrote hello.txt."));
    let r = read(
        AgentKind::Codex,
        fixture!("codex-429.jsonl"),
        &Exit::Code(1),
    );
    assert!(matches!(r.class, Some(Class::Transient(_))), "{r:?}");
    let r = read(
        AgentKind::Codex,
        fixture!("codex-credit.jsonl"),
        &Exit::Code(1),
    );
    assert!(matches!(r.class, Some(Class::Fatal(_))), "{r:?}");
    let r = read(
        AgentKind::Codex,
        fixture!("codex-usage-limit.jsonl"),
        &Exit::Code(1),
    );
    assert!(matches!(r.class, Some(Class::UsageLimit(_))), "{r:?}");
    // Jan 1st, 2030 12:00 AM, UTC.
    assert_eq!(r.reset, Some(1893456000.0));
    let mut both = fixture!("codex-prompt-too-long.jsonl").to_vec();
    both.extend_from_slice(fixture!("codex-prompt-too-long.stderr.txt"));
    let r = read(AgentKind::Codex, &both, &Exit::Code(1));
    assert!(
        matches!(r.class, Some(Class::Fatal(ref w)) if w.contains("maximum length")),
        "{r:?}"
    );
}

#[test]
fn aider_text_gives_tokens_cost_and_its_rate_limit() {
    let r = read(
        AgentKind::Aider,
        fixture!("aider-success.txt"),
        &Exit::Code(0),
    );
    assert_eq!(r.class, Some(Class::Success));
    assert_eq!((r.tokens_in, r.tokens_out), (Some(638), Some(16)));
    assert_eq!(r.cost_usd, Some(0.0022));
    assert_eq!(r.model.as_deref(), Some("openai/scripted-model"));
    // It exits 0 after its own retries: the text says what happened.
    let r = read(AgentKind::Aider, fixture!("aider-429.txt"), &Exit::Code(0));
    assert!(
        matches!(r.class, Some(Class::Transient(ref w)) if w.contains("rate limit")),
        "{r:?}"
    );
    let quota = b"litellm.RateLimitError: RateLimitError: OpenAIException - insufficient_quota\n";
    let r = read(AgentKind::Aider, quota, &Exit::Code(0));
    assert!(matches!(r.class, Some(Class::Fatal(_))), "{r:?}");
    assert_eq!(
        aider_tokens(" 1.2k sent, 3k cache hit, 17 received. Cost: $0.01 message, $0.02 session."),
        (Some(4200), Some(3000), Some(17))
    );
}

#[test]
fn no_network_fails_for_good() {
    let r = read(
        AgentKind::ClaudeCode,
        b"API Error: Unable to connect to API (ECONNREFUSED)\n",
        &Exit::Code(1),
    );
    assert!(
        matches!(r.class, Some(Class::Fatal(ref w)) if w.starts_with("no network")),
        "{r:?}"
    );
    let r = read(
        AgentKind::Codex,
        b"",
        &Exit::TimedOut(std::time::Duration::from_secs(1)),
    );
    assert_eq!(r.class, None, "a timeout is the exit's to say");
}

#[test]
fn a_verdict_line_is_read_from_the_last_message() {
    assert_eq!(
        verdict("Looks fine.\nVERDICT: approve"),
        Some((true, "Looks fine.".into()))
    );
    assert_eq!(
        verdict("VERDICT: reject: the test is missing"),
        Some((false, "the test is missing".into()))
    );
    assert_eq!(verdict("no verdict here"), None);
    assert_eq!(verdict("VERDICT: maybe"), None);
}

proptest! {
    #[test]
    fn any_output_is_read_without_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000), code in -1i32..3) {
        for kind in [AgentKind::ClaudeCode, AgentKind::Codex, AgentKind::Aider] {
            let _ = read(kind, &bytes, &Exit::Code(code));
        }
        let text = String::from_utf8_lossy(&bytes);
        let _ = verdict(&text);
        let _ = reset_in(&text);
        let _ = try_again_at(&text);
    }

    #[test]
    fn json_shaped_output_is_read_without_a_panic(
        kind in "(result|system|rate_limit_event|turn.failed|turn.completed|thread.started|error|item.completed)",
        field in "[a-z_]{0,12}",
        value in "(null|true|-1|1e999|\"[^\"\\\\]{0,20}\"|\\{\\}|\\[\\])",
    ) {
        let line = format!(r#"{{"type":"{kind}","{field}":{value},"usage":{{"{field}":{value}}},"item":{{"type":"{field}","text":{value}}}}}"#);
        for k in [AgentKind::ClaudeCode, AgentKind::Codex] {
            let _ = read(k, line.as_bytes(), &Exit::Code(1));
        }
    }
}

#[test]
fn a_codex_error_event_it_got_over_is_not_a_failure() {
    // "Reconnecting... 1/1 (…429…)", then the turn completed: a success,
    // one attempt (the fixtures README: an `error` event alone is not a
    // failure).
    let r = read(
        AgentKind::Codex,
        fixture!("codex-429-once.jsonl"),
        &Exit::Code(0),
    );
    assert_eq!(r.class, Some(Class::Success), "{r:?}");
    assert_eq!(r.tokens_out, Some(50));
    // An error with no completed turn after it still fails the attempt.
    let r = read(
        AgentKind::Codex,
        br#"{"type":"turn.completed","usage":{}}
{"type":"error","message":"stream disconnected: 500 Internal Server Error"}
"#,
        &Exit::Code(1),
    );
    assert!(matches!(r.class, Some(Class::Transient(_))), "{r:?}");
}

#[test]
fn a_failing_command_that_mentions_a_sandbox_is_not_a_broken_sandbox_when_others_worked() {
    let mut text = fixture!("codex-success.jsonl").to_vec();
    text.extend_from_slice(
        br#"{"type":"item.completed","item":{"id":"item_9","type":"command_execution","command":"cargo test sandbox","aggregated_output":"test sandbox::binds ... FAILED","exit_code":101,"status":"failed"}}
"#,
    );
    let r = read(AgentKind::Codex, &text, &Exit::Code(0));
    assert_eq!(r.class, Some(Class::Success), "{r:?}");
    // Every command failing in the sandbox helper, nothing written: broken.
    let broken = br#"{"type":"thread.started","thread_id":"t"}
{"type":"item.completed","item":{"id":"i","type":"command_execution","command":"ls","aggregated_output":"bwrap: Can't mount proc","exit_code":1,"status":"failed"}}
{"type":"turn.completed","usage":{"input_tokens":1,"output_tokens":1}}
"#;
    let r = read(AgentKind::Codex, broken, &Exit::Code(0));
    assert!(
        matches!(r.class, Some(Class::Fatal(ref w)) if w.contains("sandbox")),
        "{r:?}"
    );
}

#[test]
fn an_aider_attempt_that_talked_to_its_model_has_a_session_to_restore() {
    // Without one, `last_session` finds nothing and a retry never gets
    // `--restore-chat-history`, which the docs promise.
    let r = read(
        AgentKind::Aider,
        fixture!("aider-success.txt"),
        &Exit::Code(0),
    );
    assert_eq!(r.session.as_deref(), Some(AIDER_SESSION));
    let r = read(AgentKind::Aider, b"nothing at all\n", &Exit::Code(1));
    assert_eq!(r.session, None);
}

#[test]
fn a_codex_error_it_got_over_is_no_failure() {
    let mut over = br#"{"type":"thread.started","thread_id":"t"}
{"type":"error","message":"Reconnecting... 1/1 (exceeded retry limit, last status: 429 Too Many Requests)"}
"#
    .to_vec();
    over.extend_from_slice(fixture!("codex-success.jsonl"));
    let r = read(AgentKind::Codex, &over, &Exit::Code(0));
    assert_eq!(r.class, Some(Class::Success), "{r:?}");
}
