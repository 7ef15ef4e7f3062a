//! The part of git-orch that is a library: the plan model, its parser and
//! validator, and the error type they share. The `git-orch` binary
//! (`src/main.rs`) uses these through `git_orch::`, and the fuzz targets in
//! `fuzz/` link them directly. Nothing else is public: the library is not a
//! stable API.

pub mod error;
pub mod plan;
