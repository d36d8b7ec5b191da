//! The per-request record: everything the gateway decided about one request, built once by the
//! request path and read by every consumer (metrics, the audit trail, traces and the threat
//! detector). No consumer assembles its own view of a request.
//!
//! It holds no secret (credentials appear by their ids) and, by default, no prompt or
//! completion text: the prompt is represented by a keyed fingerprint ([`crate::fingerprint`]).
//! Text is kept ([`Content`]) only for a tenant whose policy opts in, never for a model marked
//! sensitive, and then with secrets and personal data redacted.

use serde::{Deserialize, Serialize};

/// One request, from arrival to the end of its response (a stream: to its last event).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// The request id the caller saw in `x-request-id`.
    pub id: String,
    /// When the request arrived (RFC 3339, UTC, microseconds).
    pub start: String,
    /// `public` or `internal`.
    pub listener: String,
    /// `chat.completions`, `completions`, `embeddings`, `responses`, `models`, `auth.token`,
    /// `jwks`, or `other` (no route: its path is not recorded, so a scan cannot fill the trail
    /// with made-up paths).
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<PrincipalRecord>,
    /// The id part of a well-formed key that failed authentication (unknown, revoked, expired
    /// or a wrong secret): ids are not secrets, and a revoked key still being tried is worth
    /// an alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presented_key_id: Option<String>,
    pub client: ClientRecord,
    /// The public model name, when it resolved to one in the catalogue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(default, skip_serializing_if = "Params::is_empty")]
    pub params: Params,
    pub decision: Decision,
    /// How the response ended, for requests that reached an upstream: `completed`,
    /// `upstream_failed`, `stopped` (an output guard), `caller_gone`, `shut_down`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitRecord>,
    #[serde(default, skip_serializing_if = "Tokens::is_empty")]
    pub tokens: Tokens,
    /// What the request cost, in US dollars, at the model's configured price.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cost_usd: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub timing: Timing,
    /// A keyed hash of the normalised prompt (never the text): equal prompts have equal
    /// fingerprints within one deployment, and nothing outside it can test a guess.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_fingerprint: Option<String>,
    /// Why each answer ended (`stop`, `length`, `tool_calls`, `content_filter`,
    /// `function_call`; anything else an upstream says is `other`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finish_reasons: Vec<String>,
    /// The W3C trace this request belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::trace::TraceContext>,
    /// Prompt and completion text, only under a tenant's `log_content` (audit sinks only:
    /// spans, metrics and security events never carry it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// The request body as received, for the threat detector beside the path (a shared
    /// buffer, not a copy). Never serialised: no sink, span or metric carries it.
    #[serde(skip)]
    pub request_body: Option<bytes::Bytes>,
}

/// The text of a request and its answer, redacted (secrets and personal data replaced by
/// their kind, as in answers) and cut to a bound.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    /// Every text the model read (system, user, assistant and tool messages), in order.
    pub prompt: String,
    /// What the caller received, after the output guards; choices separated by blank lines.
    pub completion: String,
    /// Either text was cut at the bound.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl Content {
    /// Redacts `text`, then cuts it at `max_chars` (a cut first could split a secret so
    /// that its rest is no longer recognised). Returns the text and whether it was cut.
    pub fn clean(text: &str, max_chars: usize, redact: impl Fn(&str) -> String) -> (String, bool) {
        let mut clean = redact(text);
        match clean.char_indices().nth(max_chars) {
            Some((at, _)) => {
                clean.truncate(at);
                (clean, true)
            }
            None => (clean, false),
        }
    }
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// Who called, as far as authentication established it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalRecord {
    pub tenant: String,
    /// The key id; for a token, the key it was minted from; for an external JWT, `ext:<sub>`.
    pub key_id: String,
    /// `secret_key`, `publishable_key`, `token`, `external_jwt` or `anonymous`.
    pub credential: String,
    pub audience: String,
    pub environment: String,
    pub plan: String,
    /// The issuer of an external JWT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

/// Where the request came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    /// At most 256 characters of `User-Agent`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
    /// The request's header names in the order sent (at most 32, comma-separated): with
    /// the user agent, a client library's fingerprint, which a user agent alone does not
    /// make (anyone can write one). Kept only when the threat detector runs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub header_order: String,
    /// The TLS hello's fingerprint (cipher suites, signature schemes, groups, ALPN) when TLS
    /// ends at the gateway. Kept only when the threat detector runs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tls: String,
}

/// The request parameters that matter for cost, extraction and debugging.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Params {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub logprobs: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u64>,
    /// Entries in `logit_bias`.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub logit_bias: u64,
    /// Tools declared.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub tools: u64,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

impl Params {
    pub fn is_empty(&self) -> bool {
        *self == Params::default()
    }
}

/// What the gateway answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// `allowed` (sent upstream), `refused` (the gateway answered itself, with an error) or
    /// `served` (answered by the gateway without an upstream: models, tokens, keys).
    pub action: String,
    /// The HTTP status the caller got (a stream's status is its first line: 200).
    pub status: u16,
    /// The error's `code` when the caller got one (also one that ended a stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// What a guard saw or did. Never the text it saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// `injection`, `unicode`, `redaction`, `leak`, `logprobs`.
    pub guard: String,
    /// The rule or kind: an injection rule name, `classifier`, a redaction kind (`EMAIL`), a
    /// leak kind (`canary`, `system_prompt`).
    pub rule: String,
    /// `blocked`, `flagged`, `redacted`, `stripped`.
    pub action: String,
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
}

fn one() -> u32 {
    1
}

fn is_one(v: &u32) -> bool {
    *v == 1
}

/// The limiter's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitRecord {
    /// `admitted`, or the refusing limit's code (`rate_limit_exceeded`, `tokens_per_minute`
    /// ...), `suspended`, `plan_missing`, `unavailable`.
    pub decision: String,
    /// Whose limit refused: `key`, `tenant` or `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_requests: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_tokens: Option<u64>,
    /// `max_tokens` was lowered to what the budget pays for.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clamped: bool,
}

/// Tokens: estimated before the call, reserved, and used (as reported by the upstream, or
/// counted by the gateway when it reported none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub estimated_input: u64,
    pub reserved_output: u64,
    pub input: u64,
    pub output: u64,
    /// The upstream reported usage (false: the gateway counted).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reported: bool,
}

impl Tokens {
    pub fn is_empty(&self) -> bool {
        *self == Tokens::default()
    }
}

/// Durations from the request's arrival, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Until authentication ended (the credential checked, or refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticated_ms: Option<f64>,
    /// Until the input guards (bounds, schema, screening) ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screened_ms: Option<f64>,
    /// Until the limiter admitted the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted_ms: Option<f64>,
    /// Until the upstream's response head arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_first_byte_ms: Option<f64>,
    /// Until the first chunk with content left for the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_token_ms: Option<f64>,
    /// Until the response ended.
    pub duration_ms: f64,
}

impl RequestRecord {
    /// `2xx`, `4xx`, `5xx` (from the status the caller got).
    pub fn status_class(&self) -> &'static str {
        match self.decision.status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        }
    }

    /// The tenant, or `""` when none was established.
    pub fn tenant(&self) -> &str {
        self.principal.as_ref().map_or("", |p| p.tenant.as_str())
    }

    pub fn key_id(&self) -> &str {
        self.principal.as_ref().map_or("", |p| p.key_id.as_str())
    }
}

/// A finish reason as recorded: the OpenAI values, anything else `other` (an upstream's
/// strings do not become values of their own).
pub fn finish_reason(reason: &str) -> &'static str {
    match reason {
        "stop" => "stop",
        "length" => "length",
        "tool_calls" => "tool_calls",
        "content_filter" => "content_filter",
        "function_call" => "function_call",
        _ => "other",
    }
}

/// Milliseconds between two instants, as a float with microsecond precision.
pub fn millis(from: std::time::Instant, to: std::time::Instant) -> f64 {
    to.saturating_duration_since(from).as_micros() as f64 / 1000.0
}
