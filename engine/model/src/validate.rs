//! Plan-time validation of user input for Kubernetes objects, DNS records and schedules.
//!
//! Every check returns an [`Invalid`] whose message is a lowercase phrase without a trailing dot
//! that quotes the offending input and says what was expected, for example
//! `invalid quantity "1.5.5Gi": more than one decimal point`.
//!
//! The rules follow what the Kubernetes API server (k8s.io/apimachinery), the robfig/cron parser
//! used for CronJob schedules and the container image reference grammar accept. Where those
//! accept input that is almost certainly a mistake, the check here is deliberately stricter; each
//! such case is documented on the function.

use std::cmp::Ordering;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Add;

/// A validation failure: a message suitable for a diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

// ---------------------------------------------------------------------------------------------
// Quantities
// ---------------------------------------------------------------------------------------------

/// Nano-units in one unit.
const NANO_PER_UNIT: u128 = 1_000_000_000;
/// The largest magnitude a Kubernetes quantity can hold, in nano-units (`2^63 - 1` units).
const MAX_NANO: u128 = (i64::MAX as u128) * NANO_PER_UNIT;
/// The most decimal digits a `u128` always holds.
const MAX_U128_DIGITS: usize = 38;
/// Longest input whose spelling is remembered for [`Quantity::canonical`].
const VERBATIM_CAP: usize = 40;

/// The three spellings Kubernetes distinguishes (`resource.Format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `Ki`, `Mi`, ... suffixes (powers of 1024).
    BinarySi,
    /// `n`, `u`, `m`, no suffix, `k`, `M`, ... (powers of 1000).
    DecimalSi,
    /// `e3`, `E-6`, ...
    DecimalExponent,
}

/// The input spelling the API server keeps verbatim (see [`Quantity::canonical`]).
#[derive(Clone, Copy)]
struct Verbatim {
    len: u8,
    bytes: [u8; VERBATIM_CAP],
}

impl Verbatim {
    const NONE: Verbatim = Verbatim {
        len: 0,
        bytes: [0; VERBATIM_CAP],
    };

    fn new(s: &str) -> Verbatim {
        let mut v = Verbatim::NONE;
        if let (Ok(len), Some(dst)) = (u8::try_from(s.len()), v.bytes.get_mut(..s.len())) {
            dst.copy_from_slice(s.as_bytes());
            v.len = len;
        }
        v
    }

    fn as_str(&self) -> Option<&str> {
        let bytes = self.bytes.get(..usize::from(self.len))?;
        match std::str::from_utf8(bytes) {
            Ok(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }
}

impl fmt::Debug for Verbatim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.as_str(), f)
    }
}

/// A parsed Kubernetes resource quantity (k8s.io/apimachinery `resource.Quantity` semantics).
///
/// The value is held exactly as a count of nano-units (10^-9), which is the finest precision
/// Kubernetes keeps: inputs with more precision are rounded away from zero to the next nano-unit,
/// as the API server does. Milli-CPU and byte counts are therefore always exact.
///
/// Equality and ordering compare values, like `Quantity.Cmp` (`"1Gi" == "1073741824"`); compare
/// [`Quantity::canonical`] strings to detect spelling differences.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nano: i128,
    format: Format,
    verbatim: Verbatim,
}

/// A numeric suffix: its base (2 or 10), exponent and the format it implies.
#[derive(Debug, Clone, Copy)]
struct Suffix {
    binary: bool,
    exponent: i32,
    format: Format,
}

impl Quantity {
    /// Parses a quantity as the API server does: an optionally signed decimal number followed by
    /// an optional suffix, either binary (`Ki Mi Gi Ti Pi Ei`), decimal (`n u m k M G T P E`) or
    /// an exponent (`e3`, `E-2`, `e+6`).
    ///
    /// Stricter than the API server in three ways: a number needs digits on both sides of a
    /// decimal point when it has one (`"1."` and `"."` are rejected), exponents must fit in 32
    /// bits, and magnitudes above `2^63 - 1` are rejected instead of being silently capped.
    pub fn parse(s: &str) -> Result<Quantity, Invalid> {
        let invalid = |reason: &str| Invalid(format!("invalid quantity {s:?}: {reason}"));
        if s.is_empty() {
            return Err(invalid(
                "empty value; expected a number such as 500m, 1.5 or 2Gi",
            ));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(invalid("must not contain whitespace"));
        }

        let bytes = s.as_bytes();
        let (negative, mut pos) = match bytes.first() {
            Some(b'-') => (true, 1),
            Some(b'+') => (false, 1),
            _ => (false, 0),
        };
        let int_start = pos;
        while bytes.get(pos).is_some_and(u8::is_ascii_digit) {
            pos += 1;
        }
        let int_digits = bytes.get(int_start..pos).unwrap_or_default();
        let has_point = bytes.get(pos) == Some(&b'.');
        let mut frac_digits: &[u8] = &[];
        if has_point {
            pos += 1;
            let frac_start = pos;
            while bytes.get(pos).is_some_and(u8::is_ascii_digit) {
                pos += 1;
            }
            frac_digits = bytes.get(frac_start..pos).unwrap_or_default();
        }
        let rest = s.get(pos..).unwrap_or_default();

        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(if has_point {
                invalid("expected digits before or after the decimal point")
            } else {
                invalid("expected a number at the start, such as 500m, 1.5 or 2Gi")
            });
        }
        if rest.starts_with('.') {
            return Err(invalid("more than one decimal point"));
        }
        if has_point && frac_digits.is_empty() {
            return Err(invalid("expected digits after the decimal point"));
        }
        let suffix = parse_suffix(rest).map_err(|reason| invalid(&reason))?;

        let too_large = || invalid(&format!("value is too large; the maximum is {}", i64::MAX));
        let magnitude = magnitude_nanos(int_digits, frac_digits, suffix).ok_or_else(too_large)?;
        if magnitude > MAX_NANO {
            return Err(too_large());
        }
        let magnitude = i128::try_from(magnitude).map_err(|_| too_large())?;
        let nano = if negative { -magnitude } else { magnitude };

        let mut format = suffix.format;
        let verbatim = if s == "0" || kept_verbatim(int_digits, frac_digits, suffix) {
            Verbatim::new(s)
        } else {
            // Only the slow path of `ParseQuantity` gets here with a fraction of a binary unit.
            if format == Format::BinarySi && magnitude > 0 && magnitude < NANO_PER_UNIT as i128 {
                format = Format::DecimalSi;
            }
            Verbatim::NONE
        };
        Ok(Quantity {
            nano,
            format,
            verbatim,
        })
    }

    /// Parses a quantity like [`Quantity::parse`] and rejects negative values (requests, limits,
    /// storage sizes).
    pub fn parse_non_negative(s: &str) -> Result<Quantity, Invalid> {
        let q = Quantity::parse(s)?;
        if q.nano < 0 {
            return Err(Invalid(format!(
                "invalid quantity {s:?}: must not be negative"
            )));
        }
        Ok(q)
    }

    /// The value in milli-units, rounded away from zero like Kubernetes' `MilliValue` (for CPU:
    /// `"500m"` is 500, `"2"` is 2000, `"0.1m"` is 1).
    pub fn millis(&self) -> i128 {
        div_away_from_zero(self.nano, 1_000_000)
    }

    /// The value in whole units, rounded away from zero like Kubernetes' `Value` (for bytes:
    /// `"1Gi"` is 1073741824, `"1.5"` is 2).
    pub fn units(&self) -> i128 {
        div_away_from_zero(self.nano, 1_000_000_000)
    }

    /// The string the API server stores for this quantity (what `kubectl get -o yaml` shows).
    ///
    /// Rules, from `Quantity.String` / `CanonicalizeBytes` in k8s.io/apimachinery:
    ///
    /// * Zero is `"0"`.
    /// * The format is that of the input suffix: binary (`Ki`...), decimal SI (`m`, none, `k`...)
    ///   or decimal exponent (`e3`). Sums take the format of the left operand (of the right one
    ///   when the left is zero), scaling keeps it.
    /// * Binary values are written as `n` times the largest power of 1024 that divides them
    ///   exactly (`"1024Mi"` → `"1Gi"`, `"1.5Gi"` → `"1536Mi"`, `"2000Mi"` stays). Binary values
    ///   smaller than 1024 in magnitude or with a fractional part are written in decimal SI
    ///   (`"0.5Ki"` → `"512"`).
    /// * Decimal values are written as an integer times the largest power of 1000 that keeps it
    ///   an integer, with the matching suffix (`"0.5"` → `"500m"`, `"1000m"` → `"1"`,
    ///   `"1500k"` stays, `"1000"` → `"1k"`); the exponent format uses `e<multiple of 3>`
    ///   instead of a letter (`"1e3"` stays `"1e3"`, `"1000e0"` → `"1e3"`, `"0.5e0"` →
    ///   `"500e-3"`).
    /// * Like the API server, an input already "in canonical form" by its fast-path test is
    ///   kept verbatim, including a leading `+`, leading zeros, or a fraction whose scale is a
    ///   multiple of three (`"1.125"` stays `"1.125"`, `"+1k"` stays `"+1k"`). Such spellings
    ///   longer than 40 bytes are canonicalized instead.
    pub fn canonical(&self) -> String {
        if let Some(s) = self.verbatim.as_str() {
            return s.to_string();
        }
        format_canonical(self.nano, self.format)
    }

    /// Multiplies the quantity by an integer (for example by a replica count). The result
    /// saturates instead of overflowing.
    pub fn scale(&self, n: i64) -> Quantity {
        Quantity {
            nano: self.nano.saturating_mul(i128::from(n)),
            format: self.format,
            verbatim: Verbatim::NONE,
        }
    }
}

impl fmt::Display for Quantity {
    /// Writes [`Quantity::canonical`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nano == other.nano
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    /// Compares values, whatever their spelling.
    fn cmp(&self, other: &Self) -> Ordering {
        self.nano.cmp(&other.nano)
    }
}

impl Add for Quantity {
    type Output = Quantity;

    /// Adds two quantities; the result has the left operand's format (the right one's when the
    /// left is zero), like `Quantity.Add`, and saturates instead of overflowing.
    fn add(self, rhs: Quantity) -> Quantity {
        Quantity {
            nano: self.nano.saturating_add(rhs.nano),
            format: if self.nano == 0 {
                rhs.format
            } else {
                self.format
            },
            verbatim: Verbatim::NONE,
        }
    }
}

/// Interprets a quantity suffix, or explains why it is not one.
fn parse_suffix(rest: &str) -> Result<Suffix, String> {
    let decimal = |exponent| {
        Ok(Suffix {
            binary: false,
            exponent,
            format: Format::DecimalSi,
        })
    };
    let binary = |exponent| {
        Ok(Suffix {
            binary: true,
            exponent,
            format: Format::BinarySi,
        })
    };
    match rest {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        "K" => Err("unknown suffix \"K\"; use \"k\" for 1000 or \"Ki\" for 1024".to_string()),
        _ if rest.len() > 1 && (rest.starts_with('e') || rest.starts_with('E')) => {
            let exponent = rest.get(1..).unwrap_or_default();
            let invalid_exponent = || {
                format!(
                    "invalid exponent {rest:?}; expected e or E followed by an integer, as in 1e3"
                )
            };
            let (negative, digits) = match exponent.as_bytes().first() {
                Some(b'-') => (true, exponent.get(1..).unwrap_or_default()),
                Some(b'+') => (false, exponent.get(1..).unwrap_or_default()),
                _ => (false, exponent),
            };
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid_exponent());
            }
            let out_of_range = || format!("exponent in {rest:?} is out of range");
            let magnitude: i64 = digits.parse().map_err(|_| out_of_range())?;
            let value = if negative { -magnitude } else { magnitude };
            let exponent = i32::try_from(value).map_err(|_| out_of_range())?;
            Ok(Suffix {
                binary: false,
                exponent,
                format: Format::DecimalExponent,
            })
        }
        _ => {
            let lower = rest.to_ascii_lowercase();
            let hint = if lower.ends_with('b') && lower.len() <= 3 {
                "; byte sizes are written without \"B\", as in 512Mi or 1G"
            } else {
                ""
            };
            Err(format!(
                "unknown suffix {rest:?}; expected one of Ki, Mi, Gi, Ti, Pi, Ei (powers of 1024), \
                 n, u, m, k, M, G, T, P, E (powers of 1000) or an exponent such as e3{hint}"
            ))
        }
    }
}

/// The magnitude of `int.frac × suffix` in nano-units, rounded away from zero; `None` when it
/// does not fit in a `u128`.
fn magnitude_nanos(int_digits: &[u8], frac_digits: &[u8], suffix: Suffix) -> Option<u128> {
    let mut digits: Vec<u8> = int_digits
        .iter()
        .chain(frac_digits)
        .map(|d| d.wrapping_sub(b'0'))
        .collect();
    let Some(first) = digits.iter().position(|&d| d != 0) else {
        return Some(0);
    };
    digits.drain(..first);

    let frac_len = i64::try_from(frac_digits.len()).unwrap_or(i64::MAX);
    let mut shift = 9_i64.saturating_sub(frac_len);
    if suffix.binary {
        for _ in 0..suffix.exponent {
            double_decimal(&mut digits);
        }
    } else {
        shift = shift.saturating_add(i64::from(suffix.exponent));
    }

    let mut round_up = false;
    if shift >= 0 {
        let len = i64::try_from(digits.len()).unwrap_or(i64::MAX);
        if len.saturating_add(shift) > MAX_U128_DIGITS as i64 {
            return None;
        }
        digits.extend(std::iter::repeat_n(0, usize::try_from(shift).ok()?));
    } else {
        let drop = usize::try_from(shift.unsigned_abs()).unwrap_or(usize::MAX);
        let keep = digits.len().saturating_sub(drop);
        round_up = digits
            .get(keep..)
            .is_some_and(|d| d.iter().any(|&x| x != 0));
        digits.truncate(keep);
    }
    if digits.len() > MAX_U128_DIGITS {
        return None;
    }
    let value = digits.iter().try_fold(0_u128, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u128::from(d))
    })?;
    value.checked_add(u128::from(round_up))
}

/// Doubles a big-endian vector of decimal digits in place.
fn double_decimal(digits: &mut Vec<u8>) {
    let mut carry = 0;
    for d in digits.iter_mut().rev() {
        let v = *d * 2 + carry;
        *d = v % 10;
        carry = v / 10;
    }
    if carry > 0 {
        digits.insert(0, carry);
    }
}

/// Whether `ParseQuantity` takes its fast path and keeps the input string as the quantity's
/// string form (the "if the number is in canonical form, reuse the string" branch).
fn kept_verbatim(int_digits: &[u8], frac_digits: &[u8], suffix: Suffix) -> bool {
    let trimmed = match int_digits.iter().position(|&d| d != b'0') {
        Some(i) => int_digits.get(i..).unwrap_or_default(),
        None => &[],
    };
    let num: &[u8] = if trimmed.is_empty() { b"0" } else { trimmed };
    let (Ok(num_len), Ok(denom_len)) = (i32::try_from(num.len()), i32::try_from(frac_digits.len()))
    else {
        return false;
    };
    let shifted: Vec<u8> = num.iter().chain(frac_digits).copied().collect();
    if suffix.binary {
        let precision = 14_i32
            .saturating_sub(num_len)
            .saturating_sub(suffix.exponent / 10 * 3);
        if precision < 0 || denom_len != 0 {
            return false;
        }
        let Ok(value) = std::str::from_utf8(num).unwrap_or_default().parse::<i64>() else {
            return false;
        };
        let fits = u32::try_from(suffix.exponent)
            .ok()
            .and_then(|e| 1_i64.checked_shl(e))
            .and_then(|m| value.checked_mul(m))
            .is_some();
        fits && value & 0x07 != 0
    } else {
        let precision = 18_i32.saturating_sub(num_len.saturating_add(denom_len));
        let scale = suffix.exponent.saturating_sub(denom_len);
        precision >= 0
            && scale >= -9
            && scale % 3 == 0
            && !shifted.ends_with(b"000")
            && shifted.first() != Some(&b'0')
    }
}

/// Writes a value in nano-units the way `CanonicalizeBytes` does (see [`Quantity::canonical`]).
fn format_canonical(nano: i128, format: Format) -> String {
    if nano == 0 {
        return "0".to_string();
    }
    let sign = if nano < 0 { "-" } else { "" };
    let magnitude = nano.unsigned_abs();
    let mut format = format;
    if format == Format::BinarySi
        && (magnitude < 1024 * NANO_PER_UNIT || !magnitude.is_multiple_of(NANO_PER_UNIT))
    {
        format = Format::DecimalSi;
    }
    if format == Format::BinarySi {
        const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
        let mut units = magnitude / NANO_PER_UNIT;
        let mut power = 0;
        while power + 1 < SUFFIXES.len() && units >= 1024 && units.is_multiple_of(1024) {
            units /= 1024;
            power += 1;
        }
        let suffix = SUFFIXES.get(power).copied().unwrap_or_default();
        return format!("{sign}{units}{suffix}");
    }

    // magnitude = mantissa × 10^exponent with mantissa not divisible by 10.
    let mut mantissa = magnitude;
    let mut exponent: i32 = -9;
    while mantissa.is_multiple_of(10) {
        mantissa /= 10;
        exponent += 1;
    }
    let mut exp3 = exponent - exponent.rem_euclid(3);
    if format == Format::DecimalSi {
        exp3 = exp3.min(18);
    }
    // amount × 10^(exp3 + 9) == magnitude, so this never overflows.
    let amount = mantissa * 10_u128.pow(exponent.abs_diff(exp3));
    let suffix = match (format, exp3) {
        (Format::DecimalExponent, 0) => String::new(),
        (Format::DecimalExponent, e) => format!("e{e}"),
        (_, -9) => "n".to_string(),
        (_, -6) => "u".to_string(),
        (_, -3) => "m".to_string(),
        (_, 3) => "k".to_string(),
        (_, 6) => "M".to_string(),
        (_, 9) => "G".to_string(),
        (_, 12) => "T".to_string(),
        (_, 15) => "P".to_string(),
        (_, 18) => "E".to_string(),
        _ => String::new(),
    };
    format!("{sign}{amount}{suffix}")
}

/// `value / divisor`, rounded away from zero.
fn div_away_from_zero(value: i128, divisor: i128) -> i128 {
    let quotient = value / divisor;
    match (value % divisor).cmp(&0) {
        Ordering::Greater => quotient + 1,
        Ordering::Less => quotient - 1,
        Ordering::Equal => quotient,
    }
}

// ---------------------------------------------------------------------------------------------
// Cron schedules
// ---------------------------------------------------------------------------------------------

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
pub fn cron_schedule(s: &str) -> Result<(), Invalid> {
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
        return cron_macro(s).map_err(|reason| invalid(&reason));
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
    for (text, field) in fields.iter().zip(CRON_FIELDS.iter()) {
        cron_field(text, field)
            .map_err(|reason| invalid(&format!("{} field: {reason}", field.name)))?;
    }
    Ok(())
}

/// Checks an `@` macro.
fn cron_macro(s: &str) -> Result<(), String> {
    if CRON_MACROS.contains(&s) {
        return Ok(());
    }
    if let Some(duration) = s.strip_prefix("@every ") {
        return go_duration(duration)
            .map_err(|reason| format!("invalid duration {duration:?} after @every: {reason}"));
    }
    let expected = "expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, \
                    @hourly or @every <duration>";
    let trimmed = s.trim();
    if CRON_MACROS.contains(&trimmed) {
        return Err(format!(
            "unexpected whitespace around the macro {trimmed:?}"
        ));
    }
    let lower = s.to_lowercase();
    if CRON_MACROS.contains(&lower.as_str()) {
        return Err(format!("macros are lowercase; did you mean {lower:?}"));
    }
    Err(format!("unknown macro {s:?}; {expected}"))
}

/// Checks a Go `time.ParseDuration` string, such as `1h30m` or `90s`.
fn go_duration(s: &str) -> Result<(), String> {
    const UNITS: [(&str, u128); 8] = [
        ("ns", 1),
        ("us", 1_000),
        ("\u{b5}s", 1_000),
        ("\u{3bc}s", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    let expected = "expected a number and a unit (ns, us, ms, s, m or h), as in 90s or 1h30m";
    let rest = s.strip_prefix(['+', '-']).unwrap_or(s);
    if rest == "0" {
        return Ok(());
    }
    if rest.is_empty() {
        return Err(format!("empty duration; {expected}"));
    }
    let mut rest = rest;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(after) => {
                let len = after.bytes().take_while(u8::is_ascii_digit).count();
                after.split_at(len)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(expected.to_string());
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!("missing unit; {expected}"));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!("unknown unit {unit:?}; {expected}"));
        };
        let too_long = || "duration is too long".to_string();
        let whole = int
            .bytes()
            .try_fold(0_u128, |acc, d| {
                acc.checked_mul(10)?.checked_add(u128::from(d - b'0'))
            })
            .and_then(|v| v.checked_mul(scale))
            .ok_or_else(too_long)?;
        // Fractions only matter for the overflow check; keep 18 digits.
        let frac_digits = frac.get(..frac.len().min(18)).unwrap_or_default();
        let frac_value = frac_digits
            .bytes()
            .fold(0_u128, |acc, d| acc * 10 + u128::from(d - b'0'));
        let frac_nanos =
            frac_value * scale / 10_u128.pow(u32::try_from(frac_digits.len()).unwrap_or(0));
        total = total
            .checked_add(whole)
            .and_then(|t| t.checked_add(frac_nanos))
            .ok_or_else(too_long)?;
        if total > i64::MAX as u128 {
            return Err(too_long());
        }
        rest = after;
    }
    Ok(())
}

/// Checks one field of a 5-field schedule.
fn cron_field(text: &str, field: &CronField) -> Result<(), String> {
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("empty list element in {text:?}"));
        }
        cron_item(item, field)?;
    }
    Ok(())
}

/// Checks one list element: `*`, `?`, `a`, `a-b`, each optionally followed by `/step`.
fn cron_item(item: &str, field: &CronField) -> Result<(), String> {
    let mut parts = item.split('/');
    let range = parts.next().unwrap_or_default();
    let step = parts.next();
    if parts.next().is_some() {
        return Err(format!("too many '/' in {item:?}"));
    }

    if range == "*" || range == "?" {
        if range == "?" && !field.question_mark {
            return Err(
                "'?' is only allowed in the day-of-month and day-of-week fields".to_string(),
            );
        }
    } else {
        let bounds: Vec<&str> = range.split('-').collect();
        match bounds.as_slice() {
            [single] => {
                cron_value(single, item, field)?;
            }
            [low, high] => {
                let low = cron_value(low, item, field)?;
                let high = cron_value(high, item, field)?;
                if low > high {
                    return Err(format!(
                        "range {low}-{high} is backwards; the start must not be after the end"
                    ));
                }
            }
            _ => return Err(format!("too many '-' in {item:?}")),
        }
    }

    if let Some(step) = step {
        if step.is_empty() {
            return Err(format!("missing step after '/' in {item:?}"));
        }
        if !step.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("step {step:?} in {item:?} is not a whole number"));
        }
        let all_zero = step.bytes().all(|b| b == b'0');
        if all_zero {
            return Err(format!(
                "step in {item:?} must be a positive number, found 0"
            ));
        }
    }
    Ok(())
}

/// Parses a number or name in a cron field and checks its range.
fn cron_value(text: &str, item: &str, field: &CronField) -> Result<u32, String> {
    if text.is_empty() {
        return Err(format!("missing number in {item:?}"));
    }
    if text == "*" || text == "?" {
        return Err(format!("{text:?} cannot be part of a range in {item:?}"));
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
            _ => Err(format!("{text} is out of range {range}{sunday_hint}")),
        };
    }
    if let Some((names, kind)) = field.names {
        let lower = text.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            return Ok(field
                .min
                .saturating_add(u32::try_from(i).unwrap_or(u32::MAX)));
        }
        return Err(format!("{text:?} is not a number or {kind}"));
    }
    Err(format!("{text:?} is not a number"))
}

// ---------------------------------------------------------------------------------------------
// Kubernetes names, labels and keys
// ---------------------------------------------------------------------------------------------

/// Why `label` is not a lowercase RFC 1123 label (ignoring length), if it is not one.
fn rfc1123_label_problem(label: &str) -> Option<String> {
    if label.is_empty() {
        return Some("must not be empty".to_string());
    }
    if let Some(c) = label.chars().find(char::is_ascii_uppercase) {
        return Some(format!(
            "must be lowercase (found {c:?}); only lowercase letters, digits and '-' are allowed"
        ));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!(
            "contains invalid character {c:?}; only lowercase letters, digits and '-' are allowed"
        ));
    }
    if label.starts_with('-') {
        return Some("must start with a lowercase letter or digit".to_string());
    }
    if label.ends_with('-') {
        return Some("must end with a lowercase letter or digit".to_string());
    }
    None
}

/// RFC 1123 DNS label as Kubernetes validates names of Namespaces, Services, etc: lowercase
/// alnum and '-', start and end alnum, max 63.
pub fn dns1123_label(s: &str) -> Result<(), Invalid> {
    let invalid = |reason: String| Invalid(format!("invalid name {s:?}: {reason}"));
    if s.len() > 63 {
        return Err(invalid(format!(
            "must be at most 63 characters (found {})",
            s.len()
        )));
    }
    if s.contains('.') {
        return Err(invalid(
            "must not contain '.'; only lowercase letters, digits and '-' are allowed".to_string(),
        ));
    }
    match rfc1123_label_problem(s) {
        Some(problem) => Err(invalid(problem)),
        None => Ok(()),
    }
}

/// Why `s` is not a lowercase RFC 1123 subdomain, if it is not one.
fn rfc1123_subdomain_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("must not be empty".to_string());
    }
    if s.len() > 253 {
        return Some(format!(
            "must be at most 253 characters (found {})",
            s.len()
        ));
    }
    if s.starts_with('.') {
        return Some("must not start with '.'".to_string());
    }
    if s.ends_with('.') {
        return Some("must not end with '.'".to_string());
    }
    if s.contains("..") {
        return Some("must not contain consecutive dots".to_string());
    }
    let several = s.contains('.');
    s.split('.').find_map(|label| {
        rfc1123_label_problem(label).map(|problem| {
            if several {
                format!("part {label:?} {problem}")
            } else {
                problem
            }
        })
    })
}

/// RFC 1123 subdomain (names of most objects: ConfigMap, Secret, Deployment...): labels joined
/// with '.', each lowercase alnum/'-' starting and ending alnum, max 253 total.
pub fn dns1123_subdomain(s: &str) -> Result<(), Invalid> {
    match rfc1123_subdomain_problem(s) {
        Some(problem) => Err(Invalid(format!("invalid name {s:?}: {problem}"))),
        None => Ok(()),
    }
}

/// Why `s` is not a label value / qualified-name part (ignoring emptiness), if it is not one.
fn qualified_part_problem(s: &str) -> Option<String> {
    if s.len() > 63 {
        return Some(format!("must be at most 63 characters (found {})", s.len()));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Some(format!(
            "contains invalid character {c:?}; only letters, digits, '-', '_' and '.' are allowed"
        ));
    }
    if s.starts_with(['-', '_', '.']) {
        return Some("must start with a letter or digit".to_string());
    }
    if s.ends_with(['-', '_', '.']) {
        return Some("must end with a letter or digit".to_string());
    }
    None
}

/// Kubernetes label value: empty, or at most 63 characters of `[-_.A-Za-z0-9]` starting and
/// ending with a letter or digit.
pub fn label_value(s: &str) -> Result<(), Invalid> {
    match qualified_part_problem(s) {
        Some(problem) => Err(Invalid(format!("invalid label value {s:?}: {problem}"))),
        None => Ok(()),
    }
}

/// Kubernetes label (or annotation) key: an optional DNS-subdomain prefix and '/', then a name
/// of at most 63 characters of `[-_.A-Za-z0-9]` starting and ending with a letter or digit.
pub fn label_key(s: &str) -> Result<(), Invalid> {
    let invalid = |reason: String| Invalid(format!("invalid label key {s:?}: {reason}"));
    let (prefix, name) = match s.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, s),
    };
    if name.contains('/') {
        return Err(invalid(
            "must contain at most one '/', as in example.com/name".to_string(),
        ));
    }
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Err(invalid("prefix before '/' must not be empty".to_string()));
        }
        if let Some(problem) = rfc1123_subdomain_problem(prefix) {
            return Err(invalid(format!("prefix {prefix:?} {problem}")));
        }
    }
    if name.is_empty() {
        return Err(invalid(if prefix.is_some() {
            "name after '/' must not be empty".to_string()
        } else {
            "must not be empty".to_string()
        }));
    }
    match qualified_part_problem(name) {
        Some(problem) if prefix.is_some() => Err(invalid(format!("name {name:?} {problem}"))),
        Some(problem) => Err(invalid(problem)),
        None => Ok(()),
    }
}

/// Why a path-like key is `.`, `..` or starts with `..`, if it does.
fn dot_problem(s: &str) -> Option<String> {
    match s {
        "." => Some("must not be '.'".to_string()),
        ".." => Some("must not be '..'".to_string()),
        _ if s.starts_with("..") => Some("must not start with '..'".to_string()),
        _ => None,
    }
}

/// Environment variable name as Kubernetes validates it (`IsEnvVarName`):
/// `[-._a-zA-Z][-._a-zA-Z0-9]*`, and not `.`, `..` or starting with `..`.
pub fn env_var_name(s: &str) -> Result<(), Invalid> {
    let invalid =
        |reason: String| Invalid(format!("invalid environment variable name {s:?}: {reason}"));
    if s.is_empty() {
        return Err(invalid("must not be empty".to_string()));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(invalid(format!(
            "contains invalid character {c:?}; only letters, digits, '_', '-' and '.' are allowed"
        )));
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(invalid("must not start with a digit".to_string()));
    }
    match dot_problem(s) {
        Some(problem) => Err(invalid(problem)),
        None => Ok(()),
    }
}

/// ConfigMap / Secret data key (`IsConfigMapKey`): `[-._a-zA-Z0-9]+`, at most 253 characters,
/// and not `.`, `..` or starting with `..`.
pub fn config_key(s: &str) -> Result<(), Invalid> {
    let invalid = |reason: String| Invalid(format!("invalid data key {s:?}: {reason}"));
    if s.is_empty() {
        return Err(invalid("must not be empty".to_string()));
    }
    if s.len() > 253 {
        return Err(invalid(format!(
            "must be at most 253 characters (found {})",
            s.len()
        )));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(invalid(format!(
            "contains invalid character {c:?}; only letters, digits, '-', '_' and '.' are allowed"
        )));
    }
    match dot_problem(s) {
        Some(problem) => Err(invalid(problem)),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// DNS records
// ---------------------------------------------------------------------------------------------

/// A public DNS name for records and certificates, absolute (`example.com.`) or relative
/// (`www`): labels of 1-63 letters, digits and hyphens, not starting or ending with a hyphen,
/// at most 253 characters without the trailing dot; case is not significant.
///
/// With `allow_wildcard`, the first label may be exactly `*` (`*.example.com`). With
/// `allow_underscore`, a label may start with one underscore (`_acme-challenge`, `_dmarc`,
/// `_sip._tcp`).
pub fn dns_name(s: &str, allow_wildcard: bool, allow_underscore: bool) -> Result<(), Invalid> {
    let invalid = |reason: String| Invalid(format!("invalid DNS name {s:?}: {reason}"));
    if s.is_empty() {
        return Err(invalid("must not be empty".to_string()));
    }
    let body = s.strip_suffix('.').unwrap_or(s);
    if body.is_empty() {
        return Err(invalid("must contain at least one label".to_string()));
    }
    if body.len() > 253 {
        return Err(invalid(format!(
            "must be at most 253 characters (found {})",
            body.len()
        )));
    }
    for (i, label) in body.split('.').enumerate() {
        if label.is_empty() {
            return Err(invalid(if i == 0 {
                "must not start with '.'".to_string()
            } else {
                "must not contain empty labels (consecutive dots)".to_string()
            }));
        }
        if label.contains('*') {
            if !allow_wildcard {
                return Err(invalid("wildcards ('*') are not allowed here".to_string()));
            }
            if label != "*" || i != 0 {
                return Err(invalid(
                    "'*' is only allowed as the whole first label, as in *.example.com".to_string(),
                ));
            }
            continue;
        }
        if label.len() > 63 {
            return Err(invalid(format!(
                "label {label:?} is longer than 63 characters (found {})",
                label.len()
            )));
        }
        let rest = match label.strip_prefix('_') {
            Some(rest) if allow_underscore => rest,
            Some(_) => {
                return Err(invalid(format!(
                    "label {label:?} contains '_'; underscores are not allowed here"
                )));
            }
            None => label,
        };
        if rest.is_empty() {
            return Err(invalid(format!(
                "label {label:?} must have letters or digits after '_'"
            )));
        }
        if let Some(c) = rest
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(invalid(if c == '_' && allow_underscore {
                format!(
                    "label {label:?} contains '_'; an underscore is only allowed as the first \
                     character of a label, as in _acme-challenge"
                )
            } else if c == '_' {
                format!("label {label:?} contains '_'; underscores are not allowed here")
            } else {
                format!(
                    "label {label:?} contains invalid character {c:?}; only letters, digits and \
                     '-' are allowed"
                )
            }));
        }
        if rest.starts_with('-') {
            return Err(invalid(format!("label {label:?} must not start with '-'")));
        }
        if rest.ends_with('-') {
            return Err(invalid(format!("label {label:?} must not end with '-'")));
        }
    }
    Ok(())
}

/// An IPv4 address literal for A records, in dotted-decimal form without leading zeros
/// (`192.0.2.1`).
pub fn ipv4(s: &str) -> Result<Ipv4Addr, Invalid> {
    if let Ok(addr) = s.parse::<Ipv4Addr>() {
        return Ok(addr);
    }
    let invalid = |reason: String| Invalid(format!("invalid IPv4 address {s:?}: {reason}"));
    let expected = "expected four numbers 0-255 separated by dots, as in 192.0.2.1";
    if s.is_empty() {
        return Err(invalid(format!("empty value; {expected}")));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(invalid("must not contain whitespace".to_string()));
    }
    if s.contains('/') {
        return Err(invalid(
            "must be a single address, not a CIDR range".to_string(),
        ));
    }
    if s.parse::<Ipv6Addr>().is_ok() {
        return Err(invalid(
            "this is an IPv6 address; use an AAAA record for it".to_string(),
        ));
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return Err(invalid(format!(
            "{expected}; found {} part{}",
            parts.len(),
            if parts.len() == 1 { "" } else { "s" }
        )));
    }
    for part in parts {
        if part.is_empty() {
            return Err(invalid(format!("empty number; {expected}")));
        }
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(format!(
                "{part:?} is not a decimal number; {expected}"
            )));
        }
        if part.len() > 1 && part.starts_with('0') {
            return Err(invalid(format!(
                "{part:?} has a leading zero, which is ambiguous (octal); write it without"
            )));
        }
        if part.parse::<u8>().is_err() {
            return Err(invalid(format!("{part} is out of range 0-255")));
        }
    }
    Err(invalid(expected.to_string()))
}

/// An IPv6 address literal for AAAA records (`2001:db8::1`, `::ffff:192.0.2.1`), without
/// brackets, zone index or prefix length.
pub fn ipv6(s: &str) -> Result<Ipv6Addr, Invalid> {
    if let Ok(addr) = s.parse::<Ipv6Addr>() {
        return Ok(addr);
    }
    let invalid = |reason: &str| Invalid(format!("invalid IPv6 address {s:?}: {reason}"));
    if s.is_empty() {
        return Err(invalid(
            "empty value; expected an address such as 2001:db8::1",
        ));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(invalid("must not contain whitespace"));
    }
    if s.starts_with('[') || s.ends_with(']') {
        return Err(invalid("must be written without brackets"));
    }
    if s.contains('/') {
        return Err(invalid("must be a single address, not a CIDR range"));
    }
    if s.contains('%') {
        return Err(invalid("must not have a zone index ('%...')"));
    }
    if s.parse::<Ipv4Addr>().is_ok() {
        return Err(invalid("this is an IPv4 address; use an A record for it"));
    }
    if s.matches("::").count() > 1 {
        return Err(invalid("'::' may appear only once"));
    }
    Err(invalid(
        "expected up to eight groups of 1-4 hex digits separated by ':', with '::' standing \
         for a run of zero groups, as in 2001:db8::1",
    ))
}

// ---------------------------------------------------------------------------------------------
// Container images
// ---------------------------------------------------------------------------------------------

/// A parsed container image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The repository name, with its registry host if one was given (`ghcr.io/org/app`,
    /// `nginx`).
    pub name: String,
    /// The tag after `:`, if any (`1.27`).
    pub tag: Option<String>,
    /// The digest after `@`, if any (`sha256:...`).
    pub digest: Option<String>,
}

/// Container image reference: `[registry[:port]/]path[:tag][@algorithm:hex]`, following the
/// distribution/reference grammar: lowercase path components of letters and digits joined by
/// `.`, `_`, `__` or runs of `-`; tags of up to 128 `[A-Za-z0-9_.-]` not starting with `.` or
/// `-`; names of at most 255 characters; digests `sha256:` + 64, `sha384:` + 96 or `sha512:`
/// + 128 lowercase hex digits.
pub fn image_ref(s: &str) -> Result<ImageRef, Invalid> {
    let invalid = |reason: String| Invalid(format!("invalid image reference {s:?}: {reason}"));
    if s.is_empty() {
        return Err(invalid("must not be empty".to_string()));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(invalid("must not contain whitespace".to_string()));
    }
    let (name_tag, digest) = match s.split_once('@') {
        Some((name_tag, digest)) => (name_tag, Some(digest)),
        None => (s, None),
    };
    if let Some(digest) = digest {
        image_digest(digest).map_err(invalid)?;
    }
    let last_slash = name_tag.rfind('/');
    let (name, tag) = match name_tag.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => (
            name_tag.get(..colon).unwrap_or_default(),
            Some(name_tag.get(colon + 1..).unwrap_or_default()),
        ),
        _ => (name_tag, None),
    };
    if let Some(tag) = tag {
        image_tag(tag).map_err(invalid)?;
    }
    image_name(name).map_err(invalid)?;
    Ok(ImageRef {
        name: name.to_string(),
        tag: tag.map(str::to_string),
        digest: digest.map(str::to_string),
    })
}

/// Checks an image tag.
fn image_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("tag after ':' must not be empty".to_string());
    }
    if tag.len() > 128 {
        return Err(format!(
            "tag must be at most 128 characters (found {})",
            tag.len()
        ));
    }
    if let Some(c) = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "tag {tag:?} contains invalid character {c:?}; only letters, digits, '_', '.' and \
             '-' are allowed"
        ));
    }
    if tag.starts_with(['.', '-']) {
        return Err(format!(
            "tag {tag:?} must start with a letter, digit or '_'"
        ));
    }
    Ok(())
}

/// Checks an image digest (`sha256:<64 hex digits>`).
fn image_digest(digest: &str) -> Result<(), String> {
    if digest.contains('@') {
        return Err("must contain at most one '@'".to_string());
    }
    let expected = "expected a digest such as sha256:<64 hex digits> after '@'";
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!("digest {digest:?} has no ':'; {expected}"));
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "unsupported digest algorithm {algorithm:?}; expected sha256, sha384 or sha512"
            ));
        }
    };
    if let Some(c) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("digest contains {c:?}, which is not a hex digit"));
    }
    if hex.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("digest must use lowercase hex digits".to_string());
    }
    if hex.len() != len {
        return Err(format!(
            "{algorithm} digest must have {len} hex digits (found {})",
            hex.len()
        ));
    }
    Ok(())
}

/// Checks an image name: `[registry[:port]/]path`.
fn image_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("repository name must not be empty".to_string());
    }
    if name.len() > 255 {
        return Err(format!(
            "repository name must be at most 255 characters (found {})",
            name.len()
        ));
    }
    if let Some((first, path)) = name.split_once('/') {
        let looks_like_registry = first.contains(['.', ':'])
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase());
        if looks_like_registry {
            let domain_result = image_domain(first).and_then(|()| image_path(path));
            // The grammar also accepts the whole name as a path (`a_b.c/d`).
            return match domain_result {
                Ok(()) => Ok(()),
                Err(problem) => image_path(name).map_err(|_| problem),
            };
        }
    }
    image_path(name)
}

/// Checks a registry host with an optional port.
fn image_domain(domain: &str) -> Result<(), String> {
    let (host, port) = if let Some(inner) = domain.strip_prefix('[') {
        let Some((address, after)) = inner.split_once(']') else {
            return Err(format!("registry {domain:?} has an unclosed '['"));
        };
        if address.is_empty() || !address.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(format!(
                "registry {domain:?} has an invalid IPv6 address between brackets"
            ));
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return Err(format!("registry {domain:?} has junk after ']'")),
            },
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        for component in host.split('.') {
            let ok = !component.is_empty()
                && component
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !component.starts_with('-')
                && !component.ends_with('-');
            if !ok {
                return Err(format!(
                    "registry host {host:?} is not a valid host name; expected letters, digits \
                     and '-' in dot-separated parts"
                ));
            }
        }
    }
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("registry port {port:?} must be a number"));
    }
    Ok(())
}

/// Checks a repository path: `component(/component)*`.
fn image_path(path: &str) -> Result<(), String> {
    for component in path.split('/') {
        image_path_component(component)?;
    }
    Ok(())
}

/// Checks one path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn image_path_component(component: &str) -> Result<(), String> {
    if component.is_empty() {
        return Err(
            "repository path must not contain empty components ('//' or a leading or \
                    trailing '/')"
                .to_string(),
        );
    }
    if let Some(c) = component.chars().find(char::is_ascii_uppercase) {
        return Err(format!(
            "repository path must be lowercase (found {c:?} in {component:?})"
        ));
    }
    let bad_separator = || {
        format!(
            "path component {component:?} must be lowercase letters and digits joined by '.', \
             '_', '__' or '-', starting and ending with a letter or digit"
        )
    };
    let bytes = component.as_bytes();
    let alnum = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let mut i = 0;
    loop {
        if !alnum(bytes.get(i)) {
            let found = component.get(i..).and_then(|rest| rest.chars().next());
            return Err(match found {
                Some(c) if !matches!(c, '.' | '_' | '-') => format!(
                    "repository path contains invalid character {c:?}; only lowercase letters, \
                     digits, '.', '_' and '-' are allowed"
                ),
                _ => bad_separator(),
            });
        }
        while alnum(bytes.get(i)) {
            i += 1;
        }
        match bytes.get(i) {
            None => return Ok(()),
            Some(b'.') => i += 1,
            Some(b'_') => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            Some(b'-') => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            Some(_) => {
                let c = component
                    .get(i..)
                    .and_then(|rest| rest.chars().next())
                    .unwrap_or('?');
                return Err(format!(
                    "repository path contains invalid character {c:?}; only lowercase letters, \
                     digits, '.', '_' and '-' are allowed"
                ));
            }
        }
    }
}

/// Whether certificate name `pattern` (possibly a wildcard `*.base`, which covers exactly one
/// label under `base`) covers `host`. Case-insensitive.
pub fn name_covers(pattern: &str, host: &str) -> bool {
    let (pattern, host) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    match pattern.strip_prefix("*.") {
        Some(base) => host
            .strip_suffix(base)
            .and_then(|rest| rest.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        None => pattern == host,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    fn canon(s: &str) -> String {
        q(s).canonical()
    }

    fn err<T: fmt::Debug>(r: Result<T, Invalid>) -> String {
        r.unwrap_err().0
    }

    // ----- quantities -----

    #[test]
    fn canonical_matches_recorded_api_server_output() {
        assert_eq!(canon("0.5"), "500m");
        assert_eq!(canon("1024Mi"), "1Gi");
        assert_eq!(canon("1000m"), "1");
        assert_eq!(canon("512Mi"), "512Mi");
        assert_eq!(canon("2"), "2");
        assert_eq!(canon("100m"), "100m");
    }

    #[test]
    fn canonical_decimal_and_binary_rules() {
        assert_eq!(canon("0"), "0");
        assert_eq!(canon("0Gi"), "0");
        assert_eq!(canon("0.0"), "0");
        assert_eq!(canon("-0"), "0");
        assert_eq!(canon("1.5Gi"), "1536Mi");
        assert_eq!(canon("2000Mi"), "2000Mi");
        assert_eq!(canon("2048Mi"), "2Gi");
        assert_eq!(canon("1Ki"), "1Ki");
        assert_eq!(canon("1.5Ki"), "1536");
        assert_eq!(canon("0.5Ki"), "512");
        assert_eq!(canon("1024Ki"), "1Mi");
        assert_eq!(canon("1.0001Ki"), "1024102400u");
        assert_eq!(canon("100k"), "100k");
        assert_eq!(canon("1000"), "1k");
        assert_eq!(canon("1500"), "1500");
        assert_eq!(canon("1500k"), "1500k");
        assert_eq!(canon("10G"), "10G");
        assert_eq!(canon("2Ti"), "2Ti");
        assert_eq!(canon("1.5"), "1500m");
        assert_eq!(canon("0.1"), "100m");
        assert_eq!(canon("0.001"), "1m");
        assert_eq!(canon("0.0001"), "100u");
        assert_eq!(canon("1n"), "1n");
        assert_eq!(canon("0.1n"), "1n");
        assert_eq!(canon("1000n"), "1u");
        assert_eq!(canon("1e3"), "1e3");
        assert_eq!(canon("1000e0"), "1e3");
        assert_eq!(canon("15e2"), "1500");
        assert_eq!(canon("1500e0"), "1500e0"); // kept verbatim by the API server
        assert_eq!(canon("0.5e0"), "500e-3");
        assert_eq!(canon("1E"), "1E");
        assert_eq!(canon("-1.5"), "-1500m");
        assert_eq!(canon("-2048Ki"), "-2Mi");
        assert_eq!(canon("1024"), "1024");
    }

    #[test]
    fn canonical_keeps_spellings_the_api_server_keeps() {
        // ParseQuantity's fast path stores these strings as given.
        assert_eq!(canon("1.125"), "1.125");
        assert_eq!(canon("+1k"), "+1k");
        assert_eq!(canon("01k"), "01k");
        assert_eq!(canon("10e3"), "10e3");
        assert_eq!(canon("3Ki"), "3Ki");
        assert_eq!(canon("+5Ki"), "+5Ki");
        // ...but not these.
        assert_eq!(canon("+1000"), "1k");
        assert_eq!(canon("08Ki"), "8Ki");
        assert_eq!(canon("+1.5"), "1500m");
        // Arithmetic always canonicalizes.
        assert_eq!((q("1.125") + q("0")).canonical(), "1125m");
        assert_eq!(q("+1k").scale(1).canonical(), "1k");
    }

    #[test]
    fn millis_and_units() {
        assert_eq!(q("500m").millis(), 500);
        assert_eq!(q("2").millis(), 2000);
        assert_eq!(q("0.5").millis(), 500);
        assert_eq!(q("0.1m").millis(), 1);
        assert_eq!(q("1u").millis(), 1);
        assert_eq!(q("-0.1m").millis(), -1);
        assert_eq!(q("1Gi").units(), 1_073_741_824);
        assert_eq!(q("8Gi").units(), 8_589_934_592);
        assert_eq!(q("512Mi").units(), 536_870_912);
        assert_eq!(q("10G").units(), 10_000_000_000);
        assert_eq!(q("1.5").units(), 2);
        assert_eq!(q("100m").units(), 1);
        assert_eq!(q("1e3").units(), 1000);
        assert_eq!(q("1E").units(), 1_000_000_000_000_000_000);
        assert_eq!(q("1Ei").units(), 1 << 60);
        assert_eq!(q("2Pi").units(), 2 << 50);
        assert_eq!(q("1e-3").millis(), 1);
        assert_eq!(q(".5").millis(), 500);
        assert_eq!(q("9223372036854775807").units(), i128::from(i64::MAX));
    }

    #[test]
    fn addition_and_scale() {
        let sum = q("500m") + q("1.5");
        assert_eq!(sum.millis(), 2000);
        assert_eq!(sum.canonical(), "2");
        let mem = q("512Mi") + q("512Mi");
        assert_eq!(mem.canonical(), "1Gi");
        assert_eq!(mem, q("1Gi"));
        // The left operand's format wins, unless it is zero.
        assert_eq!((q("1k") + q("24")).canonical(), "1024");
        assert_eq!((q("1Ki") + q("1000")).canonical(), "2024");
        assert_eq!((q("1Ki") + q("1Ki")).canonical(), "2Ki");
        assert_eq!((q("0") + q("1Ki")).canonical(), "1Ki");
        assert_eq!(q("250m").scale(3).canonical(), "750m");
        assert_eq!(q("250m").scale(4).canonical(), "1");
        assert_eq!(q("256Mi").scale(4).canonical(), "1Gi");
        assert_eq!(q("256Mi").scale(4).units(), 1 << 30);
        assert_eq!(q("1").scale(0).canonical(), "0");
        assert_eq!(q("1").scale(-2).canonical(), "-2");
        let huge = q("9223372036854775807").scale(i64::MAX).scale(i64::MAX);
        assert!(huge > q("1"));
    }

    #[test]
    fn ordering_and_equality_by_value() {
        assert!(q("500m") < q("1"));
        assert!(q("1Gi") > q("1G"));
        assert_eq!(q("1Gi"), q("1073741824"));
        assert_eq!(q("1k"), q("1e3"));
        assert_eq!(q("0.5"), q("500m"));
        assert_eq!(q("1.125").partial_cmp(&q("1125m")), Some(Ordering::Equal));
        assert!(q("-1") < q("0"));
        assert_eq!(q("2").max(q("1500m")), q("2"));
    }

    #[test]
    fn display_is_canonical() {
        assert_eq!(q("1024Mi").to_string(), "1Gi");
        assert_eq!(format!("{}", q("0.25")), "250m");
    }

    #[test]
    fn accepts_kubernetes_syntax() {
        for s in [
            "500m",
            "1",
            "0.5",
            "1.5Gi",
            "512Mi",
            "1e3",
            "100k",
            "2Ti",
            "10G",
            "-1",
            "+1",
            ".5",
            "1E",
            "1e-3",
            "1E+3",
            "1e+3",
            "1e03",
            "5Pi",
            "5Ei",
            "1n",
            "1u",
            "00.5",
            "-.5",
            "0.000000000001",
        ] {
            assert!(Quantity::parse(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn parse_errors_are_precise() {
        assert_eq!(
            err(Quantity::parse("1.5.5Gi")),
            r#"invalid quantity "1.5.5Gi": more than one decimal point"#
        );
        assert_eq!(
            err(Quantity::parse("")),
            r#"invalid quantity "": empty value; expected a number such as 500m, 1.5 or 2Gi"#
        );
        assert_eq!(
            err(Quantity::parse("1 Gi")),
            r#"invalid quantity "1 Gi": must not contain whitespace"#
        );
        assert_eq!(
            err(Quantity::parse("abc")),
            r#"invalid quantity "abc": expected a number at the start, such as 500m, 1.5 or 2Gi"#
        );
        assert!(
            err(Quantity::parse("1Gb")).starts_with(
                r#"invalid quantity "1Gb": unknown suffix "Gb"; expected one of Ki, Mi"#
            )
        );
        assert!(err(Quantity::parse("1Gb")).ends_with("as in 512Mi or 1G"));
        assert_eq!(
            err(Quantity::parse("1K")),
            r#"invalid quantity "1K": unknown suffix "K"; use "k" for 1000 or "Ki" for 1024"#
        );
        assert_eq!(
            err(Quantity::parse(".")),
            r#"invalid quantity ".": expected digits before or after the decimal point"#
        );
        assert_eq!(
            err(Quantity::parse("1.")),
            r#"invalid quantity "1.": expected digits after the decimal point"#
        );
        assert!(err(Quantity::parse("1e")).contains("unknown suffix \"e\""));
        assert!(err(Quantity::parse("1e3.5")).contains("invalid exponent \"e3.5\""));
        assert!(err(Quantity::parse("1E+")).contains("invalid exponent"));
        assert!(err(Quantity::parse("1e99999999999")).contains("out of range"));
        assert!(err(Quantity::parse("1e30")).contains("value is too large"));
        assert!(err(Quantity::parse("9223372036854775808")).contains("too large"));
        assert!(err(Quantity::parse("8Ei")).contains("too large"));
        for s in [
            "-", "+", "Gi", "1i", ".5i", "0.1mi", "1kk", "1Mi3", "1 ", " 1", "1\t", "1,5", "1_000",
            "--1", "1..5", "1.5.", "1KiB", "1gi", "1m3", "1.5e-",
        ] {
            assert!(Quantity::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn tiny_values_round_up_to_a_nano_unit() {
        assert_eq!(q("0.0000000001").canonical(), "1n");
        assert_eq!(q("1e-20").canonical(), "1e-9");
        assert_eq!(q("-1e-20").canonical(), "-1e-9");
        assert_eq!(q("1e-2000000000").millis(), 1);
        assert_eq!(q("0e99999").canonical(), "0");
        assert_eq!(q("1.0000000001").canonical(), "1000000001n");
        assert_eq!(
            q("1.000000000000000000000000000000000000000000000000001").canonical(),
            "1000000001n"
        );
        assert_eq!(q("0.0000000001Ki").canonical(), "103n");
    }

    #[test]
    fn non_negative() {
        assert_eq!(
            err(Quantity::parse_non_negative("-1")),
            r#"invalid quantity "-1": must not be negative"#
        );
        assert!(Quantity::parse_non_negative("-0").is_ok());
        assert!(Quantity::parse_non_negative("0").is_ok());
        assert!(Quantity::parse_non_negative("+1").is_ok());
        assert!(
            Quantity::parse_non_negative("x")
                .unwrap_err()
                .0
                .contains("expected a number")
        );
    }

    // ----- cron -----

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
        ] {
            assert!(cron_schedule(s).is_ok(), "{s}: {:?}", cron_schedule(s));
        }
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

    // ----- names, labels, keys -----

    #[test]
    fn dns_labels() {
        for s in ["a", "my-app", "123-abc", "a1", &"a".repeat(63)] {
            assert!(dns1123_label(s).is_ok(), "{s}");
        }
        assert_eq!(
            err(dns1123_label("My-App")),
            "invalid name \"My-App\": must be lowercase (found 'M'); only lowercase letters, \
             digits and '-' are allowed"
        );
        assert!(err(dns1123_label("")).contains("must not be empty"));
        assert!(err(dns1123_label("-a")).contains("must start with a lowercase letter or digit"));
        assert!(err(dns1123_label("a-")).contains("must end with a lowercase letter or digit"));
        assert!(err(dns1123_label("a_b")).contains("invalid character '_'"));
        assert!(err(dns1123_label("a.b")).contains("must not contain '.'"));
        assert!(err(dns1123_label(&"a".repeat(64))).contains("at most 63 characters (found 64)"));
    }

    #[test]
    fn dns_subdomains() {
        for s in [
            "a",
            "my-config",
            "a.b.c",
            "example.com",
            "1.2",
            &"a".repeat(100),
        ] {
            assert!(dns1123_subdomain(s).is_ok(), "{s}");
        }
        assert!(err(dns1123_subdomain("")).contains("must not be empty"));
        assert!(err(dns1123_subdomain(".a")).contains("must not start with '.'"));
        assert!(err(dns1123_subdomain("a.")).contains("must not end with '.'"));
        assert!(err(dns1123_subdomain("a..b")).contains("consecutive dots"));
        assert!(err(dns1123_subdomain("a.B")).contains(r#"part "B" must be lowercase"#));
        assert!(err(dns1123_subdomain("a.-b")).contains(r#"part "-b" must start"#));
        assert!(err(dns1123_subdomain(&"a".repeat(254))).contains("at most 253"));
        assert!(err(dns1123_subdomain("my_config")).contains("invalid character '_'"));
    }

    #[test]
    fn label_values_and_keys() {
        for s in ["", "a", "A-b_c.d", "1", &"x".repeat(63)] {
            assert!(label_value(s).is_ok(), "{s}");
        }
        assert!(err(label_value(&"x".repeat(64))).contains("at most 63 characters"));
        assert!(err(label_value("-a")).contains("must start with a letter or digit"));
        assert!(err(label_value("a.")).contains("must end with a letter or digit"));
        assert_eq!(
            err(label_value("a b")),
            "invalid label value \"a b\": contains invalid character ' '; only letters, digits, \
             '-', '_' and '.' are allowed"
        );

        for s in [
            "app",
            "app.kubernetes.io/name",
            "example.com/My_Key.1",
            "a/b",
            "Name",
        ] {
            assert!(label_key(s).is_ok(), "{s}");
        }
        assert!(err(label_key("")).contains("must not be empty"));
        assert!(err(label_key("/a")).contains("prefix before '/' must not be empty"));
        assert!(err(label_key("a/")).contains("name after '/' must not be empty"));
        assert!(err(label_key("a/b/c")).contains("at most one '/'"));
        assert!(
            err(label_key("Example.com/a"))
                .contains(r#"prefix "Example.com" part "Example" must be lowercase"#)
        );
        assert!(err(label_key("example.com/-a")).contains(r#"name "-a" must start"#));
        assert!(err(label_key(&"k".repeat(64))).contains("at most 63"));
    }

    #[test]
    fn env_var_names() {
        for s in [
            "PATH",
            "my.env-name",
            "MY_ENV.NAME",
            "MyEnvName1",
            "_x",
            "-x",
            ".x",
        ] {
            assert!(env_var_name(s).is_ok(), "{s}");
        }
        assert!(err(env_var_name("")).contains("must not be empty"));
        assert!(err(env_var_name("1ABC")).contains("must not start with a digit"));
        assert!(err(env_var_name("A=B")).contains("invalid character '='"));
        assert!(err(env_var_name("A B")).contains("invalid character ' '"));
        assert!(err(env_var_name(".")).contains("must not be '.'"));
        assert!(err(env_var_name("..")).contains("must not be '..'"));
        assert!(err(env_var_name("..a")).contains("must not start with '..'"));
    }

    #[test]
    fn config_keys() {
        for s in ["config.yaml", "a", "A_B-c.1", ".env", "1"] {
            assert!(config_key(s).is_ok(), "{s}");
        }
        assert!(err(config_key("")).contains("must not be empty"));
        assert!(err(config_key(".")).contains("must not be '.'"));
        assert!(err(config_key("..")).contains("must not be '..'"));
        assert!(err(config_key("..data")).contains("must not start with '..'"));
        assert!(err(config_key("a/b")).contains("invalid character '/'"));
        assert!(err(config_key(&"k".repeat(254))).contains("at most 253 characters (found 254)"));
        assert!(config_key(&"k".repeat(253)).is_ok());
    }

    // ----- DNS records -----

    #[test]
    fn dns_names() {
        for s in [
            "example.com",
            "example.com.",
            "www",
            "WWW.Example.COM",
            "a-b.c",
            "1.2.3.4.in-addr.arpa",
            &format!("{}.com", "a".repeat(63)),
        ] {
            assert!(dns_name(s, false, false).is_ok(), "{s}");
        }
        assert!(dns_name("*.example.com", true, false).is_ok());
        assert!(dns_name("*", true, false).is_ok());
        assert!(dns_name("_acme-challenge.example.com", false, true).is_ok());
        assert!(dns_name("_sip._tcp.example.com.", false, true).is_ok());
        assert!(dns_name("*._tcp.example.com", true, true).is_ok());

        assert!(err(dns_name("", true, true)).contains("must not be empty"));
        assert!(err(dns_name(".", true, true)).contains("at least one label"));
        assert!(err(dns_name("..", true, true)).contains("must not start with '.'"));
        assert!(err(dns_name("a..b", true, true)).contains("consecutive dots"));
        assert!(
            err(dns_name("-a.com", true, true)).contains(r#"label "-a" must not start with '-'"#)
        );
        assert!(err(dns_name("a-.com", true, true)).contains("must not end with '-'"));
        assert!(
            err(dns_name("a_b.com", true, true))
                .contains("an underscore is only allowed as the first character of a label")
        );
        assert!(err(dns_name("_dmarc.a.com", true, false)).contains("underscores are not allowed"));
        assert!(err(dns_name("_.a.com", true, true)).contains("after '_'"));
        assert!(err(dns_name("*.*.a.com", true, true)).contains("whole first label"));
        assert!(err(dns_name("a.*.com", true, true)).contains("whole first label"));
        assert!(err(dns_name("*a.com", true, true)).contains("whole first label"));
        assert!(err(dns_name("*.a.com", false, true)).contains("wildcards ('*') are not allowed"));
        assert!(err(dns_name("a b.com", true, true)).contains("invalid character ' '"));
        assert!(
            err(dns_name(&format!("{}.com", "a".repeat(64)), true, true))
                .contains("longer than 63 characters (found 64)")
        );
        let long = vec!["abcdefghi"; 26].join("."); // 259 characters
        assert!(err(dns_name(&long, true, true)).contains("at most 253 characters"));
    }

    #[test]
    fn ip_addresses() {
        assert_eq!(ipv4("192.0.2.1").unwrap(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(ipv4("0.0.0.0").unwrap(), Ipv4Addr::UNSPECIFIED);
        assert!(err(ipv4("")).contains("empty value"));
        assert!(err(ipv4("1.2.3")).contains("found 3 parts"));
        assert!(err(ipv4("1.2.3.256")).contains("256 is out of range 0-255"));
        assert!(err(ipv4("1.2.3.04")).contains("leading zero"));
        assert!(err(ipv4("1.2..4")).contains("empty number"));
        assert!(err(ipv4("1.2.3.x")).contains(r#""x" is not a decimal number"#));
        assert!(err(ipv4("10.0.0.0/8")).contains("not a CIDR range"));
        assert!(err(ipv4("::1")).contains("use an AAAA record"));
        assert!(err(ipv4(" 1.2.3.4")).contains("whitespace"));

        assert_eq!(
            ipv6("2001:db8::1").unwrap(),
            "2001:db8::1".parse::<Ipv6Addr>().unwrap()
        );
        assert!(ipv6("::").is_ok());
        assert!(ipv6("::ffff:192.0.2.1").is_ok());
        assert!(ipv6("2001:DB8:0:0:0:0:0:1").is_ok());
        assert!(err(ipv6("")).contains("empty value"));
        assert!(err(ipv6("[::1]")).contains("without brackets"));
        assert!(err(ipv6("fe80::1%eth0")).contains("zone index"));
        assert!(err(ipv6("2001:db8::/32")).contains("CIDR"));
        assert!(err(ipv6("192.0.2.1")).contains("use an A record"));
        assert!(err(ipv6("1::2::3")).contains("'::' may appear only once"));
        assert!(err(ipv6("12345::")).contains("groups of 1-4 hex digits"));
        assert!(err(ipv6("1:2:3:4:5:6:7:8:9")).contains("groups of 1-4 hex digits"));
    }

    // ----- images -----

    #[test]
    fn image_refs() {
        let sha = "a".repeat(64);
        let r = image_ref("nginx").unwrap();
        assert_eq!(
            r,
            ImageRef {
                name: "nginx".into(),
                tag: None,
                digest: None
            }
        );
        let r = image_ref("nginx:1.27-alpine").unwrap();
        assert_eq!(r.name, "nginx");
        assert_eq!(r.tag.as_deref(), Some("1.27-alpine"));
        let r = image_ref("localhost:5000/team/app:v1.2.3").unwrap();
        assert_eq!(r.name, "localhost:5000/team/app");
        assert_eq!(r.tag.as_deref(), Some("v1.2.3"));
        let r = image_ref(&format!("ghcr.io/org/app:1.0@sha256:{sha}")).unwrap();
        assert_eq!(r.name, "ghcr.io/org/app");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.digest, Some(format!("sha256:{sha}")));
        let r = image_ref(&format!("busybox@sha256:{sha}")).unwrap();
        assert_eq!((r.tag, r.name.as_str()), (None, "busybox"));
        for s in [
            "library/ubuntu:22.04",
            "registry.example.com:443/a/b/c",
            "my_org/my__app",
            "a.b-c---d/e",
            "a_b.c/d",
            "[::1]:5000/app",
            "Registry.Example.com/app",
            "app:_latest",
            "app:V1",
        ] {
            assert!(image_ref(s).is_ok(), "{s}: {:?}", image_ref(s));
        }

        assert!(err(image_ref("")).contains("must not be empty"));
        assert!(err(image_ref("nginx :1")).contains("whitespace"));
        assert_eq!(
            err(image_ref("myorg/myApp:1")),
            "invalid image reference \"myorg/myApp:1\": repository path must be lowercase \
             (found 'A' in \"myApp\")"
        );
        assert!(err(image_ref("nginx:")).contains("tag after ':' must not be empty"));
        assert!(err(image_ref("nginx:a+b")).contains("invalid character '+'"));
        assert!(err(image_ref("nginx:-a")).contains("must start with a letter, digit or '_'"));
        assert!(err(image_ref(&format!("nginx:{}", "a".repeat(129)))).contains("at most 128"));
        assert!(err(image_ref("nginx@sha256:abc")).contains("must have 64 hex digits (found 3)"));
        assert!(err(image_ref("nginx@md5:abc")).contains("unsupported digest algorithm"));
        assert!(err(image_ref("nginx@sha256")).contains("has no ':'"));
        assert!(err(image_ref(&format!("nginx@sha256:{}", "A".repeat(64)))).contains("lowercase"));
        assert!(err(image_ref(&format!("nginx@sha256:{}", "g".repeat(64)))).contains("not a hex"));
        assert!(err(image_ref("a@b@c")).contains("at most one '@'"));
        assert!(err(image_ref("a//b")).contains("empty components"));
        assert!(err(image_ref("/a")).contains("empty components"));
        assert!(err(image_ref("a..b")).contains("joined by"));
        assert!(err(image_ref("a___b")).contains("joined by"));
        assert!(err(image_ref("-a")).contains("joined by"));
        assert!(err(image_ref("a-")).contains("joined by"));
        assert!(err(image_ref("a$b")).contains("invalid character '$'"));
        assert!(
            err(image_ref("host:port/app")).contains("registry port \"port\" must be a number")
        );
        assert!(err(image_ref("bad_host.com:5000/app")).contains("registry host"));
        assert!(err(image_ref(&"a".repeat(256))).contains("at most 255"));
    }
}
