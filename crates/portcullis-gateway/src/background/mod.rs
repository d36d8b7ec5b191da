//! Work beside the request path: the usage ledger (quota seeds, usage flushes, risk factors)
//! and the key cache's refresh and last-use flush.

pub mod keys;
pub mod ledger;
