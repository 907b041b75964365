//! Tables: data tables with a header repeated on every page they run onto, and grids of
//! labelled values for the stage and the summary.

use super::canvas::{BOTTOM, Canvas, LEFT, Rgb, Style, WIDTH, palette};

/// Horizontal alignment of a column.
#[derive(Clone, Copy)]
pub(super) enum Align {
    /// Text starts at the left padding.
    Left,
    /// Text ends at the right padding (numbers).
    Right,
    /// Text is centred.
    Center,
}

/// A column of a data table.
pub(super) struct Col {
    /// Header text, wrapped if it does not fit.
    pub title: &'static str,
    /// Width in points.
    pub width: f32,
    /// Alignment of the header and the cells.
    pub align: Align,
}

/// A row of a data table.
pub(super) struct Row {
    /// One text per column, cut with an ellipsis if too long.
    pub cells: Vec<String>,
    /// Background instead of the zebra stripe.
    pub fill: Option<Rgb>,
    /// Text colour instead of ink.
    pub color: Option<Rgb>,
}

impl Row {
    /// A plain row.
    pub fn new(cells: Vec<String>) -> Row {
        Row {
            cells,
            fill: None,
            color: None,
        }
    }
}

const FONT: f32 = 8.0;
const ROW_H: f32 = 12.5;
const PAD: f32 = 4.0;
const HEADER_LINE: f32 = 9.5;

/// Draws a table at the cursor; when it reaches the bottom of a page it continues on the
/// next one under `continued` and the header again.
pub(super) fn data_table(c: &mut Canvas, cols: &[Col], rows: &[Row], continued: &str) {
    let header_h = header_height(c, cols);
    c.ensure(header_h + 2.0 * ROW_H);
    header(c, cols, header_h);
    for (i, row) in rows.iter().enumerate() {
        if c.y - ROW_H < BOTTOM {
            c.new_page();
            c.text(
                LEFT,
                c.y - 9.0,
                continued,
                Style::bold(9.0).color(palette::MUTED),
            );
            c.y -= 16.0;
            header(c, cols, header_h);
        }
        let fill = row.fill.or((i % 2 == 1).then_some(palette::ZEBRA));
        if let Some(fill) = fill {
            c.rect(LEFT, c.y - ROW_H, WIDTH, ROW_H, fill);
        }
        let style = Style::regular(FONT).color(row.color.unwrap_or(palette::INK));
        let mut x = LEFT;
        for (col, cell) in cols.iter().zip(&row.cells) {
            cell_text(c, x, col, c.y - ROW_H + 3.8, cell, style);
            x += col.width;
        }
        c.y -= ROW_H;
    }
    c.rule(c.y, 0.6, palette::ACCENT);
    c.y -= 14.0;
}

fn header_height(c: &Canvas, cols: &[Col]) -> f32 {
    let lines = cols
        .iter()
        .map(|col| {
            c.fonts
                .bold
                .wrap(col.title, FONT, col.width - 2.0 * PAD)
                .len()
        })
        .max()
        .unwrap_or(1);
    lines as f32 * HEADER_LINE + 7.0
}

fn header(c: &mut Canvas, cols: &[Col], height: f32) {
    let style = Style::bold(FONT);
    c.rect(LEFT, c.y - height, WIDTH, height, palette::HEADER_BG);
    let mut x = LEFT;
    for col in cols {
        let lines = c.fonts.bold.wrap(col.title, FONT, col.width - 2.0 * PAD);
        // Titles sit on the bottom of the header, like the numbers under them.
        let mut y = c.y - height + 4.5 + (lines.len() - 1) as f32 * HEADER_LINE;
        for line in &lines {
            cell_text(c, x, col, y, line, style);
            y -= HEADER_LINE;
        }
        x += col.width;
    }
    c.rule(c.y - height, 0.6, palette::ACCENT);
    c.y -= height;
}

fn cell_text(c: &mut Canvas, x: f32, col: &Col, y: f32, s: &str, style: Style) {
    let s = c
        .fonts
        .face(style.bold)
        .ellipsize(s, style.size, col.width - 2.0 * PAD);
    match col.align {
        Align::Left => c.text(x + PAD, y, &s, style),
        Align::Right => c.text_right(x + col.width - PAD, y, &s, style),
        Align::Center => c.text_center(x + col.width / 2.0, y, &s, style),
    }
}

/// A labelled value in a grid.
pub(super) struct Field {
    /// Small label above the value.
    pub label: String,
    /// The value, wrapped to the cell.
    pub value: String,
    /// Colour of the value instead of ink.
    pub color: Option<Rgb>,
}

impl Field {
    /// A field in ink.
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> Field {
        Field {
            label: label.into(),
            value: value.into(),
            color: None,
        }
    }
}

/// Draws `fields` in rows of `per_row` cells: a small muted label over the value (wrapped to
/// the cell), a thin rule between rows.
pub(super) fn grid(c: &mut Canvas, fields: &[Field], per_row: usize, value: Style) {
    let per_row = per_row.max(1);
    let cell_w = WIDTH / per_row as f32;
    let label = Style::regular(7.5).color(palette::MUTED);
    let line_h = value.size * 1.3;
    for chunk in fields.chunks(per_row) {
        let wrapped: Vec<Vec<String>> = chunk
            .iter()
            .map(|f| {
                c.fonts
                    .face(value.bold)
                    .wrap(&f.value, value.size, cell_w - 10.0)
            })
            .collect();
        let lines = wrapped.iter().map(Vec::len).max().unwrap_or(1);
        let height = 12.0 + lines as f32 * line_h + 5.0;
        c.ensure(height);
        let mut x = LEFT;
        for (field, lines) in chunk.iter().zip(&wrapped) {
            c.text(x + 2.0, c.y - 9.0, &field.label, label);
            let style = value.color(field.color.unwrap_or(value.color));
            let mut y = c.y - 12.0 - value.size * 0.95;
            for line in lines {
                c.text(x + 2.0, y, line, style);
                y -= line_h;
            }
            x += cell_w;
        }
        c.y -= height;
        c.rule(c.y + 2.0, 0.4, palette::RULE);
    }
    c.y -= 6.0;
}
