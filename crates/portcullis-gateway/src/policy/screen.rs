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
    let explicit = spec.injection_threshold.is_some();
    let sources = Sources::of(body);
    // The worst text: sure findings first, then by score.
    let mut worst: Option<(Finding, String, bool)> = None;
    let findings = &mut cx.record.findings;
    let mut visit = |text: &mut String, param: Param| -> Result<(), ApiError> {
        // Screening sanitizes the text itself; the same result serves the Unicode policy.
        let prepared = (injection != InjectionPolicy::Off).then(|| prepare(text));
        if let Some(prepared) = &prepared {
            let mut finding = detector.scan_prepared(prepared);
            let carrier = sources.carries_data(&param);
            if carrier && finding.score >= threshold {
                finding
                    .reasons
                    .push(format!("from:{}", sources.name(&param)));
            }
            let sure = is_sure(&finding, threshold, carrier, explicit);
            if worst
                .as_ref()
                .is_none_or(|(w, _, s)| (sure, finding.score) > (*s, w.score))
            {
                worst = Some((finding, param.to_string(), sure));
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
    let Some((finding, param, sure)) = worst else {
        return Ok(());
    };
    if finding.score < threshold {
        return Ok(());
    }
    let blocking = injection == InjectionPolicy::Block && sure;
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
            Some(("from", _)) => continue,
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

/// Whether a finding is sure enough for `block` to refuse: above a threshold the operator
/// set; a rule or the classifier at its block threshold; or any score over the threshold in
/// text that carries data into the conversation rather than the user's own words (a tool
/// result, a tool or function description, an assistant turn of the history). An
/// instruction there is the indirect injection itself: nobody asks the model anything
/// through a tool's output, and a history the client replays should hold the model's own
/// words, not orders to it.
fn is_sure(finding: &Finding, threshold: f32, carrier: bool, explicit: bool) -> bool {
    finding.score >= threshold && (explicit || finding.block || carrier)
}

/// Where each prompt text of a request comes from, read before the texts are visited: the
/// role (chat) or item type (Responses) of each message, as the names `carries_data` knows,
/// so reading them allocates no string per message.
struct Sources {
    /// `messages[i].role` (chat).
    roles: Vec<&'static str>,
    /// `input[i]`'s `role`, or its `type` (Responses).
    inputs: Vec<&'static str>,
}

/// Roles and item types whose text carries data into the conversation (see [`is_sure`]).
const CARRIERS: &[&str] = &[
    "tool",
    "function",
    "assistant",
    "function_call_output",
    "custom_tool_call_output",
    "computer_call_output",
    "mcp_call",
];

impl Sources {
    fn of(body: &Map<String, Value>) -> Sources {
        let read = |field: &str| -> Vec<&'static str> {
            let Some(items) = body.get(field).and_then(Value::as_array) else {
                return Vec::new();
            };
            items
                .iter()
                .map(|item| {
                    let kind = ["role", "type"]
                        .iter()
                        .find_map(|k| item.get(*k).and_then(Value::as_str))
                        .unwrap_or("");
                    CARRIERS.iter().find(|c| **c == kind).copied().unwrap_or("")
                })
                .collect()
        };
        Sources {
            roles: read("messages"),
            inputs: read("input"),
        }
    }

    /// The carrier the text at `param` comes from (a role or input item type), if any.
    fn carrier(&self, param: &Param) -> Option<&'static str> {
        let list = match param.root {
            "messages" => &self.roles,
            "input" => &self.inputs,
            _ => return None,
        };
        param
            .index
            .and_then(|i| list.get(i).copied())
            .filter(|kind| !kind.is_empty())
    }

    /// What the text at `param` is, for the log: its carrier, or the field.
    fn name(&self, param: &Param) -> &'static str {
        self.carrier(param).unwrap_or(param.root)
    }

    /// Whether the text carries data into the conversation (see [`is_sure`]).
    fn carries_data(&self, param: &Param) -> bool {
        matches!(param.root, "tools" | "functions") || self.carrier(param).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(score: f32, block: bool) -> Finding {
        Finding {
            score,
            classifier: score,
            reasons: Vec::new(),
            attack: score >= 0.5,
            block,
        }
    }

    #[test]
    fn the_uncertain_band_blocks_only_where_data_speaks() {
        let uncertain = finding(0.55, false);
        assert!(
            !is_sure(&uncertain, 0.5, false, false),
            "the user's own words: flagged"
        );
        assert!(
            is_sure(&uncertain, 0.5, true, false),
            "a tool result: blocked"
        );
        assert!(
            is_sure(&uncertain, 0.5, false, true),
            "the operator's threshold: blocked"
        );
        assert!(is_sure(&finding(0.9, true), 0.5, false, false));
        assert!(
            !is_sure(&finding(0.4, false), 0.5, true, true),
            "under the threshold"
        );
    }

    #[test]
    fn tool_results_descriptions_and_assistant_turns_carry_data() {
        let body: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "u"},
                {"role": "assistant", "content": "a"},
                {"role": "tool", "content": "t", "tool_call_id": "1"}
            ],
            "input": [{"type": "function_call_output", "output": "o"}, {"role": "user", "content": "u"}]
        }))
        .unwrap();
        let sources = Sources::of(&body);
        let message = |i| Param::item("messages", i, ".content");
        let carries: Vec<bool> = (0..4).map(|i| sources.carries_data(&message(i))).collect();
        assert_eq!(carries, [false, false, true, true]);
        assert!(sources.carries_data(&Param::item("input", 0, ".output")));
        assert!(!sources.carries_data(&Param::item("input", 1, ".content")));
        assert!(sources.carries_data(&Param::field("tools")));
        assert!(!sources.carries_data(&Param::field("instructions")));
        assert_eq!(sources.name(&message(3)), "tool");
    }
}
