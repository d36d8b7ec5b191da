//! Tenants: the organisations that own keys, with their audience and plan.

use super::SqliteStore;
use crate::records::*;
use crate::{now, StoreError};
use portcullis_core::Audience;
use rusqlite::OptionalExtension;

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Tenant> {
    let audience: String = r.get(1)?;
    Ok(Tenant {
        name: r.get(0)?,
        audience: Audience::parse(&audience).unwrap_or(Audience::Customer),
        plan: r.get(2)?,
        created_at: r.get(3)?,
    })
}

impl SqliteStore {
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
        let t = tenant.clone();
        self.with_connection(move |c| {
            let inserted = c.execute(
                "INSERT INTO tenants (name, audience, plan, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO NOTHING",
                (&t.name, t.audience.as_str(), &t.plan, t.created_at),
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!(
                    "tenant `{}` already exists",
                    t.name
                )));
            }
            // Principals carry tenant data, so caches reload on tenant changes too.
            c.execute(
                "UPDATE key_revision SET revision = revision + 1 WHERE singleton = 1",
                [],
            )?;
            Ok(())
        })
        .await?;
        Ok(tenant)
    }

    pub(crate) async fn tenant(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let name = name.to_owned();
        self.with_connection(move |c| {
            Ok(c.query_row(
                "SELECT name, audience, plan, created_at FROM tenants WHERE name = ?1",
                [&name],
                row,
            )
            .optional()?)
        })
        .await
    }

    pub(crate) async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.with_connection(|c| {
            let mut stmt =
                c.prepare("SELECT name, audience, plan, created_at FROM tenants ORDER BY name")?;
            let rows = stmt.query_map([], row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
