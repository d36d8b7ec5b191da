//! Throwaway PostgreSQL databases on the test server (`PORTCULLIS_TEST_POSTGRES_URL`, which
//! `scripts/test.sh` points at a private server it starts), each dropped with its guard.
//!
//! A test that needs PostgreSQL and finds no server fails rather than passing without having
//! run; `PORTCULLIS_TEST_SKIP_POSTGRES=1` skips it knowingly ([`PgDatabase::required`]).

use std::sync::atomic::{AtomicU64, Ordering};

/// Environment variable naming the test server (a URL ending in a database name).
pub const SERVER_VAR: &str = "PORTCULLIS_TEST_POSTGRES_URL";
/// Environment variable that skips PostgreSQL tests on purpose.
pub const SKIP_VAR: &str = "PORTCULLIS_TEST_SKIP_POSTGRES";

/// A fresh database, dropped (with its connections) when the guard is.
pub struct PgDatabase {
    server_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    /// The test server's URL, if one is configured.
    pub fn server_url() -> Option<String> {
        std::env::var(SERVER_VAR).ok().filter(|u| !u.is_empty())
    }

    /// The server for a test that needs PostgreSQL: panics when there is none, unless the
    /// skip is asked for, in which case it says so and returns `None`.
    pub fn required() -> Option<String> {
        if let Some(url) = PgDatabase::server_url() {
            return Some(url);
        }
        assert!(
            std::env::var_os(SKIP_VAR).is_some(),
            "{SERVER_VAR} is not set: run scripts/test.sh (it starts a private PostgreSQL), or \
             set {SKIP_VAR}=1 to skip this test knowingly"
        );
        eprintln!("skipped: {SKIP_VAR} is set");
        None
    }

    /// Creates a database on the server at `server_url`.
    pub async fn create_in(server_url: &str) -> PgDatabase {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 40)
            ^ COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("pc_test_{unique:016x}");
        execute(server_url, &format!("CREATE DATABASE {name}"))
            .await
            .expect("the test PostgreSQL server accepts CREATE DATABASE");
        let base = server_url
            .rsplit_once('/')
            .map_or(server_url, |(base, _)| base);
        PgDatabase {
            server_url: server_url.to_owned(),
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// As [`PgDatabase::create_in`], for tests without a runtime.
    pub fn create_blocking(server_url: &str) -> PgDatabase {
        let server_url = server_url.to_owned();
        std::thread::spawn(move || runtime().block_on(PgDatabase::create_in(&server_url)))
            .join()
            .expect("creating the test database")
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

async fn execute(url: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    let result = client.batch_execute(sql).await;
    drop(client);
    let _ = driver.await;
    result
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (url, sql) = (
            self.server_url.clone(),
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
        // Best effort, on a thread of its own: Drop cannot await, and may run inside a runtime.
        let _ = std::thread::spawn(move || runtime().block_on(execute(&url, &sql))).join();
    }
}
