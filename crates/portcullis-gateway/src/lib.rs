//! The Portcullis request path.
//!
//! Read top to bottom, a request goes: [`listener`] (wire limits, TLS, HTTP/1 and HTTP/2) ->
//! [`routes`] (which operation, on which listener) -> [`authenticate`] -> [`inbound`] (read and
//! check the body, pick the model) -> [`catalog`] (model to upstream) -> [`screen`] (Unicode
//! sanitation, injection screening) -> [`usage`] (estimate
//! cost, admit against rate limits, quotas and budgets) -> [`upstream`] (bulkhead,
//! timeouts, credential injection; the raw answer) -> [`filters`] (the response chain, whole
//! or streamed: accounting, field allow-list, redaction, leak checks; settles when the
//! response ends) -> [`respond`] (the one place errors become responses). The wire format of
//! each endpoint is `portcullis_openai`'s. [`admin`] serves the operator listener.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod admin;
mod background;
pub mod catalog;
pub mod cors;
pub mod filters;
pub mod inbound;
pub mod issuers;
pub mod listener;
pub mod pipeline;
pub mod policy;
pub mod respond;
mod server;
mod state;
pub mod upstream;

pub use server::{Gateway, GatewayError, RunningGateway};
pub use state::GatewayState;
