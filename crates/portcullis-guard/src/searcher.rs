//! Regexes with search scratch space per thread, not per call.
//!
//! The `regex` crate keeps each regex's search cache in a pool: the first thread to use the
//! regex owns a lock-free slot, every other thread takes a lock and a stack entry per
//! search. The gateway compiles its patterns during warm-up on a blocking thread, so every
//! request on a worker thread took the slow path, for each pattern it ran (about 2% of a
//! request's CPU in `scripts/bench/profile.sh`). A [`Searcher`] wraps the same
//! `regex-automata` engine the `regex` crate uses, configured as the `regex` crate configures
//! it, and keeps one cache per thread per searcher: no lock, no pool.

use regex_automata::meta::{self, Cache, Regex};
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, PatternSet};
use std::cell::RefCell;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's cache for each searcher, by the searcher's id.
    static CACHES: RefCell<Vec<Option<Cache>>> = const { RefCell::new(Vec::new()) };
}

/// A compiled pattern (or set of patterns) with per-thread caches.
pub struct Searcher {
    regex: Regex,
    id: usize,
}

impl std::fmt::Debug for Searcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Searcher").field("id", &self.id).finish()
    }
}

/// The `regex` crate's defaults: a 10 MiB NFA limit and a 2 MiB lazy-DFA cache.
fn base_config() -> meta::Config {
    meta::Config::new()
        .nfa_size_limit(Some(10 * (1 << 20)))
        .hybrid_cache_capacity(2 * (1 << 20))
}

impl Searcher {
    fn build(
        patterns: &[String],
        config: meta::Config,
        syntax: syntax::Config,
    ) -> Result<Searcher, Box<meta::BuildError>> {
        let regex = meta::Builder::new()
            .configure(config)
            .syntax(syntax)
            .build_many(patterns)
            .map_err(Box::new)?;
        Ok(Searcher {
            regex,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// One pattern over UTF-8 text, leftmost-first, as `regex::Regex`.
    pub fn text(pattern: &str) -> Result<Searcher, Box<meta::BuildError>> {
        Self::build(
            &[pattern.to_owned()],
            base_config()
                .match_kind(MatchKind::LeftmostFirst)
                .utf8_empty(true),
            syntax::Config::new().utf8(true),
        )
    }

    /// One pattern over bytes, as `regex::bytes::Regex`.
    pub fn bytes(pattern: &str) -> Result<Searcher, Box<meta::BuildError>> {
        Self::build(
            &[pattern.to_owned()],
            base_config()
                .match_kind(MatchKind::LeftmostFirst)
                .utf8_empty(false),
            syntax::Config::new().utf8(false),
        )
    }

    /// Patterns over UTF-8 text, every one that matches reported, as `regex::RegexSet`.
    pub fn text_set(patterns: &[String]) -> Result<Searcher, Box<meta::BuildError>> {
        Self::build(
            patterns,
            base_config()
                .match_kind(MatchKind::All)
                .utf8_empty(true)
                .which_captures(regex_automata::nfa::thompson::WhichCaptures::None),
            syntax::Config::new().utf8(true),
        )
    }

    /// Patterns over bytes, as `regex::bytes::RegexSet`.
    pub fn bytes_set(patterns: &[String]) -> Result<Searcher, Box<meta::BuildError>> {
        Self::build(
            patterns,
            base_config()
                .match_kind(MatchKind::All)
                .utf8_empty(false)
                .which_captures(regex_automata::nfa::thompson::WhichCaptures::None),
            syntax::Config::new().utf8(false),
        )
    }

    fn with_cache<R>(&self, search: impl FnOnce(&mut Cache) -> R) -> R {
        CACHES.with(|caches| {
            let mut caches = caches.borrow_mut();
            if caches.len() <= self.id {
                caches.resize_with(self.id + 1, || None);
            }
            let cache = caches[self.id].get_or_insert_with(|| self.regex.create_cache());
            search(cache)
        })
    }

    /// The leftmost-first match starting at or after `start`, with the text before `start`
    /// still seen by look-around (as `regex::Regex::find_at`).
    pub fn find_at(&self, haystack: &str, start: usize) -> Option<Range<usize>> {
        let input = Input::new(haystack).span(start..haystack.len());
        self.with_cache(|cache| self.regex.search_with(cache, &input))
            .map(|m| m.range())
    }

    /// Whether any pattern matches anywhere.
    pub fn is_match(&self, haystack: &[u8]) -> bool {
        let input = Input::new(haystack).earliest(true);
        self.with_cache(|cache| self.regex.search_with(cache, &input).is_some())
    }

    /// The indexes of the patterns that match anywhere, in pattern order (a set's
    /// `matches`).
    pub fn matching_patterns(&self, haystack: &[u8]) -> Vec<usize> {
        let mut set = PatternSet::new(self.regex.pattern_len());
        let input = Input::new(haystack);
        self.with_cache(|cache| {
            self.regex
                .which_overlapping_matches_with(cache, &input, &mut set)
        });
        set.iter().map(|p| p.as_usize()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_as_the_regex_crate_does() {
        let text = Searcher::text(r"\bfoo[0-9]+").unwrap();
        let theirs = regex::Regex::new(r"\bfoo[0-9]+").unwrap();
        let haystack = "xfoo1 foo22 foo";
        for start in 0..haystack.len() {
            assert_eq!(
                text.find_at(haystack, start),
                theirs.find_at(haystack, start).map(|m| m.range())
            );
        }
        let patterns: Vec<String> = ["a+", "b", "(?-u)\\xff", "z"]
            .iter()
            .map(|p| p.to_string())
            .collect();
        let set = Searcher::bytes_set(&patterns).unwrap();
        let theirs = regex::bytes::RegexSet::new(&patterns).unwrap();
        for haystack in [&b"aab"[..], b"\xffz", b"", b"qq"] {
            assert_eq!(
                set.matching_patterns(haystack),
                theirs.matches(haystack).iter().collect::<Vec<_>>()
            );
        }
        assert!(Searcher::bytes("(?i-u)rot-?13")
            .unwrap()
            .is_match(b"use ROT13"));
    }

    #[test]
    fn every_thread_gets_its_own_cache() {
        let searcher = std::sync::Arc::new(Searcher::text("needle").unwrap());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let searcher = searcher.clone();
                std::thread::spawn(move || searcher.find_at("hay needle", 0))
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), Some(4..10));
        }
    }
}
