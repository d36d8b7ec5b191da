//! From one request to its compact feature vector (`Observation`), off the request path.
//!
//! The gateway hands the detector the request body it already holds (a reference-counted
//! buffer) with the request record; replay hands it a recorded line. Both end here, so live
//! and offline detection read requests the same way.

pub mod cues;
pub mod minhash;
pub mod prompt;
pub mod skeleton;
pub mod topic;

use cues::Cues;
use prompt::{Endpoint, Prompt};
use serde_json::Value;
use skeleton::Skeleton;
use std::net::IpAddr;
use xxhash_rust::xxh3::xxh3_64;

/// One request as the detector receives it.
#[derive(Debug, Clone, Copy)]
pub struct RequestInput<'a> {
    /// Seconds since the Unix epoch (recorded time in replay).
    pub ts: f64,
    pub tenant: &'a str,
    pub key: &'a str,
    pub ip: &'a str,
    pub user_agent: &'a str,
    /// Header names in the order sent, comma-separated (empty: unknown).
    pub header_order: &'a str,
    /// The TLS hello's fingerprint (empty: unknown, or TLS ended before the gateway).
    pub tls: &'a str,
    pub endpoint: Endpoint,
    pub body: &'a Value,
    /// The answer, when known: its JSON, or the streamed text as a string.
    pub response: Option<&'a Value>,
    /// The HTTP status the caller got (0: unknown).
    pub status: u16,
    /// Guard findings on this request (injection, leak, ...).
    pub findings: u32,
}

/// Most `logit_bias` token ids kept per request (the API allows 300).
pub const MAX_BIAS_IDS: usize = 512;
/// Most embedding inputs sketched per request.
pub const MAX_EMBED_SKETCHES: usize = 64;

/// The compact feature vector of one request.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Observation {
    pub ts: f64,
    /// The IP prefix (/24 for IPv4, /48 for IPv6), hashed; 0 when unknown.
    pub ip_prefix: u64,
    /// The client fingerprint (user agent), hashed; 0 when unknown.
    pub client: u64,
    pub endpoint: Endpoint,
    pub skeleton: Skeleton,
    /// The exact prompt, hashed (system and last user turn).
    pub prompt: u64,
    pub simhash: u64,
    /// MinHash of the prompt's word 3-shingles (near-duplicate prompts across accounts).
    pub minhash: minhash::MinHash,
    pub topic: u8,
    pub cues: Cues,
    pub multi_turn: bool,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub n: u32,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    /// `logprobs` or `top_logprobs` asked for.
    pub logprobs: bool,
    pub top_logprobs: u32,
    pub logit_bias: Vec<u32>,
    /// Texts (or token arrays) to embed.
    pub embed_inputs: u32,
    /// A hash of each of the first `MAX_EMBED_SKETCHES` texts to embed.
    pub embed_sketches: Vec<u64>,
    pub findings: u32,
    pub refused: bool,
    pub status: u16,
    /// The request asks for a large amount of output (see [`Observation::harvests`]).
    pub harvest: bool,
    /// One-shot, asks for reasoning, rubric grading or data, and harvests: the kind of
    /// exchange that is worth most as training data.
    pub distill: bool,
}

/// The client fingerprint: the user agent, and where known the order of the header names
/// and the TLS hello (two libraries that claim the same user agent still send their headers
/// differently and shake hands differently).
pub fn client_fingerprint(user_agent: &str, header_order: &str, tls: &str) -> u64 {
    if user_agent.is_empty() && header_order.is_empty() && tls.is_empty() {
        return 0;
    }
    let mut h = xxh3_64(user_agent.as_bytes());
    if !header_order.is_empty() {
        h ^= xxh3_64(header_order.as_bytes()).rotate_left(1);
    }
    if !tls.is_empty() {
        h ^= xxh3_64(tls.as_bytes()).rotate_left(2);
    }
    h
}

impl Observation {
    pub fn from_request(req: &RequestInput<'_>) -> Observation {
        let prompt = Prompt::from_body(req.endpoint, req.body);
        let (answer, reported_tokens) = req
            .response
            .map(prompt::answer_text)
            .unwrap_or((String::new(), None));
        let output_tokens = reported_tokens.unwrap_or(answer.len() as u64 / 4) as u32;
        let input_tokens = (prompt.input_chars / 4) as u32;
        // A reasoning cue in the system prompt of a request that declares tools is an agent's
        // own prompt engineering ("think step by step before each tool call"), applied to
        // every turn of every user: only the user's own asks count there.
        let cues = if prompt.params.tools > 0 {
            cues::cues(&[&prompt.user])
        } else {
            cues::cues(&[&prompt.system, &prompt.user])
        };
        let topic_text = if prompt.endpoint_is_embeddings() {
            prompt.embed_inputs.first().map_or("", String::as_str)
        } else {
            &prompt.user
        };
        let embed_sketches: Vec<u64> = prompt
            .embed_inputs
            .iter()
            .take(MAX_EMBED_SKETCHES)
            .map(|t| xxh3_64(t.as_bytes()))
            .collect();
        let mut logit_bias = prompt.params.logit_bias;
        logit_bias.truncate(MAX_BIAS_IDS);
        let mut obs = Observation {
            ts: req.ts,
            ip_prefix: ip_prefix(req.ip),
            client: client_fingerprint(req.user_agent, req.header_order, req.tls),
            endpoint: req.endpoint,
            skeleton: skeleton::skeleton(&prompt.user),
            prompt: skeleton::fingerprint(&prompt.system, &prompt.user),
            simhash: skeleton::simhash(&prompt.user),
            minhash: minhash::minhash(&prompt.user),
            topic: topic::topic(topic_text),
            cues,
            multi_turn: prompt.multi_turn,
            input_tokens,
            output_tokens,
            n: prompt.params.n.max(1),
            max_tokens: prompt.params.max_tokens,
            temperature: prompt.params.temperature,
            logprobs: prompt.params.logprobs || prompt.params.top_logprobs > 0,
            top_logprobs: prompt.params.top_logprobs,
            logit_bias,
            embed_inputs: (prompt.embed_inputs.len() + prompt.embed_token_inputs) as u32,
            embed_sketches,
            findings: req.findings,
            refused: cues::refused(&answer),
            status: req.status,
            harvest: false,
            distill: false,
        };
        obs.harvest = obs.harvests(prompt.params.high_reasoning);
        obs.distill = obs.endpoint.generates() && !obs.multi_turn && obs.cues.any() && obs.harvest;
        obs
    }

    /// Whether the request asks for much output: a large `max_tokens`, several samples,
    /// high reasoning effort, or an answer long in itself or against its prompt. A caller
    /// that caps the answer below 1,000 tokens is not after whole worked answers (an
    /// evaluation harness's 512-token chain of thought), whatever the answer's length.
    fn harvests(&self, high_reasoning: bool) -> bool {
        if self.n >= 2 || high_reasoning {
            return true;
        }
        match self.max_tokens {
            Some(m) if m < 1000 => false,
            Some(m) if m >= 2000 => true,
            _ => {
                self.output_tokens >= 800
                    || (self.output_tokens >= 300
                        && self.output_tokens >= 4 * self.input_tokens.max(1))
            }
        }
    }
}

impl Prompt {
    fn endpoint_is_embeddings(&self) -> bool {
        !self.embed_inputs.is_empty() || self.embed_token_inputs > 0
    }
}

/// The /24 (IPv4) or /48 (IPv6) of an address, hashed; 0 for none or a malformed one.
pub fn ip_prefix(ip: &str) -> u64 {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let o = v4.octets();
            xxh3_64(&[4, o[0], o[1], o[2]])
        }
        Ok(IpAddr::V6(v6)) => {
            let o = v6.octets();
            let mut b = [6u8; 7];
            b[1..].copy_from_slice(&o[..6]);
            xxh3_64(&b)
        }
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_client_fingerprint_tells_libraries_apart_that_claim_one_user_agent() {
        let ua = "OpenAI/Python 1.0";
        assert_eq!(client_fingerprint("", "", ""), 0);
        assert_eq!(client_fingerprint(ua, "", ""), xxh3_64(ua.as_bytes()));
        let sdk = client_fingerprint(ua, "host,accept-encoding,connection,accept,user-agent", "");
        let script =
            client_fingerprint(ua, "host,user-agent,accept,accept-encoding,connection", "");
        assert_ne!(sdk, script);
        assert_ne!(sdk, client_fingerprint(ua, "", ""));
        assert_eq!(
            sdk,
            client_fingerprint(ua, "host,accept-encoding,connection,accept,user-agent", "")
        );
    }

    use super::*;
    use serde_json::json;

    fn observe(body: Value, response: Option<Value>) -> Observation {
        Observation::from_request(&RequestInput {
            ts: 0.0,
            tenant: "t",
            key: "k",
            ip: "203.0.113.9",
            user_agent: "ua",
            header_order: "",
            tls: "",
            endpoint: Endpoint::Chat,
            body: &body,
            response: response.as_ref(),
            status: 200,
            findings: 0,
        })
    }

    #[test]
    fn a_one_shot_reasoning_harvest_is_distill_grade() {
        let o = observe(
            json!({"messages": [{"role": "user", "content": "Explain step by step how a compiler works."}], "max_tokens": 4096}),
            None,
        );
        assert!(o.cues.reasoning && o.harvest && o.distill);
        assert_eq!(topic::TOPIC_NAMES[o.topic as usize], "code");
    }

    #[test]
    fn a_conversation_or_a_short_answer_is_not() {
        let conversation = observe(
            json!({"messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "Explain step by step how a compiler works."}
            ], "max_tokens": 4096}),
            None,
        );
        assert!(!conversation.distill);
        let short = observe(
            json!({"messages": [{"role": "user", "content": "Think step by step: 2+2?"}], "max_tokens": 64}),
            Some(
                json!({"choices": [{"message": {"content": "4"}}], "usage": {"completion_tokens": 1}}),
            ),
        );
        assert!(short.cues.reasoning && !short.harvest && !short.distill);
    }

    #[test]
    fn ip_prefixes_group_neighbours() {
        assert_eq!(ip_prefix("198.51.100.1"), ip_prefix("198.51.100.200"));
        assert_ne!(ip_prefix("198.51.100.1"), ip_prefix("198.51.101.1"));
        assert_eq!(ip_prefix("2001:db8:1:2::1"), ip_prefix("2001:db8:1:3::1"));
        assert_eq!(ip_prefix("nonsense"), 0);
    }
}
