//! Token signing keys (Ed25519). The newest unretired key signs; retired keys keep verifying
//! until every token they signed has expired. Kept in the store so every replica signs and
//! verifies with the same keys.

use super::SqliteStore;
use crate::records::*;
use crate::{now, StoreError};

impl SqliteStore {
    /// Signing keys not retired before `since`, newest first.
    pub(crate) async fn signing_keys(
        &self,
        since: i64,
    ) -> Result<Vec<SigningKeyRecord>, StoreError> {
        self.with_connection(move |c| {
            let mut stmt = c.prepare(
                "SELECT kid, private_pkcs8, public_key, created_at, retired_at FROM signing_keys
                 WHERE retired_at IS NULL OR retired_at >= ?1 ORDER BY created_at DESC, kid DESC",
            )?;
            let rows = stmt.query_map([since], |r| {
                Ok(SigningKeyRecord {
                    kid: r.get(0)?,
                    private_pkcs8: r.get(1)?,
                    public_key: r.get(2)?,
                    created_at: r.get(3)?,
                    retired_at: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Makes `key` the signing key and retires every other active one.
    pub(crate) async fn rotate_signing_key(&self, key: SigningKeyRecord) -> Result<(), StoreError> {
        self.with_connection(move |c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL",
                [now()],
            )?;
            tx.execute(
                "INSERT INTO signing_keys (kid, private_pkcs8, public_key, created_at) VALUES (?1, ?2, ?3, ?4)",
                (&key.kid, &key.private_pkcs8, &key.public_key, key.created_at),
            )?;
            tx.execute(
                "UPDATE key_revision SET revision = revision + 1 WHERE singleton = 1",
                [],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }
}
