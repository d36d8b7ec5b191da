//! The text watermark's marker on arbitrary text cut at arbitrary points: it never panics,
//! the stream's result is the whole text's, marking is deterministic, and the detector reads
//! any text (marked or not) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_watermark::{mark, Evidence, MarkKeys, Secret, TextMarker};

fuzz_target!(|data: &[u8]| {
    let Some((&cut_seed, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let keys = MarkKeys::new(&Secret::new("fuzz", b"fuzzing watermark secret".to_vec()), "t");
    let (whole, stats) = mark(text, &keys);
    assert!(stats.changed <= stats.slots);
    let size = (cut_seed as usize % 13) + 1;
    let mut marker = TextMarker::new(keys.clone());
    let mut streamed = String::new();
    let mut at = 0;
    while at < text.len() {
        let mut end = (at + size).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        streamed.push_str(&marker.push(&text[at..end]));
        at = end;
    }
    streamed.push_str(&marker.finish());
    assert_eq!(streamed, whole);
    // Whitespace changes only where a two-word variant meets a one-word one ("do not" and
    // "don't"): by at most one character per slot.
    let whitespace = |s: &str| s.chars().filter(|c| c.is_whitespace()).count();
    assert!(whitespace(&whole).abs_diff(whitespace(text)) as u64 <= stats.slots);
    let mut evidence = Evidence::new();
    evidence.add_text(&whole);
    evidence.add_text(text);
});
