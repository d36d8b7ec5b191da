//! The threat ladder's per-key holds that are not limiter factors: a restriction
//! (`restrict:KEY`, its output cap in `factor`) and a required token re-exchange
//! (`tokens:KEY`, tokens minted up to `set_at` refused). They live in the store's risk table
//! beside the factors, so every replica applies them at its next refresh, they expire with
//! the rung's hold, and clearing a key lifts them with its factor.

use crate::policy::restrict::Restriction;
use crate::state::GatewayState;
use portcullis_identity::RiskRecord;
use std::collections::HashMap;

pub const RESTRICT: &str = "restrict";
pub const TOKENS: &str = "tokens";

/// The store's name of a hold.
pub fn name(kind: &str, key: &str) -> String {
    format!("{kind}:{key}")
}

/// Every hold's name for a `key:ID` subject (empty for anything else).
pub fn names_for(subject: &str) -> Vec<String> {
    match subject.strip_prefix("key:") {
        Some(key) if !key.is_empty() => vec![name(RESTRICT, key), name(TOKENS, key)],
        _ => Vec::new(),
    }
}

/// Applies the holds among `records` (the store's unexpired rows), replacing this
/// replica's; rows of other kinds are ignored.
pub fn apply(state: &GatewayState, records: &[RiskRecord]) {
    let mut restricted = HashMap::new();
    let mut reexchange = HashMap::new();
    for r in records {
        match r.subject.split_once(':') {
            Some((RESTRICT, key)) if !key.is_empty() => {
                restricted.insert(
                    key.to_owned(),
                    Restriction {
                        max_tokens: r.factor.max(1.0) as u64,
                        expires_at_us: r.expires_at_us.max(0) as u64,
                    },
                );
            }
            Some((TOKENS, key)) if !key.is_empty() => {
                reexchange.insert(key.to_owned(), r.set_at.div_euclid(1_000_000));
            }
            _ => {}
        }
    }
    state.restrictions.replace(restricted);
    state.keys.replace_reexchange(reexchange);
}

/// Lifts a key's holds on this replica (the caller removes the stored rows).
pub fn lift(state: &GatewayState, subject: &str) {
    if let Some(key) = subject.strip_prefix("key:") {
        state.restrictions.clear(key);
        state.keys.clear_reexchange(key);
    }
}
