//! The daily table as CSV: UTF-8 with a byte-order mark (so Excel shows the accents), comma
//! delimiter, '.' decimals, ISO 8601 dates, and the same columns as the `Datos` sheet.

use super::format::m3;
use super::{DAILY_COLUMNS, RenderError, missing_mark};
use crate::reports::data::ReportData;

/// The UTF-8 byte-order mark written first.
const BOM: &str = "\u{FEFF}";

/// Renders the daily table of `data` as CSV bytes: a header row with [`DAILY_COLUMNS`], then
/// one row per day.
pub fn render_csv(data: &ReportData) -> Result<Vec<u8>, RenderError> {
    let mut out = Vec::with_capacity(64 + data.days.len() * 64);
    out.extend_from_slice(BOM.as_bytes());
    let mut w = ::csv::WriterBuilder::new().delimiter(b',').from_writer(out);
    w.write_record(DAILY_COLUMNS)?;
    for d in &data.days {
        w.write_record([
            d.day.to_string(),
            d.date.clone(),
            m3(d.expected_m3),
            m3(d.actual_m3),
            m3(d.expected_cumulative_m3),
            m3(d.actual_cumulative_m3),
            missing_mark(d.missing).to_string(),
            m3(d.actual_measured_m3),
        ])?;
    }
    w.into_inner()
        .map_err(|e| RenderError::Csv(e.into_error().into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::render::fixtures;
    use crate::reports::render::format::round_m3;

    fn parse(bytes: &[u8]) -> (Vec<String>, Vec<::csv::StringRecord>) {
        let text = std::str::from_utf8(bytes).expect("UTF-8");
        let body = text.strip_prefix(BOM).expect("starts with a BOM");
        let mut r = ::csv::ReaderBuilder::new().from_reader(body.as_bytes());
        let header = r
            .headers()
            .expect("header")
            .iter()
            .map(str::to_string)
            .collect();
        let rows = r.records().collect::<Result<_, _>>().expect("records");
        (header, rows)
    }

    #[test]
    fn csv_has_the_datos_columns_and_one_row_per_day() {
        for n in [10, 120] {
            let data = fixtures::report(n, if n > 100 { 15 } else { 0 });
            let bytes = render_csv(&data).expect("render");
            let dir = fixtures::temp_dir();
            let path = fixtures::write(dir.path(), "reporte.csv", &bytes);
            let bytes = std::fs::read(path).expect("read back");
            let (header, rows) = parse(&bytes);
            assert_eq!(header, DAILY_COLUMNS);
            assert_eq!(rows.len(), data.days.len());
            for (row, day) in rows.iter().zip(&data.days) {
                assert_eq!(row[0].parse::<u32>().expect("día"), day.day);
                assert_eq!(&row[1], day.date.as_str());
                assert!(crate::reports::render::format::parse_date(&row[1]).is_some());
                let num = |i: usize| row[i].parse::<f64>().expect("number with '.' decimals");
                assert_eq!(num(2), round_m3(day.expected_m3));
                assert_eq!(num(3), round_m3(day.actual_m3));
                assert_eq!(num(4), round_m3(day.expected_cumulative_m3));
                assert_eq!(num(5), round_m3(day.actual_cumulative_m3));
                assert_eq!(&row[6], missing_mark(day.missing));
                assert_eq!(num(7), round_m3(day.actual_measured_m3));
                assert!(row[2].contains('.') && !row[2].contains(','));
            }
        }
    }

    #[test]
    fn csv_of_a_report_without_days_is_just_the_header() {
        let mut data = fixtures::report(3, 0);
        data.days.clear();
        let (header, rows) = parse(&render_csv(&data).expect("render"));
        assert_eq!(header.len(), DAILY_COLUMNS.len());
        assert!(rows.is_empty());
    }
}
