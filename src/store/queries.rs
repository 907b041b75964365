//! Read-side queries: reading pages, chart buckets, daily aggregates and the stats counters.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;

use redb::{ReadTransaction, ReadableDatabase, ReadableTable};

use super::codec::decode_daily;
use super::daily::{ChannelStats, Daily};
use super::readings as stored;
use super::tables::{DAILY, READINGS, REPORTS};
use super::{Store, StoreError, rollups};
use crate::reading::{CHANNELS, Channel, Reading};
use crate::sitetime::DayNumber;

/// A stored reading with its key.
#[derive(Debug, Clone)]
pub struct StoredReading {
    pub stage: u64,
    pub ts_us: i64,
    pub reading: Reading,
}

/// One page of readings in time order and where the next page starts.
#[derive(Debug)]
pub struct ReadingsPage {
    pub readings: Vec<StoredReading>,
    pub next_us: Option<i64>,
}

/// Where a walk through readings in time order stands: for each stage, the first timestamp not
/// yet handed out. It lets one listing be read in several short transactions (see
/// [`Store::walk_readings`]).
#[derive(Debug, Clone)]
pub struct ReadingsCursor {
    positions: Vec<(u64, i64)>,
    to_us: i64,
}

/// Why [`Store::walk_readings`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// The visitor asked to stop; readings may remain after the cursor.
    Stopped,
    /// No reading is left in the cursor's range.
    Exhausted,
}

/// Statistics of one channel within a bucket.
#[derive(Debug, Clone)]
pub struct BucketStats {
    pub name: String,
    pub stats: ChannelStats,
}

/// Aggregates of the readings in one time bucket.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub start_us: i64,
    pub count: u64,
    pub channels: Vec<BucketStats>,
}

impl Store {
    /// Stage ids that have readings.
    fn reading_stages(&self, txn: &ReadTransaction) -> Result<Vec<u64>, StoreError> {
        stored::stages(&txn.open_table(READINGS)?)
    }

    /// A cursor at the first reading with `from_us <= ts < to_us`, of one stage or of all.
    pub fn readings_cursor(
        &self,
        stage: Option<u64>,
        from_us: i64,
        to_us: i64,
    ) -> Result<ReadingsCursor, StoreError> {
        let stages = match stage {
            Some(s) => vec![s],
            None => {
                let txn = self.db()?.begin_read()?;
                self.reading_stages(&txn)?
            }
        };
        let positions = if from_us < to_us {
            stages.into_iter().map(|s| (s, from_us)).collect()
        } else {
            Vec::new()
        };
        Ok(ReadingsCursor { positions, to_us })
    }

    /// Hands the readings after `cursor` to `visit` in time order (stage order within the same
    /// microsecond), advancing the cursor past each one, until `visit` breaks or none are left.
    /// Each call is one short read transaction, so a long listing can be read in pieces
    /// without holding a transaction (and its pages) or the whole listing in memory.
    pub fn walk_readings(
        &self,
        cursor: &mut ReadingsCursor,
        mut visit: impl FnMut(StoredReading) -> ControlFlow<()>,
    ) -> Result<Walk, StoreError> {
        if cursor.positions.is_empty() {
            return Ok(Walk::Exhausted);
        }
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(READINGS)?;
        let mut heads = Vec::with_capacity(cursor.positions.len());
        for &(s, from) in &cursor.positions {
            heads.push(stored::range(&t, s, from, cursor.to_us)?.peekable());
        }
        loop {
            let mut first: Option<(i64, u64, usize)> = None;
            for (i, head) in heads.iter_mut().enumerate() {
                if let Some(Err(_)) = head.peek()
                    && let Some(Err(e)) = head.next()
                {
                    return Err(e);
                }
                if let Some(Ok(((s, ts), _))) = head.peek()
                    && first.is_none_or(|(fts, fs, _)| (*ts, *s) < (fts, fs))
                {
                    first = Some((*ts, *s, i));
                }
            }
            let Some((ts_us, stage, i)) = first else {
                cursor.positions.clear();
                return Ok(Walk::Exhausted);
            };
            let Some((_, reading)) = heads[i].next().transpose()? else {
                continue;
            };
            // ts < to_us <= i64::MAX, so this cannot overflow.
            cursor.positions[i].1 = ts_us + 1;
            let r = StoredReading {
                stage,
                ts_us,
                reading,
            };
            if visit(r).is_break() {
                return Ok(Walk::Stopped);
            }
        }
    }

    /// Readings with `from_us <= ts < to_us`, of one stage or of all, oldest first, at most
    /// `limit`, with the start of the next page.
    pub fn readings(
        &self,
        stage: Option<u64>,
        from_us: i64,
        to_us: i64,
        limit: usize,
    ) -> Result<ReadingsPage, StoreError> {
        let mut cursor = self.readings_cursor(stage, from_us, to_us)?;
        let mut readings = Vec::new();
        let mut next_us = None;
        self.walk_readings(&mut cursor, |r| {
            if readings.len() == limit {
                next_us = Some(r.ts_us);
                ControlFlow::Break(())
            } else {
                readings.push(r);
                ControlFlow::Continue(())
            }
        })?;
        Ok(ReadingsPage { readings, next_us })
    }

    /// Per-bucket min/mean/max of every channel over `[from_us, to_us)`. Buckets made of whole
    /// 10-minute rollups are read from those (fast, and still there after the raw readings
    /// were pruned); others from the readings.
    pub fn buckets(
        &self,
        stage: Option<u64>,
        from_us: i64,
        to_us: i64,
        bucket_us: i64,
    ) -> Result<Vec<Bucket>, StoreError> {
        let txn = self.db()?.begin_read()?;
        if rollups::covers(&txn, from_us, to_us, bucket_us)? {
            return rollups::buckets(&txn, stage, from_us, to_us, bucket_us);
        }
        self.raw_buckets(&txn, stage, from_us, to_us, bucket_us)
    }

    /// [`Store::buckets`] computed from the raw readings.
    pub(super) fn raw_buckets(
        &self,
        txn: &ReadTransaction,
        stage: Option<u64>,
        from_us: i64,
        to_us: i64,
        bucket_us: i64,
    ) -> Result<Vec<Bucket>, StoreError> {
        let stages = match stage {
            Some(s) => vec![s],
            None => self.reading_stages(txn)?,
        };
        let t = txn.open_table(READINGS)?;
        let mut acc: BTreeMap<i64, BucketAcc> = BTreeMap::new();
        for s in stages {
            for row in stored::range(&t, s, from_us, to_us)? {
                let ((_, ts), r) = row?;
                let start = from_us + (ts - from_us).div_euclid(bucket_us) * bucket_us;
                let entry = acc
                    .entry(start)
                    .or_insert_with(|| (0, [None; CHANNELS], Vec::new()));
                entry.0 += 1;
                for (slot, value) in entry.1.iter_mut().zip(r.values.iter()) {
                    if let Some(v) = *value {
                        merge_value(slot, v);
                    }
                }
                for (name, v) in r.extra {
                    match entry.2.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, s)) => s.merge(&one(v)),
                        None => entry.2.push((name, one(v))),
                    }
                }
            }
        }
        Ok(into_buckets(acc))
    }

    /// Daily aggregates of `stage` for days in `[from, to]`, in day order.
    pub fn daily(
        &self,
        stage: u64,
        from: DayNumber,
        to: DayNumber,
    ) -> Result<Vec<(DayNumber, Daily)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(DAILY)?;
        let mut out = Vec::new();
        for row in t.range((stage, from)..=(stage, to))? {
            let (k, v) = row?;
            out.push((k.value().1, decode_daily(v.value())?));
        }
        Ok(out)
    }

    /// Readings counted on `day` across all stages.
    pub fn readings_on_day(&self, day: DayNumber) -> Result<u64, StoreError> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(DAILY)?;
        let mut n = 0;
        for row in t.iter()? {
            let (k, v) = row?;
            if k.value().1 == day {
                n += decode_daily(v.value())?.count;
            }
        }
        Ok(n)
    }

    /// Reports generated so far.
    pub fn reports_count(&self) -> Result<u64, StoreError> {
        use redb::ReadableTableMetadata;
        let txn = self.db()?.begin_read()?;
        Ok(txn.open_table(REPORTS)?.len()?)
    }

    /// Readings committed so far (all stages).
    pub fn readings_total(&self) -> u64 {
        self.counters.readings_total.load(Ordering::Relaxed)
    }
}

/// Running totals of one bucket: readings, known channels, extra channels.
/// Bucket start → (readings, known channels' statistics, extra fields' statistics).
pub(super) type BucketAcc = (
    u64,
    [Option<ChannelStats>; CHANNELS],
    Vec<(String, ChannelStats)>,
);

/// The buckets of an accumulation, in time order, channels in their usual order.
pub(super) fn into_buckets(acc: BTreeMap<i64, BucketAcc>) -> Vec<Bucket> {
    acc.into_iter()
        .map(|(start_us, (count, known, extra))| Bucket {
            start_us,
            count,
            channels: Channel::ALL
                .iter()
                .filter_map(|c| {
                    known[*c as usize].map(|stats| BucketStats {
                        name: c.name().to_string(),
                        stats,
                    })
                })
                .chain(
                    extra
                        .into_iter()
                        .map(|(name, stats)| BucketStats { name, stats }),
                )
                .collect(),
        })
        .collect()
}

fn one(v: f64) -> ChannelStats {
    ChannelStats {
        count: 1,
        min: v,
        max: v,
        sum: v,
    }
}

pub(super) fn merge_value(slot: &mut Option<ChannelStats>, v: f64) {
    match slot {
        Some(s) => s.merge(&one(v)),
        None => *slot = Some(one(v)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::reading::Reading;
    use crate::store::writer::{self, Incoming, WriterConfig};

    /// Readings of stages 1 and 2 interleaved, some in the same microsecond.
    fn store_with_two_stages(dir: &std::path::Path) -> (Store, Vec<(i64, u64)>) {
        let store = Store::open(dir, 4, chrono_tz::UTC).expect("store");
        let (w, join) = writer::spawn(
            store.clone(),
            WriterConfig::new(Duration::from_millis(50), 1000, Default::default()),
        )
        .expect("writer");
        let base = 1_700_000_000_000_000i64;
        let mut expected = Vec::new();
        for i in 0..50i64 {
            for stage in [1u64, 2] {
                if stage == 2 && i % 3 == 0 {
                    continue;
                }
                let ts_us = base + i * 1000 + if stage == 2 && i % 2 == 0 { 500 } else { 0 };
                let mut values = [None; CHANNELS];
                values[Channel::Presion as usize] = Some(i as f64);
                w.submit(Incoming {
                    stage,
                    ts_us,
                    reading: Reading {
                        values,
                        extra: vec![],
                        sensor_ts_ms: None,
                        source: "Prueba".into(),
                        clock: Default::default(),
                    },
                })
                .expect("submit");
                expected.push((ts_us, stage));
            }
        }
        w.flush().expect("flush");
        drop(w);
        join.join().expect("join");
        expected.sort();
        (store, expected)
    }

    #[test]
    fn walks_merge_stages_in_time_order_and_resume_where_they_stopped() {
        let dir = tempfile::tempdir().expect("tmp");
        let (store, expected) = store_with_two_stages(dir.path());
        let keys = |rs: &[StoredReading]| rs.iter().map(|r| (r.ts_us, r.stage)).collect::<Vec<_>>();

        let all = store
            .readings(None, i64::MIN, i64::MAX, 10_000)
            .expect("all");
        assert_eq!(keys(&all.readings), expected);
        assert_eq!(all.next_us, None);

        // Three at a time, each call a new transaction: nothing lost or repeated.
        let mut cursor = store
            .readings_cursor(None, i64::MIN, i64::MAX)
            .expect("cursor");
        let mut walked = Vec::new();
        loop {
            let mut n = 0;
            let walk = store
                .walk_readings(&mut cursor, |r| {
                    walked.push((r.ts_us, r.stage));
                    n += 1;
                    if n == 3 {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                })
                .expect("walk");
            if walk == Walk::Exhausted {
                break;
            }
        }
        assert_eq!(walked, expected);

        let page = store.readings(None, i64::MIN, i64::MAX, 10).expect("page");
        assert_eq!(keys(&page.readings), expected[..10]);
        assert_eq!(page.next_us, Some(expected[10].0));
        let one = store
            .readings(Some(2), i64::MIN, i64::MAX, 10_000)
            .expect("stage 2");
        assert!(one.readings.iter().all(|r| r.stage == 2));
        assert_eq!(
            one.readings.len(),
            expected.iter().filter(|(_, s)| *s == 2).count()
        );
        let mut empty = store
            .readings_cursor(None, expected[5].0, expected[5].0)
            .expect("empty range");
        assert_eq!(
            store
                .walk_readings(&mut empty, |_| ControlFlow::Continue(()))
                .expect("walk"),
            Walk::Exhausted
        );
        store.close().expect("close");
    }
}
