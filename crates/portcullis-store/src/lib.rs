//! The control-plane store: tenants, API keys, token signing keys, the audit log, the usage
//! ledger and risk factors.
//!
//! [`Store`] is the handle everything else uses (cheap to clone). Behind it one
//! [`StoreBackend`]: [`SqliteStore`] (`sqlite://PATH`, embedded, the default) or [`PgStore`]
//! (`postgres://...`, shared by replicas), each complete, with the same tables, migrations and
//! behaviour, checked by the same test suite. The request hot path never queries the store:
//! keys are cached in memory by the identity crate.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod backend;
mod postgres;
mod records;
mod requests_sql;
mod sqlite;
mod usage_sql;

pub use backend::StoreBackend;
pub use postgres::PgStore;
pub use records::{
    AuditEvent, KeyKind, KeyRecord, RequestPage, RequestQuery, RiskRecord, SigningKeyRecord,
    StoredRequest, Tenant, UsageFilter, UsageRow,
};
pub use sqlite::SqliteStore;

use portcullis_core::Audience;
use std::path::{Path, PathBuf};

backend::delegate_backend!(SqliteStore, "sqlite");
backend::delegate_backend!(PgStore, "postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported store URL (expected sqlite://PATH or postgres://...)")]
    UnsupportedUrl,
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store task failed: {0}")]
    Task(String),
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The configured backend.
#[derive(Clone)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    data_dir: Option<PathBuf>,
}

/// Calls the same method on whichever backend is configured.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.backend {
            Backend::Sqlite(s) => StoreBackend::$method(s, $($arg),*).await,
            Backend::Postgres(p) => StoreBackend::$method(p, $($arg),*).await,
        }
    };
}

impl Store {
    /// Opens (creating if needed) the store named by `url` and migrates it.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(PgStore::open(url).await?)
        } else {
            let path = url
                .strip_prefix("sqlite://")
                .ok_or(StoreError::UnsupportedUrl)?;
            Backend::Sqlite(SqliteStore::open(PathBuf::from(path)).await?)
        };
        Ok(Store {
            backend,
            data_dir: None,
        })
    }

    /// The SQLite file (empty for PostgreSQL).
    pub fn path(&self) -> &Path {
        match &self.backend {
            Backend::Sqlite(s) => s.path(),
            Backend::Postgres(_) => Path::new(""),
        }
    }

    /// The directory that holds the database file and the gateway's generated secrets.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        match &self.backend {
            Backend::Postgres(_) => PathBuf::from("portcullis-data"),
            Backend::Sqlite(s) => match s.path().parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
                _ => PathBuf::from("."),
            },
        }
    }

    /// Uses `dir` for the gateway's generated secrets instead of the default.
    pub fn with_data_dir(mut self, dir: Option<PathBuf>) -> Store {
        if dir.is_some() {
            self.data_dir = dir;
        }
        self
    }

    /// A channel that receives `()` whenever another replica changes keys, tenants or signing
    /// keys (PostgreSQL LISTEN/NOTIFY). `None` for SQLite, which relies on polling.
    pub fn key_changes(&self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        let Backend::Postgres(pg) = &self.backend else {
            return None;
        };
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        pg.listen(tx);
        Some(rx)
    }

    /// Which backend this is, for logs and `/readyz`.
    pub fn backend(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(s) => s.name(),
            Backend::Postgres(p) => p.name(),
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self.ping())
    }

    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        dispatch!(self.schema_version())
    }

    pub async fn create_tenant(
        &self,
        name: &str,
        audience: Audience,
        plan: &str,
    ) -> Result<Tenant, StoreError> {
        dispatch!(self.create_tenant(name, audience, plan))
    }

    pub async fn tenant(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        dispatch!(self.tenant(name))
    }

    pub async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        dispatch!(self.tenants())
    }

    pub async fn insert_key(&self, key: KeyRecord) -> Result<(), StoreError> {
        dispatch!(self.insert_key(key))
    }

    pub async fn key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        dispatch!(self.key(id))
    }

    /// Keys, optionally of one tenant, oldest first.
    pub async fn keys(&self, tenant: Option<&str>) -> Result<Vec<KeyRecord>, StoreError> {
        dispatch!(self.keys(tenant))
    }

    /// Marks a key revoked; false when it does not exist or was already revoked.
    pub async fn revoke_key(&self, id: &str, reason: &str) -> Result<bool, StoreError> {
        dispatch!(self.revoke_key(id, reason))
    }

    /// Records last-use times in one transaction (not a change replicas reload for).
    pub async fn record_key_use(&self, uses: Vec<(String, i64)>) -> Result<(), StoreError> {
        dispatch!(self.record_key_use(uses))
    }

    /// Shortens a key's life to end at `at` (no-op if it already ends sooner).
    pub async fn expire_key_at(&self, id: &str, at: i64) -> Result<(), StoreError> {
        dispatch!(self.expire_key_at(id, at))
    }

    /// A counter that changes whenever any key, tenant or signing key does.
    pub async fn key_revision(&self) -> Result<i64, StoreError> {
        dispatch!(self.key_revision())
    }

    /// Signing keys not retired before `since`, newest first.
    pub async fn signing_keys(&self, since: i64) -> Result<Vec<SigningKeyRecord>, StoreError> {
        dispatch!(self.signing_keys(since))
    }

    /// Retires the signing keys in use and starts signing with `key`.
    pub async fn rotate_signing_key(&self, key: SigningKeyRecord) -> Result<(), StoreError> {
        dispatch!(self.rotate_signing_key(key))
    }

    pub async fn record_audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        source: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self.record_audit(actor, action, target, source, detail))
    }

    /// The newest `limit` audit events, newest first.
    pub async fn audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        dispatch!(self.audit_events(limit))
    }

    /// Appends request records in one transaction.
    pub async fn add_requests(&self, rows: Vec<StoredRequest>) -> Result<(), StoreError> {
        dispatch!(self.add_requests(rows))
    }

    /// The request records a query selects.
    pub async fn requests(&self, query: &RequestQuery) -> Result<RequestPage, StoreError> {
        dispatch!(self.requests(query))
    }

    /// Removes request records that arrived before `before_us`; returns how many.
    pub async fn prune_requests(&self, before_us: i64) -> Result<u64, StoreError> {
        dispatch!(self.prune_requests(before_us))
    }

    /// Adds usage rows to the ledger in one transaction.
    pub async fn add_usage(&self, rows: Vec<UsageRow>) -> Result<(), StoreError> {
        dispatch!(self.add_usage(rows))
    }

    /// The sum of the rows a filter selects.
    pub async fn usage_total(&self, filter: &UsageFilter) -> Result<UsageRow, StoreError> {
        dispatch!(self.usage_total(filter))
    }

    /// The rows a filter selects, oldest day first.
    pub async fn usage_rows(&self, filter: &UsageFilter) -> Result<Vec<UsageRow>, StoreError> {
        dispatch!(self.usage_rows(filter))
    }

    /// Sets (or replaces) a principal's risk factor.
    pub async fn set_risk(&self, record: RiskRecord) -> Result<(), StoreError> {
        dispatch!(self.set_risk(record))
    }

    /// Removes a principal's risk factor; false if it had none.
    pub async fn clear_risk(&self, subject: &str) -> Result<bool, StoreError> {
        dispatch!(self.clear_risk(subject))
    }

    /// Risk factors that have not expired at `now_us`.
    pub async fn risk_factors(&self, now_us: i64) -> Result<Vec<RiskRecord>, StoreError> {
        dispatch!(self.risk_factors(now_us))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/portcullis.db", dir.path().display());
        let store = Store::open(&url).await.unwrap();
        store.ping().await.unwrap();
        let version = store.schema_version().await.unwrap();
        assert_eq!(version, SqliteStore::migrations());
        drop(store);
        // Migrations are idempotent across restarts.
        let again = Store::open(&url).await.unwrap();
        assert_eq!(again.schema_version().await.unwrap(), version);
    }

    #[tokio::test]
    async fn rejects_other_urls() {
        assert!(matches!(
            Store::open("mysql://x").await,
            Err(StoreError::UnsupportedUrl)
        ));
    }
}
