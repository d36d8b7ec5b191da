//! Only the fields a caller needs: the endpoint's allow-list (debug fields, provider extras
//! and internal metadata dropped), `system_fingerprint` unless configured, log probabilities
//! only when the caller asked for them and policy allows, no reasoning text (a chain of
//! thought is what a distiller harvests first, and nothing screened it for the caller), and
//! the model named as the caller named it (the upstream's own name can say where and what
//! it runs).

use super::{Chunk, End, EndWork, Flow, ResponseFilter};
use portcullis_openai::{fields, Api, Stripped};

pub struct Prune {
    /// Keep `system_fingerprint` (it identifies the serving configuration).
    pub system_fingerprint: bool,
    /// Keep logprobs.
    pub logprobs: bool,
    /// The model's name as the caller knows it, in place of the upstream's.
    pub model: String,
}

impl ResponseFilter for Prune {
    fn on_chunk(&mut self, chunk: &mut Chunk, api: &dyn Api) -> Flow {
        let value = &mut chunk.value;
        let mut edited = fields::prune(value, api.response_allow_list()) > 0;
        if !self.system_fingerprint {
            if let Some(map) = value.as_object_mut() {
                edited |= map.remove("system_fingerprint").is_some();
            }
        }
        if !self.logprobs {
            edited |= api.strip_logprobs(value);
        }
        match api.strip_reasoning(value) {
            Stripped::Nothing => {}
            Stripped::Edited => edited = true,
            Stripped::Hide => chunk.hidden = true,
        }
        edited |= api.set_model(value, &self.model);
        chunk.edited |= edited;
        Flow::Continue
    }

    fn on_stream_end(
        &mut self,
        _api: &dyn Api,
    ) -> Result<Vec<serde_json::Value>, portcullis_core::ApiError> {
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
