//! Guards on what goes into a model (Unicode sanitation, prompt-injection and jailbreak
//! detection) and on what comes out (redaction of personal data and secrets, also while
//! streaming). Used by the gateway's request path and by `portcullis guard scan|redact`.
#![forbid(unsafe_code)]

pub mod corpus_split;
pub mod decode;
pub mod detector;
pub mod features;
pub mod leak;
pub mod normalize;
pub mod redact;
pub mod rules;
pub mod searcher;

pub use detector::{Detector, Finding};
pub use normalize::{sanitize, scan_form, Carrier, Sanitized};
