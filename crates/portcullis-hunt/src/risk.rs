//! From an account's (and its campaign's) state to a risk in [0, 1] with the reasons that
//! raised it.
//!
//! Each test contributes evidence in units of its own threshold (1.0: this test alone is
//! enough to flag), so the reasons read as "which tests, how far". Evidence adds across
//! tests; the risk is `1 - 0.2^evidence`, so an account is flagged (risk >= 0.8) exactly
//! when its evidence reaches one threshold. Rates and thresholds are set from what benign
//! traffic can show at most, not fitted to a simulator: a distill-grade request is a normal
//! thing for a person to send now and then (a CUSUM with p0 = 10% never drifts up below a
//! 31% rate), and a sweep over many areas is what separates a curriculum from a student.

use crate::account::Account;
use crate::campaign::ClusterView;
use crate::features::topic::{effective_areas, TOPICS};
use crate::sketch::Rates;
use std::sync::OnceLock;

/// The rates each CUSUM compares.
pub struct TestRates {
    pub distill: Rates,
    pub templated: Rates,
    pub resample: Rates,
    pub probe: Rates,
}

pub fn rates() -> &'static TestRates {
    static R: OnceLock<TestRates> = OnceLock::new();
    R.get_or_init(|| TestRates {
        distill: Rates::new(0.10, 0.60),
        templated: Rates::new(0.005, 0.05),
        resample: Rates::new(0.05, 0.50),
        probe: Rates::new(0.02, 0.30),
    })
}

/// CUSUM thresholds: `ln(1/h)`-style false alarm spacing of tens of thousands of benign
/// requests for the rates above.
pub const H_DISTILL: f32 = 24.0;
pub const H_TEMPLATED: f32 = 14.0;
pub const H_RESAMPLE: f32 = 16.0;
pub const H_PROBE: f32 = 14.0;
pub const H_CLUSTER: f32 = 24.0;
/// Distinct `logit_bias` token ids that make a sweep (with logprobs; four times as many
/// without, where only the argmax leaks).
pub const BIAS_SWEEP_IDS: f64 = 128.0;
/// New embedding inputs, over an even spread of areas, that make a harvest.
pub const EMBED_HARVEST_INPUTS: f64 = 5000.0;
/// The flag level.
pub const FLAG_RISK: f64 = 0.8;
/// Evidence per test is capped, so one runaway test does not hide the others' reasons.
const CAP: f64 = 4.0;

/// One reason, with the evidence it contributed.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    /// A stable name: `distill`, `templated`, `campaign`, `resample`, `logit_bias_sweep`,
    /// `embedding_harvest`, `safety_probing`, `automation`.
    pub code: &'static str,
    pub evidence: f64,
    pub detail: String,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:.2}): {}", self.code, self.evidence, self.detail)
    }
}

/// An account's risk and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assessment {
    pub evidence: f64,
    pub risk: f64,
    pub reasons: Vec<Reason>,
}

impl Assessment {
    pub fn flagged(&self) -> bool {
        self.risk >= FLAG_RISK
    }
}

/// How much a sweep over areas strengthens distill evidence: `(areas - 2) / 6` of the
/// effective number of areas, from a tenth (one or two areas: a student, a product) to
/// whole (eight or more: a curriculum). A narrow campaign is still caught, on ten times
/// the evidence.
fn sweep_factor(topics: &[u32; TOPICS]) -> f64 {
    ((effective_areas(topics) - 2.0) / 6.0).clamp(0.1, 1.0)
}

pub fn assess(a: &Account, cluster: Option<&ClusterView<'_>>) -> Assessment {
    let mut reasons = Vec::new();
    let mut add = |code, evidence: f64, detail: String| {
        let evidence = evidence.min(CAP);
        if evidence >= 0.05 {
            reasons.push(Reason {
                code,
                evidence,
                detail,
            });
        }
    };
    let t = &a.tests;
    let text_requests: u32 = a.topics.iter().sum();
    let share = |n: u32| {
        if text_requests == 0 {
            0.0
        } else {
            100.0 * f64::from(n) / f64::from(text_requests)
        }
    };
    let sweep = sweep_factor(&a.distill_topics);
    add(
        "distill",
        f64::from(t.distill.s / H_DISTILL) * sweep,
        format!(
            "{} of {} text requests distill-grade ({:.0}%: one-shot, reasoning or data asked, much output), over {:.1} effective areas",
            a.distill_requests,
            text_requests,
            share(a.distill_requests),
            effective_areas(&a.distill_topics)
        ),
    );
    add(
        "templated",
        f64::from(t.templated.s / H_TEMPLATED),
        format!(
            "{} distill-grade requests on templates the account keeps reusing with new slot values; top template {:.0}% of its distill-grade requests",
            a.templated_requests,
            100.0 * a.top_template_share()
        ),
    );
    add(
        "resample",
        f64::from(t.resample.s / H_RESAMPLE),
        format!(
            "{} repeats of prompts already sent, sampled (n > 1 or logprobs, temperature >= 0.7)",
            a.repeated_prompts
        ),
    );
    if a.bias_requests >= 5 {
        let ids = a.bias_ids.estimate();
        let with_logprobs = a.bias_with_logprobs * 2 >= a.bias_requests;
        let scale = if with_logprobs {
            BIAS_SWEEP_IDS
        } else {
            4.0 * BIAS_SWEEP_IDS
        };
        add(
            "logit_bias_sweep",
            ids / scale,
            format!(
                "~{ids:.0} distinct token ids biased over {} requests ({} with logprobs)",
                a.bias_requests, a.bias_with_logprobs
            ),
        );
    }
    if a.embed_inputs > 0 {
        let spread = ((effective_areas(&a.embed_topics) - 3.0) / 5.0).clamp(0.0, 1.0);
        add(
            "embedding_harvest",
            a.embed_new as f64 / EMBED_HARVEST_INPUTS * spread,
            format!(
                "{} new texts embedded of {}, over {:.1} effective areas",
                a.embed_new,
                a.embed_inputs,
                effective_areas(&a.embed_topics)
            ),
        );
    }
    add(
        "safety_probing",
        0.5 * f64::from(t.probe.s / H_PROBE),
        format!("{} guard findings in {} requests", a.findings, a.requests),
    );
    if let Some(c) = cluster {
        if c.members > 1 && a.distill_requests > 0 {
            add(
                "campaign",
                f64::from(c.test.s / H_CLUSTER) * sweep_factor(c.distill_topics),
                format!(
                    "cluster {} of {} accounts linked by shared templates or infrastructure, {} distill-grade requests together",
                    c.id, c.members, c.distill_requests
                ),
            );
        }
    }
    let before: f64 = reasons.iter().map(|r| r.evidence).sum();
    if let Some(spread) = a.timing_spread() {
        if spread < 0.3 && before >= 0.3 {
            reasons.push(Reason {
                code: "automation",
                evidence: 0.15,
                detail: format!("machine-regular timing (log-gap spread {spread:.2})"),
            });
        }
    }
    reasons.sort_by(|x, y| y.evidence.total_cmp(&x.evidence));
    let evidence: f64 = reasons.iter().map(|r| r.evidence).sum();
    Assessment {
        evidence,
        risk: 1.0 - 0.2f64.powf(evidence),
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_threshold_of_evidence_is_the_flag_level() {
        assert!((1.0 - 0.2f64.powf(1.0) - FLAG_RISK).abs() < 1e-12);
    }

    #[test]
    fn the_distill_test_never_drifts_up_below_a_third() {
        let r = rates().distill;
        let mut c = crate::sketch::Cusum::default();
        let mut rng = fastrand::Rng::with_seed(3);
        let mut peak: f32 = 0.0;
        for _ in 0..20_000 {
            c.step(rng.f64() < 0.2, r);
            peak = peak.max(c.s);
        }
        assert!(peak < H_DISTILL, "{peak}");
    }
}
