//! Lifetimes of environments (`expires: "7d"`): whole numbers of minutes, hours, days or weeks,
//! one or more (`1w2d`, `36h`, `90m`).

use super::Invalid;

/// The seconds of a lifetime such as `7d`, `36h`, `1w2d` or `90m`; at least a minute, at most
/// a year.
pub fn ttl_seconds(s: &str) -> Result<u64, Invalid> {
    let bad = |why: &str| Invalid(format!("invalid lifetime \"{s}\": {why}"));
    let mut total: u64 = 0;
    let mut number = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            number.push(ch);
            continue;
        }
        let unit = match ch {
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => {
                return Err(bad(
                    "expected a number and a unit (m, h, d or w), as in 7d or 36h",
                ));
            }
        };
        let n: u64 = number
            .parse()
            .map_err(|_| bad("expected a number before each unit, as in 7d or 1w2d"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| bad("too long"))?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(bad("missing unit (m, h, d or w), as in 7d"));
    }
    match total {
        0 if s.is_empty() => Err(bad("empty; expected a number and a unit, as in 7d")),
        0..60 => Err(bad("shorter than a minute")),
        t if t > 366 * 86_400 => Err(bad("longer than a year")),
        t => Ok(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_read_in_minutes_hours_days_and_weeks() {
        assert_eq!(ttl_seconds("7d"), Ok(7 * 86_400));
        assert_eq!(ttl_seconds("1w2d"), Ok(9 * 86_400));
        assert_eq!(ttl_seconds("90m"), Ok(5_400));
        for bad in ["", "7", "d", "7s", "0m", "400d", "7 d", "-1d"] {
            assert!(ttl_seconds(bad).is_err(), "{bad}");
        }
    }
}
