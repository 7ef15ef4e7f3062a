//! Named crash points for the crash-recovery tests. With the `failpoints`
//! feature, `ORCH_FAILPOINT=<name>` makes the process die on the spot at that
//! point, as `kill -9` would (no destructors, no cleanup). Without the
//! feature the macro expands to nothing.

#[macro_export]
macro_rules! failpoint {
    ($name:expr) => {
        #[cfg(feature = "failpoints")]
        $crate::failpoint::hit($name);
    };
}

#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    if std::env::var("ORCH_FAILPOINT").as_deref() == Ok(name) {
        std::process::abort();
    }
}
