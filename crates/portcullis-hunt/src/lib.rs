//! Threat hunting: model extraction and distillation detection beside the request path.
//!
//! Each request becomes a compact feature vector ([`features`]); the [`detector`] folds it
//! into a bounded per-account summary ([`account`]) and into tables shared across accounts
//! ([`campaign`]: templates, infrastructure, clusters), and scores risk with reasons
//! ([`risk`]). The same detector runs live (the gateway feeds it through a bounded channel)
//! and offline ([`replay`] over recorded traffic in simulated time, [`eval`] against
//! labels), and [`simulate`] writes seeded traffic of legitimate personas and campaigns to
//! measure it on.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod account;
pub mod campaign;
pub mod detector;
pub mod eval;
pub mod features;
pub mod replay;
pub mod risk;
pub mod simulate;
pub mod sketch;

pub use detector::{Detector, Limits, Outcome, Subject, Verdict};
pub use features::{prompt::Endpoint, Observation, RequestInput};
