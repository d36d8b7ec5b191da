//! Redaction on the dev PII corpus (precision and recall per kind), and properties: text
//! without a match is never changed, and streaming in any chunking gives exactly what
//! redacting the whole text gives.

use portcullis_guard::redact::{find, redact, StreamRedactor};
use proptest::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// Kinds of the corpus this redactor covers (PERSON and ADDRESS need a language model).
const COVERED: &[&str] = &[
    "EMAIL",
    "PHONE",
    "CREDIT_CARD",
    "IBAN",
    "US_SSN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_KEY",
    "OPENAI_KEY",
    "JWT",
    "PRIVATE_KEY",
];

fn corpus() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/corpora/dev/pii.jsonl"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn precision_and_recall_on_the_dev_corpus() {
    // kind -> (true positives, false positives, false negatives)
    let mut counts: BTreeMap<String, (u32, u32, u32)> = BTreeMap::new();
    for record in corpus() {
        let text = record["text"].as_str().unwrap();
        let gold: Vec<(String, usize, usize)> = record["entities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap().to_owned(),
                    e["byte_start"].as_u64().unwrap() as usize,
                    e["byte_end"].as_u64().unwrap() as usize,
                )
            })
            .filter(|(t, _, _)| COVERED.contains(&t.as_str()))
            .collect();
        let found = find(text, "");
        // The look-alikes (order numbers, ISBNs, timestamps, ids) are never edited.
        if record["label"] == "benign" {
            assert!(found.is_empty(), "false edit in {text:?}: {found:?}");
        }
        let mut matched = vec![false; gold.len()];
        for span in &found {
            let hit = gold.iter().enumerate().position(|(i, (kind, start, end))| {
                !matched[i] && kind == span.kind.name() && span.start < *end && *start < span.end
            });
            let entry = counts.entry(span.kind.name().to_owned()).or_default();
            match hit {
                Some(i) => {
                    matched[i] = true;
                    entry.0 += 1;
                }
                None => {
                    eprintln!(
                        "false {}: {:?}",
                        span.kind.name(),
                        &text[span.start..span.end]
                    );
                    entry.1 += 1
                }
            }
        }
        for (i, (kind, start, end)) in gold.iter().enumerate() {
            if !matched[i] {
                eprintln!("missed {kind}: {:?}", &text[*start..*end]);
                counts.entry(kind.clone()).or_default().2 += 1;
            }
        }
    }
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (kind, (t, f, n)) in &counts {
        let recall = *t as f64 / (t + n).max(1) as f64;
        eprintln!(
            "{kind:<20} precision {:.3} recall {recall:.3} (tp {t}, fp {f}, fn {n})",
            *t as f64 / (t + f).max(1) as f64,
        );
        // Issue 13's goal, per kind: bare digit runs are found through the words before them.
        assert!(recall >= 0.99, "{kind} recall {recall}");
        tp += t;
        fp += f;
        fn_ += n;
    }
    let precision = tp as f64 / (tp + fp) as f64;
    let recall = tp as f64 / (tp + fn_) as f64;
    eprintln!("overall precision {precision:.3} recall {recall:.3}");
    assert!(precision >= 0.95, "precision {precision}");
    assert!(recall >= 0.95, "recall {recall}");
}

fn chunked(text: &str, cuts: &[usize]) -> String {
    let mut r = StreamRedactor::new();
    let mut out = String::new();
    let mut at = 0;
    for &cut in cuts {
        let mut cut = (at + cut).min(text.len());
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        out.push_str(&r.push(&text[at..cut]));
        at = cut;
    }
    out.push_str(&r.push(&text[at..]));
    out.push_str(&r.finish());
    out
}

#[test]
fn streaming_the_corpus_in_pieces_equals_redacting_it_whole() {
    for (n, record) in corpus().iter().enumerate() {
        let text = record["text"].as_str().unwrap();
        let whole = redact(text).0;
        for size in [1, 2, 3, 7, 16, 64] {
            let cuts: Vec<usize> =
                std::iter::repeat_n(size + n % 3, text.len() / size + 1).collect();
            assert_eq!(chunked(text, &cuts), whole, "chunks of {size}: {text:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn text_without_a_match_is_never_changed(text in "[a-zA-Z .,;:!?'()\\n-]{0,300}") {
        let (out, spans) = redact(&text);
        if spans.is_empty() {
            prop_assert_eq!(out, text);
        }
    }

    #[test]
    fn only_matched_spans_change(text in "([a-z ]{0,12}|[0-9 -]{0,20}|@|\\.|sk-[a-zA-Z0-9]{0,30}|\\+44 ){0,12}") {
        let (out, spans) = redact(&text);
        // Putting the originals back where the placeholders are gives the input.
        let mut rebuilt = String::new();
        let mut rest = out.as_str();
        let mut at = 0;
        for s in &spans {
            let placeholder = portcullis_guard::redact::placeholder(s.kind);
            let i = rest.find(&placeholder).unwrap();
            rebuilt.push_str(&rest[..i]);
            rebuilt.push_str(&text[s.start..s.end]);
            rest = &rest[i + placeholder.len()..];
            at = s.end;
        }
        rebuilt.push_str(rest);
        let _ = at;
        prop_assert_eq!(rebuilt, text);
    }

    #[test]
    fn any_chunking_streams_what_the_whole_gives(
        parts in prop::collection::vec("([a-z ]{0,8}|[0-9 ()+-]{0,12}|jane@example\\.com|4242 4242 4242 4242|sk-proj-[a-zA-Z0-9]{24}|GB82 WEST 1234 5698 7654 32|\\n)", 0..16),
        cuts in prop::collection::vec(1usize..20, 0..40),
    ) {
        // Items separated as in prose. (Numbers separated by single spaces only are one
        // ambiguous run of digit groups, which no reading splits the same way twice.)
        let text: String = parts.join(", and ");
        prop_assert_eq!(chunked(&text, &cuts), redact(&text).0);
    }
}

/// A fuzz find: `/` separates card digits, so a stream that did not count it as part of a
/// number released `00/0077…/` and then read the rest as one rejected number, leaking the
/// card the whole text finds in it.
#[test]
fn slashes_inside_numbers_keep_the_stream_equal_to_the_whole() {
    let text = "AE/J\u{8}07OOOO\n00/007774559700/00450 0000000000 000*@00";
    let whole = redact(text).0;
    assert!(whole.contains("[REDACTED:CREDIT_CARD]"), "{whole}");
    for size in 1..=17 {
        let pieces = vec![size; text.len() / size];
        assert_eq!(chunked(text, &pieces), whole, "pieces of {size}");
    }
}

/// A fuzz find (CI, stop 24): an extension marker after a digit of another script (`۴ext`)
/// joins like one after an ASCII digit, so the stream must not release up to the marker;
/// it did, and the rest, scanned from there, hid the phone the whole text finds.
#[test]
fn extension_markers_after_look_alike_digits_hold_the_number() {
    for text in [
        "u11w\nH492w\u{0}00000000\u{6f4}ext0000.1290027795x 9[99999",
        "call 66666668834\u{667} \u{ff58} 12 now",
        "call 6666666883\u{200b}47 x\u{a0}12 now",
    ] {
        let whole = redact(text).0;
        assert!(whole.contains("[REDACTED:PHONE]"), "{whole}");
        for size in 1..=17 {
            let pieces = vec![size; text.len() / size];
            assert_eq!(
                chunked(text, &pieces),
                whole,
                "{text:?} in pieces of {size}"
            );
        }
    }
}
