//! Work beside the request path: the usage ledger (quota seeds, usage flushes, risk factors),
//! the key cache's refresh and last-use flush, and alert evaluation.

pub mod alerts;
pub mod keys;
pub mod ledger;
