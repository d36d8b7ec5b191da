//! Scoring a suspect's texts. Each slot is an event keyed by (family, left context); the
//! same event seen many times counts once, by the variant the suspect used most (ties are
//! dropped), so a model repeating one phrase cannot manufacture evidence and the null
//! hypothesis stays exact: under a key the suspect never saw, each distinct event agrees
//! with the key's preferred variant with probability exactly 1/2, independently. The p-value
//! is the exact binomial tail; the global key and every tenant key of every secret version
//! are tested together, with a Bonferroni correction for their number.

use super::mark::draw;
use super::walk::{rewrite, Slots};
use crate::keys::KeyRing;
use crate::lexicon::{Lexicon, Member};
use crate::stats::{binomial_upper_tail, z_score};
use rustc_hash::FxHashMap;
use serde::Serialize;

/// The slots seen in a suspect's texts, counted by variant.
#[derive(Debug, Default)]
pub struct Evidence {
    events: FxHashMap<(u16, String), [u32; 2]>,
    texts: u64,
}

struct Record<'a>(&'a mut FxHashMap<(u16, String), [u32; 2]>);

impl Slots for Record<'_> {
    fn slot(&mut self, member: Member, context: &str) -> u8 {
        self.0
            .entry((member.family, context.to_owned()))
            .or_default()[usize::from(member.variant)] += 1;
        member.variant
    }
}

impl Evidence {
    pub fn new() -> Evidence {
        Evidence::default()
    }

    /// Adds one suspect output.
    pub fn add_text(&mut self, text: &str) {
        rewrite(text, &mut Record(&mut self.events));
        self.texts += 1;
    }

    pub fn texts(&self) -> u64 {
        self.texts
    }

    /// Distinct events with a majority variant: (family, context, variant).
    pub fn events(&self) -> impl Iterator<Item = (u16, &str, u8)> {
        self.events.iter().filter_map(|((family, context), n)| {
            (n[0] != n[1]).then_some((*family, context.as_str(), u8::from(n[1] > n[0])))
        })
    }

    /// Scores the events under every key the ring holds: the global key, and the keys of
    /// `tenants`; `alpha` is the false-alarm rate a verdict is given at (after correction).
    pub fn score(&self, ring: &KeyRing, tenants: &[String], alpha: f64) -> Detection {
        let lexicon = Lexicon::builtin();
        let tests = ring.secrets().len() * (1 + tenants.len());
        let mut scores = Vec::new();
        for secret in ring.secrets() {
            let global = secret.global();
            let tenant_keys: Vec<_> = tenants.iter().map(|t| secret.tenant(t)).collect();
            let mut g = (0u64, 0u64);
            let mut t = vec![(0u64, 0u64); tenants.len()];
            for (family, context, observed) in self.events() {
                let name = &lexicon.family(family).name;
                let d = draw(&global, name, context);
                if !d.tenant_slot {
                    g.0 += 1;
                    g.1 += u64::from(d.preferred == observed);
                    continue;
                }
                for (key, counts) in tenant_keys.iter().zip(t.iter_mut()) {
                    counts.0 += 1;
                    counts.1 += u64::from(draw(key, name, context).preferred == observed);
                }
            }
            scores.push(KeyScore::new(
                "global".to_owned(),
                secret.version.clone(),
                g,
                tests,
                alpha,
            ));
            for (tenant, counts) in tenants.iter().zip(t) {
                scores.push(KeyScore::new(
                    format!("tenant:{tenant}"),
                    secret.version.clone(),
                    counts,
                    tests,
                    alpha,
                ));
            }
        }
        let attributed = scores
            .iter()
            .filter(|s| s.key.starts_with("tenant:") && s.verdict)
            .min_by(|a, b| a.p_value.total_cmp(&b.p_value))
            .map(|s| s.key["tenant:".len()..].to_owned());
        let detected = scores.iter().any(|s| s.verdict);
        Detection {
            texts: self.texts,
            events: self.events().count() as u64,
            tests,
            alpha,
            detected,
            attributed,
            scores,
        }
    }
}

/// One key's result.
#[derive(Debug, Clone, Serialize)]
pub struct KeyScore {
    /// "global" or "tenant:<id>".
    pub key: String,
    /// The secret version the key derives from.
    pub version: String,
    /// Distinct slots scored under this key.
    pub slots: u64,
    /// Slots whose variant is the key's preferred one.
    pub hits: u64,
    pub z: f64,
    /// One-sided exact binomial p-value, before correction.
    pub p_value: f64,
    /// Bonferroni-corrected over every key tested.
    pub p_adjusted: f64,
    /// `p_adjusted <= alpha`.
    pub verdict: bool,
}

impl KeyScore {
    fn new(
        key: String,
        version: String,
        (slots, hits): (u64, u64),
        tests: usize,
        alpha: f64,
    ) -> KeyScore {
        let p_value = binomial_upper_tail(slots, hits, 0.5);
        let p_adjusted = (p_value * tests as f64).min(1.0);
        KeyScore {
            key,
            version,
            slots,
            hits,
            z: z_score(slots, hits),
            p_value,
            p_adjusted,
            verdict: p_adjusted <= alpha,
        }
    }
}

/// The verdict over a suspect's texts.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    pub texts: u64,
    /// Distinct events with a majority variant.
    pub events: u64,
    /// Keys tested (the Bonferroni factor).
    pub tests: usize,
    pub alpha: f64,
    /// Some key's corrected p-value is at or below `alpha`.
    pub detected: bool,
    /// The tenant whose key gives the smallest significant p-value.
    pub attributed: Option<String>,
    pub scores: Vec<KeyScore>,
}
