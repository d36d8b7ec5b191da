//! Walks prose a whitespace-separated chunk at a time, tracks what must never be touched,
//! and finds the slots where a family's variant is written. Marking and detection walk the
//! same way, so a slot the marker could choose is exactly a slot the detector scores.
//!
//! Protected, never a slot (and never a word whose choice depends on the key): fenced and
//! indented code, inline code, anything between braces (JSON), quoted text, chunks with a
//! digit or any character other than letters, apostrophes and light punctuation around them
//! (numbers, URLs, e-mail addresses, paths, identifiers), and capitalised words that do not
//! start a sentence (names). A slot next to an indefinite article is skipped when its
//! variants take different articles, so "a"/"an" stays right without touching the article.

use crate::lexicon::{takes_an, Lexicon, Member};
use rustc_hash::FxHashSet;

/// Characters that may open a chunk before its word.
const PREFIX: &[char] = &['(', '*', '_'];
/// Characters that may close a chunk after its word.
const SUFFIX: &[char] = &['.', ',', ';', ':', '!', '?', ')', '*', '_'];

/// What the walker asks at each slot: given the family, the left context and the variant
/// the text has, which variant to write. Detection answers with the observed one.
pub trait Slots {
    fn slot(&mut self, member: Member, context: &str) -> u8;
}

/// A chunk's parts: `prefix word suffix`.
struct Parts<'a> {
    prefix: &'a str,
    word: &'a str,
    suffix: &'a str,
}

fn parts(chunk: &str) -> Option<Parts<'_>> {
    let body_start = chunk.len() - chunk.trim_start_matches(PREFIX).len();
    let body = &chunk[body_start..];
    let trimmed = body.trim_end_matches(SUFFIX);
    let word = trimmed;
    if word.is_empty()
        || !word
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == '\'' || c == '’')
        || !word.starts_with(|c: char| c.is_ascii_alphabetic())
        || !word.ends_with(|c: char| c.is_ascii_alphabetic())
    {
        return None;
    }
    Some(Parts {
        prefix: &chunk[..body_start],
        word,
        suffix: &body[trimmed.len()..],
    })
}

/// The word lowercased with typographic apostrophes made plain; `None` when its case says
/// it is a name (capitalised mid-sentence) or an acronym. Returns whether it was capitalised.
fn normal_word(word: &str, sentence_start: bool) -> Option<(String, bool)> {
    // The pronoun "I" (and "I'm", "I'll") is capitalised everywhere and is no name.
    if word == "I" || word.starts_with("I'") || word.starts_with("I’") {
        if word[1..].chars().any(|c| c.is_ascii_uppercase()) {
            return None;
        }
        return Some((word.to_ascii_lowercase().replace('’', "'"), true));
    }
    let mut chars = word.chars();
    let first = chars.next()?;
    if chars.any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let capital = first.is_ascii_uppercase();
    if capital && !sentence_start {
        return None;
    }
    let mut lower = word.to_ascii_lowercase();
    if lower.contains('’') {
        lower = lower.replace('’', "'");
    }
    Some((lower, capital))
}

/// The first word of a possible two-word variant, held until the next chunk says.
#[derive(Debug)]
struct Held {
    space: String,
    chunk: String,
    prefix_len: usize,
    lower: String,
    capital: bool,
    context: String,
}

/// A one-word variant whose family looks ahead, waiting for the next word.
#[derive(Debug)]
struct Pending {
    space: String,
    chunk: String,
    prefix_len: usize,
    suffix: String,
    lower: String,
    member: Member,
    capital: bool,
    context: String,
}

/// Protection and context state between chunks.
#[derive(Debug)]
pub struct Walker {
    lexicon: &'static Lexicon,
    /// Every prefix of every variant's words, to let a partial chunk that cannot become a
    /// slot out before it is complete.
    prefixes: &'static FxHashSet<String>,
    fence: bool,
    inline_code: bool,
    quote: bool,
    braces: u32,
    /// The current line is indented code.
    code_line: bool,
    started: bool,
    sentence_start: bool,
    /// The left context of the next slot: the previous word, or a marker.
    context: String,
    held: Option<Held>,
    pending: Option<Pending>,
    /// Writes contractions with ’ once the text has used it.
    curly: bool,
}

fn prefixes(lexicon: &'static Lexicon) -> &'static FxHashSet<String> {
    static PREFIXES: std::sync::OnceLock<FxHashSet<String>> = std::sync::OnceLock::new();
    PREFIXES.get_or_init(|| {
        let mut set = FxHashSet::default();
        for f in lexicon.families() {
            for v in &f.variants {
                for word in v.text().split(' ') {
                    for (i, _) in word.char_indices().skip(1) {
                        set.insert(word[..i].to_owned());
                    }
                    set.insert(word.to_owned());
                }
            }
        }
        set
    })
}

impl Walker {
    pub fn new(lexicon: &'static Lexicon) -> Walker {
        Walker {
            lexicon,
            prefixes: prefixes(lexicon),
            fence: false,
            inline_code: false,
            quote: false,
            braces: 0,
            code_line: false,
            started: false,
            sentence_start: true,
            context: "<s>".to_owned(),
            held: None,
            pending: None,
            curly: false,
        }
    }

    /// Whether a chunk that begins with `partial` (after `space`) may still be edited: if
    /// not, it can be written out before it is complete (and a held word is released).
    pub fn may_edit(&self, space: &str, partial: &str) -> bool {
        if self.fence || self.inline_code || self.quote || self.braces > 0 {
            return false;
        }
        if self.code_line && !space.contains('\n') {
            return false;
        }
        let body = partial.trim_start_matches(PREFIX);
        let word_end = body
            .find(|c: char| !(c.is_ascii_alphabetic() || c == '\'' || c == '’'))
            .unwrap_or(body.len());
        let (word, rest) = body.split_at(word_end);
        if !rest.chars().all(|c| SUFFIX.contains(&c)) {
            return false;
        }
        if word.is_empty() {
            return true;
        }
        // Lowercased on the stack: this runs for every character of a stream.
        let mut buffer = [0u8; 32];
        let mut len = 0;
        for c in word.chars() {
            let byte = match c {
                '’' => b'\'',
                c => c.to_ascii_lowercase() as u8,
            };
            let Some(slot) = buffer.get_mut(len) else {
                return false; // longer than any variant's word
            };
            *slot = byte;
            len += 1;
        }
        let lower = std::str::from_utf8(&buffer[..len]).unwrap_or("");
        if let Some(p) = &self.pending {
            let rules = &self.lexicon.family(p.member.family).rules;
            if rest.is_empty() && rules.not_before.iter().any(|w| w.starts_with(lower)) {
                return true;
            }
        }
        self.prefixes.contains(lower)
    }

    /// Whether a word is held waiting for the next chunk.
    pub fn holding(&self) -> bool {
        self.held.is_some() || self.pending.is_some()
    }

    /// The next chunk (after `space`) cannot be edited and goes out now: what is held is
    /// decided first, a held first word as written, a waiting slot as eligible (the next
    /// word is none of those its family excludes, or [`Walker::may_edit`] would have waited).
    pub fn release(&mut self, space: &str, slots: &mut dyn Slots, out: &mut String) {
        self.release_held(out);
        self.resolve_pending(Some((space, None)), slots, out);
    }

    /// A held first word goes out as written: what followed did not complete a variant.
    fn release_held(&mut self, out: &mut String) {
        if let Some(held) = self.held.take() {
            out.push_str(&held.space);
            out.push_str(&held.chunk);
            self.after_plain_word(&held.lower, "");
        }
    }

    /// Decides a waiting slot given what follows it: `None` at the end of the text, else the
    /// whitespace before the next chunk and that chunk's word, if it has one.
    #[allow(clippy::type_complexity)]
    fn resolve_pending(
        &mut self,
        next: Option<(&str, Option<&str>)>,
        slots: &mut dyn Slots,
        out: &mut String,
    ) {
        let Some(p) = self.pending.take() else {
            return;
        };
        let rules = &self.lexicon.family(p.member.family).rules;
        let eligible = match next {
            None => true,
            Some((_, word)) => !word.is_some_and(|w| rules.not_before.iter().any(|n| n == w)),
        };
        out.push_str(&p.space);
        if eligible {
            out.push_str(&p.chunk[..p.prefix_len]);
            self.context = p.context;
            self.write_slot(p.member, p.capital, &p.suffix, slots, out);
        } else {
            out.push_str(&p.chunk);
            self.after_plain_word(&p.lower, &p.suffix);
        }
    }

    /// Whether `member` may be a slot here: its article, and its family's rules.
    fn eligible(&self, member: Member, context: &str, suffix: &str) -> bool {
        let rules = &self.lexicon.family(member.family).rules;
        let punctuation_allows = suffix.is_empty() || !rules.no_suffix;
        punctuation_allows
            && !rules.not_after.iter().any(|w| w == context)
            && self.article_allows(member, context)
    }

    /// One complete chunk and the whitespace before it (`unwritten`: the part of that
    /// whitespace not yet out). When `written` is true the chunk already went out as it was
    /// (see [`Walker::may_edit`]): only the state advances.
    pub fn chunk(
        &mut self,
        space: &str,
        unwritten: &str,
        chunk: &str,
        written: bool,
        slots: &mut dyn Slots,
        out: &mut String,
    ) {
        if self.pending.is_some() {
            let word = parts(chunk).map(|p| p.word.to_ascii_lowercase());
            self.resolve_pending(Some((space, word.as_deref())), slots, out);
        }
        if let Some(held) = self.held.take() {
            if !written && space == " " {
                if let Some(p) = parts(chunk).filter(|p| p.prefix.is_empty()) {
                    let second = p.word.to_ascii_lowercase();
                    if p.word.chars().all(|c| c.is_ascii_lowercase()) {
                        if let Some(member) = self.lexicon.two(&held.lower, &second) {
                            if self.eligible(member, &held.context, p.suffix) {
                                out.push_str(&held.space);
                                out.push_str(&held.chunk[..held.prefix_len]);
                                self.context = held.context.clone();
                                self.write_slot(member, held.capital, p.suffix, slots, out);
                                return;
                            }
                        }
                    }
                }
            }
            self.held = Some(held);
            self.release_held(out);
        }
        let line_start = !self.started || space.contains('\n');
        self.started = true;
        if line_start {
            self.code_line = false;
            let indent = space.rsplit('\n').next().unwrap_or("");
            let columns: usize = indent.chars().map(|c| if c == '\t' { 4 } else { 1 }).sum();
            let fence = chunk.starts_with("```") || chunk.starts_with("~~~");
            if fence {
                self.fence = !self.fence;
                return self.protected(unwritten, chunk, written, out);
            }
            if columns >= 4 && !self.fence && !is_list_marker(chunk) {
                self.code_line = true;
            }
            if !self.fence && !self.quote {
                self.sentence_start = true;
            }
        }
        if self.fence || self.code_line {
            return self.protected(unwritten, chunk, written, out);
        }
        if self.braces > 0 || chunk.contains('{') {
            for c in chunk.chars() {
                match c {
                    '{' => self.braces += 1,
                    '}' => self.braces = self.braces.saturating_sub(1),
                    _ => {}
                }
            }
            return self.protected(unwritten, chunk, written, out);
        }
        if chunk.contains('`') {
            if chunk.matches('`').count() % 2 == 1 {
                self.inline_code = !self.inline_code;
            }
            return self.protected(unwritten, chunk, written, out);
        }
        if self.inline_code {
            return self.protected(unwritten, chunk, written, out);
        }
        if self.quote {
            if chunk.contains('"') || chunk.contains('”') {
                self.quote = false;
            }
            return self.protected(unwritten, chunk, written, out);
        }
        if chunk.contains('"') || chunk.contains('“') {
            let straight = chunk.matches('"').count();
            let opened = chunk.contains('“') && !chunk.contains('”');
            self.quote = straight % 2 == 1 || opened;
            return self.protected(unwritten, chunk, written, out);
        }
        if is_list_marker(chunk) && line_start {
            out_if(written, out, unwritten, chunk);
            self.set_context("<s>");
            return;
        }
        let Some(p) = parts(chunk) else {
            return self.protected(unwritten, chunk, written, out);
        };
        let Some((lower, capital)) = normal_word(p.word, self.sentence_start) else {
            return self.protected(unwritten, chunk, written, out);
        };
        self.curly |= p.word.contains('’');
        if !written {
            if p.suffix.is_empty() && self.lexicon.starts_two(&lower) {
                self.held = Some(Held {
                    space: unwritten.to_owned(),
                    chunk: chunk.to_owned(),
                    prefix_len: p.prefix.len(),
                    lower,
                    capital,
                    context: self.context.clone(),
                });
                return;
            }
            if let Some(member) = self.lexicon.single(&lower) {
                if self.eligible(member, &self.context, p.suffix) {
                    if self.lexicon.family(member.family).rules.looks_ahead() {
                        self.pending = Some(Pending {
                            space: unwritten.to_owned(),
                            chunk: chunk.to_owned(),
                            prefix_len: p.prefix.len(),
                            suffix: p.suffix.to_owned(),
                            lower,
                            member,
                            capital,
                            context: self.context.clone(),
                        });
                        return;
                    }
                    out.push_str(unwritten);
                    out.push_str(p.prefix);
                    self.write_slot(member, capital, p.suffix, slots, out);
                    return;
                }
            }
        }
        out_if(written, out, unwritten, chunk);
        self.after_plain_word(&lower, p.suffix);
    }

    /// The text ended: a held first word goes out as it was, a waiting slot is decided.
    pub fn finish(&mut self, slots: &mut dyn Slots, out: &mut String) {
        self.release_held(out);
        self.resolve_pending(None, slots, out);
    }

    fn protected(&mut self, space: &str, chunk: &str, written: bool, out: &mut String) {
        out_if(written, out, space, chunk);
        self.set_context("<x>");
        self.sentence_start = ends_sentence(chunk);
    }

    /// The next slot's left context (the buffer is reused: this runs for every word).
    fn set_context(&mut self, context: &str) {
        self.context.clear();
        self.context.push_str(context);
    }

    fn after_plain_word(&mut self, lower: &str, suffix: &str) {
        self.set_context(lower);
        self.sentence_start = ends_sentence(suffix);
    }

    /// A variant's article must not change: after "a"/"an", both variants must take it.
    fn article_allows(&self, member: Member, context: &str) -> bool {
        if context != "a" && context != "an" {
            return true;
        }
        let family = self.lexicon.family(member.family);
        takes_an(family.variants[0].first()) == takes_an(family.variants[1].first())
    }

    fn write_slot(
        &mut self,
        member: Member,
        capital: bool,
        suffix: &str,
        slots: &mut dyn Slots,
        out: &mut String,
    ) {
        let chosen = slots.slot(member, &self.context);
        let family = self.lexicon.family(member.family);
        let mut text = family.variants[usize::from(chosen & 1)].text();
        if self.curly {
            text = text.replace('\'', "’");
        }
        if capital || text == "i" || text.starts_with("i ") || text.starts_with("i'") {
            let mut c = text.chars();
            if let Some(first) = c.next() {
                text = first.to_ascii_uppercase().to_string() + c.as_str();
            }
        }
        out.push_str(&text);
        out.push_str(suffix);
        // The next slot's context names the family, not the variant: one choice does not
        // move the next, and an attacker's substitution does not either.
        self.context = format!("={}", member.family);
        self.sentence_start = ends_sentence(suffix);
    }
}

/// Walks a whole text, asking `slots` at each slot, and returns the text as written. Used by
/// detection (which keeps every variant) and by anyone studying the watermark's families
/// (the evaluation's attacker knows them: the lexicon is not secret, the key is).
pub fn rewrite(text: &str, slots: &mut dyn Slots) -> String {
    let mut walker = Walker::new(Lexicon::builtin());
    let mut out = String::with_capacity(text.len());
    let mut space = String::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if c.is_whitespace() {
            if !chunk.is_empty() {
                walker.chunk(&space, &space, &chunk, false, slots, &mut out);
                space.clear();
                chunk.clear();
            }
            space.push(c);
        } else {
            chunk.push(c);
        }
    }
    if !chunk.is_empty() {
        walker.chunk(&space, &space, &chunk, false, slots, &mut out);
        space.clear();
    }
    walker.finish(slots, &mut out);
    out.push_str(&space);
    out
}

fn out_if(written: bool, out: &mut String, space: &str, chunk: &str) {
    if !written {
        out.push_str(space);
        out.push_str(chunk);
    }
}

fn ends_sentence(tail: &str) -> bool {
    tail.ends_with(['.', '!', '?', ':'])
}

fn is_list_marker(chunk: &str) -> bool {
    matches!(chunk, "-" | "*" | "+" | ">" | "#" | "##" | "###" | "####")
        || (chunk.ends_with(['.', ')'])
            && chunk.len() <= 4
            && chunk[..chunk.len() - 1].chars().all(|c| c.is_ascii_digit()))
}
