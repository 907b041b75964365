//! The readings table: readings are stored in chunks ([`super::codec::chunk`]), one row per
//! run of a stage's readings, keyed by (stage, receive time of the chunk's first reading).
//! A stage's chunks never overlap: every reading of a chunk is at or after its key and before
//! the next chunk's key, in time order, one per microsecond. Compared with a row per reading
//! this stores a reading in a few bytes instead of ~60 plus a B-tree slot, and a batch of
//! readings rewrites one chunk instead of touching a leaf per few dozen readings.
//!
//! Everything that reads or writes readings goes through this module; callers see readings
//! by (stage, time) as before. New readings go to the newest chunk until it reaches about
//! [`TARGET_BYTES`]; a reading older than that chunk goes into the chunk that covers its time.

use std::vec::IntoIter;

use redb::{ReadableTable, Table};

pub mod migrate;

use super::StoreError;
use super::codec::chunk;
use crate::reading::Reading;

/// Key of a chunk: stage id, receive time (µs) of its first reading.
pub type Key = (u64, i64);

/// A chunk is closed at about this many bytes: with its key and the leaf's own header it
/// fills an 8 KiB page (a value larger than a page gets a page of its own, of the next power
/// of two), and decoding one to reach a single reading stays cheap.
pub const TARGET_BYTES: usize = 7_000;
/// No chunk is written larger than this (an estimate that overshoots is split further).
const MAX_BYTES: usize = 8_000;
/// Readings encoded to estimate how many fill a chunk (more than a chunk of ordinary readings
/// holds).
const PROBE_ROWS: usize = 4_096;

/// Stage ids that have readings, found by skipping from one stage's chunks to the next.
pub fn stages(t: &impl ReadableTable<Key, &'static [u8]>) -> Result<Vec<u64>, StoreError> {
    let mut stages = Vec::new();
    let mut from = Some(0u64);
    while let Some(s) = from {
        let next = t.range((s, i64::MIN)..)?.next().transpose()?;
        from = next.and_then(|(k, _)| {
            let stage = k.value().0;
            stages.push(stage);
            stage.checked_add(1)
        });
    }
    Ok(stages)
}

/// Receive time of a stage's oldest reading (its first chunk's key).
pub fn first_ts(
    t: &impl ReadableTable<Key, &'static [u8]>,
    stage: u64,
) -> Result<Option<i64>, StoreError> {
    let first = t.range((stage, i64::MIN)..=(stage, i64::MAX))?.next();
    Ok(first.transpose()?.map(|(k, _)| k.value().1))
}

/// Receive time of a stage's newest reading.
pub fn last_ts(
    t: &impl ReadableTable<Key, &'static [u8]>,
    stage: u64,
) -> Result<Option<i64>, StoreError> {
    let last = t.range((stage, i64::MIN)..=(stage, i64::MAX))?.next_back();
    match last.transpose()? {
        Some((_, v)) => Ok(chunk::decode(v.value())?.last().map(|(ts, _)| *ts)),
        None => Ok(None),
    }
}

/// The reading stored at `(stage, ts)`.
pub fn get(
    t: &impl ReadableTable<Key, &'static [u8]>,
    stage: u64,
    ts: i64,
) -> Result<Option<Reading>, StoreError> {
    let Some((_, bytes)) = covering(t, stage, ts)? else {
        return Ok(None);
    };
    let rows = chunk::decode(&bytes)?;
    Ok(rows
        .binary_search_by_key(&ts, |(t, _)| *t)
        .ok()
        .map(|i| rows[i].1.clone()))
}

/// Point lookups that keep the last chunk they decoded, so looking up readings near each
/// other (a queue of keys in time order, probes for a free microsecond) decodes each chunk
/// once. Only for a table that does not change while it is in use.
pub struct Lookup<'t, T> {
    table: &'t T,
    memo: Option<Decoded>,
}

/// A decoded chunk: stage, first time, first time of the next chunk, and its readings.
type Decoded = (u64, i64, Option<i64>, Vec<(i64, Reading)>);

impl<'t, T: ReadableTable<Key, &'static [u8]>> Lookup<'t, T> {
    /// Lookups in `table`.
    pub fn new(table: &'t T) -> Self {
        Lookup { table, memo: None }
    }

    /// The reading stored at `(stage, ts)`.
    pub fn get(&mut self, stage: u64, ts: i64) -> Result<Option<&Reading>, StoreError> {
        let hit = self.memo.as_ref().is_some_and(|(s, first, upper, _)| {
            *s == stage && *first <= ts && upper.is_none_or(|u| ts < u)
        });
        if !hit {
            self.memo = match covering(self.table, stage, ts)? {
                Some((first, bytes)) => {
                    let upper = next_key(self.table, stage, first)?;
                    Some((stage, first, upper, chunk::decode(&bytes)?))
                }
                None => None,
            };
        }
        let Some((_, _, _, rows)) = &self.memo else {
            return Ok(None);
        };
        Ok(rows
            .binary_search_by_key(&ts, |(t, _)| *t)
            .ok()
            .map(|i| &rows[i].1))
    }
}

/// Readings stored, over every stage (chunk heads only are read).
pub fn count(t: &impl ReadableTable<Key, &'static [u8]>) -> Result<u64, StoreError> {
    let mut n = 0u64;
    for row in t.iter()? {
        n += chunk::count(row?.1.value())? as u64;
    }
    Ok(n)
}

/// Readings of `stage` with `from <= ts < to`, oldest first.
pub fn range<'t>(
    t: &'t impl ReadableTable<Key, &'static [u8]>,
    stage: u64,
    from: i64,
    to: i64,
) -> Result<Rows<'t>, StoreError> {
    Rows::new(t, (stage, from), Some((stage, to)))
}

/// Readings from `start` on, in key order (stage, then time), over every stage.
pub fn from_key(
    t: &impl ReadableTable<Key, &'static [u8]>,
    start: Key,
) -> Result<Rows<'_>, StoreError> {
    Rows::new(t, start, None)
}

/// The chunk holding `(stage, ts)` if any: the stage's last chunk whose key is not after it.
fn covering(
    t: &impl ReadableTable<Key, &'static [u8]>,
    stage: u64,
    ts: i64,
) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
    let row = t.range((stage, i64::MIN)..=(stage, ts))?.next_back();
    Ok(row
        .transpose()?
        .map(|(k, v)| (k.value().1, v.value().to_vec())))
}

/// The key of the stage's first chunk after `ts`.
fn next_key(
    t: &impl ReadableTable<Key, &'static [u8]>,
    stage: u64,
    ts: i64,
) -> Result<Option<i64>, StoreError> {
    if ts == i64::MAX {
        return Ok(None);
    }
    let row = t.range((stage, ts + 1)..=(stage, i64::MAX))?.next();
    Ok(row.transpose()?.map(|(k, _)| k.value().1))
}

/// Readings in key order between two keys, decoded one chunk at a time.
pub struct Rows<'t> {
    chunks: redb::Range<'t, Key, &'static [u8]>,
    start: Key,
    end: Option<Key>,
    stage: u64,
    current: IntoIter<(i64, Reading)>,
}

impl<'t> Rows<'t> {
    fn new(
        t: &'t impl ReadableTable<Key, &'static [u8]>,
        start: Key,
        end: Option<Key>,
    ) -> Result<Rows<'t>, StoreError> {
        // The chunk that covers `start` begins at or before it.
        let first = covering(t, start.0, start.1)?.map_or(start.1, |(k, _)| k);
        let from = (start.0, first);
        let chunks = match end {
            Some(end) if end <= from => t.range(from..from)?,
            Some(end) => t.range(from..end)?,
            None => t.range(from..)?,
        };
        Ok(Rows {
            chunks,
            start,
            end,
            stage: start.0,
            current: Vec::new().into_iter(),
        })
    }
}

impl Iterator for Rows<'_> {
    type Item = Result<(Key, Reading), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((ts, r)) = self.current.next() {
                let key = (self.stage, ts);
                if key < self.start {
                    continue;
                }
                if self.end.is_some_and(|e| key >= e) {
                    return None;
                }
                return Some(Ok((key, r)));
            }
            let (k, v) = match self.chunks.next()? {
                Ok(row) => row,
                Err(e) => return Some(Err(e.into())),
            };
            self.stage = k.value().0;
            match chunk::decode(v.value()) {
                Ok(rows) => self.current = rows.into_iter(),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Stores `rows` of `stage` (in time order, one per microsecond), replacing readings stored
/// at the same times. Appending after the newest reading rewrites the newest chunk only.
pub fn insert(
    table: &mut Table<Key, &'static [u8]>,
    stage: u64,
    rows: Vec<(i64, Reading)>,
) -> Result<(), StoreError> {
    let mut rows = rows.into_iter().peekable();
    let mut buf = Vec::new();
    while let Some(&(ts, _)) = rows.peek() {
        // The chunk that takes `ts`: the one covering it, else the stage's first after it.
        let target = match covering(table, stage, ts)? {
            Some(c) => Some(c),
            None => match next_key(table, stage, ts)? {
                Some(k) => covering(table, stage, k)?,
                None => None,
            },
        };
        let upper = next_key(table, stage, target.as_ref().map_or(ts, |(k, _)| *k))?;
        let mut merged = match &target {
            Some((key, bytes)) => {
                let old = chunk::decode(bytes)?;
                table.remove((stage, *key))?;
                old
            }
            None => Vec::new(),
        };
        let mut new = Vec::new();
        while let Some(row) = rows.next_if(|(t, _)| upper.is_none_or(|u| *t < u)) {
            new.push(row);
        }
        merged = merge(merged, new);
        write_pieces(table, stage, &merged, &mut buf)?;
    }
    Ok(())
}

/// Removes the readings of `stage` at the times in `ts` (sorted); returns how many there were.
pub fn remove(
    table: &mut Table<Key, &'static [u8]>,
    stage: u64,
    ts: &[i64],
) -> Result<usize, StoreError> {
    let mut removed = 0;
    let mut i = 0;
    let mut buf = Vec::new();
    while i < ts.len() {
        let Some((key, bytes)) = covering(table, stage, ts[i])? else {
            i += 1;
            continue;
        };
        let upper = next_key(table, stage, key)?;
        let mut rows = chunk::decode(&bytes)?;
        let before = rows.len();
        let mut gone = Vec::new();
        while i < ts.len() && upper.is_none_or(|u| ts[i] < u) {
            gone.push(ts[i]);
            i += 1;
        }
        rows.retain(|(t, _)| gone.binary_search(t).is_err());
        if rows.len() != before {
            removed += before - rows.len();
            table.remove((stage, key))?;
            write_pieces(table, stage, &rows, &mut buf)?;
        }
    }
    Ok(removed)
}

/// Merges two runs in time order; on equal times the second wins.
fn merge(old: Vec<(i64, Reading)>, new: Vec<(i64, Reading)>) -> Vec<(i64, Reading)> {
    if old
        .last()
        .is_none_or(|(t, _)| new.first().is_none_or(|(n, _)| t < n))
    {
        let mut old = old;
        old.extend(new);
        return old;
    }
    let mut out = Vec::with_capacity(old.len() + new.len());
    let (mut a, mut b) = (old.into_iter().peekable(), new.into_iter().peekable());
    loop {
        let take_new = match (a.peek().map(|r| r.0), b.peek().map(|r| r.0)) {
            (Some(x), Some(y)) => {
                if x == y {
                    a.next();
                }
                y <= x
            }
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (None, None) => return out,
        };
        out.extend(if take_new { b.next() } else { a.next() });
    }
}

/// Writes `rows` as chunks of about [`TARGET_BYTES`]: full chunks first, the rest (the part
/// that grows when readings are appended) last. Each piece's size is estimated from the
/// readings at its start, so a long run (an import, a migration) is encoded in linear time.
fn write_pieces(
    table: &mut Table<Key, &'static [u8]>,
    stage: u64,
    rows: &[(i64, Reading)],
    buf: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let mut rest = rows;
    while !rest.is_empty() {
        let probe = rest.len().min(PROBE_ROWS);
        chunk::encode(&rest[..probe], buf);
        if probe == rest.len() && buf.len() <= TARGET_BYTES {
            table.insert((stage, rest[0].0), buf.as_slice())?;
            return Ok(());
        }
        // Readings that fill one chunk at the probe's average size, fewer while it does not
        // fit.
        let mut n = (probe * TARGET_BYTES / buf.len().max(1)).clamp(1, probe);
        loop {
            chunk::encode(&rest[..n], buf);
            if buf.len() <= MAX_BYTES || n == 1 {
                break;
            }
            n = (n * 9 / 10).max(1);
        }
        table.insert((stage, rest[0].0), buf.as_slice())?;
        rest = &rest[n..];
    }
    Ok(())
}

#[cfg(test)]
mod tests;
