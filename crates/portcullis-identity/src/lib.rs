//! Who is calling: API keys, tokens, tenants and roles, kept in the control-plane store
//! (`portcullis-store`).
//!
//! The store is the source of truth; the request path never queries it. Keys are held in an
//! in-memory [`KeyCache`] that the gateway refreshes when the store's key revision changes,
//! so authentication is a hash-map lookup and one HMAC.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod cache;
pub mod keys;
pub mod secrets;
pub mod tokens;

pub use cache::{
    new_key, AuthFailure, Authenticated, Credential, KeyCache, Restrictions, TokenSettings,
};
/// The store lives in its own crate; re-exported here for the identity types it keeps.
pub use portcullis_store as store;
pub use portcullis_store::{
    AuditEvent, KeyKind, KeyRecord, RiskRecord, Store, StoreError, Tenant, UsageFilter, UsageRow,
};
