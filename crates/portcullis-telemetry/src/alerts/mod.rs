//! Alerts: rules evaluated in process every few seconds over the recent past of the request
//! records ([`window`]), each instance (a rule, and the tenant or key it is about) with a
//! state: pending while the condition has held for less than the rule's `for`, firing, then
//! resolved. Changes go to webhooks ([`webhook`]); the states are listed by the admin API and
//! counted in metrics.

pub mod webhook;
pub mod window;

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use window::Window;

/// What a rule measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A tenant's cost in US dollars over the window (default 1h).
    TenantCost,
    /// Share of requests answered 5xx over the window (default 5m).
    ErrorRatio,
    /// Share of requests the gateway refused over the window (default 5m).
    RefusalRatio,
    /// 99th percentile request duration in seconds over the window (default 5m).
    LatencyP99,
    /// Authentication and authorization failures over the window (default 1m).
    AuthFailures,
    /// Distinct client addresses one key was used from over the window (default 1h).
    KeyDistinctIps,
    /// Distinct networks (IPv4 /16s, IPv6 /48s) one key was used from over the window
    /// (default 1h): a key shared across the world, where one office's many addresses are
    /// one network.
    KeyDistinctNetworks,
    /// Attempts with a revoked key over the window (default 1h).
    RevokedKeyAttempts,
    /// Audit records dropped since start (the trail could not keep up).
    AuditDropped,
}

impl AlertKind {
    pub fn parse(text: &str) -> Option<AlertKind> {
        Some(match text {
            "tenant_cost" => AlertKind::TenantCost,
            "error_ratio" => AlertKind::ErrorRatio,
            "refusal_ratio" => AlertKind::RefusalRatio,
            "latency_p99" => AlertKind::LatencyP99,
            "auth_failures" => AlertKind::AuthFailures,
            "key_distinct_ips" => AlertKind::KeyDistinctIps,
            "key_distinct_networks" => AlertKind::KeyDistinctNetworks,
            "revoked_key_attempts" => AlertKind::RevokedKeyAttempts,
            "audit_dropped" => AlertKind::AuditDropped,
            _ => return None,
        })
    }

    /// The window a rule of this kind reads unless it names one.
    pub fn default_window(self) -> Duration {
        Duration::from_secs(match self {
            AlertKind::TenantCost
            | AlertKind::KeyDistinctIps
            | AlertKind::KeyDistinctNetworks
            | AlertKind::RevokedKeyAttempts => 3600,
            AlertKind::AuthFailures => 60,
            _ => 300,
        })
    }
}

/// One configured rule.
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub name: String,
    pub kind: AlertKind,
    /// The condition holds when the value is above this.
    pub threshold: f64,
    pub window: Duration,
    /// How long the condition must hold before the alert fires.
    pub for_: Duration,
    /// Only this tenant (tenant cost).
    pub tenant: Option<String>,
    /// Ratios and percentiles need at least this many requests in the window.
    pub min_requests: u64,
}

/// An alert's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Firing,
    Resolved,
}

/// One rule's instance: the rule and what it is about.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub rule: String,
    pub kind: AlertKind,
    /// The tenant or key it is about (empty for deployment-wide rules).
    pub subject: String,
    pub state: State,
    pub value: f64,
    pub threshold: f64,
    /// RFC 3339 times.
    pub since: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
}

/// How long a resolved alert stays listed.
const KEEP_RESOLVED: Duration = Duration::from_secs(3600);

struct Instance {
    alert: Alert,
    /// When the condition began to hold (seconds), while it holds.
    holding_since: Option<u64>,
    resolved_at_s: Option<u64>,
}

/// Facts the window cannot know, supplied by the evaluator's caller.
#[derive(Debug, Default, Clone)]
pub struct External {
    /// Revoked key ids presented in the window, with their attempts.
    pub revoked_attempts: Vec<(String, u64)>,
    /// Audit records dropped since start.
    pub audit_dropped: u64,
}

/// The rules, the window they read, and the alerts' states.
pub struct Alerts {
    /// Replaced whole by a configuration reload.
    rules: std::sync::RwLock<Arc<[AlertRule]>>,
    window: Mutex<Window>,
    instances: Mutex<BTreeMap<(String, String), Instance>>,
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

impl Alerts {
    pub fn new(rules: Vec<AlertRule>) -> Alerts {
        Alerts {
            rules: std::sync::RwLock::new(rules.into()),
            window: Mutex::new(Window::default()),
            instances: Mutex::new(BTreeMap::new()),
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<[AlertRule]> {
        self.rules.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `rules` in force from the next evaluation. Alerts of rules that no longer exist
    /// are forgotten (they can no longer fire or resolve); alerts of rules that keep their
    /// name keep their state, so an unchanged rule does not fire twice.
    pub fn replace_rules(&self, rules: Vec<AlertRule>) {
        let names: std::collections::BTreeSet<String> =
            rules.iter().map(|r| r.name.clone()).collect();
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = rules.into();
        self.instances
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(rule, _), _| names.contains(rule));
    }

    /// Reads the window (the dashboard's summary).
    pub fn with_window<T>(&self, read: impl FnOnce(&Window) -> T) -> T {
        read(&self.window.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Adds a finished request (at second `now`).
    pub fn observe(&self, record: &crate::RequestRecord, now: u64) {
        self.window
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe(record, now);
    }

    /// Presented key ids that failed authentication within the longest revoked-key window:
    /// the caller checks which are revoked.
    pub fn invalid_keys(&self, now: u64) -> Vec<(String, u64)> {
        let span = self
            .rules()
            .iter()
            .filter(|r| r.kind == AlertKind::RevokedKeyAttempts)
            .map(|r| r.window.as_secs())
            .max();
        match span {
            Some(span) => self
                .window
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .invalid_keys(now, span),
            None => Vec::new(),
        }
    }

    /// Evaluates every rule at second `now`; returns the alerts whose state changed to firing
    /// or resolved (for the webhooks).
    pub fn evaluate(&self, now: u64, external: &External) -> Vec<Alert> {
        let rules = self.rules();
        let values = {
            let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
            window.prune(now);
            rules
                .iter()
                .map(|rule| (rule, measure(rule, &window, now, external)))
                .collect::<Vec<_>>()
        };
        let mut instances = self.instances.lock().unwrap_or_else(|p| p.into_inner());
        let mut changed = Vec::new();
        for (rule, measured) in values {
            // Instances of this rule that hold now.
            let mut holding: BTreeMap<String, f64> = BTreeMap::new();
            for (subject, value) in measured {
                if value > rule.threshold {
                    holding.insert(subject, value);
                }
            }
            for (subject, value) in &holding {
                let key = (rule.name.clone(), subject.clone());
                let instance = instances.entry(key).or_insert_with(|| Instance {
                    alert: Alert {
                        rule: rule.name.clone(),
                        kind: rule.kind,
                        subject: subject.clone(),
                        state: State::Pending,
                        value: *value,
                        threshold: rule.threshold,
                        since: now_rfc3339(),
                        fired_at: None,
                        resolved_at: None,
                    },
                    holding_since: None,
                    resolved_at_s: None,
                });
                instance.alert.value = *value;
                if instance.alert.state == State::Resolved {
                    // It holds again: a new episode.
                    instance.alert.state = State::Pending;
                    instance.alert.since = now_rfc3339();
                    instance.alert.fired_at = None;
                    instance.alert.resolved_at = None;
                    instance.resolved_at_s = None;
                }
                let since = *instance.holding_since.get_or_insert(now);
                if instance.alert.state == State::Pending && now - since >= rule.for_.as_secs() {
                    instance.alert.state = State::Firing;
                    instance.alert.fired_at = Some(now_rfc3339());
                    changed.push(instance.alert.clone());
                }
            }
            for ((name, subject), instance) in instances.iter_mut() {
                if *name != rule.name || holding.contains_key(subject) {
                    continue;
                }
                instance.holding_since = None;
                match instance.alert.state {
                    State::Firing => {
                        instance.alert.state = State::Resolved;
                        instance.alert.resolved_at = Some(now_rfc3339());
                        instance.resolved_at_s = Some(now);
                        changed.push(instance.alert.clone());
                    }
                    State::Pending => {
                        instance.alert.state = State::Resolved;
                        instance.resolved_at_s = Some(now);
                    }
                    State::Resolved => {}
                }
            }
        }
        instances.retain(|_, i| {
            i.resolved_at_s
                .is_none_or(|at| now.saturating_sub(at) < KEEP_RESOLVED.as_secs())
        });
        changed
    }

    /// Every alert instance: firing first, then pending, then resolved.
    pub fn list(&self) -> Vec<Alert> {
        let instances = self.instances.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<Alert> = instances.values().map(|i| i.alert.clone()).collect();
        out.sort_by_key(|a| match a.state {
            State::Firing => 0,
            State::Pending => 1,
            State::Resolved => 2,
        });
        out
    }

    /// How many instances of each rule are firing.
    pub fn firing_by_rule(&self) -> BTreeMap<String, i64> {
        let mut out: BTreeMap<String, i64> =
            self.rules().iter().map(|r| (r.name.clone(), 0)).collect();
        for a in self.list() {
            if a.state == State::Firing {
                *out.entry(a.rule).or_default() += 1;
            }
        }
        out
    }
}

/// The rule's value per subject at `now`.
fn measure(rule: &AlertRule, window: &Window, now: u64, external: &External) -> Vec<(String, f64)> {
    let span = rule.window.as_secs().max(1);
    let totals = || window.totals(now, span);
    let ratio = |part: u64, all: u64| -> Vec<(String, f64)> {
        if all < rule.min_requests.max(1) {
            return Vec::new();
        }
        vec![(String::new(), part as f64 / all as f64)]
    };
    match rule.kind {
        AlertKind::TenantCost => window
            .tenant_costs(now, span)
            .into_iter()
            .filter(|(t, _)| rule.tenant.as_ref().is_none_or(|want| want == t))
            .collect(),
        AlertKind::ErrorRatio => {
            let t = totals();
            ratio(t.errors, t.requests)
        }
        AlertKind::RefusalRatio => {
            let t = totals();
            ratio(t.refusals, t.requests)
        }
        AlertKind::LatencyP99 => {
            let t = totals();
            if t.requests < rule.min_requests.max(1) {
                return Vec::new();
            }
            vec![(String::new(), t.p99_ms / 1000.0)]
        }
        AlertKind::AuthFailures => vec![(String::new(), totals().auth_failures as f64)],
        AlertKind::KeyDistinctIps => window
            .key_ip_counts(now, span)
            .into_iter()
            .map(|(k, n)| (k, n as f64))
            .collect(),
        AlertKind::KeyDistinctNetworks => window
            .key_network_counts(now, span)
            .into_iter()
            .map(|(k, n)| (k, n as f64))
            .collect(),
        AlertKind::RevokedKeyAttempts => external
            .revoked_attempts
            .iter()
            .map(|(k, n)| (k.clone(), *n as f64))
            .collect(),
        AlertKind::AuditDropped => vec![(String::new(), external.audit_dropped as f64)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Decision;

    fn failures(rule_for: u64) -> Alerts {
        Alerts::new(vec![AlertRule {
            name: "auth".into(),
            kind: AlertKind::AuthFailures,
            threshold: 2.0,
            window: Duration::from_secs(10),
            for_: Duration::from_secs(rule_for),
            tenant: None,
            min_requests: 1,
        }])
    }

    fn refused() -> crate::RequestRecord {
        crate::RequestRecord {
            decision: Decision {
                action: "refused".into(),
                status: 401,
                code: Some("invalid_api_key".into()),
            },
            ..Default::default()
        }
    }

    #[test]
    fn an_alert_goes_pending_firing_resolved_and_says_so_once_each() {
        let alerts = failures(5);
        for _ in 0..3 {
            alerts.observe(&refused(), 100);
        }
        assert!(alerts.evaluate(100, &External::default()).is_empty());
        assert_eq!(alerts.list()[0].state, State::Pending);
        let fired = alerts.evaluate(105, &External::default());
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].state, State::Firing);
        assert_eq!(fired[0].value, 3.0);
        assert!(
            alerts.evaluate(106, &External::default()).is_empty(),
            "told once"
        );
        assert_eq!(alerts.firing_by_rule()["auth"], 1);
        // Ten seconds on, the failures have left the window.
        let resolved = alerts.evaluate(111, &External::default());
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].state, State::Resolved);
        assert_eq!(alerts.firing_by_rule()["auth"], 0);
    }

    #[test]
    fn a_blip_shorter_than_for_never_fires() {
        let alerts = failures(30);
        for _ in 0..3 {
            alerts.observe(&refused(), 100);
        }
        assert!(alerts.evaluate(100, &External::default()).is_empty());
        assert!(alerts.evaluate(111, &External::default()).is_empty());
        assert_eq!(alerts.list()[0].state, State::Resolved);
    }
}
