//! Guards on what goes into a model: Unicode sanitation and prompt-injection / jailbreak
//! detection. Used by the gateway's request path and by `portcullis guard scan`.
#![forbid(unsafe_code)]

pub mod decode;
pub mod detector;
pub mod features;
pub mod normalize;
pub mod rules;

pub use detector::{Detector, Finding};
pub use normalize::{sanitize, scan_form, Carrier, Sanitized};
