//! src/platform, compiled on its own (see Cargo.toml).
#![deny(unsafe_code)]

#[path = "../../../src/platform/mod.rs"]
pub mod platform;
