//! Normal cubic metres: the volume a metered amount of wet biogas would take as dry gas at
//! 0 °C and 1013.25 hPa, the unit of B0 and of the expected curve.
//!
//! A gas meter counts *actual* m³ at the digester's pressure and temperature, saturated with
//! water vapour. Following Hafner et al. 2015 (R `biogas::stdVol`):
//!
//! V_N = V_m · (P − RH·p_w(T)) / 101.325 · 273.15 / (T + 273.15), P and p_w in kPa, T in °C,
//!
//! with p_w(T) = 0.61094 · exp(17.625·T / (T + 243.04)) kPa (Magnus form, Alduchov & Eskridge
//! 1996, J. Appl. Meteorol. 35:601, eq. 21). Without a pressure sensor P is the ambient
//! pressure from the site's altitude by the standard atmosphere (ISO 2533):
//! P = 1013.25 · (1 − 2.25577·10⁻⁵ · h)^5.25588 hPa.
//!
//! Each metered interval is converted with the conditions known at its end: the newest
//! `presion`, `temperatura` and `humedad` of the same source (topic) no older than
//! [`MAX_CONDITION_AGE_US`], else the site settings of `[site]`.

use serde::{Deserialize, Serialize};

use crate::reading::{Channel, Reading};

/// Standard pressure of the normal state, kPa.
pub const NORMAL_PRESSURE_KPA: f64 = 101.325;
/// 0 °C in kelvin.
pub const ZERO_CELSIUS_K: f64 = 273.15;
/// A pressure, temperature or humidity reading older than this (meter time) no longer
/// describes the gas: the site settings are used instead. One hour covers sensors that report
/// every few minutes and a short outage.
pub const MAX_CONDITION_AGE_US: i64 = 3_600_000_000;

/// How the `presion` field is measured (`site.pressure_reading`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PressureReading {
    /// Absolute pressure (a barometric sensor in the gas line).
    Absolute,
    /// Pressure above the atmosphere (a manometer on the bag): ambient is added.
    Gauge,
}

/// Unit of the `presion` field (`site.pressure_unit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PressureUnit {
    #[serde(rename = "hPa")]
    HPa,
    #[serde(rename = "mbar")]
    Mbar,
    #[serde(rename = "kPa")]
    KPa,
    #[serde(rename = "Pa")]
    Pa,
    #[serde(rename = "bar")]
    Bar,
    /// Centimetres of water column (U-tube manometers of bag digesters).
    #[serde(rename = "cmH2O")]
    CmH2O,
}

impl PressureUnit {
    /// kPa per unit.
    pub fn kpa(self) -> f64 {
        match self {
            PressureUnit::HPa | PressureUnit::Mbar => 0.1,
            PressureUnit::KPa => 1.0,
            PressureUnit::Pa => 0.001,
            PressureUnit::Bar => 100.0,
            PressureUnit::CmH2O => 0.098_066_5,
        }
    }
}

/// Where the gas temperature comes from (`site.gas_temperature`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GasTemperature {
    /// The `temperatura` channel, else `site.gas_temperature_c`.
    Sensor,
    /// Always `site.gas_temperature_c`.
    Fixed,
}

/// What is assumed about the gas's water vapour (`site.gas_humidity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GasHumidity {
    /// Biogas leaves the digester saturated: RH = 100 %.
    Saturated,
    /// The `humedad` channel is the gas's relative humidity (else saturated).
    Sensor,
}

/// The site settings of the conversion, from `[site]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GasSite {
    /// Ambient pressure, kPa (from `ambient_pressure_hpa`, else the altitude).
    pub ambient_kpa: f64,
    pub pressure_reading: PressureReading,
    pub pressure_unit: PressureUnit,
    pub gas_temperature: GasTemperature,
    /// Fixed gas temperature, and the fallback without a recent reading, °C.
    pub gas_temperature_c: f64,
    pub gas_humidity: GasHumidity,
}

impl Default for GasSite {
    /// Sea level, absolute hPa, 20 °C, saturated: the conversion's neutral settings for tests
    /// of other parts.
    fn default() -> Self {
        Self {
            ambient_kpa: NORMAL_PRESSURE_KPA,
            pressure_reading: PressureReading::Absolute,
            pressure_unit: PressureUnit::HPa,
            gas_temperature: GasTemperature::Sensor,
            gas_temperature_c: 20.0,
            gas_humidity: GasHumidity::Saturated,
        }
    }
}

/// Ambient pressure at `altitude_m` metres by the standard atmosphere, hPa.
pub fn pressure_at_altitude_hpa(altitude_m: f64) -> f64 {
    1013.25 * (1.0 - 2.25577e-5 * altitude_m).powf(5.25588)
}

/// Saturation vapour pressure of water over liquid water at `t_c` °C, kPa (Magnus form).
pub fn saturation_vapour_kpa(t_c: f64) -> f64 {
    0.61094 * (17.625 * t_c / (t_c + 243.04)).exp()
}

/// Nm³ of dry gas per actual m³ of gas at absolute pressure `p_kpa`, temperature `t_c` and
/// relative humidity `rh` (0–1).
pub fn normal_factor(p_kpa: f64, t_c: f64, rh: f64) -> f64 {
    let dry = (p_kpa - rh * saturation_vapour_kpa(t_c)).max(0.0);
    dry / NORMAL_PRESSURE_KPA * ZERO_CELSIUS_K / (t_c + ZERO_CELSIUS_K)
}

/// A condition value at a meter time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub value: f64,
    pub at_us: i64,
}

/// The newest pressure, temperature, humidity and methane readings of one source, carried
/// with its meter state so an interval is converted with the conditions of its own time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conditions {
    /// `presion`, as sent (unit and kind per the site settings).
    pub pressure: Option<Sample>,
    /// `temperatura`, °C.
    pub temperature: Option<Sample>,
    /// `humedad`, %.
    pub humidity: Option<Sample>,
    /// `calidad`, % CH₄.
    pub methane: Option<Sample>,
}

/// The conditions an interval was converted with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Applied {
    /// Nm³ per measured m³.
    pub factor: f64,
    /// Methane share (0–1) measured at the time, if any.
    pub methane: Option<f64>,
}

fn fresh(s: Option<Sample>, at_us: i64) -> Option<f64> {
    s.filter(|s| at_us.saturating_sub(s.at_us) <= MAX_CONDITION_AGE_US)
        .map(|s| s.value)
}

impl Conditions {
    /// Remembers the condition fields of `r`, read at meter time `at_us`.
    pub fn update(&mut self, r: &Reading, at_us: i64) {
        let keep = |slot: &mut Option<Sample>, c: Channel| {
            if let Some(value) = r.get(c)
                && slot.is_none_or(|s| s.at_us <= at_us)
            {
                *slot = Some(Sample { value, at_us });
            }
        };
        keep(&mut self.pressure, Channel::Presion);
        keep(&mut self.temperature, Channel::Temperatura);
        keep(&mut self.humidity, Channel::Humedad);
        keep(&mut self.methane, Channel::Calidad);
    }

    /// Absolute gas pressure at `at_us`, kPa: the newest plausible `presion`, else ambient.
    pub fn pressure_kpa(&self, site: &GasSite, at_us: i64) -> f64 {
        let measured = fresh(self.pressure, at_us).map(|v| v * site.pressure_unit.kpa());
        let absolute = match (site.pressure_reading, measured) {
            (PressureReading::Absolute, Some(p)) => Some(p),
            (PressureReading::Gauge, Some(g)) => Some(site.ambient_kpa + g),
            (_, None) => None,
        };
        // A value no digester can have (a gauge sensor configured as absolute, a unit
        // mistake) is not used: 30–150 kPa spans sea level to 9 km plus any bag pressure.
        absolute
            .filter(|p| (30.0..=150.0).contains(p))
            .unwrap_or(site.ambient_kpa)
    }

    /// Gas temperature at `at_us`, °C.
    pub fn temperature_c(&self, site: &GasSite, at_us: i64) -> f64 {
        match site.gas_temperature {
            GasTemperature::Fixed => site.gas_temperature_c,
            GasTemperature::Sensor => fresh(self.temperature, at_us)
                .filter(|t| (-30.0..=80.0).contains(t))
                .unwrap_or(site.gas_temperature_c),
        }
    }

    /// Relative humidity of the gas at `at_us`, 0–1.
    pub fn relative_humidity(&self, site: &GasSite, at_us: i64) -> f64 {
        match site.gas_humidity {
            GasHumidity::Saturated => 1.0,
            GasHumidity::Sensor => fresh(self.humidity, at_us)
                .map(|h| (h / 100.0).clamp(0.0, 1.0))
                .unwrap_or(1.0),
        }
    }

    /// The conversion for an interval ending at `at_us`.
    pub fn applied(&self, site: &GasSite, at_us: i64) -> Applied {
        let t = self.temperature_c(site, at_us);
        Applied {
            factor: normal_factor(
                self.pressure_kpa(site, at_us),
                t,
                self.relative_humidity(site, at_us),
            ),
            methane: fresh(self.methane, at_us)
                .filter(|m| *m > 0.0 && *m <= 100.0)
                .map(|m| m / 100.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Sea level, 25 °C, saturated:
    /// p_w(25) = 0.61094·exp(17.625·25/268.04) = 0.61094·exp(1.643878) = 0.61094·5.175200
    ///         = 3.16174 kPa;
    /// V_N/V_m = (101.325 − 3.16174)/101.325 · 273.15/298.15 = 0.968796 · 0.916150 = 0.887562.
    /// (Domain check: 0.888 Nm³; 1 Nm³ reads as 1/0.8876 = 1.127 m³.)
    #[test]
    fn sea_level_matches_the_hand_calculation() {
        assert!(close(saturation_vapour_kpa(25.0), 3.16174, 1e-5));
        let f = normal_factor(NORMAL_PRESSURE_KPA, 25.0, 1.0);
        assert!(close(f, 0.887562, 1e-6), "{f}");
        assert!(close(pressure_at_altitude_hpa(0.0), 1013.25, 1e-12));
        // Dry gas at the normal state is its own normal volume.
        assert!(close(
            normal_factor(NORMAL_PRESSURE_KPA, 0.0, 0.0),
            1.0,
            1e-12
        ));
    }

    /// Bogotá, 2,640 m, gas at 20 °C, saturated:
    /// P = 1013.25·(1 − 2.25577e-5·2640)^5.25588 = 1013.25·0.9404477^5.25588
    ///   = 1013.25·exp(5.25588·(−0.0613993)) = 1013.25·exp(−0.322707) = 1013.25·0.724186
    ///   = 733.78 hPa = 73.378 kPa;
    /// p_w(20) = 0.61094·exp(17.625·20/263.04) = 0.61094·exp(1.340100) = 0.61094·3.819425
    ///         = 2.33344 kPa;
    /// V_N/V_m = (73.378 − 2.33344)/101.325 · 273.15/293.15 = 0.701157 · 0.931776 = 0.653321;
    /// 1 Nm³ reads as 1/0.653321 = 1.5306 m³ (domain note: ~1.53).
    #[test]
    fn bogota_matches_the_hand_calculation() {
        let p = pressure_at_altitude_hpa(2640.0);
        assert!(close(p, 733.78, 0.01), "{p}");
        assert!(close(saturation_vapour_kpa(20.0), 2.33344, 1e-5));
        let f = normal_factor(p / 10.0, 20.0, 1.0);
        assert!(close(f, 0.653321, 2e-6), "{f}");
        assert!(close(1.0 / f, 1.5306, 1e-4));
        // Domain check at 88 kPa, 20 °C: 0.788 Nm³.
        assert!(close(normal_factor(88.0, 20.0, 1.0), 0.788, 5e-4));
    }

    #[test]
    fn conditions_follow_the_newest_fresh_reading_and_fall_back_to_the_site() {
        let site = GasSite {
            ambient_kpa: 73.378,
            pressure_reading: PressureReading::Gauge,
            pressure_unit: PressureUnit::Mbar,
            ..GasSite::default()
        };
        let mut c = Conditions::default();
        let reading = |values: &[(Channel, f64)]| {
            let mut r = Reading {
                values: [None; crate::reading::CHANNELS],
                extra: vec![],
                sensor_ts_ms: None,
                source: "t".into(),
                clock: Default::default(),
            };
            for (ch, v) in values {
                r.values[*ch as usize] = Some(*v);
            }
            r
        };
        // Nothing known: ambient, 20 °C.
        assert!(close(c.pressure_kpa(&site, 0), 73.378, 1e-12));
        assert_eq!(c.temperature_c(&site, 0), 20.0);
        c.update(
            &reading(&[(Channel::Presion, 12.0), (Channel::Temperatura, 25.0)]),
            1_000,
        );
        // 12 mbar gauge = 1.2 kPa above ambient.
        assert!(close(c.pressure_kpa(&site, 2_000), 74.578, 1e-9));
        assert_eq!(c.temperature_c(&site, 2_000), 25.0);
        // An older reading arriving late does not replace a newer one.
        c.update(&reading(&[(Channel::Temperatura, 10.0)]), 500);
        assert_eq!(c.temperature_c(&site, 2_000), 25.0);
        // Stale after an hour: the site settings again.
        let later = 1_000 + MAX_CONDITION_AGE_US + 1;
        assert!(close(c.pressure_kpa(&site, later), 73.378, 1e-12));
        assert_eq!(c.temperature_c(&site, later), 20.0);
        // An absurd value is not used (a 1013 hPa absolute sensor configured as gauge mbar).
        c.update(&reading(&[(Channel::Presion, 1013.0)]), later);
        assert!(close(c.pressure_kpa(&site, later), 73.378, 1e-12));
    }
}
