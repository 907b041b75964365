//! The tabular sections: the daily production table, the sensor statistics and the list of
//! days without data.

use super::canvas::{Canvas, Style, WIDTH, palette};
use super::sections::{heading, paragraph};
use super::table::{Align, Col, Row, data_table};
use super::{DayState, Layout};
use crate::reports::data::ReportData;
use crate::reports::render::format::{DASH, es, es_date, es_sensor, m3, parse_date};

/// One row per day, paged with the header repeated.
pub(super) fn daily(c: &mut Canvas, data: &ReportData, layout: &Layout) {
    heading(c, "Producción diaria", 60.0);
    let cols = [
        col("Día", 28.0, Align::Right),
        col("Fecha", 62.0, Align::Center),
        col("Esperada (Nm³)", 70.0, Align::Right),
        col("Real (Nm³)", 62.0, Align::Right),
        col("Acum. esp. (Nm³)", 84.0, Align::Right),
        col("Acum. real (Nm³)", 84.0, Align::Right),
        col("Medido (m³)", 66.0, Align::Right),
        col("Estado", WIDTH - 456.0, Align::Center),
    ];
    let num = |x: f64| es(&m3(x));
    let rows: Vec<Row> = data
        .days
        .iter()
        .zip(&layout.states)
        .map(|(d, state)| {
            let (real, cum, note) = match state {
                DayState::Data => (num(d.actual_m3), num(d.actual_cumulative_m3), ""),
                DayState::Missing => (DASH.to_string(), num(d.actual_cumulative_m3), "sin datos"),
                DayState::MissingAfterData => (DASH.to_string(), DASH.to_string(), "sin datos"),
                DayState::Pending => (DASH.to_string(), DASH.to_string(), "pendiente"),
            };
            let measured = match state {
                DayState::Data => num(d.actual_measured_m3),
                _ => DASH.to_string(),
            };
            let cells = vec![
                d.day.to_string(),
                es_date(&d.date),
                num(d.expected_m3),
                real,
                num(d.expected_cumulative_m3),
                cum,
                measured,
                note.to_string(),
            ];
            match state {
                DayState::Data => Row::new(cells),
                DayState::Pending => Row {
                    cells,
                    fill: None,
                    color: Some(palette::MUTED),
                },
                _ => Row {
                    cells,
                    fill: Some(palette::MISSING_BG),
                    color: None,
                },
            }
        })
        .collect();
    if rows.is_empty() {
        paragraph(
            c,
            "Sin días registrados.",
            Style::regular(9.0).color(palette::MUTED),
        );
        return;
    }
    data_table(c, &cols, &rows, "Producción diaria (continuación)");
}

fn col(title: &'static str, width: f32, align: Align) -> Col {
    Col {
        title,
        width,
        align,
    }
}

/// min / mean / max / count per sensor channel.
pub(super) fn sensors(c: &mut Canvas, data: &ReportData) {
    heading(c, "Estadísticas de sensores", 50.0);
    if data.sensors.is_empty() {
        paragraph(
            c,
            "Sin lecturas de sensores en esta etapa.",
            Style::regular(9.0).color(palette::MUTED),
        );
        c.y -= 6.0;
        return;
    }
    let cols = [
        col("Canal", WIDTH - 300.0, Align::Left),
        col("Mínimo", 75.0, Align::Right),
        col("Media", 75.0, Align::Right),
        col("Máximo", 75.0, Align::Right),
        col("Lecturas (n)", 75.0, Align::Right),
    ];
    let rows: Vec<Row> = data
        .sensors
        .iter()
        .map(|s| {
            let label = if s.label.trim().is_empty() {
                &s.channel
            } else {
                &s.label
            };
            Row::new(vec![
                label.clone(),
                es_sensor(label, s.min),
                es_sensor(label, s.mean),
                es_sensor(label, s.max),
                s.count.to_string(),
            ])
        })
        .collect();
    data_table(c, &cols, &rows, "Estadísticas de sensores (continuación)");
}

/// Most alarms printed one by one; the rest are counted.
const MAX_ALARM_LINES: usize = 40;

/// The alarms of the period, one line each.
pub(super) fn alarms(c: &mut Canvas, data: &ReportData) {
    heading(c, "Alarmas del período", 30.0);
    if data.alarms.is_empty() {
        paragraph(c, "Ninguna alarma en el período.", Style::regular(9.5));
    }
    for a in data.alarms.iter().take(MAX_ALARM_LINES) {
        let until = a.until.as_deref().unwrap_or("sigue activa");
        let ack = a
            .acknowledged_by
            .as_deref()
            .map(|by| format!(" Reconocida por {by}."))
            .unwrap_or_default();
        let line = format!(
            "{} – {} [{}] {}{ack}",
            a.since, until, a.severity, a.message
        );
        paragraph(c, &line, Style::regular(9.0));
    }
    if data.alarms.len() > MAX_ALARM_LINES {
        let more = data.alarms.len() - MAX_ALARM_LINES;
        paragraph(c, &format!("… y {more} alarmas más."), Style::regular(9.0));
    }
    c.y -= 6.0;
}

/// The days without gas data, consecutive days joined into ranges.
pub(super) fn missing_days(c: &mut Canvas, data: &ReportData) {
    heading(c, "Días sin datos", 30.0);
    let text = if data.missing_days.is_empty() {
        "Ninguno: todos los días tienen datos de producción.".to_string()
    } else {
        let n = data.missing_days.len();
        format!(
            "{n} {} sin datos de producción de gas: {}.",
            if n == 1 { "día" } else { "días" },
            date_ranges(&data.missing_days).join("; ")
        )
    };
    paragraph(c, &text, Style::regular(9.5));
    c.y -= 6.0;
}

/// `["2026-03-01", "2026-03-02", "2026-03-05"]` → `["01/03/2026 – 02/03/2026 (2 días)",
/// "05/03/2026"]`.
fn date_ranges(dates: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < dates.len() {
        let mut j = i;
        while j + 1 < dates.len() {
            let next = parse_date(&dates[j]).and_then(|d| d.succ_opt());
            if next.is_none() || next != parse_date(&dates[j + 1]) {
                break;
            }
            j += 1;
        }
        out.push(if j == i {
            es_date(&dates[i])
        } else {
            format!(
                "{} – {} ({}\u{a0}días)",
                es_date(&dates[i]),
                es_date(&dates[j]),
                j - i + 1
            )
        });
        i = j + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_dates_become_ranges() {
        let d = |s: &str| s.to_string();
        let dates = [
            d("2026-02-28"),
            d("2026-03-01"),
            d("2026-03-02"),
            d("2026-03-05"),
            d("x"),
        ];
        assert_eq!(
            date_ranges(&dates),
            ["28/02/2026 – 02/03/2026 (3\u{a0}días)", "05/03/2026", "x"]
        );
    }
}
