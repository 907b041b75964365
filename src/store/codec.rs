//! Versioned postcard encoding of stored values. postcard is not self-describing, so every
//! stored struct is wrapped in an enum whose first byte is the version. Most tables are at
//! version 1 through the generic [`Row`]; a type that changes gets its own enum whose earlier
//! variants hold the old structs (same bytes, in [`legacy`]) so old rows stay readable forever
//! and no migration pass has to rewrite a large store at start-up.
//!
//! Readings are at version 2: their per-channel arrays are stored length-prefixed (see
//! [`channel_array`]), so adding a sensor channel changes no stored byte and rows written with
//! fewer or more channels still decode. Version 1 stored them as fixed-length tuples of 10,
//! which any change of [`crate::reading::CHANNELS`] would have made unreadable.
//!
//! Readings are at version 3 since the clock mark was added (whether the appliance's clock was
//! synchronised when the reading was stamped, see [`crate::reading::TimeMark`]); version-2
//! rows decode as synchronised.
//!
//! Daily rows are at version 4 (version 3 — version 2 plus the flow coverage and the
//! discarded samples of each meter — plus the normal volumes of each method) and meter states
//! at version 3 (version 2 — counter baselines with their time, unconfirmed chains, recent
//! message keys — plus the newest pressure, temperature, humidity and methane readings).
//! Rows of earlier versions decode with the new fields empty; `biogestor reindex` recomputes
//! them from the readings. Accounts have their own versions
//! (`users::StoredUser`).

pub mod channel_array;
pub mod chunk;
mod legacy;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;
use super::daily::{Daily, MeterState};
use crate::reading::Reading;

/// Stored forms of a reading.
#[derive(serde::Deserialize)]
enum ReadingRow {
    V1(legacy::ReadingV1),
    V2(legacy::ReadingV2),
    V3(Reading),
}

/// Serialises exactly like `ReadingRow::V3` without cloning.
#[derive(Serialize)]
enum ReadingRowRef<'a> {
    #[allow(dead_code)]
    V1(()),
    #[allow(dead_code)]
    V2(()),
    V3(&'a Reading),
}

/// Stored forms of a daily aggregate (decoded once per row and converted at once, so the
/// size of the old variants does not matter).
#[derive(serde::Deserialize)]
#[allow(clippy::large_enum_variant)]
enum DailyRow {
    V1(legacy::DailyV1),
    V2(legacy::DailyV2),
    V3(legacy::DailyV3),
    V4(Daily),
}

/// Serialises exactly like `DailyRow::V4` without cloning.
#[derive(Serialize)]
enum DailyRowRef<'a> {
    #[allow(dead_code)]
    V1(()),
    #[allow(dead_code)]
    V2(()),
    #[allow(dead_code)]
    V3(()),
    V4(&'a Daily),
}

/// Stored forms of a source's meter state.
#[derive(serde::Deserialize)]
enum MeterRow {
    V1(legacy::MeterStateV1),
    V2(legacy::MeterStateV2),
    V3(MeterState),
}

/// Serialises exactly like `MeterRow::V3` without cloning.
#[derive(Serialize)]
enum MeterRowRef<'a> {
    #[allow(dead_code)]
    V1(()),
    #[allow(dead_code)]
    V2(()),
    V3(&'a MeterState),
}

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
pub fn encode_reading(r: &Reading, mut buf: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    buf.clear();
    postcard::to_extend(&ReadingRowRef::V3(r), buf).map_err(corrupt("readings"))
}

/// Decodes a reading of any stored version.
pub fn decode_reading(bytes: &[u8]) -> Result<Reading, StoreError> {
    Ok(
        match postcard::from_bytes(bytes).map_err(corrupt("readings"))? {
            ReadingRow::V1(old) => old.into(),
            ReadingRow::V2(old) => old.into(),
            ReadingRow::V3(r) => r,
        },
    )
}

/// Encodes a daily aggregate.
pub fn encode_daily(d: &Daily) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(&DailyRowRef::V4(d)).map_err(corrupt("daily"))
}

/// Decodes a daily aggregate of any stored version.
pub fn decode_daily(bytes: &[u8]) -> Result<Daily, StoreError> {
    Ok(
        match postcard::from_bytes(bytes).map_err(corrupt("daily"))? {
            DailyRow::V1(old) => old.into(),
            DailyRow::V2(old) => old.into(),
            DailyRow::V3(old) => old.into(),
            DailyRow::V4(d) => d,
        },
    )
}

/// Encodes a source's meter state.
pub fn encode_meter(m: &MeterState) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(&MeterRowRef::V3(m)).map_err(corrupt("meters"))
}

/// Decodes a meter state of any stored version.
pub fn decode_meter(bytes: &[u8]) -> Result<MeterState, StoreError> {
    Ok(
        match postcard::from_bytes(bytes).map_err(corrupt("meters"))? {
            MeterRow::V1(old) => old.into(),
            MeterRow::V2(old) => old.into(),
            MeterRow::V3(m) => m,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::{CHANNELS, Channel};
    use crate::store::daily::counter::{Chain, ChainKind, Mark, UNKNOWN_TIME};

    /// Rows exactly as the first version wrote them (checked in; never regenerate).
    const V1_READING: &[u8] = include_bytes!("fixtures/v1-reading.bin");
    const V1_DAILY: &[u8] = include_bytes!("fixtures/v1-daily.bin");
    const V1_METER: &[u8] = include_bytes!("fixtures/v1-meter.bin");
    /// A daily row as version 2 wrote it (length-prefixed channels; checked in; never
    /// regenerate).
    const V2_DAILY: &[u8] = include_bytes!("fixtures/v2-daily.bin");
    /// A daily row as version 3 wrote it (coverage and discards; checked in; never
    /// regenerate).
    const V3_DAILY: &[u8] = include_bytes!("fixtures/v3-daily.bin");
    /// A meter state as version 2 wrote it (checked in; never regenerate).
    const V2_METER: &[u8] = include_bytes!("fixtures/v2-meter.bin");

    #[test]
    fn first_version_rows_still_decode() {
        let r = decode_reading(V1_READING).expect("v1 reading");
        assert_eq!(r.get(Channel::Presion), Some(1013.25));
        assert_eq!(r.get(Channel::Temperatura), Some(35.5));
        assert_eq!(r.get(Channel::GasTotal), Some(1234.5));
        assert_eq!(r.get(Channel::Humedad), None);
        assert_eq!(r.extra, vec![("ph".to_string(), 7.1)]);
        assert_eq!(r.sensor_ts_ms, Some(1_764_500_000_000));
        assert_eq!(r.source, "Prueba");

        let d = decode_daily(V1_DAILY).expect("v1 daily");
        assert_eq!(d.count, 2);
        let t = d.channel(Channel::Temperatura).expect("temperature stats");
        assert_eq!((t.count, t.min, t.max), (2, 35.5, 35.5));
        assert_eq!(d.channel(Channel::CaudalGasLmin).map(|s| s.count), Some(1));
        assert!((d.gas.from_counter.expect("counter") - 0.3).abs() < 1e-9);
        assert_eq!(d.extra.len(), 1);

        let m = decode_meter(V1_METER).expect("v1 meter");
        let base = m.gas_total.base.expect("gas baseline");
        assert_eq!((base.value, base.at_us), (1234.8, UNKNOWN_TIME));
        assert_eq!(m.gas_total.chain, None);
        assert!(m.recent.is_empty());
    }

    #[test]
    fn second_version_daily_rows_still_decode() {
        let d = decode_daily(V2_DAILY).expect("v2 daily");
        assert_eq!(d.count, 3);
        assert_eq!(d.first_us, 1_767_250_800_000_000);
        assert_eq!(d.last_us, 1_767_250_920_000_000);
        let t = d.channel(Channel::Temperatura).expect("temperature stats");
        assert_eq!((t.count, t.min, t.max, t.sum), (2, 34.5, 35.5, 70.0));
        assert_eq!(d.channel(Channel::Presion).map(|s| s.count), Some(1));
        assert_eq!(d.channel(Channel::Humedad), None);
        assert_eq!(d.extra.len(), 1);
        assert_eq!(d.extra[0].0, "ph");
        assert_eq!(d.gas.from_counter, Some(0.25));
        assert_eq!(d.gas.from_delta, Some(0.5));
        assert_eq!(d.gas.from_legacy, Some(0.125));
        assert!((d.gas.from_flow.expect("flow") - 0.006).abs() < 1e-12);
        assert!((d.biol.from_delta.expect("biol") - 0.05).abs() < 1e-12);
        assert_eq!(d.biol.from_counter, None);
    }

    #[test]
    fn third_version_daily_rows_and_second_version_meters_still_decode() {
        let d = decode_daily(V3_DAILY).expect("v3 daily");
        assert_eq!(d.count, 3);
        let t = d.channel(Channel::Temperatura).expect("temperature stats");
        assert_eq!((t.count, t.min, t.max, t.sum), (2, 34.5, 35.5, 70.0));
        assert_eq!(d.gas.from_counter, Some(0.25));
        assert_eq!(d.gas.flow_covered_us, 90 * 60_000_000);
        assert_eq!(d.gas.discards.glitch, 2);
        assert_eq!(d.gas.discards.duplicate, 3);
        assert_eq!(d.gas.discards.meter_change, 1);
        assert_eq!(d.biol.discards.jitter, 1);
        assert_eq!(d.biol.from_counter, Some(0.75));
        assert_eq!(
            d.gas.normal,
            Default::default(),
            "normal volumes wait for a reindex"
        );

        let m = decode_meter(V2_METER).expect("v2 meter");
        let base = m.gas_total.base.expect("gas baseline");
        assert_eq!((base.value, base.at_us), (1234.8, 1_767_250_800_000_000));
        let chain = m.gas_total.chain.expect("chain");
        assert_eq!((chain.kind, chain.len), (ChainKind::Jump, 2));
        assert_eq!(
            chain.last,
            Mark {
                value: 99_999.1,
                at_us: 1_767_250_920_000_000
            }
        );
        let flow = m.flow.expect("flow sample");
        assert_eq!((flow.at_us, flow.lmin), (1_767_250_900_000_000, 6.5));
        assert_eq!(m.recent, vec![1, u64::MAX, 42]);
        assert_eq!(m.conditions, Default::default());
    }

    #[test]
    fn current_versions_round_trip_and_are_what_is_written() {
        let mut r = decode_reading(V1_READING).expect("v1");
        r.clock = crate::reading::TimeMark::Redated { by_us: -42 };
        let bytes = encode_reading(&r, Vec::new()).expect("encode");
        assert_eq!(bytes[0], 2, "reading version tag 3 (index 2)");
        assert_eq!(decode_reading(&bytes).expect("v3"), r);

        let mut d = decode_daily(V2_DAILY).expect("v2");
        d.gas.flow_covered_us = 90 * 60_000_000;
        d.gas.discards.glitch = 2;
        d.gas.discards.duplicate = 3;
        d.biol.discards.jitter = 1;
        d.gas.normal.counter = Some(crate::store::daily::Normal {
            nm3: 0.163,
            ch4_nm3: 0.1,
            nm3_quality: 0.15,
        });
        let bytes = encode_daily(&d).expect("encode");
        assert_eq!(bytes[0], 3, "daily version tag 4 (index 3)");
        assert_eq!(decode_daily(&bytes).expect("v4"), d);

        let mut m = decode_meter(V1_METER).expect("v1");
        let mark = |value, at_us| Mark { value, at_us };
        m.gas_total.base = Some(mark(1234.8, 1_767_250_800_000_000));
        m.gas_total.chain = Some(Chain {
            kind: ChainKind::Jump,
            first: mark(99_999.0, 1_767_250_860_000_000),
            last: mark(99_999.1, 1_767_250_920_000_000),
            len: 2,
        });
        m.biol_total.base = Some(mark(3.5, UNKNOWN_TIME));
        m.recent = vec![1, u64::MAX, 42];
        m.conditions.pressure = Some(crate::normal_volume::Sample {
            value: 12.5,
            at_us: 1_767_250_900_000_000,
        });
        let bytes = encode_meter(&m).expect("encode");
        assert_eq!(bytes[0], 2, "meter version tag 3 (index 2)");
        assert_eq!(decode_meter(&bytes).expect("v3"), m);
    }

    /// A row written by a build with more channels (one added later) or fewer decodes here:
    /// unknown trailing channels are ignored, missing ones are empty.
    #[test]
    fn rows_with_more_or_fewer_channels_decode() {
        #[derive(Serialize)]
        enum Row<'a> {
            #[allow(dead_code)]
            V1(()),
            V2(&'a OtherReading),
        }
        #[derive(Serialize)]
        struct OtherReading {
            values: Vec<Option<f64>>,
            extra: Vec<(String, f64)>,
            sensor_ts_ms: Option<i64>,
            source: String,
        }
        for n in [CHANNELS + 3, CHANNELS - 4] {
            let mut values = vec![None; n];
            values[1] = Some(36.0);
            values[n - 1] = Some(9.0);
            let other = OtherReading {
                values,
                extra: vec![],
                sensor_ts_ms: None,
                source: "t".into(),
            };
            let bytes = postcard::to_allocvec(&Row::V2(&other)).expect("encode");
            let r = decode_reading(&bytes).expect("decodes");
            assert_eq!(r.get(Channel::Temperatura), Some(36.0));
            if n < CHANNELS {
                assert_eq!(r.values[n - 1], Some(9.0));
                assert!(r.values[n..].iter().all(Option::is_none));
            }
        }
    }
}
