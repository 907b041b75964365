use super::*;
use crate::sitetime::date_day;
use crate::store::daily::MeterDay;

const MIN: i64 = 60_000_000;

fn stage(date: DayNumber) -> Stage {
    Stage {
        id: 1,
        number: 1,
        date,
        people: String::new(),
        material_type: "bovino".into(),
        material_amount_kg: 1000.0,
        material_humidity_pct: 87.0,
        added_water_m3: 1.0,
        temperature_c: 35.0,
        active: true,
        created_us: 0,
        closed_us: None,
    }
}

fn day_with(gas: MeterDay) -> Daily {
    Daily {
        count: 10,
        gas,
        ..Daily::default()
    }
}

#[test]
fn days_say_how_much_of_them_is_known() {
    let d = date_day("2026-03-10".parse().expect("date"));
    let flow = |m3, covered_min| MeterDay {
        from_flow: Some(m3),
        flow_covered_us: covered_min * MIN,
        ..MeterDay::default()
    };
    let mut changed = MeterDay {
        from_counter: Some(2.0),
        ..MeterDay::default()
    };
    changed.discards.meter_change = 1;
    changed.discards.glitch = 2;
    let daily = vec![
        (d, day_with(flow(1.0, 1440 - 90))),
        (d + 2, day_with(changed)),
        (d + 3, day_with(flow(0.5, 11 * 60))),
    ];
    let materials = crate::model::default_materials();
    let p = compute(
        &stage(d),
        materials.get("bovino"),
        &daily,
        Calendar {
            tz: chrono_tz::America::Bogota,
            today: d + 3,
            today_elapsed: 0.5,
        },
        None,
        SiteModel::default(),
    )
    .expect("compute");
    let a = &p.actual;
    assert_eq!(a.missing, vec![false, true, false, false]);
    // Today: 12 h elapsed less the 15-minute grace = 705 minutes, 660 covered.
    assert_eq!(a.minutos_sin_datos, vec![90, 1440, 0, 45]);
    assert_eq!(a.parcial, vec![true, false, true, true]);
    assert_eq!(
        a.metodo,
        vec![
            Some("caudal_gas_lmin"),
            None,
            Some("gas_total_m3"),
            Some("caudal_gas_lmin")
        ]
    );
    assert_eq!(a.descartes[2].glitch, 2);
    assert_eq!(a.daily_biogas_m3_medido, vec![1.0, 0.0, 2.0, 0.5]);
    // Rows without normal volumes (stored by an earlier version) are converted with the
    // day's mean conditions, here none: the site settings (sea level, 20 °C, saturated):
    // (101.325 − 2.33344)/101.325 · 273.15/293.15 = 0.976970 · 0.931776 = 0.910317.
    let f = 0.910317;
    for (nm3, m3) in a.daily_biogas_m3.iter().zip(&a.daily_biogas_m3_medido) {
        assert!((nm3 - m3 * f).abs() < 1e-5, "{nm3} vs {m3}");
    }
    assert_eq!(a.nm3_estimado, vec![true, false, true, true]);
    let s = &p.summary;
    assert_eq!((s.days_missing, s.dias_parciales), (1, 3));
    assert_eq!(s.minutos_sin_datos, 90 + 1440 + 45);
    assert_eq!((s.descartes.glitch, s.descartes.meter_change), (2, 1));
    assert!((s.actual_total_m3_medido - 3.5).abs() < 1e-12);
    assert!((s.actual_total_m3 - 3.5 * f).abs() < 1e-5);
    assert_eq!(s.unidad, "Nm³");
}

#[test]
fn the_curve_starts_at_the_loading_time() {
    let tz = chrono_tz::America::Bogota;
    let d = date_day("2026-03-10".parse().expect("date"));
    let (start, end) = crate::sitetime::day_bounds(tz, d).expect("bounds");
    let hour = 60 * MIN;
    // Created on its loading day at 18:00: the curve starts then, with 6 h of day 1 left.
    let mut s = stage(d);
    s.created_us = start + 18 * hour;
    assert_eq!(loading_time_us(tz, &s), start + 18 * hour);
    assert!((load::first_day_fraction(tz, d, start + 18 * hour) - 0.25).abs() < 1e-12);
    // Entered two days later: the hour is unknown, noon.
    s.created_us = end + 30 * hour;
    assert_eq!(loading_time_us(tz, &s), start + 12 * hour);
    // Dated the day after its creation: the start of that day.
    s.created_us = start - 2 * hour;
    assert_eq!(loading_time_us(tz, &s), start);

    // At 21:00 of the loading day, half of day 1's stretch (18:00–24:00) has passed, and the
    // production endpoint expects half of day 1's curve so far.
    s.created_us = start + 18 * hour;
    let calendar = Calendar {
        tz,
        today: d,
        today_elapsed: 21.0 / 24.0,
    };
    assert!((load::elapsed_part_of_today(calendar, d, s.created_us) - 0.5).abs() < 1e-9);
    let materials = crate::model::default_materials();
    let p = compute(
        &s,
        materials.get("bovino"),
        &[],
        calendar,
        None,
        SiteModel::default(),
    )
    .expect("compute");
    let day1 = p.expected.cumulative_biogas_m3[0];
    assert!((p.summary.expected_to_date_m3 - day1 / 2.0).abs() < 1e-12);
    // Day 1 holds only 6 hours of kinetics: less than a quarter of a whole first day's gas
    // (the Gompertz curve is convex at its start).
    let whole = crate::model::expected_production(
        &crate::model::StageInput {
            material_amount_kg: 1000.0,
            material_humidity_pct: 87.0,
            temperature_c: 35.0,
            material: materials["bovino"].clone(),
            first_day_fraction: 1.0,
            measured_temperature_c: Vec::new(),
        },
        10,
    )
    .expect("model");
    assert!(day1 < whole.cumulative_biogas_m3[0] / 4.0, "{day1}");
    assert_eq!(
        p.expected.inicio,
        crate::sitetime::rfc3339(tz, start + 18 * hour)
    );
}
