//! Meter semantics through the real store and writer with chosen timestamps: per-day gas from
//! a counter with a reset, from `caudal_gas` deltas and from L/min flow, split at the site's
//! local midnight (America/Bogota, UTC−5) and carried across a restart; and a rebuild from the
//! stored readings (`biogestor reindex`) that gives exactly what the writer kept.

use std::time::Duration;

use biogestor::reading::{CHANNELS, Channel, Reading};
use biogestor::sitetime::{date_day, day_date, parse_rfc3339};
use biogestor::store::Store;
use biogestor::store::daily::{Daily, Discards, MeterRules, MeterState};
use biogestor::store::writer::{self, Incoming, WriterConfig};
use chrono::NaiveDate;
use chrono_tz::Tz;

const TZ: &str = "America/Bogota";

fn reading(source: &str, fields: &[(Channel, f64)]) -> Reading {
    let mut values = [None; CHANNELS];
    for (c, v) in fields {
        values[*c as usize] = Some(*v);
    }
    Reading {
        values,
        extra: vec![],
        sensor_ts_ms: None,
        source: source.into(),
        clock: Default::default(),
    }
}

fn at(text: &str) -> i64 {
    parse_rfc3339(text).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> i32 {
    date_day(NaiveDate::from_ymd_opt(y, m, d).unwrap())
}

fn gas_by_day(store: &Store, stage: u64) -> Vec<(String, f64)> {
    store
        .daily(stage, i32::MIN, i32::MAX)
        .unwrap()
        .into_iter()
        .map(|(d, agg)| {
            (
                day_date(d).to_string(),
                agg.gas.produced().unwrap_or(f64::NAN),
            )
        })
        .collect()
}

fn submit_all(w: &writer::WriterHandle, stage: u64, items: &[(&str, Reading)]) {
    for (ts, r) in items {
        w.submit(Incoming {
            stage,
            ts_us: at(ts),
            reading: r.clone(),
        })
        .unwrap();
    }
    w.flush().unwrap();
}

fn assert_days(got: &[(String, f64)], want: &[(&str, f64)]) {
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((gd, gv), (wd, wv)) in got.iter().zip(want) {
        assert_eq!(gd, wd);
        assert!((gv - wv).abs() < 1e-9, "{gd}: got {gv}, want {wv}");
    }
}

#[test]
fn per_day_gas_in_the_site_zone() {
    let dir = tempfile::tempdir().unwrap();
    let tz: Tz = TZ.parse().unwrap();
    let cfg = WriterConfig::new(Duration::from_millis(50), 1000, Default::default());
    {
        let store = Store::open(dir.path(), 8, tz).unwrap();
        let (w, join) = writer::spawn(store.clone(), cfg).unwrap();

        // Stage 1, cumulative counter. Local times (UTC−5):
        //   03-09 23:50  100.0  first value: baseline, 0
        //   03-09 23:55  100.4  +0.4            → 03-09 total 0.4
        //   03-10 00:05  100.9  +0.5
        //   03-10 00:10    0.3  reset: +0.3 (counts from zero, never negative)
        //   03-10 00:20    0.8  +0.5            → 03-10 total 1.3
        let c = |v| reading("contador", &[(Channel::GasTotal, v)]);
        submit_all(
            &w,
            1,
            &[
                ("2026-03-10T04:50:00Z", c(100.0)),
                ("2026-03-10T04:55:00Z", c(100.4)),
                ("2026-03-10T05:05:00Z", c(100.9)),
                ("2026-03-10T05:10:00Z", c(0.3)),
                ("2026-03-10T05:20:00Z", c(0.8)),
            ],
        );
        assert_days(
            &gas_by_day(&store, 1),
            &[("2026-03-09", 0.4), ("2026-03-10", 1.3)],
        );

        // Stage 2, per-message deltas: 0.25 + 0.25 before midnight, 0.5 after.
        let d = |v| reading("deltas", &[(Channel::CaudalGas, v)]);
        submit_all(
            &w,
            2,
            &[
                ("2026-03-10T04:40:00Z", d(0.25)),
                ("2026-03-10T04:59:59Z", d(0.25)),
                ("2026-03-10T05:00:00Z", d(0.5)),
            ],
        );
        assert_days(
            &gas_by_day(&store, 2),
            &[("2026-03-09", 0.5), ("2026-03-10", 0.5)],
        );

        // Stage 3, L/min flow, trapezoid between samples, interval booked on the later day:
        //   23:56 10 L/min → 23:58 20 L/min: 2 min × 15 L/min = 30 L  → 03-09: 0.030 m³
        //   23:58 20 → 00:02 10: 4 min × 15 = 60 L                   → 03-10: 0.060 m³
        //   then 20 minutes of silence (> 15 min gap): not integrated
        //   00:22 12 → 00:23 12: 1 min × 12 = 12 L                   → 03-10: 0.072 m³
        let f = |v| reading("flujo", &[(Channel::CaudalGasLmin, v)]);
        submit_all(
            &w,
            3,
            &[
                ("2026-03-10T04:56:00Z", f(10.0)),
                ("2026-03-10T04:58:00Z", f(20.0)),
                ("2026-03-10T05:02:00Z", f(10.0)),
                ("2026-03-10T05:22:00Z", f(12.0)),
                ("2026-03-10T05:23:00Z", f(12.0)),
            ],
        );
        assert_days(
            &gas_by_day(&store, 3),
            &[("2026-03-09", 0.030), ("2026-03-10", 0.072)],
        );

        // Counter and deltas on the same day: the counter wins.
        submit_all(
            &w,
            4,
            &[
                (
                    "2026-03-11T12:00:00Z",
                    reading(
                        "mixto",
                        &[(Channel::GasTotal, 5.0), (Channel::CaudalGas, 9.0)],
                    ),
                ),
                (
                    "2026-03-11T13:00:00Z",
                    reading(
                        "mixto",
                        &[(Channel::GasTotal, 5.7), (Channel::CaudalGas, 9.0)],
                    ),
                ),
            ],
        );
        assert_days(&gas_by_day(&store, 4), &[("2026-03-11", 0.7)]);
        let agg = store.daily(4, day(2026, 3, 11), day(2026, 3, 11)).unwrap();
        assert_eq!(agg[0].1.gas.from_delta, Some(18.0));
        assert_eq!(agg[0].1.count, 2);

        drop(w);
        join.join().unwrap();
        store.close().unwrap();
    }
    // After a restart the counter's last value is remembered: 0.8 → 1.0 is +0.2 on 03-10.
    let store = Store::open(dir.path(), 8, tz).unwrap();
    let (w, join) = writer::spawn(store.clone(), cfg).unwrap();
    submit_all(
        &w,
        1,
        &[(
            "2026-03-10T06:00:00Z",
            reading("contador", &[(Channel::GasTotal, 1.0)]),
        )],
    );
    assert_days(
        &gas_by_day(&store, 1),
        &[("2026-03-09", 0.4), ("2026-03-10", 1.5)],
    );
    assert_eq!(store.readings_total(), 16);
    drop(w);
    join.join().unwrap();
}

#[test]
fn dst_change_days_are_local() {
    // Chile (America/Santiago) leaves summer time on 2026-04-05 at 00:00 local (UTC−3 →
    // UTC−4): that local day has 25 hours, and both ends are booked by local midnight.
    let dir = tempfile::tempdir().unwrap();
    let tz: Tz = "America/Santiago".parse().unwrap();
    let store = Store::open(dir.path(), 8, tz).unwrap();
    let (w, join) = writer::spawn(
        store.clone(),
        WriterConfig::new(Duration::from_millis(20), 100, Default::default()),
    )
    .unwrap();
    let d = |v| reading("s", &[(Channel::CaudalGas, v)]);
    submit_all(
        &w,
        1,
        &[
            ("2026-04-04T23:30:00-03:00", d(1.0)), // 04-04 (summer time)
            ("2026-04-05T02:30:00Z", d(2.0)),      // 04-04 23:30 −03 → still 04-04
            ("2026-04-05T03:30:00Z", d(4.0)),      // after the change: 04-04 23:30 −04 → 04-04
            ("2026-04-05T04:30:00Z", d(8.0)),      // 04-05 00:30 −04 → 04-05
        ],
    );
    assert_days(
        &gas_by_day(&store, 1),
        &[("2026-04-04", 7.0), ("2026-04-05", 8.0)],
    );
    drop(w);
    join.join().unwrap();
}

/// A small deterministic generator (no seed files, same trace on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Three days of four sources through three stages (and stage 0 between them), with every
/// kind of meter trouble: glitches, values re-sent late, a reset, a new meter, flow gaps and
/// time going backwards, redelivered deltas, two readings in the same microsecond.
fn messy_trace() -> Vec<(u64, i64, Reading)> {
    let mut rng = Lcg(7);
    let start = at("2026-03-09T20:00:00Z");
    let step = 5 * 60_000_000;
    let mut out = Vec::new();
    let (mut total, mut seq) = (1234.5, 0.0);
    for i in 0..900i64 {
        let t = start + i * step;
        let stage = match i {
            0..=99 => 0,
            100..=449 => 1,
            450..=479 => 0,
            _ => 2,
        };
        let ts = |r: Reading, at_us: i64| Reading {
            sensor_ts_ms: Some(at_us / 1000),
            ..r
        };
        // Counter.
        total += 0.01 + rng.next() * 0.04;
        let value = match i {
            200 => 99_999.0,    // glitch
            300 => total - 0.3, // re-sent late, no ts
            400 => 0.0,         // read error
            500 => {
                total = 0.15; // reset
                total
            }
            700 => {
                total = 8000.0; // new meter
                total
            }
            _ => total,
        };
        out.push((stage, t, reading("contador", &[(Channel::GasTotal, value)])));
        // Flow with its own clock; a 30-minute silence every 150 samples; one backwards ts.
        if i % 150 >= 6 {
            let sensor_t = if i == 333 {
                t - 20 * 60_000_000
            } else {
                t + 1_000_000
            };
            let f = ts(
                reading("flujo", &[(Channel::CaudalGasLmin, 4.0 + rng.next())]),
                sensor_t,
            );
            out.push((stage, t + 1, f));
        }
        // Deltas with seq; 5 % delivered twice.
        seq += 1.0;
        let mut d = reading(
            "deltas",
            &[(Channel::CaudalGas, 0.002), (Channel::CaudalBiol, 0.001)],
        );
        d.extra.push(("seq".into(), seq));
        out.push((stage, t + 2, d.clone()));
        if rng.next() < 0.05 {
            out.push((stage, t + 3, d));
        }
        // Weather, sometimes in the same microsecond as the counter.
        let w = reading("clima", &[(Channel::Temperatura, 30.0 + rng.next())]);
        out.push((stage, if i % 50 == 0 { t } else { t + 4 }, w));
    }
    out
}

type Snapshot = (Vec<Vec<(i32, Daily)>>, Vec<(String, MeterState)>);

fn snapshot(store: &Store) -> Snapshot {
    let days = (0..=2)
        .map(|s| store.daily(s, i32::MIN, i32::MAX).unwrap())
        .collect();
    let mut meters = store.meter_states().unwrap();
    meters.sort_by(|a, b| a.0.cmp(&b.0));
    (days, meters)
}

#[test]
fn a_rebuild_equals_the_incremental_result() {
    let dir = tempfile::tempdir().unwrap();
    let tz: Tz = TZ.parse().unwrap();
    let cfg = WriterConfig::new(Duration::from_millis(20), 97, MeterRules::default());
    let trace = messy_trace();
    let (first, second) = trace.split_at(trace.len() / 2);
    // Incrementally, in batches, with a restart half-way.
    for part in [first, second] {
        let store = Store::open(dir.path(), 8, tz).unwrap();
        let (w, join) = writer::spawn(store.clone(), cfg).unwrap();
        for chunk in part.chunks(250) {
            for (stage, ts_us, reading) in chunk {
                w.submit(Incoming {
                    stage: *stage,
                    ts_us: *ts_us,
                    reading: reading.clone(),
                })
                .unwrap();
            }
            w.flush().unwrap();
        }
        drop(w);
        join.join().unwrap();
        store.close().unwrap();
    }
    let store = Store::open(dir.path(), 8, tz).unwrap();
    let incremental = snapshot(&store);
    assert_eq!(store.readings_total(), trace.len() as u64);
    assert!(!store.aggregates_outdated().unwrap());
    let days: usize = incremental.0.iter().map(Vec::len).sum();
    assert!(days >= 6, "{days} days");
    let all: Vec<&Daily> = incremental.0.iter().flatten().map(|(_, d)| d).collect();
    let sum = |f: fn(&Discards) -> u32| all.iter().map(|d| f(&d.gas.discards)).sum::<u32>();
    assert!(sum(|d| d.glitch) >= 2, "the glitch and the read error");
    assert!(
        sum(|d| d.out_of_order) >= 2,
        "re-sent counter, backwards flow"
    );
    assert_eq!(sum(|d| d.meter_change), 1, "the new meter");
    assert!(sum(|d| d.duplicate) > 0);

    let rebuilt = store.reindex(MeterRules::default()).unwrap();
    assert_eq!(rebuilt.readings, trace.len() as u64);
    assert_eq!(snapshot(&store), incremental);
    // Rebuilding again changes nothing either.
    store.reindex(MeterRules::default()).unwrap();
    assert_eq!(snapshot(&store), incremental);
    store.close().unwrap();
}
