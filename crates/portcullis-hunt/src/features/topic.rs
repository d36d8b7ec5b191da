//! A coarse capability taxonomy: which area a prompt asks about.
//!
//! Distillers sweep a curriculum (math, code, science, law, languages...) evenly and at
//! volume; a product's traffic sits in a few areas. Keyword votes over the prompt's head
//! are enough to tell an even sweep from a focus, which is all the detector needs; a prompt
//! with no vote is `General`.

use rustc_hash::FxHashMap;
use std::sync::OnceLock;

/// Number of areas, `General` included.
pub const TOPICS: usize = 16;

/// Area names, by index.
pub const TOPIC_NAMES: [&str; TOPICS] = [
    "general",
    "math",
    "code",
    "science",
    "medicine",
    "law",
    "finance",
    "history",
    "writing",
    "translation",
    "logic",
    "business",
    "data",
    "agents",
    "geography",
    "arts",
];

const KEYWORDS: [&[&str]; TOPICS] = [
    &[],
    &[
        "equation",
        "integral",
        "derivative",
        "theorem",
        "prove",
        "proof",
        "algebra",
        "calculus",
        "probability",
        "matrix",
        "polynomial",
        "geometry",
        "triangle",
        "sum",
        "prime",
        "fraction",
        "solve",
        "arithmetic",
        "factor",
        "logarithm",
        "vector",
        "eigenvalue",
        "statistics",
        "combinatorics",
        "inequality",
    ],
    &[
        "function",
        "python",
        "rust",
        "javascript",
        "java",
        "compile",
        "compiler",
        "bug",
        "debug",
        "code",
        "algorithm",
        "api",
        "class",
        "recursion",
        "array",
        "sql",
        "regex",
        "typescript",
        "golang",
        "refactor",
        "unit",
        "test",
        "stack",
        "pointer",
        "thread",
        "async",
        "library",
        "program",
        "implement",
        "linked",
    ],
    &[
        "photosynthesis",
        "atom",
        "molecule",
        "physics",
        "chemistry",
        "biology",
        "cell",
        "energy",
        "quantum",
        "gravity",
        "evolution",
        "protein",
        "dna",
        "electron",
        "reaction",
        "enzyme",
        "thermodynamics",
        "experiment",
        "species",
        "climate",
        "planet",
        "orbit",
    ],
    &[
        "symptom",
        "symptoms",
        "disease",
        "diagnosis",
        "treatment",
        "dose",
        "drug",
        "patient",
        "clinical",
        "medicine",
        "medical",
        "infection",
        "vaccine",
        "therapy",
        "surgery",
        "blood",
        "heart",
        "cancer",
        "diabetes",
    ],
    &[
        "law",
        "legal",
        "contract",
        "court",
        "statute",
        "liability",
        "plaintiff",
        "defendant",
        "regulation",
        "copyright",
        "patent",
        "lawsuit",
        "jurisdiction",
        "tort",
        "clause",
    ],
    &[
        "stock",
        "stocks",
        "bond",
        "interest",
        "inflation",
        "portfolio",
        "tax",
        "taxes",
        "investment",
        "loan",
        "mortgage",
        "revenue",
        "accounting",
        "dividend",
        "budget",
        "valuation",
        "finance",
        "financial",
    ],
    &[
        "history",
        "war",
        "empire",
        "century",
        "revolution",
        "ancient",
        "medieval",
        "dynasty",
        "king",
        "treaty",
        "colonial",
        "historical",
        "roman",
        "romans",
        "civilization",
    ],
    &[
        "essay",
        "poem",
        "story",
        "paragraph",
        "blog",
        "article",
        "rewrite",
        "tone",
        "headline",
        "email",
        "letter",
        "narrative",
        "character",
        "plot",
        "draft",
        "proofread",
    ],
    &[
        "translate",
        "translation",
        "french",
        "spanish",
        "german",
        "chinese",
        "japanese",
        "korean",
        "italian",
        "portuguese",
        "russian",
        "arabic",
        "language",
        "grammar",
    ],
    &[
        "puzzle",
        "riddle",
        "logic",
        "logical",
        "deduce",
        "syllogism",
        "paradox",
        "argument",
        "premise",
        "conclusion",
        "fallacy",
    ],
    &[
        "marketing",
        "strategy",
        "customer",
        "customers",
        "sales",
        "startup",
        "product",
        "pricing",
        "competitor",
        "market",
        "management",
        "hiring",
        "meeting",
        "team",
    ],
    &[
        "dataset",
        "csv",
        "json",
        "table",
        "column",
        "columns",
        "spreadsheet",
        "extract",
        "classify",
        "sentiment",
        "label",
        "entities",
        "parse",
        "schema",
        "record",
        "records",
    ],
    &[
        "tool",
        "tools",
        "agent",
        "browser",
        "click",
        "terminal",
        "shell",
        "command",
        "file",
        "files",
        "directory",
        "plan",
        "execute",
        "workflow",
    ],
    &[
        "country",
        "capital",
        "river",
        "mountain",
        "continent",
        "population",
        "city",
        "ocean",
        "border",
        "desert",
    ],
    &[
        "music",
        "painting",
        "film",
        "movie",
        "novel",
        "art",
        "artist",
        "song",
        "poetry",
        "theater",
        "sculpture",
        "album",
    ],
];

fn table() -> &'static FxHashMap<&'static str, u8> {
    static T: OnceLock<FxHashMap<&'static str, u8>> = OnceLock::new();
    T.get_or_init(|| {
        let mut m = FxHashMap::default();
        for (topic, words) in KEYWORDS.iter().enumerate() {
            for w in *words {
                m.entry(*w).or_insert(topic as u8);
            }
        }
        m
    })
}

/// The area of `text` (its first 2 KiB): the one with the most keyword votes, `General`
/// (0) when none has any.
pub fn topic(text: &str) -> u8 {
    let mut end = text.len().min(2048);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let table = table();
    let mut votes = [0u8; TOPICS];
    let mut word = String::new();
    for w in text[..end]
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| (2..=20).contains(&w.len()))
    {
        let w = if w.bytes().all(|b| b.is_ascii_lowercase()) {
            w
        } else {
            word.clear();
            word.extend(w.chars().flat_map(char::to_lowercase));
            word.as_str()
        };
        if let Some(&t) = table.get(w) {
            votes[t as usize] = votes[t as usize].saturating_add(1);
        }
    }
    let (best, &n) = votes
        .iter()
        .enumerate()
        .max_by_key(|&(i, n)| (*n, std::cmp::Reverse(i)))
        .expect("TOPICS > 0");
    if n == 0 {
        0
    } else {
        best as u8
    }
}

/// How evenly a histogram over the areas is spread: the normalised entropy in [0, 1]
/// (0: one area, 1: all areas equally).
pub fn evenness(hist: &[u32; TOPICS]) -> f64 {
    let total: f64 = hist.iter().map(|&n| f64::from(n)).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let h: f64 = hist
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = f64::from(n) / total;
            -p * p.ln()
        })
        .sum();
    h / (TOPICS as f64).ln()
}

/// The effective number of areas a histogram covers: `exp(entropy)`, 1 for one area, 16
/// for all equally. A student with two subjects and the odd stray question is about 3; a
/// curriculum sweep is 10 or more.
pub fn effective_areas(hist: &[u32; TOPICS]) -> f64 {
    (evenness(hist) * (TOPICS as f64).ln()).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_area_with_most_votes() {
        assert_eq!(
            TOPIC_NAMES[topic("Write a Python function to reverse a linked list") as usize],
            "code"
        );
        assert_eq!(
            TOPIC_NAMES[topic("Prove the theorem about prime numbers") as usize],
            "math"
        );
        assert_eq!(topic("hello there, how are you?"), 0);
    }

    #[test]
    fn evenness_is_zero_for_one_area_and_one_for_all() {
        let mut one = [0; TOPICS];
        one[3] = 10;
        assert_eq!(evenness(&one), 0.0);
        assert!((evenness(&[5; TOPICS]) - 1.0).abs() < 1e-9);
    }
}
