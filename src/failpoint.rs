//! Named crash points for the crash-recovery tests. With the `failpoints`
//! feature, `ORCH_FAILPOINT=<name>` makes the process die on the spot the
//! first time it reaches that point, as `kill -9` would (no destructors, no
//! cleanup); `ORCH_FAILPOINT=<name>@<n>` dies at the n-th time instead.
//! Without the feature the macro expands to nothing. `tests/crash.rs` finds
//! every point by grepping for the macro and crashes at each in turn.

#[macro_export]
macro_rules! failpoint {
    ($name:expr) => {
        #[cfg(feature = "failpoints")]
        $crate::failpoint::hit($name);
    };
}

#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static HITS: AtomicUsize = AtomicUsize::new(0);
    let Ok(wanted) = std::env::var("ORCH_FAILPOINT") else {
        return;
    };
    let (point, nth) = match wanted.split_once('@') {
        Some((point, n)) => (point, n.parse::<usize>().unwrap_or(1)),
        None => (wanted.as_str(), 1),
    };
    if point == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == nth {
        std::process::abort();
    }
}

/// A disk that fills up, where a test needs one: with the `failpoints`
/// feature, `ORCH_FAILPOINT=<name>` makes every pass through the point fail
/// as a write to a full disk does (`ENOSPC`), and `<name>@<n>` the n-th and
/// every later one, instead of dying; the process goes on and handles the
/// error. For a function returning `anyhow::Result`. Without the feature
/// it expands to nothing.
#[macro_export]
macro_rules! disk_full_point {
    ($name:expr) => {
        #[cfg(feature = "failpoints")]
        $crate::failpoint::disk_full($name)?;
    };
}

#[cfg(feature = "failpoints")]
pub fn disk_full(name: &str) -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static HITS: AtomicUsize = AtomicUsize::new(0);
    let Ok(wanted) = std::env::var("ORCH_FAILPOINT") else {
        return Ok(());
    };
    let (point, nth) = match wanted.split_once('@') {
        Some((point, n)) => (point, n.parse::<usize>().unwrap_or(1)),
        None => (wanted.as_str(), 1),
    };
    if point == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 >= nth {
        let e = std::io::Error::from_raw_os_error(libc::ENOSPC);
        return Err(anyhow::Error::new(e).context(format!("failpoint {name}")));
    }
    Ok(())
}
