//! An OpenAI-compatible upstream simulator, and a load generator, for tests, demos and
//! benchmarks.
//!
//! The simulator answers chat completions (streaming or not), completions, the Responses API
//! (whole, or as typed events), embeddings and the model list with deterministic text, and can be told at run time to be slow, to fail with a
//! status, to reset or hang mid-stream, or to answer garbage. It records what reached it
//! (`GET /_sim/requests`) so tests can check what the gateway forwarded, and counts streams
//! that the client abandoned (`GET /_sim/stats`) so tests can check cancellation.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod body;
mod generate;
pub mod load;
mod options;
mod responses;
mod server;

pub use options::{Fault, ReplyAs, SimOptions};
pub use server::{RecordedRequest, SimStats, Simulator};
