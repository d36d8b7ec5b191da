//! What every store backend must answer. A new backend (another database) is one
//! implementation of [`StoreBackend`] and one arm of [`crate::Store`]'s dispatch; the compiler
//! lists every method it is missing, so no backend is ever half there.

use crate::records::*;
use crate::StoreError;
use portcullis_core::Audience;
use std::future::Future;

/// The control plane's persistence: tenants, keys, signing keys, the audit log, request
/// records, the usage ledger and risk factors.
pub trait StoreBackend: Send + Sync {
    /// For logs and `/readyz`.
    fn name(&self) -> &'static str;
    /// A trivial query: reachable, and not corrupt enough to fail it.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The highest migration applied.
    fn schema_version(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    fn create_tenant(
        &self,
        name: &str,
        audience: Audience,
        plan: &str,
    ) -> impl Future<Output = Result<Tenant, StoreError>> + Send;
    fn tenant(&self, name: &str)
        -> impl Future<Output = Result<Option<Tenant>, StoreError>> + Send;
    fn tenants(&self) -> impl Future<Output = Result<Vec<Tenant>, StoreError>> + Send;

    fn insert_key(&self, key: KeyRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn key(&self, id: &str) -> impl Future<Output = Result<Option<KeyRecord>, StoreError>> + Send;
    fn keys(
        &self,
        tenant: Option<&str>,
    ) -> impl Future<Output = Result<Vec<KeyRecord>, StoreError>> + Send;
    fn revoke_key(
        &self,
        id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn record_key_use(
        &self,
        uses: Vec<(String, i64)>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn expire_key_at(
        &self,
        id: &str,
        at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn key_revision(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    fn signing_keys(
        &self,
        since: i64,
    ) -> impl Future<Output = Result<Vec<SigningKeyRecord>, StoreError>> + Send;
    fn rotate_signing_key(
        &self,
        key: SigningKeyRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn record_audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        source: &str,
        detail: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn audit_events(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AuditEvent>, StoreError>> + Send;

    fn add_requests(
        &self,
        rows: Vec<StoredRequest>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn requests(
        &self,
        query: &RequestQuery,
    ) -> impl Future<Output = Result<RequestPage, StoreError>> + Send;
    fn prune_requests(
        &self,
        before_us: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    fn add_usage(&self, rows: Vec<UsageRow>)
        -> impl Future<Output = Result<(), StoreError>> + Send;
    fn usage_total(
        &self,
        filter: &UsageFilter,
    ) -> impl Future<Output = Result<UsageRow, StoreError>> + Send;
    fn usage_rows(
        &self,
        filter: &UsageFilter,
    ) -> impl Future<Output = Result<Vec<UsageRow>, StoreError>> + Send;
    fn set_risk(&self, record: RiskRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn clear_risk(&self, subject: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn risk_factors(
        &self,
        now_us: i64,
    ) -> impl Future<Output = Result<Vec<RiskRecord>, StoreError>> + Send;
}

/// Implements [`StoreBackend`] for a type whose inherent methods have the trait's names and
/// signatures (each backend keeps its SQL in one file per resource).
macro_rules! delegate_backend {
    ($ty:ty, $name:literal) => {
        impl $crate::backend::StoreBackend for $ty {
            fn name(&self) -> &'static str {
                $name
            }
            fn ping(&self) -> impl std::future::Future<Output = Result<(), $crate::StoreError>> + Send {
                <$ty>::ping(self)
            }
            fn schema_version(&self) -> impl std::future::Future<Output = Result<i64, $crate::StoreError>> + Send {
                <$ty>::schema_version(self)
            }
            fn create_tenant(&self, name: &str, audience: portcullis_core::Audience, plan: &str) -> impl std::future::Future<Output = Result<$crate::Tenant, $crate::StoreError>> + Send {
                <$ty>::create_tenant(self, name, audience, plan)
            }
            fn tenant(&self, name: &str) -> impl std::future::Future<Output = Result<Option<$crate::Tenant>, $crate::StoreError>> + Send {
                <$ty>::tenant(self, name)
            }
            fn tenants(&self) -> impl std::future::Future<Output = Result<Vec<$crate::Tenant>, $crate::StoreError>> + Send {
                <$ty>::tenants(self)
            }
            fn insert_key(&self, key: $crate::KeyRecord) -> impl std::future::Future<Output = Result<(), $crate::StoreError>> + Send {
                <$ty>::insert_key(self, key)
            }
            fn key(&self, id: &str) -> impl std::future::Future<Output = Result<Option<$crate::KeyRecord>, $crate::StoreError>> + Send {
                <$ty>::key(self, id)
            }
            fn keys(&self, tenant: Option<&str>) -> impl std::future::Future<Output = Result<Vec<$crate::KeyRecord>, $crate::StoreError>> + Send {
                <$ty>::keys(self, tenant)
            }
            fn revoke_key(&self, id: &str, reason: &str) -> impl std::future::Future<Output = Result<bool, $crate::StoreError>> + Send {
                <$ty>::revoke_key(self, id, reason)
            }
            fn record_key_use(&self, uses: Vec<(String, i64)>) -> impl std::future::Future<Output = Result<(), $crate::StoreError>> + Send {
                <$ty>::record_key_use(self, uses)
            }
            fn expire_key_at(&self, id: &str, at: i64) -> impl std::future::Future<Output = Result<(), $crate::StoreError>> + Send {
                <$ty>::expire_key_at(self, id, at)
            }
            fn key_revision(&self) -> impl std::future::Future<Output = Result<i64, $crate::StoreError>> + Send {
                <$ty>::key_revision(self)
            }
            fn signing_keys(&self, since: i64) -> impl std::future::Future<Output = Result<Vec<$crate::SigningKeyRecord>, $crate::StoreError>> + Send {
                <$ty>::signing_keys(self, since)
            }
            fn rotate_signing_key(&self, key: $crate::SigningKeyRecord) -> impl std::future::Future<Output = Result<(), $crate::StoreError>> + Send {
                <$ty>::rotate_signing_key(self, key)
            }
            fn record_audit(&self, actor: &str, action: &str, target: &str, source: &str, detail: &str) -> impl std::future::Future<Output = Result<(), $crate::StoreError>> + Send {
                <$ty>::record_audit(self, actor, action, target, source, detail)
            }
            fn audit_events(&self, limit: u32) -> impl std::future::Future<Output = Result<Vec<$crate::AuditEvent>, $crate::StoreError>> + Send {
                <$ty>::audit_events(self, limit)
            }
            fn add_requests(&self, rows: Vec<$crate::StoredRequest>) -> impl std::future::Future<Output = Result<(), $crate::StoreError>> + Send {
                <$ty>::add_requests(self, rows)
            }
            fn requests(&self, query: &$crate::RequestQuery) -> impl std::future::Future<Output = Result<$crate::RequestPage, $crate::StoreError>> + Send {
                <$ty>::requests(self, query)
            }
            fn prune_requests(&self, before_us: i64) -> impl std::future::Future<Output = Result<u64, $crate::StoreError>> + Send {
                <$ty>::prune_requests(self, before_us)
            }
            fn add_usage(&self, rows: Vec<$crate::UsageRow>) -> impl std::future::Future<Output = Result<(), $crate::StoreError>> + Send {
                <$ty>::add_usage(self, rows)
            }
            fn usage_total(&self, filter: &$crate::UsageFilter) -> impl std::future::Future<Output = Result<$crate::UsageRow, $crate::StoreError>> + Send {
                <$ty>::usage_total(self, filter)
            }
            fn usage_rows(&self, filter: &$crate::UsageFilter) -> impl std::future::Future<Output = Result<Vec<$crate::UsageRow>, $crate::StoreError>> + Send {
                <$ty>::usage_rows(self, filter)
            }
            fn set_risk(&self, record: $crate::RiskRecord) -> impl std::future::Future<Output = Result<(), $crate::StoreError>> + Send {
                <$ty>::set_risk(self, record)
            }
            fn clear_risk(&self, subject: &str) -> impl std::future::Future<Output = Result<bool, $crate::StoreError>> + Send {
                <$ty>::clear_risk(self, subject)
            }
            fn risk_factors(&self, now_us: i64) -> impl std::future::Future<Output = Result<Vec<$crate::RiskRecord>, $crate::StoreError>> + Send {
                <$ty>::risk_factors(self, now_us)
            }
        }
    };
}

pub(crate) use delegate_backend;
