//! Kubernetes resource quantities (k8s.io/apimachinery `resource.Quantity`): parsing, canonical
//! form, arithmetic.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Add;

use super::Invalid;

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
        let suffix = parse_suffix(rest).map_err(|reason| invalid(&reason.to_string()))?;

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

/// Why the text after a quantity's number is not a suffix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum SuffixError {
    /// `K`, which is neither `k` nor `Ki`.
    #[error("unknown suffix \"K\"; use \"k\" for 1000 or \"Ki\" for 1024")]
    UppercaseKilo,
    /// `e` or `E` not followed by an integer.
    #[error("invalid exponent {0:?}; expected e or E followed by an integer, as in 1e3")]
    InvalidExponent(String),
    /// An exponent that does not fit in 32 bits.
    #[error("exponent in {0:?} is out of range")]
    ExponentOutOfRange(String),
    /// Anything else; `hint` is empty or explains that byte sizes have no `B`.
    #[error(
        "unknown suffix {rest:?}; expected one of Ki, Mi, Gi, Ti, Pi, Ei (powers of 1024), \
         n, u, m, k, M, G, T, P, E (powers of 1000) or an exponent such as e3{hint}"
    )]
    Unknown {
        /// The text after the number.
        rest: String,
        /// Empty, or a hint starting with `"; "`.
        hint: &'static str,
    },
}

/// Interprets a quantity suffix, or explains why it is not one.
fn parse_suffix(rest: &str) -> Result<Suffix, SuffixError> {
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
        "K" => Err(SuffixError::UppercaseKilo),
        _ if rest.len() > 1 && (rest.starts_with('e') || rest.starts_with('E')) => {
            parse_exponent(rest)
        }
        _ => {
            let lower = rest.to_ascii_lowercase();
            let hint = if lower.ends_with('b') && lower.len() <= 3 {
                "; byte sizes are written without \"B\", as in 512Mi or 1G"
            } else {
                ""
            };
            Err(SuffixError::Unknown {
                rest: rest.to_owned(),
                hint,
            })
        }
    }
}

/// Interprets an exponent suffix (`e3`, `E-2`, `e+6`).
fn parse_exponent(rest: &str) -> Result<Suffix, SuffixError> {
    let exponent = rest.get(1..).unwrap_or_default();
    let (negative, digits) = match exponent.as_bytes().first() {
        Some(b'-') => (true, exponent.get(1..).unwrap_or_default()),
        Some(b'+') => (false, exponent.get(1..).unwrap_or_default()),
        _ => (false, exponent),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SuffixError::InvalidExponent(rest.to_owned()));
    }
    let out_of_range = || SuffixError::ExponentOutOfRange(rest.to_owned());
    let magnitude: i64 = digits.parse().map_err(|_| out_of_range())?;
    let value = if negative { -magnitude } else { magnitude };
    let exponent = i32::try_from(value).map_err(|_| out_of_range())?;
    Ok(Suffix {
        binary: false,
        exponent,
        format: Format::DecimalExponent,
    })
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

#[allow(clippy::unwrap_used)]
#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    fn canon(s: &str) -> String {
        q(s).canonical()
    }

    fn err<T: std::fmt::Debug>(r: Result<T, Invalid>) -> String {
        r.unwrap_err().0
    }

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
}
