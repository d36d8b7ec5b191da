//! Writing the watermark: at each slot the variant is chosen by the keys and the left
//! context, in whole texts and in streams alike (a stream holds back at most the word being
//! written, and a possible first word of a two-word variant, never more; text is never
//! reordered or dropped, and the stream's result equals the whole text's).
//!
//! The choice. HMAC(global key, family, context) assigns the slot to the global key or to
//! the tenant's key, and the assigned key's HMAC gives a preferred variant (a fair coin) and
//! a uniform number `u`. Variant A is written with chance `a` where A is preferred and `b`
//! where B is, chosen so that `a·π + b·(1 − π) = q`: `q` is the upstream's own share of A
//! and `π` the share of slots whose preferred variant is A (both counted as traffic passes,
//! see [`crate::shares`]). The output keeps the upstream's word frequencies (frequency
//! analysis sees nothing), while text that never saw the key agrees with the preferred
//! variant at exactly half of the slots, whatever its own habits: the detector's null
//! hypothesis is a fair coin. Marked text agrees at about `1/2 + min(q, 1 - q)`.

use super::walk::{rewrite, Slots, Walker};
use crate::keys::{Key, MarkKeys};
use crate::lexicon::{Lexicon, Member};
use crate::shares::Shares;
use std::sync::Arc;

/// What one key says of one slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlotDraw {
    /// The preferred variant.
    pub preferred: u8,
    /// Uniform in [0, 1).
    pub u: f64,
    /// (Global key only) the slot belongs to the tenant's key.
    pub tenant_slot: bool,
}

/// The key's draw for a slot.
pub fn draw(key: &Key, family: &str, context: &str) -> SlotDraw {
    let h = key.hash(&[b"slot", family.as_bytes(), context.as_bytes()]);
    let mut u = [0u8; 8];
    u.copy_from_slice(&h[8..16]);
    SlotDraw {
        preferred: h[0] & 1,
        u: (u64::from_le_bytes(u) >> 11) as f64 / (1u64 << 53) as f64,
        tenant_slot: h[1] & 1 == 1,
    }
}

/// Chooses variants with a response's keys and the upstream's shares, and counts what it did.
#[derive(Debug)]
struct Chooser {
    keys: MarkKeys,
    shares: Arc<Shares>,
    stats: MarkStats,
}

impl Slots for Chooser {
    fn slot(&mut self, member: Member, context: &str) -> u8 {
        let family = Lexicon::builtin().family(member.family);
        let global = draw(&self.keys.global, &family.name, context);
        let d = if global.tenant_slot {
            draw(&self.keys.tenant, &family.name, context)
        } else {
            global
        };
        self.shares.observe(member, d.preferred);
        let q = self.shares.share_a(member.family);
        let pi = self.shares.preferred_share_a(member.family);
        // The chance of writing A where A is preferred (a) and where B is (b): as far apart
        // as can be while a·π + b·(1 − π) = q, so the output keeps the upstream's share q
        // whatever share π of the slots the key happens to prefer A at.
        let (a, b) = if q <= pi {
            (q / pi, 0.0)
        } else {
            (1.0, (q - pi) / (1.0 - pi))
        };
        let chance_a = if d.preferred == 0 { a } else { b };
        // A fresh draw per occurrence (the context's keyed number moved along a
        // low-discrepancy sequence by the slot's index), so that a frequent context does not
        // write one variant every time and shift the family's share.
        let index = self.stats.slots as f64;
        let u = (d.u + index * 0.618_033_988_749_894_9).fract();
        let chosen = u8::from(u >= chance_a);
        self.stats.slots += 1;
        if chosen != member.variant {
            self.stats.changed += 1;
        }
        chosen
    }
}

/// What marking did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MarkStats {
    pub slots: u64,
    /// Slots whose variant was changed.
    pub changed: u64,
}

/// Marks a whole text with the lexicon's estimates of each variant's share.
pub fn mark(text: &str, keys: &MarkKeys) -> (String, MarkStats) {
    mark_with(text, keys, fixed_shares())
}

/// Marks a whole text with `shares` (which learn from it if they are learning shares). A
/// chunk at a time: nothing needs to go out early (the stream marker's result is the same).
pub fn mark_with(text: &str, keys: &MarkKeys, shares: Arc<Shares>) -> (String, MarkStats) {
    let mut chooser = Chooser {
        keys: keys.clone(),
        shares,
        stats: MarkStats::default(),
    };
    let out = rewrite(text, &mut chooser);
    (out, chooser.stats)
}

/// Marks a text that arrives in pieces.
#[derive(Debug)]
pub struct TextMarker {
    chooser: Chooser,
    walker: Walker,
    /// Whitespace before the current chunk, and how much of it is already out.
    space: String,
    space_written: usize,
    /// The current chunk, not complete yet.
    chunk: String,
    /// The current chunk is already out (it cannot be a slot).
    written: bool,
}

impl TextMarker {
    /// A marker with the lexicon's estimates of each variant's share.
    pub fn new(keys: MarkKeys) -> TextMarker {
        TextMarker::with_shares(keys, fixed_shares())
    }

    /// A marker reading (and, if they learn, updating) `shares`.
    pub fn with_shares(keys: MarkKeys, shares: Arc<Shares>) -> TextMarker {
        TextMarker {
            chooser: Chooser {
                keys,
                shares,
                stats: MarkStats::default(),
            },
            walker: Walker::new(Lexicon::builtin()),
            space: String::new(),
            space_written: 0,
            chunk: String::new(),
            written: false,
        }
    }

    pub fn stats(&self) -> MarkStats {
        self.chooser.stats
    }

    /// The next piece; returns what can go out now.
    pub fn push(&mut self, piece: &str) -> String {
        let mut out = String::with_capacity(piece.len() + 16);
        for c in piece.chars() {
            if c.is_whitespace() {
                if !self.chunk.is_empty() {
                    self.complete(&mut out);
                }
                self.space.push(c);
                // Nothing held: whitespace cannot change and goes out now. Behind a held
                // word it waits, since it decides whether a two-word variant follows.
                if !self.walker.holding() {
                    out.push(c);
                    self.space_written = self.space.len();
                }
                continue;
            }
            self.chunk.push(c);
            if self.written {
                out.push(c);
            } else if !self.walker.may_edit(&self.space, &self.chunk) {
                self.walker
                    .release(&self.space, &mut self.chooser, &mut out);
                out.push_str(&self.space[self.space_written..]);
                self.space_written = self.space.len();
                out.push_str(&self.chunk);
                self.written = true;
            }
        }
        out
    }

    /// The text ended: everything held goes out.
    pub fn finish(&mut self) -> String {
        let mut out = String::new();
        if !self.chunk.is_empty() {
            self.complete(&mut out);
        }
        self.walker.finish(&mut self.chooser, &mut out);
        out.push_str(&self.space[self.space_written..]);
        self.space.clear();
        self.space_written = 0;
        out
    }

    fn complete(&mut self, out: &mut String) {
        self.walker.chunk(
            &self.space,
            &self.space[self.space_written..],
            &self.chunk,
            self.written,
            &mut self.chooser,
            out,
        );
        self.space.clear();
        self.space_written = 0;
        self.chunk.clear();
        self.written = false;
    }
}

fn fixed_shares() -> Arc<Shares> {
    static FIXED: std::sync::OnceLock<Arc<Shares>> = std::sync::OnceLock::new();
    FIXED.get_or_init(|| Arc::new(Shares::fixed())).clone()
}
