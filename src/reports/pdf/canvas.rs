//! Page geometry and drawing primitives on top of printpdf's operations: positioned text in
//! the embedded faces, filled rectangles, lines, page breaks, and the footer of every page.
//! Coordinates are points from the bottom-left corner, as in PDF.

use printpdf::{
    Color, Line, LineDashPattern, LinePoint, Mm, Op, PaintMode, PdfFontHandle, PdfPage, Point,
    Polygon, PolygonRing, Pt, Rect, TextItem, WindingOrder,
};

use super::font::Fonts;

/// A4 width in points.
pub(super) const PAGE_W: f32 = 595.276;
/// A4 height in points.
pub(super) const PAGE_H: f32 = 841.89;
/// Left edge of the content.
pub(super) const LEFT: f32 = 45.0;
/// Right edge of the content.
pub(super) const RIGHT: f32 = PAGE_W - 45.0;
/// Width of the content.
pub(super) const WIDTH: f32 = RIGHT - LEFT;
/// Top of the content.
pub(super) const TOP: f32 = PAGE_H - 45.0;
/// Lowest point content may reach; the footer lives below.
pub(super) const BOTTOM: f32 = 62.0;

/// An RGB colour: red, green and blue from 0 to 1.
#[derive(Clone, Copy)]
pub(super) struct Rgb(pub f32, pub f32, pub f32);

impl Rgb {
    fn color(self) -> Color {
        Color::Rgb(printpdf::Rgb::new(self.0, self.1, self.2, None))
    }
}

/// The report's palette.
pub(super) mod palette {
    use super::Rgb;
    /// Body text.
    pub const INK: Rgb = Rgb(0.13, 0.15, 0.17);
    /// Labels, notes, footer.
    pub const MUTED: Rgb = Rgb(0.40, 0.43, 0.46);
    /// Headings and accents (a deep green).
    pub const ACCENT: Rgb = Rgb(0.09, 0.40, 0.27);
    /// Thin rules and grid lines.
    pub const RULE: Rgb = Rgb(0.80, 0.82, 0.83);
    /// Table header background.
    pub const HEADER_BG: Rgb = Rgb(0.86, 0.92, 0.88);
    /// Alternate table rows.
    pub const ZEBRA: Rgb = Rgb(0.96, 0.97, 0.965);
    /// Rows of days without data.
    pub const MISSING_BG: Rgb = Rgb(1.0, 0.95, 0.85);
    /// Marks of days without data.
    pub const MISSING: Rgb = Rgb(0.62, 0.62, 0.62);
    /// Expected production (blue, dashed).
    pub const EXPECTED: Rgb = Rgb(0.18, 0.42, 0.70);
    /// Actual production (orange, solid).
    pub const ACTUAL: Rgb = Rgb(0.88, 0.45, 0.05);
    /// Below expectations.
    pub const BAD: Rgb = Rgb(0.70, 0.20, 0.13);
}

/// Size, weight and colour of a piece of text.
#[derive(Clone, Copy)]
pub(super) struct Style {
    /// Font size in points.
    pub size: f32,
    /// Bold face instead of regular.
    pub bold: bool,
    /// Text colour.
    pub color: Rgb,
}

impl Style {
    /// Regular ink text.
    pub const fn regular(size: f32) -> Style {
        Style {
            size,
            bold: false,
            color: palette::INK,
        }
    }
    /// Bold ink text.
    pub const fn bold(size: f32) -> Style {
        Style {
            size,
            bold: true,
            color: palette::INK,
        }
    }
    /// The same style in another colour.
    pub const fn color(self, color: Rgb) -> Style {
        Style { color, ..self }
    }
}

/// The pages being drawn and the vertical cursor `y` (top of the next block).
pub(super) struct Canvas<'a> {
    /// The embedded faces, for measuring and setting text.
    pub fonts: &'a Fonts,
    pages: Vec<Vec<Op>>,
    ops: Vec<Op>,
    /// Top of the free space on the current page.
    pub y: f32,
}

impl<'a> Canvas<'a> {
    /// A canvas with one empty page.
    pub fn new(fonts: &'a Fonts) -> Canvas<'a> {
        Canvas {
            fonts,
            pages: Vec::new(),
            ops: Vec::new(),
            y: TOP,
        }
    }

    /// Starts a new page.
    pub fn new_page(&mut self) {
        self.pages.push(std::mem::take(&mut self.ops));
        self.y = TOP;
    }

    /// Starts a new page unless `height` points still fit above the bottom margin; returns
    /// whether it did.
    pub fn ensure(&mut self, height: f32) -> bool {
        let broke = self.y - height < BOTTOM && self.y < TOP;
        if broke {
            self.new_page();
        }
        broke
    }

    /// Width of `s` in `style`.
    pub fn width(&self, s: &str, style: Style) -> f32 {
        self.fonts.face(style.bold).width(s, style.size)
    }

    /// `s` with its left end at `x` on the baseline `y`.
    pub fn text(&mut self, x: f32, y: f32, s: &str, style: Style) {
        let face = self.fonts.face(style.bold);
        let s = face.clean(s);
        if s.trim().is_empty() {
            return;
        }
        self.ops.extend([
            Op::StartTextSection,
            Op::SetFillColor {
                col: style.color.color(),
            },
            Op::SetFont {
                font: PdfFontHandle::External(face.id.clone()),
                size: Pt(style.size),
            },
            Op::SetTextCursor { pos: pt(x, y) },
            Op::ShowText {
                items: vec![TextItem::Text(s)],
            },
            Op::EndTextSection,
        ]);
    }

    /// `s` with its right end at `x`.
    pub fn text_right(&mut self, x: f32, y: f32, s: &str, style: Style) {
        let w = self.width(s, style);
        self.text(x - w, y, s, style);
    }

    /// `s` centred on `x`.
    pub fn text_center(&mut self, x: f32, y: f32, s: &str, style: Style) {
        let w = self.width(s, style);
        self.text(x - w / 2.0, y, s, style);
    }

    /// A filled rectangle with its lower-left corner at (`x`, `y`).
    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, color: Rgb) {
        self.ops.push(Op::SetFillColor { col: color.color() });
        self.ops.push(Op::DrawRectangle {
            rectangle: Rect {
                mode: Some(PaintMode::Fill),
                ..Rect::from_xywh(Pt(x), Pt(y), Pt(w), Pt(h))
            },
        });
    }

    /// A filled closed shape; `bezier` marks control points of cubic curves.
    pub fn shape(&mut self, points: &[(f32, f32, bool)], color: Rgb) {
        self.ops.push(Op::SetFillColor { col: color.color() });
        self.ops.push(Op::DrawPolygon {
            polygon: Polygon {
                rings: vec![PolygonRing {
                    points: points
                        .iter()
                        .map(|&(x, y, bezier)| LinePoint {
                            p: pt(x, y),
                            bezier,
                        })
                        .collect(),
                }],
                mode: PaintMode::Fill,
                winding_order: WindingOrder::NonZero,
            },
        });
    }

    /// A polyline; `dash` gives dash and gap lengths, empty for a solid line.
    pub fn line(&mut self, points: &[(f32, f32)], width: f32, color: Rgb, dash: &[f32]) {
        if points.len() < 2 {
            return;
        }
        self.ops.extend([
            Op::SaveGraphicsState,
            Op::SetOutlineColor { col: color.color() },
            Op::SetOutlineThickness { pt: Pt(width) },
            Op::SetLineDashPattern {
                dash: LineDashPattern::new(0.0, dash),
            },
            Op::DrawLine {
                line: Line {
                    points: points
                        .iter()
                        .map(|&(x, y)| LinePoint {
                            p: pt(x, y),
                            bezier: false,
                        })
                        .collect(),
                    is_closed: false,
                },
            },
            Op::RestoreGraphicsState,
        ]);
    }

    /// A horizontal rule across the content width at `y`.
    pub fn rule(&mut self, y: f32, width: f32, color: Rgb) {
        self.line(&[(LEFT, y), (RIGHT, y)], width, color, &[]);
    }

    /// Finishes the document: draws the footer (`footer_left`, `footer_right`, then
    /// "Página X de N") on every page and returns the pages.
    pub fn finish(mut self, footer_left: &str, footer_right: &str) -> Vec<PdfPage> {
        self.pages.push(std::mem::take(&mut self.ops));
        let total = self.pages.len();
        let pages = std::mem::take(&mut self.pages);
        let small = Style::regular(7.5).color(palette::MUTED);
        pages
            .into_iter()
            .enumerate()
            .map(|(i, ops)| {
                self.ops = ops;
                let right = format!("{footer_right} · Página {} de {total}", i + 1);
                let room = WIDTH - self.width(&right, small) - 16.0;
                let left = self.fonts.regular.ellipsize(footer_left, small.size, room);
                self.rule(BOTTOM - 20.0, 0.5, palette::RULE);
                self.text(LEFT, BOTTOM - 31.0, &left, small);
                self.text_right(RIGHT, BOTTOM - 31.0, &right, small);
                PdfPage::new(Mm(210.0), Mm(297.0), std::mem::take(&mut self.ops))
            })
            .collect()
    }
}

fn pt(x: f32, y: f32) -> Point {
    Point { x: Pt(x), y: Pt(y) }
}
