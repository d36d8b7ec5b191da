//! The pre-tokenizers: o200k's, with ASCII pieces cut by a scanner, and cl100k's.
//!
//! `bpe-openai` splits text with a `regex-automata` pattern set that emulates tiktoken's
//! look-ahead; on a 2 KB prompt that split costs as much as the byte-pair merges after it
//! (about 12 µs of 25 µs here). Prompts are mostly ASCII, and on ASCII the o200k pattern
//! reduces to a few character classes, so this scanner makes the same cuts without an
//! automaton. A piece that starts at, or whose end was decided by, a non-ASCII character is
//! cut by the pattern itself (a `regex-automata` pattern set, written as `bpe-openai` writes
//! it): Unicode letter, mark, number and space classes are where a hand-written scanner would
//! go wrong.
//!
//! The pattern, in priority order (leftmost-first, as the regex engine resolves it):
//! 1. `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?`
//! 2. `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?`
//! 3. `\p{N}{1,3}`
//! 4. ` ?[^\s\p{L}\p{N}]+[\r\n/]*`
//! 5. `\s*[\r\n]+`
//! 6. `\s+$`
//! 7. `\s+(?!\S)` (a whitespace run less its last character, when at least two long)
//! 8. `\s+`
//!
//! The equivalence is property-tested against `bpe-openai`'s own split.

use regex_automata::meta::{Cache, Regex};
use regex_automata::{Anchored, Input};
use std::cell::RefCell;
use std::sync::LazyLock;

/// A tiktoken pattern as three patterns: the main alternatives, a whitespace run whose last
/// character is a look-ahead (dropped from the match), and any whitespace run. This is how
/// `bpe-openai` emulates tiktoken's `\s+(?!\S)`, which `regex-automata` does not support.
fn tiktoken_pattern(main: &str) -> Regex {
    Regex::new_many(&[main, "\\s+\\s", "\\s+"]).expect("the pattern compiles")
}

static O200K: LazyLock<Regex> = LazyLock::new(|| {
    tiktoken_pattern(
        &[
            "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
            "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
            "\\p{N}{1,3}",
            " ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*",
            "\\s*[\\r\\n]+",
            "\\s+$",
        ]
        .join("|"),
    )
});

static CL100K: LazyLock<Regex> = LazyLock::new(|| {
    tiktoken_pattern(
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+$",
    )
});

thread_local! {
    /// Search scratch per thread for each pattern (no pool, no lock).
    static CACHES: RefCell<[Option<Cache>; 2]> = const { RefCell::new([None, None]) };
}

/// The pattern's piece at the start of `rest` (not empty).
fn regex_piece<'a>(regex: &Regex, which: usize, rest: &'a str) -> &'a str {
    let input = Input::new(rest).anchored(Anchored::Yes);
    let found = CACHES.with(|caches| {
        let mut caches = caches.borrow_mut();
        let cache = caches[which].get_or_insert_with(|| regex.create_cache());
        regex.search_with(cache, &input)
    });
    let Some(found) = found else {
        // Every character matches one of the alternatives; one character is a safe cut.
        return &rest[..rest.chars().next().map_or(rest.len(), char::len_utf8)];
    };
    let mut end = found.end();
    if found.pattern().as_usize() == 1 {
        // The look-ahead character is not part of the piece.
        end -= rest[..end].chars().next_back().map_or(0, char::len_utf8);
    }
    &rest[..end.max(1)]
}

/// Calls `each` with every cl100k piece of `text`, in order (the pattern throughout: cl100k
/// is the older vocabulary, kept exact but not given a scanner of its own).
pub(super) fn split_cl100k(text: &str, mut each: impl FnMut(&[u8])) {
    let mut rest = text;
    while !rest.is_empty() {
        let piece = regex_piece(&CL100K, 1, rest);
        each(piece.as_bytes());
        rest = &rest[piece.len()..];
    }
}

/// ASCII whitespace as Unicode `\s` sees it: space, \t, \n, \x0B, \x0C, \r.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn is_letter(b: u8) -> bool {
    b.is_ascii_alphabetic()
}

/// `[^\s\p{L}\p{N}]` within ASCII: punctuation, symbols and control characters.
fn is_other(b: u8) -> bool {
    b.is_ascii() && !is_space(b) && !b.is_ascii_alphanumeric()
}

/// `[^\r\n\p{L}\p{N}]` within ASCII: what may stand before a word.
fn is_word_prefix(b: u8) -> bool {
    b.is_ascii() && b != b'\r' && b != b'\n' && !b.is_ascii_alphanumeric()
}

/// Whether the byte at `at` is past the end or ASCII: the scanner's decisions hold only if
/// the character that stopped a run is one it knows.
fn known(text: &[u8], at: usize) -> bool {
    text.get(at).is_none_or(u8::is_ascii)
}

/// Length of `(?i:'s|'t|'re|'ve|'m|'ll|'d)` at the start of `rest`, or 0; `None` when a
/// non-ASCII character decides it (case folding matches `ſ` to `s`, for one).
fn contraction(rest: &[u8]) -> Option<usize> {
    if rest.first() != Some(&b'\'') {
        return Some(0);
    }
    let at = |i: usize| rest.get(i).copied();
    if !at(1).is_none_or(|b| b.is_ascii()) {
        return None;
    }
    match at(1).map(|b| b.to_ascii_lowercase()) {
        Some(b's' | b't' | b'm' | b'd') => Some(2),
        Some(b'r' | b'v' | b'l') if !at(2).is_none_or(|b| b.is_ascii()) => None,
        Some(b'r' | b'v') if at(2).is_some_and(|b| b.eq_ignore_ascii_case(&b'e')) => Some(3),
        Some(b'l') if at(2).is_some_and(|b| b.eq_ignore_ascii_case(&b'l')) => Some(3),
        _ => Some(0),
    }
}

/// End of a word starting at `at` (alternatives 1 and 2, without the prefix character), if
/// a letter starts there and no non-ASCII character decides its contraction.
fn word_end(text: &[u8], at: usize) -> Option<usize> {
    let upper_end = at
        + text[at..]
            .iter()
            .take_while(|b| b.is_ascii_uppercase())
            .count();
    let lower_end = upper_end
        + text[upper_end..]
            .iter()
            .take_while(|b| b.is_ascii_lowercase())
            .count();
    // Alternative 1 needs a lowercase letter after the capitals; alternative 2 takes the
    // capitals alone. Either way the word is the capitals and the lowercase run after them.
    if lower_end == at {
        return None;
    }
    Some(lower_end + contraction(&text[lower_end..])?)
}

/// The end of the piece that starts at `at` (`at < text.len()`), or `None` when a
/// non-ASCII character starts it or decides where it ends.
fn piece_end(text: &[u8], at: usize) -> Option<usize> {
    let first = text[at];
    if !first.is_ascii() {
        return None;
    }
    let checked = |end: usize| known(text, end).then_some(end);
    // 1 and 2: a word, with one optional prefix character.
    if is_letter(first) {
        return word_end(text, at).and_then(checked);
    }
    if is_word_prefix(first) && text.get(at + 1).copied().is_some_and(is_letter) {
        return word_end(text, at + 1).and_then(checked);
    }
    // 3: up to three digits.
    if first.is_ascii_digit() {
        let digits = text[at..]
            .iter()
            .take(3)
            .take_while(|b| b.is_ascii_digit())
            .count();
        return checked(at + digits);
    }
    // 4: an optional space, punctuation, then line breaks and slashes.
    let other_from = if first == b' ' && text.get(at + 1).copied().is_some_and(is_other) {
        Some(at + 1)
    } else if is_other(first) {
        Some(at)
    } else {
        None
    };
    if let Some(from) = other_from {
        let mut end = from + text[from..].iter().take_while(|b| is_other(**b)).count();
        end += text[end..]
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n' | b'/'))
            .count();
        return checked(end);
    }
    // Whitespace (5 to 8); `first` is whitespace here. The whole run decides the cut.
    let run_end = at + text[at..].iter().take_while(|b| is_space(**b)).count();
    if !known(text, run_end) {
        return None;
    }
    let run = &text[at..run_end];
    if let Some(last_break) = run.iter().rposition(|b| matches!(b, b'\r' | b'\n')) {
        return Some(at + last_break + 1);
    }
    if run_end == text.len() || run.len() == 1 {
        return Some(run_end);
    }
    Some(run_end - 1)
}

/// Calls `each` with every piece of `text`, in order: cut by the scanner where it can, by
/// the pattern where it cannot.
pub(super) fn split(text: &str, mut each: impl FnMut(&[u8])) {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let end = match piece_end(bytes, at) {
            Some(end) => end,
            None => at + regex_piece(&O200K, 0, &text[at..]).len(),
        };
        debug_assert!(end > at);
        each(&bytes[at..end]);
        at = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ours(text: &str) -> Vec<String> {
        let mut pieces = Vec::new();
        split(text, |p| {
            pieces.push(String::from_utf8(p.to_vec()).unwrap())
        });
        pieces
    }

    fn theirs(text: &str) -> Vec<String> {
        bpe_openai::o200k_base()
            .split(text)
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn known_cuts() {
        for text in [
            "Hello world, it's HTTPRequest's 12345 dollars!!\n\n  next\tline  ",
            "   leading spaces and trailing\n",
            "don'T WE'LL they'Re x'd 'quoted' (paren) a/b c//\n/d",
            " \n \n x  \r\n",
            "ABCdef GHI jkLMNop 1 12 123 1234 ..., ?!",
            "",
            " ",
            "\t\tword \x0bvertical\x0c",
        ] {
            assert_eq!(ours(text), theirs(text), "{text:?}");
        }
    }

    #[test]
    fn non_ascii_pieces_are_cut_by_the_regex() {
        for text in [
            "café au lait, naïve résumé",
            "\n  \u{a0}\nnext",
            "x \u{2003} y",
            "1\u{b2}3 and 12\u{663}",
            "it\u{2019}s “quoted” — dash",
            "e\u{301}clair Ω 日本語 😀 ok",
            " \u{301}",
            "it'\u{17f} x",
            "IT'\u{17f}",
            "we'r\u{e9} a'\u{212a}",
        ] {
            assert_eq!(ours(text), theirs(text), "{text:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        /// Texts drawn from the characters where the pattern's branches meet.
        #[test]
        fn cuts_like_the_regex(text in "[aZbY' \t\n\r\x0b\x0c0-9.,!/_\x00-\x03sStTdDlLmMrReEvV-]{0,40}") {
            prop_assert_eq!(ours(&text), theirs(&text));
        }

        #[test]
        fn cuts_any_ascii_like_the_regex(text in "[\x00-\x7f]{0,80}") {
            prop_assert_eq!(ours(&text), theirs(&text));
        }

        /// ASCII next to letters, marks, digits, spaces and punctuation from outside it.
        #[test]
        fn cuts_mixed_text_like_the_regex(text in "[a-zA-Z0-9 \n'.\u{a0}\u{2003}\u{e9}\u{c9}\u{301}\u{b2}\u{663}\u{2019}\u{2014}\u{65e5}\u{1f600}\u{85}\u{17f}\u{212a}sStTlLrRvVe]{0,40}") {
            prop_assert_eq!(ours(&text), theirs(&text));
        }

        #[test]
        fn cuts_any_text_like_the_regex(text in "\\PC{0,40}") {
            prop_assert_eq!(ours(&text), theirs(&text));
        }

        /// The pattern alone (every piece through `regex_piece`) cuts as `bpe-openai` does.
        #[test]
        fn the_pattern_cuts_like_bpe_openai(text in "\\PC{1,40}") {
            let mut pieces = Vec::new();
            let mut rest = text.as_str();
            while !rest.is_empty() {
                let piece = regex_piece(&O200K, 0, rest);
                pieces.push(piece.to_owned());
                rest = &rest[piece.len()..];
            }
            prop_assert_eq!(pieces, theirs(&text));
        }

        #[test]
        fn cl100k_cuts_like_bpe_openai(text in "\\PC{0,40}|[a-zA-Z' \n0-9.,!]{0,60}") {
            let mut pieces = Vec::new();
            split_cl100k(&text, |p| pieces.push(String::from_utf8(p.to_vec()).unwrap()));
            let theirs: Vec<String> =
                bpe_openai::cl100k_base().split(&text).map(str::to_owned).collect();
            prop_assert_eq!(pieces, theirs);
        }
    }
}
