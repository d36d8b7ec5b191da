//! Look-alike folding for the detectors: a model asked to "hide" an item can write it with
//! zero-width characters inside, in fullwidth forms, with no-break spaces between its groups,
//! or in another script's digits (F11). The detectors read a folded copy, in which such
//! characters become their ASCII counterparts or disappear, and the spans they find are
//! mapped back to the original text, so redaction replaces what was really written.
//!
//! ASCII text (almost every answer) is not copied: `fold` returns `None` after one
//! vectorised check.

/// What a character reads as, for the detectors: itself, an ASCII look-alike, or nothing
/// (invisible characters).
pub fn fold_char(c: char) -> Option<char> {
    if c.is_ascii() {
        return Some(c);
    }
    let code = c as u32;
    Some(match code {
        // Zero-width and invisible format characters, the soft hyphen.
        0x200B..=0x200D | 0x2060..=0x2064 | 0xFEFF | 0x00AD | 0x180E => return None,
        // Fullwidth ASCII.
        0xFF01..=0xFF5E => char::from_u32(code - 0xFEE0).unwrap_or(c),
        // No-break, thin, figure, ideographic and other spaces.
        0x00A0 | 0x2000..=0x200A | 0x202F | 0x205F | 0x3000 => ' ',
        // Hyphens and dashes that read as '-'.
        0x2010..=0x2015 | 0x2212 | 0xFE63 => '-',
        // Decimal digits of other scripts.
        _ => match other_script_digit(code) {
            Some(d) => char::from(b'0' + d),
            None => c,
        },
    })
}

/// The value of a decimal digit of a script other than Latin (Arabic-Indic, Persian,
/// Devanagari, Bengali, Thai, mathematical), if `code` is one.
fn other_script_digit(code: u32) -> Option<u8> {
    const ZEROS: [u32; 8] = [
        0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0x1D7CE, 0x1D7D8, 0x1D7E2,
    ];
    ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&code))
        .map(|&zero| (code - zero) as u8)
}

/// A folded copy of a text, with where each of its bytes came from.
pub struct Folded {
    pub text: String,
    /// For each byte of `text`: the original start and end of the character it came from.
    origin: Vec<(u32, u32)>,
}

impl Folded {
    /// The folded copy of `text`, or `None` when folding changes nothing (ASCII text, or no
    /// look-alike in it).
    pub fn of(text: &str) -> Option<Folded> {
        if text.is_ascii() || text.chars().all(|c| fold_char(c) == Some(c)) {
            return None;
        }
        let mut folded = Folded {
            text: String::with_capacity(text.len()),
            origin: Vec::with_capacity(text.len()),
        };
        for (at, c) in text.char_indices() {
            let Some(f) = fold_char(c) else {
                continue;
            };
            folded.text.push(f);
            let end = (at + c.len_utf8()) as u32;
            folded
                .origin
                .extend(std::iter::repeat_n((at as u32, end), f.len_utf8()));
        }
        Some(folded)
    }

    /// The original byte range of the folded range `start..end` (non-empty).
    pub fn original(&self, start: usize, end: usize) -> (usize, usize) {
        let first = self.origin[start].0 as usize;
        let last = self.origin[end - 1].1 as usize;
        (first, last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_look_alikes_and_maps_back() {
        let text = "mail j\u{200b}ohn\u{FF20}x.io or \u{0664}\u{0662}";
        let f = Folded::of(text).unwrap();
        assert_eq!(f.text, "mail john@x.io or 42");
        let start = f.text.find("john").unwrap();
        let (a, b) = f.original(start, start + "john@x.io".len());
        assert_eq!(&text[a..b], "j\u{200b}ohn\u{FF20}x.io");
        assert!(Folded::of("plain ascii").is_none());
        assert!(Folded::of("café").is_none());
    }
}
