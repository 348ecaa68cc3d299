//! Durations as people type them on a command line (`30s`, `2m`, `500ms`, `1m30s`, `1h`), for
//! `check --wait` (and, through `watch::parse_interval`, `--watch` and `probe --timeout`), and
//! the one short display every report uses (check, watch, probe). Pure; never panics.
//!
//! Not `humantime`: its parser takes `5sec`, `1m 30s` and units in any order, and its display
//! writes `1m 30s`, `12s 500ms`; the grammar and the forms here are pinned by tests and by
//! what users already script against.

use std::time::Duration;

/// The longest wait accepted: a CI step that waits a day is a mistake.
const MAX: Duration = Duration::from_secs(24 * 3600);

/// Units in the order they must appear, with their length in milliseconds.
const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Parses `30s`, `2m`, `500ms`, `1m30s`, `1h5m`: whole numbers, each followed by a unit (`h`,
/// `m`, `s`, `ms`), units from largest to smallest, each at most once, 24h at most.
pub fn parse(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| {
        format!(
            "`{}`: {why}; write a number and a unit, such as 30s, 2m, 500ms or 1m30s",
            text.escape_debug()
        )
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad("empty duration"));
    }
    let mut total: u64 = 0;
    // Index into UNITS of the last unit seen: the next must come after it.
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad("expected a number"));
        }
        let (number, after) = rest.split_at(digits);
        let value: u64 = number.parse().map_err(|_| bad("number too large"))?;
        let letters = after
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let (unit, after) = after.split_at(letters);
        if unit.is_empty() {
            return Err(bad(if after.is_empty() {
                "missing unit"
            } else {
                "expected a unit after the number"
            }));
        }
        let Some((pos, (_, unit_ms))) = UNITS.iter().enumerate().find(|(_, (u, _))| *u == unit)
        else {
            return Err(bad(&format!("unknown unit `{}`", unit.escape_debug())));
        };
        if pos < next_unit {
            return Err(bad("units must go from largest to smallest, each once"));
        }
        next_unit = pos + 1;
        let ms = value
            .checked_mul(*unit_ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| bad("too long"))?;
        total = ms;
        rest = after;
    }
    let d = Duration::from_millis(total);
    if d > MAX {
        return Err(bad("longer than 24h"));
    }
    Ok(d)
}

/// `1m30s`, `500ms`, `12.5s`: short and exact enough for a progress line or a report.
pub fn display(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let tenths = ms / 100;
        if tenths.is_multiple_of(10) {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        }
    } else {
        let s = ms / 1000;
        match (s / 60, s % 60) {
            (m, 0) => format!("{m}m"),
            (m, s) => format!("{m}m{s}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        let cases = [
            ("30s", 30_000),
            ("2m", 120_000),
            ("500ms", 500),
            ("1m30s", 90_000),
            ("1h", 3_600_000),
            ("1h2m3s4ms", 3_723_004),
            ("0s", 0),
            (" 45s ", 45_000),
            ("24h", 86_400_000),
        ];
        for (text, ms) in cases {
            assert_eq!(parse(text), Ok(Duration::from_millis(ms)), "{text}");
        }
    }

    #[test]
    fn rejects_everything_else_with_the_reason() {
        let cases = [
            ("", "empty duration"),
            ("30", "missing unit"),
            ("s", "expected a number"),
            ("-5s", "expected a number"),
            ("1.5s", "expected a unit after the number"),
            ("5x", "unknown unit `x`"),
            ("5sec", "unknown unit `sec`"),
            ("30s1m", "largest to smallest"),
            ("1m1m", "largest to smallest"),
            ("1m 30s", "expected a number"),
            ("25h", "longer than 24h"),
            ("99999999999999999999s", "number too large"),
            ("9999999999999999h", "too long"),
            ("5\u{1b}s", "expected a unit after the number"),
        ];
        for (text, want) in cases {
            let e = parse(text).expect_err(text);
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(e.contains("such as 30s"), "{text:?}: {e}");
            assert!(!e.contains('\u{1b}'), "{text:?}: control byte echoed: {e}");
        }
    }

    #[test]
    fn displays_short_forms() {
        assert_eq!(display(Duration::from_millis(500)), "500ms");
        assert_eq!(display(Duration::from_millis(12_500)), "12.5s");
        assert_eq!(display(Duration::from_secs(30)), "30s");
        assert_eq!(display(Duration::from_secs(90)), "1m30s");
        assert_eq!(display(Duration::from_secs(120)), "2m");
    }
}
