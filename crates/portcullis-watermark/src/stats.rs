//! Exact tail probabilities for the detectors: the binomial upper tail (text slots are fair
//! coins under the null hypothesis) and the Kolmogorov-Smirnov test (embeddings, and the
//! calibration checks that p-values are uniform).

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; relative error below 1e-13).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1-x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// P(X ≥ k) for X ~ Binomial(n, p), exact (summed in log space; no normal approximation).
pub fn binomial_upper_tail(n: u64, k: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    let (nf, lp, lq) = (n as f64, p.ln(), (1.0 - p).ln());
    let ln_pmf = |i: u64| {
        let i = i as f64;
        ln_gamma(nf + 1.0) - ln_gamma(i + 1.0) - ln_gamma(nf - i + 1.0) + i * lp + (nf - i) * lq
    };
    // Terms fall off fast above the mode; sum from k up until they stop mattering.
    let first = ln_pmf(k);
    let mut sum = 1.0f64;
    let mut term = 0.0f64; // ln(term / first)
    for i in k..n {
        term += ((nf - i as f64) / (i as f64 + 1.0)).ln() + lp - lq;
        let t = term.exp();
        sum += t;
        if t < sum * 1e-17 && (i as f64) > nf * p {
            break;
        }
    }
    (first + sum.ln()).exp().min(1.0)
}

/// The z-score of `hits` among `n` fair coins.
pub fn z_score(n: u64, hits: u64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    (hits as f64 - n as f64 / 2.0) / (n as f64 / 4.0).sqrt()
}

/// The Kolmogorov distribution's survival function Q(λ) = P(K > λ).
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    for k in 1..=200 {
        let k = k as f64;
        let term = 2.0 * (-1f64).powf(k - 1.0) * (-2.0 * k * k * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-300 {
            break;
        }
    }
    sum.clamp(0.0, 1.0)
}

/// Two-sample Kolmogorov-Smirnov test: the statistic D and its p-value (asymptotic, with
/// Stephens' small-sample correction).
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> (f64, f64) {
    if a.is_empty() || b.is_empty() {
        return (0.0, 1.0);
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / na - j as f64 / nb).abs());
    }
    let ne = (na * nb / (na + nb)).sqrt();
    (d, kolmogorov_q((ne + 0.12 + 0.11 / ne) * d))
}

/// One-sample KS test of `values` against the uniform distribution on [0, 1].
pub fn ks_uniform(values: &[f64]) -> (f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let mut d = 0.0f64;
    for (i, x) in v.iter().enumerate() {
        d = d.max((i as f64 + 1.0) / n - x).max(x - i as f64 / n);
    }
    let ne = n.sqrt();
    (d, kolmogorov_q((ne + 0.12 + 0.11 / ne) * d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_tail_matches_direct_sums() {
        // Direct sums for small n with exact binomial coefficients.
        for n in [1u64, 5, 20, 60] {
            for k in 0..=n {
                let mut direct = 0.0;
                for i in k..=n {
                    let c = (0..i).fold(1.0, |c, j| c * (n - j) as f64 / (j + 1) as f64);
                    direct += c * 0.5f64.powi(n as i32);
                }
                let ours = binomial_upper_tail(n, k, 0.5);
                assert!(
                    (ours - direct).abs() <= 1e-12 + direct * 1e-9,
                    "{n} {k}: {ours} vs {direct}"
                );
            }
        }
        // Deep tails stay accurate in relative terms: P(X = n) = 2^-n.
        let p = binomial_upper_tail(200, 200, 0.5);
        assert!((p / 0.5f64.powi(200) - 1.0).abs() < 1e-9);
        assert!(binomial_upper_tail(10_000, 5_300, 0.5) < 1e-8);
    }

    #[test]
    fn ks_sees_a_shift_and_not_the_same_distribution() {
        let mut rng = fastrand::Rng::with_seed(7);
        let a: Vec<f64> = (0..300).map(|_| rng.f64()).collect();
        let b: Vec<f64> = (0..300).map(|_| rng.f64()).collect();
        let shifted: Vec<f64> = (0..300).map(|_| rng.f64() + 0.3).collect();
        assert!(ks_two_sample(&a, &b).1 > 0.01);
        assert!(ks_two_sample(&a, &shifted).1 < 1e-6);
        assert!(ks_uniform(&a).1 > 0.01);
    }
}
