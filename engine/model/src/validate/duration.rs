//! Go `time.ParseDuration` strings (`1h30m`, `90s`), as in `@every` cron schedules.

/// What a Go duration's problems are phrased against.
const EXPECTED: &str = "expected a number and a unit (ns, us, ms, s, m or h), as in 90s or 1h30m";

/// Why a string is not a Go duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum DurationError {
    /// Nothing after the sign.
    #[error("empty duration; {EXPECTED}")]
    Empty,
    /// A part with neither integer nor fraction digits.
    #[error("{EXPECTED}")]
    NoNumber,
    /// A number without a unit.
    #[error("missing unit; {EXPECTED}")]
    MissingUnit,
    /// A unit that is not one of `ns us µs μs ms s m h`.
    #[error("unknown unit {0:?}; {EXPECTED}")]
    UnknownUnit(String),
    /// More than `i64::MAX` nanoseconds.
    #[error("duration is too long")]
    TooLong,
}

/// Checks a Go `time.ParseDuration` string, such as `1h30m` or `90s`.
pub(super) fn go_duration(s: &str) -> Result<(), DurationError> {
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
    let rest = s.strip_prefix(['+', '-']).unwrap_or(s);
    if rest == "0" {
        return Ok(());
    }
    if rest.is_empty() {
        return Err(DurationError::Empty);
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
            return Err(DurationError::NoNumber);
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::MissingUnit);
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(DurationError::UnknownUnit(unit.to_owned()));
        };
        let too_long = || DurationError::TooLong;
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
