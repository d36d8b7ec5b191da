//! Prompt token counts match tiktoken's on every text of the dev corpus (attacks, benign
//! prompts, PII), for both vocabularies. `tiktoken-rs` is the oracle: it ports tiktoken's own
//! regex-and-merge implementation, while the gateway counts with `bpe-openai`.

use portcullis_openai::Encoding;
use serde_json::Value;

fn corpus_texts() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/corpora/dev");
    let mut texts = Vec::new();
    for file in ["attacks.jsonl", "benign.jsonl", "pii.jsonl"] {
        let content = std::fs::read_to_string(format!("{dir}/{file}")).expect("corpus file");
        for line in content.lines().filter(|l| !l.trim().is_empty()) {
            let record: Value = serde_json::from_str(line).expect("a JSON line");
            if let Some(text) = record["text"].as_str() {
                texts.push(text.to_owned());
            }
        }
    }
    texts
}

#[test]
fn counts_match_tiktoken_on_the_dev_corpus() {
    let texts = corpus_texts();
    assert!(texts.len() > 1000, "corpus too small: {}", texts.len());
    let oracles = [
        (Encoding::Cl100kBase, tiktoken_rs::cl100k_base().unwrap()),
        (Encoding::O200kBase, tiktoken_rs::o200k_base().unwrap()),
    ];
    for (encoding, oracle) in &oracles {
        let mut mismatches = Vec::new();
        let mut total = 0u64;
        for text in &texts {
            let ours = encoding.count(text);
            let theirs = oracle.encode_ordinary(text).len() as u64;
            total += theirs;
            if ours != theirs {
                mismatches.push((ours, theirs, text.chars().take(60).collect::<String>()));
            }
        }
        assert!(
            mismatches.is_empty(),
            "{}: {} of {} texts differ, e.g. {:?}",
            encoding.name(),
            mismatches.len(),
            texts.len(),
            &mismatches[..mismatches.len().min(3)]
        );
        assert!(total > 100_000);
    }
}
