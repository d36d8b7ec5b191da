//! System-prompt leak checks: a canary string that must never appear in an answer, and
//! long verbatim spans of the request's own system prompt repeated in the answer.
//!
//! Both are compared in a skeleton form: look-alikes folded (fullwidth forms, invisible
//! characters), lowercase, letters and digits only. So `ZQ-CANARY-4471`, `zq - canary -
//! 4471` and a zero-width space inside the canary are the canary, and a system prompt repeated
//! in capitals, with doubled spaces, or in pieces joined by `|` is still the prompt.
//!
//! Spans are found by hashing every window of `span` skeleton bytes of the system prompt once,
//! then sliding the same window over the answer's skeleton: linear in both, whatever the
//! prompt's size. In a stream, the last `span` skeleton bytes of each choice's text are kept,
//! so a span or canary split across chunks is still seen.

use crate::redact::fold::fold_char;
use std::collections::{HashMap, HashSet};

/// Appends the skeleton of `text` to `out`: folded, lowercase, letters and digits only.
fn skeleton_into(text: &str, out: &mut String) {
    for c in text.chars().filter_map(fold_char) {
        out.extend(c.to_lowercase().filter(|l| l.is_alphanumeric()));
    }
}

fn skeleton(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    skeleton_into(text, &mut out);
    out
}

/// What to look for in one response.
#[derive(Debug, Clone)]
pub struct LeakCheck {
    /// The canary's skeleton.
    canary: Option<String>,
    /// Window hashes of the system prompt, and the window size in bytes.
    windows: Option<(HashSet<u64>, usize)>,
    /// Block (true) or only flag (false) a leak.
    pub block: bool,
}

/// What was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leak {
    Canary,
    SystemPrompt,
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl LeakCheck {
    /// `None` when there is nothing to check.
    pub fn new(
        canary: Option<String>,
        system_prompt: Option<(&str, usize)>,
        block: bool,
    ) -> Option<LeakCheck> {
        let windows = system_prompt
            .map(|(text, span)| (skeleton(text), span))
            .filter(|(text, span)| *span > 0 && text.len() >= *span)
            .map(|(text, span)| (text.as_bytes().windows(span).map(fnv).collect(), span));
        let canary = canary.map(|c| skeleton(&c)).filter(|c| !c.is_empty());
        (canary.is_some() || windows.is_some()).then_some(LeakCheck {
            canary,
            windows,
            block,
        })
    }

    /// Bytes of earlier text a stream must keep to see a leak that spans chunks.
    fn keep(&self) -> usize {
        let span = self.windows.as_ref().map_or(0, |(_, n)| *n);
        span.max(self.canary.as_ref().map_or(0, String::len))
    }

    /// Looks for a leak in `text`.
    pub fn find(&self, text: &str) -> Option<Leak> {
        self.find_in_skeleton(&skeleton(text))
    }

    fn find_in_skeleton(&self, text: &str) -> Option<Leak> {
        if self
            .canary
            .as_ref()
            .is_some_and(|c| text.contains(c.as_str()))
        {
            return Some(Leak::Canary);
        }
        let (hashes, span) = self.windows.as_ref()?;
        text.as_bytes()
            .windows(*span)
            .any(|w| hashes.contains(&fnv(w)))
            .then_some(Leak::SystemPrompt)
    }
}

/// The leak check of a stream: each choice's recent text.
#[derive(Debug)]
pub struct StreamLeakCheck {
    check: LeakCheck,
    tails: HashMap<u64, String>,
}

impl StreamLeakCheck {
    pub fn new(check: LeakCheck) -> Self {
        StreamLeakCheck {
            check,
            tails: HashMap::new(),
        }
    }

    pub fn blocks(&self) -> bool {
        self.check.block
    }

    /// The check itself, for texts that arrive whole.
    pub fn check(&self) -> &LeakCheck {
        &self.check
    }

    /// Adds a choice's new text; returns a leak if the recent text now shows one.
    pub fn push(&mut self, choice: u64, text: &str) -> Option<Leak> {
        let keep = self.check.keep();
        let tail = self.tails.entry(choice).or_default();
        skeleton_into(text, tail);
        let found = self.check.find_in_skeleton(tail);
        if tail.len() > keep {
            let mut cut = tail.len() - keep;
            while !tail.is_char_boundary(cut) {
                cut += 1;
            }
            tail.drain(..cut);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_canaries_and_verbatim_spans_across_chunks() {
        let prompt =
            "You are Zed, the support bot of Acme. Never mention the discount code SPRING.";
        let check = LeakCheck::new(Some("c4n4ry-7".into()), Some((prompt, 20)), true).unwrap();
        assert_eq!(
            check.find("my instructions say: the support bot of Acme. Never"),
            Some(Leak::SystemPrompt)
        );
        assert_eq!(check.find("the support bot"), None);
        assert_eq!(check.find("token c4n4ry-7 here"), Some(Leak::Canary));
        let mut stream = StreamLeakCheck::new(check);
        assert_eq!(stream.push(0, "I am told: Never mention th"), None);
        assert_eq!(stream.push(0, "e discount code"), Some(Leak::SystemPrompt));
        assert_eq!(stream.push(1, "c4n4"), None);
        assert_eq!(stream.push(1, "ry-7"), Some(Leak::Canary));
        assert!(LeakCheck::new(None, Some(("short", 60)), true).is_none());
    }

    #[test]
    fn case_spacing_separators_and_invisible_characters_do_not_hide_a_leak() {
        // F13: only the verbatim forms were caught.
        let prompt = "You are Zed, the support bot of Acme. Never mention the discount code \
                      SPRING, and never promise refunds beyond thirty days of purchase.";
        let check =
            LeakCheck::new(Some("zq-canary-4471".into()), Some((prompt, 40)), true).unwrap();
        for canary in [
            "ZQ-CANARY-4471",
            "zq - canary - 4471",
            "zq-\u{200b}canary-4471",
            "\u{FF5A}\u{FF51}-canary-4471",
        ] {
            assert_eq!(
                check.find(&format!("marker: {canary}.")),
                Some(Leak::Canary),
                "{canary}"
            );
        }
        let shouted = prompt.to_uppercase();
        let spaced = prompt.replace(' ', "  ");
        let invisible = prompt.replace(' ', " \u{200b}");
        let piecewise: String = prompt
            .chars()
            .collect::<Vec<_>>()
            .chunks(50)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" | ");
        for leaked in [shouted, spaced, invisible, piecewise] {
            assert_eq!(check.find(&leaked), Some(Leak::SystemPrompt), "{leaked}");
        }
        assert_eq!(
            check.find("Refunds are possible within thirty days; ask the support team."),
            None
        );
        let mut stream = StreamLeakCheck::new(check);
        assert_eq!(stream.push(0, "the code is ZQ - CAN"), None);
        assert_eq!(stream.push(0, "ARY - 4471"), Some(Leak::Canary));
    }
}
