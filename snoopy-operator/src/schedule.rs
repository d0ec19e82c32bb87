//! Cron schedules (the five classic fields, UTC) and the arithmetic the operator needs:
//! which tick is due now, and when the next one comes.
//!
//! Kubernetes 1.20 has no batch/v1 CronJob, and a CronJob per pod would go stale when pods
//! move, so the operator starts a run itself on every tick. Semantics follow cron(8) and
//! the Kubernetes CronJob controller: `minute hour day-of-month month day-of-week`, lists,
//! ranges, steps, names (`jan`, `mon`), `7` = Sunday, the `@hourly`-style macros, and "day
//! of month OR day of week" when both are restricted.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;

/// A parsed cron schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_restricted: bool,
    weekdays_restricted: bool,
}

/// Why a schedule does not parse: the schedule as given, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schedule {schedule:?}: {problem}")]
pub struct ScheduleError {
    /// The schedule text.
    pub schedule: String,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with a schedule; each variant names the field and the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Not five fields, and not one of the `@hourly`-style macros.
    #[error("expected 5 fields (minute hour day-of-month month day-of-week), found {found}")]
    FieldCount {
        /// How many whitespace-separated fields there are.
        found: usize,
    },
    /// The step after `/` is not a number.
    #[error("{field}: bad step {step:?}")]
    BadStep {
        /// The field it is in.
        field: Field,
        /// The text after `/`.
        step: String,
    },
    /// A step of 0 (`*/0`), which would never advance.
    #[error("{field}: a step of 0 in {item:?}")]
    ZeroStep {
        /// The field it is in.
        field: Field,
        /// The list item with the step.
        item: String,
    },
    /// A value that is not a number, in a field without names (minute, hour, day of month).
    #[error("{field}: {text:?} is not a number")]
    NotANumber {
        /// The field it is in.
        field: Field,
        /// The value as written.
        text: String,
    },
    /// A value that is neither a number nor one of the field's names (`jan`, `mon`).
    #[error("{field}: {text:?} is neither a number nor a name ({})", field.names().join(", "))]
    UnknownName {
        /// The field it is in.
        field: Field,
        /// The value as written.
        text: String,
    },
    /// A number outside the field's range.
    #[error("{field}: {value} is outside {}-{}", field.min(), field.max())]
    OutOfRange {
        /// The field it is in.
        field: Field,
        /// The number.
        value: u64,
    },
    /// A range whose start comes after its end (`5-1`).
    #[error("{field}: range {range:?} goes backwards")]
    Backwards {
        /// The field it is in.
        field: Field,
        /// The range as written.
        range: String,
    },
}

/// The five fields of a cron schedule, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// 0-59.
    Minute,
    /// 0-23.
    Hour,
    /// 1-31.
    DayOfMonth,
    /// 1-12 or `jan`…`dec`.
    Month,
    /// 0-7 (0 and 7 are Sunday) or `sun`…`sat`.
    DayOfWeek,
}

impl Field {
    /// The smallest value.
    pub fn min(self) -> u8 {
        match self {
            Field::Minute | Field::Hour | Field::DayOfWeek => 0,
            Field::DayOfMonth | Field::Month => 1,
        }
    }

    /// The largest value.
    pub fn max(self) -> u8 {
        match self {
            Field::Minute => 59,
            Field::Hour => 23,
            Field::DayOfMonth => 31,
            Field::Month => 12,
            Field::DayOfWeek => 7,
        }
    }

    /// The names the field accepts besides numbers, the first standing for [`Field::min`].
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Field::Month => &MONTHS,
            Field::DayOfWeek => &WEEKDAYS,
            Field::Minute | Field::Hour | Field::DayOfMonth => &[],
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day of month",
            Field::Month => "month",
            Field::DayOfWeek => "day of week",
        })
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// How far back a missed tick still starts a run (the operator was down, the CR was
/// suspended…): older ticks are skipped, like a CronJob's starting deadline.
pub const CATCH_UP_SECONDS: i64 = 24 * 3600;

impl Schedule {
    /// Parses `minute hour day-of-month month day-of-week` or a macro.
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let err = |problem: Problem| ScheduleError {
            schedule: text.to_owned(),
            problem,
        };
        let expanded = match text.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minutes, hours, days, months, weekdays] = fields[..] else {
            return Err(err(Problem::FieldCount {
                found: fields.len(),
            }));
        };
        let restricted = |text: &str| !text.starts_with('*');
        let (days_restricted, weekdays_restricted) = (restricted(days), restricted(weekdays));
        let minutes = field(minutes, Field::Minute).map_err(err)?;
        let hours = field(hours, Field::Hour).map_err(err)?;
        let days = field(days, Field::DayOfMonth).map_err(err)?;
        let months = field(months, Field::Month).map_err(err)?;
        let mut weekdays = field(weekdays, Field::DayOfWeek).map_err(err)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1; // 7 is Sunday too
        }
        Ok(Self {
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_restricted,
            weekdays_restricted,
        })
    }

    /// The first tick strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = after.to_zoned(TimeZone::UTC).datetime();
        // The next whole minute after `after`.
        let mut minute = start.checked_add(jiff::Span::new().minutes(1)).ok()?;
        minute = minute.with().second(0).subsec_nanosecond(0).build().ok()?;
        let mut date = minute.date();
        // Five years covers every valid schedule (Feb 29 on a Monday recurs within 28 years,
        // but a schedule that rare is not a capture schedule).
        for _ in 0..(366 * 5) {
            if self.day_matches(date) {
                let from = if date == minute.date() {
                    (minute.hour(), minute.minute())
                } else {
                    (0, 0)
                };
                if let Some((h, m)) = self.first_time_from(from) {
                    let dt = DateTime::from_parts(date, jiff::civil::time(h, m, 0, 0));
                    return dt.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp());
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// The newest tick in `(since, now]`, not older than [`CATCH_UP_SECONDS`] before `now`.
    pub fn due(&self, since: Timestamp, now: Timestamp) -> Option<Timestamp> {
        let floor = Timestamp::from_second(now.as_second() - CATCH_UP_SECONDS).ok()?;
        let mut cursor = since.max(floor);
        let mut last = None;
        while let Some(tick) = self.next_after(cursor) {
            if tick > now {
                break;
            }
            last = Some(tick);
            cursor = tick;
        }
        last
    }

    fn day_matches(&self, date: Date) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let dom = self.days & (1 << date.day()) != 0;
        let dow = self.weekdays & (1 << weekday_number(date.weekday())) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    fn first_time_from(&self, (hour, minute): (i8, i8)) -> Option<(i8, i8)> {
        for h in hour..24 {
            if self.hours & (1 << h) == 0 {
                continue;
            }
            let first_minute = if h == hour { minute } else { 0 };
            if let Some(m) = (first_minute..60).find(|m| self.minutes & (1 << m) != 0) {
                return Some((h, m));
            }
        }
        None
    }
}

fn weekday_number(day: Weekday) -> u8 {
    day.to_sunday_zero_offset().unsigned_abs()
}

/// One field as a bit set: `*`, `*/n`, `a`, `a-b`, `a-b/n`, `a/n`, comma lists, names.
fn field(text: &str, field: Field) -> Result<u64, Problem> {
    let (min, max) = (field.min(), field.max());
    let mut bits = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u8 = s.parse().map_err(|_| Problem::BadStep {
                    field,
                    step: s.to_owned(),
                })?;
                if step == 0 {
                    return Err(Problem::ZeroStep {
                        field,
                        item: item.to_owned(),
                    });
                }
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, field)?, value(b, field)?)
        } else {
            let v = value(range, field)?;
            // `a/n` means from a to the end, stepping n (as Vixie cron).
            (v, if item.contains('/') { max } else { v })
        };
        if lo > hi {
            return Err(Problem::Backwards {
                field,
                range: range.to_owned(),
            });
        }
        for v in (lo..=hi).step_by(usize::from(step)) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

fn value(text: &str, field: Field) -> Result<u8, Problem> {
    let names = field.names();
    let lower = text.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        // Month names count from 1, weekday names from 0.
        return Ok(u8::try_from(i).unwrap_or(0) + field.min());
    }
    let v: u64 = text.parse().map_err(|_| {
        let text = text.to_owned();
        if names.is_empty() {
            Problem::NotANumber { field, text }
        } else {
            Problem::UnknownName { field, text }
        }
    })?;
    match u8::try_from(v) {
        Ok(v) if (field.min()..=field.max()).contains(&v) => Ok(v),
        _ => Err(Problem::OutOfRange { field, value: v }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn next(schedule: &str, after: &str) -> String {
        Schedule::parse(schedule)
            .unwrap()
            .next_after(ts(after))
            .unwrap()
            .to_string()
    }

    #[test]
    fn next_ticks() {
        assert_eq!(
            next("* * * * *", "2024-03-01T10:00:00Z"),
            "2024-03-01T10:01:00Z"
        );
        assert_eq!(
            next("* * * * *", "2024-03-01T10:00:30Z"),
            "2024-03-01T10:01:00Z"
        );
        assert_eq!(
            next("*/15 * * * *", "2024-03-01T10:14:59Z"),
            "2024-03-01T10:15:00Z"
        );
        assert_eq!(
            next("*/15 * * * *", "2024-03-01T10:45:00Z"),
            "2024-03-01T11:00:00Z"
        );
        assert_eq!(
            next("30 2 * * *", "2024-03-01T10:00:00Z"),
            "2024-03-02T02:30:00Z"
        );
        assert_eq!(
            next("0 0 1 1 *", "2024-03-01T10:00:00Z"),
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            next("@hourly", "2024-03-01T10:00:00Z"),
            "2024-03-01T11:00:00Z"
        );
        // Leap day, month boundary, year boundary.
        assert_eq!(
            next("0 12 29 feb *", "2023-03-01T00:00:00Z"),
            "2024-02-29T12:00:00Z"
        );
        assert_eq!(
            next("59 23 31 12 *", "2024-12-31T23:59:00Z"),
            "2025-12-31T23:59:00Z"
        );
        // 2024-03-01 is a Friday; `mon` and `1` are Monday, `7` and `0` Sunday.
        assert_eq!(
            next("0 9 * * mon", "2024-03-01T10:00:00Z"),
            "2024-03-04T09:00:00Z"
        );
        assert_eq!(
            next("0 9 * * 7", "2024-03-01T10:00:00Z"),
            "2024-03-03T09:00:00Z"
        );
        assert_eq!(
            next("0 9 * * 1-5/2", "2024-03-01T10:00:00Z"),
            "2024-03-04T09:00:00Z"
        );
        // Both days restricted: either matches (the 10th, or a Sunday, whichever is first).
        assert_eq!(
            next("0 0 10 * sun", "2024-03-01T10:00:00Z"),
            "2024-03-03T00:00:00Z"
        );
        assert_eq!(
            next("5,10-12/2 * * * *", "2024-03-01T10:06:00Z"),
            "2024-03-01T10:10:00Z"
        );
        assert_eq!(
            next("5,10-12/2 * * * *", "2024-03-01T10:10:00Z"),
            "2024-03-01T10:12:00Z"
        );
    }

    #[test]
    fn due_ticks() {
        let s = Schedule::parse("*/5 * * * *").unwrap();
        // Nothing due before the first tick after creation.
        assert_eq!(
            s.due(ts("2024-03-01T10:01:00Z"), ts("2024-03-01T10:04:59Z")),
            None
        );
        // Exactly on a tick: due.
        assert_eq!(
            s.due(ts("2024-03-01T10:01:00Z"), ts("2024-03-01T10:05:00Z")),
            Some(ts("2024-03-01T10:05:00Z"))
        );
        // Several missed: only the newest starts.
        assert_eq!(
            s.due(ts("2024-03-01T10:01:00Z"), ts("2024-03-01T10:23:00Z")),
            Some(ts("2024-03-01T10:20:00Z"))
        );
        // The tick already started is not due again.
        assert_eq!(
            s.due(ts("2024-03-01T10:20:00Z"), ts("2024-03-01T10:23:00Z")),
            None
        );
        // A very old `since` is bounded by the catch-up window (and still finds the newest).
        assert_eq!(
            s.due(ts("2020-01-01T00:00:00Z"), ts("2024-03-01T10:23:00Z")),
            Some(ts("2024-03-01T10:20:00Z"))
        );
    }

    #[test]
    fn bad_schedules_say_why() {
        for (text, needle) in [
            ("* * * *", "expected 5 fields"),
            ("60 * * * *", "minute: 60 is outside 0-59"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day of month"),
            ("* * * foo *", "month"),
            ("* * * * 8", "day of week"),
            ("*/0 * * * *", "step of 0"),
            ("5-1 * * * *", "backwards"),
            (
                "* * * * fri-mon",
                "day of week: range \"fri-mon\" goes backwards",
            ),
            ("*/x * * * *", "minute: bad step \"x\""),
            ("x * * * *", "minute: \"x\" is not a number"),
            ("* * * * 300", "day of week: 300 is outside 0-7"),
        ] {
            let err = Schedule::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn errors_name_the_field_and_the_text() {
        let err = Schedule::parse("0 9 * foo mon").unwrap_err();
        assert_eq!(
            err,
            ScheduleError {
                schedule: "0 9 * foo mon".into(),
                problem: Problem::UnknownName {
                    field: Field::Month,
                    text: "foo".into()
                },
            }
        );
        assert_eq!(
            err.to_string(),
            "invalid schedule \"0 9 * foo mon\": month: \"foo\" is neither a number nor a name \
             (jan, feb, mar, apr, may, jun, jul, aug, sep, oct, nov, dec)"
        );
        assert_eq!(
            Schedule::parse("@often").unwrap_err().problem,
            Problem::FieldCount { found: 1 }
        );
        assert_eq!(
            Schedule::parse("*/0 * * * *").unwrap_err().problem,
            Problem::ZeroStep {
                field: Field::Minute,
                item: "*/0".into()
            }
        );
    }
}
