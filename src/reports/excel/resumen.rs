//! The `Resumen` sheet: the field/value pairs of the previous system (then a few more), and
//! the sensor statistics table under them.

use rust_xlsxwriter::{Format, FormatAlign, Worksheet, XlsxError};

use super::{excel_date, header_format};
use crate::reports::data::ReportData;
use crate::reports::render::format::{
    DASH, round_celsius, round_kg, round_m3, round_pct, round_to, round_yield, sensor_decimals,
};

const RESUMEN: &str = "Resumen";

/// One value of the `Resumen` sheet.
enum Value {
    Text(String),
    /// A number and its Excel number format.
    Number(f64, &'static str),
    /// A `YYYY-MM-DD` date, written as a date cell.
    Date(String),
    /// Shown as a dash.
    Missing,
}

/// The `Resumen` sheet: field/value pairs, then the sensor statistics.
pub(super) fn sheet(data: &ReportData) -> Result<Worksheet, XlsxError> {
    let mut ws = Worksheet::new();
    ws.set_name(RESUMEN)?;
    ws.set_column_width(0, 38)?;
    ws.set_column_width(1, 70)?;
    for c in 2..=5 {
        ws.set_column_width(c, 12)?;
    }
    let label = Format::new().set_bold().set_align(FormatAlign::Top);
    let text = Format::new()
        .set_text_wrap()
        .set_align(FormatAlign::Top)
        .set_align(FormatAlign::Left);
    let rows = pairs(data);
    for (row, (name, value)) in (0u32..).zip(&rows) {
        ws.write_string_with_format(row, 0, *name, &label)?;
        match value {
            Value::Text(v) => ws.write_string_with_format(row, 1, v, &text)?,
            Value::Number(v, f) => {
                let fmt = Format::new()
                    .set_num_format(*f)
                    .set_align(FormatAlign::Left);
                ws.write_number_with_format(row, 1, *v, &fmt)?
            }
            Value::Date(v) => match excel_date(v) {
                Some(d) => {
                    let fmt = Format::new()
                        .set_num_format("yyyy-mm-dd")
                        .set_align(FormatAlign::Left);
                    ws.write_datetime_with_format(row, 1, &d, &fmt)?
                }
                None => ws.write_string_with_format(row, 1, v, &text)?,
            },
            Value::Missing => ws.write_string_with_format(row, 1, DASH, &text)?,
        };
    }
    let top = u32::try_from(rows.len()).unwrap_or(0) + 1;
    sensors(&mut ws, data, top, &label)?;
    Ok(ws)
}

/// The fields, in the order of the previous system, then the model inputs.
fn pairs(data: &ReportData) -> Vec<(&'static str, Value)> {
    let s = &data.stage;
    let t = &data.totals;
    let number = |x: f64, round: fn(f64) -> f64, f| Value::Number(round(x), f);
    let opt = |x: Option<f64>, round: fn(f64) -> f64, f| {
        x.map_or(Value::Missing, |v| number(v, round, f))
    };
    let text = |s: &str| Value::Text(s.to_string());
    vec![
        ("Sitio", text(&data.site_name)),
        ("Tipo de reporte", text(data.report_type.label())),
        ("Etapa N°", Value::Number(f64::from(s.number), "0")),
        ("Fecha de llenado", Value::Date(s.date.clone())),
        ("Personas", text(&s.people)),
        ("Material", text(&s.material_type)),
        (
            "Cantidad (kg)",
            number(s.material_amount_kg, round_kg, "0.0"),
        ),
        (
            "Humedad (%)",
            number(s.material_humidity_pct, round_pct, "0.0"),
        ),
        (
            "Agua añadida (m3)",
            number(s.added_water_m3, round_m3, "0.000"),
        ),
        (
            "Temperatura (°C)",
            number(s.temperature_c, round_celsius, "0.0"),
        ),
        (
            "Producción esperada a la fecha (Nm3)",
            number(t.expected_to_date_m3, round_m3, "0.000"),
        ),
        (
            "Producción esperada total (Nm3)",
            number(t.expected_total_m3, round_m3, "0.000"),
        ),
        (
            "Producción real (Nm3)",
            number(t.actual_total_m3, round_m3, "0.000"),
        ),
        (
            "Producción medida por el contador (m3)",
            number(t.actual_total_m3_medido, round_m3, "0.000"),
        ),
        ("Diferencia (%)", opt(t.difference_pct, round_pct, "0.0")),
        (
            "Rendimiento (Nm3 biogás/kg)",
            number(t.yield_m3_per_kg_fresh, round_yield, "0.0000"),
        ),
        (
            "Rendimiento (Nm3 biogás/kg SV)",
            opt(t.yield_m3_per_kg_vs, round_yield, "0.0000"),
        ),
        (
            "Metano por kg SV (Nm3 CH4/kg SV, comparable con B0)",
            opt(t.methane_yield_nm3_per_kg_vs, round_yield, "0.0000"),
        ),
        ("Días sin datos", Value::Text(missing_days_text(data))),
        ("Alarmas del período", Value::Text(alarms_text(data))),
        ("Inferencias", text(&data.inferences)),
        ("Observaciones", text(&data.observations)),
        ("Autor", text(&data.author)),
        ("Generado", text(&data.generated_at)),
        ("Sólidos totales (kg)", number(t.ts_kg, round_kg, "0.0")),
        ("Sólidos volátiles (kg)", number(t.vs_kg, round_kg, "0.0")),
        (
            "Potencial de biogás A (Nm3)",
            number(t.a_biogas_m3, round_m3, "0.000"),
        ),
        ("Parámetros del modelo", text(&data.model_source)),
    ]
}

/// The sensor statistics table, its title on row `top`.
fn sensors(
    ws: &mut Worksheet,
    data: &ReportData,
    top: u32,
    title: &Format,
) -> Result<(), XlsxError> {
    let header = header_format();
    ws.write_string_with_format(top, 0, "Estadísticas de sensores", title)?;
    let names = [
        "Canal",
        "Mínimo",
        "Media",
        "Máximo",
        "Lecturas",
        "Identificador",
    ];
    for (col, name) in (0u16..).zip(names) {
        ws.write_string_with_format(top + 1, col, name, &header)?;
    }
    for (row, st) in (top + 2..).zip(&data.sensors) {
        let decimals = sensor_decimals(&st.label);
        let fmt = Format::new().set_num_format(match decimals {
            0 => "0".to_string(),
            d => format!("0.{}", "0".repeat(d)),
        });
        let name = if st.label.is_empty() {
            &st.channel
        } else {
            &st.label
        };
        ws.write_string(row, 0, name)?;
        for (col, v) in [(1u16, st.min), (2, st.mean), (3, st.max)] {
            ws.write_number_with_format(row, col, round_to(v, decimals), &fmt)?;
        }
        ws.write_number(row, 4, st.count as f64)?;
        ws.write_string(row, 5, &st.channel)?;
    }
    if data.sensors.is_empty() {
        ws.write_string(top + 2, 0, "Sin lecturas de sensores en esta etapa.")?;
    }
    Ok(())
}

/// `N: fecha, fecha, ...` with ISO dates, or `0`.
fn missing_days_text(data: &ReportData) -> String {
    if data.missing_days.is_empty() {
        "0".to_string()
    } else {
        format!(
            "{}: {}",
            data.missing_days.len(),
            data.missing_days.join(", ")
        )
    }
}

/// The period's alarms in one cell: how many, then each one.
fn alarms_text(data: &ReportData) -> String {
    if data.alarms.is_empty() {
        return "Ninguna".into();
    }
    let lines: Vec<String> = data
        .alarms
        .iter()
        .map(|a| {
            let until = a.until.as_deref().unwrap_or("sigue activa");
            format!("{} – {} [{}] {}", a.since, until, a.severity, a.message)
        })
        .collect();
    format!("{}: {}", data.alarms.len(), lines.join("; "))
}
