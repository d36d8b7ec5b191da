//! Evaluation of the detector against labelled traffic: account-level ROC, per-persona false
//! positives, queries to detection per campaign, sybil recall within a day, cluster purity,
//! and the detector's cost per request.

use crate::detector::{Detector, Limits, Subject, Verdict};
use crate::replay::{replay, ReplayStats};
use crate::simulate::Label;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;

/// One campaign's results.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignResult {
    pub campaign: String,
    pub class: String,
    pub accounts: usize,
    /// Campaign requests in the traffic.
    pub requests: u64,
    pub detected: bool,
    /// Campaign requests (over all its accounts) served before its first flag.
    pub queries_to_detection: Option<u64>,
    /// The same, as a share of the campaign's requests.
    pub share_of_budget: Option<f64>,
    /// The median, over flagged accounts, of the account's own request count at its flag.
    pub median_account_requests_to_flag: Option<u32>,
    pub accounts_flagged: usize,
    /// Accounts flagged within 24 simulated hours of the campaign's first flag.
    pub accounts_flagged_within_a_day: usize,
    pub hours_to_first_flag: Option<f64>,
}

/// Everything `eval` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub events: u64,
    pub benign_accounts: usize,
    pub attack_accounts: usize,
    /// Flagged benign accounts / benign accounts, and flagged attack accounts / attack.
    pub fpr: f64,
    pub tpr: f64,
    /// Attack accounts whose peak risk exceeds every benign account's but the top 0.1%.
    pub tpr_at_fpr_0_1pct: f64,
    pub threshold_at_fpr_0_1pct: f64,
    /// Per benign persona: accounts and flagged accounts.
    pub benign_by_class: BTreeMap<String, (usize, usize)>,
    pub campaigns: Vec<CampaignResult>,
    /// Flagged accounts in clusters that hold an attack account: the share that are attack.
    pub cluster_purity: Option<f64>,
    pub detector_p50_us: f64,
    pub detector_p99_us: f64,
    pub requests_per_second: f64,
    /// The benign accounts flagged, with their reasons (to read, not to count).
    pub false_positives: Vec<Verdict>,
}

/// Replays `traffic` through a fresh detector and scores it against `labels`.
pub fn evaluate(traffic: impl BufRead, labels: &[Label]) -> std::io::Result<(Report, ReplayStats)> {
    let by_key: HashMap<&str, &Label> = labels.iter().map(|l| (l.key.as_str(), l)).collect();
    let mut detector = Detector::new(Limits::default());
    #[derive(Default)]
    struct Track {
        requests: u64,
        first_flag: Option<(u64, f64)>,
        flags: Vec<(f64, u32)>,
        first_ts: Option<f64>,
    }
    let mut tracks: HashMap<String, Track> = HashMap::new();
    let stats = replay(traffic, &mut detector, |_, event, ts, outcome| {
        let Some(label) = by_key.get(event.key.as_str()) else {
            return;
        };
        let Some(campaign) = &label.campaign else {
            return;
        };
        let t = tracks.entry(campaign.clone()).or_default();
        t.requests += 1;
        t.first_ts.get_or_insert(ts);
        if outcome.key_newly_flagged {
            if t.first_flag.is_none() {
                t.first_flag = Some((t.requests, ts));
            }
            t.flags.push((ts, 0));
        }
    })?;
    let verdicts = detector.verdicts();
    let keys: Vec<&Verdict> = verdicts.iter().filter(|v| v.kind == Subject::Key).collect();
    let verdict_of: HashMap<&str, &Verdict> = keys.iter().map(|v| (v.id.as_str(), *v)).collect();

    let mut benign_by_class: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut benign, mut attack, mut fp, mut tp) = (0, 0, 0, 0);
    let mut benign_peaks = Vec::new();
    let mut attack_peaks = Vec::new();
    let mut false_positives = Vec::new();
    for l in labels {
        let v = verdict_of.get(l.key.as_str());
        let flagged = v.is_some_and(|v| v.flagged);
        let peak = v.map_or(0.0, |v| v.peak_risk);
        if l.label == "attack" {
            attack += 1;
            tp += usize::from(flagged);
            attack_peaks.push(peak);
        } else {
            benign += 1;
            fp += usize::from(flagged);
            benign_peaks.push(peak);
            let e = benign_by_class.entry(l.class.clone()).or_default();
            e.0 += 1;
            e.1 += usize::from(flagged);
            if flagged {
                false_positives.push((*v.expect("flagged has a verdict")).clone());
            }
        }
    }
    // The threshold that admits at most 0.1% of benign accounts (strictly above the rest).
    benign_peaks.sort_by(|a, b| b.total_cmp(a));
    let allowed = benign / 1000;
    let threshold = benign_peaks.get(allowed).copied().unwrap_or(0.0);
    let tpr_at = if attack == 0 {
        0.0
    } else {
        attack_peaks.iter().filter(|&&p| p > threshold).count() as f64 / attack as f64
    };

    let mut campaigns: BTreeMap<String, Vec<&Label>> = BTreeMap::new();
    for l in labels {
        if let Some(c) = &l.campaign {
            campaigns.entry(c.clone()).or_default().push(l);
        }
    }
    let mut results = Vec::new();
    for (name, members) in &campaigns {
        let t = tracks.remove(name).unwrap_or_default();
        let mut flag_ts: Vec<f64> = Vec::new();
        let mut per_account = Vec::new();
        for l in members {
            if let Some(v) = verdict_of.get(l.key.as_str()).filter(|v| v.flagged) {
                if let Some(ts) = v
                    .first_flagged_ts
                    .as_deref()
                    .and_then(crate::detector::parse_ts)
                {
                    flag_ts.push(ts);
                }
                if let Some(n) = v.first_flagged_request_index {
                    per_account.push(n);
                }
            }
        }
        per_account.sort_unstable();
        let first = t.first_flag;
        let within_day = first.map_or(0, |(_, ts0)| {
            flag_ts.iter().filter(|&&ts| ts <= ts0 + 86_400.0).count()
        });
        results.push(CampaignResult {
            campaign: name.clone(),
            class: members[0].class.clone(),
            accounts: members.len(),
            requests: t.requests,
            detected: first.is_some(),
            queries_to_detection: first.map(|(n, _)| n),
            share_of_budget: first.map(|(n, _)| n as f64 / t.requests.max(1) as f64),
            median_account_requests_to_flag: per_account.get(per_account.len() / 2).copied(),
            accounts_flagged: flag_ts.len(),
            accounts_flagged_within_a_day: within_day,
            hours_to_first_flag: first.zip(t.first_ts).map(|((_, f), s)| (f - s) / 3600.0),
        });
    }

    // Purity: clusters with a flagged attack account; the share of their flagged members
    // that are attack accounts.
    let mut clusters: HashMap<&str, Vec<&Verdict>> = HashMap::new();
    for v in &keys {
        if let Some(c) = &v.cluster {
            clusters.entry(c.as_str()).or_default().push(v);
        }
    }
    let is_attack = |key: &str| by_key.get(key).is_some_and(|l| l.label == "attack");
    let (mut pure, mut all) = (0usize, 0usize);
    for members in clusters.values() {
        if !members.iter().any(|v| v.flagged && is_attack(&v.id)) {
            continue;
        }
        for v in members.iter().filter(|v| v.flagged) {
            all += 1;
            pure += usize::from(is_attack(&v.id));
        }
    }
    let report = Report {
        events: stats.events,
        benign_accounts: benign,
        attack_accounts: attack,
        fpr: fp as f64 / benign.max(1) as f64,
        tpr: tp as f64 / attack.max(1) as f64,
        tpr_at_fpr_0_1pct: tpr_at,
        threshold_at_fpr_0_1pct: threshold,
        benign_by_class,
        campaigns: results,
        cluster_purity: (all > 0).then(|| pure as f64 / all as f64),
        detector_p50_us: stats.percentile_us(50.0),
        detector_p99_us: stats.percentile_us(99.0),
        requests_per_second: stats.events as f64 / stats.wall_seconds.max(1e-9),
        false_positives,
    };
    Ok((report, stats))
}

/// Reads a labels file (one JSON object per line).
pub fn read_labels(input: impl BufRead) -> anyhow::Result<Vec<Label>> {
    let mut out = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .map_err(|e| anyhow::anyhow!("labels line {}: {e}", n + 1))?,
        );
    }
    Ok(out)
}

impl Report {
    /// A table for people.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} requests; {} benign and {} attack accounts",
            self.events, self.benign_accounts, self.attack_accounts
        );
        let _ = writeln!(
            s,
            "flagged: TPR {:.1}%  FPR {:.3}%   ROC: TPR {:.1}% at FPR <= 0.1% (risk > {:.3})",
            100.0 * self.tpr,
            100.0 * self.fpr,
            100.0 * self.tpr_at_fpr_0_1pct,
            self.threshold_at_fpr_0_1pct
        );
        let _ = writeln!(s, "benign persona       accounts  flagged");
        for (class, (n, f)) in &self.benign_by_class {
            let _ = writeln!(s, "  {class:<18} {n:>8}  {f:>7}");
        }
        let _ = writeln!(
            s,
            "campaign             accounts  requests  detected  queries-to-detection  share    acct-median  flagged  within-24h  hours"
        );
        for c in &self.campaigns {
            let _ = writeln!(
                s,
                "  {:<18} {:>8}  {:>8}  {:>8}  {:>20}  {:>6}  {:>11}  {:>7}  {:>10}  {:>5}",
                c.campaign,
                c.accounts,
                c.requests,
                c.detected,
                c.queries_to_detection.map_or("-".into(), |n| n.to_string()),
                c.share_of_budget
                    .map_or("-".into(), |x| format!("{:.2}%", 100.0 * x)),
                c.median_account_requests_to_flag
                    .map_or("-".into(), |n| n.to_string()),
                c.accounts_flagged,
                c.accounts_flagged_within_a_day,
                c.hours_to_first_flag
                    .map_or("-".into(), |h| format!("{h:.1}")),
            );
        }
        let _ = writeln!(
            s,
            "cluster purity: {}",
            self.cluster_purity
                .map_or("-".into(), |p| format!("{:.2}%", 100.0 * p))
        );
        let _ = writeln!(
            s,
            "detector: p50 {:.1} µs, p99 {:.1} µs per request; {:.0} requests/s in replay (JSON parsing included)",
            self.detector_p50_us, self.detector_p99_us, self.requests_per_second
        );
        for v in self.false_positives.iter().take(10) {
            let _ = writeln!(
                s,
                "false positive {} ({}): {}",
                v.id,
                v.risk,
                v.reasons.join("; ")
            );
        }
        s
    }
}
