//! `biogestor reindex`: rebuilds every daily aggregate and meter state from the stored
//! readings under this build's meter rules. Days stored by an earlier release keep the figures
//! its rules gave (a glitch counted as gas, a gap counted as zero) until they are rebuilt.
//!
//! Readings are replayed in the order they were received (their stored time, across all
//! stages) through the same [`Fold`] the writer uses, so a rebuild gives the rows the writer
//! would have kept. One write transaction replaces the `daily` and `meters` tables: an
//! interrupted rebuild changes nothing. Days whose raw readings were pruned keep their rows.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono_tz::Tz;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::codec::{decode_meter, encode_daily, encode_meter};
use super::daily::fold::Fold;
use super::daily::{MeterRules, MeterState};
use super::readings as stored;
use super::tables::{DAILY, META, METERS, READINGS, meta_key};
use super::{AGGREGATES_VERSION, Store, StoreError};
use crate::reading::Reading;

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq)]
pub struct Rebuilt {
    /// Readings replayed.
    pub readings: u64,
    /// Daily rows written (stage × day).
    pub days: usize,
    /// Sources with a meter state.
    pub sources: usize,
    /// Time the rebuild took.
    pub elapsed: Duration,
}

/// The next unread reading of one stage.
struct Head {
    stage: u64,
    ts_us: i64,
    reading: Reading,
}

impl Store {
    /// Rebuilds the daily aggregates and meter states from the readings (service stopped).
    pub fn reindex(&self, rules: MeterRules) -> Result<Rebuilt, StoreError> {
        let started = Instant::now();
        let txn = self.db()?.begin_write()?;
        let (readings, days, sources) = rebuild(&txn, self.tz, rules, &|| {})?;
        txn.commit()?;
        Ok(Rebuilt {
            readings,
            days,
            sources,
            elapsed: started.elapsed(),
        })
    }

    /// Every source's meter state, by topic.
    pub fn meter_states(&self) -> Result<Vec<(String, MeterState)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(METERS)?;
        let mut out = Vec::with_capacity(t.len()? as usize);
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_string(), decode_meter(v.value())?));
        }
        Ok(out)
    }
}

/// Replaces the `daily` and `meters` tables inside `txn` with what the readings give under
/// `rules`; returns the readings replayed, the daily rows and the sources. Also used after
/// re-dating readings (`store::redate`); `progress` is called every few thousand readings.
pub(super) fn rebuild(
    txn: &WriteTransaction,
    tz: Tz,
    rules: MeterRules,
    progress: &dyn Fn(),
) -> Result<(u64, usize, usize), StoreError> {
    let mut meters = HashMap::new();
    let mut fold = Fold::new(tz, rules, &mut meters);
    let mut count = 0u64;
    {
        let readings = txn.open_table(READINGS)?;
        let stages = stored::stages(&readings)?;
        let mut ranges = stages
            .iter()
            .map(|s| stored::range(&readings, *s, i64::MIN, i64::MAX))
            .collect::<Result<Vec<_>, _>>()?;
        let mut heads = Vec::with_capacity(ranges.len());
        for (stage, range) in stages.iter().zip(ranges.iter_mut()) {
            heads.push(next_head(*stage, range)?);
        }
        // Merge the stages by receive time: the order the writer saw them in.
        while let Some(i) = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|h| (h.ts_us, h.stage, i)))
            .min()
            .map(|(_, _, i)| i)
        {
            let next = next_head(stages[i], &mut ranges[i])?;
            if let Some(h) = std::mem::replace(&mut heads[i], next) {
                fold.apply(h.stage, h.ts_us, &h.reading, &mut |_| {
                    Ok::<_, StoreError>(None)
                })?;
                count += 1;
                if count.is_multiple_of(4096) {
                    progress();
                }
            }
        }
    }
    let (rows, _) = fold.finish();
    {
        // Days whose raw readings retention pruned (in full or in part) keep the rows computed
        // when their readings were stored: a rebuild cannot know better.
        let kept_from = txn
            .open_table(META)?
            .get(meta_key::RAW_KEPT_FROM_US)?
            .map(|v| v.value() as i64);
        let last_pruned_day = kept_from.map(|us| crate::sitetime::local_day(tz, us));
        let rebuilt = |day| last_pruned_day.is_none_or(|last| day > last);
        let mut daily = txn.open_table(DAILY)?;
        daily.retain(|k, _| !rebuilt(k.1))?;
        for (key, day) in rows.iter().filter(|(k, _)| rebuilt(k.1)) {
            daily.insert(*key, encode_daily(day)?.as_slice())?;
        }
        let mut table = txn.open_table(METERS)?;
        table.retain(|_, _| false)?;
        for (source, m) in &meters {
            table.insert(source.as_str(), encode_meter(m)?.as_slice())?;
        }
        txn.open_table(META)?
            .insert(meta_key::AGGREGATES, AGGREGATES_VERSION)?;
    }
    Ok((count, rows.len(), meters.len()))
}

fn next_head(stage: u64, range: &mut stored::Rows<'_>) -> Result<Option<Head>, StoreError> {
    match range.next().transpose()? {
        Some(((_, ts_us), reading)) => Ok(Some(Head {
            stage,
            ts_us,
            reading,
        })),
        None => Ok(None),
    }
}
