//! The embedded DejaVu Sans faces (pre-subsetted, see `assets/fonts/README.md`): loading,
//! text width from the font's own advance widths, and line wrapping.

use printpdf::{FontId, ParsedFont, PdfDocument};

use crate::reports::render::RenderError;

const REGULAR_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-subset.ttf");
const BOLD_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold-subset.ttf");

/// Shown instead of a character the embedded subset does not have.
const REPLACEMENT: char = '?';

/// One face added to the document.
pub(super) struct Face {
    font: ParsedFont,
    /// Handle for `Op::SetFont`.
    pub(super) id: FontId,
    units_per_em: f32,
}

/// The two faces the report uses.
pub(super) struct Fonts {
    pub(super) regular: Face,
    pub(super) bold: Face,
}

impl Fonts {
    /// Parses the embedded faces and adds them to `doc`.
    pub(super) fn load(doc: &mut PdfDocument) -> Result<Fonts, RenderError> {
        Ok(Fonts {
            // The six-letter tag marks an embedded subset (ISO 32000-1, 9.6.4).
            regular: Face::load(doc, REGULAR_TTF, "BGSUBR+DejaVuSans")?,
            bold: Face::load(doc, BOLD_TTF, "BGSUBB+DejaVuSans-Bold")?,
        })
    }

    /// The face for regular or bold text.
    pub(super) fn face(&self, bold: bool) -> &Face {
        if bold { &self.bold } else { &self.regular }
    }
}

impl Face {
    fn load(doc: &mut PdfDocument, bytes: &[u8], name: &'static str) -> Result<Face, RenderError> {
        let mut warnings = Vec::new();
        let mut font =
            ParsedFont::from_bytes(bytes, 0, &mut warnings).ok_or(RenderError::Font(name))?;
        if font.codepoint_to_glyph.is_empty() || font.units_per_em == 0 {
            return Err(RenderError::Font(name));
        }
        font.font_name = Some(name.to_string());
        let id = doc.add_font(&font);
        let units_per_em = f32::from(font.units_per_em);
        Ok(Face {
            font,
            id,
            units_per_em,
        })
    }

    /// Whether the subset has a glyph for `c`.
    pub(super) fn covers(&self, c: char) -> bool {
        self.font.lookup_glyph_index(u32::from(c)).is_some()
    }

    /// Advance of `c` in em; characters without a glyph measure as their replacement.
    fn advance(&self, c: char) -> f32 {
        let c = if self.covers(c) { c } else { REPLACEMENT };
        self.font
            .lookup_glyph_index(u32::from(c))
            .and_then(|g| self.font.get_glyph_width(g))
            .map_or(0.0, |w| f32::from(w) / self.units_per_em)
    }

    /// Width of `s` set at `size` points, in points.
    pub(super) fn width(&self, s: &str, size: f32) -> f32 {
        s.chars().map(|c| self.advance(c)).sum::<f32>() * size
    }

    /// `s` made printable on one line: tabs become spaces, other control characters go, and
    /// characters outside the subset become `?` (instead of invisible `.notdef` boxes).
    pub(super) fn clean(&self, s: &str) -> String {
        s.chars()
            .filter_map(|c| match c {
                '\t' | '\n' => Some(' '),
                c if c.is_control() => None,
                c if self.covers(c) => Some(c),
                _ => Some(REPLACEMENT),
            })
            .collect()
    }

    /// `s` cut with an ellipsis so that it fits in `width` points.
    pub(super) fn ellipsize(&self, s: &str, size: f32, width: f32) -> String {
        let s = self.clean(s);
        if self.width(&s, size) <= width {
            return s;
        }
        let budget = width - self.width("…", size);
        let mut out = String::new();
        let mut used = 0.0;
        for c in s.chars() {
            used += self.advance(c) * size;
            if used > budget {
                break;
            }
            out.push(c);
        }
        format!("{}…", out.trim_end())
    }

    /// `text` broken into lines no wider than `width` points: paragraphs at line breaks (an
    /// empty line stays empty), words at spaces, and words longer than a line at any character.
    pub(super) fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in text.lines() {
            let paragraph = self.clean(paragraph);
            let mut line = String::new();
            // A no-break space (U+00A0) keeps its neighbours on one line.
            let words = paragraph.split(|c: char| c.is_whitespace() && c != '\u{a0}');
            for word in words.filter(|w| !w.is_empty()) {
                let candidate = if line.is_empty() {
                    word.to_string()
                } else {
                    format!("{line} {word}")
                };
                if self.width(&candidate, size) <= width {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                for c in word.chars() {
                    if !line.is_empty() && self.width(&line, size) + self.advance(c) * size > width
                    {
                        lines.push(std::mem::take(&mut line));
                    }
                    line.push(c);
                }
            }
            lines.push(line);
        }
        if lines.is_empty() {
            lines.push(String::new());
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fonts() -> Fonts {
        Fonts::load(&mut PdfDocument::new("t")).expect("fonts")
    }

    #[test]
    fn the_subset_covers_spanish_and_units() {
        let f = fonts();
        for c in "áéíóúüñÁÉÍÓÚÜÑ¿¡m³°C₄₂%–—•…“”‘’€".chars()
        {
            assert!(f.regular.covers(c) && f.bold.covers(c), "{c}");
        }
        assert_eq!(f.regular.clean("a\tb✓\u{7}"), "a b?");
    }

    #[test]
    fn widths_come_from_the_font_metrics() {
        let f = fonts();
        // DejaVu Sans: "Producción m³ °C ñ" at 14 pt is 135.5 pt.
        let w = f.regular.width("Producción m³ °C ñ", 14.0);
        assert!((w - 135.5).abs() < 0.5, "{w}");
        assert!(f.bold.width("Producción", 10.0) > f.regular.width("Producción", 10.0));
    }

    #[test]
    fn wrapping_respects_the_width_and_keeps_every_word() {
        let f = fonts();
        let text = "¿Qué pasó? ¡La válvula perdía gas! Supercalifragilísticoespialidosoextraordinario.\n\nFin.";
        let lines = f.regular.wrap(text, 10.0, 80.0);
        assert!(
            lines.iter().all(|l| f.regular.width(l, 10.0) <= 80.0),
            "{lines:?}"
        );
        assert!(lines.contains(&String::new()), "blank line kept");
        let joined: String = lines
            .concat()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let original: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(joined, original);
        let cut = f
            .regular
            .ellipsize("Granja Doña Inés — Biodigestor Ñandú", 10.0, 60.0);
        assert!(
            cut.ends_with('…') && f.regular.width(&cut, 10.0) <= 60.0,
            "{cut}"
        );
    }
}
