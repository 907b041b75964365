//! When a stage's expected curve starts: the loading time, not midnight.
//!
//! A stage stores its loading *day* and the moment it was created. Created on its loading day,
//! the creation time is the loading time. Dated later than its creation (loaded tomorrow),
//! the curve starts at that day's first instant. Dated earlier (entered afterwards), the hour
//! is unknown and the curve starts at the middle of the loading day, which is at most half a
//! day from the truth.

use crate::sitetime::{DayNumber, day_bounds, local_day};
use crate::store::stages::Stage;

use super::Calendar;

/// Where the expected curve of `stage` starts, µs since the epoch.
pub fn loading_time_us(tz: chrono_tz::Tz, stage: &Stage) -> i64 {
    let Some((start, end)) = day_bounds(tz, stage.date) else {
        return stage.created_us;
    };
    let created_day = local_day(tz, stage.created_us);
    if created_day == stage.date {
        stage.created_us.clamp(start, end - 1)
    } else if created_day < stage.date {
        start
    } else {
        start + (end - start) / 2
    }
}

/// Part of the loading day after the loading time, (0, 1].
pub fn first_day_fraction(tz: chrono_tz::Tz, day: DayNumber, load_us: i64) -> f64 {
    match day_bounds(tz, day) {
        Some((start, end)) if end > start => {
            let left = (end - load_us.clamp(start, end)) as f64 / (end - start) as f64;
            // At least one minute, so a stage created in the day's last instant still has a
            // first day.
            left.clamp(60e6 / (end - start) as f64, 1.0)
        }
        _ => 1.0,
    }
}

/// Part of today's stretch of the curve that has already passed: from the loading time (on
/// the loading day) or midnight, to now.
pub fn elapsed_part_of_today(calendar: Calendar, loading_day: DayNumber, load_us: i64) -> f64 {
    let Some((start, end)) = day_bounds(calendar.tz, calendar.today) else {
        return calendar.today_elapsed.clamp(0.0, 1.0);
    };
    let now = start as f64 + (end - start) as f64 * calendar.today_elapsed.clamp(0.0, 1.0);
    let from = if calendar.today == loading_day {
        load_us.clamp(start, end) as f64
    } else {
        start as f64
    };
    if end as f64 <= from {
        return 1.0;
    }
    ((now - from) / (end as f64 - from)).clamp(0.0, 1.0)
}
