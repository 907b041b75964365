//! The `[site]` keys of gas normalisation (altitude or ambient pressure, how `presion` is
//! measured, gas temperature and humidity) and of the model temperature: their defaults and
//! their validation.

use super::{ConfigError, SiteConfig};
use crate::normal_volume::{GasSite, pressure_at_altitude_hpa};

/// Default `site.altitude_m`: Bogotá (2,640 m), the city of the default time zone. A site
/// elsewhere must set its own: at 2,640 m 1 Nm³ reads as ~1.53 m³, at sea level ~1.1 m³.
pub const DEFAULT_ALTITUDE_M: f64 = 2640.0;

/// Default `site.gas_temperature_c`, °C: the gas temperature used without a recent
/// `temperatura` reading (or always, with `gas_temperature = "fixed"`).
pub const DEFAULT_GAS_TEMPERATURE_C: f64 = 20.0;

fn invalid(key: &str, value: f64, allowed: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.to_string(),
        allowed: allowed.into(),
    }
}

/// Checks the numeric gas keys of `[site]` (the named choices are checked when read).
pub fn check(site: &SiteConfig) -> Result<(), ConfigError> {
    let altitude = site.altitude_m;
    if !(altitude.is_finite() && (-500.0..=6000.0).contains(&altitude)) {
        return Err(invalid(
            "site.altitude_m",
            altitude,
            "metres above sea level from -500 to 6000 (it gives the ambient pressure when \
             site.ambient_pressure_hpa is 0)",
        ));
    }
    let ambient = site.ambient_pressure_hpa;
    if !(ambient == 0.0 || (ambient.is_finite() && (400.0..=1100.0).contains(&ambient))) {
        return Err(invalid(
            "site.ambient_pressure_hpa",
            ambient,
            "0 (from site.altitude_m) or the mean ambient pressure in hPa, 400 to 1100 (not \
             the sea-level pressure of a weather report)",
        ));
    }
    let t = site.gas_temperature_c;
    if !(t.is_finite() && (-20.0..=70.0).contains(&t)) {
        return Err(invalid(
            "site.gas_temperature_c",
            t,
            "a gas temperature in °C from -20 to 70",
        ));
    }
    Ok(())
}

/// The conversion settings of a validated `[site]`.
pub fn gas_site(site: &SiteConfig) -> GasSite {
    let ambient_hpa = if site.ambient_pressure_hpa > 0.0 {
        site.ambient_pressure_hpa
    } else {
        pressure_at_altitude_hpa(site.altitude_m)
    };
    GasSite {
        ambient_kpa: ambient_hpa / 10.0,
        pressure_reading: site.pressure_reading,
        pressure_unit: site.pressure_unit,
        gas_temperature: site.gas_temperature,
        gas_temperature_c: site.gas_temperature_c,
        gas_humidity: site.gas_humidity,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{Config, ConfigError, ValidConfig};

    fn load(text: &str, vars: &[(&str, &str)]) -> Result<ValidConfig, ConfigError> {
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::from_toml(
            &format!("[mqtt]\nallow_anonymous = true\n{text}"),
            Path::new("t.toml"),
            vars,
        )
    }

    #[test]
    fn region_picks_the_material_preset_and_a_file_value_still_wins() {
        let c = load("", &[]).unwrap();
        assert_eq!(c.raw.materials["bovino"].b0_m3_ch4_per_kg_vs, 0.10);
        let c = load("", &[("BIOGESTOR_SITE__REGION", "developed")]).unwrap();
        assert_eq!(c.raw.materials["bovino"].b0_m3_ch4_per_kg_vs, 0.19);
        let c = load(
            "[site]\nregion = \"developed\"\n[materials.bovino]\nb0_m3_ch4_per_kg_vs = 0.15\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.raw.materials["bovino"].b0_m3_ch4_per_kg_vs, 0.15);
        let e = load("[site]\nregion = \"europa\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("region") && e.contains("latin_america"), "{e}");
    }

    #[test]
    fn gas_keys_are_checked_and_give_the_site_conditions() {
        let c = load("", &[]).unwrap();
        let gas = c.meter_rules().gas;
        // Bogotá by default: 733.78 hPa.
        assert!(
            (gas.ambient_kpa - 73.378).abs() < 1e-3,
            "{}",
            gas.ambient_kpa
        );
        let c = load(
            "[site]\nambient_pressure_hpa = 1000\npressure_reading = \"gauge\"\n\
             pressure_unit = \"cmH2O\"\ngas_temperature = \"fixed\"\n",
            &[("BIOGESTOR_SITE__ALTITUDE_M", "0")],
        )
        .unwrap();
        let gas = c.meter_rules().gas;
        assert_eq!(gas.ambient_kpa, 100.0);
        assert_eq!(gas.pressure_unit, crate::normal_volume::PressureUnit::CmH2O);
        for (text, key) in [
            ("altitude_m = 9000", "site.altitude_m"),
            ("ambient_pressure_hpa = 101.3", "site.ambient_pressure_hpa"),
            ("gas_temperature_c = 90", "site.gas_temperature_c"),
            ("pressure_unit = \"psi\"", "pressure_unit"),
            ("pressure_reading = \"relative\"", "pressure_reading"),
            ("gas_humidity = \"dry\"", "gas_humidity"),
            ("model_temperature = \"auto\"", "model_temperature"),
        ] {
            let e = load(&format!("[site]\n{text}\n"), &[])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
