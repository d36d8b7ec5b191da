//! The plan's bounds on a request: messages (or input items), characters per text and in all,
//! output tokens, images and audio or file parts (count and inline size) and which tools may
//! be declared. Each
//! endpoint says where its texts are (`Api::visit_prompt`); 400 `request_too_large` names the
//! field.

use portcullis_config::GuardSpec;
use portcullis_core::{ApiError, ErrorKind};
use portcullis_openai::{Api, PromptPart};
use serde_json::{Map, Value};
use std::collections::HashSet;

fn over_bound(param: String, message: String) -> ApiError {
    ApiError::new(ErrorKind::InvalidRequest, message)
        .with_param_owned(param)
        .with_code("request_too_large")
}

/// The plan's bounds on a request: messages, characters per message and in all, output
/// tokens, images (count and inline size) and which tools may be declared. Characters count
/// every text the model reads: the prompt's content, and names, tool and function
/// descriptions, tool-call history and the like, which screening's walker visits (read here,
/// never changed: the body is mutable only because that walker is).
pub fn check(
    api: &dyn Api,
    spec: &GuardSpec,
    body: &mut Map<String, Value>,
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
    let mut attachments = 0u64;
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
    let mut counted = HashSet::new();
    api.visit_prompt(body, &mut |part| match part {
        PromptPart::Text(param, t) => {
            counted.insert(param);
            text(param.to_string(), t)
        }
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
            // URL schemes are case-insensitive: `DATA:` is an inline image too.
            let inline = url
                .get(..5)
                .is_some_and(|s| s.eq_ignore_ascii_case("data:"));
            if inline && url.len() as u64 > limit(spec.max_image_bytes) {
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
        PromptPart::Attachment(param, data) => {
            attachments += 1;
            let cap = limit(spec.max_attachments);
            if attachments > cap {
                return Err(over_bound(
                    param.to_string(),
                    format!("A request may have at most {cap} audio or file parts."),
                ));
            }
            let cap = limit(spec.max_attachment_bytes);
            if data.len() as u64 > cap {
                return Err(over_bound(
                    param.to_string(),
                    format!("An inline audio or file part may be at most {cap} bytes."),
                ));
            }
            Ok(())
        }
    })?;
    // The other texts the model reads (F15: a 300 KB tool description passed a 400-character
    // plan), walked only when the plan bounds characters. Embedding inputs are content,
    // counted above; the walker does not visit them.
    if spec.max_message_chars.is_some() || spec.max_total_chars.is_some() {
        api.visit_prompt_texts_mut(body, &mut |t, param| {
            if counted.contains(&param) {
                return Ok(());
            }
            text(param.to_string(), t)
        })?;
    }
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
