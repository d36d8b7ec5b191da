//! Injection and jailbreak detection: rules plus a linear classifier, with a score and the
//! reasons for every decision.
//!
//! A text is first sanitized (smuggling carriers removed, tag-character messages decoded) and
//! extended with what its base64/hex spans decode to; the scan form of all that (and of its
//! rot13, when the text talks about rot13) is what rules and classifier read. The classifier
//! is a logistic regression over hashed n-grams (`features`) scaled NBSVM-style, trained by
//! `examples/train_detector.rs` on the dev corpus with a fixed split; its weights are compiled
//! in. A rule match scores 0.99; the final score is the highest of rules and classifier. It
//! runs in microseconds on a CPU, which a transformer classifier does not.

use crate::decode;
use crate::features::{for_each_instance, hash, log_counts, DIM};
use crate::normalize::{non_ascii_chars, sanitize, Sanitized};
use crate::rules;
use std::sync::OnceLock;

static WEIGHTS: &[u8] = include_bytes!("../model/injection.bin");
static META: &str = include_str!("../model/injection.json");

/// Score given to a text that a rule matches.
pub const RULE_SCORE: f32 = 0.99;

/// What the detector found in one text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    /// 0 (benign) to 1 (attack).
    pub score: f32,
    /// The classifier's own probability.
    pub classifier: f32,
    /// Why: rule names, `classifier`, and the smuggling carriers found.
    pub reasons: Vec<String>,
    /// Whether the score reaches the threshold.
    pub attack: bool,
    /// Whether the finding is sure enough to refuse the request under `block`: a rule matched,
    /// or the classifier reached `block_threshold`. Below that, an attack is flagged only
    /// (out of fold, the band between the two thresholds held most of the benign texts
    /// flagged: blocking there would refuse real users).
    pub block: bool,
}

/// The model compiled into the binary.
pub struct Detector {
    /// Per bucket: the weight and the feature scale (inverse document frequency times the
    /// naive-Bayes log-count ratio of the training corpus), side by side so that one cache
    /// line serves both.
    model: Vec<[f32; 2]>,
    bias: f32,
    /// log(1 + n) for each count n.
    logs: [f32; 256],
    pub threshold: f32,
    /// The classifier score from which `block` refuses (rules always may); at least
    /// `threshold`.
    pub block_threshold: f32,
}

impl Detector {
    /// The detector with the committed weights and threshold (loaded once).
    pub fn builtin() -> &'static Detector {
        static DETECTOR: OnceLock<Detector> = OnceLock::new();
        DETECTOR.get_or_init(|| {
            // Read straight from the bytes compiled in, no intermediate copies: weights, the
            // bias, then (optionally) one scale per bucket, as little-endian f32.
            let at = |i: usize| {
                let b = &WEIGHTS[i * 4..i * 4 + 4];
                f32::from_le_bytes([b[0], b[1], b[2], b[3]])
            };
            let has_scale = WEIGHTS.len() / 4 > 2 * DIM;
            let model = (0..DIM)
                .map(|k| [at(k), if has_scale { at(DIM + 1 + k) } else { 1.0 }])
                .collect();
            let meta = serde_json::from_str::<serde_json::Value>(META).ok();
            let read = |name: &str| meta.as_ref().and_then(|m| m[name].as_f64());
            let threshold = read("threshold").unwrap_or(0.5) as f32;
            let block_threshold = read("block_threshold").map_or(threshold, |t| t as f32);
            rules::warm_up();
            crate::normalize::warm_up();
            Detector {
                model,
                bias: at(DIM),
                logs: log_counts(),
                threshold,
                block_threshold: block_threshold.max(threshold),
            }
        })
    }

    pub fn from_parts(
        weights: Vec<f32>,
        bias: f32,
        threshold: f32,
        scale: Option<Vec<f32>>,
    ) -> Detector {
        assert_eq!(weights.len(), DIM);
        let scale = scale.unwrap_or_else(|| vec![1.0; DIM]);
        Detector {
            model: weights
                .into_iter()
                .zip(scale)
                .map(|(w, s)| [w, s])
                .collect(),
            bias,
            logs: log_counts(),
            threshold,
            block_threshold: threshold,
        }
    }

    /// The classifier's logit for one bag of n-gram counts: log-scaled, multiplied by each
    /// bucket's scale, L2-normalised, dotted with the weights.
    pub fn logit(&self, bag: &[(u32, u8)]) -> f32 {
        // Two interleaved sums, so consecutive additions do not wait on each other.
        let (mut dot, mut norm) = ([0f32; 2], [0f32; 2]);
        for pair in bag.chunks(2) {
            for (lane, &(k, n)) in pair.iter().enumerate() {
                let [weight, scale] = self.model[k as usize];
                let v = self.logs[n as usize] * scale;
                dot[lane] += weight * v;
                norm[lane] += v * v;
            }
        }
        let (dot, norm) = (dot[0] + dot[1], norm[0] + norm[1]);
        self.bias + dot / norm.sqrt().max(1e-6)
    }

    /// The classifier's probability for a scan-form text: the highest over the whole text
    /// and each of its segments, a segment's logit lowered by a share of ln(number of
    /// segments).
    ///
    /// Why the correction: a text cut into n segments gets n chances to cross the threshold,
    /// so without it the false-positive rate grew with length (0.8% of short benign prompts,
    /// 15% of 2-8 KB pastes, 37% over 8 KB). In the logistic tail P(z > t) falls as e^-t, so
    /// a shift of ln(n) is Bonferroni's correction: the chance that any of n benign segments
    /// crosses t + ln(n) is about the chance that one crosses t.
    pub fn probability(&self, scan: &str) -> f32 {
        let hashed = hash(scan);
        let penalty = segment_penalty(hashed.segment_ends.len());
        let mut z = f32::NEG_INFINITY;
        let mut whole = true;
        for_each_instance(&hashed, |bag| {
            let logit = self.logit(bag);
            z = z.max(if whole { logit } else { logit - penalty });
            whole = false;
        });
        1.0 / (1.0 + (-z).exp())
    }

    /// Scores one text.
    pub fn scan(&self, text: &str) -> Finding {
        self.scan_prepared(&prepare(text))
    }

    /// Scores a text already prepared (its sanitized form stays usable by the caller).
    pub fn scan_prepared(&self, prepared: &Prepared) -> Finding {
        let classifier = self.probability(&prepared.scan);
        let mut reasons: Vec<String> = prepared
            .sanitized
            .removed
            .iter()
            .map(|(carrier, _)| format!("hidden_unicode:{}", carrier.name()))
            .collect();
        let rule_hits = prepared.rule_hits();
        let block = !rule_hits.is_empty() || classifier >= self.block_threshold;
        let mut score = classifier;
        if !rule_hits.is_empty() {
            score = score.max(RULE_SCORE);
        }
        reasons.extend(rule_hits.iter().map(|r| format!("rule:{r}")));
        if !prepared.decoded.is_empty() {
            reasons.push("encoded_payload".into());
        }
        if classifier >= self.threshold {
            reasons.push(format!("classifier:{classifier:.3}"));
        }
        Finding {
            score,
            classifier,
            attack: score >= self.threshold,
            block: block && score >= self.threshold,
            reasons,
        }
    }
}

/// What a segment's logit is lowered by in a text of `segments` segments (see
/// [`Detector::probability`]).
///
/// Half of Bonferroni's shift: with the full ln(n), one planted instruction in a long document
/// was found 78% of the time against 92% at half (out of fold, `examples/length_eval.rs`),
/// for the same false positives per length band (the long benign texts trained on carry the
/// rest of the correction).
pub fn segment_penalty(segments: usize) -> f32 {
    0.5 * (segments.max(1) as f32).ln()
}

/// A text made ready for detection.
pub struct Prepared {
    pub sanitized: Sanitized,
    /// NFKC of the sanitized text plus any hidden and decoded text.
    pub nfkc: String,
    /// What decoding base64/hex spans (and rot13) revealed.
    pub decoded: String,
    /// The scan form of `nfkc`.
    pub scan: String,
    /// Combining marks in the text, and characters that are neither those nor white space.
    combining: usize,
    base: usize,
    mixed_script_words: usize,
    /// Whether the text holds a backspace or delete character.
    deletions: bool,
    /// Whether the text holds Cyrillic or CJK letters.
    non_latin: bool,
}

impl Prepared {
    /// The rules that match: the phrase rules over the scan form, and the shapes that have
    /// no honest use in a prompt.
    pub fn rule_hits(&self) -> Vec<&'static str> {
        let mut hits = rules::matches(&self.scan, &self.nfkc, self.non_latin);
        // A message spelled in invisible tag characters.
        if self.sanitized.hidden.trim().len() >= 4 {
            hits.push("hidden_message");
        }
        // Bytes or bits spelled in invisible characters (variation selectors, invisible
        // times and plus for 0 and 1): more of them than visible characters.
        let removed: usize = self.sanitized.removed.iter().map(|(_, n)| n).sum();
        if removed >= 4 && removed > self.base {
            hits.push("invisible_payload");
        }
        // Text buried under stacked diacritics ("Zalgo"): more combining marks than letters.
        // Decomposed accented text has at most one or two per letter, and not on every one.
        if self.combining >= 16 && self.combining > self.base {
            hits.push("combining_flood");
        }
        // Words spelled with Cyrillic or Greek look-alikes among Latin letters ("Ноw" with a
        // Cyrillic Н and о): a disguise, since no language writes a word in two scripts.
        if self.mixed_script_words >= 2 {
            hits.push("mixed_script");
        }
        // Backspace and delete characters: typed text never holds them; they hide a word
        // from filters that read bytes while a terminal-trained model reads the result.
        if self.deletions {
            hits.push("deletion_characters");
        }
        hits
    }
}

/// Whether the text names rot13 (any case), without copying it.
fn mentions_rot13(text: &str) -> bool {
    static ROT13: OnceLock<crate::searcher::Searcher> = OnceLock::new();
    ROT13
        .get_or_init(|| {
            crate::searcher::Searcher::bytes(r"(?i-u)rot-?13").expect("pattern compiles")
        })
        .is_match(text.as_bytes())
}

/// Words that mix ASCII letters with Cyrillic or Greek letters.
fn mixed_script_words(text: &str) -> usize {
    if !non_ascii_chars(text).any(|c| matches!(c as u32, 0x0370..=0x04FF)) {
        return 0;
    }
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| {
            !word.is_ascii()
                && word.chars().any(|c| c.is_ascii_alphabetic())
                && word.chars().any(|c| matches!(c as u32, 0x0370..=0x04FF))
        })
        .count()
}

/// Sanitizes, decodes and folds a text for the detector (and for training, identically).
pub fn prepare(text: &str) -> Prepared {
    let sanitized = sanitize(text);
    let mut decoded = decode::decoded_spans(&sanitized.text);
    if mentions_rot13(&sanitized.text) {
        decoded.push_str(&decode::rot13(&sanitized.text));
    }
    // Spaced letters, reversed words, Caesar shifts and spaced hex, unannounced.
    decoded.push_str(&decode::hidden_readings(&sanitized.text));
    let mut all = sanitized.text.clone();
    for extra in [&sanitized.hidden, &decoded] {
        if !extra.is_empty() {
            all.push('\n');
            all.push_str(extra);
        }
    }
    let nfkc: String = crate::normalize::to_nfkc(&all).into_owned();
    let mut scan = crate::normalize::scan_form_of_nfkc(&nfkc);
    // No marker for "something was encoded": an encoding alone is no attack (a harmless
    // question in base64 was flagged 95-100% of the time while the marker was a feature);
    // what the decoded text says is scored with the rest.
    // Only carriers that hold a message count by themselves: stray zero-width spaces and
    // direction marks are common in pasted text, and once removed what they split is scanned.
    let selectors = sanitized
        .removed
        .iter()
        .any(|(c, n)| *c == crate::normalize::Carrier::VariationSelectors && *n >= 8);
    if !sanitized.hidden.is_empty() || selectors {
        scan.push_str(" zzhiddenmessage");
    }
    let (mut combining, mut base, mut non_latin) = (0, 0, false);
    for c in non_ascii_chars(&sanitized.text) {
        if matches!(c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x20D0..=0x20FF) {
            combining += 1;
        } else if !c.is_whitespace() {
            base += 1;
            non_latin |= matches!(c as u32, 0x0400..=0x04FF | 0x3040..=0x30FF | 0x4E00..=0x9FFF);
        }
    }
    base += sanitized
        .text
        .bytes()
        .filter(|b| b.is_ascii() && !b.is_ascii_whitespace())
        .count();
    if combining * 4 > (combining + base).max(1) {
        scan.push_str(" zzcombiningflood");
    }
    let mixed_script_words = mixed_script_words(&sanitized.text);
    let deletions = memchr::memchr2(0x08, 0x7f, sanitized.text.as_bytes()).is_some();
    Prepared {
        sanitized,
        nfkc,
        decoded,
        scan,
        combining,
        base,
        mixed_script_words,
        deletions,
        non_latin,
    }
}
