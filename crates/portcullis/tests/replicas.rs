//! Three gateway processes sharing one Redis (for limits) and one PostgreSQL (for keys and
//! the usage ledger), hammered concurrently with one key: the admitted total stays within the
//! limit across all of them; when Redis dies the `local` policy holds each replica to its
//! share; when Redis comes back (empty) the replicas use it again by themselves; daily quotas
//! hold across replicas and survive Redis losing its data, because they are re-seeded from the
//! ledger in PostgreSQL.
//!
//! Tolerance: none on the shared limit. The Redis script decides each request atomically with
//! Redis's own clock, so the bound `burst + rate * elapsed` is exact; `elapsed` is measured
//! around the whole phase, which can only make the bound looser, never tighter.

mod common;

use common::{binary, free_port, http, wait_ready, write_config, Running};
use portcullis_testkit::{PgDatabase, RedisServer};
use serde_json::Value;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn request(port: u16, method: &str, path: &str, auth: &str, body: &str) -> (u16, String) {
    let reply = http(
        &format!("127.0.0.1:{port}"),
        &format!(
            "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer {auth}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

const CHAT: &str =
    r#"{"model":"chat","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}"#;

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    limited: AtomicU64,
    other: AtomicU64,
}

/// Every replica gets `threads` clients sending requests back to back for `duration`.
/// Returns the tally and the phase's elapsed time.
fn hammer(
    publics: &[u16],
    key: &str,
    threads: usize,
    duration: Duration,
) -> (Arc<Tally>, Duration) {
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let handles: Vec<_> = publics
        .iter()
        .flat_map(|&port| (0..threads).map(move |_| port))
        .map(|port| {
            let tally = tally.clone();
            let key = key.to_owned();
            std::thread::spawn(move || {
                while started.elapsed() < duration {
                    let (status, _) = request(port, "POST", "/v1/chat/completions", &key, CHAT);
                    match status {
                        200 => tally.ok.fetch_add(1, Ordering::Relaxed),
                        429 => tally.limited.fetch_add(1, Ordering::Relaxed),
                        _ => tally.other.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    (tally, started.elapsed())
}

fn limits_status(admin: u16) -> String {
    let (_, body) = request(admin, "GET", "/readyz", "", "");
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    v["checks"]["limits"]["status"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `n` gateway processes on one PostgreSQL database and the simulator, each with
/// `extra` configuration after its listeners and store; waits until each is ready.
/// Returns the processes and their public and admin ports.
fn start_replicas(
    n: usize,
    dir: &std::path::Path,
    database: &str,
    sim_port: u16,
    extra: &str,
) -> (Vec<Running>, Vec<u16>, Vec<u16>) {
    let mut replicas = Vec::new();
    let mut publics = Vec::new();
    let mut admins = Vec::new();
    for _ in 0..n {
        let (public, admin) = (free_port(), free_port());
        let config = write_config(
            dir,
            &format!(
                "[listeners]\npublic = \"127.0.0.1:{public}\"\nadmin = \"127.0.0.1:{admin}\"\n\
                 [store]\nurl = \"{database}\"\ndata_dir = \"{data}\"\n\
                 [[upstreams]]\nname = \"sim\"\nbase_url = \"http://127.0.0.1:{sim_port}/v1\"\n\
                 [[models]]\nname = \"chat\"\nupstream = \"sim\"\n{extra}",
                data = dir.display(),
            ),
        );
        replicas.push(Running(
            binary()
                .args(["serve", "--config"])
                .arg(&config)
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
        wait_ready(admin);
        publics.push(public);
        admins.push(admin);
    }
    (replicas, publics, admins)
}

#[test]
fn three_replicas_share_limits_and_quotas_through_redis() {
    let Some(server) = PgDatabase::required() else {
        return;
    };
    let pg = PgDatabase::create_blocking(&server);
    let database = pg.url().to_owned();
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let sim_port = free_port();
    let _sim = Running(
        binary()
            .args(["sim", "--listen", &format!("127.0.0.1:{sim_port}")])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (replicas, publics, admins) = start_replicas(
        3,
        dir.path(),
        &database,
        sim_port,
        &format!(
            "[limits]\nbackend = \"redis\"\nredis_url = \"{}\"\non_redis_failure = \"local\"\n\
             local_fraction = 0.34\nflush_interval = \"200ms\"\n\
             [plans.default.key]\nrequests_per_minute = 60\n\
             [plans.quota.key]\ntokens_per_day = 100\n",
            redis.url()
        ),
    );
    let token = std::fs::read_to_string(dir.path().join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    let make_key = |tenant: &str, plan: &str| -> String {
        let body = format!(r#"{{"name":"{tenant}","audience":"customer","plan":"{plan}"}}"#);
        let (status, reply) = request(admins[0], "POST", "/admin/v1/tenants", &token, &body);
        assert_eq!(status, 201, "{reply}");
        let body = format!(r#"{{"tenant":"{tenant}"}}"#);
        let (status, reply) = request(admins[0], "POST", "/admin/v1/keys", &token, &body);
        assert_eq!(status, 201, "{reply}");
        let key = serde_json::from_str::<Value>(&reply).unwrap()["key"]
            .as_str()
            .unwrap()
            .to_owned();
        // Every replica knows the key before the test starts (listing models costs nothing).
        for &p in &publics {
            wait_for("the key on every replica", || {
                request(p, "GET", "/v1/models", &key, "").0 == 200
            });
        }
        key
    };
    for &admin in &admins {
        wait_for("redis in use", || limits_status(admin) == "ok");
    }

    // 1. Shared: 60 a minute with a burst of 60, across all three.
    let key = make_key("acme", "default");
    let (tally, elapsed) = hammer(&publics, &key, 4, Duration::from_secs(2));
    let ok = tally.ok.load(Ordering::Relaxed);
    let allowance = 60 + (elapsed.as_secs_f64() * 1.0).ceil() as u64;
    assert_eq!(tally.other.load(Ordering::Relaxed), 0);
    assert!(
        tally.limited.load(Ordering::Relaxed) > 100,
        "the limit was never reached"
    );
    eprintln!(
        "shared: admitted {ok} of {} in {elapsed:?}, allowance {allowance}",
        ok + tally.limited.load(Ordering::Relaxed)
    );
    assert!(
        ok >= 60 && ok <= allowance,
        "admitted {ok}, allowance {allowance}"
    );

    // 2. Redis dies: each replica holds its key to 34% of the limit on its own.
    redis.kill();
    let (tally, elapsed) = hammer(&publics, &key, 4, Duration::from_secs(1));
    let ok = tally.ok.load(Ordering::Relaxed);
    let per_replica = 20 + (elapsed.as_secs_f64() * 20.0 / 60.0).ceil() as u64;
    eprintln!(
        "redis down: admitted {ok} in {elapsed:?}, allowance {}",
        3 * per_replica
    );
    assert_eq!(
        tally.other.load(Ordering::Relaxed),
        0,
        "no errors, no panics"
    );
    assert!(
        ok >= 3 && ok <= 3 * per_replica,
        "admitted {ok} while redis was down"
    );
    for &admin in &admins {
        assert_eq!(limits_status(admin), "degraded");
    }

    // 3. Redis comes back empty: the replicas return to it by themselves, with a fresh limit.
    redis.restart();
    for &admin in &admins {
        wait_for("redis in use again", || limits_status(admin) == "ok");
    }
    let (tally, elapsed) = hammer(&publics, &key, 4, Duration::from_secs(2));
    let ok = tally.ok.load(Ordering::Relaxed);
    let allowance = 60 + elapsed.as_secs_f64().ceil() as u64;
    eprintln!("recovered: admitted {ok} in {elapsed:?}, allowance {allowance}");
    assert!(
        ok >= 60 && ok <= allowance,
        "admitted {ok} after recovery, allowance {allowance}"
    );

    // 4. A daily quota of 100 tokens across replicas: 7 + 16 used per call, 8 + 20 reserved.
    let quota_key = make_key("metered", "quota");
    let statuses: Vec<u16> = (0..5)
        .map(|i| {
            request(
                publics[i % 3],
                "POST",
                "/v1/chat/completions",
                &quota_key,
                CHAT,
            )
            .0
        })
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 429]);
    // Redis loses everything; the quota is seeded again from the ledger in PostgreSQL.
    std::thread::sleep(Duration::from_millis(600));
    redis.kill();
    redis.restart();
    for &admin in &admins {
        wait_for("redis in use again", || limits_status(admin) == "ok");
    }
    for &p in &publics {
        let (status, body) = request(p, "POST", "/v1/chat/completions", &quota_key, CHAT);
        assert_eq!(status, 429, "{body}");
        assert!(body.contains("insufficient_quota"), "{body}");
    }
    let (_, usage) = request(
        admins[2],
        "GET",
        "/admin/v1/usage?tenant=metered&period=day",
        &token,
        "",
    );
    let usage: Value = serde_json::from_str(&usage).unwrap();
    assert_eq!(usage["totals"]["requests"], 4);
    assert_eq!(usage["totals"]["tokens"], 4 * 23);
    drop(replicas);
}

/// One request of a bulk distillation run: one-shot, asks for the full chain of thought,
/// harvests a long answer; each on a new subject.
fn distill_body(n: usize) -> String {
    let subjects = [
        "how tides work",
        "why the sky is blue",
        "how vaccines train immunity",
        "how compilers optimise loops",
        "how interest rates move bond prices",
        "how photosynthesis stores energy",
        "how a transistor switches",
        "why ice floats on water",
    ];
    let subject = subjects[n % subjects.len()];
    format!(
        r#"{{"model":"chat","max_tokens":4000,"messages":[{{"role":"user","content":"Explain step by step, showing your full chain of thought, {subject} (case {n})."}}]}}"#
    )
}

/// Two replicas share the detector through Redis: a key that sends only to the first is
/// seen whole by the second (same request count, same verdict), and the ladder's suspension
/// happens once across both (one audit event), and holds on both.
#[test]
fn two_replicas_see_one_account_and_act_once_through_redis() {
    let Some(server) = PgDatabase::required() else {
        return;
    };
    let pg = PgDatabase::create_blocking(&server);
    let database = pg.url().to_owned();
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let sim_port = free_port();
    let _sim = Running(
        binary()
            .args(["sim", "--listen", &format!("127.0.0.1:{sim_port}")])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (replicas, publics, admins) = start_replicas(
        2,
        dir.path(),
        &database,
        sim_port,
        &format!(
            "[limits]\nbackend = \"redis\"\nredis_url = \"{}\"\n\
             [detect]\n[[detect.ladder]]\nrisk = 0.8\nactions = [\"suspend_key\"]\nhold = \"10m\"\n",
            redis.url()
        ),
    );
    let token = std::fs::read_to_string(dir.path().join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    let (status, reply) = request(
        admins[0],
        "POST",
        "/admin/v1/tenants",
        &token,
        r#"{"name":"thief","audience":"customer"}"#,
    );
    assert_eq!(status, 201, "{reply}");
    let (status, reply) = request(
        admins[0],
        "POST",
        "/admin/v1/keys",
        &token,
        r#"{"tenant":"thief"}"#,
    );
    assert_eq!(status, 201, "{reply}");
    let created: Value = serde_json::from_str(&reply).unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    for &p in &publics {
        wait_for("the key on every replica", || {
            request(p, "GET", "/v1/models", &key, "").0 == 200
        });
    }

    // Only replica 0 serves the key, until it is refused.
    let mut served = 0;
    for n in 0..200 {
        let (status, _) = request(
            publics[0],
            "POST",
            "/v1/chat/completions",
            &key,
            &distill_body(n),
        );
        if status != 200 {
            break;
        }
        served += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(served < 200, "the key was never suspended");
    let verdict = |admin: u16| -> Value {
        let (status, body) = request(admin, "GET", &format!("/admin/v1/threats/{id}"), &token, "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    };
    // Replica 1 never served the key, yet sees every request of it and flags it.
    wait_for("replica 1 to see the key's requests", || {
        verdict(admins[1])["requests"].as_u64() >= Some(served as u64)
    });
    assert_eq!(
        verdict(admins[1])["flagged"],
        true,
        "{}",
        verdict(admins[1])
    );
    // Suspended on both (the stored risk factor), by one action.
    wait_for("the suspension on replica 1", || {
        request(
            publics[1],
            "POST",
            "/v1/chat/completions",
            &key,
            &distill_body(0),
        )
        .0 != 200
    });
    std::thread::sleep(Duration::from_millis(500));
    let (_, audit) = request(admins[0], "GET", "/admin/v1/audit?limit=1000", &token, "");
    let audit: Value = serde_json::from_str(&audit).unwrap();
    let suspensions = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "threat.suspend_key")
        .count();
    assert_eq!(suspensions, 1, "{audit}");
    drop(replicas);
}
