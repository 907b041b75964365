//! Expected against actual production of one stage: the kinetic model's curve next to the gas
//! measured per site-local day (from the daily aggregates, so the cost grows with days, not
//! readings). Pure: the caller supplies the stage, its material and its daily rows.
//!
//! The comparison is in normal cubic metres (dry gas, 0 °C, 1013.25 hPa), the unit of B0:
//! the fields named `*_m3` of the first version (`daily_biogas_m3`, `actual_total_m3`,
//! `expected_to_date_m3`, the yields) hold Nm³ so that old clients compare like with like;
//! the fields named `*_nm3` say so explicitly, and `*_m3_medido` are the meter's actual m³.

mod load;
mod measured;
mod now;
#[cfg(test)]
mod tests;

use serde::Serialize;

use crate::model::{self, Expected, MaterialParams, ModelTemperature, StageInput};
use crate::normal_volume::GasSite;
use crate::sitetime::{DayNumber, day_bounds, day_date};
use crate::store::daily::{Daily, Discards, MAX_FLOW_GAP_US, Method};
use crate::store::stages::Stage;
pub use load::loading_time_us;
use measured::DayGas;
pub use now::{NowError, compute_now};

/// Unit of the comparison, as shown to the operator.
pub const COMPARISON_UNIT: &str = "Nm³";

/// Longest expected curve computed, in days.
pub const MAX_DAYS: u32 = model::DEFAULT_MAX_DAYS;

/// The expected curve, aligned on the stage's calendar (day 1 = loading day, from the
/// loading time). Volumes in Nm³.
#[derive(Debug, Clone, Serialize)]
pub struct ExpectedSeries {
    pub days: Vec<u32>,
    pub dates: Vec<String>,
    /// Expected biogas per day, Nm³ (first-version name).
    pub daily_biogas_m3: Vec<f64>,
    /// Expected cumulative biogas, Nm³ (first-version name).
    pub cumulative_biogas_m3: Vec<f64>,
    /// The same, named with its unit.
    pub daily_biogas_nm3: Vec<f64>,
    pub cumulative_biogas_nm3: Vec<f64>,
    /// Expected methane per day, Nm³ CH₄ (biogas × the material's methane share).
    pub daily_metano_nm3: Vec<f64>,
    /// Temperature the curve advanced by each day, °C, and whether it was measured.
    pub temperatura_c: Vec<f64>,
    pub temperatura_medida: Vec<bool>,
    /// Biogas potential A, Nm³.
    #[serde(rename = "A_biogas_m3")]
    pub a_biogas_m3: f64,
    /// When the curve starts (RFC 3339, site zone).
    pub inicio: String,
    pub params: ExpectedParams,
}

/// How the expectation was obtained, shown for transparency.
#[derive(Debug, Clone, Serialize)]
pub struct ExpectedParams {
    pub material_type: String,
    pub material: MaterialParams,
    pub ts_kg: f64,
    pub vs_kg: f64,
    /// VS × B0, Nm³ CH₄.
    pub methane_potential_m3: f64,
    pub rm_m3_per_day: f64,
    pub lag_days: f64,
    pub k_per_day: f64,
    /// f(T) of the typed temperature (Rosso, 15/36/45 °C; 1 at 35 °C).
    pub temperature_factor: f64,
    pub reached_95pct: bool,
    /// Whether the curve runs to A within the horizon.
    pub llega_a_a: bool,
    /// `medida` (measured daily means where they exist) or `declarada` (typed).
    pub temperatura_modelo: &'static str,
}

/// Measured production per site-local day from the loading day to today (or the close).
#[derive(Debug, Clone, Serialize)]
pub struct ActualSeries {
    pub days: Vec<u32>,
    pub dates: Vec<String>,
    /// Biogas per day, Nm³ (first-version name; the comparison unit).
    pub daily_biogas_m3: Vec<f64>,
    /// Cumulative biogas, Nm³ (first-version name).
    pub cumulative_biogas_m3: Vec<f64>,
    /// The same, named with its unit.
    pub daily_biogas_nm3: Vec<f64>,
    pub cumulative_biogas_nm3: Vec<f64>,
    /// What the meter counted, actual m³ at the digester's pressure and temperature.
    pub daily_biogas_m3_medido: Vec<f64>,
    pub cumulative_biogas_m3_medido: Vec<f64>,
    /// Methane per day, Nm³ CH₄: biogas × measured `calidad`, else the material's share.
    pub daily_metano_nm3: Vec<f64>,
    /// True where the day's Nm³ come from its mean pressure and temperature instead of each
    /// interval's (a day stored by an earlier version; `biogestor reindex` recomputes it).
    pub nm3_estimado: Vec<bool>,
    /// Mean measured digester temperature of the day, °C.
    pub temperatura_media_c: Vec<Option<f64>>,
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

/// Totals and ratios for the operator, in Nm³ unless the name says `medido`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Unit of the comparison (`Nm³`).
    pub unidad: &'static str,
    /// Expected cumulative production up to now: whole days before today plus the elapsed
    /// part of today (whole days only for a closed stage), Nm³.
    pub expected_to_date_m3: f64,
    /// Measured production, Nm³.
    pub actual_total_m3: f64,
    /// (actual − expected to date) / expected to date × 100, both in Nm³; null when nothing
    /// is expected yet.
    pub difference_pct: Option<f64>,
    /// Total expected production of the whole curve (A), Nm³.
    pub expected_total_m3: f64,
    pub expected_to_date_nm3: f64,
    pub actual_total_nm3: f64,
    /// What the meter counted, actual m³.
    pub actual_total_m3_medido: f64,
    /// Methane measured (× `calidad`, else the material's share) and expected, Nm³ CH₄.
    pub actual_metano_nm3: f64,
    pub expected_metano_to_date_nm3: f64,
    /// Biogas per kg of fresh material, Nm³/kg (first-version name).
    pub yield_m3_per_kg_fresh: f64,
    /// Biogas per kg of volatile solids, Nm³/kg VS (first-version name; this is not B0).
    pub yield_m3_per_kg_vs: Option<f64>,
    /// The same, named with what it is.
    pub rendimiento_biogas_nm3_por_kg_sv: Option<f64>,
    /// Methane per kg of volatile solids, Nm³ CH₄/kg VS: the figure comparable with B0.
    pub rendimiento_metano_nm3_por_kg_sv: Option<f64>,
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

/// The site settings the comparison depends on.
#[derive(Debug, Clone, Copy, Default)]
pub struct SiteModel {
    /// Which temperature the curve advances by.
    pub model_temperature: ModelTemperature,
    /// How days stored without normal volumes are converted.
    pub gas: GasSite,
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
/// elapsed since the loading, so a day that has just begun is not reported as a shortfall.
pub fn compute(
    stage: &Stage,
    material: Option<&MaterialParams>,
    daily: &[(DayNumber, Daily)],
    calendar: Calendar,
    closed_day: Option<DayNumber>,
    site: SiteModel,
) -> Result<Production, ProductionError> {
    let Calendar { tz, today, .. } = calendar;
    let material =
        material.ok_or_else(|| ProductionError::UnknownMaterial(stage.material_type.clone()))?;
    let last_day = closed_day.unwrap_or(today).min(today);
    let n_days = (last_day - stage.date + 1).max(0) as u32;
    let row_of = |day: DayNumber| daily.iter().find(|(d, _)| *d == day).map(|(_, r)| r);

    let load_us = loading_time_us(tz, stage);
    let measured_temperature_c = match site.model_temperature {
        ModelTemperature::Typed => Vec::new(),
        ModelTemperature::Measured => (0..n_days)
            .map(|i| row_of(stage.date + i as i32).and_then(measured::mean_temperature))
            .collect(),
    };
    let e: Expected = model::expected_production(
        &StageInput {
            material_amount_kg: stage.material_amount_kg,
            material_humidity_pct: stage.material_humidity_pct,
            temperature_c: stage.temperature_c,
            material: material.clone(),
            first_day_fraction: load::first_day_fraction(tz, stage.date, load_us),
            measured_temperature_c,
        },
        MAX_DAYS,
    )?;
    let expected = expected_series(stage, material, &e, tz, load_us, site.model_temperature);

    let mut actual = ActualSeries::with_capacity(n_days as usize);
    let mut total = DayGas::default();
    let mut discards = Discards::default();
    let running = closed_day.is_none();
    for i in 0..n_days {
        let day = stage.date + i as i32;
        let row = row_of(day);
        let gas = row.and_then(|r| DayGas::of(r, &site.gas, material.methane_fraction));
        let g = gas.unwrap_or_default();
        total.add(&g);
        actual.days.push(i + 1);
        actual.dates.push(day_date(day).to_string());
        actual.daily_biogas_m3.push(g.nm3);
        actual.cumulative_biogas_m3.push(total.nm3);
        actual.daily_biogas_nm3.push(g.nm3);
        actual.cumulative_biogas_nm3.push(total.nm3);
        actual.daily_biogas_m3_medido.push(g.m3);
        actual.cumulative_biogas_m3_medido.push(total.m3);
        actual.daily_metano_nm3.push(g.ch4_nm3);
        actual.nm3_estimado.push(g.estimated);
        actual
            .temperatura_media_c
            .push(row.and_then(measured::mean_temperature));
        actual.missing.push(gas.is_none());
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

    let today_part = if running && last_day == today {
        load::elapsed_part_of_today(calendar, stage.date, load_us)
    } else {
        1.0
    };
    let expected_to_date = to_date(&e.cumulative_biogas_m3, n_days as usize, today_part);
    let vs = (e.vs_kg > 0.0).then_some(e.vs_kg);
    let summary = Summary {
        unidad: COMPARISON_UNIT,
        expected_to_date_m3: expected_to_date,
        actual_total_m3: total.nm3,
        difference_pct: (expected_to_date > 0.0)
            .then(|| (total.nm3 - expected_to_date) / expected_to_date * 100.0),
        expected_total_m3: e.cumulative_biogas_m3.last().copied().unwrap_or(0.0),
        expected_to_date_nm3: expected_to_date,
        actual_total_nm3: total.nm3,
        actual_total_m3_medido: total.m3,
        actual_metano_nm3: total.ch4_nm3,
        expected_metano_to_date_nm3: expected_to_date * material.methane_fraction,
        yield_m3_per_kg_fresh: total.nm3 / stage.material_amount_kg,
        yield_m3_per_kg_vs: vs.map(|vs| total.nm3 / vs),
        rendimiento_biogas_nm3_por_kg_sv: vs.map(|vs| total.nm3 / vs),
        rendimiento_metano_nm3_por_kg_sv: vs.map(|vs| total.ch4_nm3 / vs),
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

/// Expected cumulative production after `n` days, the last of them counted for `part`.
fn to_date(cum: &[f64], n: usize, part: f64) -> f64 {
    match n {
        0 => 0.0,
        n if n > cum.len() => cum.last().copied().unwrap_or(0.0),
        n => {
            let before = if n >= 2 { cum[n - 2] } else { 0.0 };
            before + (cum[n - 1] - before) * part
        }
    }
}

fn expected_series(
    stage: &Stage,
    material: &MaterialParams,
    e: &Expected,
    tz: chrono_tz::Tz,
    load_us: i64,
    model_temperature: ModelTemperature,
) -> ExpectedSeries {
    let date_of = |day: u32| day_date(stage.date + day as i32 - 1).to_string();
    ExpectedSeries {
        dates: e.days.iter().map(|d| date_of(*d)).collect(),
        days: e.days.clone(),
        daily_biogas_m3: e.daily_biogas_m3.clone(),
        cumulative_biogas_m3: e.cumulative_biogas_m3.clone(),
        daily_biogas_nm3: e.daily_biogas_m3.clone(),
        cumulative_biogas_nm3: e.cumulative_biogas_m3.clone(),
        daily_metano_nm3: e
            .daily_biogas_m3
            .iter()
            .map(|v| v * material.methane_fraction)
            .collect(),
        temperatura_c: e.temperature_c.clone(),
        temperatura_medida: e.temperature_measured.clone(),
        a_biogas_m3: e.a_biogas_m3,
        inicio: crate::sitetime::rfc3339(tz, load_us),
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
            llega_a_a: e.reached_a,
            temperatura_modelo: match model_temperature {
                ModelTemperature::Measured => "medida",
                ModelTemperature::Typed => "declarada",
            },
        },
    }
}

impl ActualSeries {
    fn with_capacity(n: usize) -> Self {
        Self {
            days: Vec::with_capacity(n),
            dates: Vec::with_capacity(n),
            daily_biogas_m3: Vec::with_capacity(n),
            cumulative_biogas_m3: Vec::with_capacity(n),
            daily_biogas_nm3: Vec::with_capacity(n),
            cumulative_biogas_nm3: Vec::with_capacity(n),
            daily_biogas_m3_medido: Vec::with_capacity(n),
            cumulative_biogas_m3_medido: Vec::with_capacity(n),
            daily_metano_nm3: Vec::with_capacity(n),
            nm3_estimado: Vec::with_capacity(n),
            temperatura_media_c: Vec::with_capacity(n),
            missing: Vec::with_capacity(n),
            readings: Vec::with_capacity(n),
            minutos_sin_datos: Vec::with_capacity(n),
            parcial: Vec::with_capacity(n),
            descartes: Vec::with_capacity(n),
            metodo: Vec::with_capacity(n),
        }
    }
}
