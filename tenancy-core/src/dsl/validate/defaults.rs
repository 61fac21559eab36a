//! Rule: a default that has the right kind for its column (a string for a date, a number for
//! a real) is also a value PostgreSQL accepts for the type: a date that exists (leap years
//! included), a timestamp PostgreSQL parses, a real or double that is finite in its type,
//! JSON that jsonb stores, text without NUL. `tenancy check --database-url` goes further and
//! lets PostgreSQL itself parse every default ([`crate::sql::probes`]).

use crate::model::{DefaultValue, SqlType};

/// A problem: the label under the default and an optional help line.
pub(super) type Problem = (String, Option<String>);

/// Strings PostgreSQL turns into a fixed value when the table is created (`'now'` would be
/// the migration's time for every row, forever).
const FROZEN_WORDS: [&str; 4] = ["now", "today", "tomorrow", "yesterday"];

/// Special values PostgreSQL accepts for dates and timestamps.
const SPECIAL_TIMES: [&str; 3] = ["infinity", "-infinity", "epoch"];

/// True for a leap year of the Gregorian calendar.
fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// The days of `month` (1-12) in `year`.
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `n` ASCII digits at the start of `s`, parsed, and the rest.
fn digits(s: &str, n: usize) -> Option<(u32, &str)> {
    let head = s.get(..n)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, &s[n..]))
}

/// Parses `YYYY-MM-DD` at the start of `s` into a date that exists; returns the rest.
fn date_prefix(s: &str) -> Result<&str, String> {
    let parse = || -> Option<(u32, u32, u32, &str)> {
        let (year, rest) = digits(s, 4)?;
        let (month, rest) = digits(rest.strip_prefix('-')?, 2)?;
        let (day, rest) = digits(rest.strip_prefix('-')?, 2)?;
        Some((year, month, day, rest))
    };
    let Some((year, month, day, rest)) = parse() else {
        return Err("not a `'YYYY-MM-DD'` date".to_owned());
    };
    if year == 0 {
        return Err("there is no year 0".to_owned());
    }
    if !(1..=12).contains(&month) {
        return Err(format!("there is no month {month}"));
    }
    let days = days_in_month(year, month);
    if day == 0 || day > days {
        return Err(format!("{year:04}-{month:02} has {days} days, not {day}"));
    }
    Ok(rest)
}

/// Parses `HH:MM[:SS[.frac]]` at the start of `s`; returns the rest.
fn time_prefix(s: &str) -> Result<&str, String> {
    let bad = || "not a `HH:MM[:SS]` time".to_owned();
    let (hour, rest) = digits(s, 2).ok_or_else(bad)?;
    let (minute, mut rest) = digits(rest.strip_prefix(':').ok_or_else(bad)?, 2).ok_or_else(bad)?;
    let mut second = 0;
    if let Some(after) = rest.strip_prefix(':') {
        let (s, after) = digits(after, 2).ok_or_else(bad)?;
        second = s;
        rest = after;
        if let Some(frac) = rest.strip_prefix('.') {
            let n = frac.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return Err(bad());
            }
            rest = &frac[n..];
        }
    }
    // PostgreSQL accepts 24:00:00 (the end of the day) and a leap second 60.
    if hour > 24 || minute > 59 || second > 60 || (hour == 24 && (minute, second) != (0, 0)) {
        return Err(format!(
            "{hour:02}:{minute:02}:{second:02} is not a time of day"
        ));
    }
    Ok(rest)
}

/// `Z`, `+HH`, `-HH`, `+HH:MM`, `+HHMM` (or nothing).
fn zone(s: &str) -> Result<(), String> {
    let bad = || format!("`{s}` is not a time zone offset (write `Z`, `UTC` or `+HH:MM`)");
    if s.is_empty() || ["z", "utc", "gmt"].contains(&s.to_ascii_lowercase().as_str()) {
        return Ok(());
    }
    let rest = s
        .strip_prefix('+')
        .or_else(|| s.strip_prefix('-'))
        .ok_or_else(bad)?;
    let (hours, rest) = digits(rest, 2).ok_or_else(bad)?;
    let minutes = match rest.strip_prefix(':').unwrap_or(rest) {
        "" => 0,
        m => {
            digits(m, 2)
                .filter(|(_, r)| r.is_empty())
                .ok_or_else(bad)?
                .0
        }
    };
    if hours > 15 || minutes > 59 {
        return Err(bad());
    }
    Ok(())
}

/// A `timestamptz` string: a date, optionally a time (after ` ` or `T`) and a zone offset.
fn timestamp(s: &str) -> Result<(), String> {
    let rest = date_prefix(s)?;
    if rest.is_empty() {
        return Ok(());
    }
    let rest = rest
        .strip_prefix(' ')
        .or_else(|| rest.strip_prefix('T'))
        .ok_or_else(|| format!("`{rest}` after the date is not a time"))?;
    let rest = time_prefix(rest)?;
    zone(rest.strip_prefix(' ').unwrap_or(rest))
}

/// The problem of a default whose kind already fits `ty`, or `None`.
pub(super) fn value_problem(value: &DefaultValue, ty: SqlType) -> Option<Problem> {
    use SqlType as T;
    let lowered = |s: &str| s.trim().to_ascii_lowercase();
    match (value, ty) {
        (DefaultValue::String(s), _) if s.chars().any(|c| c != '\0' && c.is_control()) => Some((
            "a string default holds a control character (a newline, tab, ...)".to_owned(),
            Some(
                "write it on one line without control characters; a `.tenancy` string cannot \
                 hold them"
                    .to_owned(),
            ),
        )),
        (DefaultValue::String(s), _) if s.contains('\0') => Some((
            "PostgreSQL text cannot hold a NUL character".to_owned(),
            Some("remove the `\\0` from the default".to_owned()),
        )),
        (DefaultValue::String(s), T::Date | T::Timestamptz)
            if FROZEN_WORDS.contains(&lowered(s).as_str()) =>
        {
            Some((
                format!("`'{s}'` is read once, when the table is created"),
                Some("write `default now()` for the time of each insert".to_owned()),
            ))
        }
        (DefaultValue::String(s), T::Date | T::Timestamptz)
            if SPECIAL_TIMES.contains(&lowered(s).as_str()) =>
        {
            None
        }
        (DefaultValue::String(s), T::Date) => date_prefix(s)
            .and_then(|rest| match rest {
                "" => Ok(()),
                _ => Err(format!("`{rest}` after the date")),
            })
            .err()
            .map(|e| {
                (
                    format!("this date default is not a date: {e}"),
                    Some("write an existing date `'YYYY-MM-DD'` or `now()`".to_owned()),
                )
            }),
        (DefaultValue::String(s), T::Timestamptz) => timestamp(s).err().map(|e| {
            (
                format!("this timestamptz default is not a timestamp: {e}"),
                Some("write `'YYYY-MM-DD HH:MM:SS+00'` or `now()`".to_owned()),
            )
        }),
        (DefaultValue::String(s), T::Jsonb) if s.contains("\\u0000") => Some((
            "jsonb cannot store the escape `\\u0000`".to_owned(),
            Some("remove the NUL escape from the JSON".to_owned()),
        )),
        (DefaultValue::Decimal(d), T::Real) if !d.parse::<f32>().is_ok_and(f32::is_finite) => {
            Some((
                format!("`{d}` is out of range for a real"),
                Some("use `double`".to_owned()),
            ))
        }
        (DefaultValue::Decimal(d), T::Double) if !d.parse::<f64>().is_ok_and(f64::is_finite) => {
            Some((format!("`{d}` is not a finite double"), None))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> Option<Problem> {
        value_problem(&DefaultValue::String(s.to_owned()), SqlType::Date)
    }

    fn ts(s: &str) -> Option<Problem> {
        value_problem(&DefaultValue::String(s.to_owned()), SqlType::Timestamptz)
    }

    #[test]
    fn dates_exist() {
        assert!(date("2024-02-29").is_none());
        assert!(date("2000-02-29").is_none());
        assert!(date("2023-12-31").is_none());
        assert!(date("infinity").is_none());
        for bad in [
            "2023-02-29",
            "1900-02-29",
            "2023-02-31",
            "2023-04-31",
            "0000-01-01",
            "2023-13-01",
            "2023-00-10",
            "2023-1-1",
            "2023-01-01x",
            "today",
        ] {
            assert!(date(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn timestamps_parse() {
        for good in [
            "2024-02-29",
            "2024-02-29 12:00",
            "2024-02-29T23:59:59.123456Z",
            "2024-02-29 23:59:59+02:00",
            "2024-02-29 23:59:59 -0530",
            "2024-01-01 24:00:00",
            "-infinity",
            "epoch",
        ] {
            assert!(ts(good).is_none(), "{good}");
        }
        for bad in [
            "x",
            "",
            "now",
            "2023-02-31 10:00",
            "2024-01-01 25:00",
            "2024-01-01 10:61",
            "2024-01-01 10:00+99",
            "2024-01-01 10:00 CET!",
            "2024-01-01 10:00:",
        ] {
            assert!(ts(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn numbers_fit_their_type() {
        let huge = format!("1{}.0", "0".repeat(60));
        let d = |s: &str| DefaultValue::Decimal(s.to_owned());
        assert!(value_problem(&d(&huge), SqlType::Real).is_some());
        assert!(value_problem(&d(&huge), SqlType::Double).is_none());
        assert!(value_problem(&d("0.5"), SqlType::Real).is_none());
        let big = format!("1{}.0", "0".repeat(400));
        assert!(value_problem(&d(&big), SqlType::Double).is_some());
    }

    #[test]
    fn text_and_json_hold_no_nul() {
        let s = |s: &str| DefaultValue::String(s.to_owned());
        assert!(value_problem(&s("a\0b"), SqlType::Text).is_some());
        assert!(value_problem(&s("\"\\u0000\""), SqlType::Jsonb).is_some());
        assert!(value_problem(&s("{\"a\": 1}"), SqlType::Jsonb).is_none());
    }
}
