//! The limiter: builds a request's checks from its plan, asks the backend, and settles.

use crate::backend::{Backend, MemoryBackend, RedisBackend};
use crate::check::{Adjustment, Check, CheckKind, Demand, Label, Report, Settlement, Verdict};
use crate::ledger::{Ledger, PendingUsage, Totals, UsageKey};
use crate::now_us;
use crate::policy::{amount, key_part, Estimate, Price, ScopeChecks};
use crate::quota::{Calendar, QuotaScope, Today};
use crate::risk::RiskTable;
use portcullis_config::{Config, LimitSpec, LimitsBackend, OutagePolicy, Plan};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Who is asking and for which model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub tenant: String,
    pub key_id: String,
    pub plan: String,
    pub model: String,
}

/// Tokens a request actually used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// The limits the `x-ratelimit-*` headers describe: the tightest requests limit and the
/// tightest tokens limit that applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateHeaders {
    pub requests: Option<Report>,
    pub tokens: Option<Report>,
}

/// A limit refused the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Denial {
    pub label: Label,
    /// `key`, `tenant` or `model`: whose limit it was.
    pub scope: &'static str,
    /// How long until the request would fit; `None` when waiting does not help.
    pub retry_after_us: Option<u64>,
    pub headers: RateHeaders,
}

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    Limited(Denial),
    /// The principal's risk factor is 0 until `until_us`.
    Suspended {
        until_us: u64,
    },
    /// The tenant's plan is not configured.
    PlanMissing,
    /// The shared backend (or the ledger) cannot be reached and the policy is to fail closed.
    Unavailable,
}

/// How the limiter is doing, for `/readyz`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LimiterStatus {
    pub backend: &'static str,
    /// Whether Redis answers (always true for the memory backend).
    pub healthy: bool,
    /// Requests decided by the outage policy instead of Redis since start.
    pub outage_decisions: u64,
    pub redis_failures: u64,
}

/// Plans and the per-tenant and per-key overrides, passed to [`Limiter::admit`] by the caller:
/// a configuration reload builds a new book, and a request is admitted under the book of the
/// configuration it started with. Limit state is kept by scope, not by plan, so a new book
/// changes the limits a counter is held to without resetting it.
#[derive(Debug, Clone)]
pub struct PlanBook {
    plans: BTreeMap<String, Plan>,
    tenant_limits: BTreeMap<String, LimitSpec>,
    key_limits: BTreeMap<String, LimitSpec>,
}

impl PlanBook {
    /// The configuration's plans (with `default` built in unless redefined) and overrides.
    pub fn new(config: &Config) -> PlanBook {
        let mut plans = config.plans.clone();
        plans
            .entry("default".to_owned())
            .or_insert_with(Plan::builtin_default);
        PlanBook {
            plans,
            tenant_limits: config.tenant_limits.clone(),
            key_limits: config.key_limits.clone(),
        }
    }

    pub fn plan(&self, name: &str) -> Option<&Plan> {
        self.plans.get(name)
    }

    pub fn plan_names(&self) -> impl Iterator<Item = &str> {
        self.plans.keys().map(String::as_str)
    }

    /// The limits on a whole tenant of `plan` (its plan's, with the tenant's own overrides).
    pub fn tenant_limits(&self, plan: &str, tenant: &str) -> Option<LimitSpec> {
        Some(self.tenant_spec(self.plans.get(plan)?, tenant))
    }

    fn tenant_spec(&self, plan: &Plan, tenant: &str) -> LimitSpec {
        match self.tenant_limits.get(tenant) {
            Some(over) => plan.tenant.overridden_by(over),
            None => plan.tenant.clone(),
        }
    }

    fn key_spec(&self, plan: &Plan, key_id: &str) -> LimitSpec {
        match self.key_limits.get(key_id) {
            Some(over) => plan.key.overridden_by(over),
            None => plan.key.clone(),
        }
    }

    /// The output tokens to reserve for a request that asked for `requested` (or nothing).
    pub fn output_reservation(&self, plan: &str, requested: Option<u64>) -> (u64, u64) {
        let plan = self.plans.get(plan);
        let out_max = requested.unwrap_or_else(|| plan.map_or(1024, Plan::default_max_tokens));
        let out_min = match plan {
            Some(p) if p.clamp_max_tokens => p.min_output_tokens().min(out_max),
            _ => out_max,
        };
        (out_min, out_max)
    }
}

pub struct Limiter {
    calendar: Calendar,
    prefix: String,
    /// This process's limit state: the whole of it with the memory backend, and the outage
    /// fallback (at `local_fraction`) with a shared one.
    memory: MemoryBackend,
    /// The backend every replica shares, when one is configured.
    shared: Option<Arc<dyn Backend>>,
    outage: OutagePolicy,
    local_fraction: f64,
    risk: RiskTable,
    pending: PendingUsage,
    outage_decisions: AtomicU64,
}

impl Limiter {
    pub fn new(config: &Config) -> Result<Arc<Limiter>, String> {
        let l = &config.limits;
        let shared: Option<Arc<dyn Backend>> = match l.backend {
            LimitsBackend::Memory => None,
            LimitsBackend::Redis => Some(RedisBackend::new(
                l.redis_url.as_deref().unwrap_or_default(),
                l.redis_timeout.get(),
            )?),
        };
        Ok(Arc::new(Limiter {
            calendar: Calendar::new(&l.time_zone)?,
            prefix: "pc:".to_owned(),
            memory: MemoryBackend::new(),
            shared,
            outage: l.on_redis_failure,
            local_fraction: l.local_fraction,
            risk: RiskTable::default(),
            pending: PendingUsage::default(),
            outage_decisions: AtomicU64::new(0),
        }))
    }

    pub fn risk(&self) -> &RiskTable {
        &self.risk
    }

    pub fn pending(&self) -> &PendingUsage {
        &self.pending
    }

    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    pub fn status(&self) -> LimiterStatus {
        let backend = self.backend(true);
        LimiterStatus {
            backend: backend.name(),
            healthy: backend.is_healthy(),
            outage_decisions: self.outage_decisions.load(Ordering::Relaxed),
            redis_failures: backend.failures(),
        }
    }

    /// Keeps the limiter healthy: probes Redis every `probe` while it is down (and now and
    /// then while it is up), and forgets stale in-memory state every minute. Runs until the
    /// task is aborted.
    pub async fn maintain(self: Arc<Self>, probe: Duration) {
        let mut last_sweep = std::time::Instant::now();
        let mut last_probe = std::time::Instant::now() - Duration::from_secs(3600);
        loop {
            if let Some(shared) = &self.shared {
                if !shared.is_healthy() || last_probe.elapsed() > Duration::from_secs(5) {
                    shared.probe().await;
                    last_probe = std::time::Instant::now();
                }
            }
            if last_sweep.elapsed() > Duration::from_secs(60) {
                self.memory.sweep(now_us());
                last_sweep = std::time::Instant::now();
            }
            tokio::time::sleep(probe).await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn checks(
        &self,
        book: &PlanBook,
        subject: &Subject,
        plan: &Plan,
        estimate: Estimate,
        price: Price,
        scale: f64,
        today: &Today,
    ) -> Vec<Check> {
        let tenant = format!("t:{}", key_part(&subject.tenant));
        let key = format!("k:{}", key_part(&subject.key_id));
        let mut checks = Vec::with_capacity(8);
        let scope_checks = |kind: &'static str,
                            scope: &str,
                            quota_scope: Option<QuotaScope>,
                            spec: &LimitSpec,
                            into: &mut Vec<Check>| {
            ScopeChecks {
                kind,
                scope,
                quota_scope,
                prefix: &self.prefix,
                estimate,
                price,
                scale,
                today,
            }
            .push(spec, into)
        };
        let key_spec = book.key_spec(plan, &subject.key_id);
        scope_checks(
            "key",
            &key,
            Some(QuotaScope::Key(subject.key_id.clone())),
            &key_spec,
            &mut checks,
        );
        let tenant_spec = book.tenant_spec(plan, &subject.tenant);
        scope_checks(
            "tenant",
            &tenant,
            Some(QuotaScope::Tenant(subject.tenant.clone())),
            &tenant_spec,
            &mut checks,
        );
        if let Some(model_spec) = plan.models.get(&subject.model) {
            let scope = format!("{tenant}/m:{}", key_part(&subject.model));
            scope_checks("model", &scope, None, model_spec, &mut checks);
        }
        checks
    }

    /// Checks and reserves everything `subject` needs for a request of `estimate`.
    pub async fn admit(
        self: &Arc<Self>,
        book: &PlanBook,
        subject: &Subject,
        estimate: Estimate,
        price: Price,
        ledger: &dyn Ledger,
    ) -> Result<Reservation, Refusal> {
        let Some(plan) = book.plan(&subject.plan) else {
            return Err(Refusal::PlanMissing);
        };
        let now = now_us();
        let (risk, until_us) = self.risk.factor(&subject.tenant, &subject.key_id, now);
        // The calendar day and month, once per request: for quota keys and the ledger row.
        let today = self.calendar.today(now);
        if risk <= 0.0 {
            return Err(Refusal::Suspended { until_us });
        }
        let mut on_shared = match &self.shared {
            Some(shared) if shared.is_healthy() => true,
            Some(_) => self.outage_fallback()?,
            None => false,
        };
        // Decided locally while a shared backend is down: each replica gets its share.
        let scale = |on_shared: bool| {
            if self.shared.is_some() && !on_shared {
                risk * self.local_fraction
            } else {
                risk
            }
        };
        let mut demand = Demand {
            checks: self.checks(
                book,
                subject,
                plan,
                estimate,
                price,
                scale(on_shared),
                &today,
            ),
            out_min: estimate.out_min,
            out_max: estimate.out_max,
            lease: fastrand::u64(..),
        };
        if let Some(refusal) = never_fits(&demand.checks, estimate.out_min) {
            return Err(refusal);
        }
        // A few rounds: quotas not yet seeded are seeded from the ledger and the request asked
        // again; a shared backend that fails hands over to the outage policy.
        for _ in 0..4 {
            let verdict = match self.backend(on_shared).admit(&demand).await {
                Ok(verdict) => verdict,
                Err(_) => {
                    on_shared = self.outage_fallback()?;
                    demand.checks =
                        self.checks(book, subject, plan, estimate, price, scale(false), &today);
                    continue;
                }
            };
            match verdict {
                Verdict::Unseeded(indexes) => {
                    if !self.seed(on_shared, &demand, &indexes, ledger).await? {
                        on_shared = self.outage_fallback()?;
                        demand.checks =
                            self.checks(book, subject, plan, estimate, price, scale(false), &today);
                    }
                }
                Verdict::Admitted { out, reports } => {
                    return Ok(Reservation {
                        limiter: Arc::clone(self),
                        on_shared,
                        headers: headers(&demand.checks, &reports),
                        ledger_key: UsageKey {
                            day: today.day,
                            tenant: subject.tenant.clone(),
                            key_id: subject.key_id.clone(),
                            model: subject.model.clone(),
                        },
                        checks: demand.checks,
                        input_tokens: estimate.input_tokens,
                        out,
                        price,
                        lease: demand.lease,
                        settled: false,
                    });
                }
                Verdict::Denied {
                    index,
                    retry_after_us,
                    reports,
                } => return Err(denial(&demand.checks, index, retry_after_us, &reports)),
            }
        }
        Err(Refusal::Unavailable)
    }

    /// The backend that decides: the shared one while it is used, else this process.
    fn backend(&self, on_shared: bool) -> &dyn Backend {
        match &self.shared {
            Some(shared) if on_shared => shared.as_ref(),
            _ => &self.memory,
        }
    }

    /// Seeds the quota counters at `indexes` from the ledger; false when the backend failed.
    async fn seed(
        &self,
        on_shared: bool,
        demand: &Demand,
        indexes: &[usize],
        ledger: &dyn Ledger,
    ) -> Result<bool, Refusal> {
        for &i in indexes {
            let Some(Check {
                key,
                kind:
                    CheckKind::Quota {
                        expires_at_us,
                        seed,
                        ..
                    },
                ..
            }) = demand.checks.get(i)
            else {
                continue;
            };
            let total = ledger.total(seed).await.map_err(|e| {
                tracing::error!(error = %e, "cannot read usage totals to seed a quota");
                Refusal::Unavailable
            })?;
            let backend = self.backend(on_shared);
            if backend.seed(key, total, *expires_at_us).await.is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Redis failed: the outage policy says whether to go on locally.
    fn outage_fallback(&self) -> Result<bool, Refusal> {
        self.outage_decisions.fetch_add(1, Ordering::Relaxed);
        match self.outage {
            OutagePolicy::FailClosed => Err(Refusal::Unavailable),
            OutagePolicy::Local => Ok(false),
        }
    }
}

/// A request that needs more than a rate's whole burst can never fit: said without asking the
/// backend, and before any limit that waiting would satisfy.
fn never_fits(checks: &[Check], out_min: u64) -> Option<Refusal> {
    let check = checks
        .iter()
        .find(|c| matches!(c.kind, CheckKind::Rate(rate) if c.amount(out_min) > rate.burst))?;
    Some(Refusal::Limited(Denial {
        label: check.label,
        scope: check.scope,
        retry_after_us: None,
        headers: RateHeaders::default(),
    }))
}

/// The refusal for the check at `index`.
fn denial(
    checks: &[Check],
    index: usize,
    retry_after_us: Option<u64>,
    reports: &[Report],
) -> Refusal {
    let check = &checks[index];
    Refusal::Limited(Denial {
        label: check.label,
        scope: check.scope,
        retry_after_us: retry_after_us
            .filter(|_| check.label.waiting_helps())
            .or_else(|| {
                // A quota frees up when its period ends; say when, but the denial still tells
                // clients not to retry.
                (!check.label.waiting_helps())
                    .then_some(reports[index].reset_us)
                    .filter(|r| *r < u64::MAX / 4)
            }),
        headers: headers(checks, reports),
    })
}

/// The tightest requests and tokens limits among the checks.
fn headers(checks: &[Check], reports: &[Report]) -> RateHeaders {
    let tightest = |labels: &[Label]| {
        labels.iter().find_map(|label| {
            checks
                .iter()
                .zip(reports)
                .filter(|(c, _)| c.label == *label)
                .map(|(_, r)| *r)
                .min_by_key(|r| r.remaining)
        })
    };
    RateHeaders {
        requests: tightest(&[Label::Requests]),
        tokens: tightest(&[Label::Tokens, Label::InputTokens, Label::OutputTokens]),
    }
}

/// Limits reserved for one request; settle it with the actual usage. Dropping it unsettled
/// refunds every token (the upstream produced nothing the gateway saw) but keeps the request
/// counted.
pub struct Reservation {
    limiter: Arc<Limiter>,
    /// Reserved in the shared backend (settled there), or in this process.
    on_shared: bool,
    checks: Vec<Check>,
    input_tokens: u64,
    out: u64,
    price: Price,
    lease: u64,
    ledger_key: UsageKey,
    pub headers: RateHeaders,
    settled: bool,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("input_tokens", &self.input_tokens)
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

impl Reservation {
    /// Output tokens reserved (lower than asked when the plan clamps).
    pub fn output_tokens(&self) -> u64 {
        self.out
    }

    /// Prompt tokens estimated before the call.
    pub fn input_tokens(&self) -> u64 {
        self.input_tokens
    }

    pub fn price(&self) -> Price {
        self.price
    }

    /// Replaces the reservation with `usage`.
    pub fn settle(mut self, usage: Usage) {
        if let Some((shared, settlement)) = self.finish(usage) {
            shared.settle_later(settlement);
        }
    }

    /// As [`Reservation::settle`], but waits until a shared backend has applied it, so the
    /// caller's next request sees the refund (used before a whole response is returned).
    pub async fn settle_now(mut self, usage: Usage) {
        if let Some((shared, settlement)) = self.finish(usage) {
            if let Err(e) = shared.settle(&settlement).await {
                tracing::warn!(error = %e, "could not settle a reservation in the shared backend; its counters correct themselves when they expire or are seeded again");
            }
        }
    }

    /// Records the usage and applies the settlement in memory; for a shared backend, returns
    /// it to send.
    fn finish(&mut self, usage: Usage) -> Option<(Arc<dyn Backend>, Settlement)> {
        if std::mem::replace(&mut self.settled, true) {
            return None;
        }
        let mut settlement = Settlement {
            lease: self.lease,
            ..Settlement::default()
        };
        for check in &self.checks {
            match check.kind {
                CheckKind::Concurrency { .. } => settlement.releases.push(check.key.clone()),
                _ => {
                    let reserved = amount(check.label, self.input_tokens, self.out, self.price);
                    let actual = amount(
                        check.label,
                        usage.input_tokens,
                        usage.output_tokens,
                        self.price,
                    );
                    let delta = actual as i64 - reserved as i64;
                    if delta != 0 {
                        settlement.adjustments.push(Adjustment {
                            key: check.key.clone(),
                            kind: check.kind.clone(),
                            delta,
                        });
                    }
                }
            }
        }
        self.limiter.pending.add(
            self.ledger_key.clone(),
            Totals {
                requests: 1,
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
                cost_nanos: self.price.cost(usage.input_tokens, usage.output_tokens),
            },
        );
        match (&self.limiter.shared, self.on_shared) {
            (Some(shared), true) => Some((Arc::clone(shared), settlement)),
            _ => {
                self.limiter.memory.settle(&settlement, now_us());
                None
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some((shared, settlement)) = self.finish(Usage::default()) {
            shared.settle_later(settlement);
        }
    }
}
