//! What the detector keeps per account (a key, or a tenant as a whole): a fixed-size summary
//! of its behaviour, about 1 KiB, never its requests.

use crate::features::topic::TOPICS;
use crate::features::Observation;
use crate::sketch::{Cusum, DistinctCount, Moments, RecentSet};

/// Template counters per account.
pub const TEMPLATE_SLOTS: usize = 32;
/// Uses of one template before its next distill-grade use counts as templated.
pub const TEMPLATE_REUSE: u32 = 3;

/// The evidence tests an account runs, with the rates they compare (see `risk`).
#[derive(Debug, Clone, Default)]
pub struct Tests {
    /// Distill-grade requests (one-shot, reasoning or data asked for, much output).
    pub distill: Cusum,
    /// Distill-grade requests on a template the account itself keeps reusing with other
    /// slot values.
    pub templated: Cusum,
    /// Samples of a prompt already sent, with several samples or logprobs at temperature.
    pub resample: Cusum,
    /// Guard findings (injection, leak probes).
    pub probe: Cusum,
}

/// One account's behaviour so far.
#[derive(Debug, Clone)]
pub struct Account {
    /// A number no other account in this detector's life had (clusters refer to it).
    pub serial: u64,
    pub requests: u32,
    pub first_ts: f64,
    pub last_ts: f64,
    pub tests: Tests,
    pub distill_requests: u32,
    pub templated_requests: u32,
    /// Areas of every text request, and of the distill-grade ones.
    pub topics: [u32; TOPICS],
    pub distill_topics: [u32; TOPICS],
    /// Recent prompts (exact), to tell new prompts from repeats.
    pub seen_prompts: RecentSet,
    pub repeated_prompts: u32,
    /// Distinct token ids seen in `logit_bias`, and in requests that also asked logprobs.
    pub bias_ids: DistinctCount,
    pub bias_requests: u32,
    pub bias_with_logprobs: u32,
    pub logprob_requests: u32,
    /// Embedding inputs: how many, how many new, over which areas.
    pub embed_inputs: u64,
    pub embed_new: u64,
    pub embed_topics: [u32; TOPICS],
    pub seen_embed: RecentSet,
    /// Log inter-arrival times, for how machine-regular the account's timing is.
    pub gaps: Moments,
    pub output_tokens: u64,
    pub input_tokens: u64,
    pub max_tokens_large: u32,
    pub refusals: u32,
    pub findings: u32,
    /// The skeletons of the account's distill-grade requests, counted by Misra-Gries (an
    /// undercount by at most 1/33 of those requests, never an overcount: a diverse account
    /// never shows a template it does not have).
    pub templates: [(u32, u32); TEMPLATE_SLOTS],
    /// The first time the account's risk reached the flag level: when, and at which of its
    /// requests.
    pub flagged_at: Option<(f64, u32)>,
    pub peak_risk: f32,
}

impl Account {
    pub fn new(serial: u64, ts: f64) -> Account {
        Account {
            serial,
            requests: 0,
            first_ts: ts,
            last_ts: ts,
            tests: Tests::default(),
            distill_requests: 0,
            templated_requests: 0,
            topics: [0; TOPICS],
            distill_topics: [0; TOPICS],
            seen_prompts: RecentSet::new(),
            repeated_prompts: 0,
            bias_ids: DistinctCount::default(),
            bias_requests: 0,
            bias_with_logprobs: 0,
            logprob_requests: 0,
            embed_inputs: 0,
            embed_new: 0,
            embed_topics: [0; TOPICS],
            seen_embed: RecentSet::new(),
            gaps: Moments::default(),
            output_tokens: 0,
            input_tokens: 0,
            max_tokens_large: 0,
            refusals: 0,
            findings: 0,
            templates: [(0, 0); TEMPLATE_SLOTS],
            flagged_at: None,
            peak_risk: 0.0,
        }
    }

    /// Folds one request in.
    pub fn observe(&mut self, o: &Observation) {
        if self.requests > 0 && o.ts >= self.last_ts {
            self.gaps
                .push(((o.ts - self.last_ts).max(0.001)).ln() as f32);
        }
        self.requests = self.requests.saturating_add(1);
        self.last_ts = self.last_ts.max(o.ts);
        self.input_tokens += u64::from(o.input_tokens);
        self.output_tokens += u64::from(o.output_tokens);
        self.refusals += u32::from(o.refused);
        self.findings = self.findings.saturating_add(o.findings);
        let r = crate::risk::rates();
        self.tests.probe.step(o.findings > 0, r.probe);
        if o.logprobs {
            self.logprob_requests += 1;
        }
        if !o.logit_bias.is_empty() {
            self.bias_requests += 1;
            self.bias_with_logprobs += u32::from(o.logprobs);
            for &id in &o.logit_bias {
                self.bias_ids.insert(u64::from(id));
            }
        }
        if o.embed_inputs > 0 {
            self.embed_inputs += u64::from(o.embed_inputs);
            for &h in &o.embed_sketches {
                if !self.seen_embed.insert(h) {
                    self.embed_new += 1;
                }
            }
            self.embed_topics[o.topic as usize] += 1;
            return;
        }
        if !o.endpoint.generates() {
            return;
        }
        self.topics[o.topic as usize] += 1;
        self.max_tokens_large += u32::from(o.max_tokens.is_some_and(|m| m >= 2000));
        let repeat = self.seen_prompts.insert(o.prompt);
        self.repeated_prompts += u32::from(repeat);
        let sampling = o.temperature.unwrap_or(1.0) >= 0.7 && (o.n >= 2 || o.logprobs);
        self.tests.resample.step(repeat && sampling, r.resample);
        self.tests.distill.step(o.distill, r.distill);
        let templated = o.distill
            && o.skeleton.distinctive()
            && self.count_template(o.skeleton.hash as u32) > TEMPLATE_REUSE;
        self.tests.templated.step(templated, r.templated);
        if o.distill {
            self.distill_requests += 1;
            self.distill_topics[o.topic as usize] += 1;
        }
        self.templated_requests += u32::from(templated);
    }

    /// Counts a distill-grade request's template; returns its count.
    fn count_template(&mut self, hash: u32) -> u32 {
        let hash = hash.max(1);
        if let Some(slot) = self.templates.iter_mut().find(|(h, _)| *h == hash) {
            slot.1 += 1;
            return slot.1;
        }
        if let Some(free) = self.templates.iter_mut().find(|(_, n)| *n == 0) {
            *free = (hash, 1);
            return 1;
        }
        // Misra-Gries: no room, so every count (and this new one) goes down by one.
        for slot in &mut self.templates {
            slot.1 -= 1;
        }
        0
    }

    /// The share of the account's distill-grade requests on its most reused template.
    pub fn top_template_share(&self) -> f64 {
        let top = self.templates.iter().map(|s| s.1).max().unwrap_or(0);
        if self.distill_requests == 0 {
            0.0
        } else {
            f64::from(top) / f64::from(self.distill_requests)
        }
    }

    /// The share of the account's text requests that are distill-grade (0 below three).
    pub fn distill_share(&self) -> f64 {
        let text: u32 = self.topics.iter().sum();
        if text < 3 {
            0.0
        } else {
            f64::from(self.distill_requests) / f64::from(text)
        }
    }

    /// How regular the account's timing is: the standard deviation of log inter-arrival
    /// times (a person is above 1; a fixed-rate script near 0). `None` below 30 gaps.
    pub fn timing_spread(&self) -> Option<f32> {
        (self.gaps.n >= 30).then(|| self.gaps.std())
    }

    /// Approximate bytes this account takes in memory.
    pub const BYTES: usize = std::mem::size_of::<Account>() + 64 * 8 * 2 + 16 * 8;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_fits_in_two_kib() {
        const { assert!(Account::BYTES <= 2048) };
    }

    #[test]
    fn misra_gries_keeps_a_heavy_template_and_never_invents_one() {
        let mut a = Account::new(1, 0.0);
        let mut heavy = 0;
        for i in 0..1000u32 {
            if i % 10 == 0 {
                heavy = a.count_template(7);
            } else {
                assert!(
                    a.count_template(1000 + i) <= 1,
                    "a template used once counts once"
                );
            }
        }
        assert!(heavy >= 100 - 1000 / 33, "{heavy}");
    }
}
