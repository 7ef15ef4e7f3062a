//! `ORCH_TRACE=1`: how long each step of a task took (`trace: land 9.1ms`),
//! and every git process git-orch starts (`trace: git checkout 41.0ms`),
//! on stderr, for the benchmark scripts. Each line ends with the number of
//! git processes started so far (`git#12`), so a benchmark counts them per
//! task, and with the time since the process started (`t=812.3`), so the
//! steady cost of a task is the time between two landings. Diagnostics, not output: the engine may call it, and it prints
//! nothing unless asked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

static SPAWNED: AtomicUsize = AtomicUsize::new(0);
static LOST_RACES: AtomicUsize = AtomicUsize::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();

pub fn on() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        EPOCH.get_or_init(Instant::now);
        std::env::var_os("ORCH_TRACE").is_some_and(|v| v == "1")
    })
}

/// Counts one git process (called where every one is built).
pub fn spawned() {
    SPAWNED.fetch_add(1, Ordering::Relaxed);
}

pub fn step(what: &str, since: Instant) {
    if on() {
        eprintln!(
            "trace: {what} {:.1}ms git#{} t={:.1}",
            since.elapsed().as_secs_f64() * 1000.0,
            SPAWNED.load(Ordering::Relaxed),
            EPOCH.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
        );
    }
}

/// Counts a race this process lost on a shared plan's remote (a claim, a
/// landing or another state change, or a gate lock, whose leased push
/// found the remote moved), and traces it (`trace: lost race …`).
pub fn lost_race(what: &str) {
    let n = LOST_RACES.fetch_add(1, Ordering::Relaxed) + 1;
    if on() {
        eprintln!(
            "trace: lost race {what} #{n} t={:.1}",
            EPOCH.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
        );
    }
}

/// The races this process lost so far (see [`lost_race`]).
pub fn lost_races() -> usize {
    LOST_RACES.load(Ordering::Relaxed)
}
