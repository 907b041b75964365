//! Realistic report content and helpers that run the real readers (poppler, openpyxl) for the
//! renderers' tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::reports::data::{ChannelStat, DayRow, ReportData, ReportType, StageInfo, Totals};

/// A stage of `n_days` days whose gas data stops `trailing_missing` days before the end (the
/// rest of the expected curve), with a few missing days in between.
pub(crate) fn report(n_days: u32, trailing_missing: u32) -> ReportData {
    let start = chrono::NaiveDate::from_ymd_opt(2026, 2, 20).expect("valid date");
    let last_data_day = n_days.saturating_sub(trailing_missing);
    let mut days = Vec::new();
    let (mut exp_cum, mut act_cum) = (0.0, 0.0);
    for day in 1..=n_days {
        let t = f64::from(day);
        // A bell-shaped daily curve like the model's, and measurements around it.
        let expected = 1.8 * (-((t - 18.0) / 14.0).powi(2)).exp() + 0.05;
        let missing = day > last_data_day || day % 11 == 4 || day == 7;
        let actual = if missing {
            0.0
        } else {
            expected * (0.8 + 0.3 * ((t * 1.7).sin() + 1.0) / 2.0)
        };
        exp_cum += expected;
        act_cum += actual;
        days.push(DayRow {
            day,
            date: (start + chrono::Days::new(u64::from(day - 1)))
                .format("%Y-%m-%d")
                .to_string(),
            expected_m3: round3(expected),
            actual_m3: round3(actual),
            // Bogotá, 20 °C, saturated: 1 Nm³ reads as 1.5306 m³.
            actual_measured_m3: round3(actual * 1.5306),
            expected_cumulative_m3: round3(exp_cum),
            actual_cumulative_m3: round3(act_cum),
            missing,
        });
    }
    let expected_to_date = days
        .iter()
        .rev()
        .find(|d| !d.missing)
        .map_or(0.0, |d| d.expected_cumulative_m3);
    let missing_days = days
        .iter()
        .filter(|d| d.missing)
        .map(|d| d.date.clone())
        .collect();
    ReportData {
        id: 42,
        site_name: "Granja Doña Inés — Biodigestor Ñandú".to_string(),
        report_type: ReportType::Final,
        stage: StageInfo {
            id: 7,
            number: 3,
            date: "2026-02-20".to_string(),
            people: "José Peña, María Núñez y Ángela Íñiguez (técnica de campo)".to_string(),
            material_type: "Estiércol bovino con suero de leche".to_string(),
            material_amount_kg: 1500.0,
            material_humidity_pct: 85.5,
            added_water_m3: 1.25,
            temperature_c: 22.5,
            active: false,
            created_at: "2026-02-20T08:15:00-05:00".to_string(),
            closed_at: Some("2026-06-20T17:30:00-05:00".to_string()),
        },
        totals: Totals {
            expected_to_date_m3: expected_to_date,
            expected_total_m3: round3(exp_cum),
            actual_total_m3: round3(act_cum),
            difference_pct: Some((act_cum - expected_to_date) / expected_to_date * 100.0),
            yield_m3_per_kg_fresh: act_cum / 1500.0,
            yield_m3_per_kg_vs: Some(act_cum / 174.2),
            methane_yield_nm3_per_kg_vs: Some(act_cum * 0.6 / 174.2),
            actual_total_m3_medido: round3(act_cum * 1.5306),
            ts_kg: 217.5,
            vs_kg: 174.2,
            a_biogas_m3: 52.26,
        },
        days,
        sensors: vec![
            stat("presion", "Presión (hPa)", 1008.2, 1012.456, 1019.9, 11_520),
            stat(
                "temperatura",
                "Temperatura (°C)",
                15.24,
                21.86,
                29.71,
                11_520,
            ),
            stat("humedad", "Humedad (%)", 61.0, 78.44, 99.0, 11_498),
            stat("calidad", "Metano (% CH₄)", 48.1, 57.35, 63.9, 9_870),
            stat(
                "caudal_gas_lmin",
                "Caudal de gas (L/min)",
                0.0,
                1.734,
                6.25,
                11_520,
            ),
        ],
        missing_days,
        inferences: "¿La producción fue baja? ¡Sí, en los días fríos! La temperatura media fue \
                     21,9 °C y el metano (CH₄) se mantuvo cerca del 57 %; la caída coincide con \
                     las noches de menos de 16 °C."
            .to_string(),
        observations: "Se añadió agua tibia el día 12 y se revisó la válvula de alivio, que \
                       perdía gas por la junta. El señor Núñez pidió repetir la carga con \
                       estiércol más fresco y menos paja; la mezcla del 20/02 tenía demasiada \
                       fibra y flotó durante la primera semana, formando una costra que hubo \
                       que romper a mano dos veces.\n\nPróxima visita: agrónoma Begoña Muñoz, \
                       con medición de pH y análisis de sólidos volátiles en laboratorio."
            .to_string(),
        author: "Begoña Muñoz".to_string(),
        generated_at: "2026-06-20T17:45:09-05:00".to_string(),
        model_source: "Gompertz modificado; B₀ y SV/ST de IPCC 2019, vol. 4, cap. 10 (bovinos, \
                       América Latina)"
            .to_string(),
        alarms: Vec::new(),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn stat(channel: &str, label: &str, min: f64, mean: f64, max: f64, count: u64) -> ChannelStat {
    ChannelStat {
        channel: channel.to_string(),
        label: label.to_string(),
        min,
        mean,
        max,
        count,
    }
}

/// A fresh temporary directory for one test's files.
pub(crate) fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// Writes `bytes` to `dir/name` and returns the path.
pub(crate) fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write test output");
    path
}

/// Runs an external checker and returns its standard output; fails the test with an install
/// hint when the tool is missing.
pub(crate) fn run_tool(program: &str, args: &[&str], package: &str) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{program}` ({e}): install it with `apt-get install -y {package}`")
        });
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 tool output")
}

/// A Python 3 interpreter that can `import openpyxl`: `python3` on the PATH, or Debian's
/// (where `apt-get install python3-openpyxl` puts the module).
pub(crate) fn python_with_openpyxl() -> String {
    for candidate in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import openpyxl"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return candidate.to_string();
        }
    }
    panic!(
        "no python3 with openpyxl found: install it with `apt-get install -y python3-openpyxl` \
         (or `pip install openpyxl`)"
    );
}
