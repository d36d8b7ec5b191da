//! Input screening: smuggling characters removed (or the request refused) and every prompt
//! text scored for injection and jailbreak attempts before any model sees it.
//!
//! The texts are what each endpoint names (`Api::visit_prompt_texts_mut`): chat messages'
//! contents of every role (system and tool messages carry indirect injections as often as user
//! messages do), the completion prompt, the Responses API's instructions, inputs and tool
//! outputs. Embedding inputs are not screened: nothing is generated from them. The decision
//! follows the effective policy (model over plan over `[guard]`): `block` refuses with 400
//! `input_rejected` and a message that says nothing of what was found; `flag` lets the request
//! pass and logs the score and reasons with the request id (never the text).

use crate::pipeline::{record, RequestContext};
use crate::state::GatewayState;
use portcullis_config::{GuardSpec, InjectionPolicy, UnicodePolicy};
use portcullis_core::{ApiError, ErrorKind};
use portcullis_guard::detector::prepare;
use portcullis_guard::{sanitize, Detector, Finding};
use portcullis_openai::{Api, Param};
use serde_json::{Map, Value};

/// Screens (and, under `strip`, cleans) the prompt texts of `body`.
pub fn check(
    state: &GatewayState,
    cx: &mut RequestContext,
    spec: &GuardSpec,
    api: &dyn Api,
    body: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    let unicode = spec.unicode.unwrap_or_default();
    let injection = spec.injection.unwrap_or_default();
    if unicode == UnicodePolicy::Off && injection == InjectionPolicy::Off {
        return Ok(());
    }
    let detector = Detector::builtin();
    let threshold = spec.injection_threshold.unwrap_or(detector.threshold);
    // A threshold the operator sets is where `block` refuses; by default only a sure finding
    // (a rule, or the classifier at its block threshold) refuses, and the band below it is
    // flagged: see `Finding::block`.
    let sure = |finding: &Finding| spec.injection_threshold.is_some() || finding.block;
    let mut worst: Option<(Finding, String)> = None;
    let findings = &mut cx.record.findings;
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
                let action = match unicode {
                    UnicodePolicy::Reject => "blocked",
                    _ => "stripped",
                };
                for (carrier, n) in &clean.removed {
                    let mut finding = record::finding("unicode", carrier.name(), action, None);
                    finding.count = u32::try_from(*n).unwrap_or(u32::MAX);
                    findings.push(finding);
                }
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
    let blocking = injection == InjectionPolicy::Block && sure(&finding);
    let action = if blocking { "blocked" } else { "flagged" };
    tracing::warn!(
        request_id = %cx.request_id.as_str(),
        score = finding.score,
        reasons = ?finding.reasons,
        param,
        action,
        "prompt screened as an injection or jailbreak attempt"
    );
    state.record_screening(blocking);
    for reason in &finding.reasons {
        // Reasons are `rule:<name>`, `classifier:<score>`, `hidden_unicode:<carrier>` and
        // `encoded_payload`: the record keeps names, never a score as a name.
        let rule = match reason.split_once(':') {
            Some(("rule", name)) => name,
            Some(("classifier", _)) => "classifier",
            _ => reason.as_str(),
        };
        cx.record.findings.push(record::finding(
            "injection",
            rule,
            action,
            Some(finding.score),
        ));
    }
    if blocking {
        return Err(ApiError::new(
            ErrorKind::InvalidRequest,
            "The request was rejected by the input policy.",
        )
        .with_code("input_rejected"));
    }
    Ok(())
}
