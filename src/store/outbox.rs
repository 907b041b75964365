//! The forwarding queue of the bridge to a central broker (`crate::bridge`): while `[bridge]`
//! is on, the writer gives every reading it commits a per-site sequence number `seq`, in the
//! same transaction, and queues its key here; the bridge removes the entries the central
//! broker acknowledged. The queue is the durable cursor: what is in it has not been confirmed.
//!
//! `seq` is `max(previous seq + 1, the reading's receive time in µs)`, given in commit order.
//! It grows strictly, so it never repeats while the store lives, and it stays ahead of every
//! number handed out before even after a backup from the past is restored (the counter then
//! restarts from the backup's value, but the time has moved on). It depends only on the
//! readings and their order, not on when the commit runs: after a power cut the writer
//! replays its journal over the last durable state and every replayed reading gets the seq
//! it had before (the central side may already hold it). Receive times alone cannot serve:
//! they are unique only per stage, go backwards when the clock steps back, and re-dating
//! after a clock correction changes them (and the reading's key), so the queue follows the
//! key ([`Rekey`]).

use redb::{Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use redb::{Table, WriteTransaction};

use super::readings as stored;
use super::tables::{META, READINGS};
use super::{Store, StoreError};
use crate::reading::Reading;

/// seq → reading key (stage, receive time µs), for every reading not yet acknowledged.
pub const OUTBOX: TableDefinition<u64, (u64, i64)> = TableDefinition::new("outbox");

/// Reading key → seq: the same entries by key, so re-dating and pruning find them.
pub const OUTBOX_KEYS: TableDefinition<(u64, i64), u64> = TableDefinition::new("outbox_keys");

/// Rows of `META` owned by the forwarding queue.
pub mod meta_key {
    /// The last seq handed out.
    pub const LAST_SEQ: &str = "forward_last_seq";
    /// Unforwarded readings pruned because the disk was critically full (missing: none).
    pub const LOST_TOTAL: &str = "forward_lost_total";
    /// Lowest and highest seq of the last such prune.
    pub const GAP_FIRST: &str = "forward_gap_first";
    pub const GAP_LAST: &str = "forward_gap_last";
}

/// Creates the queue's tables (with the others, so read transactions never miss them).
pub fn create_tables(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(OUTBOX)?;
    txn.open_table(OUTBOX_KEYS)?;
    Ok(())
}

/// Queues `keys` (just written in `txn`) with fresh sequence numbers.
pub fn enqueue(txn: &WriteTransaction, keys: &[(u64, i64)]) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut meta = txn.open_table(META)?;
    let mut seq = meta.get(meta_key::LAST_SEQ)?.map_or(0, |v| v.value());
    let mut outbox = txn.open_table(OUTBOX)?;
    let mut by_key = txn.open_table(OUTBOX_KEYS)?;
    for key in keys {
        seq = (seq + 1).max(key.1.max(0) as u64);
        outbox.insert(seq, *key)?;
        by_key.insert(*key, seq)?;
    }
    meta.insert(meta_key::LAST_SEQ, seq)?;
    Ok(())
}

/// Moves queue entries along with readings re-dated in one transaction.
pub struct Rekey<'t> {
    outbox: Table<'t, u64, (u64, i64)>,
    by_key: Table<'t, (u64, i64), u64>,
}

impl<'t> Rekey<'t> {
    /// Opens the queue in the re-dating transaction.
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Rekey {
            outbox: txn.open_table(OUTBOX)?,
            by_key: txn.open_table(OUTBOX_KEYS)?,
        })
    }

    /// The reading at `from` is now at `to`: a queued entry keeps its seq and follows it.
    pub fn moved(&mut self, from: (u64, i64), to: (u64, i64)) -> Result<(), StoreError> {
        let seq = self.by_key.remove(from)?.map(|v| v.value());
        if let Some(seq) = seq {
            self.by_key.insert(to, seq)?;
            self.outbox.insert(seq, to)?;
        }
        Ok(())
    }
}

/// Oldest receive time among the queued readings (over all stages), if any.
pub fn oldest_queued_us(
    by_key: &impl ReadableTable<(u64, i64), u64>,
) -> Result<Option<i64>, StoreError> {
    let mut oldest: Option<i64> = None;
    let mut from = Some(0u64);
    while let Some(s) = from {
        let Some((k, _)) = by_key.range((s, i64::MIN)..)?.next().transpose()? else {
            break;
        };
        let (stage, ts) = k.value();
        oldest = Some(oldest.map_or(ts, |o| o.min(ts)));
        from = stage.checked_add(1);
    }
    Ok(oldest)
}

/// Removes from the queue the readings at `keys`, which retention is pruning although they
/// were not forwarded; records the gap and returns (how many, lowest seq, highest seq).
pub fn drop_pruned(
    txn: &WriteTransaction,
    keys: &[(u64, i64)],
) -> Result<Option<(u64, u64, u64)>, StoreError> {
    let mut by_key = txn.open_table(OUTBOX_KEYS)?;
    let mut outbox = txn.open_table(OUTBOX)?;
    let (mut n, mut lo, mut hi) = (0u64, u64::MAX, 0u64);
    for k in keys {
        let seq = by_key.remove(*k)?.map(|v| v.value());
        if let Some(seq) = seq {
            outbox.remove(seq)?;
            n += 1;
            lo = lo.min(seq);
            hi = hi.max(seq);
        }
    }
    if n == 0 {
        return Ok(None);
    }
    let mut meta = txn.open_table(META)?;
    let lost = meta.get(meta_key::LOST_TOTAL)?.map_or(0, |v| v.value());
    meta.insert(meta_key::LOST_TOTAL, lost + n)?;
    meta.insert(meta_key::GAP_FIRST, lo)?;
    meta.insert(meta_key::GAP_LAST, hi)?;
    Ok(Some((n, lo, hi)))
}

/// One queued reading, ready to be forwarded.
#[derive(Debug, Clone)]
pub struct Queued {
    pub seq: u64,
    pub stage: u64,
    pub ts_us: i64,
    /// None when the reading is gone (it is then only removed from the queue).
    pub reading: Option<Reading>,
}

/// What the queue holds, for the status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueState {
    /// Readings waiting.
    pub waiting: u64,
    /// Receive time of the first one in seq order (the oldest committed), µs.
    pub head_us: Option<i64>,
    /// The highest seq queued (0: none).
    pub tail_seq: u64,
    /// The last seq handed out (0: none yet).
    pub last_seq: u64,
    /// Unforwarded readings pruned for space since the store was created.
    pub lost_total: u64,
    /// seq range of the last such prune.
    pub gap: Option<(u64, u64)>,
}

impl Store {
    /// Up to `max` queued readings with seq in `(after, upto]`, in seq order.
    pub fn outbox_batch(
        &self,
        after: u64,
        upto: u64,
        max: usize,
    ) -> Result<Vec<Queued>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let outbox = txn.open_table(OUTBOX)?;
        let readings = txn.open_table(READINGS)?;
        let mut out = Vec::new();
        if after >= upto {
            return Ok(out);
        }
        let mut lookup = stored::Lookup::new(&readings);
        for row in outbox.range(after + 1..=upto)?.take(max) {
            let (seq, key) = row?;
            let (stage, ts_us) = key.value();
            let reading = lookup.get(stage, ts_us)?.cloned();
            out.push(Queued {
                seq: seq.value(),
                stage,
                ts_us,
                reading,
            });
        }
        Ok(out)
    }

    /// Removes acknowledged entries. Not synced on its own: after a power cut an entry may be
    /// back and is sent again with the same seq (delivery is at least once).
    pub fn outbox_ack(&self, seqs: &[u64]) -> Result<(), StoreError> {
        let mut txn = self.db()?.begin_write()?;
        txn.set_durability(Durability::None)
            .map_err(|e| StoreError::Db(e.into()))?;
        {
            let mut outbox = txn.open_table(OUTBOX)?;
            let mut by_key = txn.open_table(OUTBOX_KEYS)?;
            for seq in seqs {
                let key = outbox.remove(*seq)?.map(|v| v.value());
                if let Some(key) = key {
                    by_key.remove(key)?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// How many readings wait, the oldest one's time and the gaps left by pruning.
    pub fn outbox_state(&self) -> Result<QueueState, StoreError> {
        let txn = self.db()?.begin_read()?;
        let outbox = txn.open_table(OUTBOX)?;
        let meta = txn.open_table(META)?;
        let get = |k| -> Result<Option<u64>, StoreError> { Ok(meta.get(k)?.map(|v| v.value())) };
        let head_us = outbox.first()?.map(|(_, k)| k.value().1);
        let tail_seq = outbox.last()?.map_or(0, |(s, _)| s.value());
        let gap = match (get(meta_key::GAP_FIRST)?, get(meta_key::GAP_LAST)?) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        };
        Ok(QueueState {
            waiting: outbox.len()?,
            head_us,
            tail_seq,
            last_seq: get(meta_key::LAST_SEQ)?.unwrap_or(0),
            lost_total: get(meta_key::LOST_TOTAL)?.unwrap_or(0),
            gap,
        })
    }

    /// Empties the queue (the bridge was turned off: nothing will forward it, and retention
    /// must not keep the readings for it). Returns how many entries were dropped.
    pub fn outbox_clear(&self) -> Result<u64, StoreError> {
        let txn = self.db()?.begin_write()?;
        let n = {
            let mut outbox = txn.open_table(OUTBOX)?;
            let n = outbox.len()?;
            outbox.retain(|_, _| false)?;
            txn.open_table(OUTBOX_KEYS)?.retain(|_, _| false)?;
            n
        };
        txn.commit()?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
