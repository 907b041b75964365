//! Applies readings, in the order they arrived, to the daily rows and the sources' meter
//! states. The writer and `biogestor reindex` both go through here, so a rebuild from the
//! stored readings gives the rows the writer keeps incrementally.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::{Daily, MeterRules, MeterState};
use crate::reading::Reading;
use crate::sitetime::{DayNumber, day_bounds, local_day};

/// A daily row's key: (stage id, site-local day).
pub type DayKey = (u64, DayNumber);

/// The rows and meter states being updated, with what is needed to find a reading's day.
pub struct Fold<'m> {
    rules: MeterRules,
    days: DayCache,
    rows: HashMap<DayKey, Daily>,
    meters: &'m mut HashMap<String, MeterState>,
    touched: Vec<String>,
}

impl<'m> Fold<'m> {
    /// Starts with no rows loaded; `meters` is updated in place.
    pub fn new(
        tz: chrono_tz::Tz,
        rules: MeterRules,
        meters: &'m mut HashMap<String, MeterState>,
    ) -> Self {
        Self {
            rules,
            days: DayCache::new(tz),
            rows: HashMap::new(),
            meters,
            touched: Vec::new(),
        }
    }

    /// Applies reading `r` of `stage` stored at `ts_us`. A row not yet loaded is asked of
    /// `load` (None: the day has no row yet).
    pub fn apply<E>(
        &mut self,
        stage: u64,
        ts_us: i64,
        r: &Reading,
        load: &mut impl FnMut(DayKey) -> Result<Option<Daily>, E>,
    ) -> Result<(), E> {
        let (day, day_start) = self.days.day(ts_us);
        let row = row_of(&mut self.rows, (stage, day), load)?;
        row.record(ts_us, r);
        if !self.meters.contains_key(&r.source) {
            self.meters.insert(r.source.clone(), MeterState::default());
        }
        let mut before_day = 0;
        if let Some(meter) = self.meters.get_mut(&r.source) {
            before_day = meter.apply(
                &self.rules,
                ts_us,
                day_start,
                r,
                &mut row.gas,
                &mut row.biol,
            );
        }
        if before_day > 0 {
            row_of(&mut self.rows, (stage, day - 1), load)?
                .gas
                .flow_covered_us += before_day;
        }
        if !self.touched.contains(&r.source) {
            self.touched.push(r.source.clone());
        }
        Ok(())
    }

    /// The rows changed and the sources whose meter state changed.
    pub fn finish(self) -> (HashMap<DayKey, Daily>, Vec<String>) {
        (self.rows, self.touched)
    }
}

fn row_of<'r, E>(
    rows: &'r mut HashMap<DayKey, Daily>,
    key: DayKey,
    load: &mut impl FnMut(DayKey) -> Result<Option<Daily>, E>,
) -> Result<&'r mut Daily, E> {
    Ok(match rows.entry(key) {
        Entry::Occupied(e) => e.into_mut(),
        Entry::Vacant(e) => e.insert(load(key)?.unwrap_or_default()),
    })
}

/// Site-local day of a timestamp and its first instant, remembering the bounds of the last day
/// seen: consecutive readings almost always fall on the same day, so the time-zone lookup runs
/// once per day rather than once per reading.
struct DayCache {
    tz: chrono_tz::Tz,
    current: Option<(i64, i64, DayNumber)>,
}

impl DayCache {
    fn new(tz: chrono_tz::Tz) -> Self {
        Self { tz, current: None }
    }

    /// (day, first instant of the day in µs).
    fn day(&mut self, ts_us: i64) -> (DayNumber, i64) {
        if let Some((start, end, day)) = self.current
            && (start..end).contains(&ts_us)
        {
            return (day, start);
        }
        let day = local_day(self.tz, ts_us);
        self.current = day_bounds(self.tz, day).map(|(s, e)| (s, e, day));
        (day, self.current.map_or(ts_us, |(s, _, _)| s))
    }
}
