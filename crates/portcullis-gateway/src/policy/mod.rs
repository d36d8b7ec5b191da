//! The request side's decisions, one per file, each a step of the same shape: the gateway's
//! services, the request context, the inputs it decides on -> a result or an `ApiError`.
//!
//! In the order the pipeline runs them: [`authn`] (who is calling, on every listener),
//! [`authz`] (may they, with this endpoint and model, on this listener), [`guard_spec`] (which
//! guard settings apply), [`params`] (extraction-enabling parameters), [`bounds`] (sizes),
//! [`screen`] (Unicode sanitation, injection screening), [`admit`] (rate limits, quotas,
//! budgets) and [`rewrite`] (what admission implies for the body sent upstream).

pub mod admit;
pub mod authn;
pub mod authz;
pub mod bounds;
pub mod browser;
pub mod guard_spec;
pub mod params;
pub mod rate_headers;
pub mod restrict;
pub mod rewrite;
pub mod screen;
