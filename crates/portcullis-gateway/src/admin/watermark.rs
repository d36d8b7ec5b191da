//! `POST /admin/v1/watermark/detect`: the forensic watermark's test, run by the gateway that
//! holds the secrets (the caller never sees them). Operators only; each run is audited.
//!
//! Body: `{"texts": ["...", ...]}` (a suspect model's answers) and/or `{"embeddings":
//! [{"text": "...", "embedding": [...]}, ...]}` (the suspect encoder's vectors for the probes
//! of `GET /admin/v1/watermark/probes`), with `"tenants": ["acme", ...]` or `"tenants":
//! "all"` (every tenant in the store) and `"alpha"` (default 1e-6). The answer is the text
//! detection (every key of every secret version, corrected for their number) and the
//! embedding detection (the global key of every version).

use super::reply::{invalid, ok, query_param, store_error};
use super::Admin;
use crate::respond::GatewayBody;
use http::Response;
use portcullis_core::{ApiError, ErrorKind};
use portcullis_watermark::embed::{detect, EmbedKey};
use portcullis_watermark::{Evidence, KeyRing};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectRequest {
    #[serde(default)]
    texts: Vec<String>,
    #[serde(default)]
    embeddings: Vec<Probe>,
    #[serde(default)]
    tenants: Option<Value>,
    #[serde(default)]
    alpha: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Probe {
    text: String,
    embedding: Vec<f32>,
}

impl Admin<'_> {
    fn watermark_ring(&self) -> Result<Arc<KeyRing>, ApiError> {
        self.state.settings().watermark.clone().ok_or_else(|| {
            ApiError::new(
                ErrorKind::InvalidRequest,
                "No watermark secret is configured (see `[guard] watermark_secrets_env`).",
            )
            .with_code("watermark_not_configured")
        })
    }

    pub(super) async fn watermark_detect(
        &self,
        body: &[u8],
    ) -> Result<Response<GatewayBody>, ApiError> {
        self.actor.require_global()?;
        let ring = self.watermark_ring()?;
        let request: DetectRequest = serde_json::from_slice(body).map_err(|e| {
            invalid(
                "body",
                &format!("Expected {{texts, embeddings, tenants, alpha}}: {e}."),
            )
        })?;
        let alpha = request.alpha.unwrap_or(1e-6);
        if !(alpha > 0.0 && alpha < 1.0) {
            return Err(invalid("alpha", "`alpha` must be between 0 and 1."));
        }
        let tenants: Vec<String> = match request.tenants {
            None => Vec::new(),
            Some(Value::String(all)) if all == "all" => self
                .state
                .store
                .tenants()
                .await
                .map_err(store_error)?
                .into_iter()
                .map(|t| t.name)
                .collect(),
            Some(Value::Array(names)) => names
                .iter()
                .map(|n| n.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("tenants", "`tenants` must be names or \"all\"."))?,
            Some(_) => return Err(invalid("tenants", "`tenants` must be names or \"all\".")),
        };
        let texts = (!request.texts.is_empty()).then(|| {
            let mut evidence = Evidence::new();
            for text in &request.texts {
                evidence.add_text(text);
            }
            evidence.score(&ring, &tenants, alpha)
        });
        let embeddings = (!request.embeddings.is_empty()).then(|| {
            let samples: Vec<(String, Vec<f32>)> = request
                .embeddings
                .into_iter()
                .map(|p| (p.text, p.embedding))
                .collect();
            let tests = ring.secrets().len();
            ring.secrets()
                .iter()
                .map(|s| detect(&EmbedKey::new(&s.global()), &s.version, &samples, tests))
                .collect::<Vec<_>>()
        });
        let detected = texts.as_ref().is_some_and(|d| d.detected)
            || embeddings
                .as_ref()
                .is_some_and(|e| e.iter().any(|d| d.p_adjusted <= alpha));
        self.audit(
            "watermark.detect",
            "watermark",
            &format!(
                "texts={} embeddings={} tenants={} detected={detected}",
                request.texts.len(),
                embeddings
                    .as_ref()
                    .map_or(0, |e| e.first().map_or(0, |d| d.backdoor + d.benign)),
                tenants.len()
            ),
        )
        .await?;
        ok(json!({"detected": detected, "alpha": alpha, "texts": texts, "embeddings": embeddings}))
    }

    /// `GET /admin/v1/watermark/probes?count=N`: verification texts for a suspect encoder, N
    /// with triggers and N without (default 100), from the current secret.
    pub(super) fn watermark_probes(&self, query: &str) -> Result<Response<GatewayBody>, ApiError> {
        self.actor.require_global()?;
        let ring = self.watermark_ring()?;
        let count = match query_param(query, "count") {
            None => 100,
            Some(n) => n
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=5000).contains(n))
                .ok_or_else(|| invalid("count", "`count` must be 1 to 5000."))?,
        };
        let probes = EmbedKey::new(&ring.current().global()).probes(count, probe_seed());
        let data: Vec<Value> = probes
            .into_iter()
            .map(|(text, _)| json!({"text": text}))
            .collect();
        ok(json!({"data": data}))
    }
}

/// A fresh seed per probe set, so two sets share no filler pattern.
fn probe_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
