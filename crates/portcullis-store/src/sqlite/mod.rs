//! The SQLite backend, embedded by default: one connection behind a mutex (SQLite serialises
//! writers anyway), WAL journal.
//!
//! SQLite calls block, so every call runs on tokio's blocking pool; the request hot path never
//! touches the store (credentials are cached in memory by `KeyCache`), only start-up, the admin
//! API, background refreshes and readiness checks do. The SQLite file (which holds the token
//! signing key) is `0600`, in a directory created `0700`.

mod audit;
mod keys;
mod requests;
mod signing;
mod tenants;
mod usage;

use crate::StoreError;
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
    (6, crate::usage_sql::MIGRATION),
    (7, crate::requests_sql::MIGRATION),
];

/// The SQLite store: one file, one connection.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub(crate) async fn open(path: PathBuf) -> Result<SqliteStore, StoreError> {
        let path_for_task = path.clone();
        let connection = tokio::task::spawn_blocking(move || open_sqlite(&path_for_task))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
        Ok(SqliteStore {
            connection: Arc::new(Mutex::new(connection)),
            path,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        self.with_connection(|c| {
            c.query_row("SELECT count(*) FROM schema_migrations", [], |r| {
                r.get::<_, i64>(0)
            })?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn schema_version(&self) -> Result<i64, StoreError> {
        self.with_connection(|c| {
            Ok(c.query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    #[cfg(test)]
    pub(crate) fn migrations() -> i64 {
        MIGRATIONS.last().map_or(0, |m| m.0)
    }

    pub(crate) async fn with_connection<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = Arc::clone(&self.connection);
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
    // First: another process may hold the file while it sets up or migrates it.
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    // Switching a new file to WAL takes an exclusive lock that SQLite does not wait for
    // (no busy handler): another opener holding the file makes it fail at once. Retried.
    let mut tries = 0;
    while let Err(e) = connection.pragma_update(None, "journal_mode", "WAL") {
        tries += 1;
        if tries > 100 || e.sqlite_error_code() != Some(rusqlite::ErrorCode::DatabaseBusy) {
            return Err(e.into());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
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

fn migrate(connection: &Connection) -> Result<(), StoreError> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY,
             applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
         );",
    )?;
    for (version, sql) in MIGRATIONS {
        // The check and the change in one write transaction: two processes opening a new
        // file at once (replicas, or a CLI beside the gateway) apply each migration once.
        connection.execute_batch("BEGIN IMMEDIATE")?;
        let applied = apply_once(connection, *version, sql);
        match applied {
            Ok(()) => connection.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = connection.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    Ok(())
}

fn apply_once(connection: &Connection, version: i64, sql: &str) -> Result<(), StoreError> {
    let applied: bool = connection.query_row(
        "SELECT EXISTS(SELECT 1 FROM schema_migrations WHERE version = ?1)",
        [version],
        |r| r.get(0),
    )?;
    if !applied {
        connection.execute_batch(sql)?;
        connection.execute(
            "INSERT INTO schema_migrations (version) VALUES (?1)",
            [version],
        )?;
    }
    Ok(())
}
