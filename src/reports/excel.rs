//! The report as an Excel workbook: `Resumen` (field/value pairs in the order of the previous
//! system, then the sensor statistics) and `Datos` (one row per day, real date cells, frozen
//! header) with a native line chart of the expected and actual cumulative production.

use rust_xlsxwriter::{
    Chart, ChartLegendPosition, ChartLineDashType, ChartType, Color, DocProperties, ExcelDateTime,
    Format, FormatAlign, FormatBorder, Workbook, Worksheet, XlsxError,
};

use super::format::{parse_date, round_m3};
use super::{DAILY_COLUMNS, RenderError, last_day_with_data, missing_mark};
use crate::reports::data::ReportData;

#[path = "excel/resumen.rs"]
mod resumen;

const DATOS: &str = "Datos";
const EXPECTED_COLOR: u32 = 0x2E6BB3;
const ACTUAL_COLOR: u32 = 0xE0730D;
const HEADER_FILL: u32 = 0xDCEBE2;
const MISSING_FILL: u32 = 0xFFF2D9;

/// Renders `data` as an `.xlsx` workbook.
pub fn render_xlsx(data: &ReportData) -> Result<Vec<u8>, RenderError> {
    let mut workbook = Workbook::new();
    let mut props = DocProperties::new()
        .set_title(format!("{} — {}", data.report_type.label(), data.site_name))
        .set_author(&data.author)
        .set_company(&data.site_name);
    if let Some(created) =
        utc_timestamp(&data.generated_at).and_then(|t| ExcelDateTime::from_timestamp(t).ok())
    {
        props = props.set_creation_datetime(&created);
    }
    workbook.set_properties(&props);
    workbook.push_worksheet(resumen::sheet(data)?);
    workbook.push_worksheet(datos(data)?);
    Ok(workbook.save_to_buffer()?)
}

fn datos(data: &ReportData) -> Result<Worksheet, XlsxError> {
    let mut ws = Worksheet::new();
    ws.set_name(DATOS)?;
    let header = header_format();
    for (col, name) in (0u16..).zip(DAILY_COLUMNS) {
        ws.write_string_with_format(0, col, name, &header)?;
    }
    ws.set_row_height(0, 32)?;
    for (col, width) in [
        (0u16, 6.0),
        (1, 12.0),
        (2, 16.0),
        (3, 16.0),
        (4, 16.0),
        (5, 16.0),
        (6, 10.0),
    ] {
        ws.set_column_width(col, width)?;
    }
    ws.set_freeze_panes(1, 0)?;

    for (row, d) in (1u32..).zip(&data.days) {
        let fill = |f: Format| {
            if d.missing {
                f.set_background_color(MISSING_FILL)
            } else {
                f
            }
        };
        ws.write_number_with_format(row, 0, f64::from(d.day), &fill(Format::new()))?;
        match excel_date(&d.date) {
            Some(date) => ws.write_datetime_with_format(
                row,
                1,
                &date,
                &fill(Format::new().set_num_format("yyyy-mm-dd")),
            )?,
            None => ws.write_string_with_format(row, 1, &d.date, &fill(Format::new()))?,
        };
        let num = fill(Format::new().set_num_format("0.000"));
        let values = [
            d.expected_m3,
            d.actual_m3,
            d.expected_cumulative_m3,
            d.actual_cumulative_m3,
        ];
        for (col, v) in (2u16..).zip(values) {
            ws.write_number_with_format(row, col, round_m3(v), &num)?;
        }
        ws.write_string_with_format(
            row,
            6,
            missing_mark(d.missing),
            &fill(Format::new().set_align(FormatAlign::Center)),
        )?;
        ws.write_number_with_format(row, 7, round_m3(d.actual_measured_m3), &num)?;
    }

    let n = u32::try_from(data.days.len()).unwrap_or(u32::MAX - 1);
    if n > 0 {
        ws.autofilter(0, 0, n, 7)?;
        ws.insert_chart_with_offset(1, 8, &chart(data, n), 10, 0)?;
    }
    Ok(ws)
}

/// The line chart of the cumulative series; the actual one stops at the last day with data.
fn chart(data: &ReportData, last_row: u32) -> Chart {
    let mut chart = Chart::new(ChartType::Line);
    chart
        .add_series()
        .set_name((DATOS, 0, 4))
        .set_categories((DATOS, 1, 0, last_row, 0))
        .set_values((DATOS, 1, 4, last_row, 4))
        .set_format(
            rust_xlsxwriter::ChartFormat::new().set_line(
                rust_xlsxwriter::ChartLine::new()
                    .set_color(Color::RGB(EXPECTED_COLOR))
                    .set_width(2.0)
                    .set_dash_type(ChartLineDashType::Dash),
            ),
        );
    if let Some(last) = last_day_with_data(data) {
        let last = u32::try_from(last).unwrap_or(0) + 1;
        chart
            .add_series()
            .set_name((DATOS, 0, 5))
            .set_categories((DATOS, 1, 0, last, 0))
            .set_values((DATOS, 1, 5, last, 5))
            .set_format(
                rust_xlsxwriter::ChartFormat::new().set_line(
                    rust_xlsxwriter::ChartLine::new()
                        .set_color(Color::RGB(ACTUAL_COLOR))
                        .set_width(2.25),
                ),
            );
    }
    chart
        .title()
        .set_name("Producción acumulada: esperada y real");
    chart.x_axis().set_name("Día");
    chart.y_axis().set_name("Nm³").set_num_format("0.0");
    chart.legend().set_position(ChartLegendPosition::Bottom);
    chart.set_width(720).set_height(400);
    chart
}

/// Bold, wrapped, centred, shaded and boxed: the header of both tables.
fn header_format() -> Format {
    Format::new()
        .set_bold()
        .set_text_wrap()
        .set_align(FormatAlign::Center)
        .set_align(FormatAlign::VerticalCenter)
        .set_background_color(HEADER_FILL)
        .set_border(FormatBorder::Thin)
}

/// A date cell value from `YYYY-MM-DD`.
fn excel_date(iso: &str) -> Option<ExcelDateTime> {
    use chrono::Datelike;
    let d = parse_date(iso)?;
    let year = u16::try_from(d.year()).ok()?;
    ExcelDateTime::from_ymd(
        year,
        u8::try_from(d.month()).ok()?,
        u8::try_from(d.day()).ok()?,
    )
    .ok()
}

fn utc_timestamp(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339.trim())
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
#[path = "excel/tests.rs"]
mod tests;
