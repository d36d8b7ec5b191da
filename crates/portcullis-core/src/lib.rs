//! The shared vocabulary of Portcullis.
//!
//! Every other crate speaks in these terms: the OpenAI-shaped [`ApiError`] that is the only
//! way an error leaves the gateway, and the [`RequestId`] that ties a response, its logs and
//! its upstream call together. Keeping them here lets the request path, the admin API and the
//! simulator agree on the wire format without depending on each other.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod clock;
pub mod error;
pub mod request_id;
pub mod vocabulary;

pub use clock::{Clock, SharedClock, SystemClock};
pub use error::{ApiError, ErrorKind};
pub use request_id::RequestId;
pub use vocabulary::{Audience, Endpoint, Environment, KeyPrincipal, ListenerKind, Principal};
