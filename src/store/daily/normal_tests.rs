//! Normal cubic metres in the daily rows: each metered interval converted with the pressure
//! and temperature known at its own time.

use std::collections::HashMap;

use super::fold::Fold;
use super::*;
use crate::normal_volume::{GasSite, pressure_at_altitude_hpa};
use crate::sitetime::parse_rfc3339;

const MIN: i64 = 60_000_000;

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

/// Bogotá: 2,640 m, absolute hPa, gas temperature 20 °C without a reading, saturated.
fn bogota() -> MeterRules {
    MeterRules {
        gas: GasSite {
            ambient_kpa: pressure_at_altitude_hpa(2640.0) / 10.0,
            ..GasSite::default()
        },
        ..MeterRules::default()
    }
}

/// Three 1 m³ intervals under different conditions:
/// 1. 740 hPa, 25 °C (sent with the baseline, still fresh):
///    (74.0 − 3.16174)/101.325 · 273.15/298.15 = 0.640498 Nm³
/// 2. 750 hPa, 15 °C, 62 % CH4 in the same message: p_w(15) = 1.70198 kPa,
///    (75.0 − 1.70198)/101.325 · 273.15/288.15 = 0.685738 Nm³, CH4 0.685738 × 0.62 = 0.425158
/// 3. 70 minutes later, the readings are over an hour old: the site's 733.78 hPa and 20 °C,
///    0.653321 Nm³.
///
/// Total 1.979556 Nm³ of 3 m³ counted; methane 0.425158 measured + (0.640498 + 0.653321) ×
/// 0.60 = 0.425158 + 0.776291 = 1.201449 Nm³ with the material's 60 %.
#[test]
fn each_interval_is_converted_with_its_own_pressure_and_temperature() {
    let t0 = parse_rfc3339("2026-03-10T12:00:00Z").expect("time");
    let items = [
        (
            t0,
            reading(&[
                (Channel::Presion, 740.0),
                (Channel::Temperatura, 25.0),
                (Channel::GasTotal, 100.0),
            ]),
        ),
        (t0 + 10 * MIN, reading(&[(Channel::GasTotal, 101.0)])),
        (
            t0 + 20 * MIN,
            reading(&[
                (Channel::Presion, 750.0),
                (Channel::Temperatura, 15.0),
                (Channel::Calidad, 62.0),
                (Channel::GasTotal, 102.0),
            ]),
        ),
        (t0 + 90 * MIN, reading(&[(Channel::GasTotal, 103.0)])),
    ];
    let mut meters = HashMap::new();
    let mut fold = Fold::new(chrono_tz::America::Bogota, bogota(), &mut meters);
    for (ts, r) in &items {
        fold.apply(1, *ts, r, &mut |_| Ok::<_, ()>(None))
            .expect("apply");
    }
    let rows = fold.finish().0;
    let day = rows.values().next().expect("a day");
    let (method, m3, normal) = day.gas.measured_and_normal().expect("gas");
    assert_eq!(method, Method::Counter);
    assert!((m3 - 3.0).abs() < 1e-9);
    let n = normal.expect("normal volumes");
    assert!((n.nm3 - 1.979556).abs() < 1e-5, "{}", n.nm3);
    assert!((n.nm3_quality - 0.685738).abs() < 1e-5);
    assert!((n.ch4_nm3 - 0.425158).abs() < 1e-5);
    assert!((n.methane_nm3(0.60) - 1.201449).abs() < 1e-5);
}

/// A flow integrated and a delta summed are converted too; a reading without gas fields only
/// updates the conditions.
#[test]
fn deltas_and_flow_are_converted_and_conditions_may_come_alone() {
    let t0 = parse_rfc3339("2026-03-10T12:00:00Z").expect("time");
    let items = [
        (t0, reading(&[(Channel::Temperatura, 0.0)])),
        (
            t0 + MIN,
            reading(&[(Channel::Presion, 1013.25), (Channel::CaudalGas, 0.5)]),
        ),
        (t0 + 2 * MIN, reading(&[(Channel::CaudalGasLmin, 10.0)])),
        (t0 + 12 * MIN, reading(&[(Channel::CaudalGasLmin, 10.0)])),
    ];
    let mut meters = HashMap::new();
    let mut fold = Fold::new(chrono_tz::America::Bogota, bogota(), &mut meters);
    for (ts, r) in &items {
        fold.apply(1, *ts, r, &mut |_| Ok::<_, ()>(None))
            .expect("apply");
    }
    let rows = fold.finish().0;
    let day = rows.values().next().expect("a day");
    // 101.325 kPa, 0 °C, saturated: p_w(0) = 0.61094 kPa, factor (101.325 − 0.61094)/101.325
    // = 0.993970.
    let f = 0.993970;
    let delta = day.gas.normal.delta.expect("delta");
    assert!((delta.nm3 - 0.5 * f).abs() < 1e-6, "{}", delta.nm3);
    // 10 L/min for 10 minutes = 0.1 m³.
    let flow = day.gas.normal.flow.expect("flow");
    assert!((flow.nm3 - 0.1 * f).abs() < 1e-6, "{}", flow.nm3);
    assert_eq!(day.biol.normal, Normals::default());
}
