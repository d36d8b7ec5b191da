//! Where limit state lives: this process ([`MemoryBackend`]), or Redis shared by every
//! replica ([`RedisBackend`]). The limiter decides what to check; a [`Backend`] applies one
//! request's checks atomically (all reserved, or none) and settles them later. A new backend
//! is one implementation of the trait (and a `[limits] backend` name in the configuration).

pub mod memory;
pub mod redis;

pub use memory::MemoryBackend;
pub use redis::{RedisBackend, RedisUnavailable};

use crate::check::{Demand, Settlement, Verdict};
use std::future::Future;
use std::pin::Pin;

/// A backend's answer, later.
pub type BackendFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, RedisUnavailable>> + Send + 'a>>;

/// Limit state, behind one atomic decision per request.
pub trait Backend: Send + Sync {
    /// For `/readyz`.
    fn name(&self) -> &'static str;
    /// Whether it answers now; while it does not, the limiter's outage policy decides.
    fn is_healthy(&self) -> bool;
    /// Calls that failed since start.
    fn failures(&self) -> u64;
    /// Checks `demand` and, when every check passes, reserves it all.
    fn admit<'a>(&'a self, demand: &'a Demand) -> BackendFuture<'a, Verdict>;
    /// Gives a quota counter its starting value (from the ledger) unless it has one.
    fn seed<'a>(&'a self, key: &'a str, used: u64, expires_at_us: u64) -> BackendFuture<'a, ()>;
    /// Applies a settlement now.
    fn settle<'a>(&'a self, settlement: &'a Settlement) -> BackendFuture<'a, ()>;
    /// Applies a settlement soon, off the request path; never waits.
    fn settle_later(&self, settlement: Settlement);
    /// Asks whether it answers again (after failures, and now and then).
    fn probe(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;
}
