//! Admission: what a request will cost, and whether its limits allow it. The body is not
//! changed here; `rewrite` applies the decision to what is sent upstream.

use super::rate_headers::{rate_headers, retry_headers};
use crate::background::ledger::StoreLedger;
use crate::catalog::Route;
use crate::pipeline::{record, RequestContext};
use crate::state::GatewayState;
use http::HeaderName;
use portcullis_core::{ApiError, ErrorKind, Principal};
use portcullis_limits::{Estimate, Refusal, Reservation, Subject};
use portcullis_openai::{Api, OutputLimit};
use serde_json::{Map, Value};

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

/// The output limit the caller asked for: the largest of the fields that bound output (an
/// upstream may honour any of them), and the fields set.
fn requested_output(
    limit: &OutputLimit,
    body: &Map<String, Value>,
) -> Result<Option<u64>, ApiError> {
    let mut largest = None;
    for field in limit.fields {
        match body.get(*field) {
            None | Some(Value::Null) => continue,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => largest = largest.max(Some(n)),
                _ => {
                    return Err(ApiError::new(
                        ErrorKind::InvalidRequest,
                        format!("`{field}` must be a positive integer."),
                    )
                    .with_param(field)
                    .with_code("invalid_value"))
                }
            },
        }
    }
    Ok(largest)
}

/// What admission decided, for the body rewrite and the accounting.
pub struct Admitted {
    pub reservation: Reservation,
    /// Output tokens reserved per answer, and whether that is less than the caller asked.
    pub output_per_answer: Option<(u64, bool)>,
}

/// Estimates the request's cost and admits it against the limits; on refusal, the error and
/// its headers.
pub async fn admit(
    state: &GatewayState,
    cx: &mut RequestContext,
    principal: &Principal,
    route: &Route,
    api: &dyn Api,
    body: &Map<String, Value>,
) -> Result<Admitted, ApiError> {
    let subject = subject(principal, &route.name);
    let limit = api.output_limit();
    let requested = match &limit {
        Some(limit) => requested_output(limit, body)?,
        None => None,
    };
    // Every answer (`n`, `best_of`) is generated and paid for.
    let answers = api.choices(body);
    let (out_min, out_max) = match limit {
        Some(_) => {
            let (min, max) = cx
                .settings
                .plans
                .output_reservation(&subject.plan, requested);
            (min.saturating_mul(answers), max.saturating_mul(answers))
        }
        None => (0, 0),
    };
    let estimate = Estimate {
        input_tokens: api.count_prompt(route.encoding, body),
        out_min,
        out_max,
    };
    cx.record.tokens.estimated_input = estimate.input_tokens;
    let ledger = StoreLedger::new(&state.store);
    let plans = cx.settings.plans.clone();
    let reservation = match state
        .limiter
        .admit(&plans, &subject, estimate, route.price, &ledger)
        .await
    {
        Ok(reservation) => reservation,
        Err(refusal) => {
            cx.record.limit = Some(record::refused(&refusal));
            return Err(refused(refusal, cx));
        }
    };
    rate_headers(&mut cx.response_headers, &reservation.headers);
    let output_per_answer = limit.map(|_| {
        let per_answer = (reservation.output_tokens() / answers).max(1);
        let clamped = match requested {
            Some(asked) => per_answer < asked,
            None => reservation.output_tokens() < out_max,
        };
        (per_answer, clamped)
    });
    let clamped = output_per_answer.is_some_and(|(_, clamped)| clamped);
    cx.record.limit = Some(record::admitted(&reservation.headers, clamped));
    cx.record.tokens.reserved_output = reservation.output_tokens();
    Ok(Admitted {
        reservation,
        output_per_answer,
    })
}

/// A refusal as the caller sees it.
fn refused(refusal: Refusal, cx: &mut RequestContext) -> ApiError {
    let headers = &mut cx.response_headers;
    match refusal {
        Refusal::Limited(denial) => {
            rate_headers(headers, &denial.headers);
            let label = denial.label;
            let message = match (label.waiting_helps(), denial.retry_after_us) {
                (true, Some(us)) => format!(
                    "Rate limit reached for this {} on {}. Try again in {}.",
                    denial.scope,
                    label.describe(),
                    super::rate_headers::format_reset(us)
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
