//! The line chart of expected vs actual cumulative production: axes with tick labels, axis
//! titles, horizontal grid lines, a legend, the actual series only up to the last day with
//! data, and grey marks under the x axis for days without data.

use super::canvas::{Canvas, LEFT, RIGHT, Rgb, Style, palette};
use crate::reports::data::ReportData;
use crate::reports::render::format::es_fixed;

/// Which days to mark as without data (pending days after the report are not marked).
pub(super) struct Marks<'a> {
    pub missing: &'a [bool],
}

/// Draws the chart in the `height` points under the cursor.
pub(super) fn cumulative(
    c: &mut Canvas,
    data: &ReportData,
    last_data: Option<usize>,
    marks: &Marks,
    height: f32,
) {
    let days = &data.days;
    let top = c.y;
    c.y -= height;
    let Some(last_day) = days.last().map(|d| d.day) else {
        c.text(
            LEFT,
            top - 20.0,
            "Sin días que graficar.",
            Style::regular(9.0).color(palette::MUTED),
        );
        return;
    };
    let first_day = days.first().map_or(1, |d| d.day).min(last_day);
    let (x0, x1) = (LEFT + 46.0, RIGHT - 10.0);
    let (y0, y1) = (top - height + 40.0, top - 18.0);

    let actual_end = last_data.map_or(0, |i| i + 1);
    let peak = days
        .iter()
        .map(|d| d.expected_cumulative_m3)
        .chain(days[..actual_end].iter().map(|d| d.actual_cumulative_m3))
        .fold(0.0_f64, f64::max);
    let (y_step, y_max) = nice_axis(peak);
    let y_decimals = decimals(y_step);
    let d_min = f64::from(first_day);
    let d_max = f64::from(last_day.max(first_day.saturating_add(1)));
    let sx = |day: f64| x0 + ((day - d_min) / (d_max - d_min)) as f32 * (x1 - x0);
    let sy = |v: f64| y0 + (v.max(0.0) / y_max) as f32 * (y1 - y0);
    let tick = Style::regular(7.5).color(palette::MUTED);

    // Grid and y ticks.
    let mut v = 0.0;
    while v <= y_max + y_step / 2.0 {
        let y = sy(v);
        c.line(&[(x0, y), (x1, y)], 0.4, palette::RULE, &[]);
        c.text_right(x0 - 5.0, y - 2.6, &es_fixed(v, y_decimals), tick);
        v += y_step;
    }
    c.text_right(
        x0 - 5.0,
        y1 + 8.0,
        "Nm³",
        Style::bold(8.0).color(palette::MUTED),
    );

    // Marks of days without data, standing on the axis.
    for (d, &missing) in days.iter().zip(marks.missing) {
        if missing {
            let x = sx(f64::from(d.day));
            c.rect(x - 1.0, y0 + 0.4, 2.0, 7.0, palette::MISSING);
        }
    }

    // x axis and ticks.
    let step = day_step((last_day - first_day).saturating_add(1));
    let mut ticks = vec![first_day];
    ticks.extend(
        (1..=last_day / step)
            .map(|k| k * step)
            .filter(|&t| t > first_day),
    );
    if ticks.len() > 1 && f64::from(ticks[1] - ticks[0]) < f64::from(step) * 0.45 {
        ticks.remove(1);
    }
    for t in ticks {
        let x = sx(f64::from(t));
        c.line(&[(x, y0), (x, y0 - 2.5)], 0.6, palette::INK, &[]);
        c.text_center(x, y0 - 17.0, &t.to_string(), tick);
    }
    c.line(&[(x0, y1), (x0, y0), (x1, y0)], 0.8, palette::INK, &[]);
    c.text_center(
        (x0 + x1) / 2.0,
        y0 - 30.0,
        "Día",
        Style::bold(8.0).color(palette::MUTED),
    );

    // Series.
    let expected: Vec<(f32, f32)> = days
        .iter()
        .map(|d| (sx(f64::from(d.day)), sy(d.expected_cumulative_m3)))
        .collect();
    c.line(&expected, 1.6, palette::EXPECTED, &[5.0, 2.5]);
    let actual: Vec<(f32, f32)> = days[..actual_end]
        .iter()
        .map(|d| (sx(f64::from(d.day)), sy(d.actual_cumulative_m3)))
        .collect();
    c.line(&actual, 1.8, palette::ACTUAL, &[]);
    if days.len() <= 45 {
        for (d, p) in days[..actual_end].iter().zip(&actual) {
            if !d.missing {
                dot(c, p.0, p.1, 1.9, palette::ACTUAL);
            }
        }
    }
    if actual.len() == 1 {
        dot(c, actual[0].0, actual[0].1, 2.2, palette::ACTUAL);
    }

    legend(c, x1, y1 + 8.0, marks.missing.iter().any(|&m| m));
}

/// A one-line legend above the plot, ending at `right` (outside the plot, so it never hides
/// a curve).
fn legend(c: &mut Canvas, right: f32, baseline: f32, with_missing: bool) {
    let style = Style::regular(7.5);
    let entries = [
        (
            "Esperada (modelo)",
            Some(&[5.0, 2.5][..]),
            palette::EXPECTED,
        ),
        ("Real (medida)", Some(&[][..]), palette::ACTUAL),
        ("Día sin datos", None, palette::MISSING),
    ];
    let entries = &entries[..if with_missing { 3 } else { 2 }];
    let sample = |dash: &Option<&[f32]>| if dash.is_some() { 20.0 } else { 4.0 };
    let total: f32 = entries
        .iter()
        .map(|(label, dash, _)| sample(dash) + 4.0 + c.width(label, style) + 14.0)
        .sum();
    let mut x = right - total + 14.0;
    for (label, dash, color) in entries {
        match dash {
            Some(dash) => c.line(
                &[(x, baseline + 2.6), (x + 18.0, baseline + 2.6)],
                1.7,
                *color,
                dash,
            ),
            None => c.rect(x + 1.0, baseline - 0.5, 2.0, 7.0, *color),
        }
        x += sample(dash) + 4.0;
        c.text(x, baseline, label, style);
        x += c.width(label, style) + 14.0;
    }
}

/// A filled circle of radius `r` at (`x`, `y`), from four cubic Bézier arcs.
fn dot(c: &mut Canvas, x: f32, y: f32, r: f32, color: Rgb) {
    let k = 0.552_285 * r;
    c.shape(
        &[
            (x + r, y, false),
            (x + r, y + k, true),
            (x + k, y + r, true),
            (x, y + r, false),
            (x - k, y + r, true),
            (x - r, y + k, true),
            (x - r, y, false),
            (x - r, y - k, true),
            (x - k, y - r, true),
            (x, y - r, false),
            (x + k, y - r, true),
            (x + r, y - k, true),
            (x + r, y, false),
        ],
        color,
    );
}

/// Step and top of a y axis from 0 to at least `peak` with about five intervals.
fn nice_axis(peak: f64) -> (f64, f64) {
    if !peak.is_finite() || peak <= 0.0 {
        return (0.2, 1.0);
    }
    let raw = peak / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    (step, (peak / step).ceil() * step)
}

/// Decimals needed to print multiples of `step` exactly.
fn decimals(step: f64) -> usize {
    (0..6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-6
        })
        .unwrap_or(6)
}

/// Days between x-axis ticks for a span of `n` days: at most about 12 ticks.
fn day_step(n: u32) -> u32 {
    [1, 2, 5, 10, 15, 20, 30, 50, 100, 200, 500]
        .into_iter()
        .find(|s| n / s <= 12)
        .unwrap_or(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_round() {
        assert_eq!(nice_axis(47.3), (10.0, 50.0));
        assert_eq!(nice_axis(11.0), (2.5, 12.5));
        assert_eq!(nice_axis(0.9), (0.2, 1.0));
        assert_eq!(nice_axis(0.0), (0.2, 1.0));
        assert_eq!(decimals(2.5), 1);
        assert_eq!(decimals(0.25), 2);
        assert_eq!(decimals(10.0), 0);
        assert_eq!(day_step(10), 1);
        assert_eq!(day_step(120), 10);
        assert_eq!(day_step(30), 5);
    }
}
