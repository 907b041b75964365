//! Moves readings stored one row per reading (schema versions 1 and 2, [`LEGACY_READINGS`])
//! into chunks. Runs when a store is opened, in transactions of [`BATCH`] readings, each
//! moving its readings atomically: a stop or power cut half-way loses nothing and the next
//! start carries on where it stopped. The old table is deleted once empty. Under systemd each
//! batch extends the start timeout, so a large store is not killed half-way.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableHandle};

use super::insert;
use crate::reading::Reading;
use crate::store::StoreError;
use crate::store::codec::decode_reading;
use crate::store::tables::{LEGACY_READINGS, READINGS};

/// Readings moved per transaction (a few MB decoded at once).
const BATCH: usize = 20_000;

/// Moves every reading of the old table into chunks; returns how many were moved.
pub fn run(db: &Database) -> Result<u64, StoreError> {
    let exists = {
        let txn = db.begin_read()?;
        txn.list_tables()?
            .any(|t| t.name() == LEGACY_READINGS.name())
    };
    if !exists {
        return Ok(0);
    }
    let started = Instant::now();
    let total = {
        let txn = db.begin_read()?;
        txn.open_table(LEGACY_READINGS)?.len()?
    };
    if total > 0 {
        tracing::info!(
            readings = total,
            "storing the readings in chunks (once, after an upgrade)"
        );
    }
    let mut moved = 0u64;
    loop {
        let txn = db.begin_write()?;
        let done = {
            let mut legacy = txn.open_table(LEGACY_READINGS)?;
            let mut by_stage: BTreeMap<u64, Vec<(i64, Reading)>> = BTreeMap::new();
            let mut last = None;
            for row in legacy.iter()?.take(BATCH) {
                let (k, v) = row?;
                let (stage, ts) = k.value();
                by_stage
                    .entry(stage)
                    .or_default()
                    .push((ts, decode_reading(v.value())?));
                last = Some((stage, ts));
            }
            let Some(last) = last else {
                drop(legacy);
                txn.delete_table(LEGACY_READINGS)?;
                txn.commit()?;
                break;
            };
            let mut chunks = txn.open_table(READINGS)?;
            for (stage, rows) in by_stage {
                moved += rows.len() as u64;
                insert(&mut chunks, stage, rows)?;
            }
            legacy.retain_in(..=last, |_, _| false)?;
            legacy.is_empty()?
        };
        txn.commit()?;
        if !done {
            tracing::info!(moved, total, "storing the readings in chunks");
        }
        // Under systemd: the start timeout runs from each batch, not from the start.
        crate::watchdog::extend_start(Duration::from_secs(60));
    }
    if total > 0 {
        tracing::info!(
            readings = moved,
            seconds = started.elapsed().as_secs_f64(),
            "readings stored in chunks"
        );
    }
    Ok(moved)
}

#[cfg(test)]
mod tests;
