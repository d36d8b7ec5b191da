//! The memory and Redis backends decide alike: the same scenarios run against both, the
//! Redis one on a private `redis-server` started for the test.

use portcullis_limits::backend::{Backend, MemoryBackend, RedisBackend};
use portcullis_limits::check::{Adjustment, Check, CheckKind, Demand, Label, Settlement, Verdict};
use portcullis_limits::gcra::Rate;
use portcullis_limits::now_us;
use portcullis_limits::quota::{Measure, Period, QuotaScope, QuotaSeed};
use portcullis_testkit::RedisServer;
use std::time::Duration;

/// A backend under test, through the trait the limiter uses; every call must answer.
struct Tested<'a>(&'a dyn Backend);

impl Tested<'_> {
    async fn admit(&self, demand: &Demand) -> Verdict {
        self.0.admit(demand).await.expect("the backend answers")
    }
    async fn seed(&self, key: &str, used: u64, expires: u64) {
        self.0
            .seed(key, used, expires)
            .await
            .expect("the backend answers")
    }
    async fn settle(&self, s: &Settlement) {
        self.0.settle(s).await.expect("the backend answers")
    }
}

fn rate_check(key: &str, limit: u64, base: u64, per_out: u64) -> Check {
    Check {
        scope: "key",
        key: key.into(),
        kind: CheckKind::Rate(Rate {
            limit,
            period_us: 60_000_000,
            burst: limit,
        }),
        label: Label::Tokens,
        base,
        per_out,
    }
}

fn quota_check(key: &str, limit: u64, base: u64, per_out: u64) -> Check {
    Check {
        scope: "tenant",
        key: key.into(),
        kind: CheckKind::Quota {
            limit,
            expires_at_us: now_us() + 3_600_000_000,
            seed: QuotaSeed {
                scope: QuotaScope::Tenant("acme".into()),
                period: Period::Day("2026-11-22".into()),
                measure: Measure::Tokens,
            },
        },
        label: Label::DailyTokens,
        base,
        per_out,
    }
}

fn concurrency_check(key: &str, max: u64) -> Check {
    Check {
        scope: "key",
        key: key.into(),
        kind: CheckKind::Concurrency { max },
        label: Label::Concurrency,
        base: 1,
        per_out: 0,
    }
}

fn demand(checks: Vec<Check>, out_min: u64, out_max: u64, lease: u64) -> Demand {
    Demand {
        checks,
        out_min,
        out_max,
        lease,
    }
}

async fn scenarios(backend: &Tested<'_>) {
    // A rate of 10 per minute admits 10 at once, then asks for ~6 s.
    let requests = rate_check("s:req", 10, 1, 0);
    for _ in 0..10 {
        let v = backend
            .admit(&demand(vec![requests.clone()], 0, 0, 1))
            .await;
        assert!(matches!(v, Verdict::Admitted { .. }), "{v:?}");
    }
    match backend
        .admit(&demand(vec![requests.clone()], 0, 0, 1))
        .await
    {
        Verdict::Denied {
            index: 0,
            retry_after_us: Some(retry),
            reports,
        } => {
            assert!((5_000_000..=6_000_000).contains(&retry), "{retry}");
            assert_eq!(reports[0].limit, 10);
            assert_eq!(reports[0].remaining, 0);
        }
        other => panic!("{other:?}"),
    }

    // All or nothing: the second check refuses, so the first spends nothing.
    let tokens = rate_check("s:tok", 1000, 100, 1);
    let tight = rate_check("s:tight", 50, 100, 0);
    let v = backend
        .admit(&demand(vec![tokens.clone(), tight], 200, 200, 2))
        .await;
    assert!(matches!(v, Verdict::Denied { index: 1, .. }), "{v:?}");
    // Output is clamped to what the budget pays for: 1000 - 100 base = 900 at most.
    match backend
        .admit(&demand(vec![tokens.clone()], 16, 4000, 3))
        .await
    {
        Verdict::Admitted { out, reports } => {
            assert_eq!(out, 900);
            assert_eq!(reports[0].remaining, 0);
        }
        other => panic!("{other:?}"),
    }
    // A refund of 500 makes room for 500 again.
    backend
        .settle(&Settlement {
            adjustments: vec![Adjustment {
                key: tokens.key.clone(),
                kind: tokens.kind.clone(),
                delta: -500,
            }],
            releases: vec![],
            lease: 3,
        })
        .await;
    match backend
        .admit(&demand(vec![tokens.clone()], 1, 1000, 4))
        .await
    {
        Verdict::Admitted { out, .. } => assert!((399..=400).contains(&out), "{out}"),
        other => panic!("{other:?}"),
    }
    // More than the burst never fits, and says so.
    let v = backend
        .admit(&demand(vec![rate_check("s:huge", 10, 11, 0)], 0, 0, 5))
        .await;
    assert!(
        matches!(
            v,
            Verdict::Denied {
                retry_after_us: None,
                ..
            }
        ),
        "{v:?}"
    );

    // Quotas start unseeded, take the ledger's total, and refuse past their limit.
    let quota = quota_check("s:quota", 1000, 300, 1);
    let v = backend
        .admit(&demand(vec![quota.clone()], 100, 100, 6))
        .await;
    assert_eq!(v, Verdict::Unseeded(vec![0]));
    let CheckKind::Quota { expires_at_us, .. } = quota.kind else {
        unreachable!()
    };
    backend.seed(&quota.key, 400, expires_at_us).await;
    backend.seed(&quota.key, 999_999, expires_at_us).await; // a second seed changes nothing
    let v = backend
        .admit(&demand(vec![quota.clone()], 100, 100, 7))
        .await;
    assert!(matches!(v, Verdict::Admitted { out: 100, .. }), "{v:?}");
    let v = backend
        .admit(&demand(vec![quota.clone()], 100, 100, 8))
        .await;
    match v {
        Verdict::Denied {
            retry_after_us: None,
            reports,
            ..
        } => {
            assert_eq!(reports[0].remaining, 200);
            assert!(reports[0].reset_us > 3_000_000_000);
        }
        other => panic!("{other:?}"),
    }

    // Concurrency: two slots; a release frees one.
    let slots = concurrency_check("s:conc", 2);
    for lease in [10, 11] {
        let v = backend
            .admit(&demand(vec![slots.clone()], 0, 0, lease))
            .await;
        assert!(matches!(v, Verdict::Admitted { .. }), "{v:?}");
    }
    let v = backend.admit(&demand(vec![slots.clone()], 0, 0, 12)).await;
    assert!(matches!(v, Verdict::Denied { .. }), "{v:?}");
    backend
        .settle(&Settlement {
            adjustments: vec![],
            releases: vec![slots.key.clone()],
            lease: 10,
        })
        .await;
    let v = backend.admit(&demand(vec![slots.clone()], 0, 0, 13)).await;
    assert!(matches!(v, Verdict::Admitted { .. }), "{v:?}");
}

#[tokio::test]
async fn memory_backend_scenarios() {
    scenarios(&Tested(&MemoryBackend::new())).await;
}

#[tokio::test]
async fn redis_backend_scenarios_match_memory() {
    let server = RedisServer::start();
    let redis = RedisBackend::new(&server.url(), Duration::from_millis(500)).unwrap();
    assert!(redis.probe().await);
    scenarios(&Tested(redis.as_ref())).await;
}

#[tokio::test]
async fn redis_outage_is_reported_and_recovered() {
    let mut server = RedisServer::start();
    let redis = RedisBackend::new(&server.url(), Duration::from_millis(200)).unwrap();
    assert!(redis.probe().await && redis.is_healthy());
    let d = demand(vec![rate_check("o:req", 100, 1, 0)], 0, 0, 1);
    assert!(redis.admit(&d).await.is_ok());
    server.kill();
    assert!(redis.admit(&d).await.is_err());
    assert!(!redis.is_healthy());
    assert!(redis.failures() >= 1);
    assert!(!redis.probe().await);
    server.restart();
    // The connection manager reconnects; the probe says so and reloads the scripts.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !redis.probe().await {
        assert!(
            std::time::Instant::now() < deadline,
            "redis never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(matches!(
        redis.admit(&d).await,
        Ok(Verdict::Admitted { .. })
    ));
}

#[tokio::test]
async fn batched_settlements_release_each_lease_and_apply_each_adjustment() {
    let server = RedisServer::start();
    let redis = RedisBackend::new(&server.url(), Duration::from_millis(500)).unwrap();
    assert!(redis.probe().await);
    let slots = concurrency_check("b:conc", 2);
    let tokens = rate_check("b:tok", 1000, 400, 0);
    for lease in [1, 2] {
        let v = redis
            .admit(&demand(vec![slots.clone(), tokens.clone()], 0, 0, lease))
            .await
            .unwrap();
        assert!(matches!(v, Verdict::Admitted { .. }), "{v:?}");
    }
    let settlement = |lease| Settlement {
        adjustments: vec![Adjustment {
            key: tokens.key.clone(),
            kind: tokens.kind.clone(),
            delta: -300,
        }],
        releases: vec![slots.key.clone()],
        lease,
    };
    // Queued, as the request path does; the batching task sends them together.
    redis.settle_later(settlement(1));
    redis.settle_later(settlement(2));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let v = redis
            .admit(&demand(vec![slots.clone(), tokens.clone()], 0, 0, 3))
            .await
            .unwrap();
        if let Verdict::Admitted { reports, .. } = &v {
            // Both slots were free again (one now taken by lease 3), and 600 tokens came
            // back: 800 - 600 + 400 used of 1000.
            assert_eq!(reports[0].remaining, 1);
            assert!((399..=400).contains(&reports[1].remaining), "{reports:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never settled: {v:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
