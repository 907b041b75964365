//! Filling stages (*llenados*). At most one is active; creating a stage closes the active one
//! in the same transaction. The active stage's id is also kept in memory, because every
//! incoming reading is attributed to it.

use std::sync::atomic::Ordering;

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::codec;
use super::tables::STAGES;
use super::{Store, StoreError};
use crate::sitetime::DayNumber;

/// A stored stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub id: u64,
    pub number: u32,
    /// Loading day (site-local), as days since 0001-01-01.
    pub date: DayNumber,
    pub people: String,
    pub material_type: String,
    pub material_amount_kg: f64,
    pub material_humidity_pct: f64,
    pub added_water_m3: f64,
    pub temperature_c: f64,
    pub active: bool,
    pub created_us: i64,
    pub closed_us: Option<i64>,
}

/// The operator-supplied fields of a stage (after defaults are applied).
#[derive(Debug, Clone)]
pub struct StageFields {
    pub number: Option<u32>,
    pub date: DayNumber,
    pub people: String,
    pub material_type: String,
    pub material_amount_kg: f64,
    pub material_humidity_pct: f64,
    pub added_water_m3: f64,
    pub temperature_c: f64,
}

pub(super) fn encode_stage(v: &Stage) -> Result<Vec<u8>, StoreError> {
    codec::encode("stages", v)
}

pub(super) fn decode_stage(bytes: &[u8]) -> Result<Stage, StoreError> {
    codec::decode("stages", bytes)
}

/// Why a stage change was refused.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("no such stage")]
    NotFound,
    #[error("the stage is closed")]
    Closed,
    /// The number is used; the second value is the next free one (after the highest).
    #[error("stage number {0} is already used (next free: {1})")]
    NumberTaken(u32, u32),
    #[error(transparent)]
    Store(#[from] StoreError),
}

super::from_redb_errors!(StageError, |e| StageError::Store(StoreError::Db(e)));

/// The stage `id`, which must still be active to be changed.
fn active_stage_row(t: &redb::Table<u64, &[u8]>, id: u64) -> Result<Stage, StageError> {
    let stage = match t.get(id)? {
        Some(v) => decode_stage(v.value())?,
        None => return Err(StageError::NotFound),
    };
    if stage.active {
        Ok(stage)
    } else {
        Err(StageError::Closed)
    }
}

/// Window of the measured digester temperature a new stage defaults to.
pub const MEASURED_TEMPERATURE_WINDOW_US: i64 = 24 * 3_600_000_000;

impl Store {
    /// Mean of the digester temperature channel over the [`MEASURED_TEMPERATURE_WINDOW_US`]
    /// before `now_us` (all stages), with the number of readings; `None` without readings.
    /// A new stage's temperature defaults to it, as the original system documented.
    pub fn measured_temperature(&self, now_us: i64) -> Result<Option<(f64, u64)>, StoreError> {
        let from = now_us - MEASURED_TEMPERATURE_WINDOW_US;
        let buckets = self.buckets(None, from, now_us + 1, MEASURED_TEMPERATURE_WINDOW_US + 1)?;
        let (mut sum, mut count) = (0.0, 0u64);
        for b in &buckets {
            for c in &b.channels {
                if c.name == crate::reading::Channel::Temperatura.name() {
                    sum += c.stats.sum;
                    count += c.stats.count;
                }
            }
        }
        Ok((count > 0 && sum.is_finite()).then(|| (sum / count as f64, count)))
    }

    /// Every stage, newest first.
    pub fn stages(&self) -> Result<Vec<Stage>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(STAGES)?;
        let mut out = Vec::new();
        for row in t.iter()?.rev() {
            out.push(decode_stage(row?.1.value())?);
        }
        Ok(out)
    }

    /// The stage with `id`.
    pub fn stage(&self, id: u64) -> Result<Option<Stage>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(STAGES)?;
        t.get(id)?.map(|v| decode_stage(v.value())).transpose()
    }

    /// Id of the active stage, 0 when none (readings are then stored under stage 0).
    pub fn active_stage_id(&self) -> u64 {
        self.active_stage.load(Ordering::Relaxed)
    }

    /// Reads the active stage from the table (at open).
    pub(super) fn load_active_stage(&self) -> Result<(), StoreError> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(STAGES)?;
        let mut active = 0;
        for row in t.iter()?.rev() {
            let s = decode_stage(row?.1.value())?;
            if s.active {
                active = s.id;
                break;
            }
        }
        self.active_stage.store(active, Ordering::Relaxed);
        Ok(())
    }

    /// Creates a stage, closing the active one; returns the new stage and the closed one.
    pub fn create_stage(
        &self,
        f: StageFields,
        now_us: i64,
    ) -> Result<(Stage, Option<Stage>), StageError> {
        let txn = self.db()?.begin_write()?;
        let (stage, closed) = {
            let mut t = txn.open_table(STAGES)?;
            let mut all = Vec::new();
            for row in t.iter()? {
                all.push(decode_stage(row?.1.value())?);
            }
            let next_free = all.iter().map(|s| s.number).max().unwrap_or(0) + 1;
            let number = match f.number {
                Some(n) if all.iter().any(|s| s.number == n) => {
                    return Err(StageError::NumberTaken(n, next_free));
                }
                Some(n) => n,
                None => next_free,
            };
            let mut closed = None;
            for mut s in all.iter().filter(|s| s.active).cloned() {
                s.active = false;
                s.closed_us = Some(now_us);
                t.insert(s.id, encode_stage(&s)?.as_slice())?;
                closed = Some(s);
            }
            let id = all.iter().map(|s| s.id).max().unwrap_or(0) + 1;
            let stage = Stage {
                id,
                number,
                date: f.date,
                people: f.people,
                material_type: f.material_type,
                material_amount_kg: f.material_amount_kg,
                material_humidity_pct: f.material_humidity_pct,
                added_water_m3: f.added_water_m3,
                temperature_c: f.temperature_c,
                active: true,
                created_us: now_us,
                closed_us: None,
            };
            t.insert(id, encode_stage(&stage)?.as_slice())?;
            (stage, closed)
        };
        txn.commit()?;
        self.active_stage.store(stage.id, Ordering::Relaxed);
        Ok((stage, closed))
    }

    /// Applies a correction to the active stage `id`.
    pub fn update_stage(&self, id: u64, f: impl FnOnce(&mut Stage)) -> Result<Stage, StageError> {
        let txn = self.db()?.begin_write()?;
        let stage = {
            let mut t = txn.open_table(STAGES)?;
            let mut stage = active_stage_row(&t, id)?;
            let before = stage.number;
            f(&mut stage);
            stage.id = id;
            stage.active = true;
            if stage.number != before {
                let mut taken = false;
                let mut highest = 0;
                for row in t.iter()? {
                    let other = decode_stage(row?.1.value())?;
                    highest = highest.max(other.number);
                    taken |= other.id != id && other.number == stage.number;
                }
                if taken {
                    return Err(StageError::NumberTaken(stage.number, highest + 1));
                }
            }
            t.insert(id, encode_stage(&stage)?.as_slice())?;
            stage
        };
        txn.commit()?;
        Ok(stage)
    }

    /// Closes the active stage `id`; later readings go to stage 0 until a new stage starts.
    pub fn close_stage(&self, id: u64, now_us: i64) -> Result<Stage, StageError> {
        let txn = self.db()?.begin_write()?;
        let stage = {
            let mut t = txn.open_table(STAGES)?;
            let mut stage = active_stage_row(&t, id)?;
            stage.active = false;
            stage.closed_us = Some(now_us);
            t.insert(id, encode_stage(&stage)?.as_slice())?;
            stage
        };
        txn.commit()?;
        let _ = self
            .active_stage
            .compare_exchange(id, 0, Ordering::Relaxed, Ordering::Relaxed);
        Ok(stage)
    }
}
