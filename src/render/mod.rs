//! Turning engine data into documents: the dependency graph (mermaid, dot,
//! SVG) and the run report (markdown, HTML). Everything here is a pure
//! function from data to a `String`; the commands decide where it goes.

pub mod graph;
pub mod report_html;
pub mod report_md;

/// The command that prints a failure's stored log: `git orch log` where it
/// finds that very log (a task's attempt, a phase gate's latest run), else
/// `git show` of its path on the state branch.
pub fn failure_log_command(
    r: &crate::engine::report::Report,
    f: &crate::engine::report::Failure,
) -> Option<String> {
    let log = f.log.as_deref()?;
    let plan = &r.plan;
    let by_log = match f.attempt {
        Some(n) if log == crate::state::layout::task_log(&f.name, n) => {
            Some(format!("git orch log {plan} {} --attempt {n}", f.name))
        }
        Some(_) => None,
        None => r
            .phases
            .iter()
            .filter(|p| p.id == f.phase)
            .flat_map(|p| &p.gates)
            .any(|g| g.name == f.name && g.log == log)
            .then(|| format!("git orch log {plan} {}:{}", f.phase, f.name)),
    };
    Some(by_log.unwrap_or_else(|| {
        format!(
            "git show {}:{log}",
            r.state_ref.trim_start_matches("refs/heads/")
        )
    }))
}

/// `1m05s`, `12.3s`, `2h03m`.
pub fn duration(seconds: f64) -> String {
    // An empty sum of f64 is -0.0, which would print as "-0.0s".
    let seconds = if seconds > 0.0 { seconds } else { 0.0 };
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else if seconds < 3600.0 {
        format!(
            "{}m{:02}s",
            (seconds / 60.0) as u64,
            (seconds % 60.0) as u64
        )
    } else {
        format!(
            "{}h{:02}m",
            (seconds / 3600.0) as u64,
            ((seconds % 3600.0) / 60.0) as u64
        )
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `2026-11-21 22:05:03 UTC` from seconds since the epoch, without a date crate.
pub fn utc_time(secs: f64) -> String {
    let secs = secs.floor() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `+1m05s` after the plan's start.
pub fn offset(from: f64, at: f64) -> String {
    format!("+{}", crate::ui::duration((at - from).max(0.0)))
}

/// The short form of a commit id held as text.
pub fn short(id: &str) -> &str {
    crate::state::ids::short_text(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html_escape(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn durations_never_print_a_minus_zero() {
        let nothing: f64 = std::iter::empty::<f64>().sum();
        assert_eq!(duration(nothing), "0.0s");
        assert_eq!(duration(f64::NAN), "0.0s");
        assert_eq!(duration(65.0), "1m05s");
        assert_eq!(duration(7380.0), "2h03m");
    }

    #[test]
    fn utc_times() {
        assert_eq!(utc_time(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(1_767_225_600.5), "2026-01-01 00:00:00 UTC");
        assert_eq!(utc_time(951_827_696.0), "2000-02-29 12:34:56 UTC");
    }
}
