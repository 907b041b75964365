//! Client-supplied text in log lines. The journal shows raw bytes: a user name carrying a
//! carriage return, a line feed or an ANSI escape could start a forged line or repaint the
//! terminal of whoever reads the log. [`Clean`] prints such text with control characters
//! escaped (`\r`, `\n`, `\u{1b}`) and cut to a bounded length, while ordinary letters (accents,
//! ñ) stay readable. Use it for every field a client chose: `user = %Clean(&name)`.

use std::fmt;

/// Characters of client text shown in a log line at most.
pub const MAX_CHARS: usize = 160;

/// Displays client-supplied text safely in a log line (see the module documentation).
#[derive(Clone, Copy)]
pub struct Clean<'a>(pub &'a str);

impl fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shown, c) in self.0.chars().enumerate() {
            if shown == MAX_CHARS {
                return f.write_str("…");
            }
            if c.is_control() || is_invisible_format(c) {
                for e in c.escape_default() {
                    fmt::Write::write_char(f, e)?;
                }
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Clean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Characters that are not control characters but still rearrange or hide text in a
/// terminal: bidirectional overrides and isolates, zero-width characters, line and paragraph
/// separators.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_letters_kept() {
        let s = Clean("ana\r\n2026 INFO forjado\u{1b}[2K\u{7}").to_string();
        assert_eq!(s, "ana\\r\\n2026 INFO forjado\\u{1b}[2K\\u{7}");
        assert!(!s.chars().any(char::is_control));
        assert_eq!(Clean("José Núñez").to_string(), "José Núñez");
        assert_eq!(Clean("a\u{202e}b").to_string(), "a\\u{202e}b");
        assert_eq!(format!("{:?}", Clean("x\ty")), "\"x\\ty\"");
    }

    #[test]
    fn long_text_is_cut() {
        let s = Clean(&"x".repeat(10_000)).to_string();
        assert_eq!(s.chars().count(), MAX_CHARS + 1);
        assert!(s.ends_with('…'));
    }
}
