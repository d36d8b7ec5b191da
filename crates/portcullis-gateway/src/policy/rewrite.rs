//! The body sent upstream, after admission: the output limit becomes what was reserved (every
//! field that bounds output, so no upstream can read a larger one), and a stream asks for
//! usage (hidden again from callers who did not ask). Admission decides; this step writes.

use super::admit::{Admitted, CLAMPED_HEADER};
use crate::pipeline::RequestContext;
use http::HeaderValue;
use portcullis_openai::Api;
use serde_json::{json, Map, Value};

/// Writes admission's decision into the body sent upstream: the output limit becomes what
/// was reserved (every field that bounds output, so no upstream can read a larger one), and a
/// stream asks for usage (hidden from callers who did not ask). Returns whether the usage
/// chunk must be hidden.
pub fn for_upstream(
    cx: &mut RequestContext,
    api: &dyn Api,
    admitted: &Admitted,
    body: &mut Map<String, Value>,
    stream: bool,
) -> bool {
    if let (Some(limit), Some((per_answer, clamped))) =
        (api.output_limit(), admitted.output_per_answer)
    {
        let mut set = false;
        for field in limit.fields {
            if let Some(v) = body.get_mut(*field).filter(|v| !v.is_null()) {
                if v.as_u64().is_some_and(|asked| asked > per_answer) {
                    *v = json!(per_answer);
                }
                set = true;
            }
        }
        // Without a limit the model could outrun the reservation (and a hard budget): the
        // reservation becomes the limit.
        if !set {
            body.insert(limit.default_field.to_owned(), json!(per_answer));
        }
        if clamped {
            cx.response_headers
                .insert(CLAMPED_HEADER, HeaderValue::from(per_answer));
        }
    }
    stream && api.output_limit().is_some() && api.request_stream_usage(body)
}
