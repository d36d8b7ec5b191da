//! A word-level n-gram language model with stupid-backoff sampling: the teacher (trained on
//! the committed answers) and the students (trained on what the gateway served them). Tokens
//! are whitespace-separated chunks with the whitespace before them, so samples keep their
//! line breaks, lists and code fences.

use rustc_hash::FxHashMap;

pub const ORDER: usize = 4;
const START: u32 = 0;
const END: u32 = 1;

#[derive(Default)]
pub struct Vocabulary {
    ids: FxHashMap<String, u32>,
    words: Vec<String>,
}

impl Vocabulary {
    pub fn new() -> Vocabulary {
        let mut v = Vocabulary::default();
        v.id("<s>");
        v.id("</s>");
        v
    }

    fn id(&mut self, token: &str) -> u32 {
        if let Some(id) = self.ids.get(token) {
            return *id;
        }
        let id = self.words.len() as u32;
        self.words.push(token.to_owned());
        self.ids.insert(token.to_owned(), id);
        id
    }

    pub fn encode(&mut self, text: &str) -> Vec<u32> {
        tokens(text).iter().map(|t| self.id(t)).collect()
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        let text: String = ids
            .iter()
            .map(|i| self.words[*i as usize].as_str())
            .collect();
        text.trim_start().to_owned()
    }
}

/// Chunks with the whitespace before each.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if in_word {
                out.push(std::mem::take(&mut current));
                in_word = false;
            }
            current.push(c);
        } else {
            in_word = true;
            current.push(c);
        }
    }
    if in_word {
        out.push(current);
    }
    out
}

/// Counts of next tokens after each context of 3, 2, 1 and 0 tokens.
pub struct Model {
    tables: Vec<FxHashMap<Vec<u32>, FxHashMap<u32, u32>>>,
}

impl Model {
    pub fn train<'a>(docs: impl Iterator<Item = &'a [u32]>) -> Model {
        let mut tables: Vec<FxHashMap<Vec<u32>, FxHashMap<u32, u32>>> =
            (0..ORDER).map(|_| FxHashMap::default()).collect();
        for doc in docs {
            let mut seq = vec![START; ORDER - 1];
            seq.extend_from_slice(doc);
            seq.push(END);
            for i in ORDER - 1..seq.len() {
                for (n, table) in tables.iter_mut().enumerate() {
                    let context = seq[i - n..i].to_vec();
                    *table.entry(context).or_default().entry(seq[i]).or_default() += 1;
                }
            }
        }
        Model { tables }
    }

    /// One sample of up to `max` tokens.
    pub fn sample(&self, rng: &mut fastrand::Rng, max: usize) -> Vec<u32> {
        let mut seq = vec![START; ORDER - 1];
        for _ in 0..max {
            let next = self.next(&seq, rng);
            if next == END {
                break;
            }
            seq.push(next);
        }
        seq.split_off(ORDER - 1)
    }

    fn next(&self, seq: &[u32], rng: &mut fastrand::Rng) -> u32 {
        for n in (0..ORDER).rev() {
            let context = &seq[seq.len() - n..];
            if let Some(counts) = self.tables[n].get(context) {
                // Back off sometimes even when seen, as smoothing does: a student generalises
                // beyond its exact training contexts.
                if n > 1 && counts.len() == 1 && rng.f64() < 0.1 {
                    continue;
                }
                let total: u32 = counts.values().sum();
                let mut pick = rng.u32(0..total);
                for (token, count) in counts {
                    if pick < *count {
                        return *token;
                    }
                    pick -= count;
                }
            }
        }
        END
    }
}
