//! The threat detector beside the request path, and the response ladder.
//!
//! Every finished request record reaches the detector through the telemetry's bounded tap
//! (a full queue drops records and counts them; a request never waits). A task drains it on
//! a timer, folds each record into `portcullis_hunt::Detector` (the same code `portcullis
//! detect replay` runs), and when a key's risk climbs to a rung of `[detect] ladder`, does
//! what the rung says: an audit event, a security alert, a throttle or a suspension through
//! the risk table the limiter already reads (so `portcullis risk clear` lifts it too). The
//! allow-list and internal-audience tenants are observed, never acted on. With a shared
//! backend ([`super::threat_share`]) the features of every replica's requests meet in each
//! replica's detector, and each rung is claimed once across replicas.

use super::holds;
use super::threat_share::{Observed, Share};
use crate::state::GatewayState;
use portcullis_config::{Detect, RungAction};
use portcullis_hunt::{Detector, Endpoint, Limits, Observation, RequestInput, Verdict};
use portcullis_identity::RiskRecord;
use portcullis_limits::{now_us, RiskFactor, RiskSubject};
use portcullis_telemetry::RequestRecord;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::Receiver;

/// The detector, its ladder and what it has done.
pub struct Threats {
    detector: Mutex<Detector>,
    policy: Mutex<Policy>,
    /// The highest rung applied per key, so each rung acts once per climb.
    applied: Mutex<HashMap<String, usize>>,
    /// Every action taken, newest last (bounded).
    actions: Mutex<Vec<ActionTaken>>,
    /// Observations shared with the other replicas (`[detect] backend`), if configured.
    share: Option<Share>,
}

struct Policy {
    detect: Detect,
    allow: HashSet<String>,
}

/// One action of the ladder, as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ActionTaken {
    pub time: String,
    pub subject: String,
    pub action: RungAction,
    pub risk: f64,
    pub reasons: Vec<String>,
}

const MAX_ACTIONS_KEPT: usize = 1000;

impl Threats {
    /// The detector, sharing its observations through `redis_url` when given (an invalid URL
    /// is refused by the configuration's validation first).
    pub fn new(detect: &Detect, redis_url: Option<&str>) -> Threats {
        let share = redis_url.and_then(|url| match Share::new(url) {
            Ok(share) => Some(share),
            Err(e) => {
                tracing::error!(error = %e, "detector observations are not shared");
                None
            }
        });
        Threats {
            share,
            detector: Mutex::new(Detector::new(Limits {
                keys: detect.max_keys,
                tenants: detect.max_keys / 5 + 1,
            })),
            policy: Mutex::new(Policy {
                allow: detect.allow.iter().cloned().collect(),
                detect: detect.clone(),
            }),
            applied: Mutex::new(HashMap::new()),
            actions: Mutex::new(Vec::new()),
        }
    }

    /// Whether observations are shared across replicas.
    pub fn shared(&self) -> bool {
        self.share.is_some()
    }

    /// Puts a reloaded `[detect]` in force (the detector's memory stays).
    pub fn reconfigure(&self, detect: &Detect) {
        let mut p = lock(&self.policy);
        p.allow = detect.allow.iter().cloned().collect();
        p.detect = detect.clone();
    }

    /// Verdicts of keys and tenants at or above `min_risk`, riskiest first.
    pub fn verdicts(&self, min_risk: f64) -> Vec<Verdict> {
        let mut v: Vec<Verdict> = lock(&self.detector)
            .verdicts()
            .into_iter()
            .filter(|v| v.peak_risk >= min_risk || v.risk >= min_risk)
            .collect();
        v.sort_by(|a, b| b.risk.total_cmp(&a.risk).then(a.id.cmp(&b.id)));
        v
    }

    pub fn key_verdict(&self, key: &str) -> Option<Verdict> {
        lock(&self.detector).key_verdict(key)
    }

    pub fn actions(&self) -> Vec<ActionTaken> {
        lock(&self.actions).clone()
    }

    /// Allows a principal (`tenant:NAME` or `key:ID`) until restart or reload (the config's
    /// `allow` is the lasting list), and lets its ladder start again from the bottom.
    pub fn allow(&self, subject: &str) {
        lock(&self.policy).allow.insert(subject.to_owned());
        if let Some(key) = subject.strip_prefix("key:") {
            lock(&self.applied).remove(key);
        }
    }

    /// Forgets the rungs applied to a key (here and, shared, every replica's claims), so a
    /// cleared key is acted on again if it climbs again.
    pub async fn reset(&self, key: &str) {
        lock(&self.applied).remove(key);
        if let Some(share) = &self.share {
            let rungs = lock(&self.policy).detect.ladder.len();
            share.release(key, rungs).await;
        }
    }

    pub fn stats(&self) -> portcullis_hunt::detector::Stats {
        lock(&self.detector).stats()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Drains the tap every 100 ms until shutdown.
pub fn spawn(
    state: Arc<GatewayState>,
    mut records: Receiver<Arc<RequestRecord>>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(256);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            while let Ok(r) = records.try_recv() {
                batch.push(r);
                if batch.len() >= 4096 {
                    break;
                }
            }
            let Some(threats) = state.threats.clone() else {
                return;
            };
            let work = std::mem::take(&mut batch);
            // Features are CPU work: off the runtime's async threads.
            let mut observed = if work.is_empty() {
                Vec::new()
            } else {
                tokio::task::spawn_blocking(move || features(&work))
                    .await
                    .unwrap_or_default()
            };
            if let Some(share) = &threats.share {
                share.publish(&observed).await;
                observed.extend(share.read_others().await);
            }
            if observed.is_empty() {
                continue;
            }
            let detector = threats.clone();
            let decided = tokio::task::spawn_blocking(move || decide(&detector, &observed)).await;
            for d in decided.unwrap_or_default() {
                act(&state, &threats, d).await;
            }
        }
    })
}

/// What the ladder decided for one key.
struct Decision {
    key: String,
    tenant: String,
    risk: f64,
    reasons: Vec<String>,
    /// Each action with its rung (1-based), the rung's throttle factor, output cap and hold.
    actions: Vec<(usize, RungAction, f64, u64, Duration)>,
}

/// The features of each record the detector reads (keys' requests to model endpoints).
fn features(records: &[Arc<RequestRecord>]) -> Vec<Observed> {
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let Some(p) = &r.principal else { continue };
        if p.credential == "anonymous" {
            continue;
        }
        let endpoint = Endpoint::parse(&r.endpoint);
        if endpoint == Endpoint::Other {
            continue;
        }
        let body = r
            .request_body
            .as_ref()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(serde_json::Value::Null);
        let usage = serde_json::json!({"usage": {"completion_tokens": r.tokens.output}});
        let ts =
            portcullis_hunt::detector::parse_ts(&r.start).unwrap_or_else(|| now_us() as f64 / 1e6);
        let obs = Observation::from_request(&RequestInput {
            ts,
            tenant: &p.tenant,
            key: &p.key_id,
            ip: &r.client.ip,
            user_agent: &r.client.user_agent,
            header_order: &r.client.header_order,
            tls: &r.client.tls,
            endpoint,
            body: &body,
            response: (r.tokens.output > 0).then_some(&usage),
            status: r.decision.status,
            findings: r.findings.len() as u32,
        });
        out.push(Observed {
            tenant: p.tenant.clone(),
            key: p.key_id.clone(),
            plan: p.plan.clone(),
            internal: p.audience == "internal",
            obs,
        });
    }
    out
}

/// Folds observations into the detector; what the ladder should do.
fn decide(threats: &Threats, observed: &[Observed]) -> Vec<Decision> {
    let mut decisions = Vec::new();
    let mut detector = lock(&threats.detector);
    let policy = lock(&threats.policy);
    for p in observed {
        let outcome = detector.observe_features(&p.tenant, &p.key, &p.obs);
        let observe_only = (p.internal && !policy.detect.act_on_internal)
            || policy.allow.contains(&format!("key:{}", p.key))
            || policy.allow.contains(&format!("tenant:{}", p.tenant));
        if observe_only {
            continue;
        }
        let risk = outcome.key.risk;
        let reached = policy
            .detect
            .ladder
            .iter()
            .enumerate()
            .filter(|(_, rung)| {
                risk >= rung.risk && (rung.plans.is_empty() || rung.plans.contains(&p.plan))
            })
            .map(|(i, _)| i + 1)
            .max()
            .unwrap_or(0);
        let mut applied = lock(&threats.applied);
        let before = applied.get(&p.key).copied().unwrap_or(0);
        if reached <= before {
            continue;
        }
        applied.insert(p.key.clone(), reached);
        let actions = policy.detect.ladder[before..reached]
            .iter()
            .enumerate()
            .filter(|(_, rung)| rung.plans.is_empty() || rung.plans.contains(&p.plan))
            .flat_map(|(i, rung)| {
                rung.actions.iter().map(move |&a| {
                    (
                        before + i + 1,
                        a,
                        rung.factor,
                        rung.max_tokens,
                        rung.hold.get(),
                    )
                })
            })
            .collect();
        decisions.push(Decision {
            key: p.key.clone(),
            tenant: p.tenant.clone(),
            risk,
            reasons: outcome
                .key
                .reasons
                .iter()
                .map(ToString::to_string)
                .collect(),
            actions,
        });
    }
    decisions
}

async fn act(state: &GatewayState, threats: &Threats, d: Decision) {
    let mut claimed: HashMap<usize, bool> = HashMap::new();
    for (rung, action, factor, max_tokens, hold) in d.actions {
        if let Some(share) = &threats.share {
            let mine = match claimed.get(&rung) {
                Some(&mine) => mine,
                None => {
                    let mine = share.claim(&d.key, rung, hold).await;
                    claimed.insert(rung, mine);
                    mine
                }
            };
            if !mine {
                // Another replica reached this rung first and acted for all.
                continue;
            }
        }
        let now = now_us();
        let until = now + hold.as_micros() as u64;
        let reason = format!(
            "threat detector: risk {:.3}; {}",
            d.risk,
            d.reasons.first().cloned().unwrap_or_default()
        );
        let key_target = format!("key:{}", d.key);
        // What is stored (so every replica applies it at its next refresh), under which name.
        let (target, stored) = match action {
            RungAction::Record | RungAction::Alert => (key_target, None),
            RungAction::Restrict => {
                state.restrictions.set(
                    &d.key,
                    crate::policy::restrict::Restriction {
                        max_tokens,
                        expires_at_us: until,
                    },
                );
                let name = holds::name(holds::RESTRICT, &d.key);
                (key_target, Some((name, max_tokens as f64)))
            }
            RungAction::Reexchange => {
                let minted_by = (now / 1_000_000) as i64;
                state.keys.require_reexchange(&d.key, minted_by);
                (key_target, Some((holds::name(holds::TOKENS, &d.key), 0.0)))
            }
            RungAction::Throttle | RungAction::SuspendKey => {
                let factor = if action == RungAction::Throttle {
                    factor
                } else {
                    0.0
                };
                state.limiter.risk().set(RiskFactor {
                    subject: RiskSubject::Key(d.key.clone()),
                    factor,
                    expires_at_us: until,
                    reason: reason.clone(),
                });
                (key_target.clone(), Some((key_target, factor)))
            }
            RungAction::SuspendTenant => {
                let target = format!("tenant:{}", d.tenant);
                state.limiter.risk().set(RiskFactor {
                    subject: RiskSubject::Tenant(d.tenant.clone()),
                    factor: 0.0,
                    expires_at_us: until,
                    reason: reason.clone(),
                });
                (target.clone(), Some((target, 0.0)))
            }
        };
        if let Some((subject, factor)) = stored {
            let record = RiskRecord {
                subject,
                factor,
                expires_at_us: until as i64,
                reason: reason.chars().take(500).collect(),
                set_at: now as i64,
            };
            if let Err(e) = state.store.set_risk(record).await {
                // Still applied here; the other replicas learn it when the store is back.
                tracing::warn!(error = %e, %target, "threat action not stored");
            }
        }
        let name = match action {
            RungAction::Record => "threat.record",
            RungAction::Alert => "threat.alert",
            RungAction::Restrict => "threat.restrict",
            RungAction::Reexchange => "threat.reexchange",
            RungAction::Throttle => "threat.throttle",
            RungAction::SuspendKey => "threat.suspend_key",
            RungAction::SuspendTenant => "threat.suspend_tenant",
        };
        let detail = format!("risk={:.3} {}", d.risk, d.reasons.join("; "));
        if let Err(e) = state
            .store
            .record_audit("detector", name, &target, "gateway", &detail)
            .await
        {
            tracing::warn!(error = %e, "threat audit event not stored");
        }
        state.telemetry.admin(portcullis_telemetry::AdminEvent {
            time: jiff::Timestamp::now().to_string(),
            actor: "detector".into(),
            action: name.into(),
            target: target.clone(),
            source: "gateway".into(),
        });
        if action == RungAction::Alert {
            tracing::warn!(%target, risk = d.risk, reasons = %d.reasons.join("; "), "extraction suspected");
        }
        {
            let mut actions = lock(&threats.actions);
            if actions.len() >= MAX_ACTIONS_KEPT {
                actions.remove(0);
            }
            actions.push(ActionTaken {
                time: jiff::Timestamp::now().to_string(),
                subject: target,
                action,
                risk: d.risk,
                reasons: d.reasons.clone(),
            });
        }
    }
}
