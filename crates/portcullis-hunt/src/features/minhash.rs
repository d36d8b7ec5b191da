//! MinHash of a prompt's word 3-shingles, banded for locality-sensitive lookup: two prompts
//! whose shingle sets overlap much (the same ask lightly reworded, a template with a few
//! words changed) share a band with high probability, unrelated prompts almost never.
//!
//! 16 rows in 4 bands of 4: at a Jaccard similarity of 0.8 two prompts share some band with
//! probability 1 - (1 - 0.8^4)^4 = 0.88; at 0.5, 0.23; at 0.2, 0.006. Only the head of a
//! long prompt is read (the first 1 KiB), like the other text features.

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

pub const ROWS: usize = 16;
pub const BANDS: usize = 4;
const ROWS_PER_BAND: usize = ROWS / BANDS;
/// Prompts with fewer words than this carry no sketch: short asks are alike by nature.
pub const MIN_WORDS: u32 = 8;
const HEAD_BYTES: usize = 1024;

/// Multipliers of the row hash functions (odd 64-bit constants: `h * a` is a bijection).
const MULTIPLIERS: [u64; ROWS] = [
    0x9E37_79B9_7F4A_7C15,
    0xC2B2_AE3D_27D4_EB4F,
    0x1656_67B1_9E37_79F9,
    0x85EB_CA77_C2B2_AE63,
    0x27D4_EB2F_1656_67C5,
    0xD6E8_FEB8_6659_FD93,
    0xA076_1D64_78BD_642F,
    0xE703_7ED1_A0B4_28DB,
    0x8EBC_6AF0_9C88_C6E3,
    0x5899_65CC_7537_4CC3,
    0x1D8E_4E27_C47D_124F,
    0xFF51_AFD7_ED55_8CCD,
    0xC4CE_B9FE_1A85_EC53,
    0x94D0_49BB_1331_11EB,
    0xBF58_476D_1CE4_E5B9,
    0x2545_F491_4F6C_DD1D,
];

/// A prompt's MinHash signature; all rows `u32::MAX` when it has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinHash {
    pub rows: [u32; ROWS],
}

impl Default for MinHash {
    fn default() -> Self {
        MinHash {
            rows: [u32::MAX; ROWS],
        }
    }
}

impl MinHash {
    /// Whether the prompt was long enough to be sketched.
    pub fn is_some(&self) -> bool {
        self.rows[0] != u32::MAX || self.rows[1] != u32::MAX
    }

    /// One key per band (the band's index mixed in, so equal rows in different bands differ).
    pub fn bands(&self) -> [u64; BANDS] {
        let mut out = [0u64; BANDS];
        for (b, key) in out.iter_mut().enumerate() {
            let mut bytes = [0u8; ROWS_PER_BAND * 4 + 1];
            for (i, row) in self.rows[b * ROWS_PER_BAND..(b + 1) * ROWS_PER_BAND]
                .iter()
                .enumerate()
            {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&row.to_le_bytes());
            }
            bytes[ROWS_PER_BAND * 4] = b as u8;
            *key = xxh3_64(&bytes);
        }
        out
    }

    /// The share of equal rows: an estimate of the two prompts' shingle Jaccard similarity.
    pub fn similarity(&self, other: &MinHash) -> f64 {
        let same = self
            .rows
            .iter()
            .zip(&other.rows)
            .filter(|(a, b)| a == b)
            .count();
        same as f64 / ROWS as f64
    }
}

/// The signature of `text`'s word 3-shingles (case-folded).
pub fn minhash(text: &str) -> MinHash {
    let mut end = text.len().min(HEAD_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut sig = MinHash::default();
    let (mut w1, mut w2) = (0u64, 0u64);
    let mut words = 0u32;
    for w in text[..end]
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let h = if w.bytes().all(|b| !b.is_ascii_uppercase()) {
            xxh3_64(w.as_bytes())
        } else {
            xxh3_64(w.to_lowercase().as_bytes())
        };
        words += 1;
        if words >= 3 {
            let shingle = h ^ w1.rotate_left(21) ^ w2.rotate_left(42);
            for (row, a) in sig.rows.iter_mut().zip(MULTIPLIERS) {
                let v = (shingle.wrapping_mul(a) >> 32) as u32;
                if v < *row {
                    *row = v;
                }
            }
        }
        w2 = w1;
        w1 = h;
    }
    if words < MIN_WORDS {
        return MinHash::default();
    }
    sig
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORDS: &[&str] = &[
        "explain",
        "how",
        "the",
        "immune",
        "system",
        "learns",
        "virus",
        "after",
        "vaccination",
        "why",
        "boosters",
        "needed",
        "tides",
        "moon",
        "ocean",
        "gravity",
        "compiler",
        "loop",
        "bond",
        "price",
        "interest",
        "rate",
        "photosynthesis",
        "energy",
        "leaf",
        "transistor",
        "switch",
        "current",
        "ice",
        "water",
        "density",
        "poem",
        "autumn",
        "park",
        "children",
        "school",
        "market",
        "stock",
        "engine",
        "fuel",
        "river",
        "mountain",
        "planet",
        "orbit",
    ];

    /// A prompt of `len` words drawn by `seed`.
    fn prompt(seed: u64, len: usize) -> Vec<&'static str> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                WORDS[(x % WORDS.len() as u64) as usize]
            })
            .collect()
    }

    fn share_a_band(a: &MinHash, b: &MinHash) -> bool {
        a.bands().iter().any(|x| b.bands().contains(x))
    }

    #[test]
    fn near_duplicates_share_a_band_and_unrelated_prompts_almost_never() {
        let (mut near, mut unrelated) = (0, 0);
        let trials = 300;
        for seed in 0..trials {
            let words = prompt(seed, 30);
            let mut edited = words.clone();
            edited[(seed as usize * 7) % 30] = "reworded";
            let a = minhash(&words.join(" "));
            let b = minhash(&edited.join(" "));
            let c = minhash(&prompt(seed + 10_000, 30).join(" "));
            assert!(a.is_some() && b.is_some() && c.is_some());
            near += usize::from(share_a_band(&a, &b));
            unrelated += usize::from(share_a_band(&a, &c));
        }
        // One word of 30 changed: Jaccard about 0.82, a shared band with probability ~0.9.
        assert!(
            near >= trials as usize * 8 / 10,
            "near duplicates: {near}/{trials}"
        );
        assert!(
            unrelated <= trials as usize / 50,
            "unrelated: {unrelated}/{trials}"
        );
    }

    #[test]
    fn case_does_not_matter_and_short_prompts_carry_no_sketch() {
        let text = "Explain step by step how the immune system learns to recognise a virus";
        assert_eq!(minhash(text), minhash(&text.to_uppercase()));
        assert!(minhash(text).similarity(&minhash(text)) == 1.0);
        assert!(!minhash("too short to sketch").is_some());
    }
}
