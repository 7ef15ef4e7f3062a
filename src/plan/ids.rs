//! Id rules (SPEC §6). Ids become git ref components and file names, so
//! they are restricted to a portable subset that git accepts everywhere.

const RULE: &str = "ids are 1-64 characters from A-Z a-z 0-9 . _ -, start with a letter or digit, \
                    and contain no `..` nor end in `.` or `.lock`";

/// Check `id` for an object of `kind` ("plan", "phase", "task", "gate").
pub fn validate_id(kind: &str, id: &str) -> Result<(), String> {
    // A hostile id is shown escaped and cut short, so the message stays one
    // readable line.
    let mut shown: String = id.chars().take(64).flat_map(char::escape_debug).collect();
    if id.chars().count() > 64 {
        shown.push('…');
    }
    let bad = |why: String| Err(format!("invalid {kind} id `{shown}`: {why} ({RULE})"));
    if id.is_empty() {
        return Err(format!("{kind} id is empty ({RULE})"));
    }
    let len = id.chars().count();
    if len > 64 {
        return bad(format!("it is {len} characters long"));
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("it must start with a letter or digit".into());
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return bad(format!("it contains {c:?}"));
    }
    if id.contains("..") {
        return bad("it contains `..`".into());
    }
    if id.ends_with('.') {
        return bad("it ends with `.`".into());
    }
    if id.ends_with(".lock") {
        return bad("it ends with `.lock`".into());
    }
    if kind == "phase" && RESERVED_PHASE_IDS.contains(&id) {
        return Err(format!(
            "`{id}` cannot be a phase id: it is reserved ({}), because a phase's checkpoint \
             tag `orch/<plan>/<phase>` would be mistaken for the plan's start tag or its \
             state, work or task branches; rename the phase",
            RESERVED_PHASE_IDS.join(", ")
        ));
    }
    Ok(())
}

/// Phase ids a plan cannot use: `start` is the plan's starting-point tag,
/// and a checkpoint tag `refs/tags/orch/<plan>/state` (or `work`, `tasks`)
/// would shadow the branch `orch/<plan>/state` in every short ref name
/// git-orch prints and git resolves.
pub const RESERVED_PHASE_IDS: &[&str] = &["start", "state", "work", "tasks"];

/// The plan whose state branch `refname` is (`refs/heads/orch/<plan>/state`):
/// `None` for any other ref, an error for a plan name that breaks the id
/// rules (a branch made with plain git can hold any name git accepts, and
/// such a name must not reach hints, `ORCH_PLAN` or ref names).
pub fn state_ref_plan(refname: &str) -> Option<Result<&str, String>> {
    let plan = refname
        .strip_prefix("refs/heads/orch/")?
        .strip_suffix("/state")
        .filter(|plan| !plan.contains('/'))?;
    Some(validate_id("plan", plan).map(|()| plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_ids() {
        for id in ["a", "A1", "db-schema", "v1.2_x", &"x".repeat(64)] {
            assert_eq!(validate_id("task", id), Ok(()), "{id}");
        }
        assert_eq!(validate_id("task", "start"), Ok(()));
    }

    #[test]
    fn bad_ids() {
        let cases = [
            ("", "empty"),
            ("-a", "start with"),
            ("a b", "contains ' '"),
            ("a/b", "contains '/'"),
            ("a..b", "`..`"),
            ("a.", "ends with `.`"),
            ("a.lock", "`.lock`"),
            ("é", "start with"),
        ];
        for (id, want) in cases {
            let e = validate_id("task", id).expect_err(id);
            assert!(e.contains(want), "{id}: {e}");
        }
        assert!(validate_id("task", &"x".repeat(65)).is_err());
        let long = validate_id("task", &"y".repeat(10_000)).expect_err("too long");
        assert!(
            long.len() < 400 && long.contains("10000 characters"),
            "{long}"
        );
        let ctl = validate_id("task", "a\nb\u{1b}").expect_err("control");
        assert!(!ctl.contains(['\n', '\u{1b}']), "{ctl}");
        for id in ["start", "state", "work", "tasks"] {
            assert!(validate_id("phase", id)
                .expect_err("reserved")
                .contains("reserved"));
            assert_eq!(
                validate_id("task", id),
                Ok(()),
                "only phase ids are reserved"
            );
        }
        assert_eq!(validate_id("phase", "tasks-2"), Ok(()));
    }

    #[test]
    fn plan_names_in_state_refs() {
        assert_eq!(state_ref_plan("refs/heads/orch/p-1/state"), Some(Ok("p-1")));
        assert_eq!(state_ref_plan("refs/heads/orch/p/work"), None);
        assert_eq!(state_ref_plan("refs/heads/orch/a/b/state"), None);
        assert_eq!(state_ref_plan("refs/heads/main"), None);
        let e = state_ref_plan("refs/heads/orch/$(touch${IFS}HACKED)/state")
            .expect("a state ref")
            .expect_err("invalid");
        assert!(e.contains("invalid plan id"), "{e}");
    }
}
