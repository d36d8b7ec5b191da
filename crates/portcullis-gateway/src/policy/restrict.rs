//! Requests of a key the threat detector restricted (`[detect] ladder` action `restrict`):
//! what makes an answer worth more to a thief than to a user is taken out before the
//! upstream sees it: logprobs and top_logprobs, `logit_bias`, more than one sample, and
//! output beyond a cap. The caller still gets an answer.

use portcullis_openai::Api;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

/// One key's restriction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restriction {
    pub max_tokens: u64,
    pub expires_at_us: u64,
}

/// Restricted keys on this replica. Empty almost always: the path's check is one atomic
/// load then.
#[derive(Debug, Default)]
pub struct Restrictions {
    any: AtomicBool,
    keys: RwLock<HashMap<String, Restriction>>,
}

impl Restrictions {
    pub fn set(&self, key: &str, r: Restriction) {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        keys.insert(key.to_owned(), r);
        self.any.store(true, Ordering::Release);
    }

    /// Every restriction at once, as the store holds them.
    pub fn replace(&self, all: HashMap<String, Restriction>) {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        *keys = all;
        self.any.store(!keys.is_empty(), Ordering::Release);
    }

    pub fn clear(&self, key: &str) {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        keys.remove(key);
        self.any.store(!keys.is_empty(), Ordering::Release);
    }

    /// The restriction in force for `key` at `now_us`.
    pub fn get(&self, key: &str, now_us: u64) -> Option<Restriction> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.get(key).copied().filter(|r| r.expires_at_us > now_us)
    }
}

/// Applies `r` to a request body; returns whether anything changed.
pub fn apply(api: &dyn Api, body: &mut Map<String, Value>, r: Restriction) -> bool {
    let mut changed = false;
    for field in ["logprobs", "top_logprobs", "logit_bias", "best_of"] {
        changed |= body.remove(field).is_some();
    }
    if let Some(n) = body.get_mut("n") {
        if n.as_u64().is_none_or(|n| n > 1) {
            *n = json!(1);
            changed = true;
        }
    }
    if let Some(include) = body.get_mut("include").and_then(Value::as_array_mut) {
        let before = include.len();
        include.retain(|v| !v.as_str().is_some_and(|s| s.contains("logprobs")));
        changed |= include.len() != before;
    }
    if let Some(limit) = api.output_limit() {
        let mut set = false;
        for field in limit.fields {
            if let Some(v) = body.get_mut(*field).filter(|v| !v.is_null()) {
                if v.as_u64().is_none_or(|asked| asked > r.max_tokens) {
                    *v = json!(r.max_tokens);
                    changed = true;
                }
                set = true;
            }
        }
        if !set {
            body.insert(limit.default_field.to_owned(), json!(r.max_tokens));
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::Endpoint;

    #[test]
    fn takes_out_what_extraction_needs_and_keeps_the_ask() {
        let api = portcullis_openai::api(Endpoint::ChatCompletions).unwrap();
        let mut body = json!({
            "model": "m", "messages": [{"role": "user", "content": "hi"}],
            "logprobs": true, "top_logprobs": 20, "logit_bias": {"15": 100},
            "n": 4, "max_tokens": 8192, "temperature": 1.0
        })
        .as_object()
        .unwrap()
        .clone();
        let r = Restriction {
            max_tokens: 256,
            expires_at_us: u64::MAX,
        };
        assert!(apply(api, &mut body, r));
        let v = Value::Object(body.clone());
        assert!(v.get("logprobs").is_none() && v.get("top_logprobs").is_none());
        assert!(v.get("logit_bias").is_none());
        assert_eq!(
            (v["n"].as_u64(), v["max_tokens"].as_u64()),
            (Some(1), Some(256))
        );
        assert_eq!(v["messages"][0]["content"], "hi");
        assert_eq!(v["temperature"], 1.0);
        assert!(!apply(api, &mut body, r), "applying twice changes nothing");
    }

    #[test]
    fn a_restriction_expires_and_clears() {
        let t = Restrictions::default();
        assert_eq!(t.get("k", 0), None);
        let r = Restriction {
            max_tokens: 1,
            expires_at_us: 100,
        };
        t.set("k", r);
        assert_eq!(t.get("k", 50), Some(r));
        assert_eq!(t.get("k", 100), None);
        t.clear("k");
        assert_eq!(t.get("k", 50), None);
    }
}
