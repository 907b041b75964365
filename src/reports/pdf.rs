//! The report as an A4 PDF for printing and sharing: title, stage data, production summary,
//! cumulative chart, sensor statistics, days without data, inferences, observations and the
//! daily table, with "Página X de N" and the generation time in every footer.
//!
//! Text is set in DejaVu Sans, embedded as a small pre-made subset, so Spanish text and units
//! (á ñ ¿ ¡ m³ °C CH₄) print and copy correctly in any reader.

#[path = "pdf/canvas.rs"]
mod canvas;
#[path = "pdf/chart.rs"]
mod chart;
#[path = "pdf/font.rs"]
mod font;
#[path = "pdf/sections.rs"]
mod sections;
#[path = "pdf/table.rs"]
mod table;
#[path = "pdf/tables.rs"]
mod tables;
#[cfg(test)]
#[path = "pdf/tests.rs"]
mod tests;

use printpdf::{OffsetDateTime, PdfDocument, PdfParseErrorSeverity, PdfSaveOptions};

use self::canvas::Canvas;
use self::font::Fonts;
use super::format::{es_datetime, parse_date};
use super::{RenderError, last_day_with_data};
use crate::reports::data::ReportData;

/// Height of the chart, in points.
const CHART_MIN_H: f32 = 230.0;
const CHART_MAX_H: f32 = 330.0;

/// How a day is shown in the chart and the daily table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum DayState {
    /// Gas was measured.
    Data,
    /// No measurement, before the last day with data: the cumulative value carries on.
    Missing,
    /// No measurement, after the last day with data and not after the report's date.
    MissingAfterData,
    /// After the report's date: no data yet by definition.
    Pending,
}

/// What the sections share about the days.
struct Layout {
    /// Index of the last day with gas data.
    last_data: Option<usize>,
    states: Vec<DayState>,
}

impl Layout {
    fn new(data: &ReportData) -> Layout {
        let last_data = last_day_with_data(data);
        let report_date = parse_date(&data.generated_at);
        let states = data
            .days
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let after_report =
                    matches!((parse_date(&d.date), report_date), (Some(day), Some(r)) if day > r);
                match (d.missing, after_report) {
                    (false, _) => DayState::Data,
                    (true, true) => DayState::Pending,
                    (true, false) if last_data.is_some_and(|l| i < l) => DayState::Missing,
                    (true, false) => DayState::MissingAfterData,
                }
            })
            .collect();
        Layout { last_data, states }
    }
}

/// Renders `data` as a PDF document.
pub fn render_pdf(data: &ReportData) -> Result<Vec<u8>, RenderError> {
    let title = format!("{} — {}", data.report_type.label(), data.site_name);
    let mut doc = PdfDocument::new(&title);
    let fonts = Fonts::load(&mut doc)?;
    let layout = Layout::new(data);

    let mut c = Canvas::new(&fonts);
    sections::title(&mut c, data);
    sections::stage(&mut c, data);
    sections::summary(&mut c, data, &layout);
    sections::heading(&mut c, "Producción acumulada: esperada y real", CHART_MIN_H);
    let marks: Vec<bool> = layout
        .states
        .iter()
        .map(|s| matches!(s, DayState::Missing | DayState::MissingAfterData))
        .collect();
    // The chart takes the rest of the first page, within limits.
    let height = (c.y - canvas::BOTTOM - 6.0).clamp(CHART_MIN_H, CHART_MAX_H);
    let marks = chart::Marks { missing: &marks };
    chart::cumulative(&mut c, data, layout.last_data, &marks, height);
    c.new_page();
    tables::sensors(&mut c, data);
    tables::missing_days(&mut c, data);
    tables::alarms(&mut c, data);
    sections::text_block(&mut c, "Inferencias", &data.inferences, "Sin inferencias.");
    sections::text_block(
        &mut c,
        "Observaciones",
        &data.observations,
        "Sin observaciones.",
    );
    tables::daily(&mut c, data, &layout);

    let footer_left = format!(
        "{} · {} · Etapa N° {}",
        data.site_name,
        data.report_type.label(),
        data.stage.number
    );
    let footer_right = format!("Generado el {}", es_datetime(&data.generated_at));
    let pages = c.finish(&footer_left, &footer_right);

    let info = &mut doc.metadata.info;
    info.author = data.author.clone();
    info.creator = "Biogestor".to_string();
    info.producer = "Biogestor".to_string();
    info.subject = format!("Etapa N° {} — producción de biogás", data.stage.number);
    if let Some(t) = chrono::DateTime::parse_from_rfc3339(data.generated_at.trim())
        .ok()
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t.timestamp()).ok())
    {
        info.creation_date = t;
        info.modification_date = t;
        info.metadata_date = t;
    }

    let mut warnings = Vec::new();
    let bytes = doc
        .with_pages(pages)
        .save(&PdfSaveOptions::default(), &mut warnings);
    for w in warnings
        .iter()
        .filter(|w| w.severity == PdfParseErrorSeverity::Error)
    {
        tracing::warn!(report = data.id, "PDF writer: {}", w.msg);
    }
    if bytes.is_empty() {
        return Err(RenderError::Pdf("empty output".to_string()));
    }
    Ok(bytes)
}
