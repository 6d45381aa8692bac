//! Java's `SimpleDateFormat` patterns, parsed and written in UTC, for `TimestampRouter`.

use std::fmt::Write as _;

/// A piece of a `SimpleDateFormat` pattern: literal text, or a letter repeated `n` times.
#[derive(Debug, PartialEq)]
pub(super) enum DatePart {
    Text(String),
    Field(char, usize),
}

/// The pattern letters supported: era, year, week year, month, day, day of year, weekday,
/// am/pm, the four hour forms, minute, second, millisecond and the (always UTC) zone forms.
/// Week numbers (`w`, `W`, `F`) are refused rather than approximated.
const DATE_LETTERS: &str = "GyYMLdDEuaHkKhmsSzZX";

/// Parses a Java `SimpleDateFormat` pattern: ASCII letters are fields, `'…'` quotes text
/// (`''` is a quote), anything else is literal.
pub(super) fn parse_date_format(pattern: &str) -> std::result::Result<Vec<DatePart>, String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            if chars.next_if_eq(&'\'').is_some() {
                text.push('\'');
                continue;
            }
            loop {
                match chars.next() {
                    None => return Err("unterminated quote".into()),
                    Some('\'') if chars.next_if_eq(&'\'').is_some() => text.push('\''),
                    Some('\'') => break,
                    Some(ch) => text.push(ch),
                }
            }
        } else if c.is_ascii_alphabetic() {
            if !DATE_LETTERS.contains(c) {
                return Err(format!(
                    "pattern letter '{c}' is not supported (supported: {DATE_LETTERS})"
                ));
            }
            let mut count = 1;
            while chars.next_if_eq(&c).is_some() {
                count += 1;
            }
            if !text.is_empty() {
                parts.push(DatePart::Text(std::mem::take(&mut text)));
            }
            parts.push(DatePart::Field(c, count));
        } else {
            text.push(c);
        }
    }
    if !text.is_empty() {
        parts.push(DatePart::Text(text));
    }
    Ok(parts)
}

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
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const DAYS_BEFORE_MONTH: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
const MS_PER_DAY: i64 = 86_400_000;

/// `(year, month 1-12, day 1-31)` of a day count from 1970-01-01 in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `ms` since the epoch in `parts`, in UTC, as `SimpleDateFormat` writes it: numbers
/// zero-padded to the letter count (`yy` is the year's last two digits), three letters of a
/// month or weekday its short name, four or more its full name.
pub(super) fn format_date(parts: &[DatePart], ms: i64) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let ms_of_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let leap = year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0);
    let month_index = (month - 1).clamp(0, 11) as usize;
    let day_of_year = DAYS_BEFORE_MONTH.get(month_index).copied().unwrap_or(0)
        + day
        + i64::from(leap && month > 2);
    // 1970-01-01 was a Thursday (index 3 from Monday).
    let weekday = (days + 3).rem_euclid(7) as usize;
    let hour = ms_of_day / 3_600_000;
    let twelve = if hour % 12 == 0 { 12 } else { hour % 12 };
    let year_of_era = if year > 0 { year } else { 1 - year };
    // `Y`, the week year, by the US week rules a JVM uses by default (weeks start on Sunday,
    // week 1 holds January 1): late December days in the week of next January 1 count as
    // next year. Confluent's TimestampRouter example uses `YYYYMM`.
    let days_to_saturday = if weekday == 6 { 6 } else { 5 - weekday as i64 };
    let week_year = year_of_era + i64::from(month == 12 && day + days_to_saturday > 31);
    let name = |names: &[&'static str], i: usize, n: usize| {
        let full = names.get(i).copied().unwrap_or_default();
        if n >= 4 {
            full
        } else {
            full.get(..3).unwrap_or(full)
        }
    };
    let mut out = String::new();
    for part in parts {
        let (letter, n) = match part {
            DatePart::Text(t) => {
                out.push_str(t);
                continue;
            }
            DatePart::Field(letter, n) => (*letter, *n),
        };
        let number = match letter {
            'G' => {
                out.push_str(if year > 0 { "AD" } else { "BC" });
                continue;
            }
            'y' if n == 2 => year_of_era % 100,
            'y' => year_of_era,
            'Y' if n == 2 => week_year % 100,
            'Y' => week_year,
            'M' | 'L' if n >= 3 => {
                out.push_str(name(&MONTHS, month_index, n));
                continue;
            }
            'M' | 'L' => month,
            'd' => day,
            'D' => day_of_year,
            'E' => {
                out.push_str(name(&WEEKDAYS, weekday, n));
                continue;
            }
            'u' => weekday as i64 + 1,
            'a' => {
                out.push_str(if hour < 12 { "AM" } else { "PM" });
                continue;
            }
            'H' => hour,
            'k' => {
                if hour == 0 {
                    24
                } else {
                    hour
                }
            }
            'K' => hour % 12,
            'h' => twelve,
            'm' => ms_of_day / 60_000 % 60,
            's' => ms_of_day / 1000 % 60,
            'S' => ms_of_day % 1000,
            'z' => {
                out.push_str(if n >= 4 {
                    "Coordinated Universal Time"
                } else {
                    "UTC"
                });
                continue;
            }
            'Z' => {
                out.push_str("+0000");
                continue;
            }
            'X' => {
                out.push('Z');
                continue;
            }
            _ => continue,
        };
        let _ = write!(out, "{number:0n$}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(pattern: &str, ms: i64) -> String {
        format_date(&parse_date_format(pattern).expect("pattern"), ms)
    }

    #[test]
    fn dates_format_as_simple_date_format_does_in_utc() {
        // 2024-02-29T13:05:09.007Z, a Thursday, day 60 of a leap year.
        let ms = 1_709_211_909_007;
        assert_eq!(date("yyyyMMdd", ms), "20240229");
        assert_eq!(
            date("yyyy-MM-dd'T'HH:mm:ss.SSSX", ms),
            "2024-02-29T13:05:09.007Z"
        );
        assert_eq!(date("yy/M/d h:m a", ms), "24/2/29 1:5 PM");
        assert_eq!(date("EEE, d MMM yyyy", ms), "Thu, 29 Feb 2024");
        assert_eq!(date("EEEE MMMM D u", ms), "Thursday February 60 4");
        assert_eq!(
            date("'o''clock' '' k K z Z G", ms),
            "o'clock ' 13 1 UTC +0000 AD"
        );
        assert_eq!(date("yyyyMMddHH", 0), "1970010100");
        // The week year: 2024-12-28 is a Saturday (still 2024), 2024-12-29 a Sunday whose week
        // holds 2025-01-01; 2023-01-01 is a Sunday, in week 1 of 2023.
        assert_eq!(date("YYYY-MM-dd", 1_735_344_000_000), "2024-12-28");
        assert_eq!(date("YYYY-MM-dd", 1_735_430_400_000), "2025-12-29");
        assert_eq!(date("YY yyyy", 1_672_531_200_000), "23 2023");
        assert_eq!(
            date("yyyy-MM-dd HH:mm:ss.SSS", -1),
            "1969-12-31 23:59:59.999"
        );
        // Extreme timestamps format without overflowing.
        assert!(!date("yyyyMMdd", i64::MIN).is_empty());
        assert!(!date("yyyyMMdd", i64::MAX).is_empty());
    }

    #[test]
    fn date_patterns_with_unsupported_letters_or_open_quotes_are_refused() {
        assert!(parse_date_format("yyyy-ww").is_err());
        assert!(parse_date_format("yyyy'MM").is_err());
        assert_eq!(
            parse_date_format("yy-MM").expect("pattern"),
            vec![
                DatePart::Field('y', 2),
                DatePart::Text("-".into()),
                DatePart::Field('M', 2)
            ]
        );
    }
}
