//! Rollups: per-channel count/min/sum/max of each stage's readings per 10-minute bucket (UTC),
//! kept for years after the raw readings are pruned (see [`super::retention`]). Charts over
//! days, weeks and months read these instead of scanning every reading.
//!
//! The writer folds each reading it stores into its bucket in the same transaction. A store
//! written before rollups existed gets them built from its readings in the background: a
//! cursor (a readings key, kept in `meta`) walks the readings table in key order, a chunk per
//! writer turn; a reading stored at a key the cursor has not reached yet is left for the walk,
//! so each reading is counted exactly once.

use std::collections::{BTreeMap, HashMap};

use redb::{ReadTransaction, ReadableTable, Table, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::daily::{ChannelStats, record_values};
use super::queries::{BucketAcc, into_buckets};
use super::readings as stored;
use super::tables::{META, READINGS, ROLLUPS, meta_key};
use super::{Bucket, StoreError};
use crate::reading::{CHANNELS, Reading};

/// Width of a rollup bucket, seconds.
pub const ROLLUP_S: i64 = 600;
/// Width of a rollup bucket, µs.
pub const ROLLUP_US: i64 = ROLLUP_S * 1_000_000;

/// Readings folded per background step while building rollups of an older store.
const BACKFILL_CHUNK: usize = 20_000;

/// Statistics of one stage's readings within one bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    pub count: u64,
    #[serde(with = "crate::store::codec::channel_array")]
    pub channels: [Option<ChannelStats>; CHANNELS],
    pub extra: Vec<(String, ChannelStats)>,
}

/// Stored forms of a rollup (the version is the first byte).
#[derive(Deserialize)]
enum RollupRow {
    V1(Rollup),
}

/// Serialises exactly like `RollupRow::V1` without cloning.
#[derive(Serialize)]
enum RollupRowRef<'a> {
    V1(&'a Rollup),
}

fn encode(r: &Rollup) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(&RollupRowRef::V1(r)).map_err(|e| StoreError::Corrupt {
        table: "rollups",
        detail: e.to_string(),
    })
}

/// Decodes a stored rollup.
pub fn decode(bytes: &[u8]) -> Result<Rollup, StoreError> {
    match postcard::from_bytes(bytes) {
        Ok(RollupRow::V1(r)) => Ok(r),
        Err(e) => Err(StoreError::Corrupt {
            table: "rollups",
            detail: e.to_string(),
        }),
    }
}

/// Start (s since the epoch) of the bucket holding `ts_us`.
pub fn bucket_of(ts_us: i64) -> i64 {
    ts_us.div_euclid(ROLLUP_US) * ROLLUP_S
}

/// Where building rollups of older readings stands: the next readings key to fold.
pub type Cursor = Option<(u64, i64)>;

/// Reads the backfill cursor.
pub fn load_cursor(meta: &impl ReadableTable<&'static str, u64>) -> Result<Cursor, StoreError> {
    let stage = meta.get(meta_key::ROLLUP_CURSOR_STAGE)?.map(|v| v.value());
    let us = meta
        .get(meta_key::ROLLUP_CURSOR_US)?
        .map(|v| v.value() as i64);
    Ok(stage.zip(us))
}

fn store_cursor(meta: &mut Table<&'static str, u64>, cursor: Cursor) -> Result<(), StoreError> {
    match cursor {
        Some((stage, us)) => {
            meta.insert(meta_key::ROLLUP_CURSOR_STAGE, stage)?;
            meta.insert(meta_key::ROLLUP_CURSOR_US, us as u64)?;
        }
        None => {
            meta.remove(meta_key::ROLLUP_CURSOR_STAGE)?;
            meta.remove(meta_key::ROLLUP_CURSOR_US)?;
        }
    }
    Ok(())
}

/// Starts building rollups of the readings already stored when the store has readings and no
/// rollups (an older store being opened).
pub fn start_backfill_if_needed(txn: &WriteTransaction) -> Result<(), StoreError> {
    let rollups_empty = txn.open_table(ROLLUPS)?.first()?.is_none();
    let first = txn.open_table(READINGS)?.first()?.map(|(k, _)| k.value());
    let mut meta = txn.open_table(META)?;
    if rollups_empty
        && load_cursor(&meta)?.is_none()
        && let Some(first) = first
    {
        store_cursor(&mut meta, Some(first))?;
        tracing::info!("building 10-minute rollups of the stored readings in the background");
    }
    Ok(())
}

/// Whether a reading stored at `key` is folded by whoever stores it (true) or left for the
/// backfill walk, which has not reached it yet (false).
pub fn folded_on_insert(cursor: Cursor, key: (u64, i64)) -> bool {
    cursor.is_none_or(|c| key < c)
}

/// The buckets being updated in one transaction.
#[derive(Default)]
pub struct RollupFold {
    rows: HashMap<(u64, i64), Rollup>,
}

impl RollupFold {
    /// Counts reading `r` of `stage` stored at `ts_us`.
    pub fn apply(
        &mut self,
        table: &Table<(u64, i64), &[u8]>,
        stage: u64,
        ts_us: i64,
        r: &Reading,
    ) -> Result<(), StoreError> {
        let key = (stage, bucket_of(ts_us));
        let row = match self.rows.get_mut(&key) {
            Some(row) => row,
            None => {
                let loaded = table.get(key)?.map(|v| decode(v.value())).transpose()?;
                self.rows.entry(key).or_insert(loaded.unwrap_or_default())
            }
        };
        row.count += 1;
        record_values(&mut row.channels, &mut row.extra, r);
        Ok(())
    }

    /// Writes the updated buckets.
    pub fn finish(self, table: &mut Table<(u64, i64), &[u8]>) -> Result<(), StoreError> {
        for (key, row) in self.rows {
            let bytes = encode(&row)?;
            table.insert(key, bytes.as_slice())?;
        }
        Ok(())
    }
}

/// Folds the next chunk of older readings into rollups and advances the cursor; returns the
/// new cursor (None: every stored reading is in a rollup).
pub fn backfill_step(txn: &WriteTransaction, cursor: (u64, i64)) -> Result<Cursor, StoreError> {
    let mut fold = RollupFold::default();
    let mut rollups = txn.open_table(ROLLUPS)?;
    let mut next = None;
    {
        let readings = txn.open_table(READINGS)?;
        for (n, row) in stored::from_key(&readings, cursor)?.enumerate() {
            let ((stage, ts), r) = row?;
            if n == BACKFILL_CHUNK {
                next = Some((stage, ts));
                break;
            }
            fold.apply(&rollups, stage, ts, &r)?;
        }
    }
    fold.finish(&mut rollups)?;
    store_cursor(&mut txn.open_table(META)?, next)?;
    if next.is_none() {
        tracing::info!("rollups of the stored readings built");
    }
    Ok(next)
}

/// Recomputes from the readings the rollups of every stage's buckets that overlap
/// `[from_us, to_us]` (after readings there were moved, e.g. re-dated after a clock jump).
pub fn rebuild_range(txn: &WriteTransaction, from_us: i64, to_us: i64) -> Result<(), StoreError> {
    let (first, last) = (bucket_of(from_us), bucket_of(to_us));
    let cursor = load_cursor(&txn.open_table(META)?)?;
    let mut rollups = txn.open_table(ROLLUPS)?;
    let readings = txn.open_table(READINGS)?;
    let mut fold = RollupFold::default();
    for stage in stored::stages(&readings)? {
        rollups.retain_in((stage, first)..=(stage, last), |_, _| false)?;
        let (lo, hi) = (first * 1_000_000, (last + ROLLUP_S) * 1_000_000);
        for row in stored::range(&readings, stage, lo, hi)? {
            let (key, r) = row?;
            if folded_on_insert(cursor, key) {
                let (s, ts) = key;
                let row = fold.rows.entry((s, bucket_of(ts))).or_default();
                row.count += 1;
                record_values(&mut row.channels, &mut row.extra, &r);
            }
        }
    }
    fold.finish(&mut rollups)
}

/// Whether buckets of `bucket_us` from `from_us` to `to_us` are made of whole rollups (and
/// every stored reading is in one): `from` and `bucket` on 10-minute boundaries, and `to` on
/// one too or not in the past (nothing stored after it).
pub fn covers(
    txn: &ReadTransaction,
    from_us: i64,
    to_us: i64,
    bucket_us: i64,
) -> Result<bool, StoreError> {
    let aligned = from_us.rem_euclid(ROLLUP_US) == 0
        && bucket_us % ROLLUP_US == 0
        && (to_us.rem_euclid(ROLLUP_US) == 0 || to_us >= crate::sitetime::now_us());
    Ok(aligned && load_cursor(&txn.open_table(META)?)?.is_none())
}

/// Per-bucket statistics over `[from_us, to_us)` from the rollups (see [`covers`]).
pub fn buckets(
    txn: &ReadTransaction,
    stage: Option<u64>,
    from_us: i64,
    to_us: i64,
    bucket_us: i64,
) -> Result<Vec<Bucket>, StoreError> {
    let t = txn.open_table(ROLLUPS)?;
    let (from_s, to_s) = (from_us.div_euclid(1_000_000), to_us.div_euclid(1_000_000));
    let stages = match stage {
        Some(s) => vec![s],
        None => {
            let mut stages = Vec::new();
            let mut next = Some(0u64);
            while let Some(s) = next {
                let Some((k, _)) = t.range((s, i64::MIN)..)?.next().transpose()? else {
                    break;
                };
                stages.push(k.value().0);
                next = k.value().0.checked_add(1);
            }
            stages
        }
    };
    let mut acc: BTreeMap<i64, BucketAcc> = BTreeMap::new();
    for s in stages {
        for row in t.range((s, from_s)..(s, to_s.max(from_s)))? {
            let (k, v) = row?;
            let start_us = k.value().1 * 1_000_000;
            let bucket = from_us + (start_us - from_us).div_euclid(bucket_us) * bucket_us;
            let r = decode(v.value())?;
            let entry = acc
                .entry(bucket)
                .or_insert_with(|| (0, [None; CHANNELS], Vec::new()));
            entry.0 += r.count;
            for (slot, stats) in entry.1.iter_mut().zip(r.channels.iter()) {
                if let Some(st) = stats {
                    match slot {
                        Some(x) => x.merge(st),
                        None => *slot = Some(*st),
                    }
                }
            }
            for (name, st) in r.extra {
                match entry.2.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, x)) => x.merge(&st),
                    None => entry.2.push((name, st)),
                }
            }
        }
    }
    Ok(into_buckets(acc))
}

#[cfg(test)]
mod tests;
