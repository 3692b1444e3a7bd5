//! Cron schedules as Kubernetes CronJob accepts them (the robfig/cron standard parser).

use super::Invalid;
use super::duration::{DurationError, go_duration};

/// One of the five fields of a cron schedule.
struct CronField {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for `min..`, lowercase, with what to call them in messages.
    names: Option<(&'static [&'static str], &'static str)>,
    question_mark: bool,
}

const MONTH_NAMES: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

const CRON_FIELDS: [CronField; 5] = [
    CronField {
        name: "minute",
        min: 0,
        max: 59,
        names: None,
        question_mark: false,
    },
    CronField {
        name: "hour",
        min: 0,
        max: 23,
        names: None,
        question_mark: false,
    },
    CronField {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: None,
        question_mark: true,
    },
    CronField {
        name: "month",
        min: 1,
        max: 12,
        names: Some((&MONTH_NAMES, "month name (JAN-DEC)")),
        question_mark: false,
    },
    CronField {
        name: "day-of-week",
        min: 0,
        max: 6,
        names: Some((&WEEKDAY_NAMES, "weekday name (SUN-SAT)")),
        question_mark: true,
    },
];

const CRON_MACROS: [&str; 7] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

/// Why an `@` macro is not one robfig/cron accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum MacroError {
    /// `@every` followed by something that is not a Go duration.
    #[error("invalid duration {duration:?} after @every: {reason}")]
    Every {
        /// The text after `@every `.
        duration: String,
        /// What is wrong with it.
        #[source]
        reason: DurationError,
    },
    /// A known macro with whitespace around it.
    #[error("unexpected whitespace around the macro {0:?}")]
    Whitespace(String),
    /// A known macro in the wrong case; holds the lowercase spelling.
    #[error("macros are lowercase; did you mean {0:?}")]
    Uppercase(String),
    /// Anything else.
    #[error(
        "unknown macro {0:?}; expected one of @yearly, @annually, @monthly, @weekly, @daily, \
         @midnight, @hourly or @every <duration>"
    )]
    Unknown(String),
}

/// Why one field of a 5-field schedule is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum FieldError {
    /// `1,,2`; holds the field.
    #[error("empty list element in {0:?}")]
    EmptyElement(String),
    /// `1/2/3`; holds the list element.
    #[error("too many '/' in {0:?}")]
    TooManySlashes(String),
    /// `?` outside the two day fields.
    #[error("'?' is only allowed in the day-of-month and day-of-week fields")]
    QuestionMark,
    /// `5-2`.
    #[error("range {low}-{high} is backwards; the start must not be after the end")]
    Backwards {
        /// The start.
        low: u32,
        /// The end.
        high: u32,
    },
    /// `1-2-3`; holds the list element.
    #[error("too many '-' in {0:?}")]
    TooManyDashes(String),
    /// `*/`; holds the list element.
    #[error("missing step after '/' in {0:?}")]
    MissingStep(String),
    /// `*/x`.
    #[error("step {step:?} in {item:?} is not a whole number")]
    StepNotNumber {
        /// The step.
        step: String,
        /// The list element.
        item: String,
    },
    /// `*/0`; holds the list element.
    #[error("step in {0:?} must be a positive number, found 0")]
    ZeroStep(String),
    /// `1-`; holds the list element.
    #[error("missing number in {0:?}")]
    MissingNumber(String),
    /// `*-5`.
    #[error("{text:?} cannot be part of a range in {item:?}")]
    WildcardInRange {
        /// `*` or `?`.
        text: String,
        /// The list element.
        item: String,
    },
    /// A number outside the field's range.
    #[error("{text} is out of range {range}{hint}")]
    OutOfRange {
        /// The number.
        text: String,
        /// The field's range, as `min-max`.
        range: String,
        /// Empty, or how to write Sunday.
        hint: &'static str,
    },
    /// Neither a number nor one of the field's names.
    #[error("{text:?} is not a number or {kind}")]
    NotNumberOrName {
        /// The text.
        text: String,
        /// What the field's names are, as in `month name (JAN-DEC)`.
        kind: &'static str,
    },
    /// Not a number, in a field without names.
    #[error("{0:?} is not a number")]
    NotNumber(String),
}

/// A 5-field cron schedule as Kubernetes CronJob accepts it (robfig/cron standard parser):
/// minute hour day-of-month month day-of-week; `*`, lists `,`, ranges `a-b`, steps `*/n`,
/// `a-b/n` and `a/n` (meaning `a-max/n`), month names JAN-DEC and weekday names SUN-SAT
/// (case-insensitive), weekdays 0-6 (7 is rejected, as robfig does), `?` in the day-of-month
/// and day-of-week fields, the macros @yearly @annually @monthly @weekly @daily @midnight
/// @hourly, and `@every <Go duration>`.
///
/// Like the API server, any `TZ` in the schedule (`CRON_TZ=Area/City ...`, `TZ=...`) is
/// rejected: the time zone belongs in the CronJob's `timeZone` field.
///
/// Stricter than robfig in a few places where it silently accepts typos: empty list elements
/// (`1,,2`), `*` as the start of a range (`*-5`), `?` outside the two day fields, and signs
/// on numbers (`+5`).
///
/// A schedule whose day never comes (`0 0 31 2 *`) is valid here, as it is to the API server
/// (and to the emulator, which uses this check): [`cron_schedule_runs`] rejects it.
pub fn cron_schedule(s: &str) -> Result<(), Invalid> {
    check(s, false)
}

/// [`cron_schedule`], and a schedule that ever fires: a day of month that no month of the
/// schedule has (`0 0 30 2 *`, `0 0 31 4 *`, while the day-of-week field is `*`) is an error,
/// since the job would never run. For what a script declares to run; a suspended CronJob
/// triggered by hand may use such a schedule on purpose.
pub fn cron_schedule_runs(s: &str) -> Result<(), Invalid> {
    check(s, true)
}

fn check(s: &str, must_run: bool) -> Result<(), Invalid> {
    let invalid = |reason: &str| Invalid(format!("invalid cron schedule {s:?}: {reason}"));
    if s.contains("TZ") {
        return Err(invalid(
            "time zones in the schedule are not allowed; use the timeZone field",
        ));
    }
    if s.is_empty() {
        return Err(invalid(
            "expected 5 fields (minute hour day-of-month month day-of-week) or a macro such \
             as @daily, found an empty string",
        ));
    }
    if s.starts_with('@') {
        return cron_macro(s).map_err(|reason| invalid(&reason.to_string()));
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        let hint = if fields.len() == 6 {
            "; a seconds field is not supported"
        } else {
            ""
        };
        return Err(invalid(&format!(
            "expected 5 fields, found {} (minute hour day-of-month month day-of-week){hint}",
            fields.len()
        )));
    }
    let mut sets = [0u64; 5];
    for ((text, field), set) in fields.iter().zip(CRON_FIELDS.iter()).zip(sets.iter_mut()) {
        *set = cron_field(text, field)
            .map_err(|reason| invalid(&format!("{} field: {reason}", field.name)))?;
    }
    // The day-of-week field, unrestricted, leaves the day-of-month alone to decide (robfig's
    // star bit: `*`, `?`, `*/1`); a restricted one makes either day match.
    let any_weekday = fields[4]
        .split(',')
        .all(|item| matches!(item, "*" | "?" | "*/1" | "?/1"));
    if must_run
        && any_weekday
        && let Some(reason) = never_a_day(sets[2], sets[3])
    {
        return Err(invalid(&reason));
    }
    Ok(())
}

/// The longest each month gets (February in a leap year).
const MONTH_DAYS: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Why the days of month `days` never occur in the months `months` (bit sets), if they never
/// do: `0 0 30 2 *` and `0 0 31 4 *` are accepted by the API server and never run.
fn never_a_day(days: u64, months: u64) -> Option<String> {
    let first_day = days.trailing_zeros();
    let in_set: Vec<usize> = (1..=12).filter(|m| months & (1 << m) != 0).collect();
    if in_set.is_empty() || in_set.iter().any(|m| MONTH_DAYS[m - 1] >= first_day) {
        return None;
    }
    let names: Vec<&str> = in_set.iter().map(|m| MONTHS[m - 1]).collect();
    let longest = in_set.iter().map(|m| MONTH_DAYS[m - 1]).max().unwrap_or(31);
    let listed: Vec<String> = (first_day..=31)
        .filter(|d| days & (1 << d) != 0)
        .map(|d| d.to_string())
        .collect();
    let (day, comes) = if listed.len() == 1 {
        ("day", "comes")
    } else {
        ("days", "come")
    };
    let have = if names.len() == 1 { "has" } else { "have" };
    Some(format!(
        "day-of-month field: {day} {} never {comes} in {}, which {have} at most {longest} days: the job would never run",
        listed.join(", "),
        names.join(", ")
    ))
}

/// Checks an `@` macro.
fn cron_macro(s: &str) -> Result<(), MacroError> {
    if CRON_MACROS.contains(&s) {
        return Ok(());
    }
    if let Some(duration) = s.strip_prefix("@every ") {
        return go_duration(duration).map_err(|reason| MacroError::Every {
            duration: duration.to_owned(),
            reason,
        });
    }
    let trimmed = s.trim();
    if CRON_MACROS.contains(&trimmed) {
        return Err(MacroError::Whitespace(trimmed.to_owned()));
    }
    let lower = s.to_lowercase();
    if CRON_MACROS.contains(&lower.as_str()) {
        return Err(MacroError::Uppercase(lower));
    }
    Err(MacroError::Unknown(s.to_owned()))
}

/// Checks one field of a 5-field schedule; returns the values it matches as a bit set.
fn cron_field(text: &str, field: &CronField) -> Result<u64, FieldError> {
    let mut set = 0;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(FieldError::EmptyElement(text.to_owned()));
        }
        set |= cron_item(item, field)?;
    }
    Ok(set)
}

/// Checks one list element: `*`, `?`, `a`, `a-b`, each optionally followed by `/step`;
/// returns the values it matches as a bit set.
fn cron_item(item: &str, field: &CronField) -> Result<u64, FieldError> {
    let mut parts = item.split('/');
    let range = parts.next().unwrap_or_default();
    let step = parts.next();
    if parts.next().is_some() {
        return Err(FieldError::TooManySlashes(item.to_owned()));
    }

    let (low, mut high) = if range == "*" || range == "?" {
        if range == "?" && !field.question_mark {
            return Err(FieldError::QuestionMark);
        }
        (field.min, field.max)
    } else {
        let bounds: Vec<&str> = range.split('-').collect();
        match bounds.as_slice() {
            [single] => {
                let v = cron_value(single, item, field)?;
                (v, v)
            }
            [low, high] => {
                let low = cron_value(low, item, field)?;
                let high = cron_value(high, item, field)?;
                if low > high {
                    return Err(FieldError::Backwards { low, high });
                }
                (low, high)
            }
            _ => return Err(FieldError::TooManyDashes(item.to_owned())),
        }
    };
    let mut every = 1;

    if let Some(step) = step {
        if step.is_empty() {
            return Err(FieldError::MissingStep(item.to_owned()));
        }
        if !step.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::StepNotNumber {
                step: step.to_owned(),
                item: item.to_owned(),
            });
        }
        let all_zero = step.bytes().all(|b| b == b'0');
        if all_zero {
            return Err(FieldError::ZeroStep(item.to_owned()));
        }
        // `a/n` means `a-max/n`; a step beyond the field's range matches its start only.
        if !range.contains('-') {
            high = field.max;
        }
        every = step.parse::<u32>().unwrap_or(u32::MAX);
    }
    Ok((low..=high)
        .step_by(usize::try_from(every).unwrap_or(usize::MAX))
        .fold(0, |set, v| set | (1u64 << v)))
}

/// Parses a number or name in a cron field and checks its range.
fn cron_value(text: &str, item: &str, field: &CronField) -> Result<u32, FieldError> {
    if text.is_empty() {
        return Err(FieldError::MissingNumber(item.to_owned()));
    }
    if text == "*" || text == "?" {
        return Err(FieldError::WildcardInRange {
            text: text.to_owned(),
            item: item.to_owned(),
        });
    }
    let range = format!("{}-{}", field.min, field.max);
    let sunday_hint = if field.max == 6 && field.names.is_some() {
        " (use 0 or SUN for Sunday)"
    } else {
        ""
    };
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(v) if (field.min..=field.max).contains(&v) => Ok(v),
            _ => Err(FieldError::OutOfRange {
                text: text.to_owned(),
                range,
                hint: sunday_hint,
            }),
        };
    }
    if let Some((names, kind)) = field.names {
        let lower = text.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            return Ok(field
                .min
                .saturating_add(u32::try_from(i).unwrap_or(u32::MAX)));
        }
        return Err(FieldError::NotNumberOrName {
            text: text.to_owned(),
            kind,
        });
    }
    Err(FieldError::NotNumber(text.to_owned()))
}

#[allow(clippy::unwrap_used)]
#[cfg(test)]
mod tests {
    use super::*;

    fn err<T: std::fmt::Debug>(r: Result<T, Invalid>) -> String {
        r.unwrap_err().0
    }

    #[test]
    fn cron_accepts_standard_schedules() {
        for s in [
            "* * * * *",
            "*/5 * * * *",
            "0 0 * * *",
            "0 0 1 1 *",
            "15 2 * * MON-FRI",
            "15 2 * * mon-fri",
            "0 0 1 JAN,jul *",
            "0 0 ? * *",
            "0 0 * * ?",
            "0-59/15 * * * *",
            "5/15 * * * *",
            "0 9-17 * * 1-5",
            "0 0 31 12 6",
            "0 0 1-31/2 * SUN",
            "  0   0  *  *  *  ",
            "0 0 * * 0",
            "*/100 * * * *",
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
            "@every 1h30m",
            "@every 90s",
            "@every 1.5h",
            "@every 500ms",
            "@every 0",
            "0 0 29 2 *",
            "0 0 30 1-2 *",
            "0 0 31 */2 *",
            "0 0 30 2 1",
            "0 0 30,1 2 *",
        ] {
            assert!(
                cron_schedule_runs(s).is_ok(),
                "{s}: {:?}",
                cron_schedule_runs(s)
            );
        }
    }

    #[test]
    fn cron_rejects_days_that_never_come() {
        // The API server accepts them: only a schedule meant to run is held to it.
        assert!(cron_schedule("0 0 31 2 *").is_ok());
        let cron_schedule = cron_schedule_runs;
        assert_eq!(
            err(cron_schedule("0 0 30 2 *")),
            "invalid cron schedule \"0 0 30 2 *\": day-of-month field: day 30 never comes in \
             February, which has at most 29 days: the job would never run"
        );
        assert!(err(cron_schedule("0 0 31 4 *")).contains("day 31 never comes in April"));
        assert!(err(cron_schedule("0 0 31 apr,jun,9,11 ?")).contains(
            "never comes in April, June, September, November, which have at most 30 days"
        ));
        assert!(
            err(cron_schedule("0 0 30-31 feb *")).contains("days 30, 31 never come in February")
        );
    }

    #[test]
    fn cron_errors_name_the_field() {
        assert_eq!(
            err(cron_schedule("61 * * * *")),
            r#"invalid cron schedule "61 * * * *": minute field: 61 is out of range 0-59"#
        );
        assert!(
            err(cron_schedule("* * * * * *")).contains("expected 5 fields, found 6"),
            "{}",
            err(cron_schedule("* * * * * *"))
        );
        assert!(err(cron_schedule("* * * *")).contains("expected 5 fields, found 4"));
        assert!(err(cron_schedule("* 24 * * *")).contains("hour field: 24 is out of range 0-23"));
        assert!(
            err(cron_schedule("* * 0 * *")).contains("day-of-month field: 0 is out of range 1-31")
        );
        assert!(err(cron_schedule("* * * 13 *")).contains("month field: 13 is out of range 1-12"));
        assert_eq!(
            err(cron_schedule("0 0 * * 7")),
            "invalid cron schedule \"0 0 * * 7\": day-of-week field: 7 is out of range 0-6 \
             (use 0 or SUN for Sunday)"
        );
        assert!(
            err(cron_schedule("0 0 * FOO *"))
                .contains(r#"month field: "FOO" is not a number or month name (JAN-DEC)"#)
        );
        assert!(
            err(cron_schedule("0 0 * * MONDAY")).contains(
                r#"day-of-week field: "MONDAY" is not a number or weekday name (SUN-SAT)"#
            )
        );
        assert!(err(cron_schedule("x * * * *")).contains(r#"minute field: "x" is not a number"#));
        assert!(err(cron_schedule("*/0 * * * *")).contains("must be a positive number, found 0"));
        assert!(err(cron_schedule("5-2 * * * *")).contains("range 5-2 is backwards"));
        assert!(err(cron_schedule("1-2-3 * * * *")).contains("too many '-'"));
        assert!(err(cron_schedule("1/2/3 * * * *")).contains("too many '/'"));
        assert!(err(cron_schedule("1,,2 * * * *")).contains("empty list element"));
        assert!(err(cron_schedule("*/ * * * *")).contains("missing step"));
        assert!(err(cron_schedule("*/x * * * *")).contains("not a whole number"));
        assert!(err(cron_schedule("1- * * * *")).contains("missing number"));
        assert!(err(cron_schedule("*-5 * * * *")).contains("cannot be part of a range"));
        assert!(
            err(cron_schedule("? * * * *"))
                .contains("'?' is only allowed in the day-of-month and day-of-week fields")
        );
        assert!(err(cron_schedule("0 0 0/5 * *")).contains("0 is out of range 1-31"));
        assert!(err(cron_schedule("99999999999 * * * *")).contains("out of range"));
        assert!(err(cron_schedule("")).contains("found an empty string"));
        assert!(err(cron_schedule("   ")).contains("expected 5 fields, found 0"));
    }

    #[test]
    fn cron_rejects_time_zones_and_bad_macros() {
        let tz = "time zones in the schedule are not allowed; use the timeZone field";
        assert_eq!(
            err(cron_schedule("CRON_TZ=Europe/Paris 0 0 * * *")),
            format!("invalid cron schedule \"CRON_TZ=Europe/Paris 0 0 * * *\": {tz}")
        );
        assert!(err(cron_schedule("TZ=UTC @daily")).ends_with(tz));
        assert!(
            err(cron_schedule("@dialy")).contains(r#"unknown macro "@dialy"; expected one of"#)
        );
        assert!(err(cron_schedule("@DAILY")).contains("macros are lowercase"));
        assert!(err(cron_schedule("@daily ")).contains("unexpected whitespace"));
        assert!(err(cron_schedule("@every")).contains("unknown macro"));
        assert!(err(cron_schedule("@every 5")).contains("missing unit"));
        assert!(err(cron_schedule("@every 5x")).contains("unknown unit \"x\""));
        assert!(err(cron_schedule("@every ")).contains("empty duration"));
        assert!(err(cron_schedule("@every 1h.")).contains("after @every"));
        assert!(err(cron_schedule("@every 9999999999h")).contains("too long"));
    }
}
