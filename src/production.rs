//! Expected against actual production of one stage: the kinetic model's curve next to the gas
//! measured per site-local day (from the daily aggregates, so the cost grows with days, not
//! readings). Pure: the caller supplies the stage, its material and its daily rows.

use serde::Serialize;

use crate::model::{self, Expected, MaterialParams, StageInput};
use crate::sitetime::{DayNumber, day_bounds, day_date};
use crate::store::daily::{Daily, Discards, MAX_FLOW_GAP_US, Method};
use crate::store::stages::Stage;

/// Longest expected curve computed, in days.
pub const MAX_DAYS: u32 = model::DEFAULT_MAX_DAYS;

/// The expected curve, aligned on the stage's calendar (day 1 = loading day).
#[derive(Debug, Clone, Serialize)]
pub struct ExpectedSeries {
    pub days: Vec<u32>,
    pub dates: Vec<String>,
    pub daily_biogas_m3: Vec<f64>,
    pub cumulative_biogas_m3: Vec<f64>,
    #[serde(rename = "A_biogas_m3")]
    pub a_biogas_m3: f64,
    pub params: ExpectedParams,
}

/// How the expectation was obtained, shown for transparency.
#[derive(Debug, Clone, Serialize)]
pub struct ExpectedParams {
    pub material_type: String,
    pub material: MaterialParams,
    pub ts_kg: f64,
    pub vs_kg: f64,
    pub methane_potential_m3: f64,
    pub rm_m3_per_day: f64,
    pub lag_days: f64,
    pub k_per_day: f64,
    pub temperature_factor: f64,
    pub reached_95pct: bool,
}

/// Measured production per site-local day from the loading day to today (or the close).
#[derive(Debug, Clone, Serialize)]
pub struct ActualSeries {
    pub days: Vec<u32>,
    pub dates: Vec<String>,
    pub daily_biogas_m3: Vec<f64>,
    pub cumulative_biogas_m3: Vec<f64>,
    /// True where no gas measurement exists that day (shown as 0, but not a measured zero).
    pub missing: Vec<bool>,
    pub readings: Vec<u64>,
    /// Minutes of each day without gas data: all of it (the elapsed part, today) when nothing
    /// was measured; for L/min flow, the time not covered by integrated intervals (today's
    /// last 15 minutes are not counted yet: the next sample may still cover them).
    pub minutos_sin_datos: Vec<u32>,
    /// True where the day's gas is measured but only partly known: flow data with gaps, or a
    /// meter change whose switch was not counted. Its figure is a lower bound.
    pub parcial: Vec<bool>,
    /// Meter samples set aside each day, by reason.
    pub descartes: Vec<Discards>,
    /// Payload field the day's figure comes from (`gas_total_m3`, `caudal_gas`, `gas_flow`,
    /// `caudal_gas_lmin`), null when missing.
    pub metodo: Vec<Option<&'static str>>,
}

/// Totals and ratios for the operator.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Expected cumulative production up to now: whole days before today plus the elapsed
    /// part of today (whole days only for a closed stage).
    pub expected_to_date_m3: f64,
    pub actual_total_m3: f64,
    /// (actual − expected to date) / expected to date × 100; null when nothing is expected yet.
    pub difference_pct: Option<f64>,
    /// Total expected production of the whole curve.
    pub expected_total_m3: f64,
    pub yield_m3_per_kg_fresh: f64,
    pub yield_m3_per_kg_vs: Option<f64>,
    pub days_elapsed: u32,
    pub days_missing: u32,
    /// Days measured but only partly known (see [`ActualSeries::parcial`]).
    pub dias_parciales: u32,
    /// Minutes without gas data over the stage so far.
    pub minutos_sin_datos: u64,
    /// Meter samples set aside over the stage so far, by reason.
    pub descartes: Discards,
}

/// The whole comparison for one stage.
#[derive(Debug, Clone, Serialize)]
pub struct Production {
    pub expected: ExpectedSeries,
    pub actual: ActualSeries,
    pub summary: Summary,
}

/// Why the comparison cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum ProductionError {
    #[error("material {0:?} is not configured")]
    UnknownMaterial(String),
    #[error(transparent)]
    Model(#[from] model::ModelError),
}

/// How much of each day a stage's figures can cover: days are local days of `tz`; `today`
/// has had the fraction `today_elapsed` (0–1) pass.
#[derive(Debug, Clone, Copy)]
pub struct Calendar {
    /// The site's time zone.
    pub tz: chrono_tz::Tz,
    /// Today, site-local.
    pub today: DayNumber,
    /// Fraction of today already passed (0–1).
    pub today_elapsed: f64,
}

impl Calendar {
    /// Time of `day` that data could have covered so far, µs: the whole day, or today's
    /// elapsed part less the flow gap limit.
    fn window_us(&self, day: DayNumber, running: bool) -> i64 {
        let Some((start, end)) = day_bounds(self.tz, day) else {
            return 0;
        };
        let len = end - start;
        if running && day == self.today {
            let elapsed = (len as f64 * self.today_elapsed.clamp(0.0, 1.0)) as i64;
            (elapsed - MAX_FLOW_GAP_US).max(0)
        } else {
            len
        }
    }
}

/// Minutes of `window_us` without gas data, and whether a measured day is only partly known.
fn coverage(row: Option<&Daily>, window_us: i64) -> (u32, bool) {
    let minutes = |us: i64| (us.max(0) / 60_000_000) as u32;
    match row.and_then(|r| r.gas.method_and_volume()) {
        None => (minutes(window_us), false),
        Some((method, _)) => {
            let gas = row.map(|r| &r.gas);
            let missing = match (method, gas) {
                (Method::Flow, Some(g)) => minutes(window_us - g.flow_covered_us),
                _ => 0,
            };
            let changed = gas.is_some_and(|g| g.discards.meter_change > 0);
            (missing, missing > 0 || changed)
        }
    }
}

/// Compares `stage` with its measured `daily` rows (any order) up to today (site-local): while
/// a stage runs, today's expected production counts only for the part of the day already
/// elapsed, so a day that has just begun is not reported as a shortfall.
pub fn compute(
    stage: &Stage,
    material: Option<&MaterialParams>,
    daily: &[(DayNumber, Daily)],
    calendar: Calendar,
    closed_day: Option<DayNumber>,
) -> Result<Production, ProductionError> {
    let Calendar {
        today,
        today_elapsed,
        ..
    } = calendar;
    let material =
        material.ok_or_else(|| ProductionError::UnknownMaterial(stage.material_type.clone()))?;
    let e: Expected = model::expected_production(
        &StageInput {
            material_amount_kg: stage.material_amount_kg,
            material_humidity_pct: stage.material_humidity_pct,
            temperature_c: stage.temperature_c,
            material: material.clone(),
        },
        MAX_DAYS,
    )?;
    let date_of = |day: u32| day_date(stage.date + day as i32 - 1).to_string();
    let expected = ExpectedSeries {
        dates: e.days.iter().map(|d| date_of(*d)).collect(),
        days: e.days.clone(),
        daily_biogas_m3: e.daily_biogas_m3.clone(),
        cumulative_biogas_m3: e.cumulative_biogas_m3.clone(),
        a_biogas_m3: e.a_biogas_m3,
        params: ExpectedParams {
            material_type: stage.material_type.clone(),
            material: material.clone(),
            ts_kg: e.ts_kg,
            vs_kg: e.vs_kg,
            methane_potential_m3: e.methane_potential_m3,
            rm_m3_per_day: e.rm_m3_per_day,
            lag_days: e.lag_days,
            k_per_day: e.k_per_day,
            temperature_factor: e.temperature_factor,
            reached_95pct: e.reached_95pct,
        },
    };

    let last_day = closed_day.unwrap_or(today).min(today);
    let n_days = (last_day - stage.date + 1).max(0) as u32;
    let mut actual = ActualSeries {
        days: Vec::with_capacity(n_days as usize),
        dates: Vec::with_capacity(n_days as usize),
        daily_biogas_m3: Vec::with_capacity(n_days as usize),
        cumulative_biogas_m3: Vec::with_capacity(n_days as usize),
        missing: Vec::with_capacity(n_days as usize),
        readings: Vec::with_capacity(n_days as usize),
        minutos_sin_datos: Vec::with_capacity(n_days as usize),
        parcial: Vec::with_capacity(n_days as usize),
        descartes: Vec::with_capacity(n_days as usize),
        metodo: Vec::with_capacity(n_days as usize),
    };
    let mut total = 0.0;
    let mut discards = Discards::default();
    let running = closed_day.is_none();
    for i in 0..n_days {
        let day = stage.date + i as i32;
        let row = daily.iter().find(|(d, _)| *d == day).map(|(_, r)| r);
        let produced = row.and_then(|r| r.gas.produced());
        total += produced.unwrap_or(0.0);
        actual.days.push(i + 1);
        actual.dates.push(day_date(day).to_string());
        actual.daily_biogas_m3.push(produced.unwrap_or(0.0));
        actual.cumulative_biogas_m3.push(total);
        actual.missing.push(produced.is_none());
        actual.readings.push(row.map_or(0, |r| r.count));
        let (minutes, partial) = coverage(row, calendar.window_us(day, running));
        actual.minutos_sin_datos.push(minutes);
        actual.parcial.push(partial);
        let day_discards = row.map(|r| r.gas.discards).unwrap_or_default();
        discards.merge(&day_discards);
        actual.descartes.push(day_discards);
        actual.metodo.push(
            row.and_then(|r| r.gas.method_and_volume())
                .map(|(m, _)| m.name()),
        );
    }

    let cum = &e.cumulative_biogas_m3;
    let partial = if closed_day.is_none() && last_day == today {
        today_elapsed.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let expected_to_date = match n_days as usize {
        0 => 0.0,
        n if n > cum.len() => cum.last().copied().unwrap_or(0.0),
        n => {
            let before = if n >= 2 { cum[n - 2] } else { 0.0 };
            before + (cum[n - 1] - before) * partial
        }
    };
    let summary = Summary {
        expected_to_date_m3: expected_to_date,
        actual_total_m3: total,
        difference_pct: (expected_to_date > 0.0)
            .then(|| (total - expected_to_date) / expected_to_date * 100.0),
        expected_total_m3: e.cumulative_biogas_m3.last().copied().unwrap_or(0.0),
        yield_m3_per_kg_fresh: total / stage.material_amount_kg,
        yield_m3_per_kg_vs: (e.vs_kg > 0.0).then(|| total / e.vs_kg),
        days_elapsed: n_days,
        days_missing: actual.missing.iter().filter(|m| **m).count() as u32,
        dias_parciales: actual.parcial.iter().filter(|p| **p).count() as u32,
        minutos_sin_datos: actual.minutos_sin_datos.iter().map(|m| u64::from(*m)).sum(),
        descartes: discards,
    };
    Ok(Production {
        expected,
        actual,
        summary,
    })
}

#[cfg(test)]
mod tests {
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
        assert_eq!(a.daily_biogas_m3, vec![1.0, 0.0, 2.0, 0.5]);
        let s = &p.summary;
        assert_eq!((s.days_missing, s.dias_parciales), (1, 3));
        assert_eq!(s.minutos_sin_datos, 90 + 1440 + 45);
        assert_eq!((s.descartes.glitch, s.descartes.meter_change), (2, 1));
        assert!((s.actual_total_m3 - 3.5).abs() < 1e-12);
    }
}
