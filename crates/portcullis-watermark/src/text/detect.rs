//! Scoring a suspect's texts. Each slot is an event keyed by (family, left context); the
//! same event seen many times counts once, by the variant the suspect used most (ties are
//! dropped), so a model repeating one phrase cannot manufacture evidence and the null
//! hypothesis stays exact: under a key the suspect never saw, each distinct event agrees
//! with the key's preferred variant with probability exactly 1/2, independently. The p-value
//! is the exact binomial tail (with a weighted statistic beside it, see [`KeyScore`]).
//!
//! Many keys are tested, so the false-alarm rate is controlled over all of them by parallel
//! gatekeeping (Dmitrienko, Offen and Westfall, 2003): first the global keys of the secret
//! versions, Bonferroni over the versions; then, only if some global key is significant, the
//! tenant keys, Bonferroni over versions × tenants at the share of alpha the significant
//! global keys pass on (r of V: alpha·r/V). The question "was it trained on our outputs"
//! thus pays only for the versions, and "through which tenant" is asked once it is answered.

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

    /// Each family's share of variant A over every slot seen (a function of the texts).
    fn family_shares(&self) -> FxHashMap<u16, f64> {
        let mut totals: FxHashMap<u16, [u64; 2]> = FxHashMap::default();
        for ((family, _), n) in &self.events {
            let t = totals.entry(*family).or_default();
            t[0] += u64::from(n[0]);
            t[1] += u64::from(n[1]);
        }
        totals
            .into_iter()
            .map(|(f, [a, b])| (f, a as f64 / (a + b).max(1) as f64))
            .collect()
    }

    /// Scores the events under every key the ring holds: the global key, and the keys of
    /// `tenants`; `alpha` is the false-alarm rate a verdict is given at (after correction).
    pub fn score(&self, ring: &KeyRing, tenants: &[String], alpha: f64) -> Detection {
        let lexicon = Lexicon::builtin();
        let tests = ring.secrets().len() * (1 + tenants.len());
        let shares = self.family_shares();
        let mut scores = Vec::new();
        for secret in ring.secrets() {
            let global = secret.global();
            let tenant_keys: Vec<_> = tenants.iter().map(|t| secret.tenant(t)).collect();
            let mut g = Tally::default();
            let mut t = vec![Tally::default(); tenants.len()];
            for ((family, context), n) in &self.events {
                let name = &lexicon.family(*family).name;
                let d = draw(&global, name, context);
                let excess = f64::from(n[0]) - f64::from(n[0] + n[1]) * shares[family];
                let majority = (n[0] != n[1]).then_some(u8::from(n[1] > n[0]));
                if !d.tenant_slot {
                    g.add(d.preferred, majority, excess);
                    continue;
                }
                for (key, tally) in tenant_keys.iter().zip(t.iter_mut()) {
                    tally.add(draw(key, name, context).preferred, majority, excess);
                }
            }
            scores.push(KeyScore::new(
                "global".to_owned(),
                secret.version.clone(),
                &g,
            ));
            for (tenant, tally) in tenants.iter().zip(t) {
                let key = format!("tenant:{tenant}");
                scores.push(KeyScore::new(key, secret.version.clone(), &tally));
            }
        }
        // Gatekeeping: global keys first, then tenants at the level they pass on.
        let versions = ring.secrets().len() as f64;
        for s in scores.iter_mut().filter(|s| s.key == "global") {
            s.p_adjusted = (s.p_value * versions).min(1.0);
            s.verdict = s.p_adjusted <= alpha;
        }
        let passed = scores
            .iter()
            .filter(|s| s.key == "global" && s.verdict)
            .count() as f64;
        let tenant_factor = versions * tenants.len() as f64 * versions / passed.max(1.0);
        for s in scores.iter_mut().filter(|s| s.key != "global") {
            s.p_adjusted = if passed > 0.0 {
                (s.p_value * tenant_factor).min(1.0)
            } else {
                1.0
            };
            s.verdict = s.p_adjusted <= alpha;
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

/// What one key's events add up to.
#[derive(Debug, Clone, Default)]
struct Tally {
    slots: u64,
    hits: u64,
    /// Σ ε·m and Σ m² for the weighted statistic.
    signed: f64,
    squares: f64,
}

impl Tally {
    fn add(&mut self, preferred: u8, majority: Option<u8>, excess: f64) {
        if let Some(variant) = majority {
            self.slots += 1;
            self.hits += u64::from(variant == preferred);
        }
        let sign = if preferred == 0 { 1.0 } else { -1.0 };
        self.signed += sign * excess;
        self.squares += excess * excess;
    }
}

/// One key's result.
#[derive(Debug, Clone, Serialize)]
pub struct KeyScore {
    /// "global" or "tenant:<id>".
    pub key: String,
    /// The secret version the key derives from.
    pub version: String,
    /// Distinct slots (family, context) with a majority variant, scored under this key.
    pub slots: u64,
    /// Of those, slots whose majority variant is the key's preferred one.
    pub hits: u64,
    /// The z-score of `hits` among `slots` fair coins.
    pub z: f64,
    /// One-sided exact binomial p-value of `hits`.
    pub p_majority: f64,
    /// The weighted statistic: over every distinct slot, how far its count of variant A
    /// departs from its family's average, signed by the key's preference, in units of its
    /// standard deviation under the null hypothesis (signs are fair coins given the text).
    pub weighted_z: f64,
    /// Its p-value bound, exp(-z²/2) (Hoeffding: valid at any sample size, conservative).
    pub p_weighted: f64,
    /// The two tests together: 2 × the smaller p-value (Bonferroni), before the correction
    /// for the number of keys.
    pub p_value: f64,
    /// Corrected for every key tested (see the module: gatekeeping); 1 for a tenant key when
    /// no global key is significant (not tested).
    pub p_adjusted: f64,
    /// `p_adjusted <= alpha`.
    pub verdict: bool,
}

impl KeyScore {
    /// A key's score, before the correction for the other keys.
    fn new(key: String, version: String, tally: &Tally) -> KeyScore {
        let p_majority = binomial_upper_tail(tally.slots, tally.hits, 0.5);
        let weighted_z = if tally.squares > 0.0 {
            tally.signed / tally.squares.sqrt()
        } else {
            0.0
        };
        let p_weighted = if weighted_z > 0.0 {
            (-weighted_z * weighted_z / 2.0).exp()
        } else {
            1.0
        };
        let p_value = (2.0 * p_majority.min(p_weighted)).min(1.0);
        KeyScore {
            key,
            version,
            slots: tally.slots,
            hits: tally.hits,
            z: z_score(tally.slots, tally.hits),
            p_majority,
            weighted_z,
            p_weighted,
            p_value,
            p_adjusted: p_value,
            verdict: false,
        }
    }
}

/// The verdict over a suspect's texts.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    pub texts: u64,
    /// Distinct events with a majority variant.
    pub events: u64,
    /// Keys tested: secret versions × (global + tenants).
    pub tests: usize,
    pub alpha: f64,
    /// Some global key's corrected p-value is at or below `alpha`.
    pub detected: bool,
    /// The tenant whose key gives the smallest significant p-value.
    pub attributed: Option<String>,
    pub scores: Vec<KeyScore>,
}
