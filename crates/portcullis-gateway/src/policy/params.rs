//! Extraction-enabling parameters, by policy (`logprobs` and their depth, `logit_bias` with
//! logprobs, the number of choices, `echo`, `seed`): 400 `parameter_not_allowed` naming the
//! field.

use portcullis_config::GuardSpec;
use portcullis_core::{ApiError, ErrorKind};
use serde_json::{Map, Value};

fn not_allowed(param: &'static str, message: &str) -> ApiError {
    ApiError::new(ErrorKind::InvalidRequest, message.to_owned())
        .with_param(param)
        .with_code("parameter_not_allowed")
}

/// Extraction-enabling parameters, by policy: logprobs and their depth, logit bias together
/// with logprobs, the number of choices, echo, seed.
pub fn check(spec: &GuardSpec, body: &Map<String, Value>) -> Result<(), ApiError> {
    let present = |k: &str| {
        body.get(k)
            .is_some_and(|v| !v.is_null() && v != &Value::Bool(false))
    };
    // Chat asks with `logprobs: true` (+ `top_logprobs`); completions with `logprobs: N`.
    let logprobs = present("logprobs");
    let depth = body
        .get("top_logprobs")
        .and_then(Value::as_u64)
        .or_else(|| body.get("logprobs").and_then(Value::as_u64))
        .unwrap_or(0);
    if logprobs && !spec.logprobs.unwrap_or(true) {
        return Err(not_allowed(
            "logprobs",
            "`logprobs` is not available on your plan.",
        ));
    }
    let cap = spec.max_top_logprobs.unwrap_or(5);
    if depth > cap {
        let param = if body.contains_key("top_logprobs") {
            "top_logprobs"
        } else {
            "logprobs"
        };
        return Err(not_allowed(
            param,
            &format!("At most {cap} log probabilities per token are available."),
        ));
    }
    let biased = body
        .get("logit_bias")
        .is_some_and(|b| b.as_object().is_some_and(|m| !m.is_empty()));
    if biased && logprobs && !spec.logit_bias_with_logprobs.unwrap_or(false) {
        return Err(not_allowed(
            "logit_bias",
            "`logit_bias` cannot be combined with `logprobs`.",
        ));
    }
    let max_n = spec.max_n.unwrap_or(8);
    if body
        .get("n")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > max_n)
    {
        return Err(not_allowed("n", &format!("`n` may be at most {max_n}.")));
    }
    if present("echo") && !spec.echo.unwrap_or(false) {
        return Err(not_allowed("echo", "`echo` is not available."));
    }
    if present("seed") && !spec.seed.unwrap_or(true) {
        return Err(not_allowed("seed", "`seed` is not available on your plan."));
    }
    Ok(())
}
