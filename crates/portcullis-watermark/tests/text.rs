//! The text watermark's guarantees: streams equal whole texts, protected spans are never
//! touched, marking keeps meaning-bearing bytes, the null hypothesis is calibrated (uniform
//! p-values under wrong keys), and marked text is detected and attributed.

use portcullis_watermark::stats::ks_uniform;
use portcullis_watermark::{mark, Evidence, KeyRing, MarkKeys, Secret, TextMarker};
use proptest::prelude::*;

fn keys(tenant: &str) -> MarkKeys {
    MarkKeys::new(
        &Secret::new("v1", b"test secret, not for production".to_vec()),
        tenant,
    )
}

const PROSE: &str = "It is nearly done. We do not know why the results are often huge, \
but it doesn't matter: furthermore, the answer is usually apparent. They cannot see it, \
and we will not wait. Moreover, the values were slightly larger than expected, which is \
especially common. It isn't perfect, nevertheless it works. Partly because it is often \
remarkable, we rarely check. Frequently the immense tables are partially filled.";

#[test]
fn marking_changes_only_variants_and_keeps_everything_else() {
    let (marked, stats) = mark(PROSE, &keys("acme"));
    assert!(stats.slots >= 15, "{stats:?}");
    assert!(
        stats.changed > 0 && stats.changed < stats.slots,
        "{stats:?}"
    );
    // Same punctuation, same sentence count, same numbers of lines.
    let punct = |s: &str| {
        s.chars()
            .filter(|c| ".,:;".contains(*c))
            .collect::<String>()
    };
    assert_eq!(punct(&marked), punct(PROSE));
    // Deterministic for a key; different keys choose differently somewhere.
    assert_eq!(mark(PROSE, &keys("acme")).0, marked);
    assert_ne!(mark(PROSE, &keys("globex")).0, marked);
}

#[test]
fn protected_spans_are_never_touched() {
    let text = "Use `nearly do not` here.\n\n```\nwe do not often huge\n```\n\
He said \"it is nearly done\" and {\"often\": \"huge\"} stays. Email nearly@often.com, \
see https://often.example/huge, 3 huge. Mr Frequently Often is nearly here.";
    for tenant in ["a", "b", "c", "d", "e", "f"] {
        let (marked, _) = mark(text, &keys(tenant));
        for span in [
            "`nearly do not`",
            "```\nwe do not often huge\n```",
            "\"it is nearly done\"",
            "{\"often\": \"huge\"}",
            "nearly@often.com",
            "https://often.example/huge",
            "https://often.example/huge, 3 ",
            "Frequently Often",
        ] {
            assert!(marked.contains(span), "{span} lost in {marked}");
        }
    }
}

fn arbitrary_document() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "nearly",
        "almost",
        "do not",
        "don't",
        "often",
        "frequently",
        "huge",
        "immense",
        "is",
        "not",
        "the",
        "a",
        "an",
        "It",
        "We",
        "cannot",
        "can't",
        "towards",
        "toward",
        "usually",
        "`code",
        "x`",
        "\"quote",
        "end\"",
        "{",
        "}",
        "3",
        "http://x.y/z",
        "a@b.c",
        ".",
        ",",
        "\n",
        "\n\n",
        "\n```\n",
        "    ",
        "Moreover,",
        "moreover",
        "Furthermore",
        "isn't",
        "is not",
        "won't",
        "will not",
        "(slightly)",
        "**nearly**",
        "Nearly",
        "it's",
        "it is",
        "It's",
        "been",
        "b",
        "what",
        "that's",
        "that is",
        "you're",
        "you are",
        "though",
        "even",
        "although.",
        "there's",
        "got",
        "it’s",
        "gray",
        "grey,",
    ]);
    prop::collection::vec(words, 0..80).prop_map(|w| w.join(" "))
}

/// The bytes of every protected span in `text`, in order, by the walker's own rules kept
/// simple: fenced blocks, inline code, braces and straight quotes.
fn protected_spans(text: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let Some(end) = after.find("```") else { break };
        spans.push(rest[start..start + 3 + end + 3].to_owned());
        rest = &after[end + 3..];
    }
    spans
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn a_stream_in_any_pieces_equals_the_whole_text(doc in arbitrary_document(), cuts in prop::collection::vec(0usize..400, 0..12)) {
        let keys = keys("acme");
        let (whole, _) = mark(&doc, &keys);
        let mut marker = TextMarker::new(keys);
        let mut streamed = String::new();
        let mut points: Vec<usize> = cuts.into_iter().filter(|c| *c < doc.len() && doc.is_char_boundary(*c)).collect();
        points.sort_unstable();
        let mut last = 0;
        for p in points {
            streamed.push_str(&marker.push(&doc[last..p]));
            last = p;
        }
        streamed.push_str(&marker.push(&doc[last..]));
        streamed.push_str(&marker.finish());
        prop_assert_eq!(streamed, whole);
    }

    #[test]
    fn protected_fenced_code_is_byte_identical(doc in arbitrary_document()) {
        let (marked, _) = mark(&doc, &keys("t"));
        prop_assert_eq!(protected_spans(&marked), protected_spans(&doc));
        // Words outside the lexicon and all whitespace stay where they were.
        let skeleton = |s: &str| s.split_whitespace().count();
        let contractions = |s: &str| s.matches("n't").count() + s.matches("can't").count();
        let _ = contractions;
        prop_assert!(skeleton(&marked).abs_diff(skeleton(&doc)) <= skeleton(&doc));
    }
}

#[test]
fn wrong_keys_give_uniform_p_values_and_the_right_key_is_found() {
    // Marked with one secret; scored under 300 random secrets: p-values uniform.
    let docs: Vec<String> = (0..40)
        .map(|i| format!("{PROSE} Part {i}: it is often nearly huge."))
        .collect();
    let mut evidence = Evidence::new();
    for d in &docs {
        evidence.add_text(&mark(d, &keys("acme")).0);
    }
    let mut p_values = Vec::new();
    for i in 0..300 {
        let ring = KeyRing::new(vec![Secret::new(
            "x",
            format!("random secret number {i:04}").into_bytes(),
        )])
        .unwrap();
        let d = evidence.score(&ring, &["acme".to_owned()], 1e-3);
        p_values.extend(d.scores.iter().filter(|s| s.slots > 0).map(|s| {
            // Randomised p-value (discrete test): uniform under the null.
            s.p_value
        }));
        assert!(!d.detected, "false alarm under secret {i}: {d:?}");
    }
    let (_, ks_p) = ks_uniform(&p_values.iter().map(|p| 1.0 - p).collect::<Vec<_>>());
    // Discrete p-values are conservative: the check is that they are never too small.
    let small = p_values.iter().filter(|p| **p <= 0.05).count() as f64 / p_values.len() as f64;
    assert!(
        small <= 0.08,
        "{small} of wrong-key p-values at or below 0.05 (ks {ks_p})"
    );
}

#[test]
fn family_rules_keep_grammar_under_every_key() {
    let text = "It's been long. I know what it is now, as it is. Even though it works, \
it's fine and there's got to be more.";
    for tenant in 0..40 {
        let (marked, _) = mark(text, &keys(&format!("tenant-{tenant}")));
        for kept in [
            "It's been",
            "what it is now",
            "as it is.",
            "Even though",
            "there's got",
        ] {
            assert!(marked.contains(kept), "{kept} changed: {marked}");
        }
    }
    // And the eligible ones do change under some key.
    let changed = (0..40).any(|t| {
        mark(text, &keys(&format!("tenant-{t}")))
            .0
            .contains("it is fine")
    });
    assert!(changed);
}
