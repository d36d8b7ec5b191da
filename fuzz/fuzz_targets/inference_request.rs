//! Any body: parsing never panics, and an accepted body always rewrites to valid JSON that
//! carries the upstream model name and the caller's other fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_openai::InferenceRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = InferenceRequest::parse(data) {
        let fields = request.body.len();
        let out = request.into_upstream_body(&serde_json::json!("upstream"));
        let v: serde_json::Value = serde_json::from_slice(&out).expect("rewritten body is JSON");
        assert_eq!(v["model"], "upstream");
        assert_eq!(v.as_object().unwrap().len(), fields);
    }
});
