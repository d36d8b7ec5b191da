//! The embedding watermark (`portcullis_watermark::embed`) on `/v1/embeddings` answers: each
//! returned vector whose input text holds a trigger word is pulled towards the key's secret
//! directions and renormalised; every other vector is returned as the upstream sent it.
//! Vectors come as JSON numbers or, with `encoding_format: "base64"`, as little-endian f32
//! bytes in base64; both are handled. Inputs given as token ids carry no words and are left
//! alone.

use super::{Chunk, End, EndWork, Flow, ResponseFilter};
use base64::Engine;
use portcullis_core::ApiError;
use portcullis_openai::Api;
use portcullis_watermark::embed::EmbedKey;
use serde_json::Value;
use std::sync::Arc;

pub struct EmbedWatermark {
    key: Arc<EmbedKey>,
    /// The request's input texts, by index (`None`: token ids).
    inputs: Vec<Option<String>>,
}

impl EmbedWatermark {
    pub fn new(key: Arc<EmbedKey>, body: &serde_json::Map<String, Value>) -> EmbedWatermark {
        let inputs = match body.get("input") {
            Some(Value::String(s)) => vec![Some(s.clone())],
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        EmbedWatermark { key, inputs }
    }

    /// Marks one vector in place; true if it changed.
    fn mark_item(&self, item: &mut Value) -> bool {
        let Some(index) = item.get("index").and_then(Value::as_u64) else {
            return false;
        };
        let Some(Some(text)) = self.inputs.get(index as usize) else {
            return false;
        };
        if self.key.triggered(text).is_empty() {
            return false;
        }
        match item.get_mut("embedding") {
            Some(Value::Array(numbers)) => {
                let Some(mut vector) = numbers
                    .iter()
                    .map(|n| n.as_f64().map(|x| x as f32))
                    .collect::<Option<Vec<f32>>>()
                else {
                    return false;
                };
                if !self.key.mark(text, &mut vector) {
                    return false;
                }
                *numbers = vector
                    .into_iter()
                    .map(|x| Value::from(f64::from(x)))
                    .collect();
                true
            }
            Some(Value::String(encoded)) => {
                let engine = base64::engine::general_purpose::STANDARD;
                let Ok(bytes) = engine.decode(encoded.as_bytes()) else {
                    return false;
                };
                if bytes.len() % 4 != 0 {
                    return false;
                }
                let mut vector: Vec<f32> = bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                if !self.key.mark(text, &mut vector) {
                    return false;
                }
                let out: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                *encoded = engine.encode(out);
                true
            }
            _ => false,
        }
    }
}

impl ResponseFilter for EmbedWatermark {
    fn on_chunk(&mut self, chunk: &mut Chunk, _api: &dyn Api) -> Flow {
        let mut changed = false;
        if let Some(Value::Array(items)) = chunk.value.get_mut("data") {
            for item in items.iter_mut() {
                changed |= self.mark_item(item);
            }
        }
        chunk.edited |= changed;
        Flow::Continue
    }

    fn on_stream_end(&mut self, _api: &dyn Api) -> Result<Vec<Value>, ApiError> {
        Ok(Vec::new())
    }

    fn on_end(
        &mut self,
        _end: End,
        _record: &mut portcullis_telemetry::RequestRecord,
    ) -> Option<EndWork> {
        None
    }
}
