//! Number and date formatting shared by the API and the three report formats, so the same
//! digits appear everywhere: volumes in m³ with 3 decimals, percentages with 1, yields
//! (m³/kg) with 4, masses in kg with 1, temperatures in °C with 1.
//!
//! Every formatter first rounds with [`round_to`] (half away from zero), then prints the
//! rounded value, so `m3(x)` always shows the digits of the JSON number `round_m3(x)`.
//! Plain functions (`m3`, `pct`, ...) use a '.' decimal point for CSV and machines; the `es_*`
//! functions use Spanish notation for the PDF: decimal comma, no thousands separator, and the
//! unit after a space (`34,580 m³`, `12,5 %`, `21,5 °C`).

use chrono::{DateTime, NaiveDate};

/// Shown where a value does not exist (no expected production to compare, no data).
pub const DASH: &str = "—";

/// Decimals of volumes in m³.
pub const M3_DECIMALS: usize = 3;
/// Decimals of percentages.
pub const PCT_DECIMALS: usize = 1;
/// Decimals of yields in m³/kg.
pub const YIELD_DECIMALS: usize = 4;
/// Decimals of masses in kg.
pub const KG_DECIMALS: usize = 1;
/// Decimals of temperatures in °C.
pub const CELSIUS_DECIMALS: usize = 1;

/// `x` rounded to `decimals` places, half away from zero; never returns `-0.0`.
/// Non-finite values are returned unchanged.
pub fn round_to(x: f64, decimals: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let factor = 10f64.powi(decimals.min(15) as i32);
    let r = (x * factor).round() / factor;
    if r == 0.0 { 0.0 } else { r }
}

/// A volume rounded to 3 decimals, as the API serves it.
pub fn round_m3(x: f64) -> f64 {
    round_to(x, M3_DECIMALS)
}

/// A percentage rounded to 1 decimal, as the API serves it.
pub fn round_pct(x: f64) -> f64 {
    round_to(x, PCT_DECIMALS)
}

/// A yield (m³/kg) rounded to 4 decimals, as the API serves it.
pub fn round_yield(x: f64) -> f64 {
    round_to(x, YIELD_DECIMALS)
}

/// A mass rounded to 1 decimal, as the API serves it.
pub fn round_kg(x: f64) -> f64 {
    round_to(x, KG_DECIMALS)
}

/// A temperature rounded to 1 decimal, as the API serves it.
pub fn round_celsius(x: f64) -> f64 {
    round_to(x, CELSIUS_DECIMALS)
}

/// `x` with exactly `decimals` places and a '.' decimal point; [`DASH`] if not finite.
pub fn fixed(x: f64, decimals: usize) -> String {
    if x.is_finite() {
        format!("{:.*}", decimals, round_to(x, decimals))
    } else {
        DASH.to_string()
    }
}

/// A volume in m³ with 3 decimals, '.' decimal point, no unit: `34.580`.
pub fn m3(x: f64) -> String {
    fixed(x, M3_DECIMALS)
}

/// A percentage with 1 decimal, no unit: `-12.5`; [`DASH`] for `None`.
pub fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| DASH.to_string(), |v| fixed(v, PCT_DECIMALS))
}

/// A yield in m³/kg with 4 decimals: `0.0231`; [`DASH`] for `None`.
pub fn yield_ratio(x: Option<f64>) -> String {
    x.map_or_else(|| DASH.to_string(), |v| fixed(v, YIELD_DECIMALS))
}

/// A mass in kg with 1 decimal, no unit: `1500.0`.
pub fn kg(x: f64) -> String {
    fixed(x, KG_DECIMALS)
}

/// A temperature in °C with 1 decimal, no unit: `21.5`.
pub fn celsius(x: f64) -> String {
    fixed(x, CELSIUS_DECIMALS)
}

/// Decimals for a sensor statistic, chosen from the unit in the channel's label:
/// 3 for m³ (flows and volumes), 1 for °C and %, 2 otherwise (pressures, pH, ...).
pub fn sensor_decimals(label: &str) -> usize {
    if label.contains("m³") || label.contains("m3") {
        M3_DECIMALS
    } else if label.contains("°C") || label.contains('%') {
        1
    } else {
        2
    }
}

/// A sensor statistic with the decimals of [`sensor_decimals`], '.' decimal point.
pub fn sensor(label: &str, x: f64) -> String {
    fixed(x, sensor_decimals(label))
}

/// Spanish notation of a number printed by the functions above: the decimal point becomes a
/// comma. Text without digits (such as [`DASH`]) is returned unchanged.
pub fn es(plain: &str) -> String {
    plain.replace('.', ",")
}

/// A normal volume (dry gas, 0 °C, 1013.25 hPa) in Spanish notation with its unit:
/// `34,580 Nm³`.
pub fn es_nm3(x: f64) -> String {
    with_unit(es(&m3(x)), "Nm³")
}

/// A volume in Spanish notation with its unit: `34,580 m³`.
pub fn es_m3(x: f64) -> String {
    with_unit(es(&m3(x)), "m³")
}

/// A percentage in Spanish notation: `12,5 %`; [`DASH`] for `None`.
pub fn es_pct(x: Option<f64>) -> String {
    with_unit(es(&pct(x)), "%")
}

/// A difference in percent with an explicit sign: `+12,5 %`, `-3,0 %`, `0,0 %`; [`DASH`] for
/// `None`.
pub fn es_diff_pct(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() && round_pct(v) > 0.0 => format!("+{}", es_pct(x)),
        _ => es_pct(x),
    }
}

/// A yield in Spanish notation, without unit: `0,0231`; [`DASH`] for `None`.
pub fn es_yield(x: Option<f64>) -> String {
    es(&yield_ratio(x))
}

/// A mass in Spanish notation with its unit: `1500,0 kg`.
pub fn es_kg(x: f64) -> String {
    with_unit(es(&kg(x)), "kg")
}

/// A temperature in Spanish notation with its unit: `21,5 °C`.
pub fn es_celsius(x: f64) -> String {
    with_unit(es(&celsius(x)), "°C")
}

/// A sensor statistic in Spanish notation (decimals from [`sensor_decimals`]).
pub fn es_sensor(label: &str, x: f64) -> String {
    es(&sensor(label, x))
}

/// A number in Spanish notation with a chosen number of decimals: `es_fixed(2.5, 1)` → `2,5`.
pub fn es_fixed(x: f64, decimals: usize) -> String {
    es(&fixed(x, decimals))
}

fn with_unit(number: String, unit: &str) -> String {
    if number == DASH {
        number
    } else {
        format!("{number} {unit}")
    }
}

/// A calendar date `YYYY-MM-DD` (or the date part of an RFC 3339 timestamp), if valid.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

/// A date as `dd/mm/aaaa` (`2026-03-01` → `01/03/2026`); the input unchanged if it is not a
/// date.
pub fn es_date(iso: &str) -> String {
    parse_date(iso).map_or_else(|| iso.to_string(), |d| d.format("%d/%m/%Y").to_string())
}

/// An RFC 3339 timestamp as local `dd/mm/aaaa hh:mm`, in the zone it was written in; the input
/// unchanged if it is not a timestamp.
pub fn es_datetime(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339.trim()).map_or_else(
        |_| rfc3339.to_string(),
        |t| t.format("%d/%m/%Y %H:%M").to_string(),
    )
}

/// The `YYYY-MM-DD` date of an RFC 3339 timestamp; the input unchanged if it is not one.
pub fn iso_date(rfc3339: &str) -> String {
    parse_date(rfc3339).map_or_else(|| rfc3339.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_have_three_decimals_and_match_the_api_rounding() {
        assert_eq!(m3(34.58), "34.580");
        assert_eq!(es_m3(34.58), "34,580 m³");
        assert_eq!(m3(0.0), "0.000");
        assert_eq!(m3(-0.0001), "0.000");
        assert_eq!(m3(1234.5), "1234.500");
        assert_eq!(es_m3(12345.6789), "12345,679 m³");
        for i in 0..20_000 {
            let x = f64::from(i) * 0.000_37 - 3.0;
            let shown: f64 = m3(x).parse().expect("a number");
            assert_eq!(shown, round_m3(x), "{x}");
        }
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(round_to(0.25, 1), 0.3);
        assert_eq!(round_to(-0.25, 1), -0.3);
        assert_eq!(round_m3(2.0004), 2.0);
        assert!(round_m3(f64::NAN).is_nan());
    }

    #[test]
    fn percentages_and_missing_values() {
        assert_eq!(pct(Some(12.345)), "12.3");
        assert_eq!(pct(None), DASH);
        assert_eq!(es_pct(Some(-3.04)), "-3,0 %");
        assert_eq!(es_pct(None), DASH);
        assert_eq!(es_diff_pct(Some(5.26)), "+5,3 %");
        assert_eq!(es_diff_pct(Some(0.01)), "0,0 %");
        assert_eq!(es_diff_pct(Some(-0.06)), "-0,1 %");
        assert_eq!(pct(Some(f64::INFINITY)), DASH);
    }

    #[test]
    fn yields_masses_and_temperatures() {
        assert_eq!(yield_ratio(Some(0.023_14)), "0.0231");
        assert_eq!(es_yield(Some(0.023_15)), "0,0232");
        assert_eq!(es_yield(None), DASH);
        assert_eq!(es_kg(1500.0), "1500,0 kg");
        assert_eq!(kg(12.25), "12.3");
        assert_eq!(es_celsius(21.54), "21,5 °C");
        assert_eq!(celsius(-0.04), "0.0");
    }

    #[test]
    fn sensor_decimals_follow_the_unit() {
        assert_eq!(sensor("Temperatura (°C)", 21.456), "21.5");
        assert_eq!(sensor("Metano (%)", 55.55), "55.6");
        assert_eq!(sensor("Caudal (m³/h)", 0.123_45), "0.123");
        assert_eq!(es_sensor("Presión (mbar)", 12.345_6), "12,35");
    }

    #[test]
    fn dates() {
        assert_eq!(es_date("2026-03-01"), "01/03/2026");
        assert_eq!(es_date("2026-03-01T10:00:00-05:00"), "01/03/2026");
        assert_eq!(es_date("ayer"), "ayer");
        assert_eq!(es_datetime("2026-11-27T14:05:09-03:00"), "27/11/2026 14:05");
        assert_eq!(es_datetime("no"), "no");
        assert_eq!(iso_date("2026-11-27T14:05:09-03:00"), "2026-11-27");
        assert_eq!(parse_date("2026-02-30"), None);
    }
}
