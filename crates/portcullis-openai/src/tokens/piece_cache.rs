//! Token counts of recently seen pre-tokenizer pieces, per thread.
//!
//! Natural text repeats its pieces (" the", " of", ","): a 2 KB English prompt has about 400
//! pieces and few distinct ones. Counting a piece with `bpe` allocates its backtracking state
//! each time; a lookup here is a hash and a comparison. The cache is direct-mapped and holds
//! the piece's bytes, so a hit is exact (no hash-collision guess) and memory stays fixed:
//! 4,096 slots of 32 bytes, 128 KiB per thread that counts.

use std::cell::RefCell;
use std::hash::Hasher;

/// Longest piece kept; longer pieces are rare and are counted every time.
const MAX_PIECE: usize = 23;
const SLOTS: usize = 4096;

#[derive(Clone, Copy)]
struct Slot {
    /// Which vocabulary counted it (the encoding's index + 1; 0 marks an empty slot).
    vocabulary: u8,
    len: u8,
    bytes: [u8; MAX_PIECE],
    count: u32,
}

const EMPTY: Slot = Slot {
    vocabulary: 0,
    len: 0,
    bytes: [0; MAX_PIECE],
    count: 0,
};

thread_local! {
    static CACHE: RefCell<Box<[Slot; SLOTS]>> = RefCell::new(Box::new([EMPTY; SLOTS]));
}

/// The count of `piece` in `vocabulary` (1-based id), from the cache or from `count`.
pub(super) fn count(vocabulary: u8, piece: &[u8], count: impl FnOnce(&[u8]) -> usize) -> usize {
    if piece.len() > MAX_PIECE {
        return count(piece);
    }
    let mut hasher = rustc_hash::FxHasher::default();
    hasher.write(piece);
    hasher.write_u8(vocabulary);
    let index = (hasher.finish() >> 52) as usize % SLOTS;
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let slot = &mut cache[index];
        if slot.vocabulary == vocabulary
            && usize::from(slot.len) == piece.len()
            && &slot.bytes[..piece.len()] == piece
        {
            return slot.count as usize;
        }
        let counted = count(piece);
        slot.vocabulary = vocabulary;
        slot.len = piece.len() as u8;
        slot.bytes[..piece.len()].copy_from_slice(piece);
        slot.count = counted as u32;
        counted
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_returns_what_was_counted_and_vocabularies_do_not_mix() {
        assert_eq!(count(1, b" hello", |_| 1), 1);
        assert_eq!(count(1, b" hello", |_| panic!("cached")), 1);
        assert_eq!(count(2, b" hello", |_| 2), 2);
        let long = [b'x'; 40];
        assert_eq!(count(1, &long, |p| p.len()), 40);
    }
}
