//! Expected biogas production of a filling stage ("llenado") of the batch bag digester.
//!
//! Pure functions only: no I/O and no configuration reading. The caller supplies the load
//! (fresh mass, humidity), the digester temperature and the material's [`MaterialParams`].
//!
//! The chain of formulas, with units:
//!
//! - TS \[kg\] = mass \[kg\] × (1 − humidity \[%\] / 100)
//! - VS \[kg\] = TS × VS/TS
//! - methane potential \[m³ CH₄\] = VS × B0 \[m³ CH₄/kg VS\]
//! - A \[m³ biogas\] = methane potential / methane fraction
//! - f(T) \[-\]: temperature factor, see [`temperature`]
//! - k(T) \[d⁻¹\] = k35 · f(T); λ(T) \[d\] = λ35 / f(T) (colder → slower and later start)
//! - Rm \[m³/d\] = k(T) · A (maximum production rate of the Gompertz curve)
//! - G(t) \[m³\] = A · exp(−exp(Rm·e/A · (λ − t) + 1)) (modified Gompertz, Zwietering et al.
//!   1990, AEM 56:1875), with t in days since filling
//! - G*(t) \[m³\] = (G(t) − G(0)) · A / (A − G(0)): G(0) is not zero (6.6 % of A when λ = 0;
//!   Shen & Zhu 2015 name this flaw), so the curve is shifted to start at exactly 0 and
//!   rescaled so that it still tends to A.
//!
//! The fresh mass is converted to volatile solids before B0 is applied; using the fresh mass
//! as if it were VS overstates the expectation several-fold (≈ 9× for cattle manure).

mod params;
pub mod temperature;

#[cfg(test)]
mod tests;

pub use params::{MaterialParams, default_materials};
pub use temperature::temperature_factor;

use serde::Serialize;

/// Default horizon of the expected curve in days, used when the caller has no better limit.
pub const DEFAULT_MAX_DAYS: u32 = 365;

/// Fraction of A at which the expected curve is considered complete.
pub const STOP_FRACTION: f64 = 0.95;

/// One filling stage as the model needs it.
///
/// Exists to keep the model's inputs together and explicit, separate from how the stage is
/// stored or configured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageInput {
    /// Fresh mass loaded, kg (> 0).
    pub material_amount_kg: f64,
    /// Moisture of the fresh material, % of fresh mass (0–100).
    pub material_humidity_pct: f64,
    /// Digester temperature, °C (−10 to 80).
    pub temperature_c: f64,
    /// Parameters of the loaded material.
    pub material: MaterialParams,
}

/// Expected production of a stage, with the intermediate quantities shown for transparency.
///
/// Exists so that reports and the interface can compare measured gas with the expectation and
/// show how the expectation was obtained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expected {
    /// Total solids, kg.
    pub ts_kg: f64,
    /// Volatile solids, kg.
    pub vs_kg: f64,
    /// Methane potential VS × B0, m³ CH₄.
    pub methane_potential_m3: f64,
    /// Biogas potential A (Gompertz asymptote), m³ biogas.
    pub a_biogas_m3: f64,
    /// Maximum production rate Rm = k(T)·A, m³ biogas per day.
    pub rm_m3_per_day: f64,
    /// Effective lag λ(T) = λ35/f(T), days.
    pub lag_days: f64,
    /// Effective rate k(T) = k35·f(T), d⁻¹.
    pub k_per_day: f64,
    /// Temperature factor f(T), dimensionless (1 at 35 °C).
    pub temperature_factor: f64,
    /// Day numbers 1..=N since filling.
    pub days: Vec<u32>,
    /// Expected biogas produced during each day, m³ (day d: G*(d) − G*(d − 1)).
    pub daily_biogas_m3: Vec<f64>,
    /// Expected cumulative biogas at the end of each day, m³ (G*(d)).
    pub cumulative_biogas_m3: Vec<f64>,
    /// Whether the last day reached 95 % of A (false when `max_days` cut the curve short).
    pub reached_95pct: bool,
}

/// Why the model refused to compute an expectation.
///
/// Exists so that callers can show the operator which input or parameter is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A stage input is out of range or not a number.
    #[error("invalid {field}: {value} (expected {expected})")]
    InvalidInput {
        /// Name of the offending input field.
        field: &'static str,
        /// The rejected value.
        value: f64,
        /// The accepted range, in words.
        expected: &'static str,
    },
    /// The material parameters failed [`MaterialParams::validate`].
    #[error("invalid material parameters: {0}")]
    InvalidMaterial(String),
}

/// Fraction G(t)/A of the uncorrected Zwietering curve: exp(−exp(k·e·(λ − t) + 1)).
///
/// Uses Rm·e/A = k·e, so it never divides by A.
fn raw_fraction(k_per_day: f64, lag_days: f64, t_days: f64) -> f64 {
    (-(k_per_day * std::f64::consts::E * (lag_days - t_days) + 1.0).exp()).exp()
}

/// Fraction G*(t)/A of the corrected curve: (g(t) − g(0)) / (1 − g(0)) with g = G/A.
///
/// This equals (G(t) − G(0))·A/(A − G(0)) divided by A; g(0) ≤ exp(−e) ≈ 0.066, so the
/// denominator is at least 0.934. At t = 0 the result is exactly 0.
fn corrected_fraction(k_per_day: f64, lag_days: f64, t_days: f64) -> f64 {
    let g0 = raw_fraction(k_per_day, lag_days, 0.0);
    (raw_fraction(k_per_day, lag_days, t_days) - g0) / (1.0 - g0)
}

/// Modified Gompertz curve of Zwietering et al. 1990, G(t) = A·exp(−exp(Rm·e/A·(λ − t) + 1)),
/// written with k = Rm/A (m³, with A in m³, k in d⁻¹, λ and t in days).
///
/// Exists as the published form of the curve, for comparison and for the t95 relation; note
/// that G(0) > 0. The model itself uses [`gompertz_from_zero`].
pub fn gompertz(a_m3: f64, k_per_day: f64, lag_days: f64, t_days: f64) -> f64 {
    a_m3 * raw_fraction(k_per_day, lag_days, t_days)
}

/// Corrected Gompertz curve G*(t) = (G(t) − G(0))·A/(A − G(0)), m³.
///
/// Exists because the published curve does not start at zero; this one is exactly 0 at t = 0,
/// non-decreasing, and still tends to A.
pub fn gompertz_from_zero(a_m3: f64, k_per_day: f64, lag_days: f64, t_days: f64) -> f64 {
    a_m3 * corrected_fraction(k_per_day, lag_days, t_days)
}

/// Time (days) for the uncorrected Gompertz curve to reach 95 % of A: t95 = λ + 1.461/k.
///
/// Exists to estimate stage duration without computing the curve. Derivation: G/A = 0.95 ⇔
/// k·e·(t − λ) = 1 − ln(−ln 0.95) ≈ 3.970, so t − λ ≈ 3.970/e/k ≈ 1.461/k. The corrected curve
/// [`gompertz_from_zero`] reaches 95 % slightly later, because it subtracts G(0).
pub fn t95_days(lag_days: f64, k_per_day: f64) -> f64 {
    lag_days + 1.461 / k_per_day
}

/// Rejects a value that is NaN or outside `[min, max]`, naming the field.
fn check_input(
    field: &'static str,
    value: f64,
    min: f64,
    max: f64,
    expected: &'static str,
) -> Result<(), ModelError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ModelError::InvalidInput {
            field,
            value,
            expected,
        })
    }
}

/// Expected daily and cumulative biogas of a filling stage; see the module documentation for
/// the formulas.
///
/// Exists as the single entry point of the model. The curve is evaluated at the end of days
/// 1, 2, … and stops at the first day whose cumulative value reaches 95 % of A, or after
/// `max_days` days, whichever comes first.
pub fn expected_production(input: &StageInput, max_days: u32) -> Result<Expected, ModelError> {
    let mass = input.material_amount_kg;
    if !(mass > 0.0 && mass.is_finite()) {
        return Err(ModelError::InvalidInput {
            field: "material_amount_kg",
            value: mass,
            expected: "a finite mass > 0 kg",
        });
    }
    check_input(
        "material_humidity_pct",
        input.material_humidity_pct,
        0.0,
        100.0,
        "0 to 100 %",
    )?;
    check_input(
        "temperature_c",
        input.temperature_c,
        -10.0,
        80.0,
        "-10 to 80 °C",
    )?;
    if max_days == 0 {
        return Err(ModelError::InvalidInput {
            field: "max_days",
            value: 0.0,
            expected: "at least 1 day",
        });
    }
    let material = &input.material;
    material.validate().map_err(ModelError::InvalidMaterial)?;

    let ts_kg = mass * (1.0 - input.material_humidity_pct / 100.0);
    let vs_kg = ts_kg * material.vs_ts;
    let methane_potential_m3 = vs_kg * material.b0_m3_ch4_per_kg_vs;
    let a_biogas_m3 = methane_potential_m3 / material.methane_fraction;

    let factor = temperature_factor(input.temperature_c);
    let k = material.k_per_day * factor;
    let lag = material.lag_days / factor;

    let capacity = usize::try_from(max_days).unwrap_or(usize::MAX).min(4096);
    let mut days = Vec::with_capacity(capacity);
    let mut daily = Vec::with_capacity(capacity);
    let mut cumulative = Vec::with_capacity(capacity);
    let mut previous = 0.0;
    let mut reached_95pct = false;
    for day in 1..=max_days {
        let fraction = corrected_fraction(k, lag, f64::from(day));
        let total = a_biogas_m3 * fraction;
        days.push(day);
        daily.push(total - previous);
        cumulative.push(total);
        previous = total;
        if fraction >= STOP_FRACTION {
            reached_95pct = true;
            break;
        }
    }

    Ok(Expected {
        ts_kg,
        vs_kg,
        methane_potential_m3,
        a_biogas_m3,
        rm_m3_per_day: k * a_biogas_m3,
        lag_days: lag,
        k_per_day: k,
        temperature_factor: factor,
        days,
        daily_biogas_m3: daily,
        cumulative_biogas_m3: cumulative,
        reached_95pct,
    })
}
