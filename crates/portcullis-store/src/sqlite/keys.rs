//! API key records. Only the HMAC of a key's secret is stored.
//!
//! Every change bumps `key_revision`, so replicas polling one small row learn that their key
//! cache is stale without reading the whole table.

use super::SqliteStore;
use crate::records::*;
use crate::{now, StoreError};
use portcullis_core::Environment;
use rusqlite::OptionalExtension;

const COLUMNS: &str = "id, tenant, secret_hash, environment, kind, roles, models, description, \
                       created_at, expires_at, revoked_at, revoked_reason, allowed_ips, allowed_origins, last_used_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRecord> {
    let hash: Vec<u8> = r.get(2)?;
    let environment: String = r.get(3)?;
    let kind: String = r.get(4)?;
    let roles: String = r.get(5)?;
    let models: Option<String> = r.get(6)?;
    let mut secret_hash = [0u8; 32];
    if hash.len() == 32 {
        secret_hash.copy_from_slice(&hash);
    }
    Ok(KeyRecord {
        id: r.get(0)?,
        tenant: r.get(1)?,
        secret_hash,
        // The CHECK constraints keep these columns to known values.
        environment: Environment::parse(&environment).unwrap_or(Environment::Test),
        kind: if kind == "publishable" {
            KeyKind::Publishable
        } else {
            KeyKind::Secret
        },
        roles: serde_json::from_str(&roles).unwrap_or_default(),
        models: models.and_then(|m| serde_json::from_str(&m).ok()),
        description: r.get(7)?,
        created_at: r.get(8)?,
        expires_at: r.get(9)?,
        revoked_at: r.get(10)?,
        revoked_reason: r.get(11)?,
        allowed_ips: json_list(r.get(12)?),
        allowed_origins: json_list(r.get(13)?),
        last_used_at: r.get(14)?,
    })
}

fn bump_revision(c: &rusqlite::Connection) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE key_revision SET revision = revision + 1 WHERE singleton = 1",
        [],
    )?;
    Ok(())
}

impl SqliteStore {
    pub(crate) async fn insert_key(&self, key: KeyRecord) -> Result<(), StoreError> {
        self.with_connection(move |c| {
            let tx = c.unchecked_transaction()?;
            let tenant_exists: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM tenants WHERE name = ?1)",
                [&key.tenant],
                |r| r.get(0),
            )?;
            if !tenant_exists {
                return Err(StoreError::NotFound(format!("no tenant named `{}`", key.tenant)));
            }
            tx.execute(
                &format!("INSERT INTO api_keys ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
                rusqlite::params![
                    key.id,
                    key.tenant,
                    key.secret_hash.to_vec(),
                    key.environment.as_str(),
                    key.kind.as_str(),
                    serde_json::to_string(&key.roles).unwrap_or_else(|_| "[]".into()),
                    key.models.as_ref().and_then(|m| serde_json::to_string(m).ok()),
                    key.description,
                    key.created_at,
                    key.expires_at,
                    key.revoked_at,
                    key.revoked_reason,
                    list_json(&key.allowed_ips),
                    list_json(&key.allowed_origins),
                    key.last_used_at,
                ],
            )?;
            bump_revision(&tx)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let id = id.to_owned();
        self.with_connection(move |c| {
            Ok(c.query_row(
                &format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"),
                [&id],
                row,
            )
            .optional()?)
        })
        .await
    }

    /// Keys, optionally of one tenant, oldest first.
    pub(crate) async fn keys(&self, tenant: Option<&str>) -> Result<Vec<KeyRecord>, StoreError> {
        let tenant = tenant.map(str::to_owned);
        self.with_connection(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM api_keys WHERE (?1 IS NULL OR tenant = ?1) ORDER BY created_at, id"
            ))?;
            let rows = stmt.query_map([tenant], row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Marks a key revoked; false when it does not exist or was already revoked.
    pub(crate) async fn revoke_key(&self, id: &str, reason: &str) -> Result<bool, StoreError> {
        let (id, reason) = (id.to_owned(), reason.to_owned());
        self.with_connection(move |c| {
            let tx = c.unchecked_transaction()?;
            let changed = tx.execute(
                "UPDATE api_keys SET revoked_at = ?2, revoked_reason = ?3
                 WHERE id = ?1 AND revoked_at IS NULL",
                (&id, now(), &reason),
            )?;
            if changed > 0 {
                bump_revision(&tx)?;
            }
            tx.commit()?;
            Ok(changed > 0)
        })
        .await
    }

    /// Records last use times in one transaction; does not bump the key revision (usage is
    /// not a change replicas need to reload for).
    pub(crate) async fn record_key_use(&self, uses: Vec<(String, i64)>) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        self.with_connection(move |c| {
            let tx = c.unchecked_transaction()?;
            {
                let mut stmt = tx.prepare(
                    "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?2) WHERE id = ?1",
                )?;
                for (id, at) in &uses {
                    stmt.execute((id, at))?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Shortens a key's life to end at `at` (no-op if it already ends sooner).
    pub(crate) async fn expire_key_at(&self, id: &str, at: i64) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.with_connection(move |c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "UPDATE api_keys SET expires_at = MIN(expires_at, ?2) WHERE id = ?1",
                (&id, at),
            )?;
            bump_revision(&tx)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// A counter that changes whenever any key does.
    pub(crate) async fn key_revision(&self) -> Result<i64, StoreError> {
        self.with_connection(|c| {
            Ok(c.query_row(
                "SELECT revision FROM key_revision WHERE singleton = 1",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }
}
