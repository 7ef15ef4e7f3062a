//! `ORCH_TRACE=1`: how long each step of a task took (`trace: land 9.1ms`),
//! on stderr, for the benchmark scripts. Diagnostics, not output: the
//! engine may call it, and it prints nothing unless asked.

use std::sync::OnceLock;
use std::time::Instant;

pub fn step(what: &str, since: Instant) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("ORCH_TRACE").is_some_and(|v| v == "1")) {
        eprintln!(
            "trace: {what} {:.1}ms",
            since.elapsed().as_secs_f64() * 1000.0
        );
    }
}
