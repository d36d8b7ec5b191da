//! Injection and jailbreak detection: rules plus a linear classifier, with a score and the
//! reasons for every decision.
//!
//! A text is first sanitized (smuggling carriers removed, tag-character messages decoded) and
//! extended with what its base64/hex spans decode to; the scan form of all that (and of its
//! rot13, when the text talks about rot13) is what rules and classifier read. The classifier
//! is a logistic regression over hashed n-grams (`features`), trained by
//! `examples/train_detector.rs` on the dev corpus with a fixed split; its weights are compiled
//! in. A rule match scores 0.99; the final score is the highest of rules and classifier. It
//! runs in microseconds on a CPU, which a transformer classifier does not.

use crate::decode;
use crate::features::{features, DIM};
use crate::normalize::{sanitize, Sanitized};
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
}

/// The model compiled into the binary.
pub struct Detector {
    weights: Vec<f32>,
    bias: f32,
    /// Inverse document frequencies of the training corpus, per bucket.
    idf: Option<Vec<f32>>,
    pub threshold: f32,
}

impl Detector {
    /// The detector with the committed weights and threshold (loaded once).
    pub fn builtin() -> &'static Detector {
        static DETECTOR: OnceLock<Detector> = OnceLock::new();
        DETECTOR.get_or_init(|| {
            let values: Vec<f32> = WEIGHTS
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let threshold = serde_json::from_str::<serde_json::Value>(META)
                .ok()
                .and_then(|m| m["threshold"].as_f64())
                .unwrap_or(0.5) as f32;
            rules::warm_up();
            crate::normalize::warm_up();
            let idf = (values.len() > 2 * DIM).then(|| values[DIM + 1..2 * DIM + 1].to_vec());
            Detector::from_parts(values[..DIM].to_vec(), values[DIM], threshold, idf)
        })
    }

    pub fn from_parts(
        weights: Vec<f32>,
        bias: f32,
        threshold: f32,
        idf: Option<Vec<f32>>,
    ) -> Detector {
        assert_eq!(weights.len(), DIM);
        Detector {
            weights,
            bias,
            idf,
            threshold,
        }
    }

    /// Features of a prepared text, weighted as in training.
    pub fn features(&self, scan: &str) -> Vec<(u32, f32)> {
        let mut f = features(scan);
        if let Some(idf) = &self.idf {
            crate::features::reweight(&mut f, idf);
        }
        f
    }

    /// The classifier's probability for prepared features.
    pub fn probability(&self, features: &[(u32, f32)]) -> f32 {
        let z: f32 = self.bias
            + features
                .iter()
                .map(|(i, v)| self.weights[*i as usize] * v)
                .sum::<f32>();
        1.0 / (1.0 + (-z).exp())
    }

    /// Scores one text.
    pub fn scan(&self, text: &str) -> Finding {
        self.scan_prepared(&prepare(text))
    }

    /// Scores a text already prepared (its sanitized form stays usable by the caller).
    pub fn scan_prepared(&self, prepared: &Prepared) -> Finding {
        let classifier = self.probability(&self.features(&prepared.scan));
        let mut reasons: Vec<String> = prepared
            .sanitized
            .removed
            .iter()
            .map(|(carrier, _)| format!("hidden_unicode:{}", carrier.name()))
            .collect();
        let mut rule_hits = rules::matches(&prepared.scan, &prepared.nfkc);
        // Text spelled in invisible tag characters has no honest use in a prompt.
        if prepared.sanitized.hidden.trim().len() >= 4 {
            rule_hits.push("hidden_message");
        }
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
            reasons,
        }
    }
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
}

/// Sanitizes, decodes and folds a text for the detector (and for training, identically).
pub fn prepare(text: &str) -> Prepared {
    let sanitized = sanitize(text);
    let mut decoded = decode::decoded_spans(&sanitized.text);
    if sanitized.text.to_ascii_lowercase().contains("rot13")
        || sanitized.text.to_ascii_lowercase().contains("rot-13")
    {
        decoded.push_str(&decode::rot13(&sanitized.text));
    }
    let mut all = sanitized.text.clone();
    for extra in [&sanitized.hidden, &decoded] {
        if !extra.is_empty() {
            all.push('\n');
            all.push_str(extra);
        }
    }
    let nfkc: String = crate::normalize::to_nfkc(&all).into_owned();
    let mut scan = crate::normalize::scan_form_of_nfkc(&nfkc);
    // Markers for what the text hid, as words the classifier can weigh.
    if !decoded.is_empty() {
        scan.push_str(" zzencodedpayload");
    }
    // Only carriers that hold a message count by themselves: stray zero-width spaces and
    // direction marks are common in pasted text, and once removed what they split is scanned.
    let selectors = sanitized
        .removed
        .iter()
        .any(|(c, n)| *c == crate::normalize::Carrier::VariationSelectors && *n >= 8);
    if !sanitized.hidden.is_empty() || selectors {
        scan.push_str(" zzhiddenmessage");
    }
    let combining = text
        .chars()
        .filter(|c| matches!(*c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x20D0..=0x20FF))
        .count();
    if combining * 4 > text.chars().count().max(1) {
        scan.push_str(" zzcombiningflood");
    }
    Prepared {
        sanitized,
        nfkc,
        decoded,
        scan,
    }
}
