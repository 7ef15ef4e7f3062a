//! Durations as written in plans (`45m`, `1h30m`). A unit is required
//! because a bare `90` is ambiguous between seconds and minutes.

use std::time::Duration;

const HINT: &str = "expected a duration such as `30s`, `45m`, `2h` or `1h30m` \
                    (whole numbers with units h, m, s, largest first)";

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err(format!("empty duration; {HINT}"));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    // Units must appear at most once and largest first, so `30m1h` and
    // `5m5m` are rejected instead of being silently summed.
    let mut last_rank = usize::MAX;
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let (rank, secs) = match c {
            'h' => (2, 3600),
            'm' => (1, 60),
            's' => (0, 1),
            _ => return Err(format!("invalid duration `{s}`; {HINT}")),
        };
        if digits.is_empty() || rank >= last_rank {
            return Err(format!("invalid duration `{s}`; {HINT}"));
        }
        last_rank = rank;
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("duration `{s}` is too large"))?;
        digits.clear();
        total = n
            .checked_mul(secs)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration `{s}` is too large"))?;
    }
    if !digits.is_empty() {
        return Err(format!("duration `{s}` has no unit; {HINT}"));
    }
    if total == 0 {
        return Err(format!("duration `{s}` is zero; it must be at least 1s"));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_units_and_combinations() {
        assert_eq!(parse_duration("45m"), Ok(Duration::from_secs(2700)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 1h2m3s "), Ok(Duration::from_secs(3723)));
    }

    #[test]
    fn rejects_bad_input_with_the_accepted_units() {
        for bad in [
            "90",
            "",
            "m",
            "1.5h",
            "30m1h",
            "5m5m",
            "1d",
            "0s",
            "h30",
            "99999999999999999999h",
        ] {
            let e = parse_duration(bad).expect_err(bad);
            assert!(
                e.contains("h, m, s") || e.contains("too large") || e.contains("zero"),
                "{bad}: {e}"
            );
        }
        assert!(parse_duration("90")
            .expect_err("no unit")
            .contains("no unit"));
    }
}
