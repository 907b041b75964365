//! Traces from the field replayed through [`Fold`]: what each day shows, and what was set
//! aside and why.

use std::collections::HashMap;

use chrono_tz::Tz;

use super::fold::{DayKey, Fold};
use super::*;
use crate::sitetime::{date_day, day_bounds, parse_rfc3339};

const MIN: i64 = 60_000_000;

/// A reading of source "s" with the given meter fields.
fn reading(fields: &[(Channel, f64)]) -> Reading {
    let mut values = [None; CHANNELS];
    for (c, v) in fields {
        values[*c as usize] = Some(*v);
    }
    Reading {
        values,
        extra: vec![],
        sensor_ts_ms: None,
        source: "s".into(),
        clock: Default::default(),
    }
}

fn counter(v: f64) -> Reading {
    reading(&[(Channel::GasTotal, v)])
}

fn lmin(v: f64) -> Reading {
    reading(&[(Channel::CaudalGasLmin, v)])
}

fn delta(v: f64) -> Reading {
    reading(&[(Channel::CaudalGas, v)])
}

/// The same reading carrying the sensor's own time.
fn with_ts(mut r: Reading, ts_us: i64) -> Reading {
    r.sensor_ts_ms = Some(ts_us / 1000);
    r
}

fn with_seq(mut r: Reading, seq: f64) -> Reading {
    r.extra.push(("seq".into(), seq));
    r
}

/// Readings in the order they arrive: (stored time, reading).
type Items = Vec<(i64, Reading)>;

fn at(text: &str) -> i64 {
    parse_rfc3339(text).expect("time")
}

/// 2026-03-10 07:00 in Bogotá (UTC−5): room for a day's traces before local midnight.
fn morning() -> i64 {
    at("2026-03-10T12:00:00Z")
}

/// Replays `(stored time, reading)` pairs in order, from empty rows and meters.
fn replay(tz: Tz, items: &[(i64, Reading)]) -> HashMap<DayKey, Daily> {
    let mut meters = HashMap::new();
    let mut fold = Fold::new(tz, MeterRules::default(), &mut meters);
    for (ts, r) in items {
        fold.apply(1, *ts, r, &mut |_| Ok::<_, ()>(None))
            .expect("apply");
    }
    fold.finish().0
}

/// The one day of a single-day trace.
fn one_day(items: &[(i64, Reading)]) -> Daily {
    let rows = replay(chrono_tz::America::Bogota, items);
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.into_values().next().expect("a day")
}

/// Readings every `step_min` minutes from [`morning`].
fn every(step_min: i64, readings: Vec<Reading>) -> Items {
    readings
        .into_iter()
        .enumerate()
        .map(|(i, r)| (morning() + i as i64 * step_min * MIN, r))
        .collect()
}

fn discards(f: impl FnOnce(&mut Discards)) -> Discards {
    let mut d = Discards::default();
    f(&mut d);
    d
}

fn close(got: Option<f64>, want: Option<f64>, what: &str) {
    match (got, want) {
        (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "{what}: got {g}, want {w}"),
        _ => assert_eq!(got, want, "{what}"),
    }
}

#[test]
fn counter_traces() {
    let c = |values: &[f64]| every(10, values.iter().map(|v| counter(*v)).collect());
    // A value re-sent late carries its own, older, `ts`.
    let t = |m: i64| morning() + m * MIN;
    let resent_with_ts = vec![
        (t(0), with_ts(counter(1234.50), t(0))),
        (t(10), with_ts(counter(1234.60), t(10))),
        (t(20), with_ts(counter(1234.55), t(5))),
        (t(30), with_ts(counter(1234.70), t(30))),
    ];
    let cases: Vec<(&str, Items, Option<f64>, Discards)> = vec![
        (
            "re-sent out of order",
            c(&[1234.50, 1234.60, 1234.55, 1234.70]),
            Some(0.20),
            discards(|d| d.out_of_order = 1),
        ),
        (
            "re-sent with its older ts",
            resent_with_ts,
            Some(0.20),
            discards(|d| d.out_of_order = 1),
        ),
        (
            "jitter",
            c(&[1500.000, 1499.999, 1500.002]),
            Some(0.002),
            discards(|d| d.jitter = 1),
        ),
        (
            "one glitch",
            c(&[1234.5, 99999.0, 1234.6]),
            Some(0.1),
            discards(|d| d.glitch = 1),
        ),
        (
            "a read error giving zero",
            c(&[1234.5, 0.0, 1234.6]),
            Some(0.1),
            discards(|d| d.glitch = 1),
        ),
        (
            "genuine reset counts from zero",
            c(&[10.0, 10.5, 11.0, 0.2, 0.7]),
            Some(1.7),
            Discards::default(),
        ),
        (
            "new meter with a higher reading: accepted after three, switch not counted",
            c(&[500.0, 500.2, 7000.0, 7000.1, 7000.3, 7000.5]),
            Some(0.2 + 0.3 + 0.2),
            discards(|d| d.meter_change = 1),
        ),
        (
            "new meter with a lower reading",
            c(&[5000.0, 5000.2, 1200.0, 1200.1, 1200.2, 1200.4]),
            Some(0.2 + 0.2 + 0.2),
            discards(|d| d.meter_change = 1),
        ),
        (
            "two glitches in a row are not a new meter",
            c(&[1234.5, 99999.0, 99999.1, 1234.6]),
            Some(0.1),
            discards(|d| d.glitch = 2),
        ),
        (
            "a jump above 6 m³/h over ten minutes",
            c(&[100.0, 101.5, 100.2]),
            Some(0.2),
            discards(|d| d.glitch = 1),
        ),
        (
            "a baseline alone is no data",
            c(&[1234.5]),
            None,
            Discards::default(),
        ),
        (
            "a standing meter is a measured zero",
            c(&[1234.5, 1234.5]),
            Some(0.0),
            Discards::default(),
        ),
    ];
    for (name, items, want, want_discards) in cases {
        let day = one_day(&items);
        close(day.gas.from_counter, want, name);
        assert_eq!(day.gas.discards, want_discards, "{name}");
        assert_eq!(
            day.count,
            items.len() as u64,
            "{name}: every reading is kept"
        );
    }
}

#[test]
fn flow_traces() {
    let t = |m: i64| morning() + m * MIN;
    let cases: Vec<(&str, Items, Option<f64>, i64, Discards)> = vec![
        (
            "every 20 minutes: gaps are missing data, not zero",
            every(20, vec![lmin(6.0); 5]),
            None,
            0,
            Discards::default(),
        ),
        (
            "every 10 minutes at 6 L/min",
            every(10, vec![lmin(6.0); 4]),
            Some(0.18),
            30 * MIN,
            Discards::default(),
        ),
        (
            "a measured zero flow",
            every(10, vec![lmin(0.0); 2]),
            Some(0.0),
            10 * MIN,
            Discards::default(),
        ),
        (
            "time going backwards is not integrated twice",
            vec![
                (t(0), with_ts(lmin(6.0), t(0))),
                (t(5), with_ts(lmin(6.0), t(5))),
                (t(6), with_ts(lmin(6.0), t(3))),
                (t(10), with_ts(lmin(6.0), t(10))),
            ],
            Some(0.06),
            10 * MIN,
            discards(|d| d.out_of_order = 1),
        ),
        (
            "the sensor's ts gives the interval, not the delivery",
            vec![
                (t(30), with_ts(lmin(6.0), t(0))),
                (t(30) + 1, with_ts(lmin(6.0), t(10))),
            ],
            Some(0.06),
            10 * MIN,
            Discards::default(),
        ),
        (
            "a repeated message is integrated once",
            vec![
                (t(0), with_ts(lmin(6.0), t(0))),
                (t(10), with_ts(lmin(6.0), t(10))),
                (t(10) + 5, with_ts(lmin(6.0), t(10))),
            ],
            Some(0.06),
            10 * MIN,
            discards(|d| d.duplicate = 1),
        ),
    ];
    for (name, items, want, covered, want_discards) in cases {
        let day = one_day(&items);
        close(day.gas.from_flow, want, name);
        assert_eq!(day.gas.flow_covered_us, covered, "{name}");
        assert_eq!(day.gas.discards, want_discards, "{name}");
    }
}

#[test]
fn delta_duplicates() {
    let t = |m: i64| morning() + m * MIN;
    // 100 deltas of 0.01 m³ with their ts; every 20th is delivered again.
    let mut with_dups = Vec::new();
    for i in 0..100 {
        let r = with_ts(delta(0.01), t(i));
        with_dups.push((t(i), r.clone()));
        if i % 20 == 0 {
            with_dups.push((t(i) + 1000, r));
        }
    }
    let by_seq: Vec<_> = [0.0, 1.0, 1.0, 2.0]
        .iter()
        .enumerate()
        .map(|(i, s)| (t(i as i64), with_seq(delta(0.25), *s)))
        .collect();
    let same_second_other_value = vec![
        (t(0), with_ts(delta(0.25), t(0))),
        (t(0) + 10, with_ts(delta(0.5), t(0))),
    ];
    let no_key = every(1, vec![delta(0.25), delta(0.25)]);
    let cases: Vec<(&str, Items, f64, u32)> = vec![
        ("5 % redelivered by ts", with_dups, 1.0, 5),
        ("repeated seq", by_seq, 0.75, 1),
        (
            "same ts, other values: two sensors",
            same_second_other_value,
            0.75,
            0,
        ),
        ("no seq, no ts: cannot be told apart", no_key, 0.5, 0),
    ];
    for (name, items, want, dups) in cases {
        let day = one_day(&items);
        close(day.gas.from_delta, Some(want), name);
        assert_eq!(day.gas.discards.duplicate, dups, "{name}");
    }
}

#[test]
fn preference_counter_then_deltas_then_flow() {
    let day = one_day(&every(
        1,
        vec![reading(&[
            (Channel::CaudalGas, 0.3),
            (Channel::CaudalGasLmin, 6.0),
        ])],
    ));
    assert_eq!(day.gas.method_and_volume(), Some((Method::Delta, 0.3)));
    let day = one_day(&every(
        1,
        vec![
            reading(&[(Channel::CaudalGas, 0.3), (Channel::GasTotal, 5.0)]),
            reading(&[(Channel::CaudalGas, 0.3), (Channel::GasTotal, 5.05)]),
        ],
    ));
    let (method, v) = day.gas.method_and_volume().expect("measured");
    assert_eq!(method, Method::Counter);
    assert!((v - 0.05).abs() < 1e-9);
}

#[test]
fn a_difference_belongs_to_the_day_of_the_later_reading() {
    let tz = chrono_tz::America::Bogota;
    let day = |text: &str| date_day(text.parse().expect("date"));
    // Counter 23:50 → 00:10 local: the whole difference is the new day's.
    let rows = replay(
        tz,
        &[
            (at("2026-03-10T04:50:00Z"), counter(100.0)),
            (at("2026-03-10T05:10:00Z"), counter(100.5)),
        ],
    );
    assert_eq!(rows[&(1, day("2026-03-09"))].gas.from_counter, None);
    close(
        rows[&(1, day("2026-03-10"))].gas.from_counter,
        Some(0.5),
        "after midnight",
    );
    // Flow 23:55 → 00:05: the volume goes to the later day, the covered time to both.
    let rows = replay(
        tz,
        &[
            (at("2026-03-10T04:55:00Z"), lmin(6.0)),
            (at("2026-03-10T05:05:00Z"), lmin(6.0)),
        ],
    );
    let before = &rows[&(1, day("2026-03-09"))].gas;
    let after = &rows[&(1, day("2026-03-10"))].gas;
    assert_eq!(before.from_flow, None);
    assert_eq!(before.flow_covered_us, 5 * MIN);
    close(after.from_flow, Some(0.06), "flow after midnight");
    assert_eq!(after.flow_covered_us, 5 * MIN);
}

#[test]
fn a_25_hour_dst_day_is_covered_whole() {
    // Santiago leaves summer time at 2026-04-05 00:00 local: 2026-04-04 lasts 25 hours.
    let tz = chrono_tz::America::Santiago;
    let d = date_day("2026-04-04".parse().expect("date"));
    let (start, end) = day_bounds(tz, d).expect("bounds");
    assert_eq!(end - start, 25 * 60 * MIN);
    let items: Vec<_> = (0..=150)
        .map(|i| (start + i * 10 * MIN, lmin(6.0)))
        .collect();
    let rows = replay(tz, &items);
    let day = &rows[&(1, d)].gas;
    assert_eq!(day.flow_covered_us, 25 * 60 * MIN);
    // 149 intervals of 10 minutes end within the day (the one ending at the next midnight
    // is the next day's volume): 1490 min × 6 L/min = 8.94 m³.
    close(day.from_flow, Some(8.94), "25 h of flow");
    // The counter's difference across the DST midnight goes to the later day too.
    let rows = replay(
        tz,
        &[
            (at("2026-04-04T23:50:00-03:00"), counter(10.0)),
            (at("2026-04-04T23:55:00-04:00"), counter(10.1)),
            (at("2026-04-05T00:05:00-04:00"), counter(10.3)),
        ],
    );
    close(rows[&(1, d)].gas.from_counter, Some(0.1), "25 h day");
    close(
        rows[&(1, d + 1)].gas.from_counter,
        Some(0.2),
        "day after the change",
    );
}

#[test]
fn channel_statistics() {
    let day = one_day(&every(
        1,
        [34.0, 36.0, 35.0]
            .iter()
            .map(|t| reading(&[(Channel::Temperatura, *t)]))
            .collect(),
    ));
    let s = day.channel(Channel::Temperatura).expect("stats");
    assert_eq!((s.count, s.min, s.max, s.mean()), (3, 34.0, 36.0, 35.0));
    assert_eq!(day.count, 3);
}

#[test]
fn a_baseline_kept_without_its_time_and_the_biol_counter_have_no_flow_limit() {
    use super::counter::{Counter, Mark, UNKNOWN_TIME};
    // A first-version meter state has no time for its baseline: any interval is long enough.
    let mut c = Counter {
        base: Some(Mark {
            value: 100.0,
            at_us: UNKNOWN_TIME,
        }),
        chain: None,
    };
    assert_eq!(c.step(150.0, morning(), Some(6.0)).counted, Some(50.0));
    // Effluent leaves in bursts: 8 m³ in a minute is counted.
    let day = one_day(&every(
        1,
        vec![
            reading(&[(Channel::BiolTotal, 1.0)]),
            reading(&[(Channel::BiolTotal, 9.0)]),
        ],
    ));
    close(day.biol.from_counter, Some(8.0), "biol");
    assert_eq!(day.gas.produced(), None);
}
