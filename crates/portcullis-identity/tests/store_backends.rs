//! The same store behaviour on SQLite and PostgreSQL.
//!
//! PostgreSQL runs when `PORTCULLIS_TEST_POSTGRES_URL` names a server (scripts/test.sh starts
//! a private one); each run creates and drops its own database there.

use portcullis_core::{Audience, Environment};
use portcullis_identity::store::now;
use portcullis_identity::tokens::generate_signing_key;
use portcullis_identity::{new_key, KeyCache, Store, StoreError, TokenSettings};
use portcullis_testkit::PgDatabase;

async fn suite(store: Store) {
    usage_and_risk(&store).await;
    request_records(&store).await;
    assert_eq!(store.schema_version().await.unwrap(), 7);
    store.ping().await.unwrap();

    // Tenants.
    let revision = store.key_revision().await.unwrap();
    store
        .create_tenant("acme", Audience::Partner, "pro")
        .await
        .unwrap();
    assert!(
        store.key_revision().await.unwrap() > revision,
        "tenant changes bump the revision"
    );
    assert!(matches!(
        store.create_tenant("acme", Audience::Customer, "x").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.tenant("acme").await.unwrap().unwrap().audience,
        Audience::Partner
    );
    assert!(store.tenant("nobody").await.unwrap().is_none());
    assert_eq!(store.tenants().await.unwrap().len(), 1);

    // Keys.
    let pepper = b"pepper".to_vec();
    let (minted, mut record) = new_key(
        &pepper,
        "acme",
        Environment::Test,
        vec!["inference".into()],
        Some(vec!["m".into()]),
        "d".into(),
        3600,
    );
    record.allowed_ips = Some(vec!["10.0.0.0/8".into()]);
    store.insert_key(record.clone()).await.unwrap();
    let (_, orphan) = new_key(
        &pepper,
        "nobody",
        Environment::Live,
        vec![],
        None,
        String::new(),
        60,
    );
    assert!(matches!(
        store.insert_key(orphan).await,
        Err(StoreError::NotFound(_))
    ));
    let loaded = store.key(&record.id).await.unwrap().unwrap();
    assert_eq!(loaded, record, "a key round-trips unchanged");
    assert_eq!(store.keys(Some("acme")).await.unwrap().len(), 1);
    assert!(store.keys(Some("other")).await.unwrap().is_empty());

    store
        .record_key_use(vec![(record.id.clone(), 1234)])
        .await
        .unwrap();
    store
        .record_key_use(vec![(record.id.clone(), 1000)])
        .await
        .unwrap();
    assert_eq!(
        store.key(&record.id).await.unwrap().unwrap().last_used_at,
        Some(1234),
        "never moves back"
    );

    let cache = KeyCache::load(
        &store,
        pepper,
        TokenSettings {
            issuer: "portcullis".into(),
            max_lifetime: 900,
        },
    )
    .await
    .unwrap();
    assert!(cache.authenticate(&minted.text).is_ok());
    assert_eq!(
        cache.jwks()["keys"].as_array().unwrap().len(),
        1,
        "a signing key was created"
    );

    let before = store.key_revision().await.unwrap();
    assert!(store.revoke_key(&record.id, "test").await.unwrap());
    assert!(!store.revoke_key(&record.id, "again").await.unwrap());
    assert!(store.key_revision().await.unwrap() > before);
    assert!(cache.refresh(&store).await.unwrap());
    assert!(cache.authenticate(&minted.text).is_err());

    store.expire_key_at(&record.id, now() - 10).await.unwrap();
    assert!(store.key(&record.id).await.unwrap().unwrap().expires_at <= now());

    // Signing keys rotate; the old one stays listed while its tokens may live.
    store
        .rotate_signing_key(generate_signing_key())
        .await
        .unwrap();
    let keys = store.signing_keys(now() - 900).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.iter().filter(|k| k.retired_at.is_none()).count(), 1);

    // Audit.
    store
        .record_audit("admin", "tenant.create", "acme", "127.0.0.1:1", "d")
        .await
        .unwrap();
    store
        .record_audit("admin", "key.revoke", "k", "127.0.0.1:1", "")
        .await
        .unwrap();
    let events = store.audit_events(10).await.unwrap();
    assert_eq!(events[0].action, "key.revoke", "newest first");
    /// Request records are appended, filtered by every column, read newest first or after a
    /// cursor, and pruned by age; filter values are bound, never spliced.
    async fn request_records(store: &Store) {
        use portcullis_identity::store::{RequestQuery, StoredRequest};
        let row = |n: i64, tenant: &str, decision: &str, code: &str| StoredRequest {
            id: format!("req_{n}"),
            at_us: n * 1_000_000,
            tenant: tenant.into(),
            key_id: format!("{tenant}-key"),
            model: "chat".into(),
            decision: decision.into(),
            code: code.into(),
            record: format!(r#"{{"id":"req_{n}"}}"#),
        };
        store
            .add_requests(vec![
                row(1, "acme", "allowed", ""),
                row(2, "beta", "refused", "rate_limit_exceeded"),
                row(3, "acme", "refused", "input_rejected"),
            ])
            .await
            .unwrap();
        store
            .add_requests(vec![row(4, "acme", "allowed", "")])
            .await
            .unwrap();
        let ids = |page: portcullis_identity::store::RequestPage| {
            page.rows.into_iter().map(|(_, r)| r).collect::<Vec<_>>()
        };
        let query = |f: fn(&mut RequestQuery)| {
            let mut q = RequestQuery {
                limit: 10,
                ..Default::default()
            };
            f(&mut q);
            q
        };
        let all = store.requests(&query(|_| {})).await.unwrap();
        assert_eq!(all.rows.len(), 4);
        assert_eq!(all.rows[0].1, r#"{"id":"req_4"}"#, "newest first");
        let end = all.last_seq;
        let acme = store
            .requests(&query(|q| q.tenant = Some("acme".into())))
            .await
            .unwrap();
        assert_eq!(ids(acme).len(), 3);
        let by_code = store
            .requests(&query(|q| q.decision = Some("input_rejected".into())))
            .await
            .unwrap();
        assert_eq!(ids(by_code), vec![r#"{"id":"req_3"}"#]);
        let refused_acme = store
            .requests(&query(|q| {
                q.decision = Some("refused".into());
                q.tenant = Some("acme".into());
                q.since_us = Some(2_000_000);
                q.until_us = Some(3_000_000);
            }))
            .await
            .unwrap();
        assert_eq!(ids(refused_acme), vec![r#"{"id":"req_3"}"#]);
        let injected = store
            .requests(&query(|q| q.tenant = Some("acme' OR '1'='1".into())))
            .await
            .unwrap();
        assert!(injected.rows.is_empty());
        // After the cursor: only what came next, oldest first.
        store
            .add_requests(vec![
                row(5, "beta", "allowed", ""),
                row(6, "acme", "allowed", ""),
            ])
            .await
            .unwrap();
        let mut after = query(|_| {});
        after.after_seq = Some(end);
        let next = store.requests(&after).await.unwrap();
        assert_eq!(
            ids(next.clone()),
            vec![r#"{"id":"req_5"}"#, r#"{"id":"req_6"}"#]
        );
        assert!(next.last_seq > end);
        assert_eq!(store.prune_requests(3_000_000).await.unwrap(), 2);
        assert_eq!(store.requests(&query(|_| {})).await.unwrap().rows.len(), 4);
    }

    /// The usage ledger adds concurrent writes up, and its sums and filters agree on both
    /// backends; risk factors are stored, replaced, expire and are cleared.
    async fn usage_and_risk(store: &Store) {
        use portcullis_identity::{RiskRecord, UsageFilter, UsageRow};
        let row = |day: &str, key: &str, model: &str, n: i64| UsageRow {
            day: day.into(),
            tenant: "acme".into(),
            key_id: key.into(),
            model: model.into(),
            requests: n,
            input_tokens: 10 * n,
            output_tokens: 100 * n,
            cost_nanos: 1000 * n,
        };
        store
            .add_usage(vec![
                row("2026-11-21", "k1", "m", 1),
                row("2026-11-22", "k1", "m", 2),
            ])
            .await
            .unwrap();
        // Two writers adding to the same row at once both count.
        let (a, b) = tokio::join!(
            store.add_usage(vec![row("2026-11-22", "k1", "m", 3)]),
            store.add_usage(vec![
                row("2026-11-22", "k2", "m", 4),
                row("2026-12-01", "k1", "m", 5)
            ]),
        );
        a.unwrap();
        b.unwrap();
        let total = |f: UsageFilter| async move { store.usage_total(&f).await.unwrap() };
        let all = total(UsageFilter {
            tenant: Some("acme".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(
            (all.requests, all.output_tokens, all.cost_nanos),
            (15, 1500, 15_000)
        );
        let day = total(UsageFilter {
            key_id: Some("k1".into()),
            from: Some("2026-11-22".into()),
            to: Some("2026-11-22".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(day.requests, 5);
        let november = total(UsageFilter {
            tenant: Some("acme".into()),
            from: Some("2026-11-01".into()),
            to: Some("2026-11-31".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(november.input_tokens, 100);
        let nobody = total(UsageFilter {
            tenant: Some("nobody".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(nobody.requests, 0);
        let rows = store
            .usage_rows(&UsageFilter {
                tenant: Some("acme".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[1], row("2026-11-22", "k1", "m", 5));

        let risk = |subject: &str, factor: f64, expires_at_us: i64| RiskRecord {
            subject: subject.into(),
            factor,
            expires_at_us,
            reason: "test".into(),
            set_at: 1,
        };
        store.set_risk(risk("key:k1", 0.5, 1000)).await.unwrap();
        store.set_risk(risk("key:k1", 0.0, 2000)).await.unwrap();
        store.set_risk(risk("tenant:acme", 0.2, 10)).await.unwrap();
        let active = store.risk_factors(100).await.unwrap();
        assert_eq!(active, vec![risk("key:k1", 0.0, 2000)]);
        assert!(store.clear_risk("key:k1").await.unwrap());
        assert!(!store.clear_risk("key:k1").await.unwrap());
        assert!(store.risk_factors(0).await.unwrap().len() == 1);
    }

    assert_eq!(events.len(), 2);
}

#[tokio::test]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}/p.db", dir.path().display()))
        .await
        .unwrap();
    assert_eq!(store.backend(), "sqlite");
    suite(store).await;
}

/// Processes opening one new file at once (replicas on one host, the CLI beside the gateway)
/// each apply every migration exactly once.
#[test]
fn concurrent_first_opens_of_one_sqlite_file_migrate_it_once() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/p{round}.db", dir.path().display());
        let openers: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    runtime.block_on(async { Store::open(&url).await.map(|_| ()) })
                })
            })
            .collect();
        for opener in openers {
            opener.join().unwrap().unwrap();
        }
    }
}

/// F6: the SQLite store holds the token-signing key; only its owner may read it.
#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_store_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("portcullis.db");
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    store
        .create_tenant("acme", Audience::Customer, "default")
        .await
        .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    for file in ["portcullis.db", "portcullis.db-wal", "portcullis.db-shm"] {
        let path = data.join(file);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
    assert_eq!(mode(&db), 0o600);
    // An existing, world-readable file is made private when opened.
    drop(store);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _again = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    assert_eq!(mode(&db), 0o600);
}

#[tokio::test]
async fn postgres_store() {
    let Some(server) = PgDatabase::required() else {
        return;
    };
    let database = PgDatabase::create_in(&server).await;
    let url = database.url().to_owned();
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend(), "postgres");
    // Migrations are idempotent and safe to run from several replicas.
    let (a, b) = tokio::join!(Store::open(&url), Store::open(&url));
    a.unwrap();
    b.unwrap();
    suite(store).await;
}
