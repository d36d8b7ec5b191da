//! The words just before a number, which say what it is (Presidio's "context words").
//!
//! A run of ten bare digits is an order number as often as a phone number, and a twelve
//! digit Luhn-valid run (a Maestro card) is one time in ten any twelve digits. Shape alone
//! cannot tell them apart; the sentence can. "Nous vous appellerons au 0492195494",
//! "Mobile: 3304524169" and "my card 583289173945" name what follows, and so does "The ISBN
//! is 978-0-13-468599-1", the other way. The nearest cue word within a few words before the
//! number decides; a number with no cue keeps the shape rules alone.
//!
//! The window is counted in characters as the detectors read them (folded), so a stream
//! that keeps the last `WINDOW` folded characters it released sees exactly what the whole
//! text shows.

/// How far back (in folded characters) cue words are looked for.
pub const WINDOW: usize = 48;
/// How many words back (the nearest cue within them decides).
const WORDS: usize = 6;

/// What the words before a number say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cue {
    /// No cue word: shape rules alone.
    None,
    Phone,
    Card,
    /// An identifier that is not personal data (ISBN, order, invoice, tracking number...).
    NotPersonal,
}

/// Word stems (lowercase; a word matches when it starts with one) and what they cue.
const STEMS: &[(&str, Cue)] = &[
    // Phones, in the languages of the corpus and a few more.
    ("phone", Cue::Phone),
    ("telephone", Cue::Phone),
    ("telefon", Cue::Phone),
    ("téléphone", Cue::Phone),
    ("tel", Cue::Phone),
    ("tél", Cue::Phone),
    ("mobile", Cue::Phone),
    ("mobil", Cue::Phone),
    ("cell", Cue::Phone),
    ("fax", Cue::Phone),
    ("call", Cue::Phone),
    ("sms", Cue::Phone),
    ("whatsapp", Cue::Phone),
    ("dial", Cue::Phone),
    ("hotline", Cue::Phone),
    ("desk", Cue::Phone),
    ("appel", Cue::Phone),
    ("rappel", Cue::Phone),
    ("joindre", Cue::Phone),
    ("portable", Cue::Phone),
    ("handy", Cue::Phone),
    ("rufnummer", Cue::Phone),
    ("anruf", Cue::Phone),
    ("ruf", Cue::Phone),
    ("teléfono", Cue::Phone),
    ("móvil", Cue::Phone),
    ("llam", Cue::Phone),
    ("cellulare", Cue::Phone),
    // Payment cards.
    ("card", Cue::Card),
    ("carte", Cue::Card),
    ("karte", Cue::Card),
    ("kreditkarte", Cue::Card),
    ("tarjeta", Cue::Card),
    ("carta", Cue::Card),
    ("cartão", Cue::Card),
    ("visa", Cue::Card),
    ("mastercard", Cue::Card),
    ("maestro", Cue::Card),
    ("amex", Cue::Card),
    ("credit", Cue::Card),
    ("debit", Cue::Card),
    ("pan", Cue::Card),
    // Identifiers that look like numbers of a person and are not.
    ("isbn", Cue::NotPersonal),
    ("issn", Cue::NotPersonal),
    ("doi", Cue::NotPersonal),
    ("order", Cue::NotPersonal),
    ("invoice", Cue::NotPersonal),
    ("tracking", Cue::NotPersonal),
    ("ticket", Cue::NotPersonal),
    ("serial", Cue::NotPersonal),
    ("version", Cue::NotPersonal),
    ("build", Cue::NotPersonal),
    ("commit", Cue::NotPersonal),
    ("sku", Cue::NotPersonal),
];

/// The stems a word matches exactly rather than as a prefix (too short to be a prefix:
/// "tel" must not match "tell", "pan" not "panel", "ruf" not "rufus", "doi" not "doing").
const EXACT: &[&str] = &["tel", "tél", "pan", "ruf", "doi", "sku", "desk"];

/// The cue of one word (already lowercase).
fn cue_of(word: &str) -> Cue {
    STEMS
        .iter()
        .find(|(stem, _)| {
            if EXACT.contains(stem) {
                word == *stem
            } else {
                word.starts_with(stem)
            }
        })
        .map_or(Cue::None, |&(_, cue)| cue)
}

/// The cue in the words just before a number: `text` is what precedes it in the scanned
/// text, `earlier` what preceded that (a stream's released context); both folded.
pub fn before(text: &str, earlier: &str) -> Cue {
    let mut chars = text.chars().rev().chain(earlier.chars().rev()).take(WINDOW);
    let mut word: Vec<char> = Vec::new();
    let mut words = 0;
    loop {
        let next = chars.next();
        match next {
            Some(c) if c.is_alphanumeric() => word.push(c),
            _ => {
                // A JSON or C escape written out ("\\nMobile:") starts no word.
                if next == Some('\\') && matches!(word.last(), Some('n' | 't' | 'r')) {
                    word.pop();
                }
                if !word.is_empty() {
                    // A number's own digits (an earlier group) are no word.
                    if word.iter().any(|c| c.is_alphabetic()) {
                        let spelled: String =
                            word.iter().rev().flat_map(|c| c.to_lowercase()).collect();
                        let cue = cue_of(&spelled);
                        if cue != Cue::None {
                            return cue;
                        }
                        words += 1;
                        if words == WORDS {
                            return Cue::None;
                        }
                    }
                    word.clear();
                }
                if next.is_none() {
                    return Cue::None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_cue_word_decides() {
        assert_eq!(before("Nous vous appellerons au ", ""), Cue::Phone);
        assert_eq!(
            before("bitte bestätigen Sie Ihre Telefonnummer ", ""),
            Cue::Phone
        );
        assert_eq!(before("Mobile: ", ""), Cue::Phone);
        assert_eq!(before("OK 34816\\nMobile: ", ""), Cue::Phone);
        assert_eq!(before("Can I withdraw cash using my card ", ""), Cue::Card);
        assert_eq!(
            before("The ISBN of the second edition is ", ""),
            Cue::NotPersonal
        );
        assert_eq!(before("For your order questions call ", ""), Cue::Phone);
        assert_eq!(before("We called about your order ", ""), Cue::NotPersonal);
        assert_eq!(before("Tell me about ", ""), Cue::None);
        assert_eq!(before("the panel shows ", ""), Cue::None);
    }

    #[test]
    fn the_window_spans_what_a_stream_released_before() {
        assert_eq!(before("au ", "Nous vous appellerons "), Cue::Phone);
        assert_eq!(before("", "Phone: "), Cue::Phone);
    }

    #[test]
    fn cues_far_away_do_not_count() {
        assert_eq!(
            before(
                "and then we went on to talk about many other things ",
                "phone "
            ),
            Cue::None
        );
        assert_eq!(
            before("one two three four five six seven ", "phone "),
            Cue::None
        );
    }
}
