//! The gateway's black-box suite: a real simulator and a real gateway over sockets, one
//! module per capability. One test binary (not one per file) links the gateway once.

mod common;
mod external_issuers;
mod guard;
mod hostile_upstream;
mod identity;
mod lifecycle;
mod output;
mod protocols;
mod reload;
mod responses;
mod routing;
mod stream_texts;
mod streaming;
mod telemetry;
mod threats;
mod upstream_errors;
mod usage;
mod validation;
mod watermark;
mod wire_limits;
