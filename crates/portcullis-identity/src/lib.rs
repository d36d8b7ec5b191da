//! Who is calling: API keys, tenants, roles, and the control-plane store that keeps them.
//!
//! The store is the source of truth; the request path never queries it. Keys are held in an
//! in-memory [`KeyCache`] that the gateway refreshes when the store's key revision changes,
//! so authentication is a hash-map lookup and one HMAC.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod cache;
pub mod keys;
pub mod secrets;
pub mod store;
pub mod tokens;

pub use cache::{
    new_key, AuthFailure, Authenticated, Credential, KeyCache, Restrictions, TokenSettings,
};
pub use store::{
    AuditEvent, KeyKind, KeyRecord, RiskRecord, Store, StoreError, Tenant, UsageFilter, UsageRow,
};
