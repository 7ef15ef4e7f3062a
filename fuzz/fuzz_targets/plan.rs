//! Plan parsing and validation must never panic, whatever the bytes: every
//! input is parsed as TOML and as YAML, validated with and without its
//! source text, and a plan that validates must round-trip through JSON (the
//! form it is stored in on the state branch) to an equal plan that still
//! validates.
#![no_main]

use git_orch::plan::{load_str, validate, Format, Plan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::Toml, Format::Yaml] {
        match load_str(text, format) {
            Ok((plan, warnings)) => {
                assert!(warnings.iter().all(|d| !d.is_error()));
                assert!(validate(&plan, None).iter().all(|d| !d.is_error()));
                let json = serde_json::to_string(&plan).expect("a plan serialises");
                let back: Plan = serde_json::from_str(&json).expect("a plan reads back");
                assert_eq!(back, plan);
            }
            Err(diags) => {
                assert!(diags.iter().any(|d| d.is_error()), "Err without an error");
                for d in &diags {
                    let _ = d.render("plan");
                }
            }
        }
    }
});
