//! The response side on arbitrary upstream bytes: framed into events, each read strictly and,
//! when it is a JSON object, run through the output filter chain (allow-list, redaction in
//! block and redact modes, leak check) of every endpoint, as a stream and as a whole answer.
//! Nothing may panic; a stopped chain stays stopped; a stream that ends releases what was
//! held.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::Endpoint;
use portcullis_gateway::filters::leak::LeakFilter;
use portcullis_gateway::filters::prune::Prune;
use portcullis_gateway::filters::redact::Redact;
use portcullis_gateway::filters::{Chain, Chunk, Flow, ResponseFilter};
use portcullis_guard::leak::LeakCheck;
use portcullis_openai::sse::{event_ends, Event};
use serde_json::Value;

fn chain(endpoint: Endpoint, block: bool) -> Chain {
    let api = portcullis_openai::api(endpoint).expect("an inference endpoint");
    let mut filters: Vec<Box<dyn ResponseFilter>> = vec![
        Box::new(Prune {
            system_fingerprint: false,
            logprobs: true,
            model: "public".into(),
        }),
        Box::new(Redact::new(block)),
    ];
    if let Some(check) = LeakCheck::new(Some("canary-7".into()), Some(("You are Zed, the bot.", 8)), block) {
        filters.push(Box::new(LeakFilter::new(check, "req".into())));
    }
    Chain::new(api, filters)
}

fuzz_target!(|data: &[u8]| {
    let endpoints = [
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::Responses,
        Endpoint::Embeddings,
    ];
    for (n, endpoint) in endpoints.into_iter().enumerate() {
        let block = n % 2 == 0;
        let mut stream = chain(endpoint, block);
        let mut start = 0;
        let mut stopped = false;
        for end in event_ends(data) {
            let Ok(event) = Event::parse(&data[start..end]) else {
                stopped = true;
                break;
            };
            start = end;
            let Some(payload) = event.data else { continue };
            let Ok(value @ Value::Object(_)) = serde_json::from_slice::<Value>(payload) else {
                continue;
            };
            let mut chunk = Chunk::new(value, true);
            if let Flow::Stop(_) = stream.on_chunk(&mut chunk) {
                stopped = true;
                break;
            }
            let _ = serde_json::to_vec(&chunk.value);
        }
        if !stopped {
            // The stream's end releases what redaction held, through the filters after it.
            if let Ok(events) = stream.flush() {
                for event in events {
                    let _ = serde_json::to_vec(&event);
                }
            }
        }
        if let Ok(value @ Value::Object(_)) = serde_json::from_slice::<Value>(data) {
            let mut whole = chain(endpoint, block);
            let mut chunk = Chunk::new(value, false);
            let _ = whole.on_chunk(&mut chunk);
        }
    }
});
