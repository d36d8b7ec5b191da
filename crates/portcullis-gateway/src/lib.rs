//! The Portcullis request path.
//!
//! Read top to bottom, a request goes: [`listener`] (wire limits, TLS, HTTP/1 and HTTP/2) ->
//! [`pipeline`] (which operation, then each step in order, from [`policy`]: authenticate,
//! authorize, read and check the body with [`inbound`], pick the model from the [`catalog`],
//! check parameters and bounds, screen the input, admit against rate limits, quotas and
//! budgets) -> [`upstream`] (bulkhead, timeouts, credential injection; the raw answer) ->
//! [`filters`] (the response chain, whole or streamed: accounting, field allow-list,
//! redaction, leak checks; settles when the response ends) -> [`respond`] (the one place
//! errors become responses). The wire format of each endpoint is `portcullis_openai`'s.
//! [`admin`] serves the operator listener. Each request runs under one version of the
//! configuration's [`Settings`], which [`reload`] replaces without a restart.
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
pub mod reload;
pub mod respond;
mod server;
mod state;
pub mod upstream;

pub use server::{Gateway, GatewayError, RunningGateway};
pub use state::{GatewayState, Settings};
