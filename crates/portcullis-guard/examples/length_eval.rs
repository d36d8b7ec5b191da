//! The injection detector on benign texts across the length range, and on attacks planted in
//! long benign documents.
//!
//!   cargo run --release -p portcullis-guard --example length_eval [-- --split evaluate]
//!
//! Benign: `data/corpora/long/benign_long.jsonl.gz` (code, documents, changelogs, e-mails,
//! logs; see `scripts/corpora/build_long_benign.py`), and the dev corpus's benign prompts for
//! the short end. Reported: the share flagged per length band and per kind. Planted: each
//! dev attack (one in four, by id) inserted at a random line of a long benign text of the
//! chosen split, to see whether one planted instruction is still found.

use flate2::read::GzDecoder;
use portcullis_guard::Detector;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};

pub fn band(chars: usize) -> &'static str {
    match chars {
        0..500 => "a: <500",
        500..2000 => "b: 500-2k",
        2000..8000 => "c: 2k-8k",
        _ => "d: >=8k",
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let split = args
        .iter()
        .position(|a| a == "--split")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "evaluate".into());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let detector = Detector::builtin();
    let file = std::fs::File::open(format!("{root}/data/corpora/long/benign_long.jsonl.gz"))
        .expect("long corpus");
    let mut long: Vec<Value> = BufReader::new(GzDecoder::new(file))
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .filter(|r: &Value| split == "all" || r["split"] == split.as_str())
        .collect();
    let dev = std::fs::read_to_string(format!("{root}/data/corpora/dev/benign.jsonl")).unwrap();
    let short: Vec<Value> = dev
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // (flagged, total) per band and per kind.
    let mut bands: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut kinds: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut examples = Vec::new();
    for r in short.iter().chain(long.iter()) {
        let text = r["text"].as_str().unwrap();
        let finding = detector.scan(text);
        let chars = text.chars().count();
        for (map, key) in [
            (&mut bands, band(chars).to_owned()),
            (&mut kinds, r["category"].as_str().unwrap().to_owned()),
        ] {
            let e = map.entry(key).or_default();
            e.0 += finding.attack as usize;
            e.1 += 1;
        }
        if finding.attack && chars >= 500 {
            examples.push(format!(
                "  {:.2} {} {:?} {:?}",
                finding.score,
                r["source"].as_str().unwrap_or(""),
                finding.reasons,
                text.chars().take(80).collect::<String>()
            ));
        }
    }
    println!(
        "benign flagged at threshold {:.4} (split {split}):",
        detector.threshold
    );
    for (name, map) in [("length", &bands), ("kind", &kinds)] {
        for (k, (f, t)) in map {
            println!(
                "  {name:<7} {k:<24} {f:>4}/{t:<5} {:>6.2}%",
                100.0 * *f as f64 / *t as f64
            );
        }
    }
    if args.iter().any(|a| a == "--show") {
        examples.iter().for_each(|e| println!("{e}"));
    }

    // Attacks planted in long documents.
    long.retain(|r| r["chars"].as_u64().unwrap_or(0) >= 2000);
    let attacks =
        std::fs::read_to_string(format!("{root}/data/corpora/dev/attacks.jsonl")).unwrap();
    let mut planted: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (i, line) in attacks.lines().enumerate() {
        if i % 4 != 0 || long.is_empty() {
            continue;
        }
        let r: Value = serde_json::from_str(line).unwrap();
        let attack = r["text"].as_str().unwrap();
        let host = long[(next() % long.len() as u64) as usize]["text"]
            .as_str()
            .unwrap();
        let lines: Vec<&str> = host.lines().collect();
        let at = (next() % (lines.len() as u64 + 1)) as usize;
        let text = [&lines[..at], &[attack], &lines[at..]].concat().join("\n");
        let alone = detector.scan(attack).attack;
        let e = planted
            .entry(r["category"].as_str().unwrap().to_owned())
            .or_default();
        // Counted only where the attack alone is caught: what planting loses.
        if alone {
            e.0 += detector.scan(&text).attack as usize;
            e.1 += 1;
        }
    }
    println!("attacks caught alone, then planted in a long benign text (>= 2k chars):");
    let (mut f, mut t) = (0, 0);
    for (k, (a, b)) in &planted {
        println!(
            "  {k:<26} {a:>4}/{b:<4} {:>6.1}%",
            100.0 * *a as f64 / *b as f64
        );
        f += a;
        t += b;
    }
    println!(
        "  {:<26} {f:>4}/{t:<4} {:>6.1}%",
        "all",
        100.0 * f as f64 / t as f64
    );
}
