//! Read-side queries: reading pages, chart buckets, daily aggregates and the stats counters.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use redb::{ReadTransaction, ReadableDatabase, ReadableTable};

use super::codec::{decode_daily, decode_reading};
use super::daily::{ChannelStats, Daily};
use super::tables::{DAILY, READINGS, REPORTS};
use super::{Store, StoreError};
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
    /// Stage ids that have readings, found by skipping from one stage's range to the next.
    fn reading_stages(&self, txn: &ReadTransaction) -> Result<Vec<u64>, StoreError> {
        let t = txn.open_table(READINGS)?;
        let mut stages = Vec::new();
        let mut from = 0u64;
        loop {
            let first = t.range((from, i64::MIN)..)?.next().transpose()?;
            match first {
                Some((k, _)) => {
                    let s = k.value().0;
                    stages.push(s);
                    if s == u64::MAX {
                        break;
                    }
                    from = s + 1;
                }
                None => break,
            }
        }
        Ok(stages)
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
        let txn = self.db()?.begin_read()?;
        let stages = match stage {
            Some(s) => vec![s],
            None => self.reading_stages(&txn)?,
        };
        let t = txn.open_table(READINGS)?;
        let mut out = Vec::new();
        for s in stages {
            for row in t.range((s, from_us)..(s, to_us))?.take(limit + 1) {
                let (k, v) = row?;
                let (stage, ts_us) = k.value();
                out.push(StoredReading {
                    stage,
                    ts_us,
                    reading: decode_reading(v.value())?,
                });
            }
        }
        out.sort_by_key(|r| (r.ts_us, r.stage));
        let next_us = out.get(limit).map(|r| r.ts_us);
        out.truncate(limit);
        Ok(ReadingsPage {
            readings: out,
            next_us,
        })
    }

    /// Per-bucket min/mean/max of every channel over `[from_us, to_us)`.
    pub fn buckets(
        &self,
        stage: Option<u64>,
        from_us: i64,
        to_us: i64,
        bucket_us: i64,
    ) -> Result<Vec<Bucket>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let stages = match stage {
            Some(s) => vec![s],
            None => self.reading_stages(&txn)?,
        };
        let t = txn.open_table(READINGS)?;
        let mut acc: BTreeMap<i64, BucketAcc> = BTreeMap::new();
        for s in stages {
            for row in t.range((s, from_us)..(s, to_us))? {
                let (k, v) = row?;
                let ts = k.value().1;
                let start = from_us + (ts - from_us).div_euclid(bucket_us) * bucket_us;
                let r = decode_reading(v.value())?;
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
        Ok(acc
            .into_iter()
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
            .collect())
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
type BucketAcc = (
    u64,
    [Option<ChannelStats>; CHANNELS],
    Vec<(String, ChannelStats)>,
);

fn one(v: f64) -> ChannelStats {
    ChannelStats {
        count: 1,
        min: v,
        max: v,
        sum: v,
    }
}

fn merge_value(slot: &mut Option<ChannelStats>, v: f64) {
    match slot {
        Some(s) => s.merge(&one(v)),
        None => *slot = Some(one(v)),
    }
}
