//! Work beside the request path: the usage ledger (quota seeds, usage flushes, risk factors),
//! the key cache's refresh and last-use flush, the
//! ladder's stored holds, alert evaluation, the store's copy of the
//! audit trail, and the threat detector with its response ladder.

pub mod alerts;
pub mod holds;
pub mod keys;
pub mod ledger;
pub mod stored_trail;
pub mod threat_share;
pub mod threats;
