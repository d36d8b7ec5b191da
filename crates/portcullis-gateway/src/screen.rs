//! Input screening: smuggling characters removed (or the request refused) and every prompt
//! text scored for injection and jailbreak attempts before any model sees it.
//!
//! The texts are the chat messages' contents (strings and text parts, every role: system and
//! tool messages carry indirect injections as often as user messages do) and the completion
//! prompt. Embedding inputs are not screened: nothing is generated from them. The decision
//! follows the effective policy (model over plan over `[guard]`): `block` refuses with 400
//! `input_rejected` and a message that says nothing of what was found; `flag` lets the request
//! pass and logs the score and reasons with the request id (never the text).

use crate::catalog::Route;
use crate::state::GatewayState;
use portcullis_config::{GuardSpec, InjectionPolicy, UnicodePolicy};
use portcullis_core::{ApiError, ErrorKind, Exchange, ListenerKind, Principal};
use portcullis_guard::detector::prepare;
use portcullis_guard::{sanitize, Detector, Finding};
use portcullis_openai::{Api, Param, PromptPart};
use serde_json::{Map, Value};

/// The guard settings that apply to this request: global, then plan, tenant and model.
pub fn effective(state: &GatewayState, principal: &Principal, route: &Route) -> GuardSpec {
    let plan = match principal {
        Principal::Key(k) => k.plan.as_str(),
        Principal::Anonymous => "default",
    };
    let plan_spec = state
        .limiter
        .plan(plan)
        .map(|p| p.guard.clone())
        .unwrap_or_default();
    let tenant_spec = match principal {
        Principal::Key(k) => state
            .tenant_guard
            .get(&k.tenant)
            .cloned()
            .unwrap_or_default(),
        Principal::Anonymous => GuardSpec::default(),
    };
    state
        .guard
        .spec()
        .overridden_by(&plan_spec)
        .overridden_by(&tenant_spec)
        .overridden_by(&route.guard)
}

fn not_allowed(param: &'static str, message: &str) -> ApiError {
    ApiError::new(ErrorKind::InvalidRequest, message.to_owned())
        .with_param(param)
        .with_code("parameter_not_allowed")
}

/// Extraction-enabling parameters, by policy: logprobs and their depth, logit bias together
/// with logprobs, the number of choices, echo, seed.
pub fn check_parameters(spec: &GuardSpec, body: &Map<String, Value>) -> Result<(), ApiError> {
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

fn over_bound(param: String, message: String) -> ApiError {
    ApiError::new(ErrorKind::InvalidRequest, message)
        .with_param_owned(param)
        .with_code("request_too_large")
}

/// The plan's bounds on a request: messages, characters per message and in all, output
/// tokens, images (count and inline size) and which tools may be declared.
pub fn check_bounds(
    api: &dyn Api,
    spec: &GuardSpec,
    body: &Map<String, Value>,
) -> Result<(), ApiError> {
    let limit = |v: Option<u64>| v.unwrap_or(u64::MAX);
    for field in ["max_tokens", "max_completion_tokens", "max_output_tokens"] {
        if let Some(n) = body.get(field).and_then(Value::as_u64) {
            let cap = limit(spec.max_output_tokens);
            if n > cap {
                return Err(over_bound(
                    field.into(),
                    format!("`{field}` may be at most {cap} on your plan."),
                ));
            }
        }
    }
    let mut total = 0u64;
    let mut images = 0u64;
    let mut text = |param: String, t: &str| -> Result<(), ApiError> {
        let chars = t.chars().count() as u64;
        let cap = limit(spec.max_message_chars);
        if chars > cap {
            return Err(over_bound(
                param,
                format!("A message may have at most {cap} characters."),
            ));
        }
        total += chars;
        let cap = limit(spec.max_total_chars);
        if total > cap {
            return Err(over_bound(
                param,
                format!("A request may have at most {cap} characters of text."),
            ));
        }
        Ok(())
    };
    let cap = limit(spec.max_messages);
    if api.message_count(body) as u64 > cap {
        return Err(over_bound(
            "messages".into(),
            format!("A request may have at most {cap} messages."),
        ));
    }
    api.visit_prompt(body, &mut |part| match part {
        PromptPart::Text(param, t) => text(param.to_string(), t),
        PromptPart::Image(param, url) => {
            images += 1;
            if images > limit(spec.max_images) {
                return Err(over_bound(
                    param.to_string(),
                    format!(
                        "A request may have at most {} images.",
                        limit(spec.max_images)
                    ),
                ));
            }
            if url.starts_with("data:") && url.len() as u64 > limit(spec.max_image_bytes) {
                return Err(over_bound(
                    param.to_string(),
                    format!(
                        "An inline image may be at most {} bytes.",
                        limit(spec.max_image_bytes)
                    ),
                ));
            }
            Ok(())
        }
    })?;
    if let Some(allowed) = &spec.allowed_tools {
        for (param, name) in api.tool_names(body) {
            if !allowed.iter().any(|a| a == name) {
                return Err(ApiError::new(
                    ErrorKind::InvalidRequest,
                    format!("The tool `{name}` is not allowed on your plan."),
                )
                .with_param_owned(param.to_string())
                .with_code("tool_not_allowed"));
            }
        }
    }
    Ok(())
}

/// Screens (and, under `strip`, cleans) the prompt texts of `body`.
pub fn screen(
    state: &GatewayState,
    exchange: &Exchange,
    spec: &GuardSpec,
    api: &dyn Api,
    body: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    if exchange.listener == ListenerKind::Internal && !state.guard.internal_listener {
        return Ok(());
    }
    check_parameters(spec, body)?;
    check_bounds(api, spec, body)?;
    let unicode = spec.unicode.unwrap_or_default();
    let injection = spec.injection.unwrap_or_default();
    if unicode == UnicodePolicy::Off && injection == InjectionPolicy::Off {
        return Ok(());
    }
    let detector = Detector::builtin();
    let threshold = spec.injection_threshold.unwrap_or(detector.threshold);
    let mut worst: Option<(Finding, String)> = None;
    let mut visit = |text: &mut String, param: Param| -> Result<(), ApiError> {
        // Screening sanitizes the text itself; the same result serves the Unicode policy.
        let prepared = (injection != InjectionPolicy::Off).then(|| prepare(text));
        if let Some(prepared) = &prepared {
            let finding = detector.scan_prepared(prepared);
            if worst.as_ref().is_none_or(|(w, _)| finding.score > w.score) {
                worst = Some((finding, param.to_string()));
            }
        }
        if unicode != UnicodePolicy::Off {
            let clean = match prepared {
                Some(p) => p.sanitized,
                None => sanitize(text),
            };
            if clean.changed() {
                if unicode == UnicodePolicy::Reject {
                    return Err(ApiError::new(
                        ErrorKind::InvalidRequest,
                        "The text contains invisible or direction-changing characters that are not accepted.",
                    )
                    .with_param_owned(param.to_string())
                    .with_code("invalid_characters"));
                }
                *text = clean.text;
            }
        }
        Ok(())
    };
    api.visit_prompt_texts_mut(body, &mut visit)?;
    let Some((finding, param)) = worst else {
        return Ok(());
    };
    if finding.score < threshold {
        return Ok(());
    }
    tracing::warn!(
        request_id = %exchange.request_id.as_str(),
        score = finding.score,
        reasons = ?finding.reasons,
        param,
        action = if injection == InjectionPolicy::Block { "blocked" } else { "flagged" },
        "prompt screened as an injection or jailbreak attempt"
    );
    state.record_screening(injection == InjectionPolicy::Block);
    if injection == InjectionPolicy::Block {
        return Err(ApiError::new(
            ErrorKind::InvalidRequest,
            "The request was rejected by the input policy.",
        )
        .with_code("input_rejected"));
    }
    Ok(())
}
