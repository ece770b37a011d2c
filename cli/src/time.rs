//! The ISO-8601 date-times and durations `kafka-consumer-groups --reset-offsets`
//! accepts (`--to-datetime 2024-05-01T12:00:00.000`, `--by-duration PT1H`), parsed
//! without a calendar library: only the proleptic Gregorian calendar and fixed zone
//! offsets are needed.

use anyhow::{Context, bail};

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:mm[:SS[.fff]][Z|±HH:MM|±HHMM]`.
/// Without a zone the time is taken as UTC.
pub fn parse_datetime_ms(text: &str) -> anyhow::Result<i64> {
    let invalid = || format!("invalid date-time '{text}': expected YYYY-MM-DDTHH:mm:SS.sss");
    let (date, rest) = text.split_once('T').with_context(invalid)?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = number(date_parts.next()).with_context(invalid)?;
    let month: i64 = number(date_parts.next()).with_context(invalid)?;
    let day: i64 = number(date_parts.next()).with_context(invalid)?;
    // Split the zone off the time of day.
    let (time, offset_minutes) = if let Some(time) = rest.strip_suffix('Z') {
        (time, 0)
    } else if let Some(at) = rest.rfind(['+', '-']) {
        let (time, zone) = rest.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 {
            bail!(invalid());
        }
        let hours: i64 = number(Some(&digits[..2])).with_context(invalid)?;
        let minutes: i64 = number(Some(&digits[2..])).with_context(invalid)?;
        (time, sign * (hours * 60 + minutes))
    } else {
        (rest, 0)
    };
    let (time, fraction) = match time.split_once('.') {
        Some((time, fraction)) => (time, Some(fraction)),
        None => (time, None),
    };
    let mut time_parts = time.splitn(3, ':');
    let hour: i64 = number(time_parts.next()).with_context(invalid)?;
    let minute: i64 = number(time_parts.next()).with_context(invalid)?;
    let second: i64 = match time_parts.next() {
        Some(s) => number(Some(s)).with_context(invalid)?,
        None => 0,
    };
    let millis = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            let padded = format!("{f:0<3}");
            padded[..3].parse::<i64>().with_context(invalid)?
        }
        Some(_) => bail!(invalid()),
    };
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        bail!(invalid());
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1_000 + millis)
}

/// Milliseconds in an ISO-8601 duration `PnDTnHnMn.nS` (days and time parts only,
/// as Java's `Duration.parse`).
pub fn parse_duration_ms(text: &str) -> anyhow::Result<i64> {
    let invalid = || format!("invalid duration '{text}': expected e.g. PT1H30M or P1DT12H");
    let body = text
        .strip_prefix('P')
        .or_else(|| text.strip_prefix('p'))
        .with_context(invalid)?;
    let (days_part, time_part) = match body.split_once(['T', 't']) {
        Some((days, time)) => (days, Some(time)),
        None => (body, None),
    };
    let mut total = 0_f64;
    let mut any = false;
    if !days_part.is_empty() {
        let days = days_part
            .strip_suffix(['D', 'd'])
            .with_context(invalid)?
            .parse::<f64>()
            .ok()
            .with_context(invalid)?;
        total += days * 86_400_000.0;
        any = true;
    }
    if let Some(mut time) = time_part {
        if time.is_empty() {
            bail!(invalid());
        }
        while !time.is_empty() {
            let at = time
                .find(|c: char| c.is_ascii_alphabetic())
                .with_context(invalid)?;
            let value: f64 = time[..at].parse().ok().with_context(invalid)?;
            let unit_ms = match time.as_bytes()[at].to_ascii_uppercase() {
                b'H' => 3_600_000.0,
                b'M' => 60_000.0,
                b'S' => 1_000.0,
                _ => bail!(invalid()),
            };
            total += value * unit_ms;
            any = true;
            time = &time[at + 1..];
        }
    }
    if !any || !total.is_finite() || total < 0.0 {
        bail!(invalid());
    }
    // Finite and non-negative: `as` saturates at i64::MAX for absurd durations.
    Ok(total.round() as i64)
}

fn number(part: Option<&str>) -> Option<i64> {
    let part = part?;
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12; // March is 0
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times() {
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:00.000").unwrap(), 0);
        assert_eq!(
            parse_datetime_ms("2023-11-14T22:13:20.000Z").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_datetime_ms("2023-11-14T22:13:20").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_datetime_ms("2023-11-15T00:13:20.5+02:00").unwrap(),
            1_700_000_000_500
        );
        assert_eq!(
            parse_datetime_ms("2023-11-14T21:13:20.000-0100").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_datetime_ms("2024-02-29T00:00").unwrap(),
            1_709_164_800_000
        );
        assert!(parse_datetime_ms("2023-02-29T00:00:00").is_err());
        assert!(parse_datetime_ms("2023-11-14").is_err());
        assert!(parse_datetime_ms("2023-11-14T25:00:00").is_err());
        assert!(parse_datetime_ms("yesterday").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("PT1H").unwrap(), 3_600_000);
        assert_eq!(parse_duration_ms("PT1H30M").unwrap(), 5_400_000);
        assert_eq!(parse_duration_ms("P1DT12H").unwrap(), 129_600_000);
        assert_eq!(parse_duration_ms("PT0.5S").unwrap(), 500);
        assert_eq!(parse_duration_ms("P2D").unwrap(), 172_800_000);
        assert!(parse_duration_ms("1H").is_err());
        assert!(parse_duration_ms("PT").is_err());
        assert!(parse_duration_ms("P").is_err());
        assert!(parse_duration_ms("PT5X").is_err());
    }
}
