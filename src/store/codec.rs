//! Versioned postcard encoding of stored values. postcard is not self-describing, so every
//! stored struct is wrapped in an enum whose first byte is the version. Most tables are at
//! version 1 through the generic [`Row`]; a type that changes gets its own enum whose `V1`
//! holds the old struct (same bytes) and a new `V2`, so old rows stay readable (accounts:
//! `users::StoredUser`).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;
use super::daily::{Daily, MeterState};
use crate::reading::Reading;

#[derive(serde::Deserialize)]
enum Row<T> {
    V1(T),
}

/// Serialises exactly like `Row::V1` without cloning the value.
#[derive(Serialize)]
enum RowRef<'a, T> {
    V1(&'a T),
}

fn corrupt(table: &'static str) -> impl FnOnce(postcard::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        table,
        detail: e.to_string(),
    }
}

/// Encodes a value of `table` into `buf` (cleared first), so hot paths reuse one allocation.
pub fn encode_into<T: Serialize>(
    table: &'static str,
    value: &T,
    mut buf: Vec<u8>,
) -> Result<Vec<u8>, StoreError> {
    buf.clear();
    postcard::to_extend(&RowRef::V1(value), buf).map_err(corrupt(table))
}

/// Encodes a value of `table`.
pub fn encode<T: Serialize>(table: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
    encode_into(table, value, Vec::new())
}

/// Decodes a value of `table`; a row that does not decode is reported as corrupt.
pub fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    let Row::V1(v) = postcard::from_bytes(bytes).map_err(corrupt(table))?;
    Ok(v)
}

/// Encodes a reading into `buf` (the ingest hot path).
pub fn encode_reading(r: &Reading, buf: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    encode_into("readings", r, buf)
}

pub fn decode_reading(bytes: &[u8]) -> Result<Reading, StoreError> {
    decode("readings", bytes)
}

pub fn encode_daily(d: &Daily) -> Result<Vec<u8>, StoreError> {
    encode("daily", d)
}

pub fn decode_daily(bytes: &[u8]) -> Result<Daily, StoreError> {
    decode("daily", bytes)
}

pub fn encode_meter(m: &MeterState) -> Result<Vec<u8>, StoreError> {
    encode("meters", m)
}

pub fn decode_meter(bytes: &[u8]) -> Result<MeterState, StoreError> {
    decode("meters", bytes)
}
