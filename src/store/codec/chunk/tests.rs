use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::reading::Channel;

/// A chunk exactly as version 1 writes it (checked in; never regenerate): three readings of
/// two topics with a sensor time, an extra field, a missing channel and a re-dated mark.
const V1_CHUNK: &[u8] = include_bytes!("../../fixtures/v1-chunk.bin");

fn reading(values: &[(Channel, f64)]) -> Reading {
    let mut r = Reading {
        values: [None; CHANNELS],
        extra: Vec::new(),
        sensor_ts_ms: None,
        source: "Prueba".into(),
        clock: TimeMark::Synced,
    };
    for (c, v) in values {
        r.values[*c as usize] = Some(*v);
    }
    r
}

fn round_trip(rows: &[(i64, Reading)]) -> Vec<u8> {
    let mut out = Vec::new();
    encode(rows, &mut out);
    let back = decode(&out).expect("decode");
    assert_eq!(back.len(), rows.len());
    for ((t0, r0), (t1, r1)) in rows.iter().zip(&back) {
        assert_eq!(t0, t1);
        assert_eq!(r0.source, r1.source);
        assert_eq!(r0.clock, r1.clock);
        assert_eq!(r0.sensor_ts_ms, r1.sensor_ts_ms);
        let bits = |r: &Reading| r.values.map(|v| v.map(f64::to_bits));
        assert_eq!(bits(r0), bits(r1), "values at {t0}");
        let extra = |r: &Reading| {
            r.extra
                .iter()
                .map(|(n, v)| (n.clone(), v.to_bits()))
                .collect::<Vec<_>>()
        };
        assert_eq!(extra(r0), extra(r1));
    }
    assert_eq!(count(&out).expect("count"), rows.len());
    out
}

/// The five-channel sensor of the benchmark, at 10 readings/s with some jitter.
fn sensor_rows(n: usize) -> Vec<(i64, Reading)> {
    let mut gas = 0.0f64;
    (0..n)
        .map(|i| {
            gas += 0.0042;
            let round = |v: f64, d: i32| (v * 10f64.powi(d)).round() / 10f64.powi(d);
            let ts = 1_764_000_000_000_000 + i as i64 * 100_000 + (i as i64 * 7919) % 900;
            (
                ts,
                reading(&[
                    (Channel::Presion, round(1006.0 + (i % 17) as f64 * 0.1, 2)),
                    (Channel::Temperatura, round(35.0 + (i % 11) as f64 * 0.1, 2)),
                    (Channel::Humedad, round(60.0 + (i % 13) as f64 * 0.5, 2)),
                    (Channel::Calidad, round(60.0 + (i % 7) as f64 * 0.3, 2)),
                    (Channel::GasTotal, round(gas, 6)),
                ]),
            )
        })
        .collect()
}

#[test]
fn sensor_readings_take_a_few_bytes_each_and_come_back_exactly() {
    let rows = sensor_rows(600);
    let bytes = round_trip(&rows);
    let per_reading = bytes.len() as f64 / rows.len() as f64;
    // One reading as its own row took about 60 bytes plus its 16-byte key.
    assert!(per_reading < 12.0, "{per_reading:.1} bytes per reading");
}

#[test]
fn unusual_values_times_and_fields_come_back_bit_for_bit() {
    let mut rows = Vec::new();
    for (i, v) in [
        -0.0,
        0.0,
        1e300,
        -1e-300,
        f64::MIN_POSITIVE,
        0.1 + 0.2,
        123_456_789.123_456_78,
        9_007_199_254_740_993.0,
        -35.25,
        f64::NAN,
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = reading(&[(Channel::Temperatura, v), (Channel::Presion, i as f64)]);
        if i % 3 == 0 {
            r.values[Channel::Presion as usize] = None;
        }
        if i % 4 == 1 {
            r.source = format!("sensor/{i}");
            r.sensor_ts_ms = Some(-5 - i as i64);
            r.extra.push(("ph".into(), 7.1));
            r.extra.push((format!("x{i}"), -0.5));
        }
        r.clock = match i % 5 {
            0 | 1 => TimeMark::Synced,
            2 => TimeMark::Unsynced,
            _ => TimeMark::Redated {
                by_us: -3_600_000_000,
            },
        };
        // Times out of order, repeated, and at the ends of the range.
        let ts = [5, 5, -3, i64::MAX, i64::MIN, 0, 1, i64::MAX, 2, -1][i];
        rows.push((ts, r));
    }
    round_trip(&rows);
    round_trip(&rows[..1]);
    round_trip(&[]);
}

#[test]
fn random_chunks_round_trip() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for _ in 0..300 {
        let n = rng.random_range(1..200);
        let mut ts = rng.random_range(-1_000_000i64..1_000_000);
        let rows: Vec<(i64, Reading)> = (0..n)
            .map(|_| {
                ts += rng.random_range(-10i64..500_000);
                let mut r = reading(&[]);
                for c in 0..CHANNELS {
                    if rng.random_bool(0.6) {
                        r.values[c] = Some(match rng.random_range(0..3) {
                            0 => f64::from_bits(rng.random()),
                            1 => rng.random_range(-1000i64..1000) as f64 / 100.0,
                            _ => rng.random::<f64>() * 1e6,
                        });
                    }
                }
                if rng.random_bool(0.2) {
                    r.sensor_ts_ms = Some(rng.random());
                }
                if rng.random_bool(0.1) {
                    r.extra.push(("k".into(), rng.random()));
                }
                if rng.random_bool(0.3) {
                    r.source = format!("t{}", rng.random_range(0..4));
                }
                (ts, r)
            })
            .collect();
        round_trip(&rows);
    }
}

#[test]
fn the_first_chunk_version_still_decodes() {
    let rows = decode(V1_CHUNK).expect("v1 chunk");
    assert_eq!(rows.len(), 3);
    let (ts, r) = &rows[0];
    assert_eq!(*ts, 1_764_500_000_000_000);
    assert_eq!(r.get(Channel::Presion), Some(1013.25));
    assert_eq!(r.get(Channel::Temperatura), Some(35.5));
    assert_eq!(r.get(Channel::Humedad), None);
    assert_eq!(r.sensor_ts_ms, Some(1_764_499_999_900));
    assert_eq!(r.extra, vec![("ph".to_string(), 7.1)]);
    assert_eq!(r.source, "Prueba");
    assert_eq!(r.clock, TimeMark::Synced);
    let (ts, r) = &rows[1];
    assert_eq!(*ts, 1_764_500_001_000_000);
    assert_eq!(r.get(Channel::GasTotal), Some(1234.5));
    assert_eq!(r.source, "biodigestor/2");
    assert_eq!(
        r.clock,
        TimeMark::Redated {
            by_us: 7_200_000_000
        }
    );
    let (ts, r) = &rows[2];
    assert_eq!(*ts, 1_764_500_002_000_500);
    assert_eq!(r.get(Channel::Presion), Some(1013.3));
    assert_eq!(r.sensor_ts_ms, None);
    assert!(r.extra.is_empty());
}

/// Writes the fixture above (run once with `--ignored` when the format is introduced).
#[test]
#[ignore]
fn write_v1_fixture() {
    let mut a = reading(&[(Channel::Presion, 1013.25), (Channel::Temperatura, 35.5)]);
    a.sensor_ts_ms = Some(1_764_499_999_900);
    a.extra.push(("ph".into(), 7.1));
    let mut b = reading(&[(Channel::GasTotal, 1234.5)]);
    b.source = "biodigestor/2".into();
    b.clock = TimeMark::Redated {
        by_us: 7_200_000_000,
    };
    let c = reading(&[(Channel::Presion, 1013.3)]);
    let rows = [
        (1_764_500_000_000_000, a),
        (1_764_500_001_000_000, b),
        (1_764_500_002_000_500, c),
    ];
    let mut out = Vec::new();
    encode(&rows, &mut out);
    std::fs::write("src/store/fixtures/v1-chunk.bin", out).expect("write");
}

#[test]
fn a_chunk_from_a_build_with_more_or_fewer_channels_decodes() {
    let rows = sensor_rows(20);
    // A later build with two more channels, the first of them filled.
    let mut out = Vec::new();
    encode_columns(
        &rows,
        CHANNELS + 2,
        |i, c| match c {
            c if c < CHANNELS => rows[i].1.values[c],
            c if c == CHANNELS => Some(i as f64 * 0.25),
            _ => None,
        },
        &mut out,
    );
    let back = decode(&out).expect("more channels");
    for ((_, a), (_, b)) in rows.iter().zip(&back) {
        assert_eq!(a.values, b.values);
    }
    // An earlier build with three channels: the others are empty.
    encode_columns(&rows, 3, |i, c| rows[i].1.values[c], &mut out);
    let back = decode(&out).expect("fewer channels");
    for ((_, a), (_, b)) in rows.iter().zip(&back) {
        assert_eq!(a.values[..3], b.values[..3]);
        assert!(b.values[3..].iter().all(Option::is_none));
    }
}

#[test]
fn damaged_chunks_are_reported_not_trusted() {
    let mut out = Vec::new();
    encode(&sensor_rows(50), &mut out);
    for cut in [0, 1, 2, out.len() / 2, out.len() - 1] {
        assert!(decode(&out[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = out.clone();
    longer.push(0);
    assert!(decode(&longer).is_err());
    let mut version = out.clone();
    version[0] = 9;
    assert!(decode(&version).is_err());
    assert!(count(&version).is_err());
    // A count far beyond the bytes is refused before anything is allocated for it.
    assert!(decode(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
}
