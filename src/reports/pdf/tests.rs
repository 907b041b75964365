//! The PDF checked with poppler's tools (`apt-get install poppler-utils`), as a reader sees it.

use super::*;
use crate::reports::data::ReportType;
use crate::reports::render::fixtures;
use crate::reports::render::format::{es_date, es_diff_pct, es_m3, es_nm3};

/// A rendered PDF and what poppler reads from it.
struct Read {
    bytes: usize,
    text: String,
    pages: usize,
    fonts: String,
}

fn read(data: &ReportData) -> Read {
    let bytes = render_pdf(data).expect("render");
    let dir = fixtures::temp_dir();
    let path = fixtures::write(dir.path(), "reporte.pdf", &bytes);
    let path = path.to_str().expect("UTF-8 path");
    let text = fixtures::run_tool(
        "pdftotext",
        &["-layout", "-enc", "UTF-8", path, "-"],
        "poppler-utils",
    );
    let info = fixtures::run_tool("pdfinfo", &[path], "poppler-utils");
    let pages = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("page count");
    let fonts = fixtures::run_tool("pdffonts", &[path], "poppler-utils");
    Read {
        bytes: bytes.len(),
        text,
        pages,
        fonts,
    }
}

/// The text with every run of white space made one space (lines wrap where they wrap).
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Rows of the daily table whose last cell is `mark`.
fn rows_marked(text: &str, mark: &str) -> usize {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()) && l.ends_with(mark))
        .count()
}

#[test]
fn text_extracts_with_accents_units_and_the_formatted_totals() {
    let data = fixtures::report(10, 0);
    let r = read(&data);
    let t = &data.totals;
    for expected in [
        data.site_name.as_str(),
        "Reporte final",
        "Producción",
        "Datos de la etapa",
        "José Peña, María Núñez",
        "Ángela",
        "¿La producción fue baja? ¡Sí, en los días fríos!",
        "21,9 °C",
        "metano (CH₄)",
        "Estiércol bovino",
        "1500,0 kg",
        "22,5 °C",
        "Fecha de llenado",
        "20/02/2026 (2026-02-20)",
        "Generado el 20/06/2026 17:45",
        "Begoña Muñoz",
        "Estadísticas de sensores",
        "Metano (% CH₄)",
        "Día",
        "Página 1 de 2",
        "Página 2 de 2",
        "próxima visita: agrónoma",
    ] {
        let found =
            r.text.contains(expected) || r.text.to_lowercase().contains(&expected.to_lowercase());
        assert!(found, "{expected:?} not in:\n{}", r.text);
    }
    // The comparison is in normal cubic metres; what the meter counted is in m³.
    for total in [
        es_nm3(t.actual_total_m3),
        es_nm3(t.expected_to_date_m3),
        es_nm3(t.expected_total_m3),
        es_m3(t.actual_total_m3_medido),
        es_diff_pct(t.difference_pct),
        "Real (Nm³)".to_string(),
        "Medido (m³)".to_string(),
        "Metano por kg SV (comparable con B0)".to_string(),
    ] {
        assert!(r.text.contains(&total), "{total:?} not in the text");
    }
    // Every day of the table, and the marks of the two days without data.
    for d in &data.days {
        assert!(r.text.contains(&es_date(&d.date)), "{}", d.date);
    }
    assert_eq!(rows_marked(&r.text, "sin datos"), 2, "{}", r.text);
}

#[test]
fn long_stages_take_more_pages_and_every_page_is_numbered() {
    let short = read(&fixtures::report(10, 0));
    let data = fixtures::report(120, 15);
    let long = read(&data);
    assert!(
        long.pages > short.pages,
        "{} pages vs {}",
        long.pages,
        short.pages
    );
    for page in 1..=long.pages {
        assert!(
            long.text
                .contains(&format!("Página {page} de {}", long.pages))
        );
    }
    for d in &data.days {
        assert!(long.text.contains(&es_date(&d.date)), "{}", d.date);
    }
    assert!(long.text.contains("Producción diaria (continuación)"));
    assert!(flat(&long.text).contains("05/06/2026 – 19/06/2026 (15 días)"));
}

#[test]
fn the_font_is_an_embedded_subset_and_the_file_stays_small() {
    let r = read(&fixtures::report(120, 15));
    let dejavu: Vec<&str> = r
        .fonts
        .lines()
        .filter(|l| l.contains("DejaVuSans"))
        .collect();
    assert_eq!(dejavu.len(), 2, "{}", r.fonts);
    for line in dejavu {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // name, type (2 words), encoding, emb, sub, uni, ...
        assert_eq!(&cols[4..7], ["yes", "yes", "yes"], "{line}");
    }
    assert!(
        r.bytes < 120_000,
        "{} bytes: is the whole font embedded again?",
        r.bytes
    );
}

#[test]
fn an_intermediate_report_marks_future_days_as_pending() {
    let mut data = fixtures::report(60, 20);
    data.report_type = ReportType::Normal;
    data.stage.active = true;
    data.stage.closed_at = None;
    // Day 40 (the last with data) is 2026-03-31.
    data.generated_at = "2026-04-01T09:00:00-05:00".to_string();
    let r = read(&data);
    assert!(r.text.contains("Reporte de seguimiento"));
    assert!(r.text.contains("Activa"));
    // Day 41 is the report's own day: without data, not pending. Days 42 to 60 are pending.
    assert_eq!(rows_marked(&r.text, "pendiente"), 19, "{}", r.text);
}

#[test]
fn an_empty_report_and_odd_text_still_render() {
    let mut data = fixtures::report(1, 1);
    data.days.clear();
    data.missing_days.clear();
    data.sensors.clear();
    data.totals.difference_pct = None;
    data.totals.yield_m3_per_kg_vs = None;
    data.inferences = String::new();
    data.observations = format!(
        "Biogás 🐄 en Ελλάδα.\ttab\r\n{}",
        "palabra ".repeat(2500) + "final."
    );
    data.author = String::new();
    data.site_name = "Sitio".repeat(40);
    let r = read(&data);
    assert!(r.text.contains("Sin lecturas de sensores"));
    assert!(r.text.contains("Sin inferencias."));
    assert!(r.text.contains("Biogás ? en ??????."), "{}", r.text);
    assert!(r.text.contains("final."));
    assert!(
        r.pages >= 3,
        "the long observations continue on further pages"
    );
}
