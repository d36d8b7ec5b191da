//! Unicode sanitation: find the characters that smuggle text past a reader, remove them, and
//! produce the form detectors scan.
//!
//! Smuggling carriers are invisible to people but not to models: Unicode tag characters
//! (U+E0000..U+E007F, which spell ASCII invisibly), zero-width and other invisible formatting
//! characters, bidirectional overrides (which reorder what is displayed), variation selectors
//! (which can encode bytes), and fillers. `sanitize` removes them and reports what it found.
//! Tag characters are also decoded, so the hidden instruction they carry is scanned too.
//!
//! The scan form is NFKC (full-width and other compatibility forms become plain letters),
//! with confusables folded to their Latin skeleton (Cyrillic `а` reads as `a`), lower-cased,
//! and with leetspeak digits folded (`1gn0re` reads as `ignore`): detectors see what the model
//! will read, not the disguise.

use unicode_normalization::UnicodeNormalization;

/// A family of invisible characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Carrier {
    /// U+E0000..U+E007F: invisible copies of ASCII.
    TagCharacters,
    /// Zero-width spaces and joiners, word joiner, BOM, Mongolian vowel separator.
    ZeroWidth,
    /// Embeddings, overrides and isolates that reorder displayed text.
    Bidi,
    /// U+FE00..U+FE0F and U+E0100..U+E01EF, which can carry bytes.
    VariationSelectors,
    /// Soft hyphen, invisible operators, Hangul fillers, combining grapheme joiner.
    OtherInvisible,
}

impl Carrier {
    pub fn of(c: char) -> Option<Carrier> {
        if (c as u32) < 0xAD {
            return None;
        }
        Some(match c as u32 {
            0xE0000..=0xE007F => Carrier::TagCharacters,
            0x200B..=0x200D | 0x2060 | 0xFEFF | 0x180E => Carrier::ZeroWidth,
            0x202A..=0x202E | 0x2066..=0x2069 | 0x200E | 0x200F | 0x061C => Carrier::Bidi,
            0xFE00..=0xFE0F | 0xE0100..=0xE01EF => Carrier::VariationSelectors,
            0x00AD
            | 0x034F
            | 0x115F
            | 0x1160
            | 0x3164
            | 0xFFA0
            | 0x2061..=0x2064
            | 0x17B4
            | 0x17B5 => Carrier::OtherInvisible,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Carrier::TagCharacters => "tag_characters",
            Carrier::ZeroWidth => "zero_width",
            Carrier::Bidi => "bidi_controls",
            Carrier::VariationSelectors => "variation_selectors",
            Carrier::OtherInvisible => "invisible_characters",
        }
    }
}

/// What sanitation found in a text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sanitized {
    /// The text without smuggling carriers: what is forwarded under the `strip` policy.
    pub text: String,
    /// How many characters of each family were removed.
    pub removed: Vec<(Carrier, usize)>,
    /// ASCII spelled by tag characters, if any: a hidden message.
    pub hidden: String,
}

impl Sanitized {
    pub fn changed(&self) -> bool {
        !self.removed.is_empty()
    }
}

/// Removes smuggling carriers; an emoji's own variation selector (U+FE0F after a pictograph)
/// and zero-width joiners inside emoji sequences are kept, since they change nothing a model
/// reads and are common in benign text.
pub fn sanitize(text: &str) -> Sanitized {
    if !non_ascii_chars(text).any(|c| Carrier::of(c).is_some()) {
        return Sanitized {
            text: text.to_owned(),
            ..Sanitized::default()
        };
    }
    let mut out = String::with_capacity(text.len());
    let mut counts: std::collections::BTreeMap<Carrier, usize> = Default::default();
    let mut hidden = String::new();
    let mut previous: Option<char> = None;
    // Inside a subdivision flag (U+1F3F4 followed by tag letters and U+E007F, e.g. England's).
    let mut in_flag = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match Carrier::of(c) {
            None => {
                in_flag = c == '\u{1F3F4}';
                out.push(c);
            }
            Some(carrier) => {
                let emoji_before = previous.is_some_and(is_pictograph);
                let emoji_after = chars.peek().is_some_and(|n| is_pictograph(*n));
                let keep = match c as u32 {
                    0xFE0F => emoji_before,
                    0x200D => emoji_before && emoji_after,
                    0xE0061..=0xE007A if in_flag => true,
                    0xE007F if in_flag => {
                        in_flag = false;
                        true
                    }
                    _ => false,
                };
                if keep {
                    out.push(c);
                } else {
                    *counts.entry(carrier).or_default() += 1;
                    if carrier == Carrier::TagCharacters {
                        let ascii = (c as u32 - 0xE0000) as u8;
                        if ascii.is_ascii_graphic() || ascii == b' ' {
                            hidden.push(ascii as char);
                        }
                    }
                }
            }
        }
        previous = Some(c);
    }
    Sanitized {
        text: out,
        removed: counts.into_iter().collect(),
        hidden,
    }
}

fn is_pictograph(c: char) -> bool {
    matches!(c as u32, 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF)
}

/// NFKC, normalising only the stretches that are not ASCII.
///
/// ASCII is its own NFKC, and no composition has an ASCII character as its second part, so
/// a text is the concatenation of its ASCII stretches and the NFKC of each non-ASCII stretch
/// taken together with the ASCII character just before it (which a combining mark may join).
/// Prompts are mostly ASCII: this skips nearly all of the normaliser's work.
pub fn to_nfkc(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let Some(first) = bytes.iter().position(|b| !b.is_ascii()) else {
        return std::borrow::Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 16);
    let mut at = 0;
    let mut i = first;
    while i < bytes.len() {
        // A non-ASCII stretch starts at `i`; it takes the ASCII character before it along.
        let start = if i > at { i - 1 } else { i };
        out.push_str(&text[at..start]);
        let mut end = i;
        while end < bytes.len() && !bytes[end].is_ascii() {
            end += 1;
        }
        let stretch = &text[start..end];
        if unicode_normalization::is_nfkc_quick(stretch.chars())
            == unicode_normalization::IsNormalized::Yes
        {
            out.push_str(stretch);
        } else {
            out.extend(stretch.nfkc());
        }
        at = end;
        i = match bytes[end..].iter().position(|b| !b.is_ascii()) {
            Some(next) => end + next,
            None => bytes.len(),
        };
    }
    out.push_str(&text[at..]);
    std::borrow::Cow::Owned(out)
}

/// Builds the confusables table now, so the first request does not.
pub fn warm_up() {
    fold_confusable('\u{0430}');
}

/// The form detectors scan: NFKC, confusables folded to Latin, lower case, leetspeak digits
/// folded, runs of white space collapsed (to a line break where they hold one).
pub fn scan_form(text: &str) -> String {
    scan_form_of_nfkc(&to_nfkc(text))
}

/// [`scan_form`] of a text already in NFKC.
pub fn scan_form_of_nfkc(nfkc: &str) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(nfkc.len() + 8);
    let mut space = false;
    let bytes = nfkc.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // ASCII, nearly all of most prompts, takes the short way: a run of visible ASCII is
        // mapped through the table at once (white space within ASCII is \t to \r and space).
        let visible = bytes[i..]
            .iter()
            .take_while(|b| b.is_ascii() && !matches!(b, b'\t'..=b'\r' | b' '))
            .count();
        if visible > 0 {
            out.extend(
                bytes[i..i + visible]
                    .iter()
                    .map(|&b| ASCII_SCAN[b as usize]),
            );
            space = false;
            i += visible;
            continue;
        }
        if bytes[i].is_ascii() {
            push_scan(&mut out, &mut space, bytes[i] as char);
            i += 1;
            continue;
        }
        let c = nfkc[i..].chars().next().expect("a character starts here");
        i += c.len_utf8();
        for lower in fold_confusable(c).to_lowercase() {
            push_scan(&mut out, &mut space, lower);
        }
    }
    String::from_utf8(out).expect("built from whole characters")
}

/// One character of the scan form.
fn push_scan(out: &mut Vec<u8>, space: &mut bool, c: char) {
    if c.is_whitespace() {
        // A run of white space is one space, or one line break if it holds one: the
        // detector cuts segments at line breaks.
        if !*space {
            out.push(if c == '\n' { b'\n' } else { b' ' });
        } else if c == '\n' && out.last() == Some(&b' ') {
            out.pop();
            out.push(b'\n');
        }
        *space = true;
    } else if c.is_ascii() {
        out.push(ASCII_SCAN[c as usize]);
        *space = false;
    } else {
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        *space = false;
    }
}

/// The characters of a text that are not ASCII, found without decoding the ASCII between
/// them.
pub fn non_ascii_chars(text: &str) -> impl Iterator<Item = char> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        i += bytes[i.min(bytes.len())..]
            .iter()
            .position(|b| !b.is_ascii())?;
        let c = text[i..].chars().next()?;
        i += c.len_utf8();
        Some(c)
    })
}

/// The scan form of each ASCII character: lower case, leetspeak folded.
static ASCII_SCAN: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let lower = (i as u8).to_ascii_lowercase();
        table[i] = match lower {
            b'0' => b'o',
            b'1' | b'!' | b'|' => b'i',
            b'3' => b'e',
            b'4' | b'@' => b'a',
            b'5' | b'$' => b's',
            b'7' => b't',
            c => c,
        };
        i += 1;
    }
    table
};

/// One character's Latin look-alike, from Unicode's confusables (UTS #39 skeleton), when it
/// is a single ASCII letter or digit; other characters stay as they are.
fn fold_confusable(c: char) -> char {
    if c.is_ascii() {
        return c;
    }
    // The Basic Multilingual Plane is folded once, into a table, on first use.
    static TABLE: std::sync::OnceLock<Vec<char>> = std::sync::OnceLock::new();
    if (c as u32) < 0x1_0000 {
        let table = TABLE.get_or_init(|| {
            (0..0x1_0000u32)
                .map(|u| char::from_u32(u).map_or('\u{FFFD}', fold_uncached))
                .collect()
        });
        return table[c as usize];
    }
    fold_uncached(c)
}

fn fold_uncached(c: char) -> char {
    if c.is_ascii() {
        return c;
    }
    let mut buf = [0u8; 4];
    let skeleton: String =
        unicode_security::confusable_detection::skeleton(c.encode_utf8(&mut buf)).collect();
    let mut chars = skeleton.chars();
    match (chars.next(), chars.next()) {
        (Some(s), None) if s.is_ascii_alphanumeric() => s,
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_carriers_and_decodes_tags() {
        let tagged: String = "hi"
            .chars()
            .chain(
                "ignore"
                    .chars()
                    .map(|c| char::from_u32(0xE0000 + c as u32).unwrap()),
            )
            .collect();
        let s = sanitize(&tagged);
        assert_eq!(s.text, "hi");
        assert_eq!(s.hidden, "ignore");
        assert_eq!(s.removed, vec![(Carrier::TagCharacters, 6)]);
        let s = sanitize("a\u{200B}b\u{202E}c\u{FE01}");
        assert_eq!(s.text, "abc");
        assert_eq!(s.removed.len(), 3);
    }

    #[test]
    fn keeps_emoji_sequences_and_plain_text() {
        let family = "👨\u{200D}👩\u{200D}👧 ❤\u{FE0F}";
        assert_eq!(sanitize(family).text, family);
        let england = "\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}";
        assert!(!sanitize(england).changed());
        assert!(!sanitize("plain text").changed());
    }

    proptest::proptest! {
        #[test]
        fn nfkc_by_stretches_equals_nfkc_of_the_whole(
            text in "([a-zA-Z .]|[\u{300}-\u{36F}]|[\u{C0}-\u{17F}]|[\u{FF01}-\u{FF5E}]|[\u{1100}-\u{11FF}]|[\u{AC00}-\u{AC10}]|\u{2126}|\u{212B}|\u{FB01}){0,24}"
        ) {
            let whole: String = text.nfkc().collect();
            let stretches = to_nfkc(&text).into_owned();
            proptest::prop_assert_eq!(stretches, whole);
        }

        /// The run-at-a-time ASCII path builds the scan form a character at a time would.
        #[test]
        fn the_scan_form_equals_its_character_by_character_definition(
            text in "[a-zA-Z0-9 \t\n\r\x0b\x0c!|@$.,]{0,40}|\\PC{0,40}"
        ) {
            let mut expected = Vec::new();
            let mut space = false;
            for c in text.chars() {
                for lower in fold_confusable(c).to_lowercase() {
                    push_scan(&mut expected, &mut space, if c.is_ascii() { c } else { lower });
                }
            }
            proptest::prop_assert_eq!(scan_form_of_nfkc(&text), String::from_utf8(expected).unwrap());
        }
    }

    #[test]
    fn the_scan_form_sees_through_disguises() {
        assert_eq!(scan_form("ＩＧＮＯＲＥ  previous"), "ignore previous");
        assert_eq!(scan_form("іgnоrе"), "ignore"); // Cyrillic і, о, е
        assert_eq!(scan_form("1gn0r3 4ll"), "ignore all");
    }
}
