//! The text watermark's cost: marking a typical answer whole and as a stream, and reading a
//! suspect's answer for detection.
//!
//!   cargo bench -p portcullis-watermark

use portcullis_watermark::{mark, Evidence, MarkKeys, Secret, TextMarker};

fn main() {
    divan::main();
}

/// A 2 KB assistant-style answer with prose, contractions, inline code and a code block.
fn answer() -> String {
    let paragraph = "It is usually apparent why the cache does not grow: the worker often \
frees entries almost as quickly as they arrive. You don't need `maxsize` here, but it's \
especially useful when the tables are huge. Furthermore, the parser can't see the quoted \
\"nearly done\" text, and there is no reason to change it.\n\n```python\ncache = {}\n```\n\n";
    paragraph.repeat(4)
}

fn keys() -> MarkKeys {
    MarkKeys::new(
        &Secret::new("bench", b"benchmark watermark secret".to_vec()),
        "acme",
    )
}

#[divan::bench]
fn mark_2kb_whole(bencher: divan::Bencher) {
    let (text, keys) = (answer(), keys());
    bencher
        .counter(divan::counter::BytesCount::of_str(&text))
        .bench(|| mark(divan::black_box(&text), &keys));
}

#[divan::bench]
fn mark_2kb_stream_of_4_char_pieces(bencher: divan::Bencher) {
    let (text, keys) = (answer(), keys());
    let pieces: Vec<&str> = text
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    bencher.bench(|| {
        let mut marker = TextMarker::new(keys.clone());
        let mut out = String::new();
        for p in &pieces {
            out.push_str(&marker.push(p));
        }
        out.push_str(&marker.finish());
        out
    });
}

#[divan::bench]
fn detect_read_2kb(bencher: divan::Bencher) {
    let text = mark(&answer(), &keys()).0;
    bencher.bench(|| {
        let mut evidence = Evidence::new();
        evidence.add_text(divan::black_box(&text));
        evidence
    });
}

/// The load benchmark's canned answer: 16 words, no slot.
const SHORT: &str = "A gateway keeps keys, limits and guards in one place in front of every model.";

#[divan::bench]
fn mark_short_answer_without_slots(bencher: divan::Bencher) {
    let keys = keys();
    bencher.bench(|| mark(divan::black_box(SHORT), &keys));
}

#[divan::bench]
fn derive_response_keys(bencher: divan::Bencher) {
    let secret = Secret::new("bench", b"benchmark watermark secret".to_vec());
    bencher.bench(|| MarkKeys::new(&secret, divan::black_box("acme")));
}
