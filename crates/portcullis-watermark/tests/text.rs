//! The text watermark's guarantees: streams equal whole texts, protected spans are never
//! touched, marking keeps meaning-bearing bytes, the null hypothesis is calibrated (uniform
//! p-values under wrong keys), and marked text is detected and attributed.

use portcullis_watermark::stats::{binomial_upper_tail, ks_uniform};
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

/// Randomised p-value of the majority test: P(X > k) + U·P(X = k) is exactly uniform under
/// the null hypothesis (the plain one is conservative, being discrete).
fn randomised(slots: u64, hits: u64, u: f64) -> f64 {
    let above = binomial_upper_tail(slots, hits + 1, 0.5);
    let at_or_above = binomial_upper_tail(slots, hits, 0.5);
    above + u * (at_or_above - above)
}

/// Scores `evidence` under 400 random secrets: false alarms at alpha = 1e-3 no more often
/// than the level allows (at most 2 of 400: a binomial(400, 1e-3) exceeds 2 with probability
/// 0.8%), and the majority test's randomised p-values pass a Kolmogorov-Smirnov test of
/// uniformity.
fn assert_calibrated(evidence: &Evidence, what: &str) {
    let mut rng = fastrand::Rng::with_seed(11);
    let mut p_values = Vec::new();
    let mut alarms = 0;
    for i in 0..400 {
        let secret = format!("random secret number {i:04} {}", rng.u64(..));
        let ring = KeyRing::new(vec![Secret::new("x", secret.into_bytes())]).unwrap();
        let d = evidence.score(&ring, &["acme".to_owned(), "globex".to_owned()], 1e-3);
        alarms += usize::from(d.detected);
        // Gatekeeping: no tenant is named unless a global key is significant.
        assert!(
            d.detected
                || d.scores
                    .iter()
                    .all(|s| !s.verdict && s.p_adjusted == 1.0 || s.key == "global")
        );
        for s in d.scores.iter().filter(|s| s.slots > 0) {
            p_values.push(randomised(s.slots, s.hits, rng.f64()));
        }
    }
    assert!(alarms <= 2, "{what}: {alarms} false alarms of 400");
    let (d, ks_p) = ks_uniform(&p_values);
    assert!(
        ks_p > 0.01,
        "{what}: KS D = {d}, p = {ks_p} over {} p-values",
        p_values.len()
    );
}

#[test]
fn p_values_are_uniform_under_wrong_keys_on_marked_and_unmarked_text() {
    let docs: Vec<String> = (0..60)
        .map(|i| format!("{PROSE} Part {i}: it is often nearly huge, item {i} is slightly larger."))
        .collect();
    let mut marked = Evidence::new();
    let mut plain = Evidence::new();
    for d in &docs {
        marked.add_text(&mark(d, &keys("acme")).0);
        plain.add_text(d);
    }
    assert_calibrated(&marked, "marked text, wrong keys");
    assert_calibrated(&plain, "text never marked");
    // And the right key finds it.
    let ring = KeyRing::new(vec![Secret::new(
        "v1",
        b"test secret, not for production".to_vec(),
    )])
    .unwrap();
    let d = marked.score(&ring, &["acme".to_owned(), "globex".to_owned()], 1e-3);
    let global = d.scores.iter().find(|s| s.key == "global").unwrap();
    assert!(global.hits > global.slots / 2, "{global:?}");
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

#[test]
fn the_pronoun_i_keeps_its_capital() {
    let text = "Yes, I am sure I will check it, and I'm glad. So I am.";
    let mut seen_contracted = false;
    let mut seen_expanded = false;
    for version in 0..40 {
        // Other secrets, not only other tenants: half the slots follow the global key.
        let secret = Secret::new(
            "v",
            format!("secret number {version} of the test").into_bytes(),
        );
        let (marked, _) = mark(text, &MarkKeys::new(&secret, "acme"));
        assert!(
            !marked.contains(" i ") && !marked.contains(" i'"),
            "{marked}"
        );
        assert!(marked.ends_with("So I am."), "clause-final stays: {marked}");
        seen_contracted |= marked.starts_with("Yes, I'm sure");
        seen_expanded |= marked.contains("and I am glad");
    }
    assert!(seen_contracted && seen_expanded);
}
