//! The detector end to end on simulated traffic: the smoke scenario (two days, every
//! persona, every campaign) written by the simulator, replayed and scored. A regression
//! guard on a seed of its own; the measured evaluation is the week scenario (README).

use portcullis_hunt::eval::evaluate;
use portcullis_hunt::replay::replay;
use portcullis_hunt::simulate::{simulate, Label, Scenario};
use portcullis_hunt::{Detector, Limits};

fn smoke(seed: u64) -> (Vec<u8>, Vec<Label>) {
    let scenario: Scenario = toml::from_str(include_str!("../scenarios/smoke.toml")).unwrap();
    let (mut traffic, mut labels) = (Vec::new(), Vec::new());
    simulate(&scenario, seed, &mut traffic, &mut labels).unwrap();
    let labels = String::from_utf8(labels)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (traffic, labels)
}

#[test]
fn campaigns_are_caught_and_no_legitimate_account_is_flagged() {
    let (traffic, labels) = smoke(23);
    let (report, stats) = evaluate(&traffic[..], &labels).unwrap();
    assert_eq!(stats.skipped, 0);
    assert!(report.events > 20_000, "{}", report.events);
    assert!(report.benign_accounts > 250);
    for (class, (n, flagged)) in &report.benign_by_class {
        assert_eq!(
            *flagged,
            0,
            "{flagged} of {n} {class} accounts flagged:\n{}",
            report.to_text()
        );
    }
    for c in &report.campaigns {
        assert!(
            c.detected,
            "{} not detected:\n{}",
            c.campaign,
            report.to_text()
        );
        let limit = match c.class.as_str() {
            "bulk" => 300,
            "logit_bias" => 200,
            "sybil" => c.requests / 50,
            "blended" => 3000,
            _ => c.requests,
        };
        let qud = c.queries_to_detection.unwrap();
        assert!(
            qud <= limit,
            "{}: {qud} > {limit}\n{}",
            c.campaign,
            report.to_text()
        );
    }
    let sybil = report
        .campaigns
        .iter()
        .find(|c| c.class == "sybil")
        .unwrap();
    assert!(sybil.accounts_flagged_within_a_day * 10 >= sybil.accounts * 9);
    assert_eq!(report.cluster_purity, Some(1.0));
}

#[test]
fn replay_reports_every_key_and_tenant_and_skips_what_is_not_a_request() {
    let (traffic, labels) = smoke(5);
    let mut input = b"not json\n{\"ts\": \"yesterday\", \"tenant\": \"t\", \"key\": \"k\", \"endpoint\": \"completions\", \"body\": {}}\n".to_vec();
    input.extend_from_slice(&traffic);
    let mut detector = Detector::new(Limits::default());
    let stats = replay(&input[..], &mut detector, |_, _, _, _| {}).unwrap();
    assert_eq!(stats.skipped, 2);
    assert_eq!(stats.first_skip.as_ref().unwrap().0, 1);
    let verdicts = detector.verdicts();
    let keys = verdicts
        .iter()
        .filter(|v| v.kind == portcullis_hunt::Subject::Key)
        .count();
    let senders: std::collections::HashSet<String> = String::from_utf8(traffic)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["key"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(keys, senders.len());
    assert!(senders.len() <= labels.len());
    let flagged: Vec<_> = verdicts.iter().filter(|v| v.flagged).collect();
    assert!(!flagged.is_empty());
    for v in flagged {
        assert!(v.risk >= 0.0 && v.peak_risk >= 0.8, "{v:?}");
        assert!(v.first_flagged_ts.is_some() && v.first_flagged_request_index.is_some());
        assert!(!v.reasons.is_empty());
    }
}
