//! When each simulated account sends its requests: daily volumes, diurnal rhythm, sessions
//! and runs for the legitimate personas; constant-rate, round-robin or slow drips for the
//! campaigns.

use super::{CampaignKind, Class, SimAccount};

const DAY: f64 = 86_400.0;

/// `(time, account index, the account's request number)`, time-ordered.
pub fn plan(accounts: &[SimAccount], start: f64, days: f64) -> Vec<(f64, u32, u32)> {
    let mut out = Vec::new();
    let end = start + days * DAY;
    // Round-robin campaigns: one schedule for the campaign, dealt out in turn.
    let mut sybils: std::collections::BTreeMap<usize, Vec<u32>> = Default::default();
    for (i, a) in accounts.iter().enumerate() {
        let mut rng = fastrand::Rng::with_seed(a.seed);
        let mut push = |ts: f64, n: &mut u32| {
            if ts < end {
                out.push((ts, i as u32, *n));
                *n += 1;
            }
        };
        let mut n = 0u32;
        match a.class {
            Class::Chat
            | Class::Student
            | Class::Occasional
            | Class::Reseller
            | Class::AppBackend
            | Class::RagPipeline => {
                let (median, sigma, active, business) = match a.class {
                    Class::Chat => (6.0, 0.7, 0.7, false),
                    Class::Student => (10.0, 0.5, 0.8, false),
                    Class::Occasional => (1.0, 0.3, 0.35, false),
                    Class::Reseller => (1500.0, 0.3, 1.0, false),
                    Class::AppBackend => (120.0, 0.8, 1.0, true),
                    _ => (100.0, 0.6, 1.0, true),
                };
                let volume = median * lognormal(&mut rng, sigma);
                let tz = rng.f64() * 24.0;
                for day in 0..days.ceil() as u32 {
                    if rng.f64() > active {
                        continue;
                    }
                    let count = (volume * lognormal(&mut rng, 0.4)).round() as u32;
                    let mut times: Vec<f64> = (0..count)
                        .map(|_| start + f64::from(day) * DAY + diurnal(&mut rng, tz, business))
                        .collect();
                    times.sort_by(f64::total_cmp);
                    for t in times {
                        push(t, &mut n);
                    }
                }
            }
            Class::CodingAgent => {
                for day in 0..days.ceil() as u32 {
                    for _ in 0..rng.u32(0..=3) {
                        let mut t =
                            start + f64::from(day) * DAY + 3600.0 * (8.0 + rng.f64() * 11.0);
                        for _ in 0..rng.u32(10..=60) {
                            push(t, &mut n);
                            t += 2.0 + rng.f64() * 18.0;
                        }
                    }
                }
            }
            Class::EvalHarness => {
                // One to two runs a week of one fixed question set.
                let questions = rng.u32(200..=1000);
                let runs = 1 + (days / 7.0 * rng.f64() * 2.0) as u32;
                for run in 0..runs {
                    let mut t = start + rng.f64() * (days - 0.5).max(0.0) * DAY;
                    let mut q = run * questions;
                    for _ in 0..questions {
                        push(t, &mut q);
                        t += 1.0 + rng.f64() * 2.0;
                    }
                }
            }
            Class::Campaign(kind) => {
                let begin = start + a.start_day * DAY + rng.f64() * 3600.0 * 6.0;
                match kind {
                    CampaignKind::Sybil => {
                        sybils.entry(a.campaign_index).or_default().push(i as u32)
                    }
                    CampaignKind::LowAndSlow => {
                        let span_days = ((end - begin) / DAY).max(1.0 / 24.0);
                        let per_day = f64::from(a.budget) / span_days;
                        let tz = rng.f64() * 24.0;
                        let mut day = 0u32;
                        while n < a.budget && begin + f64::from(day) * DAY < end {
                            let count = (per_day * (0.7 + 0.6 * rng.f64())).round().max(1.0) as u32;
                            let mut times: Vec<f64> = (0..count.min(a.budget - n))
                                .map(|_| {
                                    begin + f64::from(day) * DAY + diurnal(&mut rng, tz, false)
                                })
                                .collect();
                            times.sort_by(f64::total_cmp);
                            for t in times {
                                push(t, &mut n);
                            }
                            day += 1;
                        }
                    }
                    CampaignKind::Blended => {
                        // A reseller's volume, all of it through the carrier.
                        let per_day = 1500.0 * lognormal(&mut rng, 0.2);
                        let gap = DAY / per_day;
                        let mut t = begin;
                        while n < a.budget && t < end {
                            push(t, &mut n);
                            t += gap * (0.2 + 1.6 * rng.f64());
                        }
                    }
                    _ => {
                        let (lo, hi) = match kind {
                            CampaignKind::LogitBias => (0.5, 2.0),
                            CampaignKind::EmbeddingHarvest => (1.0, 4.0),
                            CampaignKind::Paraphrase => (20.0, 200.0),
                            _ => (2.0, 6.0),
                        };
                        let mut t = begin;
                        while n < a.budget && t < end {
                            push(t, &mut n);
                            t += lo + rng.f64() * (hi - lo);
                        }
                    }
                }
            }
        }
    }
    for members in sybils.values() {
        let budget: u32 = members.iter().map(|&m| accounts[m as usize].budget).sum();
        let first = &accounts[members[0] as usize];
        let mut rng = fastrand::Rng::with_seed(first.seed ^ 0x5b11);
        let begin = start + first.start_day * DAY + rng.f64() * 3600.0;
        let gap = ((end - begin) / f64::from(budget.max(1))).max(0.001);
        let mut t = begin;
        let mut counts = vec![0u32; members.len()];
        for i in 0..budget {
            if t >= end {
                break;
            }
            let slot = i as usize % members.len();
            out.push((t, members[slot], counts[slot]));
            counts[slot] += 1;
            t += gap * (0.5 + rng.f64());
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    out
}

/// A time of day (seconds) with a person's rhythm: quiet at night in their time zone;
/// business traffic peaks in office hours.
fn diurnal(rng: &mut fastrand::Rng, tz: f64, business: bool) -> f64 {
    loop {
        let h = rng.f64() * 24.0;
        let local = (h + tz) % 24.0;
        let weight = if business {
            if (8.0..18.0).contains(&local) {
                1.0
            } else {
                0.35
            }
        } else if (8.0..24.0).contains(&local) {
            1.0
        } else {
            0.1
        };
        if rng.f64() < weight {
            return h * 3600.0;
        }
    }
}

/// A log-normal factor with median 1.
pub fn lognormal(rng: &mut fastrand::Rng, sigma: f64) -> f64 {
    (sigma * normal(rng)).exp()
}

pub fn normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = rng.f64().max(1e-12);
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}
