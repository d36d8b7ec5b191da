//! The Portcullis request path.
//!
//! Read top to bottom, a request goes: [`listener`] (wire limits, TLS, HTTP/1 and HTTP/2) ->
//! [`routes`] (which operation, on which listener) -> [`authenticate`] -> [`inbound`] (read and
//! check the body, pick the model) -> [`catalog`] (model to upstream) -> [`screen`] (Unicode
//! sanitation, injection screening) -> [`usage`] (estimate
//! cost, admit against rate limits, quotas and budgets; account afterwards) -> [`upstream`] (bulkhead,
//! timeouts, credential injection, streaming) -> [`output`] (field allow-list, redaction) ->
//! [`respond`] (the one place errors become
//! responses). [`admin`] serves the operator listener.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod admin;
pub mod authenticate;
pub mod authorize;
pub mod browser;
pub mod catalog;
pub mod cors;
pub mod inbound;
pub mod issuers;
pub mod listener;
pub mod output;
pub mod respond;
pub mod routes;
pub mod screen;
mod server;
mod state;
pub mod token_exchange;
pub mod upstream;
pub mod usage;

pub use server::{Gateway, GatewayError, RunningGateway};
pub use state::GatewayState;
