//! Prompt skeletons and sketches.
//!
//! A distiller's prompts come from templates filled with slot values ("Explain step by step
//! how {photosynthesis} works in {plants}"), so two of its prompts share their function
//! words and punctuation while every content word differs. The skeleton keeps exactly that:
//! function words and instruction verbs as written, every run of content words as `w`,
//! numbers as `#`, quoted spans as `Q`, sentence punctuation. Equal skeletons across
//! requests, and across accounts, are the "repetitive prompt structure" the providers'
//! reports describe. A SimHash of word pairs measures how near two prompts are.

use xxhash_rust::xxh3::xxh3_64;

/// A prompt's skeleton hash and its length in skeleton tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Skeleton {
    pub hash: u64,
    pub tokens: u16,
}

/// Skeletons shorter than this are too common to tell templates apart ("what is w?").
pub const MIN_DISTINCTIVE_TOKENS: u16 = 8;

impl Skeleton {
    /// Whether the skeleton is long enough that sharing it means sharing a template.
    pub fn distinctive(self) -> bool {
        self.tokens >= MIN_DISTINCTIVE_TOKENS
    }
}

/// Words kept as written: the frame a template is made of.
const FRAME_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "an",
    "analyze",
    "and",
    "answer",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "brief",
    "but",
    "by",
    "can",
    "classify",
    "code",
    "compare",
    "could",
    "create",
    "describe",
    "detail",
    "detailed",
    "did",
    "do",
    "does",
    "each",
    "example",
    "examples",
    "explain",
    "extract",
    "few",
    "final",
    "following",
    "for",
    "from",
    "generate",
    "give",
    "has",
    "have",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "list",
    "me",
    "more",
    "most",
    "my",
    "no",
    "not",
    "of",
    "on",
    "one",
    "only",
    "or",
    "other",
    "our",
    "out",
    "over",
    "please",
    "provide",
    "question",
    "reasoning",
    "rewrite",
    "should",
    "show",
    "so",
    "solution",
    "solve",
    "some",
    "step",
    "steps",
    "such",
    "summarize",
    "summary",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "translate",
    "under",
    "until",
    "up",
    "us",
    "using",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "why",
    "will",
    "with",
    "work",
    "would",
    "write",
    "you",
    "your",
];

/// The skeleton of `text` (its first 2 KiB are read: a template shows in its head, and a
/// long document pasted after it must not cost the detector its budget).
pub fn skeleton(text: &str) -> Skeleton {
    let head = &text[..floor_char_boundary(text, 2048)];
    let mut toks: Vec<u8> = Vec::with_capacity(64);
    let mut lower = String::new();
    let mut word_start: Option<usize> = None;
    let mut chars = head.char_indices();
    loop {
        let next = chars.next();
        let in_word =
            next.is_some_and(|(_, c)| c.is_alphanumeric() || (c == '\'' && word_start.is_some()));
        if in_word {
            word_start.get_or_insert(next.expect("in a word").0);
            continue;
        }
        if let Some(start) = word_start.take() {
            let end = next.map_or(head.len(), |(at, _)| at);
            push_word(
                &mut toks,
                &mut lower,
                head[start..end].trim_end_matches('\''),
            );
        }
        let Some((_, c)) = next else { break };
        match c {
            '"' | '“' | '`' | '«' => {
                // A quoted span is one slot, whatever it holds.
                let close = match c {
                    '“' => '”',
                    '«' => '»',
                    other => other,
                };
                for (_, n) in chars.by_ref() {
                    if n == close {
                        break;
                    }
                }
                toks.push(QUOTE);
            }
            '?' | '.' | ':' | '!' | '\n' | ';' if toks.last() != Some(&(c as u8)) => {
                toks.push(c as u8);
            }
            _ => {}
        }
    }
    Skeleton {
        hash: xxh3_64(&toks),
        tokens: toks.len().min(u16::MAX as usize) as u16,
    }
}

fn push_word(toks: &mut Vec<u8>, lower: &mut String, w: &str) {
    if w.bytes().any(|b| b.is_ascii_digit()) {
        toks.push(NUMBER);
        return;
    }
    let w = if w.bytes().all(|b| b.is_ascii_lowercase() || b == b'\'') {
        w
    } else {
        lower.clear();
        lower.extend(w.chars().flat_map(char::to_lowercase));
        lower.as_str()
    };
    match frame_index().get(w) {
        Some(&i) => toks.push(FRAME + i),
        None => push_content(toks),
    }
}

/// Skeleton token codes: punctuation is its own byte (below 64), frame words from `FRAME`.
const CONTENT: u8 = 1;
const NUMBER: u8 = 2;
const QUOTE: u8 = 3;
const FRAME: u8 = 64;

/// Words that join content words into one slot value ("the fall of the Roman Empire" is
/// one subject, as is "photosynthesis"): between two content words they are part of the
/// slot, and an article before a content word belongs to it.
const CONNECTORS: &[&str] = &[
    "a", "an", "and", "at", "by", "for", "from", "in", "its", "of", "on", "or", "the", "their",
    "to", "with",
];
const ARTICLES: &[&str] = &["a", "an", "the"];

/// Frame words by text (a hash lookup: a binary search compares a dozen strings a word).
fn frame_index() -> &'static rustc_hash::FxHashMap<&'static str, u8> {
    static INDEX: std::sync::OnceLock<rustc_hash::FxHashMap<&'static str, u8>> =
        std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        FRAME_WORDS
            .iter()
            .enumerate()
            .map(|(i, w)| (*w, i as u8))
            .collect()
    })
}

/// For each frame word: bit 0 a connector, bit 1 an article.
fn frame_roles() -> &'static [u8] {
    static ROLES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    ROLES.get_or_init(|| {
        FRAME_WORDS
            .iter()
            .map(|w| u8::from(CONNECTORS.contains(w)) | (u8::from(ARTICLES.contains(w)) << 1))
            .collect()
    })
}

fn is_frame(tok: u8, role: u8) -> bool {
    tok >= FRAME && frame_roles()[(tok - FRAME) as usize] & role != 0
}

/// Adds a content word: merged into the slot before it when only connectors separate them.
fn push_content(toks: &mut Vec<u8>) {
    let mut i = toks.len();
    while i > 0 && is_frame(toks[i - 1], 1) {
        i -= 1;
    }
    if i > 0 && toks[i - 1] == CONTENT {
        toks.truncate(i);
        return;
    }
    while toks.last().is_some_and(|&t| is_frame(t, 2)) {
        toks.pop();
    }
    toks.push(CONTENT);
}

/// A hash of the prompt's words, case and spacing folded: equal for the same prompt sent
/// twice, different for any other.
pub fn fingerprint(system: &str, user: &str) -> u64 {
    normalized_hash(system).rotate_left(17) ^ normalized_hash(user)
}

/// The hash of `text` lowercased, with every run of whitespace read as one space (one
/// pass over the bytes for ASCII text).
fn normalized_hash(text: &str) -> u64 {
    let lowered;
    let text = if text.is_ascii() {
        text
    } else {
        lowered = text.to_lowercase();
        &lowered
    };
    let mut out = Vec::with_capacity(text.len());
    let mut space = false;
    for &b in text.trim().as_bytes() {
        if b.is_ascii_whitespace() {
            space = true;
            continue;
        }
        if space {
            out.push(b' ');
            space = false;
        }
        out.push(b.to_ascii_lowercase());
    }
    xxh3_64(&out)
}

/// SimHash (64 bits) of the word pairs of `text`'s first 1 KiB: prompts that share most of
/// their words are a few bits apart; unrelated prompts are about 32 apart.
pub fn simhash(text: &str) -> u64 {
    let text = &text[..floor_char_boundary(text, 1024)];
    let mut weights = [0i32; 64];
    let mut prev: u64 = 0;
    let mut any = false;
    for w in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let h = if w.bytes().all(|b| !b.is_ascii_uppercase()) {
            xxh3_64(w.as_bytes())
        } else {
            xxh3_64(w.to_lowercase().as_bytes())
        };
        let pair = h ^ prev.rotate_left(29);
        prev = h;
        any = true;
        for (bit, weight) in weights.iter_mut().enumerate() {
            *weight += ((pair >> bit) & 1) as i32 * 2 - 1;
        }
    }
    if !any {
        return 0;
    }
    weights
        .iter()
        .enumerate()
        .fold(0u64, |acc, (bit, &w)| acc | (u64::from(w > 0) << bit))
}

fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    let mut i = at;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_word_codes_fit_in_a_byte() {
        assert!(usize::from(FRAME) + FRAME_WORDS.len() <= 256);
    }

    #[test]
    fn frame_words_are_sorted() {
        assert!(FRAME_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_template_with_other_slot_values_has_one_skeleton() {
        let a = skeleton(
            "Explain step by step how photosynthesis works in plants. Show your reasoning.",
        );
        let b = skeleton("Explain step by step how garbage collection works in Java virtual machines. Show your reasoning.");
        let c = skeleton(
            "What did the Romans eat for breakfast, and why was bread so important to them?",
        );
        assert_eq!(a, b);
        assert_ne!(a.hash, c.hash);
        assert!(a.distinctive());
        assert_eq!(
            skeleton("Solve: 12 + 7 = ? Answer \"now\""),
            skeleton("Solve: 3 + 99 = ? Answer \"later please\"")
        );
    }

    #[test]
    fn a_slot_value_with_its_own_small_words_is_still_one_slot() {
        let t = "Describe in detail {} as a question-answer pair for a dataset. Walk through each step.";
        let a = skeleton(&t.replace("{}", "photosynthesis"));
        let b = skeleton(&t.replace("{}", "the fall of the Western Roman Empire"));
        let c = skeleton(&t.replace("{}", "a lock-free queue in Rust"));
        assert_eq!(a, b);
        assert_eq!(a, c);
    }

    #[test]
    fn short_prompts_are_not_distinctive() {
        assert!(!skeleton("what is rust?").distinctive());
    }

    #[test]
    fn simhash_is_near_for_near_prompts() {
        let a = simhash("the quick brown fox jumps over the lazy dog near the river bank today");
        let b = simhash("the quick brown fox jumps over the lazy dog near the river bank tonight");
        let c =
            simhash("an entirely different sentence about compilers and their register allocators");
        assert!((a ^ b).count_ones() < 16, "{}", (a ^ b).count_ones());
        assert!((a ^ c).count_ones() > 16, "{}", (a ^ c).count_ones());
    }

    #[test]
    fn fingerprint_folds_case_and_spacing_only() {
        assert_eq!(
            fingerprint("", "Hello  World"),
            fingerprint("", "hello world")
        );
        assert_ne!(
            fingerprint("", "hello world"),
            fingerprint("", "hello world!")
        );
        assert_ne!(fingerprint("a", "x"), fingerprint("b", "x"));
    }
}
