//! Backup freshness: how old the newest backup is, against what its schedule allows.
//!
//! The allowed age comes from the backup's cron schedule: the largest gap between two runs,
//! plus a slack of 2 hours (or the gap itself when that is shorter): a daily backup
//! (`0 2 * * *`) may be 26 hours old, an hourly one 2 hours.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::live::ObjectInfo;

/// A backup schedule that is not a cron expression cairn understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Not five fields (nor an `@` shorthand).
    #[error("`{schedule}` is not a cron schedule of five fields (minute hour day month weekday)")]
    Fields {
        /// The schedule as written.
        schedule: String,
    },
    /// A value that is neither a number nor a name of the field.
    #[error("`{value}` is not a number in the {field} field")]
    NotANumber {
        /// The value as written.
        value: String,
        /// The field: `minute`, `hour`, `day`, `month`, `weekday`.
        field: String,
    },
    /// A number outside the field's range.
    #[error("{field} {value} is outside {min}-{max}")]
    OutOfRange {
        /// The field.
        field: String,
        /// The number.
        value: u32,
        /// The field's least value.
        min: u32,
        /// The field's greatest value.
        max: u32,
    },
    /// A step that is not a number.
    #[error("`{step}` is not a step in the {field} field")]
    NotAStep {
        /// The step as written.
        step: String,
        /// The field.
        field: String,
    },
    /// A step of zero.
    #[error("a step of 0 in the {field} field")]
    ZeroStep {
        /// The field.
        field: String,
    },
    /// A range whose start is after its end.
    #[error("the range {range} of the {field} field is reversed")]
    Reversed {
        /// The range as written.
        range: String,
        /// The field.
        field: String,
    },
    /// A schedule that parses but matches no time (`0 2 31 2 *`).
    #[error("the schedule `{schedule}` never runs")]
    NeverRuns {
        /// The schedule as written.
        schedule: String,
    },
}

/// The slack added to the largest gap between runs.
pub const SLACK: Duration = Duration::from_secs(2 * 3600);

/// How fresh a backup is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Freshness {
    /// Younger than allowed.
    Fresh {
        /// Its age.
        age: Duration,
    },
    /// Older than allowed.
    Stale {
        /// Its age.
        age: Duration,
        /// The age allowed.
        allowed: Duration,
    },
    /// No backup at all.
    Missing,
}

/// Judges the newest backup at `now` (an object written "in the future", by clock skew, is
/// of age zero).
pub fn freshness(newest: Option<&ObjectInfo>, now: SystemTime, allowed: Duration) -> Freshness {
    let Some(obj) = newest else {
        return Freshness::Missing;
    };
    let age = now.duration_since(obj.last_modified).unwrap_or_default();
    if age > allowed {
        Freshness::Stale { age, allowed }
    } else {
        Freshness::Fresh { age }
    }
}

/// The age a backup on `schedule` may reach: the largest gap between runs plus [`SLACK`]
/// (or plus the gap itself when shorter than the slack).
pub fn allowed_age(schedule: &str) -> Result<Duration, ScheduleError> {
    let gap = largest_gap(schedule)?;
    Ok(gap + gap.min(SLACK))
}

/// A parsed five-field cron schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    days_star: bool,
    weekdays_star: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn value(s: &str, min: u32, max: u32, names: &[&str], field: &str) -> Result<u32, ScheduleError> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        return Ok(min + i as u32);
    }
    let v: u32 = s.parse().map_err(|_| ScheduleError::NotANumber {
        value: s.to_string(),
        field: field.to_string(),
    })?;
    if v < min || v > max {
        return Err(ScheduleError::OutOfRange {
            field: field.to_string(),
            value: v,
            min,
            max,
        });
    }
    Ok(v)
}

fn field(
    s: &str,
    min: u32,
    max: u32,
    names: &[&str],
    name: &str,
) -> Result<Vec<bool>, ScheduleError> {
    let mut set = vec![false; max as usize + 1];
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => {
                let st: u32 = st.parse().map_err(|_| ScheduleError::NotAStep {
                    step: st.to_string(),
                    field: name.to_string(),
                })?;
                if st == 0 {
                    return Err(ScheduleError::ZeroStep {
                        field: name.to_string(),
                    });
                }
                (r, st)
            }
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                value(a, min, max, names, name)?,
                value(b, min, max, names, name)?,
            )
        } else {
            let v = value(range, min, max, names, name)?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo > hi {
            return Err(ScheduleError::Reversed {
                range: range.to_string(),
                field: name.to_string(),
            });
        }
        let mut v = lo;
        while v <= hi {
            set[v as usize] = true;
            v += step;
        }
    }
    Ok(set)
}

impl Cron {
    /// Parses `m h dom mon dow` (numbers, names, `*`, ranges, steps, lists) or `@hourly`,
    /// `@daily`/`@midnight`, `@weekly`, `@monthly`, `@yearly`/`@annually`.
    pub fn parse(s: &str) -> Result<Cron, ScheduleError> {
        let expanded = match s.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other => other,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        let [m, h, dom, mon, dow] = parts[..] else {
            return Err(ScheduleError::Fields {
                schedule: s.to_string(),
            });
        };
        let mut weekdays = field(dow, 0, 7, &WEEKDAYS, "weekday")?;
        if weekdays[7] {
            weekdays[0] = true;
        }
        weekdays.truncate(7);
        Ok(Cron {
            minutes: field(m, 0, 59, &[], "minute")?,
            hours: field(h, 0, 23, &[], "hour")?,
            days: field(dom, 1, 31, &[], "day")?,
            months: field(mon, 1, 12, &MONTHS, "month")?,
            weekdays,
            days_star: dom.starts_with('*'),
            weekdays_star: dow.starts_with('*'),
        })
    }

    fn day_matches(&self, month: u32, day: u32, weekday: u32) -> bool {
        if !self.months[month as usize] {
            return false;
        }
        let d = self.days[day as usize];
        let w = self.weekdays[weekday as usize];
        match (self.days_star, self.weekdays_star) {
            (true, true) => true,
            (false, true) => d,
            (true, false) => w,
            // Both restricted: cron runs when either matches.
            (false, false) => d || w,
        }
    }
}

/// (year, month, day) of a day number counted from 1970-01-01.
fn civil(days: i64) -> (i64, u32, u32) {
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

/// The largest gap between two consecutive runs of a schedule.
///
/// Runs repeat with the calendar: 28 years (2001-2028, no skipped leap year) are a whole
/// number of weeks, so the gap from the last run of that window to the first run of the next
/// one closes the cycle.
pub fn largest_gap(schedule: &str) -> Result<Duration, ScheduleError> {
    let cron = Cron::parse(schedule)?;
    let times: Vec<i64> = (0..24)
        .filter(|h| cron.hours[*h])
        .flat_map(|h| {
            (0..60)
                .filter(|m| cron.minutes[*m])
                .map(move |m| (h * 60 + m) as i64)
        })
        .collect();
    // 2001-01-01 is day 11323 since the epoch; 28 years are 10227 days = 1461 weeks.
    const START: i64 = 11_323;
    const WINDOW: i64 = 10_227;
    let days: Vec<i64> = (0..WINDOW)
        .filter(|i| {
            let n = START + i;
            let (_, m, d) = civil(n);
            let weekday = (n + 4).rem_euclid(7) as u32; // 1970-01-01 was a Thursday
            cron.day_matches(m, d, weekday)
        })
        .collect();
    let (Some(first_t), Some(last_t), Some(first_d)) = (times.first(), times.last(), days.first())
    else {
        return Err(ScheduleError::NeverRuns {
            schedule: schedule.to_string(),
        });
    };
    let mut gap = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    let wrap = first_d + WINDOW;
    let next_days = days.iter().skip(1).chain(std::iter::once(&wrap));
    for (a, b) in days.iter().zip(next_days) {
        gap = gap.max((b - a) * 1440 - last_t + first_t);
    }
    Ok(Duration::from_secs(gap as u64 * 60))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const H: u64 = 3600;

    fn hours(s: &str) -> u64 {
        allowed_age(s).unwrap().as_secs() / H
    }

    #[test]
    fn daily_is_26_hours_hourly_2() {
        assert_eq!(hours("0 2 * * *"), 26);
        assert_eq!(hours("@daily"), 26);
        assert_eq!(hours("0 * * * *"), 2);
        assert_eq!(hours("@hourly"), 2);
        assert_eq!(hours("0 */6 * * *"), 8);
        assert_eq!(hours("30 2,14 * * *"), 14);
    }

    #[test]
    fn uneven_schedules_take_the_largest_gap() {
        // 02:00 and 05:00: the gap from 05:00 to 02:00 the next day is 21 h.
        assert_eq!(largest_gap("0 2,5 * * *").unwrap().as_secs(), 21 * H);
        // Weekdays only: Friday 02:00 to Monday 02:00.
        assert_eq!(largest_gap("0 2 * * 1-5").unwrap().as_secs(), 72 * H);
        assert_eq!(largest_gap("0 2 * * MON-FRI").unwrap().as_secs(), 72 * H);
        assert_eq!(largest_gap("@weekly").unwrap().as_secs(), 7 * 24 * H);
        assert_eq!(largest_gap("0 0 * * 7").unwrap().as_secs(), 7 * 24 * H);
        // Monthly: the longest gap is 31 days.
        assert_eq!(largest_gap("0 3 1 * *").unwrap().as_secs(), 31 * 24 * H);
        // Every 15 minutes.
        assert_eq!(largest_gap("*/15 * * * *").unwrap().as_secs(), 15 * 60);
        // Leap days only: 4 years apart (within 2001-2028).
        assert_eq!(largest_gap("0 0 29 2 *").unwrap().as_secs(), 1461 * 24 * H);
    }

    #[test]
    fn bad_schedules_are_errors() {
        for bad in [
            "",
            "0 2 * *",
            "61 * * * *",
            "0 2 31 2 *",
            "*/0 * * * *",
            "5-1 * * * *",
            "x * * * *",
        ] {
            assert!(allowed_age(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(11_323), (2001, 1, 1));
        assert_eq!(civil(11_323 + 10_227), (2029, 1, 1));
    }

    #[test]
    fn fresh_stale_missing() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let obj = ObjectInfo {
            key: "postgres/x.sql.gz".into(),
            size: 10,
            last_modified: t0,
        };
        let allowed = Duration::from_secs(26 * H);
        assert_eq!(freshness(None, t0, allowed), Freshness::Missing);
        assert_eq!(
            freshness(Some(&obj), t0 + Duration::from_secs(25 * H), allowed),
            Freshness::Fresh {
                age: Duration::from_secs(25 * H)
            }
        );
        assert_eq!(
            freshness(Some(&obj), t0 + Duration::from_secs(27 * H), allowed),
            Freshness::Stale {
                age: Duration::from_secs(27 * H),
                allowed
            }
        );
        assert_eq!(
            freshness(Some(&obj), t0 - Duration::from_secs(60), allowed),
            Freshness::Fresh {
                age: Duration::ZERO
            }
        );
    }
}
