//! Re-dating after a clock jump. Readings stamped while the clock was not synchronised
//! (marked [`TimeMark::Unsynced`]) inside the unsynchronised period are moved by the measured
//! jump so they land on their real days, and so are the stages created or closed in that
//! period; the daily aggregates and meter states are then rebuilt from the readings with the
//! same replay `biogestor reindex` uses. Everything happens in the caller's write transaction:
//! an interrupted re-dating changes nothing.
//!
//! Readings of the same period that were stamped by a synchronised clock (the period overlaps
//! the time before it when the wrong clock was only a little behind) keep their time: only the
//! mark decides.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use redb::{ReadableTable, WriteTransaction};

use super::StoreError;
use super::daily::MeterRules;
use super::readings as stored;
use super::reindex::rebuild;
use super::stages::{decode_stage, encode_stage};
use super::tables::{META, READINGS, STAGES, meta_key};
use crate::reading::{Reading, TimeMark};
use crate::sitetime::local_day;

/// Readings moved per step, so memory stays bounded on a long period.
const CHUNK: usize = 4096;

/// What a re-dating changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Redated {
    /// Readings moved.
    pub readings: u64,
    /// Stages whose creation or closing time (and loading day) moved.
    pub stages: u64,
    /// Daily rows after the rebuild.
    pub days: usize,
    /// Newest reading key afterwards (µs; 0 without readings).
    pub last_reading_us: i64,
}

/// Moves by `by_us` the unsynchronised readings and the stages stamped in `[from_us, to_us]`,
/// then rebuilds the aggregates under `rules`; `progress` is called now and then.
pub fn redate(
    txn: &WriteTransaction,
    tz: Tz,
    rules: MeterRules,
    (from_us, to_us, by_us): (i64, i64, i64),
    progress: &dyn Fn(),
) -> Result<Redated, StoreError> {
    let mut out = Redated::default();
    if by_us != 0 && from_us <= to_us {
        out.readings = move_readings(txn, from_us, to_us, by_us, progress)?;
        // The 10-minute statistics where the readings were and where they are now.
        super::rollups::rebuild_range(txn, from_us, to_us)?;
        super::rollups::rebuild_range(
            txn,
            from_us.saturating_add(by_us),
            to_us.saturating_add(by_us),
        )?;
        out.stages = move_stages(txn, tz, from_us, to_us, by_us)?;
    }
    out.days = rebuild(txn, tz, rules, progress)?.1;
    let readings = txn.open_table(READINGS)?;
    for stage in stored::stages(&readings)? {
        if let Some(ts) = stored::last_ts(&readings, stage)? {
            out.last_reading_us = out.last_reading_us.max(ts);
        }
    }
    txn.open_table(META)?
        .insert(meta_key::LAST_READING_US, out.last_reading_us.max(0) as u64)?;
    Ok(out)
}

fn move_readings(
    txn: &WriteTransaction,
    from_us: i64,
    to_us: i64,
    by_us: i64,
    progress: &dyn Fn(),
) -> Result<u64, StoreError> {
    let mut t = txn.open_table(READINGS)?;
    let mut queue = super::outbox::Rekey::open(txn)?;
    let mut moved = 0u64;
    for stage in stored::stages(&t)? {
        let mut cursor = from_us;
        loop {
            // One chunk of unsynchronised rows, and where scanning stopped. Rows moved earlier
            // carry the re-dated mark, so scanning over them again moves nothing twice.
            let mut batch = Vec::new();
            let mut next = None;
            for row in stored::range(&t, stage, cursor, to_us.saturating_add(1))? {
                let ((_, ts), mut r) = row?;
                if batch.len() == CHUNK {
                    next = Some(ts);
                    break;
                }
                if r.clock == TimeMark::Unsynced {
                    r.clock = TimeMark::Redated { by_us };
                    batch.push((ts, r));
                }
            }
            let old: Vec<i64> = batch.iter().map(|(ts, _)| *ts).collect();
            stored::remove(&mut t, stage, &old)?;
            // Each reading's new time, the next free microsecond from its own plus the jump.
            let mut moved_to: BTreeMap<i64, Reading> = BTreeMap::new();
            {
                let mut lookup = stored::Lookup::new(&t);
                for (ts, r) in batch {
                    let mut key = ts.saturating_add(by_us);
                    while moved_to.contains_key(&key) || lookup.get(stage, key)?.is_some() {
                        key += 1;
                    }
                    queue.moved((stage, ts), (stage, key))?;
                    moved_to.insert(key, r);
                }
            }
            moved += moved_to.len() as u64;
            stored::insert(&mut t, stage, moved_to.into_iter().collect())?;
            progress();
            match next {
                Some(ts) => cursor = ts,
                None => break,
            }
        }
    }
    Ok(moved)
}

fn move_stages(
    txn: &WriteTransaction,
    tz: Tz,
    from_us: i64,
    to_us: i64,
    by_us: i64,
) -> Result<u64, StoreError> {
    let mut t = txn.open_table(STAGES)?;
    let mut changed = Vec::new();
    for row in t.iter()? {
        let mut s = decode_stage(row?.1.value())?;
        let inside = |us: i64| (from_us..=to_us).contains(&us);
        let mut touched = false;
        if inside(s.created_us) {
            // A loading day left at its default (the wrong "today") follows the creation.
            if s.date == local_day(tz, s.created_us) {
                s.date = local_day(tz, s.created_us + by_us);
            }
            s.created_us += by_us;
            touched = true;
        }
        if let Some(c) = s.closed_us.filter(|c| inside(*c)) {
            s.closed_us = Some(c + by_us);
            touched = true;
        }
        if touched {
            changed.push(s);
        }
    }
    for s in &changed {
        t.insert(s.id, encode_stage(s)?.as_slice())?;
    }
    Ok(changed.len() as u64)
}

impl super::Store {
    /// Start of the stored unsynchronised-clock period (see `crate::clock`), if one is open.
    pub fn clock_period(&self) -> Result<Option<i64>, StoreError> {
        let txn = redb::ReadableDatabase::begin_read(&*self.db()?)?;
        let meta = txn.open_table(META)?;
        Ok(meta
            .get(meta_key::CLOCK_UNSYNCED_FROM_US)?
            .map(|v| v.value() as i64))
    }

    /// Opens (`Some`) or closes (`None`) the stored unsynchronised-clock period.
    pub fn set_clock_period(&self, from_us: Option<i64>) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            match from_us {
                Some(us) => meta.insert(meta_key::CLOCK_UNSYNCED_FROM_US, us as u64)?,
                None => meta.remove(meta_key::CLOCK_UNSYNCED_FROM_US)?,
            };
        }
        txn.commit()?;
        Ok(())
    }
}

/// Closes the stored unsynchronised-clock period inside `txn` (with the re-dating).
pub fn close_period(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(META)?
        .remove(meta_key::CLOCK_UNSYNCED_FROM_US)?;
    Ok(())
}
