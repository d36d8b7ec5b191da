//! The in-process backend: every limit's state in one map behind one lock.
//!
//! One lock makes a request's checks atomic together (all pass and are reserved, or none),
//! which per-limit locks or atomics could not. A decision holds it for well under a
//! microsecond (see `cargo bench -p portcullis-limits`), far below the request's other costs.

use crate::check::{Adjustment, CheckKind, Demand, Report, Settlement, Verdict};
use crate::gcra::Bucket;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy)]
enum Slot {
    /// A GCRA bucket, and when it will have drained empty (for sweeping).
    Bucket(Bucket, u64),
    /// A quota counter and the end of its period.
    Counter { used: u64, expires_at: u64 },
    /// Requests in flight.
    InFlight(u64),
}

/// Limits for one process.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    slots: Mutex<HashMap<String, Slot>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides `demand` at `now` (microseconds since 1970).
    pub fn admit(&self, demand: &Demand, now: u64) -> Verdict {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let unseeded: Vec<usize> = demand
            .checks
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                matches!(c.kind, CheckKind::Quota { .. })
                    && !matches!(slots.get(&c.key), Some(Slot::Counter { expires_at, .. }) if *expires_at > now)
            })
            .map(|(i, _)| i)
            .collect();
        if !unseeded.is_empty() {
            return Verdict::Unseeded(unseeded);
        }

        // How many output tokens every check can pay for, and the first check that cannot
        // pay even for the minimum.
        let mut out = demand.out_max;
        let mut refused = None;
        for (i, check) in demand.checks.iter().enumerate() {
            let room = room(slots.get(&check.key), &check.kind, now);
            let fits = match room.checked_sub(check.base) {
                None => 0,
                Some(_) if check.per_out == 0 => u64::MAX,
                Some(left) => left / check.per_out,
            };
            let base_fits = room >= check.base;
            if !base_fits || fits < demand.out_min {
                refused = Some(i);
                break;
            }
            out = out.min(fits);
        }
        let out = out.max(demand.out_min);

        if let Some(index) = refused {
            let check = &demand.checks[index];
            let retry_after_us = match &check.kind {
                CheckKind::Rate(rate) => {
                    let mut bucket = bucket_of(slots.get(&check.key));
                    rate.spend(&mut bucket, now, check.amount(demand.out_min))
                        .err()
                        .flatten()
                }
                CheckKind::Quota { .. } => None,
                CheckKind::Concurrency { .. } => Some(1_000_000),
            };
            let reports = demand
                .checks
                .iter()
                .map(|c| report(slots.get(&c.key), &c.kind, now))
                .collect();
            return Verdict::Denied {
                index,
                retry_after_us,
                reports,
            };
        }

        for check in &demand.checks {
            let amount = check.amount(out);
            let slot = slots.get(&check.key).copied();
            let updated = match (&check.kind, slot) {
                (CheckKind::Rate(rate), slot) => {
                    let mut bucket = bucket_of(slot.as_ref());
                    // Cannot fail: room was checked under the same lock.
                    let _ = rate.spend(&mut bucket, now, amount);
                    Slot::Bucket(bucket, now + rate.reset_after(bucket, now))
                }
                (CheckKind::Quota { .. }, Some(Slot::Counter { used, expires_at })) => {
                    Slot::Counter {
                        used: used.saturating_add(amount),
                        expires_at,
                    }
                }
                (CheckKind::Concurrency { .. }, Some(Slot::InFlight(n))) => Slot::InFlight(n + 1),
                (CheckKind::Concurrency { .. }, _) => Slot::InFlight(1),
                (CheckKind::Quota { .. }, _) => continue, // seeded above
            };
            slots.insert(check.key.clone(), updated);
        }
        let reports = demand
            .checks
            .iter()
            .map(|c| report(slots.get(&c.key), &c.kind, now))
            .collect();
        Verdict::Admitted { out, reports }
    }

    /// Gives a quota counter its starting value, unless another request already did.
    pub fn seed(&self, key: &str, used: u64, expires_at: u64, now: u64) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let live =
            matches!(slots.get(key), Some(Slot::Counter { expires_at, .. }) if *expires_at > now);
        if !live {
            slots.insert(key.to_owned(), Slot::Counter { used, expires_at });
        }
    }

    /// Applies corrections and releases concurrency slots.
    pub fn settle(&self, settlement: &Settlement, now: u64) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        for Adjustment { key, kind, delta } in &settlement.adjustments {
            match (kind, slots.get_mut(key)) {
                (CheckKind::Rate(rate), slot) => {
                    let mut bucket = bucket_of(slot.as_deref());
                    rate.adjust(&mut bucket, now, *delta);
                    slots.insert(
                        key.clone(),
                        Slot::Bucket(bucket, now + rate.reset_after(bucket, now)),
                    );
                }
                (CheckKind::Quota { .. }, Some(Slot::Counter { used, .. })) => {
                    *used = used.saturating_add_signed(*delta);
                }
                _ => {}
            }
        }
        for key in &settlement.releases {
            if let Some(Slot::InFlight(n)) = slots.get_mut(key) {
                *n = n.saturating_sub(1);
            }
        }
    }

    /// Forgets state that no longer limits anything: replenished rates, ended periods, idle
    /// concurrency counters. Keeps memory bounded by the keys active recently.
    pub fn sweep(&self, now: u64) -> usize {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let before = slots.len();
        slots.retain(|_, slot| match slot {
            Slot::Bucket(_, empty_at) => *empty_at > now,
            Slot::Counter { expires_at, .. } => *expires_at > now,
            Slot::InFlight(n) => *n > 0,
        });
        before - slots.len()
    }

    /// How many limits hold state.
    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn bucket_of(slot: Option<&Slot>) -> Bucket {
    match slot {
        Some(Slot::Bucket(b, _)) => *b,
        _ => Bucket::default(),
    }
}

/// Units of a limit available now.
fn room(slot: Option<&Slot>, kind: &CheckKind, now: u64) -> u64 {
    match kind {
        CheckKind::Rate(rate) => rate.room(bucket_of(slot), now),
        CheckKind::Quota { limit, .. } => match slot {
            Some(Slot::Counter { used, .. }) => limit.saturating_sub(*used),
            _ => 0,
        },
        CheckKind::Concurrency { max } => match slot {
            Some(Slot::InFlight(n)) => max.saturating_sub(*n),
            _ => *max,
        },
    }
}

fn report(slot: Option<&Slot>, kind: &CheckKind, now: u64) -> Report {
    let remaining = room(slot, kind, now);
    match kind {
        CheckKind::Rate(rate) => Report {
            limit: rate.limit,
            remaining,
            reset_us: rate.reset_after(bucket_of(slot), now),
        },
        CheckKind::Quota {
            limit,
            expires_at_us,
            ..
        } => Report {
            limit: *limit,
            remaining,
            reset_us: expires_at_us.saturating_sub(now),
        },
        CheckKind::Concurrency { max } => Report {
            limit: *max,
            remaining,
            reset_us: 0,
        },
    }
}

/// The memory backend decides at once and never fails.
impl super::Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn is_healthy(&self) -> bool {
        true
    }

    fn failures(&self) -> u64 {
        0
    }

    fn admit<'a>(&'a self, demand: &'a Demand) -> super::BackendFuture<'a, Verdict> {
        let verdict = MemoryBackend::admit(self, demand, crate::now_us());
        Box::pin(std::future::ready(Ok(verdict)))
    }

    fn seed<'a>(
        &'a self,
        key: &'a str,
        used: u64,
        expires_at_us: u64,
    ) -> super::BackendFuture<'a, ()> {
        MemoryBackend::seed(self, key, used, expires_at_us, crate::now_us());
        Box::pin(std::future::ready(Ok(())))
    }

    fn settle<'a>(&'a self, settlement: &'a Settlement) -> super::BackendFuture<'a, ()> {
        MemoryBackend::settle(self, settlement, crate::now_us());
        Box::pin(std::future::ready(Ok(())))
    }

    fn settle_later(&self, settlement: Settlement) {
        MemoryBackend::settle(self, &settlement, crate::now_us());
    }

    fn probe(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>> {
        Box::pin(std::future::ready(true))
    }
}
