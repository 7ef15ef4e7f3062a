//! Property tests: the importers never panic, whatever the files hold
//! (multi-byte headings, half-written task lists, stray markup), and what
//! they import is either a plan or a refusal, emitted without a panic.

use std::path::Path;

use proptest::prelude::*;

/// Markdown-ish lines from pieces the importers look for, mixed with
/// multi-byte text in every position.
fn markdown() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("# ".to_string()),
        Just("## ".to_string()),
        Just("### Phase 1: ".to_string()),
        Just("Task".to_string()),
        Just("task".to_string()),
        Just("Task 2: ".to_string()),
        Just("- [ ] ".to_string()),
        Just("- [x] ".to_string()),
        Just("T001 ".to_string()),
        Just("[P] ".to_string()),
        Just("[US1] ".to_string()),
        Just("**Depends on**: ".to_string()),
        Just(" Context".to_string()),
        Just(" Implementation Plan".to_string()),
        Just("plan: ".to_string()),
        Just("src/a.rs ".to_string()),
        Just("`x/y.py`".to_string()),
        Just("✓ complete".to_string()),
        Just("é".to_string()),
        Just("—".to_string()),
        Just("日本".to_string()),
        Just("🦀".to_string()),
        Just(":".to_string()),
        Just("\n".to_string()),
        "[ -~]{0,12}",
        "\\PC{0,6}",
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn claudio_import_never_panics(
        plan in markdown(),
        tasks in markdown(),
        claude in markdown(),
        status in markdown(),
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join(".claudio");
        write(&root.join("plan.md"), &plan);
        write(&root.join("status.md"), &status);
        write(&root.join("phase1/tasks.md"), &tasks);
        write(&root.join("phase1/task1/claude.md"), &claude);
        write(&root.join("phase1/task1/status.md"), &status);
        write(&root.join("phase2/task1/claude.md"), &tasks);
        if let Ok(imported) = super::import(&root, None) {
            for format in [super::emit::Format::Toml, super::emit::Format::Yaml] {
                let _ = super::emit::render(&imported, format);
            }
        }
    }

    #[test]
    fn speckit_import_never_panics(tasks in markdown(), plan in markdown()) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("specs/001-feature");
        write(&dir.join("tasks.md"), &tasks);
        write(&dir.join("plan.md"), &plan);
        if let Ok(imported) = super::import(&dir.join("tasks.md"), None) {
            for format in [super::emit::Format::Toml, super::emit::Format::Yaml] {
                let _ = super::emit::render(&imported, format);
            }
        }
    }
}
