//! Versioned postcard encoding of stored values. postcard is not self-describing, so every
//! stored struct is wrapped in an enum whose first byte is the version: a later release adds
//! `V2` and still reads `V1` rows.

use serde::{Deserialize, Serialize};

use super::StoreError;
use super::daily::{Daily, MeterState};
use crate::reading::Reading;

#[derive(Deserialize)]
enum ReadingRow {
    V1(Reading),
}

/// Serialises exactly like `ReadingRow::V1` without cloning the value.
#[derive(Serialize)]
enum ReadingRowRef<'a> {
    V1(&'a Reading),
}

#[derive(Deserialize)]
enum DailyRow {
    V1(Daily),
}

/// Serialises exactly like `DailyRow::V1` without cloning the value.
#[derive(Serialize)]
enum DailyRowRef<'a> {
    V1(&'a Daily),
}

#[derive(Deserialize)]
enum MeterRow {
    V1(MeterState),
}

/// Serialises exactly like `MeterRow::V1` without cloning the value.
#[derive(Serialize)]
enum MeterRowRef<'a> {
    V1(&'a MeterState),
}

fn corrupt(table: &'static str) -> impl FnOnce(postcard::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        table,
        detail: e.to_string(),
    }
}

/// Encodes into `buf` (cleared first), so the hot path reuses one allocation.
pub fn encode_reading(r: &Reading, mut buf: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    buf.clear();
    postcard::to_extend(&ReadingRowRef::V1(r), buf).map_err(corrupt("readings"))
}

pub fn decode_reading(bytes: &[u8]) -> Result<Reading, StoreError> {
    let ReadingRow::V1(r) = postcard::from_bytes(bytes).map_err(corrupt("readings"))?;
    Ok(r)
}

pub fn encode_daily(d: &Daily) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(&DailyRowRef::V1(d)).map_err(corrupt("daily"))
}

pub fn decode_daily(bytes: &[u8]) -> Result<Daily, StoreError> {
    let DailyRow::V1(d) = postcard::from_bytes(bytes).map_err(corrupt("daily"))?;
    Ok(d)
}

pub fn encode_meter(m: &MeterState) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(&MeterRowRef::V1(m)).map_err(corrupt("meters"))
}

pub fn decode_meter(bytes: &[u8]) -> Result<MeterState, StoreError> {
    let MeterRow::V1(m) = postcard::from_bytes(bytes).map_err(corrupt("meters"))?;
    Ok(m)
}
