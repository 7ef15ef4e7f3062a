//! The state branch: model, records and their layout, typed events, storage
//! by compare-and-swap, and repair of the refs derived from it.

pub mod event;
#[cfg(test)]
mod fuzz_tests;
pub mod ids;
pub mod layout;
pub mod model;
pub mod names;
pub mod reconcile;
pub mod records;
pub mod seal;
pub mod store;
pub mod sync;
pub mod transition;

pub use event::{Event, GateVerdict};
pub use ids::CommitId;
pub use model::*;
pub use store::{Change, Snapshot};

/// Seconds since the epoch, as stored in the state.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
