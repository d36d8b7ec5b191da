//! The OpenAI wire format, described once.
//!
//! Every other crate asks this one what a request or an answer of an endpoint looks like: the
//! request models and their validation ([`Api::validate`], [`schema`]), strict JSON
//! ([`json`]), where the prompt texts are ([`Api::visit_prompt`]), how many tokens they are
//! ([`Api::count_prompt`], [`tokens`]), which fields of an answer a caller may see
//! ([`fields`], [`Api::response_allow_list`]), where the generated texts and the usage are
//! ([`Api::generated_texts`], [`Api::usage`]), and how server-sent events are framed
//! ([`sse`]). An endpoint is one file under `api/`.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod api;
pub mod fields;
pub mod json;
pub mod request;
pub mod schema;
pub mod sse;
pub mod tokens;

pub use api::{
    api, Api, Body, GeneratedText, OutputLimit, Param, PromptPart, ReportedUsage, Stripped,
    TextPiece,
};
pub use request::InferenceRequest;
pub use tokens::Encoding;
