//! Time helpers in the site's zone: production is counted per local day, not per UTC day.

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;

/// A site-local calendar day, as days since 0001-01-01 (the stored day key).
pub type DayNumber = i32;

/// Current time in µs since the Unix epoch (UTC): the appliance's best estimate
/// ([`crate::clock::now_us`]), which every timestamp it takes comes from.
pub fn now_us() -> i64 {
    crate::clock::now_us()
}

/// The earliest wall clock the appliance trusts. A Raspberry Pi has no real-time clock and
/// boots in the past until NTP answers; readings stamped before this are flagged.
pub const PLAUSIBLE_CLOCK_US: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

/// The site-local day that contains the instant `ts_us`.
pub fn local_day(tz: Tz, ts_us: i64) -> DayNumber {
    let utc = DateTime::<Utc>::from_timestamp_micros(ts_us).unwrap_or_default();
    utc.with_timezone(&tz).date_naive().num_days_from_ce()
}

/// Calendar date of a stored day number.
pub fn day_date(day: DayNumber) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(day).unwrap_or_default()
}

/// Day number of a calendar date.
pub fn date_day(date: NaiveDate) -> DayNumber {
    date.num_days_from_ce()
}

/// First and one-past-last instant (µs since the epoch) of a local day. Days shortened or
/// lengthened by a daylight-saving change are handled by resolving each local midnight.
pub fn day_bounds(tz: Tz, day: DayNumber) -> Option<(i64, i64)> {
    let midnight = |d: DayNumber| -> Option<i64> {
        let date = NaiveDate::from_num_days_from_ce_opt(d)?;
        // A midnight skipped by a DST change starts the day at the first valid instant.
        (0..=3).find_map(|h| {
            let local = date.and_hms_opt(h, 0, 0)?;
            tz.from_local_datetime(&local)
                .earliest()
                .map(|t| t.timestamp_micros())
        })
    };
    Some((midnight(day)?, midnight(day + 1)?))
}

/// Fraction (0–1) of the current site-local day already elapsed.
pub fn elapsed_fraction_of_today(tz: Tz) -> f64 {
    let now = now_us();
    match day_bounds(tz, local_day(tz, now)) {
        Some((start, end)) if end > start => (now - start) as f64 / (end - start) as f64,
        _ => 1.0,
    }
}

/// Today in the site's zone.
pub fn today(tz: Tz) -> DayNumber {
    local_day(tz, now_us())
}

/// RFC 3339 text of `ts_us` in the site's zone with millisecond precision.
pub fn rfc3339(tz: Tz, ts_us: i64) -> String {
    let utc = DateTime::<Utc>::from_timestamp_micros(ts_us).unwrap_or_default();
    tz.from_utc_datetime(&utc.naive_utc())
        .to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// Parses RFC 3339 text into µs since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|d| d.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_days_follow_the_site_zone() {
        let tz: Tz = "America/Bogota".parse().unwrap();
        // 2026-03-10T04:59:59Z is still 2026-03-09 23:59:59 in Bogotá (UTC-5).
        let before = parse_rfc3339("2026-03-10T04:59:59Z").unwrap();
        let after = parse_rfc3339("2026-03-10T05:00:00Z").unwrap();
        assert_eq!(day_date(local_day(tz, before)).to_string(), "2026-03-09");
        assert_eq!(day_date(local_day(tz, after)).to_string(), "2026-03-10");
        assert_eq!(rfc3339(tz, after), "2026-03-10T00:00:00.000-05:00");
        let (start, end) = day_bounds(tz, local_day(tz, after)).unwrap();
        assert_eq!((start, end - start), (after, 86_400_000_000));
    }

    #[test]
    fn day_bounds_across_dst() {
        // Santiago: 2026-04-05 starts at 00:00 −04 after summer time ended at 24:00 −03, so
        // 2026-04-04 lasts 25 hours.
        let tz: Tz = "America/Santiago".parse().unwrap();
        let d = local_day(tz, parse_rfc3339("2026-04-04T12:00:00-03:00").unwrap());
        let (s, e) = day_bounds(tz, d).unwrap();
        assert_eq!((e - s) / 3_600_000_000, 25);
    }
}
