//! Tenants: the organisations that own keys, with their audience and plan.

use super::{now, Store, StoreError};
use portcullis_core::Audience;
use rusqlite::OptionalExtension;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub name: String,
    #[serde(serialize_with = "audience_text")]
    pub audience: Audience,
    pub plan: String,
    pub created_at: i64,
}

fn audience_text<S: serde::Serializer>(a: &Audience, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(a.as_str())
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Tenant> {
    let audience: String = r.get(1)?;
    Ok(Tenant {
        name: r.get(0)?,
        audience: Audience::parse(&audience).unwrap_or(Audience::Customer),
        plan: r.get(2)?,
        created_at: r.get(3)?,
    })
}

impl Store {
    pub async fn create_tenant(
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
        if let Some(pg) = &self.pg {
            pg.create_tenant(&tenant).await?;
            return Ok(tenant);
        }
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

    pub async fn tenant(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        if let Some(pg) = &self.pg {
            return pg.tenant(name).await;
        }
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

    pub async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        if let Some(pg) = &self.pg {
            return pg.tenants().await;
        }
        self.with_connection(|c| {
            let mut stmt =
                c.prepare("SELECT name, audience, plan, created_at FROM tenants ORDER BY name")?;
            let rows = stmt.query_map([], row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
