//! A vocabulary (o200k, cl100k) as one compact table, and tiktoken's byte-pair merge over it.
//!
//! `bpe-openai` loads o200k as a set of Aho-Corasick automata and hash maps: fast, but about
//! 65 MiB resident from the first count on, the largest single part of the gateway's memory.
//! Counting a pre-tokenized piece needs much less: the rank of any byte string. Here the
//! tokens (199,998 of o200k) sit in one byte buffer with their offsets and an open-addressing
//! table of ranks (about 4.5 MiB in all), built once from OpenAI's own vocabulary file
//! compiled into the binary (`data/`). Pieces are counted by tiktoken's merge rule (repeatedly merge the
//! adjacent pair whose bytes have the lowest rank, leftmost first), so counts equal
//! tiktoken's; the tests compare them with `bpe-openai` and with `tiktoken-rs`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::Hasher;
use std::io::BufRead;
use std::sync::LazyLock;

/// OpenAI's `o200k_base.tiktoken` and `cl100k_base.tiktoken`, gzipped (see `data/README.md`).
static O200K_TIKTOKEN_GZ: &[u8] = include_bytes!("../../data/o200k_base.tiktoken.gz");
static CL100K_TIKTOKEN_GZ: &[u8] = include_bytes!("../../data/cl100k_base.tiktoken.gz");

/// Pieces up to this long are merged with a scan for the lowest pair (fast for the short
/// pieces text is made of); longer ones with a heap, so a long run of punctuation (one piece)
/// costs O(n log n), not tiktoken's O(n²).
const SCAN_MERGE_MAX: usize = 64;

/// Token byte strings by rank, and a hash table from bytes to rank.
pub(super) struct Vocabulary {
    bytes: Vec<u8>,
    /// `starts[rank]..starts[rank + 1]` is the token's bytes.
    starts: Vec<u32>,
    /// Open addressing, linear probing: rank + 1, or 0 for an empty slot.
    slots: Vec<u32>,
}

pub(super) fn o200k() -> &'static Vocabulary {
    static O200K: LazyLock<Vocabulary> = LazyLock::new(|| load(O200K_TIKTOKEN_GZ, 199_998));
    &O200K
}

pub(super) fn cl100k() -> &'static Vocabulary {
    static CL100K: LazyLock<Vocabulary> = LazyLock::new(|| load(CL100K_TIKTOKEN_GZ, 100_256));
    &CL100K
}

/// Reads a gzipped `.tiktoken` file line by line: the file is never held whole.
fn load(gz: &[u8], expected: usize) -> Vocabulary {
    let lines = std::io::BufReader::new(flate2::read::GzDecoder::new(gz))
        .lines()
        .map(|line| line.expect("the vocabulary compiled into the binary is valid gzip"));
    Vocabulary::from_tiktoken(lines, expected)
}

fn hash(bytes: &[u8]) -> usize {
    let mut hasher = rustc_hash::FxHasher::default();
    hasher.write(bytes);
    hasher.finish() as usize
}

impl Vocabulary {
    /// From the lines of a `.tiktoken` file: `base64 rank`, ranks 0, 1, 2, ... in order;
    /// `expected` tokens size the buffers.
    fn from_tiktoken(lines: impl Iterator<Item = String>, expected: usize) -> Vocabulary {
        use base64::Engine;
        let mut bytes = Vec::with_capacity(expected * 8);
        let mut starts = Vec::with_capacity(expected + 1);
        for (index, line) in lines.filter(|l| !l.is_empty()).enumerate() {
            let (token, rank) = line.split_once(' ').expect("a `token rank` line");
            assert_eq!(rank.parse::<usize>().ok(), Some(index), "ranks in order");
            starts.push(bytes.len() as u32);
            base64::engine::general_purpose::STANDARD
                .decode_vec(token, &mut bytes)
                .expect("base64 token");
        }
        starts.push(bytes.len() as u32);
        bytes.shrink_to_fit();
        let tokens = starts.len() - 1;
        let mut vocabulary = Vocabulary {
            bytes,
            starts,
            slots: vec![0; (tokens * 2).next_power_of_two()],
        };
        let mask = vocabulary.slots.len() - 1;
        for rank in 0..tokens {
            let mut slot = hash(vocabulary.token(rank as u32)) & mask;
            while vocabulary.slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            vocabulary.slots[slot] = rank as u32 + 1;
        }
        vocabulary
    }

    fn token(&self, rank: u32) -> &[u8] {
        let rank = rank as usize;
        &self.bytes[self.starts[rank] as usize..self.starts[rank + 1] as usize]
    }

    /// The rank of the token whose bytes are exactly `bytes`.
    pub(super) fn rank(&self, bytes: &[u8]) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut slot = hash(bytes) & mask;
        loop {
            match self.slots[slot] {
                0 => return None,
                entry if self.token(entry - 1) == bytes => return Some(entry - 1),
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    /// Tokens in one pre-tokenized piece.
    pub(super) fn count(&self, piece: &[u8]) -> usize {
        if piece.len() <= 1 || self.rank(piece).is_some() {
            return piece.len().min(1);
        }
        if piece.len() <= SCAN_MERGE_MAX {
            self.count_by_scan(piece)
        } else {
            self.count_by_heap(piece)
        }
    }

    /// tiktoken's merge: parts as start offsets with the rank of each part joined to the
    /// next; merge the lowest (leftmost on ties) until no adjacent pair is a token.
    fn count_by_scan(&self, piece: &[u8]) -> usize {
        let rank_of = |bytes: &[u8]| self.rank(bytes).unwrap_or(u32::MAX);
        let mut parts: Vec<(usize, u32)> = Vec::with_capacity(piece.len() + 1);
        for i in 0..piece.len() - 1 {
            parts.push((i, rank_of(&piece[i..i + 2])));
        }
        parts.push((piece.len() - 1, u32::MAX));
        parts.push((piece.len(), u32::MAX));
        // The rank of part `i` joined to part `i + 1`, which ends where part `i + 2` begins.
        let joined = |parts: &[(usize, u32)], i: usize| {
            if i + 3 < parts.len() {
                rank_of(&piece[parts[i].0..parts[i + 3].0])
            } else {
                u32::MAX
            }
        };
        loop {
            let (i, rank) = parts[..parts.len() - 1].iter().enumerate().fold(
                (0, u32::MAX),
                |best, (i, &(_, rank))| {
                    if rank < best.1 {
                        (i, rank)
                    } else {
                        best
                    }
                },
            );
            if rank == u32::MAX {
                break;
            }
            if i > 0 {
                parts[i - 1].1 = joined(&parts, i - 1);
            }
            parts[i].1 = joined(&parts, i);
            parts.remove(i + 1);
        }
        parts.len() - 1
    }

    /// The same merges in the same order, with a heap of candidate pairs keyed by (rank,
    /// start): an entry is still valid when the pair starting there is still that token.
    fn count_by_heap(&self, piece: &[u8]) -> usize {
        let n = piece.len();
        // Part `i` (when alive) spans `i..next[i]`; `prev[i]` is the part before it.
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut alive = vec![true; n];
        let mut heap = BinaryHeap::with_capacity(n);
        for i in 0..n - 1 {
            if let Some(rank) = self.rank(&piece[i..i + 2]) {
                heap.push(Reverse((rank, i)));
            }
        }
        let mut parts = n;
        while let Some(Reverse((rank, i))) = heap.pop() {
            if !alive[i] || next[i] >= n {
                continue;
            }
            let second = next[i];
            let end = next[second];
            if self.rank(&piece[i..end]) != Some(rank) {
                continue;
            }
            alive[second] = false;
            next[i] = end;
            if end < n {
                prev[end] = i;
            }
            parts -= 1;
            if i > 0 {
                let before = prev[i];
                if let Some(rank) = self.rank(&piece[before..end]) {
                    heap.push(Reverse((rank, before)));
                }
            }
            if end < n {
                if let Some(rank) = self.rank(&piece[i..next[end]]) {
                    heap.push(Reverse((rank, i)));
                }
            }
        }
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn theirs(piece: &[u8]) -> usize {
        bpe_openai::o200k_base().bpe.count(piece)
    }

    /// The files are OpenAI's (the SHA-256 tiktoken checks) and every token finds its rank.
    #[test]
    fn the_files_are_openais_and_every_token_finds_its_rank() {
        use sha2::Digest;
        use std::io::Read;
        for (gz, vocabulary, tokens, sha256) in [
            (
                O200K_TIKTOKEN_GZ,
                o200k(),
                199_998,
                "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
            ),
            (
                CL100K_TIKTOKEN_GZ,
                cl100k(),
                100_256,
                "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
            ),
        ] {
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(gz)
                .read_to_end(&mut text)
                .unwrap();
            assert_eq!(format!("{:x}", sha2::Sha256::digest(&text)), sha256);
            assert_eq!(vocabulary.starts.len() - 1, tokens);
            for rank in (0..tokens as u32).step_by(7) {
                assert_eq!(vocabulary.rank(vocabulary.token(rank)), Some(rank));
            }
            assert_eq!(vocabulary.rank(b"not a token at all, surely"), None);
        }
    }

    #[test]
    fn long_pieces_merge_like_bpe_openai() {
        for piece in [
            "!".repeat(5000),
            "=-".repeat(700),
            "abcabcabd".repeat(40),
            "\u{1f600}".repeat(100),
        ] {
            assert_eq!(o200k().count(piece.as_bytes()), theirs(piece.as_bytes()));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn cl100k_pieces_count_like_bpe_openai(piece in "\\PC{1,24}|[a-z]{1,90}|[!-/:-@]{1,200}") {
            let bytes = piece.as_bytes();
            prop_assert_eq!(cl100k().count(bytes), bpe_openai::cl100k_base().bpe.count(bytes));
        }

        #[test]
        fn pieces_count_like_bpe_openai(piece in "\\PC{1,24}|[a-z]{1,90}|[!-/:-@]{1,200}|[\\x00-\\x7f]{1,120}") {
            let vocabulary = o200k();
            let bytes = piece.as_bytes();
            prop_assert_eq!(vocabulary.count(bytes), theirs(bytes));
            if bytes.len() > 1 && vocabulary.rank(bytes).is_none() {
                prop_assert_eq!(vocabulary.count_by_scan(bytes), vocabulary.count_by_heap(bytes));
            }
        }
    }
}
