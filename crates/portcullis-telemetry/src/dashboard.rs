//! The dashboard's data: one JSON summary of the recent past, read from the same window the
//! alert rules read (no scan of the trail, no query per request: a poll costs one lock and a
//! walk over at most an hour of one-second buckets).

use crate::alerts::window::Usage;
use crate::Telemetry;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Tenants shown by name in the charts and tables; the rest are summed as `(others)`.
pub const TOP: usize = 8;

impl Telemetry {
    /// The last `minutes` of traffic (at most 60) in points of `step` seconds. With `tenant`,
    /// the usage tables and charts show the tenants whose names contain it.
    pub fn dashboard_summary(&self, minutes: u64, step: u64, tenant: Option<&str>) -> Value {
        let now = crate::unix_seconds();
        let minutes = minutes.clamp(1, 60);
        self.alerts().with_window(|w| {
            let series = w.series(now, minutes * 60, step);
            let by_minute = w.usage_by_minute(now, minutes);
            let matches = |t: &str| tenant.is_none_or(|q| t.contains(q));
            // Totals per tenant and per model over the span.
            let mut tenants: HashMap<String, Usage> = HashMap::new();
            let mut models: HashMap<String, Usage> = HashMap::new();
            for (_, usage) in &by_minute {
                for ((t, m), u) in usage {
                    if !matches(t) {
                        continue;
                    }
                    add(tenants.entry(t.clone()).or_default(), u);
                    add(models.entry(m.clone()).or_default(), u);
                }
            }
            let mut top: Vec<(String, Usage)> = tenants.into_iter().collect();
            most_used_first(&mut top);
            let total_tenants = top.len();
            top.truncate(TOP);
            let names: Vec<&str> = top.iter().map(|(t, _)| t.as_str()).collect();
            // Tokens and cost per minute for each top tenant.
            let tenant_series: Vec<Value> = names
                .iter()
                .map(|name| {
                    let points: Vec<Value> = by_minute
                        .iter()
                        .map(|(at, usage)| {
                            let mut u = Usage::default();
                            for ((t, _), x) in usage {
                                if t == name {
                                    add(&mut u, x);
                                }
                            }
                            json!([at, u.tokens, u.cost])
                        })
                        .collect();
                    json!({"tenant": name, "points": points})
                })
                .collect();
            let mut model_rows: Vec<(String, Usage)> = models.into_iter().collect();
            model_rows.sort_by_key(|m| std::cmp::Reverse(m.1.tokens));
            model_rows.truncate(TOP);
            let mut findings: Vec<(String, u64)> = w.findings(now, minutes).into_iter().collect();
            findings.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            findings.truncate(20);
            json!({
                "now": now,
                "minutes": minutes,
                "series": series,
                "tenants": {
                    "matching": total_tenants,
                    "top": top.iter().map(|(t, u)| json!({"tenant": t, "requests": u.requests, "tokens": u.tokens, "cost": u.cost})).collect::<Vec<_>>(),
                    "series": tenant_series,
                },
                "models": model_rows.iter().map(|(m, u)| json!({"model": m, "requests": u.requests, "tokens": u.tokens, "cost": u.cost})).collect::<Vec<_>>(),
                "refusals": w.recent_refusals(),
                "findings": findings.iter().map(|(rule, n)| json!({"rule": rule, "count": n})).collect::<Vec<_>>(),
                "new_addresses": w.new_addresses(),
                "alerts": self.alerts().list(),
            })
        })
    }
}

impl Telemetry {
    /// The `n` tenants that used most (cost, then tokens) in the last hour, most first.
    pub fn top_tenants(&self, n: usize) -> Vec<String> {
        let now = crate::unix_seconds();
        let mut tenants: HashMap<String, Usage> = HashMap::new();
        self.alerts().with_window(|w| {
            for (_, usage) in w.usage_by_minute(now, 60) {
                for ((t, _), u) in &usage {
                    add(tenants.entry(t.clone()).or_default(), u);
                }
            }
        });
        let mut top: Vec<(String, Usage)> = tenants.into_iter().collect();
        most_used_first(&mut top);
        top.into_iter().take(n).map(|(t, _)| t).collect()
    }
}

fn most_used_first(tenants: &mut [(String, Usage)]) {
    tenants.sort_by(|a, b| {
        b.1.cost
            .total_cmp(&a.1.cost)
            .then(b.1.tokens.cmp(&a.1.tokens))
            .then(a.0.cmp(&b.0))
    });
}

fn add(total: &mut Usage, u: &Usage) {
    total.requests += u.requests;
    total.tokens += u.tokens;
    total.cost += u.cost;
}
