//! chrF (Popović 2015): character n-gram F-score, n = 1..6, β = 2, whitespace removed, the
//! metric the issue asks for between marked and unmarked answers.

use rustc_hash::FxHashMap;

fn ngrams(chars: &[char], n: usize) -> FxHashMap<&[char], u32> {
    let mut counts = FxHashMap::default();
    if chars.len() >= n {
        for w in chars.windows(n) {
            *counts.entry(w).or_default() += 1;
        }
    }
    counts
}

pub fn chrf(hypothesis: &str, reference: &str) -> f64 {
    let h: Vec<char> = hypothesis.chars().filter(|c| !c.is_whitespace()).collect();
    let r: Vec<char> = reference.chars().filter(|c| !c.is_whitespace()).collect();
    let (mut precision, mut recall, mut orders) = (0.0, 0.0, 0.0);
    for n in 1..=6 {
        let (hn, rn) = (ngrams(&h, n), ngrams(&r, n));
        let (ht, rt): (u32, u32) = (hn.values().sum(), rn.values().sum());
        if ht == 0 || rt == 0 {
            continue;
        }
        let matched: u32 = hn
            .iter()
            .map(|(g, c)| (*c).min(*rn.get(g).unwrap_or(&0)))
            .sum();
        precision += f64::from(matched) / f64::from(ht);
        recall += f64::from(matched) / f64::from(rt);
        orders += 1.0;
    }
    if orders == 0.0 {
        return 100.0;
    }
    let (p, r) = (precision / orders, recall / orders);
    let beta2 = 4.0;
    if p + r == 0.0 {
        return 0.0;
    }
    100.0 * (1.0 + beta2) * p * r / (beta2 * p + r)
}
