//! Token counting speed: a typical 2 KB prompt, and the whole benign corpus.

use portcullis_openai::Encoding;

fn main() {
    divan::main();
}

fn corpus() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/corpora/dev/benign.jsonl"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Prompt counting on a typical 2 KB prompt (the first 2 KB of the benign corpus).
#[divan::bench(args = [Encoding::O200kBase, Encoding::Cl100kBase])]
fn count_2kb_prompt(bencher: divan::Bencher, encoding: Encoding) {
    let text = corpus();
    let mut end = 2048;
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let prompt = &text[..end];
    encoding.warm_up();
    bencher
        .counter(divan::counter::BytesCount::new(prompt.len()))
        .bench_local(|| encoding.count(divan::black_box(prompt)));
}

/// Throughput on the whole benign corpus (about 1 MB), the same text `scripts/bench-tokenizer.sh`
/// gives the `tiktoken` Python package.
#[divan::bench(args = [Encoding::O200kBase, Encoding::Cl100kBase], sample_count = 10, sample_size = 1)]
fn count_corpus(bencher: divan::Bencher, encoding: Encoding) {
    let text = corpus();
    encoding.warm_up();
    bencher
        .counter(divan::counter::BytesCount::new(text.len()))
        .bench_local(|| encoding.count(divan::black_box(&text)));
}

/// The same 2 KB prompt counted by `bpe-openai` alone (regex split, no piece cache): the
/// baseline of the ASCII fast path in `Encoding::count`.
#[divan::bench]
fn count_2kb_prompt_bpe_openai_alone(bencher: divan::Bencher) {
    let text = corpus();
    let mut end = 2048;
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let prompt = &text[..end];
    let tokenizer = bpe_openai::o200k_base();
    tokenizer.count(prompt);
    bencher
        .counter(divan::counter::BytesCount::new(prompt.len()))
        .bench_local(|| tokenizer.count(divan::black_box(prompt)));
}
