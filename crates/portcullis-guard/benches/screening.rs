//! Input screening cost: sanitation, decoding, folding, rules and the classifier on a typical
//! 2 KB prompt, and throughput on the benign corpus.
//!
//!   cargo bench -p portcullis-guard

use portcullis_guard::Detector;

fn main() {
    divan::main();
}

/// The texts of one dev corpus file (`benign`, `pii`).
fn corpus_texts(name: &str) -> Vec<String> {
    let path = format!(
        "{}/../../data/corpora/dev/{name}.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect()
}

/// The benign corpus as one text.
fn corpus() -> String {
    corpus_texts("benign").join("\n")
}

#[divan::bench]
fn scan_2kb_prompt(bencher: divan::Bencher) {
    let text = corpus();
    let mut end = 2048;
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let prompt = text[..end].to_owned();
    let detector = Detector::builtin();
    bencher
        .counter(divan::counter::BytesCount::new(prompt.len()))
        .bench_local(|| detector.scan(divan::black_box(&prompt)));
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn scan_corpus_texts(bencher: divan::Bencher) {
    let texts = corpus_texts("benign");
    let bytes: usize = texts.iter().map(String::len).sum();
    let detector = Detector::builtin();
    bencher
        .counter(divan::counter::BytesCount::new(bytes))
        .bench_local(|| texts.iter().filter(|t| detector.scan(t).attack).count());
}

/// Streaming redaction throughput: the benign corpus and the PII corpus, fed in 64-byte
/// pieces as a token stream would arrive.
#[divan::bench(args = ["benign", "pii"], sample_count = 10, sample_size = 1)]
fn redact_stream(bencher: divan::Bencher, corpus_name: &str) {
    let text = corpus_texts(corpus_name).join("\n");
    let mut pieces = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let mut end = (at + 64).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        pieces.push(&text[at..end]);
        at = end;
    }
    bencher
        .counter(divan::counter::BytesCount::new(text.len()))
        .bench_local(|| {
            let mut r = portcullis_guard::redact::StreamRedactor::new();
            let mut out = 0;
            for p in &pieces {
                out += r.push(p).len();
            }
            out + r.finish().len()
        });
}

/// Redacting a whole (non-streamed) answer.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn redact_whole(bencher: divan::Bencher) {
    let text = corpus();
    bencher
        .counter(divan::counter::BytesCount::new(text.len()))
        .bench_local(|| portcullis_guard::redact::redact(&text).1.len());
}
