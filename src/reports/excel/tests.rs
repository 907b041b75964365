//! The workbook read back by openpyxl, the reader most scripts use.

use super::*;
use crate::reports::render::fixtures;
use crate::reports::render::format::round_pct;

/// Prints what openpyxl sees as JSON: sheet names, the `Resumen` pairs, the `Datos` rows (dates
/// as ISO strings, with a flag telling whether the cell is a real datetime), the frozen pane,
/// and the package's chart parts.
const READ_XLSX: &str = r#"
import datetime, json, sys, zipfile
import openpyxl
path = sys.argv[1]
wb = openpyxl.load_workbook(path)
res, dat = wb["Resumen"], wb["Datos"]
rows = []
for r in dat.iter_rows(min_row=2, values_only=True):
    rows.append([r[0], r[1].date().isoformat() if isinstance(r[1], datetime.datetime) else r[1],
                 isinstance(r[1], datetime.datetime), r[2], r[3], r[4], r[5], r[6]])
pairs = {str(r[0]): (r[1].isoformat() if isinstance(r[1], datetime.datetime) else r[1])
         for r in res.iter_rows(values_only=True) if r[0] is not None}
print(json.dumps({
    "sheets": wb.sheetnames,
    "header": [c.value for c in dat[1]],
    "rows": rows,
    "pairs": pairs,
    "date_format": dat["B2"].number_format,
    "num_format": dat["C2"].number_format,
    "freeze": dat.freeze_panes,
    "charts": sorted(n for n in zipfile.ZipFile(path).namelist() if n.startswith("xl/charts/")),
    "chart_xml": zipfile.ZipFile(path).read("xl/charts/chart1.xml").decode("utf-8"),
}))
"#;

fn read_back(data: &ReportData) -> serde_json::Value {
    let bytes = render_xlsx(data).expect("render");
    let dir = fixtures::temp_dir();
    let path = fixtures::write(dir.path(), "reporte.xlsx", &bytes);
    let python = fixtures::python_with_openpyxl();
    let path = path.to_str().expect("UTF-8 path");
    let out = fixtures::run_tool(&python, &["-c", READ_XLSX, path], "python3-openpyxl");
    serde_json::from_str(&out).expect("JSON from the reader")
}

#[test]
fn workbook_has_both_sheets_the_daily_rows_and_a_chart() {
    for (n, trailing) in [(10, 0), (120, 15)] {
        let data = fixtures::report(n, trailing);
        let v = read_back(&data);
        assert_eq!(v["sheets"], serde_json::json!(["Resumen", "Datos"]));
        assert_eq!(v["header"], serde_json::json!(DAILY_COLUMNS));
        assert_eq!(v["freeze"], "A2");
        assert_eq!(v["date_format"], "yyyy-mm-dd");
        assert_eq!(v["num_format"], "0.000");
        let rows = v["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), data.days.len(), "one row per day");
        for (row, day) in rows.iter().zip(&data.days) {
            assert_eq!(row[0], day.day);
            assert_eq!(row[1], day.date.as_str());
            assert_eq!(row[2], true, "Fecha is a datetime cell");
            assert_eq!(row[3].as_f64(), Some(round_m3(day.expected_m3)));
            assert_eq!(row[4].as_f64(), Some(round_m3(day.actual_m3)));
            assert_eq!(row[5].as_f64(), Some(round_m3(day.expected_cumulative_m3)));
            assert_eq!(row[6].as_f64(), Some(round_m3(day.actual_cumulative_m3)));
            assert_eq!(row[7], missing_mark(day.missing));
        }
        assert_eq!(v["charts"], serde_json::json!(["xl/charts/chart1.xml"]));
        let xml = v["chart_xml"].as_str().expect("chart xml");
        assert!(xml.contains("<c:lineChart>"), "a line chart");
        assert!(xml.contains("Día") && xml.contains("Producción acumulada"));
        // The actual series stops at the last day with data.
        let last = last_day_with_data(&data).expect("data") + 2;
        assert!(xml.contains(&format!("Datos!$F$2:$F${last}")), "{xml}");
        assert!(xml.contains(&format!("Datos!$E$2:$E${}", data.days.len() + 1)));
    }
}

#[test]
fn resumen_has_the_fields_of_the_previous_system_in_order() {
    let data = fixtures::report(10, 0);
    let v = read_back(&data);
    let pairs = v["pairs"].as_object().expect("pairs");
    let labels: Vec<&str> = pairs.keys().map(String::as_str).collect();
    for label in [
        "Sitio",
        "Tipo de reporte",
        "Etapa N°",
        "Fecha de llenado",
        "Personas",
        "Material",
        "Cantidad (kg)",
        "Humedad (%)",
        "Agua añadida (m3)",
        "Temperatura (°C)",
        "Producción esperada a la fecha (Nm3)",
        "Producción esperada total (Nm3)",
        "Producción real (Nm3)",
        "Producción medida por el contador (m3)",
        "Diferencia (%)",
        "Rendimiento (Nm3 biogás/kg)",
        "Rendimiento (Nm3 biogás/kg SV)",
        "Metano por kg SV (Nm3 CH4/kg SV, comparable con B0)",
        "Días sin datos",
        "Inferencias",
        "Observaciones",
        "Autor",
        "Generado",
    ] {
        assert!(labels.contains(&label), "missing {label}: {labels:?}");
    }
    assert_eq!(pairs["Sitio"], data.site_name.as_str());
    assert_eq!(pairs["Fecha de llenado"], "2026-02-20T00:00:00");
    assert_eq!(
        pairs["Producción real (Nm3)"].as_f64(),
        Some(round_m3(data.totals.actual_total_m3))
    );
    let diff = data.totals.difference_pct.expect("difference");
    assert_eq!(pairs["Diferencia (%)"].as_f64(), Some(round_pct(diff)));
    assert_eq!(pairs["Observaciones"], data.observations.as_str());
    // The sensor table follows the pairs.
    assert!(labels.contains(&"Canal") && labels.contains(&"Metano (% CH₄)"));
}
