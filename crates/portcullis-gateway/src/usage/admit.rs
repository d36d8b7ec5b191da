//! Admission: what a request will cost, and whether its limits allow it.

use super::accounting::Accounting;
use super::headers::{rate_headers, retry_headers};
use super::ledger::StoreLedger;
use crate::catalog::Route;
use crate::state::GatewayState;
use http::{HeaderName, HeaderValue};
use portcullis_core::{ApiError, Endpoint, ErrorKind, Exchange, Principal};
use portcullis_limits::{Estimate, PromptKind, Refusal, Subject};
use serde_json::{json, Map, Value};

/// Tells the caller their `max_tokens` was lowered to what their budget pays for.
pub const CLAMPED_HEADER: HeaderName = HeaderName::from_static("x-portcullis-max-tokens-clamped");

/// Who pays: the key's tenant, or the anonymous developer (loopback only, `default` plan).
pub fn subject(principal: &Principal, model: &str) -> Subject {
    match principal {
        Principal::Key(key) => Subject {
            tenant: key.tenant.clone(),
            key_id: key.key_id.clone(),
            plan: key.plan.clone(),
            model: model.to_owned(),
        },
        Principal::Anonymous => Subject {
            tenant: "anonymous".into(),
            key_id: "anonymous".into(),
            plan: "default".into(),
            model: model.to_owned(),
        },
    }
}

/// The output limit the caller asked for, and the field it used.
fn requested_output(body: &Map<String, Value>) -> Result<Option<(u64, &'static str)>, ApiError> {
    for field in ["max_completion_tokens", "max_tokens"] {
        match body.get(field) {
            None | Some(Value::Null) => continue,
            Some(v) => {
                return match v.as_u64() {
                    Some(n) if n >= 1 => Ok(Some((n, field))),
                    _ => Err(ApiError::new(
                        ErrorKind::InvalidRequest,
                        format!("`{field}` must be a positive integer."),
                    )
                    .with_param(field)
                    .with_code("invalid_value")),
                };
            }
        }
    }
    Ok(None)
}

/// Estimates, admits and prepares the body for accounting; on refusal, the error and its
/// headers.
pub async fn admit(
    state: &GatewayState,
    exchange: &mut Exchange,
    principal: &Principal,
    route: &Route,
    endpoint: Endpoint,
    body: &mut Map<String, Value>,
    stream: bool,
) -> Result<Accounting, ApiError> {
    let subject = subject(principal, &route.name);
    let kind = match endpoint {
        Endpoint::Completions => PromptKind::Completion,
        Endpoint::Embeddings => PromptKind::Embedding,
        _ => PromptKind::Chat,
    };
    let generates = kind != PromptKind::Embedding;
    let requested = if generates {
        requested_output(body)?
    } else {
        None
    };
    let (out_min, out_max) = if generates {
        state
            .limiter
            .output_reservation(&subject.plan, requested.map(|(n, _)| n))
    } else {
        (0, 0)
    };
    let estimate = Estimate {
        input_tokens: route.encoding.count_request(kind, body),
        out_min,
        out_max,
    };
    let ledger = StoreLedger::new(&state.store);
    let reservation = match state
        .limiter
        .admit(&subject, estimate, route.price, &ledger)
        .await
    {
        Ok(reservation) => reservation,
        Err(refusal) => return Err(refused(refusal, exchange)),
    };
    rate_headers(&mut exchange.response_headers, &reservation.headers);

    if generates {
        let out = reservation.output_tokens();
        match requested {
            Some((asked, field)) if out < asked => {
                body.insert(field.to_owned(), json!(out));
                exchange
                    .response_headers
                    .insert(CLAMPED_HEADER, HeaderValue::from(out));
            }
            Some(_) => {}
            // Without a limit the model could outrun the reservation (and a hard budget):
            // the reservation becomes the limit.
            None => {
                body.insert("max_tokens".to_owned(), json!(out));
                if out < out_max {
                    exchange
                        .response_headers
                        .insert(CLAMPED_HEADER, HeaderValue::from(out));
                }
            }
        }
    }

    // Streams report usage only when asked; ask, and hide the answer from callers who did not.
    let mut strip_usage = false;
    if stream && generates {
        let asked = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !asked {
            strip_usage = true;
            match body.get_mut("stream_options") {
                Some(Value::Object(options)) => {
                    options.insert("include_usage".into(), Value::Bool(true));
                }
                _ => {
                    body.insert("stream_options".into(), json!({"include_usage": true}));
                }
            }
        }
    }
    Ok(Accounting::new(reservation, route.encoding, strip_usage))
}

/// A refusal as the caller sees it.
fn refused(refusal: Refusal, exchange: &mut Exchange) -> ApiError {
    let headers = &mut exchange.response_headers;
    match refusal {
        Refusal::Limited(denial) => {
            rate_headers(headers, &denial.headers);
            let label = denial.label;
            let message = match (label.waiting_helps(), denial.retry_after_us) {
                (true, Some(us)) => format!(
                    "Rate limit reached for this {} on {}. Try again in {}.",
                    denial.scope,
                    label.describe(),
                    super::headers::format_reset(us)
                ),
                (true, None) => format!(
                    "This request needs more than this {}'s {} allows at once. Lower `max_tokens` or shorten the prompt.",
                    denial.scope,
                    label.describe()
                ),
                (false, _) => format!(
                    "This {}'s {} is used up. Check your plan and usage.",
                    denial.scope,
                    label.describe()
                ),
            };
            let should_retry = label.waiting_helps() && denial.retry_after_us.is_some();
            retry_headers(headers, denial.retry_after_us, should_retry);
            ApiError::new(ErrorKind::RateLimit, message).with_code(label.code())
        }
        Refusal::Suspended { until_us } => {
            let wait = until_us.saturating_sub(portcullis_limits::now_us());
            retry_headers(headers, Some(wait), false);
            ApiError::new(
                ErrorKind::RateLimit,
                "Requests with this credential are suspended for now.",
            )
            .with_code("rate_limit_exceeded")
        }
        Refusal::PlanMissing => ApiError::new(
            ErrorKind::Permission,
            "Your organisation's plan is not available. Contact the operator.",
        )
        .with_code("plan_not_configured"),
        Refusal::Unavailable => {
            retry_headers(headers, Some(1_000_000), true);
            ApiError::new(
                ErrorKind::Unavailable,
                "Usage limits cannot be checked right now. Try again shortly.",
            )
            .with_code("rate_limiter_unavailable")
        }
    }
}
