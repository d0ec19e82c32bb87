//! Durations as people type them (`30`, `30s`, `500ms`, `5m`, `1h`, `1m30s`) and as a
//! request writes them: one parser for podtracer's flags and the operator's validation.
//! Millisecond resolution: what [`format()`] writes, [`parse`] reads back exactly.

use std::time::Duration;

/// Parses a duration; a bare number means seconds. Rounded to the nearest millisecond.
pub fn parse(text: &str) -> Result<Duration, String> {
    let exact = parse_exact(text)?;
    let ms = (exact.as_nanos() + 500_000) / 1_000_000;
    u64::try_from(ms)
        .map(Duration::from_millis)
        .map_err(|_| format!("invalid duration {text:?}: too long"))
}

/// How [`crate::Request::to_args`] writes a duration: whole seconds, or milliseconds.
pub fn format(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn parse_exact(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}: use e.g. 30, 30s, 500ms, 5m, 1h, 1m30s");
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, tail) = rest.split_at(digits);
        let value: f64 = number.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += Duration::try_from_secs_f64(value * scale).map_err(|_| bad())?;
        rest = tail;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(parse("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn what_format_writes_parse_reads_back() {
        for ms in [
            0,
            1,
            999,
            1000,
            1500,
            90_000,
            3_600_000,
            u64::from(u32::MAX) * 7,
        ] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse(&format(d)), Ok(d), "{}", format(d));
        }
        assert_eq!(parse("0.0004s"), Ok(Duration::ZERO));
        assert_eq!(parse("1.0006s"), Ok(Duration::from_millis(1001)));
    }

    #[test]
    fn rejects_nonsense() {
        for text in ["", "s", "10x", "-1", "1m30", "abc"] {
            assert!(parse(text).is_err(), "{text:?}");
        }
    }
}
