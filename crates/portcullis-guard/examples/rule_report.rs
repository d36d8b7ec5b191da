//! How often each rule fires on the dev corpus's attacks and benign prompts: rules are not
//! trained, so a rule that fires on benign prompts is a false positive at 0.99 whatever the
//! classifier says.
//!
//!   cargo run --release -p portcullis-guard --example rule_report [-- --show RULE]

use portcullis_guard::detector::prepare;
use serde_json::Value;
use std::collections::BTreeMap;

fn main() {
    let show = std::env::args().skip_while(|a| a != "--show").nth(1);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let mut counts: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    let (mut attacks, mut benign) = (0, 0);
    for file in ["attacks.jsonl", "benign.jsonl"] {
        let text = std::fs::read_to_string(format!("{root}/data/corpora/dev/{file}")).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let r: Value = serde_json::from_str(line).unwrap();
            let attack = r["label"] == "attack";
            if attack {
                attacks += 1;
            } else {
                benign += 1;
            }
            let text = r["text"].as_str().unwrap();
            for rule in prepare(text).rule_hits() {
                let entry = counts.entry(rule).or_default();
                if attack {
                    entry.0 += 1;
                } else {
                    entry.1 += 1;
                }
                if show.as_deref() == Some(rule) {
                    let label = if attack { "attack" } else { "BENIGN" };
                    let head: String = text.chars().take(140).collect();
                    println!("  {label} {}: {head:?}", r["category"]);
                }
            }
        }
    }
    println!("{attacks} attacks, {benign} benign prompts");
    for (rule, (a, b)) in counts {
        println!("{rule:<26} attacks {a:>5}   benign {b:>3}");
    }
}
