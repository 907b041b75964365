//! Expected biogas production of a filling stage ("llenado") of the batch bag digester.
//!
//! Pure functions only: no I/O and no configuration reading. The caller supplies the load
//! (fresh mass, humidity), the digester temperature and the material's [`MaterialParams`].
//!
//! The chain of formulas, with units:
//!
//! - TS \[kg\] = mass \[kg\] × (1 − humidity \[%\] / 100); humidity 0 % and 100 % are refused
//!   (they mean "not measured" or a typing mistake, never a real manure)
//! - VS \[kg\] = TS × VS/TS
//! - methane potential \[Nm³ CH₄\] = VS × B0 \[m³ CH₄/kg VS\]
//! - A \[Nm³ biogas\] = methane potential / methane fraction
//! - f(T) \[-\]: temperature factor, see [`temperature`] (Rosso cardinal model, 15/36/45 °C)
//! - τ \[d\] = Σ f(T_day) · (time of that day since loading): days of 35 °C kinetics. Each
//!   day advances by the factor of that day's *measured* mean digester temperature when one
//!   exists, else by the temperature typed with the stage (see [`StageInput`]). At a constant
//!   temperature this is the familiar k(T) = k35 · f(T), λ(T) = λ35 / f(T).
//! - Rm \[Nm³/d\] = k · A (maximum production rate of the Gompertz curve)
//! - G(τ) \[Nm³\] = A · exp(−exp(Rm·e/A · (λ − τ) + 1)) (modified Gompertz, Zwietering et
//!   al. 1990, AEM 56:1875), with k35 and λ35 of the material
//! - G*(τ) \[Nm³\] = (G(τ) − G(0)) · A / (A − G(0)): G(0) is not zero (6.6 % of A when λ = 0;
//!   Shen & Zhu 2015 name this flaw), so the curve is shifted to start at exactly 0 and
//!   rescaled so that it still tends to A; it runs until A is reached (see [`END_TOLERANCE`]).
//!
//! B0 is in normal cubic metres of methane (dry gas, 0 °C, 1013.25 hPa), so every volume here
//! is in Nm³; compare it with measured gas converted to Nm³, never with a meter's actual m³.
//!
//! The fresh mass is converted to volatile solids before B0 is applied; using the fresh mass
//! as if it were VS overstates the expectation several-fold (≈ 9× for cattle manure).

mod params;
pub mod temperature;

#[cfg(test)]
mod tests;

pub use params::{
    BOVINE_B0_DEVELOPED, BOVINE_B0_LATAM, MaterialParams, Region, default_materials,
    default_materials_for,
};
pub use temperature::temperature_factor;

use serde::Serialize;

/// Default horizon of the expected curve in days, used when the caller has no better limit.
pub const DEFAULT_MAX_DAYS: u32 = 365;

/// The curve is complete when less than this fraction of A remains; that remainder is booked on
/// the last day, so the curve ends at exactly A. (It used to stop at 95 % of A, which made a
/// long batch drift "above expected" once the curve stopped growing.)
pub const END_TOLERANCE: f64 = 1e-3;

/// Fraction of A reported as `reached_95pct` (kept for clients of the first version).
pub const FRACTION_95: f64 = 0.95;

/// Which temperature the expected curve advances by (`site.model_temperature`).
///
/// `Measured` is the default: a bag digester follows the weather, so the temperature typed
/// when loading is an estimate, while the daily mean of the `temperatura` sensor is what the
/// bacteria actually had. Days without a measurement (and the future) use the typed value.
/// `Typed` ignores the sensor (for a probe that is not in the slurry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelTemperature {
    /// The measured daily mean where one exists, else the typed temperature.
    #[default]
    Measured,
    /// Always the temperature typed with the stage.
    Typed,
}

/// One filling stage as the model needs it.
///
/// Exists to keep the model's inputs together and explicit, separate from how the stage is
/// stored or configured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageInput {
    /// Fresh mass loaded, kg (> 0).
    pub material_amount_kg: f64,
    /// Moisture of the fresh material, % of fresh mass (strictly between 0 and 100: 0 % would
    /// be perfectly dry material and 100 % pure water, both typing mistakes in practice).
    pub material_humidity_pct: f64,
    /// Digester temperature typed with the stage, °C (−10 to 80): used on days without a
    /// measured temperature and for the future.
    pub temperature_c: f64,
    /// Parameters of the loaded material.
    pub material: MaterialParams,
    /// Part of the loading day after the loading time, (0, 1]: the curve starts at loading,
    /// not at midnight, so day 1 only has this much time.
    pub first_day_fraction: f64,
    /// Measured mean digester temperature of each day (index 0 = loading day), °C; `None`
    /// where nothing was measured (the typed temperature is used).
    pub measured_temperature_c: Vec<Option<f64>>,
}

/// Expected production of a stage, with the intermediate quantities shown for transparency.
///
/// Exists so that reports and the interface can compare measured gas with the expectation and
/// show how the expectation was obtained. Volumes are normal cubic metres (dry gas, 0 °C,
/// 1013.25 hPa), the unit of B0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expected {
    /// Total solids, kg.
    pub ts_kg: f64,
    /// Volatile solids, kg.
    pub vs_kg: f64,
    /// Methane potential VS × B0, Nm³ CH₄.
    pub methane_potential_m3: f64,
    /// Biogas potential A (Gompertz asymptote), Nm³ biogas.
    pub a_biogas_m3: f64,
    /// Maximum production rate Rm = k(T)·A at the typed temperature, Nm³ biogas per day.
    pub rm_m3_per_day: f64,
    /// Effective lag λ(T) = λ35/f(T) at the typed temperature, days (infinite when f = 0).
    pub lag_days: f64,
    /// Effective rate k(T) = k35·f(T) at the typed temperature, d⁻¹.
    pub k_per_day: f64,
    /// Temperature factor f(T) of the typed temperature, dimensionless (1 at 35 °C).
    pub temperature_factor: f64,
    /// Day numbers 1..=N since filling.
    pub days: Vec<u32>,
    /// Temperature the curve advanced by each day, °C.
    pub temperature_c: Vec<f64>,
    /// Whether that temperature was measured (else typed).
    pub temperature_measured: Vec<bool>,
    /// Expected biogas produced during each day, Nm³ (day d: G*(τ_d) − G*(τ_{d−1})).
    pub daily_biogas_m3: Vec<f64>,
    /// Expected cumulative biogas at the end of each day, Nm³ (G*(τ_d)).
    pub cumulative_biogas_m3: Vec<f64>,
    /// Whether the last day reached 95 % of A.
    pub reached_95pct: bool,
    /// Whether the curve ran to A (false when `max_days` cut it short, e.g. in the cold).
    pub reached_a: bool,
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
/// 1, 2, … (day 1 ends `first_day_fraction` of a day after loading) and runs until less than
/// [`END_TOLERANCE`] of A remains (that remainder is booked on the last day, so the curve ends
/// at exactly A), or for `max_days` days, whichever comes first.
pub fn expected_production(input: &StageInput, max_days: u32) -> Result<Expected, ModelError> {
    let mass = input.material_amount_kg;
    if !(mass > 0.0 && mass.is_finite()) {
        return Err(ModelError::InvalidInput {
            field: "material_amount_kg",
            value: mass,
            expected: "a finite mass > 0 kg",
        });
    }
    let humidity = input.material_humidity_pct;
    if !(humidity > 0.0 && humidity < 100.0) {
        return Err(ModelError::InvalidInput {
            field: "material_humidity_pct",
            value: humidity,
            expected: "more than 0 and less than 100 %",
        });
    }
    check_input(
        "temperature_c",
        input.temperature_c,
        -10.0,
        80.0,
        "-10 to 80 °C",
    )?;
    let first = input.first_day_fraction;
    if !(first > 0.0 && first <= 1.0) {
        return Err(ModelError::InvalidInput {
            field: "first_day_fraction",
            value: first,
            expected: "more than 0 and at most 1 day",
        });
    }
    if max_days == 0 {
        return Err(ModelError::InvalidInput {
            field: "max_days",
            value: 0.0,
            expected: "at least 1 day",
        });
    }
    let material = &input.material;
    material.validate().map_err(ModelError::InvalidMaterial)?;

    let ts_kg = mass * (1.0 - humidity / 100.0);
    let vs_kg = ts_kg * material.vs_ts;
    let methane_potential_m3 = vs_kg * material.b0_m3_ch4_per_kg_vs;
    let a_biogas_m3 = methane_potential_m3 / material.methane_fraction;

    let factor = temperature_factor(input.temperature_c);
    let (k35, lag35) = (material.k_per_day, material.lag_days);

    let capacity = usize::try_from(max_days).unwrap_or(usize::MAX).min(4096);
    let mut out = Expected {
        ts_kg,
        vs_kg,
        methane_potential_m3,
        a_biogas_m3,
        rm_m3_per_day: k35 * factor * a_biogas_m3,
        lag_days: lag35 / factor,
        k_per_day: k35 * factor,
        temperature_factor: factor,
        days: Vec::with_capacity(capacity),
        temperature_c: Vec::with_capacity(capacity),
        temperature_measured: Vec::with_capacity(capacity),
        daily_biogas_m3: Vec::with_capacity(capacity),
        cumulative_biogas_m3: Vec::with_capacity(capacity),
        reached_95pct: false,
        reached_a: false,
    };
    let mut previous = 0.0;
    // τ: days of 35 °C kinetics since loading.
    let mut tau = 0.0;
    for day in 1..=max_days {
        let index = (day - 1) as usize;
        let measured = input
            .measured_temperature_c
            .get(index)
            .copied()
            .flatten()
            .filter(|t| t.is_finite());
        let temperature = measured.unwrap_or(input.temperature_c);
        let length = if day == 1 { first } else { 1.0 };
        tau += temperature_factor(temperature) * length;
        let fraction = corrected_fraction(k35, lag35, tau);
        let done = 1.0 - fraction <= END_TOLERANCE;
        let total = if done {
            a_biogas_m3
        } else {
            a_biogas_m3 * fraction
        };
        out.days.push(day);
        out.temperature_c.push(temperature);
        out.temperature_measured.push(measured.is_some());
        out.daily_biogas_m3.push(total - previous);
        out.cumulative_biogas_m3.push(total);
        previous = total;
        out.reached_95pct = fraction >= FRACTION_95;
        if done {
            out.reached_a = true;
            break;
        }
    }
    Ok(out)
}
