//! The per-request context: what each step of the request path learned, for later steps and
//! for the response that finally leaves (whatever it is, success or error).

use crate::state::Settings;
use portcullis_core::{ListenerKind, RequestId};
use portcullis_telemetry::RequestRecord;
use std::sync::Arc;
use std::time::Instant;

/// One request's context. Steps read what earlier steps wrote here; none calls back into an
/// earlier step.
#[derive(Debug)]
pub struct RequestContext {
    pub request_id: RequestId,
    pub listener: ListenerKind,
    /// The configuration this request runs under from its start to its end, even when a
    /// reload puts another in force meanwhile.
    pub settings: Arc<Settings>,
    /// The request's input guards and output filters run (false only on the internal
    /// listener under `[guard] internal_listener = false`). Decided once, for both sides.
    pub guarded: bool,
    /// A streamed answer was asked for.
    pub stream: bool,
    /// The browser origin to grant in CORS headers (publishable keys from allowed origins).
    pub cors_origin: Option<http::HeaderValue>,
    /// Headers every response to this request carries, success or error: rate-limit state,
    /// `Retry-After` on a 429, a clamped output limit.
    pub response_headers: http::HeaderMap,
    /// When the request arrived.
    pub started: Instant,
    /// What the steps learned, for telemetry (see `pipeline::record`).
    pub record: RequestRecord,
    /// The filter chain took the record and completes it when the response ends.
    pub record_taken: bool,
}

impl RequestContext {
    pub fn new(
        request_id: RequestId,
        listener: ListenerKind,
        settings: Arc<Settings>,
        record: RequestRecord,
    ) -> Self {
        let guard_internal = settings.guard.internal_listener;
        RequestContext {
            settings,
            started: Instant::now(),
            record,
            record_taken: false,
            request_id,
            listener,
            guarded: listener != ListenerKind::Internal || guard_internal,
            stream: false,
            cors_origin: None,
            response_headers: http::HeaderMap::new(),
        }
    }
}
