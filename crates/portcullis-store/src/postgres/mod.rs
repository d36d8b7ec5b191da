//! The PostgreSQL backend: the same tables and migrations as SQLite in PostgreSQL's dialect,
//! so several gateway replicas can share one control plane.

mod requests;
mod usage;

use crate::records::{json_list as list, list_json, *};
use crate::{now, StoreError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use portcullis_core::{Audience, Environment};
use tokio_postgres::{NoTls, Row};

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE IF NOT EXISTS gateway_instances (id TEXT PRIMARY KEY, started_at TEXT NOT NULL)",
    ),
    (
        2,
        "CREATE TABLE tenants (
             name TEXT PRIMARY KEY,
             audience TEXT NOT NULL CHECK (audience IN ('internal', 'partner', 'customer')),
             plan TEXT NOT NULL,
             created_at BIGINT NOT NULL
         );
         CREATE TABLE api_keys (
             id TEXT PRIMARY KEY,
             tenant TEXT NOT NULL REFERENCES tenants(name),
             secret_hash BYTEA NOT NULL,
             environment TEXT NOT NULL CHECK (environment IN ('live', 'test')),
             kind TEXT NOT NULL CHECK (kind IN ('secret', 'publishable')),
             roles TEXT NOT NULL,
             models TEXT,
             description TEXT NOT NULL DEFAULT '',
             created_at BIGINT NOT NULL,
             expires_at BIGINT NOT NULL,
             revoked_at BIGINT,
             revoked_reason TEXT
         );
         CREATE INDEX api_keys_tenant ON api_keys(tenant);
         CREATE TABLE key_revision (
             singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
             revision BIGINT NOT NULL
         );
         INSERT INTO key_revision VALUES (1, 0);
         CREATE TABLE audit_events (
             seq BIGSERIAL PRIMARY KEY,
             at BIGINT NOT NULL,
             actor TEXT NOT NULL,
             action TEXT NOT NULL,
             target TEXT NOT NULL DEFAULT '',
             source TEXT NOT NULL DEFAULT '',
             detail TEXT NOT NULL DEFAULT ''
         )",
    ),
    (
        3,
        "CREATE TABLE signing_keys (
             kid TEXT PRIMARY KEY,
             private_pkcs8 BYTEA NOT NULL,
             public_key BYTEA NOT NULL,
             created_at BIGINT NOT NULL,
             retired_at BIGINT
         )",
    ),
    (
        4,
        "ALTER TABLE api_keys ADD COLUMN allowed_ips TEXT;
         ALTER TABLE api_keys ADD COLUMN allowed_origins TEXT",
    ),
    (5, "ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT"),
    (6, crate::usage_sql::MIGRATION_PG),
    (7, crate::requests_sql::MIGRATION_PG),
];

pub(crate) fn pg(e: impl std::fmt::Display) -> StoreError {
    StoreError::Postgres(e.to_string())
}

/// The PostgreSQL store: a connection pool, shared by every replica.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    url: String,
}

const KEY_COLUMNS: &str =
    "id, tenant, secret_hash, environment, kind, roles, models, description, \
    created_at, expires_at, revoked_at, revoked_reason, allowed_ips, allowed_origins, last_used_at";

/// Bumps the key revision and tells every listening replica (delivered at commit).
const BUMP: &str = "UPDATE key_revision SET revision = revision + 1 WHERE singleton = 1";
const NOTIFY: &str = "NOTIFY portcullis_keys";

/// The channel replicas LISTEN on for key changes.
pub(crate) const CHANNEL: &str = "portcullis_keys";

fn key_row(r: &Row) -> KeyRecord {
    let hash: Vec<u8> = r.get(2);
    let mut secret_hash = [0u8; 32];
    if hash.len() == 32 {
        secret_hash.copy_from_slice(&hash);
    }
    let environment: String = r.get(3);
    let kind: String = r.get(4);
    let roles: String = r.get(5);
    KeyRecord {
        id: r.get(0),
        tenant: r.get(1),
        secret_hash,
        environment: Environment::parse(&environment).unwrap_or(Environment::Test),
        kind: if kind == "publishable" {
            KeyKind::Publishable
        } else {
            KeyKind::Secret
        },
        roles: serde_json::from_str(&roles).unwrap_or_default(),
        models: list(r.get(6)),
        description: r.get(7),
        created_at: r.get(8),
        expires_at: r.get(9),
        revoked_at: r.get(10),
        revoked_reason: r.get(11),
        allowed_ips: list(r.get(12)),
        allowed_origins: list(r.get(13)),
        last_used_at: r.get(14),
    }
}

fn tenant_row(r: &Row) -> Tenant {
    let audience: String = r.get(1);
    Tenant {
        name: r.get(0),
        audience: Audience::parse(&audience).unwrap_or(Audience::Customer),
        plan: r.get(2),
        created_at: r.get(3),
    }
}

impl PgStore {
    pub(crate) async fn open(url: &str) -> Result<PgStore, StoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(pg)?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager).max_size(16).build().map_err(pg)?;
        let store = PgStore {
            pool,
            url: url.to_owned(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Sends `()` on `changed` for every key change notified by any replica, reconnecting
    /// after a lost connection (and sending `()` then too, since changes may have been missed).
    pub(crate) fn listen(&self, changed: tokio::sync::mpsc::Sender<()>) {
        let url = self.url.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = listen_once(&url, &changed).await {
                    tracing::warn!(error = %e, "lost the PostgreSQL key-change listener; reconnecting");
                }
                if changed.is_closed() {
                    return;
                }
                let _ = changed.try_send(());
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pg)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        // One migrator at a time across replicas.
        tx.batch_execute(
            "SELECT pg_advisory_xact_lock(7234501);
             CREATE TABLE IF NOT EXISTS schema_migrations (
                 version BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(pg)?;
        for (version, sql) in MIGRATIONS {
            let applied = tx
                .query_opt(
                    "SELECT 1 FROM schema_migrations WHERE version = $1",
                    &[version],
                )
                .await
                .map_err(pg)?
                .is_some();
            if !applied {
                tx.batch_execute(sql).await.map_err(pg)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)",
                    &[version],
                )
                .await
                .map_err(pg)?;
            }
        }
        tx.commit().await.map_err(pg)
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        self.client()
            .await?
            .query_one("SELECT count(*) FROM schema_migrations", &[])
            .await
            .map_err(pg)
            .map(|_| ())
    }

    pub(crate) async fn schema_version(&self) -> Result<i64, StoreError> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(pg)?;
        Ok(row.get(0))
    }

    pub(crate) async fn create_tenant(
        &self,
        name: &str,
        audience: Audience,
        plan: &str,
    ) -> Result<Tenant, StoreError> {
        let tenant = Tenant {
            name: name.to_owned(),
            audience,
            plan: plan.to_owned(),
            created_at: now(),
        };
        self.insert_tenant(&tenant).await?;
        Ok(tenant)
    }

    async fn insert_tenant(&self, t: &Tenant) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let inserted = tx
            .execute(
                "INSERT INTO tenants (name, audience, plan, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO NOTHING",
                &[&t.name, &t.audience.as_str(), &t.plan, &t.created_at],
            )
            .await
            .map_err(pg)?;
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "tenant `{}` already exists",
                t.name
            )));
        }
        tx.execute(BUMP, &[]).await.map_err(pg)?;
        tx.batch_execute(NOTIFY).await.map_err(pg)?;
        tx.commit().await.map_err(pg)
    }

    pub(crate) async fn tenant(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT name, audience, plan, created_at FROM tenants WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(pg)?;
        Ok(row.as_ref().map(tenant_row))
    }

    pub(crate) async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT name, audience, plan, created_at FROM tenants ORDER BY name",
                &[],
            )
            .await
            .map_err(pg)?;
        Ok(rows.iter().map(tenant_row).collect())
    }

    pub(crate) async fn record_audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        source: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let e = [actor, action, target, source, detail];
        self.client()
            .await?
            .execute(
                "INSERT INTO audit_events (at, actor, action, target, source, detail)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&now(), &e[0], &e[1], &e[2], &e[3], &e[4]],
            )
            .await
            .map_err(pg)
            .map(|_| ())
    }

    pub(crate) async fn audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT seq, at, actor, action, target, source, detail FROM audit_events
                 ORDER BY seq DESC LIMIT $1",
                &[&(limit as i64)],
            )
            .await
            .map_err(pg)?;
        Ok(rows
            .iter()
            .map(|r| AuditEvent {
                seq: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                action: r.get(3),
                target: r.get(4),
                source: r.get(5),
                detail: r.get(6),
            })
            .collect())
    }

    pub(crate) async fn insert_key(&self, key: KeyRecord) -> Result<(), StoreError> {
        let k = &key;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        if tx
            .query_opt("SELECT 1 FROM tenants WHERE name = $1", &[&k.tenant])
            .await
            .map_err(pg)?
            .is_none()
        {
            return Err(StoreError::NotFound(format!(
                "no tenant named `{}`",
                k.tenant
            )));
        }
        let roles = serde_json::to_string(&k.roles).unwrap_or_else(|_| "[]".into());
        tx.execute(
            &format!("INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)"),
            &[
                &k.id,
                &k.tenant,
                &k.secret_hash.to_vec(),
                &k.environment.as_str(),
                &k.kind.as_str(),
                &roles,
                &list_json(&k.models),
                &k.description,
                &k.created_at,
                &k.expires_at,
                &k.revoked_at,
                &k.revoked_reason,
                &list_json(&k.allowed_ips),
                &list_json(&k.allowed_origins),
                &k.last_used_at,
            ],
        )
        .await
        .map_err(pg)?;
        tx.execute(BUMP, &[]).await.map_err(pg)?;
        tx.batch_execute(NOTIFY).await.map_err(pg)?;
        tx.commit().await.map_err(pg)
    }

    pub(crate) async fn key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(pg)?;
        Ok(row.as_ref().map(key_row))
    }

    pub(crate) async fn keys(&self, tenant: Option<&str>) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE ($1::TEXT IS NULL OR tenant = $1)
                     ORDER BY created_at, id"
                ),
                &[&tenant],
            )
            .await
            .map_err(pg)?;
        Ok(rows.iter().map(key_row).collect())
    }

    pub(crate) async fn revoke_key(&self, id: &str, reason: &str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let changed = tx
            .execute(
                "UPDATE api_keys SET revoked_at = $2, revoked_reason = $3
                 WHERE id = $1 AND revoked_at IS NULL",
                &[&id, &now(), &reason],
            )
            .await
            .map_err(pg)?;
        if changed > 0 {
            tx.execute(BUMP, &[]).await.map_err(pg)?;
            tx.batch_execute(NOTIFY).await.map_err(pg)?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(changed > 0)
    }

    pub(crate) async fn key_revision(&self) -> Result<i64, StoreError> {
        let row = self
            .client()
            .await?
            .query_one("SELECT revision FROM key_revision WHERE singleton = 1", &[])
            .await
            .map_err(pg)?;
        Ok(row.get(0))
    }

    pub(crate) async fn record_key_use(&self, uses: Vec<(String, i64)>) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let stmt = tx
            .prepare("UPDATE api_keys SET last_used_at = GREATEST(COALESCE(last_used_at, 0), $2) WHERE id = $1")
            .await
            .map_err(pg)?;
        for (id, at) in &uses {
            tx.execute(&stmt, &[id, at]).await.map_err(pg)?;
        }
        tx.commit().await.map_err(pg)
    }

    pub(crate) async fn expire_key_at(&self, id: &str, at: i64) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute(
            "UPDATE api_keys SET expires_at = LEAST(expires_at, $2) WHERE id = $1",
            &[&id, &at],
        )
        .await
        .map_err(pg)?;
        tx.execute(BUMP, &[]).await.map_err(pg)?;
        tx.batch_execute(NOTIFY).await.map_err(pg)?;
        tx.commit().await.map_err(pg)
    }

    pub(crate) async fn signing_keys(
        &self,
        since: i64,
    ) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT kid, private_pkcs8, public_key, created_at, retired_at FROM signing_keys
                 WHERE retired_at IS NULL OR retired_at >= $1 ORDER BY created_at DESC, kid DESC",
                &[&since],
            )
            .await
            .map_err(pg)?;
        Ok(rows
            .iter()
            .map(|r| SigningKeyRecord {
                kid: r.get(0),
                private_pkcs8: r.get(1),
                public_key: r.get(2),
                created_at: r.get(3),
                retired_at: r.get(4),
            })
            .collect())
    }

    pub(crate) async fn rotate_signing_key(&self, key: SigningKeyRecord) -> Result<(), StoreError> {
        let key = &key;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute(
            "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL",
            &[&now()],
        )
        .await
        .map_err(pg)?;
        tx.execute(
            "INSERT INTO signing_keys (kid, private_pkcs8, public_key, created_at) VALUES ($1, $2, $3, $4)",
            &[&key.kid, &key.private_pkcs8, &key.public_key, &key.created_at],
        )
        .await
        .map_err(pg)?;
        tx.execute(BUMP, &[]).await.map_err(pg)?;
        tx.batch_execute(NOTIFY).await.map_err(pg)?;
        tx.commit().await.map_err(pg)
    }
}

async fn listen_once(url: &str, changed: &tokio::sync::mpsc::Sender<()>) -> Result<(), StoreError> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await.map_err(pg)?;
    let (messages_tx, mut messages) = tokio::sync::mpsc::unbounded_channel();
    // The connection must be polled for notifications to arrive; a task does that.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                    if messages_tx.send(()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(pg)?;
    // Changes made between the caller's last load and this LISTEN were never announced to
    // us: ask for one refresh now that nothing more can be missed.
    let _ = changed.try_send(());
    while messages.recv().await.is_some() {
        if changed.is_closed() {
            break;
        }
        let _ = changed.try_send(());
    }
    driver.abort();
    Ok(())
}
