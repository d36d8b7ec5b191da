//! Security events: the subset of the trail a SIEM wants, in OCSF's shape.
//!
//! Each event is an OCSF 1.1 event of one of two classes:
//! - **API Activity** (`class_uid` 6003, category 6 Application Activity): authentication and
//!   authorization failures, a secret key presented by a browser, every admin action (key
//!   creation, rotation and revocation, risk changes, tenants, signing keys).
//! - **Detection Finding** (`class_uid` 2004, category 2 Findings): a guard blocked a prompt,
//!   redacted personal data or secrets, or caught a system-prompt leak; a budget or quota was
//!   exhausted.
//!
//! Field mapping (OCSF attribute <- Portcullis):
//! `time` <- record start (ms since the epoch), `actor.user.uid` <- key id,
//! `actor.user.org.name` <- tenant, `src_endpoint.ip` <- client address,
//! `http_request.user_agent` <- `User-Agent`, `api.operation` <- endpoint or admin action,
//! `api.request.uid` <- request id, `http_response.code` <- status, `status_detail` <- error
//! code, `finding_info.title`/`types` <- what was found (rule names, never text),
//! `unmapped.portcullis_event` <- the Portcullis event name (`auth_failure`,
//! `browser_secret_key`, `guard_block`, `redaction`, `prompt_leak`, `budget_exhausted`,
//! `admin.<action>`).

use crate::record::RequestRecord;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// An admin action, as the admin API records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminEvent {
    pub time: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub source: String,
}

const API_ACTIVITY: u32 = 6003;
const DETECTION_FINDING: u32 = 2004;

/// OCSF severity ids.
#[derive(Debug, Clone, Copy)]
enum Severity {
    Informational = 1,
    Low = 2,
    Medium = 3,
    High = 4,
}

impl Severity {
    fn name(self) -> &'static str {
        match self {
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
        }
    }
}

fn epoch_ms(rfc3339: &str) -> i64 {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .unwrap_or(0)
}

fn base(
    class_uid: u32,
    activity_id: u32,
    severity: Severity,
    event: &str,
    message: String,
) -> Value {
    let (class_name, category_uid, category_name) = if class_uid == API_ACTIVITY {
        ("API Activity", 6, "Application Activity")
    } else {
        ("Detection Finding", 2, "Findings")
    };
    json!({
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category_uid,
        "category_name": category_name,
        "activity_id": activity_id,
        "type_uid": class_uid * 100 + activity_id,
        "severity_id": severity as u32,
        "severity": severity.name(),
        "message": message,
        "metadata": {
            "version": "1.1.0",
            "product": {"name": "Portcullis", "vendor_name": "Portcullis", "version": env!("CARGO_PKG_VERSION")},
        },
        "unmapped": {"portcullis_event": event},
    })
}

fn with_request(mut event: Value, record: &RequestRecord) -> Value {
    let o = event.as_object_mut().expect("base is an object");
    o.insert("time".into(), json!(epoch_ms(&record.start)));
    if let Some(p) = &record.principal {
        o.insert(
            "actor".into(),
            json!({"user": {"uid": p.key_id, "type": p.credential, "org": {"name": p.tenant}}}),
        );
    }
    o.insert("src_endpoint".into(), json!({"ip": record.client.ip}));
    o.insert(
        "http_request".into(),
        json!({"user_agent": record.client.user_agent}),
    );
    o.insert(
        "api".into(),
        json!({"operation": record.endpoint, "request": {"uid": record.id}}),
    );
    o.insert(
        "http_response".into(),
        json!({"code": record.decision.status}),
    );
    o.insert(
        "status_id".into(),
        json!(if record.decision.code.is_some() { 2 } else { 1 }),
    );
    o.insert(
        "status".into(),
        json!(if record.decision.code.is_some() {
            "Failure"
        } else {
            "Success"
        }),
    );
    if let Some(code) = &record.decision.code {
        o.insert("status_detail".into(), json!(code));
    }
    event
}

fn finding(
    record: &RequestRecord,
    severity: Severity,
    event: &str,
    title: &str,
    types: Vec<String>,
) -> Value {
    let mut v = with_request(
        base(DETECTION_FINDING, 1, severity, event, title.to_owned()),
        record,
    );
    v["finding_info"] =
        json!({"uid": format!("{}:{event}", record.id), "title": title, "types": types});
    v
}

/// The security events one request gives rise to (usually none).
pub fn from_record(record: &RequestRecord) -> Vec<Value> {
    let mut out = Vec::new();
    let code = record.decision.code.as_deref();
    match (record.decision.status, code) {
        (_, Some("secret_key_in_browser")) => out.push(finding(
            record,
            Severity::High,
            "browser_secret_key",
            "A secret API key was presented by a browser",
            vec!["secret_key_in_browser".into()],
        )),
        (401 | 403, Some(code)) => out.push(with_request(
            base(
                API_ACTIVITY,
                99,
                if record.decision.status == 401 {
                    Severity::Low
                } else {
                    Severity::Medium
                },
                "auth_failure",
                format!("Request refused: {code}"),
            ),
            record,
        )),
        (_, Some(code @ ("insufficient_quota" | "budget_exceeded"))) => out.push(finding(
            record,
            Severity::Low,
            "budget_exhausted",
            "A quota or budget is used up",
            vec![code.to_owned()],
        )),
        _ => {}
    }
    let rules = |guard: &str, action: &str| -> Vec<String> {
        record
            .findings
            .iter()
            .filter(|f| f.guard == guard && (action.is_empty() || f.action == action))
            .map(|f| f.rule.clone())
            .collect()
    };
    let blocked = rules("injection", "blocked");
    if !blocked.is_empty() {
        out.push(finding(
            record,
            Severity::Medium,
            "guard_block",
            "A prompt was blocked as an injection or jailbreak attempt",
            blocked,
        ));
    }
    let redacted = rules("redaction", "");
    if !redacted.is_empty() {
        out.push(finding(
            record,
            Severity::Informational,
            "redaction",
            "Personal data or secrets were redacted from an answer",
            redacted,
        ));
    }
    let leaks = rules("leak", "");
    if !leaks.is_empty() {
        out.push(finding(
            record,
            Severity::High,
            "prompt_leak",
            "An answer repeated the system prompt or its canary",
            leaks,
        ));
    }
    out
}

/// An admin action as an API Activity event (create 1, read 2, update 3, delete 4).
pub fn from_admin(event: &AdminEvent) -> Value {
    let verb = event.action.rsplit('.').next().unwrap_or("");
    let activity = match verb {
        "create" => 1,
        "revoke" | "delete" | "clear" => 4,
        _ => 3,
    };
    let severity = match verb {
        "revoke" | "browser_use" => Severity::Medium,
        _ => Severity::Informational,
    };
    let mut v = base(
        API_ACTIVITY,
        activity,
        severity,
        &format!("admin.{}", event.action),
        format!("{} {}", event.action, event.target),
    );
    let o = v.as_object_mut().expect("base is an object");
    o.insert("time".into(), json!(epoch_ms(&event.time)));
    o.insert("actor".into(), json!({"user": {"name": event.actor}}));
    o.insert("src_endpoint".into(), json!({"ip": event.source}));
    o.insert(
        "api".into(),
        json!({"operation": event.action, "request": {"uid": event.target}}),
    );
    o.insert("resources".into(), json!([{"uid": event.target}]));
    o.insert("status_id".into(), json!(1));
    o.insert("status".into(), json!("Success"));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Decision, Finding};

    #[test]
    fn a_blocked_prompt_is_a_detection_finding_naming_its_rules() {
        let record = RequestRecord {
            id: "req_1".into(),
            start: "2026-12-04T17:00:00.000000Z".into(),
            endpoint: "chat.completions".into(),
            decision: Decision {
                action: "refused".into(),
                status: 400,
                code: Some("input_rejected".into()),
            },
            findings: vec![Finding {
                guard: "injection".into(),
                rule: "instruction_override".into(),
                action: "blocked".into(),
                count: 1,
                score: Some(0.97),
            }],
            ..Default::default()
        };
        let events = from_record(&record);
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e["class_uid"], 2004);
        assert_eq!(e["type_uid"], 200401);
        assert_eq!(e["finding_info"]["types"][0], "instruction_override");
        assert_eq!(e["time"], 1_796_403_600_000_i64);
        assert_eq!(e["unmapped"]["portcullis_event"], "guard_block");
    }

    #[test]
    fn an_admitted_clean_request_is_no_security_event() {
        let record = RequestRecord {
            decision: Decision {
                action: "allowed".into(),
                status: 200,
                code: None,
            },
            ..Default::default()
        };
        assert!(from_record(&record).is_empty());
    }
}
