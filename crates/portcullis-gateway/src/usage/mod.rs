//! Usage control on the request path: estimate, admit, account.
//!
//! `admit` turns a parsed request into an estimate (prompt tokens counted with the model's
//! tokenizer, output reserved from `max_tokens`) and asks the limiter; a refusal becomes a 429
//! (or 503 when the limiter cannot decide and fails closed) with the headers clients parse.
//! The response side's `filters::accounting` settles the reservation with the real usage.
//! `ledger` connects the limiter to the store: quota seeds, usage flushes, risk factors.

pub mod admit;
pub mod headers;
pub mod ledger;
