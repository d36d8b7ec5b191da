//! Who is calling, and the control-plane store that remembers it.
//!
//! Today this crate holds the store (tenants, keys and roles arrive with the identity work).
//! The store is opened once at start-up, applies its migrations, and answers `/readyz`'s
//! "is the store reachable" with a real query.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod store;

pub use store::{Store, StoreError};
