//! Work beside the request path: the usage ledger (quota seeds, usage flushes, risk factors).

pub mod ledger;
