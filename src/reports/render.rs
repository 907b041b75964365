//! Rendering of a [`ReportData`](super::data::ReportData) into the three report formats: PDF
//! (printed and handed to agronomists and funders), Excel (`Resumen` and `Datos` sheets with a
//! native chart) and CSV (the daily table). All three take their numbers and their digits from
//! [`format`], like the API.

#[path = "csv.rs"]
pub mod csv;
#[path = "excel.rs"]
pub mod excel;
#[path = "format.rs"]
pub mod format;
#[path = "pdf.rs"]
pub mod pdf;

#[cfg(test)]
#[path = "fixtures.rs"]
pub(crate) mod fixtures;

pub use self::csv::render_csv;
pub use self::excel::render_xlsx;
pub use self::pdf::render_pdf;

/// Why a report could not be rendered. Every variant is a bug or a broken build rather than
/// bad input: any `ReportData` renders.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// An embedded font could not be parsed.
    #[error("embedded font {0} could not be parsed")]
    Font(&'static str),
    /// The PDF writer reported an error.
    #[error("PDF could not be written: {0}")]
    Pdf(String),
    /// The workbook could not be built.
    #[error("Excel workbook could not be written: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    /// The CSV could not be written.
    #[error("CSV could not be written: {0}")]
    Csv(#[from] ::csv::Error),
}

/// Column names of the daily table, identical in the `Datos` sheet and the CSV. The first six
/// are those of the previous system in the same order, with the unit of the comparison
/// (normal cubic metres, Nm3); `Sin datos` tells a day without measurements from a measured
/// zero; the last column is what the meter counted, actual m3.
pub const DAILY_COLUMNS: [&str; 8] = [
    "Día",
    "Fecha",
    "Producción Esperada (Nm3/día)",
    "Producción Real (Nm3/día)",
    "Acumulado Esperado (Nm3)",
    "Acumulado Real (Nm3)",
    "Sin datos",
    "Producción Medida (m3/día)",
];

/// The `Sin datos` cell of a day: `sí` for a day without gas measurements, `no` otherwise.
pub fn missing_mark(missing: bool) -> &'static str {
    if missing { "sí" } else { "no" }
}

/// Index in `days` of the last day with gas data, if any.
pub fn last_day_with_data(data: &super::data::ReportData) -> Option<usize> {
    data.days.iter().rposition(|d| !d.missing)
}
