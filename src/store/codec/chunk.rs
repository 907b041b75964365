//! Column-wise encoding of a run of readings (a *chunk*): the readings table stores one chunk
//! per row, and the journal one per stage of a batch, so a reading costs a few bytes instead
//! of a row of its own (key, postcard struct, B-tree slot).
//!
//! What makes it small is what sensors send: readings a regular interval apart (receive times
//! stored as delta-of-delta), one topic (a table of sources), the same clock mark (runs), and
//! values published as short decimals (`35.2`, `1006.1`): each channel is stored as integers
//! scaled by the smallest power of ten that gives every value back bit for bit, as differences
//! from the previous value. A channel whose values are not short decimals is stored as raw
//! `f64` bits. Nothing is rounded: decoding gives back exactly the readings encoded, in the
//! order given (times need not be sorted or distinct).
//!
//! Layout (version 1; integers are LEB128 varints, signed ones zigzag-encoded):
//! `[1u8][n]`, then for `n > 0`: times (first, first difference, then differences of
//! differences); sources (`k`, `k` strings, and per reading an index when `k > 1`); clock
//! marks as runs (`r`, then `r` × `[len][tag u8][by_us if tag 2]`); the sensor times as a
//! column (offsets from the receive time in ms); the channel count `c` and `c` channel
//! columns; extra fields (`e`; if `e > 0`: a name table, per reading a count, per field a
//! name index and the raw `f64`). A column is `[presence u8: 0 none, 1 all, 2 bitmap]`
//! (+ bitmap), then for any value `[scale u8: 0..=9 decimals, 255 raw]` and the values.
//! Columns are length-prefixed by the channel count, so a channel can be added: chunks
//! written with fewer channels decode with the new ones empty, extra columns are skipped.

mod cursor;

use std::borrow::Borrow;

use crate::reading::{CHANNELS, Reading, TimeMark};
use crate::store::StoreError;
use cursor::Cursor;

const VERSION: u8 = 1;
const RAW: u8 = 255;
/// Largest integer an `f64` holds exactly: scaled values stay within it.
const EXACT: f64 = 9_007_199_254_740_992.0;
/// Powers of ten, all exact in an `f64`; the index is the number of decimals.
const POW10: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// Encodes `rows` (receive time in µs, reading) into `out` (cleared first).
pub fn encode<R: Borrow<Reading>>(rows: &[(i64, R)], out: &mut Vec<u8>) {
    encode_columns(rows, CHANNELS, |i, c| rows[i].1.borrow().values[c], out);
}

/// [`encode`] with `channels` channel columns whose values `value(row, channel)` gives (a
/// build with more or fewer channels than this one writes chunks like these).
fn encode_columns<R: Borrow<Reading>>(
    rows: &[(i64, R)],
    channels: usize,
    value: impl Fn(usize, usize) -> Option<f64>,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.push(VERSION);
    put_u(out, rows.len() as u64);
    if rows.is_empty() {
        return;
    }
    let reading = |i: usize| rows[i].1.borrow();
    // Times: first, first difference, then differences of differences.
    let mut prev = 0i64;
    let mut prev_delta = 0i64;
    for (i, (ts, _)) in rows.iter().enumerate() {
        match i {
            0 => put_i(out, *ts),
            _ => {
                let delta = ts.wrapping_sub(prev);
                put_i(out, delta.wrapping_sub(prev_delta));
                prev_delta = delta;
            }
        }
        prev = *ts;
    }
    // Sources.
    let mut sources: Vec<&str> = Vec::new();
    let mut index = Vec::with_capacity(rows.len());
    for i in 0..rows.len() {
        let s = reading(i).source.as_str();
        let at = match sources.iter().position(|x| *x == s) {
            Some(at) => at,
            None => {
                sources.push(s);
                sources.len() - 1
            }
        };
        index.push(at as u64);
    }
    put_u(out, sources.len() as u64);
    for s in &sources {
        put_str(out, s);
    }
    if sources.len() > 1 {
        for at in index {
            put_u(out, at);
        }
    }
    // Clock marks as runs.
    let mut runs: Vec<(u64, TimeMark)> = Vec::new();
    for i in 0..rows.len() {
        let mark = reading(i).clock;
        match runs.last_mut() {
            Some((len, m)) if *m == mark => *len += 1,
            _ => runs.push((1, mark)),
        }
    }
    put_u(out, runs.len() as u64);
    for (len, mark) in runs {
        put_u(out, len);
        match mark {
            TimeMark::Synced => out.push(0),
            TimeMark::Unsynced => out.push(1),
            TimeMark::Redated { by_us } => {
                out.push(2);
                put_i(out, by_us);
            }
        }
    }
    // Sensor times, as offsets from the receive time.
    let sensor: Vec<Option<i64>> = (0..rows.len())
        .map(|i| {
            let ms = rows[i].0.div_euclid(1000);
            reading(i).sensor_ts_ms.map(|s| s.wrapping_sub(ms))
        })
        .collect();
    put_int_column(out, &sensor);
    // Channels.
    put_u(out, channels as u64);
    let mut column = Vec::with_capacity(rows.len());
    for c in 0..channels {
        column.clear();
        column.extend((0..rows.len()).map(|i| value(i, c)));
        put_float_column(out, &column);
    }
    // Extra fields.
    let extras: usize = (0..rows.len()).map(|i| reading(i).extra.len()).sum();
    put_u(out, extras as u64);
    if extras > 0 {
        let mut names: Vec<&str> = Vec::new();
        for i in 0..rows.len() {
            for (name, _) in &reading(i).extra {
                if !names.contains(&name.as_str()) {
                    names.push(name);
                }
            }
        }
        put_u(out, names.len() as u64);
        for n in &names {
            put_str(out, n);
        }
        for i in 0..rows.len() {
            let extra = &reading(i).extra;
            put_u(out, extra.len() as u64);
            for (name, v) in extra {
                let at = names.iter().position(|n| *n == name).unwrap_or(0);
                put_u(out, at as u64);
                out.extend_from_slice(&v.to_bits().to_le_bytes());
            }
        }
    }
}

/// How many readings a chunk holds, read from its head only.
pub fn count(bytes: &[u8]) -> Result<usize, StoreError> {
    let mut r = Cursor { bytes, at: 0 };
    r.version()?;
    r.len()
}

/// Decodes a chunk: its readings in the order they were encoded.
pub fn decode(bytes: &[u8]) -> Result<Vec<(i64, Reading)>, StoreError> {
    let mut r = Cursor { bytes, at: 0 };
    r.version()?;
    let n = r.len()?;
    if n == 0 {
        return r.end(Vec::new());
    }
    let mut ts = Vec::with_capacity(n);
    let (mut prev, mut delta) = (0i64, 0i64);
    for i in 0..n {
        let v = r.i()?;
        match i {
            0 => prev = v,
            _ => {
                delta = delta.wrapping_add(v);
                prev = prev.wrapping_add(delta);
            }
        }
        ts.push(prev);
    }
    let k = r.len()?;
    let mut sources = Vec::with_capacity(k);
    for _ in 0..k {
        sources.push(r.string()?);
    }
    let mut rows: Vec<(i64, Reading)> = Vec::with_capacity(n);
    for (i, t) in ts.iter().enumerate() {
        let at = if k > 1 { r.len()? } else { 0 };
        let source = sources
            .get(at)
            .cloned()
            .ok_or_else(|| corrupt(format!("source {at} of reading {i} not in the table")))?;
        rows.push((
            *t,
            Reading {
                values: [None; CHANNELS],
                extra: Vec::new(),
                sensor_ts_ms: None,
                source,
                clock: TimeMark::Synced,
            },
        ));
    }
    let runs = r.len()?;
    let mut i = 0usize;
    for _ in 0..runs {
        let len = r.len()?;
        let mark = match r.byte()? {
            0 => TimeMark::Synced,
            1 => TimeMark::Unsynced,
            2 => TimeMark::Redated { by_us: r.i()? },
            t => return Err(corrupt(format!("unknown clock mark {t}"))),
        };
        let end = i
            .checked_add(len)
            .filter(|e| *e <= n)
            .ok_or_else(|| corrupt("clock runs longer than the chunk".into()))?;
        for row in &mut rows[i..end] {
            row.1.clock = mark;
        }
        i = end;
    }
    for (row, offset) in rows.iter_mut().zip(r.int_column(n)?) {
        row.1.sensor_ts_ms = offset.map(|o| o.wrapping_add(row.0.div_euclid(1000)));
    }
    let channels = r.len()?;
    for c in 0..channels {
        let column = r.float_column(n)?;
        if c < CHANNELS {
            for (row, v) in rows.iter_mut().zip(column) {
                row.1.values[c] = v;
            }
        }
    }
    if r.len()? > 0 {
        let k = r.len()?;
        let mut names = Vec::with_capacity(k);
        for _ in 0..k {
            names.push(r.string()?);
        }
        for row in rows.iter_mut() {
            let m = r.len()?;
            for _ in 0..m {
                let at = r.len()?;
                let name = names
                    .get(at)
                    .cloned()
                    .ok_or_else(|| corrupt(format!("extra field {at} not in the table")))?;
                row.1.extra.push((name, f64::from_bits(r.u64_le()?)));
            }
        }
    }
    r.end(rows)
}

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        table: "readings",
        detail,
    }
}

fn put_u(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_i(out: &mut Vec<u8>, v: i64) {
    put_u(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Writes which rows have a value: nothing more when all or none do.
fn put_presence<T>(out: &mut Vec<u8>, column: &[Option<T>]) {
    let present = column.iter().filter(|v| v.is_some()).count();
    if present == 0 {
        out.push(0);
    } else if present == column.len() {
        out.push(1);
    } else {
        out.push(2);
        for bits in column.chunks(8) {
            let mut b = 0u8;
            for (j, v) in bits.iter().enumerate() {
                if v.is_some() {
                    b |= 1 << j;
                }
            }
            out.push(b);
        }
    }
}

/// An integer column: presence, then differences from the previous present value.
fn put_int_column(out: &mut Vec<u8>, column: &[Option<i64>]) {
    put_presence(out, column);
    let mut prev = 0i64;
    for v in column.iter().flatten() {
        put_i(out, v.wrapping_sub(prev));
        prev = *v;
    }
}

/// The fewest decimals that give `v` back exactly, if at most 9.
fn decimals(v: f64) -> Option<u8> {
    (0..POW10.len()).find_map(|k| scaled(v, k as u8).map(|_| k as u8))
}

/// `v` times 10^k as an exact integer, when dividing it back gives `v` bit for bit.
fn scaled(v: f64, k: u8) -> Option<i64> {
    let p = POW10[usize::from(k)];
    let s = (v * p).round();
    // NaN and infinities fail this too.
    if s.is_nan() || s.abs() > EXACT {
        return None;
    }
    let i = s as i64;
    ((i as f64 / p).to_bits() == v.to_bits()).then_some(i)
}

/// A channel column: presence, scale, then scaled differences (or raw bits).
fn put_float_column(out: &mut Vec<u8>, column: &[Option<f64>]) {
    put_presence(out, column);
    if column.iter().all(Option::is_none) {
        return;
    }
    let scale = column
        .iter()
        .flatten()
        .try_fold(0u8, |k, v| decimals(*v).map(|d| k.max(d)));
    let ints: Option<Vec<i64>> =
        scale.and_then(|k| column.iter().flatten().map(|v| scaled(*v, k)).collect());
    match (scale, ints) {
        (Some(k), Some(ints)) => {
            out.push(k);
            let mut prev = 0i64;
            for v in ints {
                put_i(out, v.wrapping_sub(prev));
                prev = v;
            }
        }
        _ => {
            out.push(RAW);
            for v in column.iter().flatten() {
                out.extend_from_slice(&v.to_bits().to_le_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests;
