//! The shared backend: every replica's limits in one Redis, decided by Lua scripts.
//!
//! A request's checks go to Redis in one `EVALSHA` (the script is loaded once and called by
//! its SHA; `redis::Script` reloads it if Redis answers NOSCRIPT after a restart), which runs
//! atomically, so replicas never race between reading and writing a limit. The script takes
//! its clock from `TIME` on the Redis server: replicas with skewed clocks still agree.
//!
//! The connection is a `ConnectionManager` (multiplexed, reconnecting). Health is tracked
//! here: a failed call marks Redis down, requests then use the configured outage policy at
//! once instead of waiting on a dead server, and a probe every `probe_interval` marks it up
//! again as soon as it answers.

use crate::check::{CheckKind, Demand, Report, Settlement, Verdict};
use redis::aio::ConnectionManager;
use redis::{Client, Script};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a concurrency slot is held if its request never settles (its replica died).
pub const LEASE_LIFETIME_US: u64 = 15 * 60 * 1_000_000;

#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct RedisUnavailable(String);

pub struct RedisBackend {
    connection: ConnectionManager,
    admit: Script,
    settle: Script,
    healthy: AtomicBool,
    failures: AtomicU64,
    /// Settlements waiting for the batching task.
    pending: tokio::sync::mpsc::UnboundedSender<Settlement>,
}

/// Most settlements sent in one script call.
const SETTLE_BATCH: usize = 256;

impl RedisBackend {
    /// Prepares a connection to `url` without waiting for it: the gateway starts even while
    /// Redis is down, and the outage policy applies until it answers.
    pub fn new(url: &str, timeout: Duration) -> Result<Arc<RedisBackend>, String> {
        let client = Client::open(url).map_err(|e| format!("invalid redis_url: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(timeout);
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("cannot prepare the redis connection: {e}"))?;
        let (pending, mut queue) = tokio::sync::mpsc::unbounded_channel::<Settlement>();
        let backend = Arc::new(RedisBackend {
            connection,
            admit: Script::new(include_str!("admit.lua")),
            settle: Script::new(include_str!("settle.lua")),
            healthy: AtomicBool::new(false),
            failures: AtomicU64::new(0),
            pending,
        });
        // Settlements leave the request path at once and go to Redis in batches: whatever
        // arrived while the previous call was in flight goes in the next one, so under load
        // Redis sees far fewer calls, and alone a settlement waits for nothing.
        let weak = Arc::downgrade(&backend);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(SETTLE_BATCH);
            while queue.recv_many(&mut batch, SETTLE_BATCH).await > 0 {
                let Some(backend) = weak.upgrade() else {
                    return;
                };
                if let Err(e) = backend.settle_all(&batch).await {
                    tracing::warn!(error = %e, settlements = batch.len(), "could not settle reservations in redis; their counters correct themselves when they expire or are seeded again");
                }
                batch.clear();
            }
        });
        Ok(backend)
    }

    /// Queues a settlement for the batching task; never waits.
    pub fn settle_later(&self, settlement: Settlement) {
        let _ = self.pending.send(settlement);
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Calls that failed since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn failed(&self, error: redis::RedisError) -> RedisUnavailable {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if self.healthy.swap(false, Ordering::Relaxed) {
            tracing::error!(error = %error, "redis is unavailable; the limits outage policy applies until it answers again");
        }
        RedisUnavailable(error.to_string())
    }

    /// Pings Redis and records whether it answered; called by the probe task.
    pub async fn probe(&self) -> bool {
        let mut connection = self.connection.clone();
        let ok = redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .is_ok();
        // Loading the scripts here means the first request after (re)start finds them.
        let ok = ok
            && self.admit.load_async(&mut connection).await.is_ok()
            && self.settle.load_async(&mut connection).await.is_ok();
        if ok && !self.healthy.swap(true, Ordering::Relaxed) {
            tracing::info!("redis answers; shared limits are in use");
        }
        if !ok {
            self.healthy.store(false, Ordering::Relaxed);
        }
        ok
    }

    pub async fn admit(&self, demand: &Demand) -> Result<Verdict, RedisUnavailable> {
        let mut invocation = self.admit.prepare_invoke();
        invocation
            .arg(demand.checks.len())
            .arg(demand.out_min)
            .arg(demand.out_max)
            .arg(demand.lease);
        for check in &demand.checks {
            invocation.key(&check.key);
            let (kind, a, b, c) = match &check.kind {
                CheckKind::Rate(rate) => (1, rate.limit, rate.period_us, rate.burst),
                CheckKind::Quota {
                    limit,
                    expires_at_us,
                    ..
                } => (2, *limit, *expires_at_us, 0),
                CheckKind::Concurrency { max } => (3, *max, LEASE_LIFETIME_US, 0),
            };
            invocation
                .arg(kind)
                .arg(check.base)
                .arg(check.per_out)
                .arg(a)
                .arg(b)
                .arg(c);
        }
        let mut connection = self.connection.clone();
        let reply: Vec<i64> = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(|e| self.failed(e))?;
        parse_verdict(&reply, demand.checks.len())
            .ok_or_else(|| RedisUnavailable("unexpected reply from the admit script".into()))
    }

    /// Gives a quota counter its starting value unless it has one; it expires a minute after
    /// its period ends.
    pub async fn seed(
        &self,
        key: &str,
        used: u64,
        expires_at_us: u64,
    ) -> Result<(), RedisUnavailable> {
        let mut connection = self.connection.clone();
        redis::cmd("SET")
            .arg(key)
            .arg(used)
            .arg("NX")
            .arg("PXAT")
            .arg(expires_at_us / 1000 + 60_000)
            .query_async::<Option<String>>(&mut connection)
            .await
            .map(|_| ())
            .map_err(|e| self.failed(e))
    }

    pub async fn settle(&self, settlement: &Settlement) -> Result<(), RedisUnavailable> {
        self.settle_all(std::slice::from_ref(settlement)).await
    }

    /// Settles many reservations in one script call.
    pub async fn settle_all(&self, settlements: &[Settlement]) -> Result<(), RedisUnavailable> {
        let adjustments: Vec<_> = settlements.iter().flat_map(|s| &s.adjustments).collect();
        let releases: Vec<_> = settlements
            .iter()
            .flat_map(|s| s.releases.iter().map(move |key| (key, s.lease)))
            .collect();
        if adjustments.is_empty() && releases.is_empty() {
            return Ok(());
        }
        let mut invocation = self.settle.prepare_invoke();
        invocation.arg(adjustments.len()).arg(releases.len());
        for adjustment in &adjustments {
            invocation.key(&adjustment.key);
            let (kind, a, b) = match &adjustment.kind {
                CheckKind::Rate(rate) => (1, rate.limit, rate.period_us),
                CheckKind::Quota { .. } => (2, 0, 0),
                CheckKind::Concurrency { .. } => (3, 0, 0),
            };
            invocation
                .arg(kind)
                .arg(adjustment.delta)
                .arg(a)
                .arg(b)
                .arg(0);
        }
        for (key, _) in &releases {
            invocation.key(*key);
        }
        for (_, lease) in &releases {
            invocation.arg(*lease);
        }
        let mut connection = self.connection.clone();
        invocation
            .invoke_async::<i64>(&mut connection)
            .await
            .map(|_| ())
            .map_err(|e| self.failed(e))
    }
}

fn parse_verdict(reply: &[i64], checks: usize) -> Option<Verdict> {
    let (&status, rest) = reply.split_first()?;
    if status == -1 {
        return Some(Verdict::Unseeded(
            rest.iter().map(|&i| i as usize).collect(),
        ));
    }
    let (&first, rest) = rest.split_first()?;
    let (&second, rest) = rest.split_first()?;
    if rest.len() != checks * 3 {
        return None;
    }
    let reports = rest
        .chunks_exact(3)
        .map(|r| Report {
            limit: r[0].max(0) as u64,
            remaining: r[1].max(0) as u64,
            reset_us: r[2].max(0) as u64,
        })
        .collect();
    Some(match status {
        1 => Verdict::Admitted {
            out: first.max(0) as u64,
            reports,
        },
        _ => Verdict::Denied {
            index: first.max(0) as usize,
            retry_after_us: (second >= 0).then_some(second as u64),
            reports,
        },
    })
}

impl super::Backend for RedisBackend {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn is_healthy(&self) -> bool {
        RedisBackend::is_healthy(self)
    }

    fn failures(&self) -> u64 {
        RedisBackend::failures(self)
    }

    fn admit<'a>(&'a self, demand: &'a Demand) -> super::BackendFuture<'a, Verdict> {
        Box::pin(RedisBackend::admit(self, demand))
    }

    fn seed<'a>(
        &'a self,
        key: &'a str,
        used: u64,
        expires_at_us: u64,
    ) -> super::BackendFuture<'a, ()> {
        Box::pin(RedisBackend::seed(self, key, used, expires_at_us))
    }

    fn settle<'a>(&'a self, settlement: &'a Settlement) -> super::BackendFuture<'a, ()> {
        Box::pin(RedisBackend::settle(self, settlement))
    }

    fn settle_later(&self, settlement: Settlement) {
        RedisBackend::settle_later(self, settlement)
    }

    fn probe(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>> {
        Box::pin(RedisBackend::probe(self))
    }
}
