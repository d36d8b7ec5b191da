//! The control-plane store: SQLite embedded by default.
//!
//! SQLite calls block, so every call runs on tokio's blocking pool; the request hot path never
//! touches the store (credentials are cached in memory by `KeyCache`), only start-up, the admin
//! API, background refreshes and readiness checks do. The SQLite file (which holds the token
//! signing key) is `0600`, in a directory created `0700`.

mod audit;
mod keys;
mod postgres;
mod signing;
mod tenants;
mod usage;

pub use audit::AuditEvent;
pub use keys::{KeyKind, KeyRecord};
pub use signing::SigningKeyRecord;
pub use tenants::Tenant;
pub use usage::{RiskRecord, UsageFilter, UsageRow};

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Schema migrations, applied in order at start and recorded in `schema_migrations`.
/// Append only: a released migration is never edited.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE IF NOT EXISTS gateway_instances (
             id TEXT PRIMARY KEY,
             started_at TEXT NOT NULL
         );",
    ),
    (
        2,
        "CREATE TABLE tenants (
             name TEXT PRIMARY KEY,
             audience TEXT NOT NULL CHECK (audience IN ('internal', 'partner', 'customer')),
             plan TEXT NOT NULL,
             created_at INTEGER NOT NULL
         );
         CREATE TABLE api_keys (
             id TEXT PRIMARY KEY,
             tenant TEXT NOT NULL REFERENCES tenants(name),
             secret_hash BLOB NOT NULL,
             environment TEXT NOT NULL CHECK (environment IN ('live', 'test')),
             kind TEXT NOT NULL CHECK (kind IN ('secret', 'publishable')),
             roles TEXT NOT NULL,
             models TEXT,
             description TEXT NOT NULL DEFAULT '',
             created_at INTEGER NOT NULL,
             expires_at INTEGER NOT NULL,
             revoked_at INTEGER,
             revoked_reason TEXT
         );
         CREATE INDEX api_keys_tenant ON api_keys(tenant);
         CREATE TABLE key_revision (
             singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
             revision INTEGER NOT NULL
         );
         INSERT INTO key_revision VALUES (1, 0);
         CREATE TABLE audit_events (
             seq INTEGER PRIMARY KEY AUTOINCREMENT,
             at INTEGER NOT NULL,
             actor TEXT NOT NULL,
             action TEXT NOT NULL,
             target TEXT NOT NULL DEFAULT '',
             source TEXT NOT NULL DEFAULT '',
             detail TEXT NOT NULL DEFAULT ''
         );",
    ),
    (
        3,
        "CREATE TABLE signing_keys (
             kid TEXT PRIMARY KEY,
             private_pkcs8 BLOB NOT NULL,
             public_key BLOB NOT NULL,
             created_at INTEGER NOT NULL,
             retired_at INTEGER
         );",
    ),
    (
        4,
        "ALTER TABLE api_keys ADD COLUMN allowed_ips TEXT;
         ALTER TABLE api_keys ADD COLUMN allowed_origins TEXT;",
    ),
    (5, "ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;"),
    (6, usage::MIGRATION),
];

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

/// A handle to the store; cheap to clone. SQLite (`sqlite://PATH`) or PostgreSQL
/// (`postgres://...`), with the same tables and behaviour.
#[derive(Clone)]
pub struct Store {
    connection: Option<Arc<Mutex<Connection>>>,
    path: Arc<PathBuf>,
    pub(crate) pg: Option<postgres::PgStore>,
    data_dir: Option<PathBuf>,
}

impl Store {
    /// Opens (creating if needed) the store named by a `sqlite://PATH` URL and migrates it.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Store {
                connection: None,
                path: Arc::new(PathBuf::new()),
                pg: Some(postgres::PgStore::open(url).await?),
                data_dir: None,
            });
        }
        let path = PathBuf::from(
            url.strip_prefix("sqlite://")
                .ok_or(StoreError::UnsupportedUrl)?,
        );
        let path_for_task = path.clone();
        let connection = tokio::task::spawn_blocking(move || open_sqlite(&path_for_task))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
        Ok(Store {
            connection: Some(Arc::new(Mutex::new(connection))),
            path: Arc::new(path),
            pg: None,
            data_dir: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a trivial query: the store is reachable and not corrupt enough to fail it.
    pub async fn ping(&self) -> Result<(), StoreError> {
        if let Some(pg) = &self.pg {
            return pg.ping().await;
        }
        self.with_connection(|c| {
            c.query_row("SELECT count(*) FROM schema_migrations", [], |r| {
                r.get::<_, i64>(0)
            })?;
            Ok(())
        })
        .await
    }

    /// The directory that holds the database file and the gateway's generated secrets.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        if self.pg.is_some() {
            return PathBuf::from("portcullis-data");
        }
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
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
        let pg = self.pg.as_ref()?;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        pg.listen(tx);
        Some(rx)
    }

    /// Which backend this is, for logs and `/readyz`.
    pub fn backend(&self) -> &'static str {
        if self.pg.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// The highest migration applied.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        if let Some(pg) = &self.pg {
            return pg.schema_version().await;
        }
        self.with_connection(|c| {
            Ok(c.query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    pub(crate) async fn with_connection<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = self
            .connection
            .clone()
            .ok_or_else(|| StoreError::Task("no SQLite connection".into()))?;
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves the connection usable: SQLite keeps its
            // own consistency, so a poisoned mutex is recovered rather than propagated.
            let guard = connection.lock().unwrap_or_else(|p| p.into_inner());
            f(&guard)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

fn open_sqlite(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_dir(dir).map_err(|source| StoreError::DataDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    // The store holds the token-signing private key: readable by its owner only. SQLite
    // gives the `-wal` and `-shm` files the database's own mode.
    private_file(path).map_err(|source| StoreError::DataDir {
        path: path.to_owned(),
        source,
    })?;
    let connection = Connection::open(path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    migrate(&connection)?;
    Ok(connection)
}

/// Creates `dir` (and its parents) if missing; a directory created here is `0700`.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates the database file `0600` if missing, and makes an existing one (and its `-wal` and
/// `-shm` files) `0600`.
fn private_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            if file.exists() {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn migrate(connection: &Connection) -> Result<(), StoreError> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY,
             applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
         );",
    )?;
    for (version, sql) in MIGRATIONS {
        let applied: bool = connection.query_row(
            "SELECT EXISTS(SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [version],
            |r| r.get(0),
        )?;
        if !applied {
            let tx = connection.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES (?1)",
                [version],
            )?;
            tx.commit()?;
        }
    }
    Ok(())
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
        assert_eq!(version, MIGRATIONS.last().unwrap().0);
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
