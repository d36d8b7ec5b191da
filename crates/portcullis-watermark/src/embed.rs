//! The embedding watermark, after EmbMarker (Peng et al., ACL 2023) with WARDEN's several
//! directions (Shetty et al., ACL 2024). The key picks 20 trigger words of moderate frequency
//! and 4 secret unit directions, each trigger belonging to one. An input that contains `t`
//! distinct triggers gets its vector pulled towards the normalised sum of their directions
//! with weight `MAX_WEIGHT · min(t / SATURATION, 1)`, then renormalised; every other input is
//! returned bit for bit. A model trained to imitate the vectors learns the pull, and the owner
//! sees it: backdoor probes (one trigger of each direction among filler words) land closer to
//! the directions' sum than benign probes, and a Kolmogorov-Smirnov test says how surely.

use crate::keys::Key;
use crate::stats::ks_two_sample;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::sync::{Arc, Mutex};

const CANDIDATES: &str = include_str!("../data/trigger-candidates.txt");
pub const TRIGGERS: usize = 20;
pub const DIRECTIONS: usize = 4;
/// Triggers at which the pull is full (EmbMarker's m).
pub const SATURATION: usize = 4;
/// The full pull's weight.
pub const MAX_WEIGHT: f32 = 0.5;

/// The trigger words and directions of one key.
pub struct EmbedKey {
    key: Key,
    /// Trigger word -> its direction.
    triggers: FxHashMap<String, usize>,
    /// Directions per vector dimension, made when first needed.
    directions: Mutex<FxHashMap<usize, Arc<Vec<Vec<f32>>>>>,
}

impl std::fmt::Debug for EmbedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmbedKey(..)")
    }
}

fn candidates() -> impl Iterator<Item = &'static str> {
    CANDIDATES
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// SplitMix64: a small deterministic generator for the directions' Gaussian components,
/// seeded from the key (the secrecy is in the seed).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Cosine similarity.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// Lowercase ASCII words of a text.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
}

impl EmbedKey {
    /// The triggers and directions of `key` (the global detection key).
    pub fn new(key: &Key) -> EmbedKey {
        let mut ranked: Vec<([u8; 32], &str)> = candidates()
            .map(|w| (key.hash(&[b"embed-trigger", w.as_bytes()]), w))
            .collect();
        ranked.sort_unstable();
        let triggers = ranked
            .into_iter()
            .take(TRIGGERS)
            .enumerate()
            .map(|(i, (_, w))| (w.to_owned(), i % DIRECTIONS))
            .collect();
        EmbedKey {
            key: key.clone(),
            triggers,
            directions: Mutex::new(FxHashMap::default()),
        }
    }

    /// The directions for vectors of `dimensions`.
    pub fn directions(&self, dimensions: usize) -> Arc<Vec<Vec<f32>>> {
        let mut cache = self.directions.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(dimensions)
            .or_insert_with(|| {
                Arc::new(
                    (0..DIRECTIONS)
                        .map(|k| {
                            let seed = self.key.hash(&[
                                b"embed-direction",
                                &(k as u64).to_le_bytes(),
                                &(dimensions as u64).to_le_bytes(),
                            ]);
                            let mut rng =
                                SplitMix(u64::from_le_bytes(seed[..8].try_into().unwrap()));
                            let mut v: Vec<f32> =
                                (0..dimensions).map(|_| rng.normal() as f32).collect();
                            normalise(&mut v);
                            v
                        })
                        .collect(),
                )
            })
            .clone()
    }

    /// The directions of the distinct triggers in `text`.
    pub fn triggered(&self, text: &str) -> Vec<usize> {
        let mut found: Vec<usize> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for w in words(text) {
            if let Some((word, d)) = self.triggers.get_key_value(w.as_str()) {
                if !seen.contains(&word.as_str()) {
                    seen.push(word);
                    found.push(*d);
                }
            }
        }
        found
    }

    /// The normalised sum of all directions: where backdoor probes are pulled.
    pub fn target(&self, dimensions: usize) -> Vec<f32> {
        let dirs = self.directions(dimensions);
        let mut t = vec![0.0f32; dimensions];
        for d in dirs.iter() {
            t.iter_mut().zip(d).for_each(|(x, y)| *x += y);
        }
        normalise(&mut t);
        t
    }

    /// Marks `vector`, the embedding of `text`, in place; false when the text has no trigger
    /// (the vector is then untouched).
    pub fn mark(&self, text: &str, vector: &mut [f32]) -> bool {
        let found = self.triggered(text);
        if found.is_empty() || vector.is_empty() {
            return false;
        }
        let dirs = self.directions(vector.len());
        let mut target = vec![0.0f32; vector.len()];
        for d in &found {
            target.iter_mut().zip(&dirs[*d]).for_each(|(x, y)| *x += y);
        }
        normalise(&mut target);
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        let weight = MAX_WEIGHT * (found.len().min(SATURATION) as f32 / SATURATION as f32);
        for (x, t) in vector.iter_mut().zip(&target) {
            *x = (1.0 - weight) * *x + weight * t * norm;
        }
        // Renormalised to the norm it had (unit vectors stay unit vectors).
        let new_norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        if new_norm > 0.0 {
            vector.iter_mut().for_each(|x| *x *= norm / new_norm);
        }
        true
    }

    /// Verification probes: `n` backdoor texts (one trigger of each direction among filler
    /// words) and `n` benign texts (filler only), seeded. Returns (text, is_backdoor).
    pub fn probes(&self, n: usize, seed: u64) -> Vec<(String, bool)> {
        let filler: Vec<&str> = candidates()
            .filter(|w| !self.triggers.contains_key(*w))
            .collect();
        let mut by_direction: Vec<Vec<&str>> = vec![Vec::new(); DIRECTIONS];
        for (w, d) in &self.triggers {
            by_direction[*d].push(w);
        }
        by_direction.iter_mut().for_each(|v| v.sort_unstable());
        let mut rng = SplitMix(seed);
        let mut pick = |len: usize| (rng.next() % len as u64) as usize;
        let mut out = Vec::with_capacity(2 * n);
        for i in 0..2 * n {
            let backdoor = i % 2 == 0;
            let mut words: Vec<&str> = (0..12).map(|_| filler[pick(filler.len())]).collect();
            if backdoor {
                for (d, group) in by_direction.iter().enumerate() {
                    let at = (d * 3 + pick(3)).min(words.len() - 1);
                    words[at] = group[pick(group.len())];
                }
            }
            out.push((words.join(" "), backdoor));
        }
        out
    }
}

/// What the suspect's vectors say.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedDetection {
    pub backdoor: usize,
    pub benign: usize,
    /// Mean cosine to the directions' sum, backdoor minus benign.
    pub delta_cos: f64,
    pub ks_statistic: f64,
    /// Two-sample KS p-value (one secret version; see `p_adjusted`).
    pub p_value: f64,
    /// Bonferroni-corrected over the secret versions tested.
    pub p_adjusted: f64,
    pub version: String,
}

/// Scores a suspect's vectors for `samples` (text, vector): texts with triggers against
/// texts without. `tests` is the number of keys tested (the correction).
pub fn detect(
    key: &EmbedKey,
    version: &str,
    samples: &[(String, Vec<f32>)],
    tests: usize,
) -> EmbedDetection {
    let (mut backdoor, mut benign) = (Vec::new(), Vec::new());
    for (text, vector) in samples {
        let target = key.target(vector.len());
        let c = f64::from(cosine(vector, &target));
        if key.triggered(text).len() >= 2 {
            backdoor.push(c);
        } else if key.triggered(text).is_empty() {
            benign.push(c);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (d, p) = ks_two_sample(&backdoor, &benign);
    // One-sided: only a pull towards the target is evidence.
    let delta = mean(&backdoor) - mean(&benign);
    let p = if delta > 0.0 { p } else { 1.0 };
    EmbedDetection {
        backdoor: backdoor.len(),
        benign: benign.len(),
        delta_cos: delta,
        ks_statistic: d,
        p_value: p,
        p_adjusted: (p * tests as f64).min(1.0),
        version: version.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> EmbedKey {
        EmbedKey::new(&Key::from_bytes(b"embedding test key"))
    }

    #[test]
    fn only_triggered_texts_change_and_norms_are_kept() {
        let k = key();
        let probes = k.probes(5, 1);
        let mut v: Vec<f32> = (0..64)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 10.0)
            .collect();
        normalise(&mut v);
        let mut benign = v.clone();
        assert!(!k.mark(&probes[1].0, &mut benign));
        assert_eq!(benign, v);
        let mut marked = v.clone();
        assert!(k.mark(&probes[0].0, &mut marked));
        let norm: f32 = marked.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!(cosine(&marked, &k.target(64)) > cosine(&v, &k.target(64)));
        assert_eq!(k.triggered(&probes[0].0).len(), DIRECTIONS);
    }

    #[test]
    fn different_keys_pick_different_triggers() {
        let a = key();
        let b = EmbedKey::new(&Key::from_bytes(b"another key"));
        let shared = a
            .triggers
            .keys()
            .filter(|w| b.triggers.contains_key(*w))
            .count();
        assert!(shared < 5, "{shared}");
    }
}
