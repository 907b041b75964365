//! Expected against actual production of one stage: the kinetic model's curve next to the gas
//! measured per site-local day (from the daily aggregates, so the cost grows with days, not
//! readings). Pure: the caller supplies the stage, its material and its daily rows.

use serde::Serialize;

use crate::model::{self, Expected, MaterialParams, StageInput};
use crate::sitetime::{DayNumber, day_date};
use crate::store::daily::Daily;
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

/// Compares `stage` with its measured `daily` rows (any order) up to `today` (site-local), of
/// which the fraction `today_elapsed` (0–1) has passed: while a stage runs, today's expected
/// production counts only for the part of the day already elapsed, so a day that has just
/// begun is not reported as a shortfall.
pub fn compute(
    stage: &Stage,
    material: Option<&MaterialParams>,
    daily: &[(DayNumber, Daily)],
    today: DayNumber,
    today_elapsed: f64,
    closed_day: Option<DayNumber>,
) -> Result<Production, ProductionError> {
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
    };
    let mut total = 0.0;
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
    };
    Ok(Production {
        expected,
        actual,
        summary,
    })
}
