//! The threat detector on arbitrary input: any request body (JSON or not, any shape) and
//! any recorded-traffic line are read without panicking, and the detector's state stays
//! within its bounds whatever it is fed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_hunt::features::skeleton::{simhash, skeleton};
use portcullis_hunt::{Detector, Endpoint, Limits, Observation, RequestInput};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let endpoint = match selector % 5 {
        0 => Endpoint::Chat,
        1 => Endpoint::Completions,
        2 => Endpoint::Responses,
        3 => Endpoint::Embeddings,
        _ => Endpoint::Other,
    };
    if let Ok(text) = std::str::from_utf8(rest) {
        let _ = skeleton(text);
        let _ = simhash(text);
        let _ = portcullis_hunt::features::cues::cues(&[text]);
        let _ = portcullis_hunt::features::topic::topic(text);
    }
    let body: serde_json::Value = serde_json::from_slice(rest).unwrap_or_default();
    let input = RequestInput {
        ts: f64::from(selector),
        tenant: "t",
        key: "k",
        ip: "203.0.113.1",
        user_agent: "fuzz",
        header_order: "host,user-agent",
        tls: "",
        endpoint,
        body: &body,
        response: Some(&body),
        status: 200,
        findings: u32::from(selector & 1),
    };
    let o = Observation::from_request(&input);
    assert!(o.logit_bias.len() <= portcullis_hunt::features::MAX_BIAS_IDS);
    let mut d = Detector::new(Limits { keys: 4, tenants: 2 });
    for _ in 0..3 {
        let out = d.observe(&input);
        assert!((0.0..=1.0).contains(&out.key.risk), "{}", out.key.risk);
    }
    let mut replayed = Detector::new(Limits { keys: 4, tenants: 2 });
    let _ = portcullis_hunt::replay::replay(rest, &mut replayed, |_, _, _, _| {});
    assert!(replayed.stats().keys <= 4);
});
