//! Timestamp formatting, always in UTC.
//!
//! tcpdump prints local time. We print UTC because lines from pods on several nodes are
//! merged and compared, nodes and containers mostly run with `TZ=UTC` anyway (so the output
//! is what tcpdump shows there), and it needs no timezone database or `localtime_r`.

use std::fmt;
use std::time::Duration;

/// How many fractional digits a time of day shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampPrecision {
    /// Microseconds, tcpdump's default: `12:34:56.789012`.
    #[default]
    Micro,
    /// Nanoseconds, like `tcpdump --nano`: `12:34:56.789012345`.
    Nano,
}

/// A time of day in UTC as tcpdump prints it (`HH:MM:SS.ffffff`), for `Display`.
#[derive(Debug, Clone, Copy)]
pub struct TimeOfDay(pub Duration, pub TimestampPrecision);

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The time since midnight, printed as a delta is.
        let since_midnight = Duration::new(self.0.as_secs() % 86_400, self.0.subsec_nanos());
        Elapsed(since_midnight, self.1).fmt(f)
    }
}

/// Which time each line starts with: tcpdump's `-t` family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeFormat {
    /// The time of day, `12:34:56.789012` (tcpdump's default).
    #[default]
    Clock,
    /// No time at all (`-t`).
    None,
    /// Seconds since the epoch, `1700000000.123456` (`-tt`).
    Epoch,
    /// The time since the previous packet, ` 00:00:00.001234` (`-ttt`); the first packet
    /// shows zero.
    SincePrevious,
    /// Date and time of day, `2023-11-14 22:13:20.123456` (`-tttt`).
    Date,
    /// The time since the first packet, ` 00:00:01.234567` (`-ttttt`).
    SinceFirst,
}

impl TimeFormat {
    /// The format for tcpdump's `-t` given `count` times (0: the default; more than 5 is 5).
    pub fn from_t_count(count: u8) -> Self {
        match count {
            0 => TimeFormat::Clock,
            1 => TimeFormat::None,
            2 => TimeFormat::Epoch,
            3 => TimeFormat::SincePrevious,
            4 => TimeFormat::Date,
            _ => TimeFormat::SinceFirst,
        }
    }
}

/// A length of time as tcpdump prints a delta (`HH:MM:SS.ffffff`, hours not wrapped at 24).
#[derive(Debug, Clone, Copy)]
pub struct Elapsed(pub Duration, pub TimestampPrecision);

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        match self.1 {
            TimestampPrecision::Micro => {
                write!(f, "{h:02}:{m:02}:{s:02}.{:06}", self.0.subsec_micros())
            }
            TimestampPrecision::Nano => {
                write!(f, "{h:02}:{m:02}:{s:02}.{:09}", self.0.subsec_nanos())
            }
        }
    }
}

/// Seconds since the epoch with a fraction (`1700000000.123456`), as tcpdump's `-tt`.
#[derive(Debug, Clone, Copy)]
pub struct EpochSeconds(pub Duration, pub TimestampPrecision);

impl fmt::Display for EpochSeconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            TimestampPrecision::Micro => {
                write!(f, "{}.{:06}", self.0.as_secs(), self.0.subsec_micros())
            }
            TimestampPrecision::Nano => {
                write!(f, "{}.{:09}", self.0.as_secs(), self.0.subsec_nanos())
            }
        }
    }
}

/// A UTC date and time of day as tcpdump's `-tttt` prints it (`2023-11-14 22:13:20.123456`).
#[derive(Debug, Clone, Copy)]
pub struct DateTime(pub Duration, pub TimestampPrecision);

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d) = civil_from_days((self.0.as_secs() / 86_400) as i64);
        write!(f, "{y:04}-{mo:02}-{d:02} {}", TimeOfDay(self.0, self.1))
    }
}

/// An RFC 3339 UTC timestamp with nanoseconds (`2023-11-14T22:13:20.123456789Z`), for `Display`.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339(pub Duration);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
        let t = secs % 86_400;
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
            t / 3600,
            t / 60 % 60,
            t % 60,
            self.0.subsec_nanos()
        )
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        let t = Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(
            TimeOfDay(t, TimestampPrecision::Micro).to_string(),
            "22:13:20.123456"
        );
        assert_eq!(
            TimeOfDay(t, TimestampPrecision::Nano).to_string(),
            "22:13:20.123456789"
        );
        assert_eq!(Rfc3339(t).to_string(), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(
            Rfc3339(Duration::ZERO).to_string(),
            "1970-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            DateTime(t, TimestampPrecision::Micro).to_string(),
            "2023-11-14 22:13:20.123456"
        );
        assert_eq!(
            EpochSeconds(t, TimestampPrecision::Micro).to_string(),
            "1700000000.123456"
        );
        assert_eq!(
            Elapsed(
                Duration::new(100 * 3600 + 61, 5_000),
                TimestampPrecision::Micro
            )
            .to_string(),
            "100:01:01.000005"
        );
        // A leap day.
        assert_eq!(
            Rfc3339(Duration::from_secs(951_782_400)).to_string(),
            "2000-02-29T00:00:00.000000000Z"
        );
    }
}
