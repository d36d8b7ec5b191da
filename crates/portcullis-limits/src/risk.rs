//! Risk factors: a multiplier on a principal's limits, set by the behavioural detector (or an
//! operator) and lifted when it expires. 1 is normal, 0.1 is a tenth of every rate, 0 is
//! suspended.

use std::collections::HashMap;
use std::sync::RwLock;

/// Whose limits a risk factor scales.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum RiskSubject {
    Tenant(String),
    Key(String),
}

/// One principal's risk factor.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RiskFactor {
    pub subject: RiskSubject,
    pub factor: f64,
    /// Microseconds since 1970 at which the factor stops applying.
    pub expires_at_us: u64,
    /// Why it was set, for the audit trail and the operator.
    pub reason: String,
}

/// The risk factors in force, shared by the request path (read) and the detector or admin
/// API (write). Each replica holds the whole table; the gateway loads it from the store, so
/// a factor set on one replica reaches the others at the next refresh.
#[derive(Debug, Default)]
pub struct RiskTable {
    factors: RwLock<HashMap<RiskSubject, RiskFactor>>,
}

impl RiskTable {
    pub fn set(&self, factor: RiskFactor) {
        self.factors
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(factor.subject.clone(), factor);
    }

    pub fn clear(&self, subject: &RiskSubject) {
        self.factors
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(subject);
    }

    /// Replaces the whole table (after loading it from the store).
    pub fn replace(&self, factors: Vec<RiskFactor>) {
        let map = factors
            .into_iter()
            .map(|f| (f.subject.clone(), f))
            .collect();
        *self.factors.write().unwrap_or_else(|p| p.into_inner()) = map;
    }

    /// The lowest factor in force for the tenant and key at `now_us`, and when it expires.
    pub fn factor(&self, tenant: &str, key_id: &str, now_us: u64) -> (f64, u64) {
        let factors = self.factors.read().unwrap_or_else(|p| p.into_inner());
        if factors.is_empty() {
            return (1.0, 0);
        }
        let mut lowest = (1.0, 0);
        for subject in [
            RiskSubject::Tenant(tenant.to_owned()),
            RiskSubject::Key(key_id.to_owned()),
        ] {
            if let Some(f) = factors.get(&subject) {
                if f.expires_at_us > now_us && f.factor < lowest.0 {
                    lowest = (f.factor.max(0.0), f.expires_at_us);
                }
            }
        }
        lowest
    }

    /// The factors in force at `now_us`.
    pub fn active(&self, now_us: u64) -> Vec<RiskFactor> {
        let mut v: Vec<RiskFactor> = self
            .factors
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|f| f.expires_at_us > now_us)
            .cloned()
            .collect();
        v.sort_by(|a, b| format!("{:?}", a.subject).cmp(&format!("{:?}", b.subject)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_unexpired_factor_applies() {
        let table = RiskTable::default();
        assert_eq!(table.factor("t", "k", 10).0, 1.0);
        table.set(RiskFactor {
            subject: RiskSubject::Tenant("t".into()),
            factor: 0.5,
            expires_at_us: 100,
            reason: String::new(),
        });
        table.set(RiskFactor {
            subject: RiskSubject::Key("k".into()),
            factor: 0.0,
            expires_at_us: 50,
            reason: String::new(),
        });
        assert_eq!(table.factor("t", "k", 10), (0.0, 50));
        assert_eq!(table.factor("t", "k", 60), (0.5, 100));
        assert_eq!(table.factor("t", "other", 100).0, 1.0);
    }
}
