//! The request models: which fields each endpoint takes, of which types and ranges. A body
//! that breaks them gets 400 with `param` naming the field (`messages[2].role`), before
//! anything is counted, screened or forwarded. Unknown top-level fields are refused by default
//! (a typo must not silently change nothing, and an upstream must not receive parameters the
//! gateway never checked), or stripped under `unknown_fields = "strip"`.

use portcullis_core::{ApiError, ErrorKind};
use serde_json::{Map, Value};

pub(crate) const CHAT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "user",
    "seed",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "functions",
    "function_call",
    "service_tier",
    "store",
    "metadata",
    "modalities",
    "reasoning_effort",
    "prediction",
];
pub(crate) const COMPLETION_FIELDS: &[&str] = &[
    "model",
    "prompt",
    "suffix",
    "max_tokens",
    "temperature",
    "top_p",
    "n",
    "stream",
    "stream_options",
    "logprobs",
    "echo",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "best_of",
    "logit_bias",
    "user",
    "seed",
];
pub(crate) const EMBEDDING_FIELDS: &[&str] =
    &["model", "input", "encoding_format", "dimensions", "user"];
const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

pub(crate) fn invalid(param: String, message: String) -> ApiError {
    ApiError::new(ErrorKind::InvalidRequest, message)
        .with_param_owned(param)
        .with_code("invalid_value")
}

pub(crate) fn wrong_type(param: &str, expected: &str) -> ApiError {
    ApiError::new(
        ErrorKind::InvalidRequest,
        format!("`{param}` must be {expected}."),
    )
    .with_param_owned(param.to_owned())
    .with_code("invalid_type")
}

/// Refuses (or, with `strip`, removes) top-level fields outside `known`.
pub(crate) fn known_fields(
    body: &mut Map<String, Value>,
    known: &[&str],
    strip: bool,
) -> Result<(), ApiError> {
    let strangers: Vec<String> = body
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .cloned()
        .collect();
    let Some(first) = strangers.first() else {
        return Ok(());
    };
    if !strip {
        return Err(ApiError::new(
            ErrorKind::InvalidRequest,
            format!("Unrecognized request argument supplied: {first}"),
        )
        .with_param_owned(first.clone())
        .with_code("unknown_parameter"));
    }
    for k in &strangers {
        body.remove(k);
    }
    Ok(())
}

/// The sampling and output parameters every generating endpoint shares (absent ones pass).
pub(crate) fn shared(body: &Map<String, Value>) -> Result<(), ApiError> {
    number(body, "temperature", 0.0, 2.0)?;
    number(body, "top_p", 0.0, 1.0)?;
    number(body, "presence_penalty", -2.0, 2.0)?;
    number(body, "frequency_penalty", -2.0, 2.0)?;
    integer(body, "n", 1, 128)?;
    integer(body, "max_tokens", 1, u32::MAX as u64)?;
    integer(body, "max_completion_tokens", 1, u32::MAX as u64)?;
    integer(body, "max_output_tokens", 1, u32::MAX as u64)?;
    integer(body, "seed", 0, u64::MAX)?;
    integer(body, "top_logprobs", 0, 20)?;
    integer(body, "dimensions", 1, 65_536)?;
    kind(body, "stream", Value::is_boolean, "a boolean")?;
    kind(body, "user", Value::is_string, "a string")?;
    kind(body, "stream_options", Value::is_object, "an object")?;
    kind(body, "logit_bias", Value::is_object, "an object")?;
    if let Some(stop) = body.get("stop").filter(|v| !v.is_null()) {
        let ok = stop.is_string()
            || stop
                .as_array()
                .is_some_and(|a| a.len() <= 4 && a.iter().all(Value::is_string));
        if !ok {
            return Err(wrong_type(
                "stop",
                "a string or an array of up to 4 strings",
            ));
        }
    }
    Ok(())
}

/// A required field that is missing.
pub(crate) fn missing(param: &'static str, message: &str) -> ApiError {
    ApiError::new(ErrorKind::InvalidRequest, message.to_owned())
        .with_param(param)
        .with_code("missing_required_parameter")
}

pub(crate) fn messages(body: &Map<String, Value>) -> Result<(), ApiError> {
    let messages = match body.get("messages") {
        None => {
            return Err(
                ApiError::new(ErrorKind::InvalidRequest, "You must provide messages.")
                    .with_param("messages")
                    .with_code("missing_required_parameter"),
            )
        }
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) => {
            return Err(invalid(
                "messages".into(),
                "`messages` must not be empty.".into(),
            ))
        }
        Some(_) => return Err(wrong_type("messages", "an array")),
    };
    for (i, message) in messages.iter().enumerate() {
        let at = |field: &str| format!("messages[{i}].{field}");
        let Some(message) = message.as_object() else {
            return Err(wrong_type(&format!("messages[{i}]"), "an object"));
        };
        let role = match message.get("role") {
            Some(Value::String(r)) => r.as_str(),
            Some(_) => return Err(wrong_type(&at("role"), "a string")),
            None => {
                return Err(
                    ApiError::new(ErrorKind::InvalidRequest, "Every message needs a role.")
                        .with_param_owned(at("role"))
                        .with_code("missing_required_parameter"),
                )
            }
        };
        if !ROLES.contains(&role) {
            return Err(invalid(
                at("role"),
                format!("`{role}` is not a role: use one of {}.", ROLES.join(", ")),
            ));
        }
        let calls = message.contains_key("tool_calls") || message.contains_key("function_call");
        match message.get("content") {
            Some(Value::String(_)) => {}
            Some(Value::Array(parts)) if !parts.is_empty() => {
                for (j, part) in parts.iter().enumerate() {
                    let kind = part.get("type").and_then(Value::as_str);
                    if kind.is_none() {
                        return Err(wrong_type(
                            &format!("messages[{i}].content[{j}]"),
                            "an object with a `type`",
                        ));
                    }
                    // A text part's text is a string: anything else would pass unread.
                    if kind == Some("text") && !part.get("text").is_some_and(Value::is_string) {
                        return Err(wrong_type(
                            &format!("messages[{i}].content[{j}].text"),
                            "a string",
                        ));
                    }
                }
            }
            None | Some(Value::Null) if role == "assistant" && calls => {}
            None => {
                return Err(ApiError::new(
                    ErrorKind::InvalidRequest,
                    "Every message needs content.",
                )
                .with_param_owned(at("content"))
                .with_code("missing_required_parameter"))
            }
            Some(_) => {
                return Err(wrong_type(
                    &at("content"),
                    "a string or a non-empty array of parts",
                ))
            }
        }
        if message.get("name").is_some_and(|n| !n.is_string()) {
            return Err(wrong_type(&at("name"), "a string"));
        }
        if role == "tool" && !message.get("tool_call_id").is_some_and(Value::is_string) {
            return Err(ApiError::new(
                ErrorKind::InvalidRequest,
                "Tool messages need a `tool_call_id`.",
            )
            .with_param_owned(at("tool_call_id"))
            .with_code("missing_required_parameter"));
        }
    }
    Ok(())
}

pub(crate) fn kind(
    body: &Map<String, Value>,
    field: &str,
    test: fn(&Value) -> bool,
    what: &str,
) -> Result<(), ApiError> {
    match body.get(field) {
        Some(v) if !v.is_null() && !test(v) => Err(wrong_type(field, what)),
        _ => Ok(()),
    }
}

pub(crate) fn number(
    body: &Map<String, Value>,
    field: &str,
    min: f64,
    max: f64,
) -> Result<(), ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(v) => match v.as_f64() {
            Some(x) if (min..=max).contains(&x) => Ok(()),
            Some(_) => Err(invalid(
                field.into(),
                format!("`{field}` must be between {min} and {max}."),
            )),
            None => Err(wrong_type(field, "a number")),
        },
    }
}

pub(crate) fn integer(
    body: &Map<String, Value>,
    field: &str,
    min: u64,
    max: u64,
) -> Result<(), ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Bool(_)) if field == "logprobs" => Ok(()),
        Some(v) => match v.as_u64() {
            Some(x) if (min..=max).contains(&x) => Ok(()),
            Some(_) => Err(invalid(
                field.into(),
                format!("`{field}` must be an integer from {min} to {max}."),
            )),
            None if v.is_i64() => Err(invalid(
                field.into(),
                format!("`{field}` must be an integer from {min} to {max}."),
            )),
            None => Err(wrong_type(field, "an integer")),
        },
    }
}
