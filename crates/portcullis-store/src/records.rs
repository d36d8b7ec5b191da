//! What the store keeps, as plain records shared by every backend.

use portcullis_core::{Audience, Environment};
use serde::Serialize;

/// A customer, partner or internal organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub name: String,
    #[serde(serialize_with = "audience_text")]
    pub audience: Audience,
    pub plan: String,
    pub created_at: i64,
}

fn audience_text<S: serde::Serializer>(a: &Audience, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(a.as_str())
}

/// `secret` keys stay server-side; `publishable` keys are made for browsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Secret,
    Publishable,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Secret => "secret",
            KeyKind::Publishable => "publishable",
        }
    }
}

/// A key as stored. `Serialize` leaves the hash out, so a record can be shown as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRecord {
    pub id: String,
    pub tenant: String,
    #[serde(skip)]
    pub secret_hash: [u8; 32],
    #[serde(serialize_with = "environment_text")]
    pub environment: Environment,
    pub kind: KeyKind,
    pub roles: Vec<String>,
    pub models: Option<Vec<String>>,
    pub description: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
    /// CIDRs the key may be used from; `None` is anywhere.
    pub allowed_ips: Option<Vec<String>>,
    /// Browser origins a publishable key may be used from (exact `scheme://host[:port]`).
    pub allowed_origins: Option<Vec<String>>,
    /// Last successful authentication, to within the flush interval (written in batches,
    /// never once per request).
    pub last_used_at: Option<i64>,
}

fn environment_text<S: serde::Serializer>(e: &Environment, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(e.as_str())
}

impl KeyRecord {
    pub fn is_usable(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// One audited change: who, what, when, from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: i64,
    /// `admin`, `key:<id>` or `gateway`.
    pub actor: String,
    /// e.g. `tenant.create`, `key.create`, `key.revoke`, `key.browser_use`.
    pub action: String,
    pub target: String,
    /// Where the action came from: a peer address or a listener.
    pub source: String,
    pub detail: String,
}

/// A token signing key (Ed25519): the private half never leaves the store and this process.
#[derive(Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub private_pkcs8: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    pub day: String,
    pub tenant: String,
    pub key_id: String,
    pub model: String,
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_nanos: i64,
}

/// Which usage rows to read: days from `from` to `to` inclusive (`YYYY-MM-DD`; a month is
/// `YYYY-MM-01` to `YYYY-MM-31`), optionally one tenant, key or model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    pub tenant: Option<String>,
    pub key_id: Option<String>,
    pub model: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A stored risk factor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskRecord {
    /// `tenant:NAME` or `key:ID`.
    pub subject: String,
    pub factor: f64,
    pub expires_at_us: i64,
    pub reason: String,
    pub set_at: i64,
}

/// A JSON list column (roles, models, restrictions) read back.
pub(crate) fn json_list(text: Option<String>) -> Option<Vec<String>> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

pub(crate) fn list_json(list: &Option<Vec<String>>) -> Option<String> {
    list.as_ref().and_then(|l| serde_json::to_string(l).ok())
}

/// A request record as the store keeps it: the columns it is filtered by, and the whole
/// record as JSON text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredRequest {
    pub id: String,
    /// When the request arrived, microseconds since the Unix epoch.
    pub at_us: i64,
    /// Empty when the caller was not authenticated (and so for the columns below).
    pub tenant: String,
    pub key_id: String,
    pub model: String,
    /// `allowed`, `refused` or `served`.
    pub decision: String,
    /// The error code of a refusal, or empty.
    pub code: String,
    pub record: String,
}

/// Which stored request records to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestQuery {
    pub tenant: Option<String>,
    pub key_id: Option<String>,
    pub model: Option<String>,
    /// A decision or an error code.
    pub decision: Option<String>,
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
    /// Only rows after this `seq`, oldest first; without it, the newest first.
    pub after_seq: Option<i64>,
    /// 1 to 1000.
    pub limit: u32,
}

/// Stored records, as `(seq, record JSON)`, and the highest `seq` when they were read (the
/// cursor to follow from).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestPage {
    pub rows: Vec<(i64, String)>,
    pub last_seq: i64,
}
