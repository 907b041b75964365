//! The sections of the report, top to bottom.

use super::Layout;
use super::canvas::{Canvas, LEFT, RIGHT, Style, TOP, WIDTH, palette};
use super::table::{Field, grid};
use crate::reports::data::ReportData;
use crate::reports::render::format::{
    DASH, es_celsius, es_date, es_datetime, es_diff_pct, es_kg, es_m3, es_nm3, es_pct, es_yield,
    parse_date, round_pct,
};

/// Site, report type, stage, generation time and author.
pub(super) fn title(c: &mut Canvas, data: &ReportData) {
    c.text(
        LEFT,
        c.y - 8.0,
        "BIOGESTOR · PRODUCCIÓN DE BIOGÁS",
        Style::bold(7.5).color(palette::ACCENT),
    );
    c.y -= 14.0;
    for line in c.fonts.bold.wrap(&data.site_name, 18.0, WIDTH) {
        c.text(LEFT, c.y - 17.0, &line, Style::bold(18.0));
        c.y -= 22.0;
    }
    let kind = format!(
        "{} · Etapa N° {}",
        data.report_type.label(),
        data.stage.number
    );
    c.text(
        LEFT,
        c.y - 12.0,
        &kind,
        Style::bold(12.0).color(palette::ACCENT),
    );
    c.y -= 18.0;
    let meta = format!(
        "Generado el {} ({}) · Autor: {} · Reporte N° {}",
        es_datetime(&data.generated_at),
        crate::reports::render::format::iso_date(&data.generated_at),
        if data.author.trim().is_empty() {
            DASH
        } else {
            data.author.as_str()
        },
        data.id
    );
    for line in c.fonts.regular.wrap(&meta, 8.5, WIDTH) {
        c.text(
            LEFT,
            c.y - 9.0,
            &line,
            Style::regular(8.5).color(palette::MUTED),
        );
        c.y -= 12.0;
    }
    c.y -= 4.0;
    c.rule(c.y, 1.4, palette::ACCENT);
    c.y -= 12.0;
}

/// A section heading, kept on the same page as the first `keep` points of its content.
pub(super) fn heading(c: &mut Canvas, text: &str, keep: f32) {
    if !c.ensure(28.0 + keep) && c.y < TOP {
        c.y -= 4.0;
    }
    c.text(
        LEFT,
        c.y - 11.0,
        text,
        Style::bold(11.5).color(palette::ACCENT),
    );
    c.y -= 15.0;
    c.rule(c.y, 0.5, palette::RULE);
    c.y -= 6.0;
}

/// Every field of the stage.
pub(super) fn stage(c: &mut Canvas, data: &ReportData) {
    let s = &data.stage;
    heading(c, "Datos de la etapa", 40.0);
    let fields = [
        Field::new("Etapa N°", s.number.to_string()),
        Field::new("Fecha de llenado", date_both(&s.date)),
        Field::new("Estado", if s.active { "Activa" } else { "Cerrada" }),
        Field::new("Material", s.material_type.clone()),
        Field::new("Cantidad de material", es_kg(s.material_amount_kg)),
        Field::new(
            "Humedad del material",
            es_pct(Some(s.material_humidity_pct)),
        ),
        Field::new("Agua añadida", es_m3(s.added_water_m3)),
        Field::new("Temperatura", es_celsius(s.temperature_c)),
        Field::new("Personas", s.people.clone()),
        Field::new("Creada", es_datetime(&s.created_at)),
        Field::new(
            "Cerrada",
            s.closed_at
                .as_deref()
                .map_or_else(|| DASH.to_string(), es_datetime),
        ),
        Field::new("Identificador de la etapa", s.id.to_string()),
    ];
    grid(c, &fields, 3, Style::regular(9.5));
}

/// Totals, difference, yields and model inputs.
pub(super) fn summary(c: &mut Canvas, data: &ReportData, layout: &Layout) {
    let t = &data.totals;
    heading(c, "Resumen de producción", 60.0);
    // Red below expectations, green otherwise, ink when there is nothing to compare.
    let diff_color = t.difference_pct.map(|d| {
        if round_pct(d) < 0.0 {
            palette::BAD
        } else {
            palette::ACCENT
        }
    });
    let main = [
        Field::new("Producción real", es_nm3(t.actual_total_m3)),
        Field::new(
            "Producción esperada a la fecha",
            es_nm3(t.expected_to_date_m3),
        ),
        Field {
            label: "Diferencia (real frente a esperada)".into(),
            value: es_diff_pct(t.difference_pct),
            color: diff_color,
        },
    ];
    grid(c, &main, 3, Style::bold(13.0));
    let with_data = data.days.iter().filter(|d| !d.missing).count();
    let last = layout.last_data.and_then(|i| data.days.get(i));
    let rest = [
        Field::new("Producción esperada total", es_nm3(t.expected_total_m3)),
        Field::new(
            "Medido por el contador (m³ reales)",
            es_m3(t.actual_total_m3_medido),
        ),
        Field::new(
            "Biogás por kg de material fresco",
            format!("{} Nm³/kg", es_yield(Some(t.yield_m3_per_kg_fresh))),
        ),
        Field::new(
            "Biogás por kg de sólidos volátiles",
            per_kg(es_yield(t.yield_m3_per_kg_vs), "Nm³/kg SV"),
        ),
        Field::new(
            "Metano por kg SV (comparable con B0)",
            per_kg(es_yield(t.methane_yield_nm3_per_kg_vs), "Nm³ CH₄/kg SV"),
        ),
        Field::new("Sólidos totales (ST)", es_kg(t.ts_kg)),
        Field::new("Sólidos volátiles (SV)", es_kg(t.vs_kg)),
        Field::new("Potencial de biogás (A)", es_nm3(t.a_biogas_m3)),
        Field::new(
            "Días con datos",
            format!("{with_data} de {}", data.days.len()),
        ),
        Field::new("Días sin datos", data.missing_days.len().to_string()),
        Field::new(
            "Último día con datos",
            last.map_or_else(
                || DASH.to_string(),
                |d| format!("Día {} ({})", d.day, es_date(&d.date)),
            ),
        ),
    ];
    grid(c, &rest, 3, Style::regular(9.5));
    if !data.model_source.trim().is_empty() {
        paragraph(
            c,
            &format!("Parámetros del modelo: {}", data.model_source),
            Style::regular(7.5).color(palette::MUTED),
        );
        c.y -= 4.0;
    }
}

fn per_kg(v: String, unit: &str) -> String {
    if v == DASH { v } else { format!("{v} {unit}") }
}

/// A titled block of free text (inferences, observations).
pub(super) fn text_block(c: &mut Canvas, title: &str, text: &str, empty: &str) {
    heading(c, title, 30.0);
    if text.trim().is_empty() {
        paragraph(c, empty, Style::regular(9.5).color(palette::MUTED));
    } else {
        paragraph(c, text.trim(), Style::regular(9.5));
    }
    c.y -= 6.0;
}

/// Wrapped text across the content width, breaking pages between lines.
pub(super) fn paragraph(c: &mut Canvas, text: &str, style: Style) {
    let line_h = style.size * 1.4;
    for line in c
        .fonts
        .face(style.bold)
        .wrap(text, style.size, RIGHT - LEFT)
    {
        c.ensure(line_h);
        c.text(LEFT, c.y - style.size, &line, style);
        c.y -= line_h;
    }
}

/// `dd/mm/aaaa (aaaa-mm-dd)`, or the text as it is if it is not a date.
fn date_both(iso: &str) -> String {
    match parse_date(iso) {
        Some(d) => format!("{} ({})", d.format("%d/%m/%Y"), d.format("%Y-%m-%d")),
        None => iso.to_string(),
    }
}
