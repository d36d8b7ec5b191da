//! Tokenizer throughput on a file of JSON lines with a `text` field, joined by newlines: the
//! same input `scripts/bench-tokenizer.sh` gives the `tiktoken` Python package. Prints one
//! JSON line per vocabulary: tokens counted and MB/s (best of 5 runs, one thread).
//!
//!   cargo run --release -p portcullis-openai --example tokenizer_throughput -- FILE.jsonl

use portcullis_openai::Encoding;
use std::time::Instant;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: tokenizer_throughput FILE.jsonl");
    let text = std::fs::read_to_string(&path)
        .expect("readable file")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("\n");
    for encoding in [Encoding::O200kBase, Encoding::Cl100kBase] {
        encoding.warm_up();
        let mut best = f64::MAX;
        let mut tokens = 0;
        for _ in 0..5 {
            let start = Instant::now();
            tokens = encoding.count(&text);
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!(
            "{{\"implementation\":\"portcullis (bpe-openai)\",\"encoding\":\"{encoding}\",\"bytes\":{},\"tokens\":{tokens},\"mb_per_s\":{:.1}}}",
            text.len(),
            text.len() as f64 / best / 1e6
        );
    }
}
