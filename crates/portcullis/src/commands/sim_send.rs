//! `portcullis sim traffic --send URL`: a scenario's traffic sent to a live gateway, as real
//! callers would send it, so an operator sees what the detector and its ladder do
//! (`portcullis threats list`) before trusting them with production traffic.
//!
//! Each simulated tenant and key is created through the admin API (tenants of the
//! `customer` audience; keys that expire in a day); the requests then go out in the
//! scenario's order, as fast as `--concurrency` allows (the simulated clock is not waited
//! for: a week replays in minutes). The labels written name the real key ids.

use super::admin::AdminClient;
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portcullis_hunt::simulate::{self, Scenario};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Arc;

pub struct Send<'a> {
    pub base: &'a str,
    pub max_requests: Option<u64>,
    pub concurrency: usize,
    pub model: &'a str,
    pub embedding_model: &'a str,
}

pub async fn send(
    admin: &AdminClient,
    scenario: &Scenario,
    seed: u64,
    to: Send<'_>,
    labels: &mut dyn Write,
) -> anyhow::Result<()> {
    let (accounts, plan) = simulate::schedule(scenario, seed)?;
    let mut tenants: Vec<&str> = accounts.iter().map(|a| a.tenant.as_str()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    for tenant in tenants {
        let created = admin
            .call(
                "POST",
                "/admin/v1/tenants",
                Some(json!({"name": tenant, "audience": "customer"})),
            )
            .await;
        if let Err(e) = created {
            // A tenant left by an earlier run is reused.
            if !e.to_string().contains("409") {
                return Err(e).with_context(|| format!("cannot create tenant {tenant}"));
            }
        }
    }
    let mut secrets = Vec::with_capacity(accounts.len());
    for a in &accounts {
        let key = admin
            .call(
                "POST",
                "/admin/v1/keys",
                Some(json!({"tenant": a.tenant, "expires_in": "1d",
                            "description": format!("simulated {}", a.key)})),
            )
            .await
            .with_context(|| format!("cannot create a key for {}", a.key))?;
        let secret = key["key"].as_str().unwrap_or_default().to_owned();
        let id = key["id"].as_str().unwrap_or_default().to_owned();
        let mut label = simulate::label(a);
        label.key = id;
        serde_json::to_writer(&mut *labels, &label)?;
        labels.write_all(b"\n")?;
        secrets.push(Arc::new(secret));
    }
    labels.flush()?;

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let base = to.base.trim_end_matches('/').to_owned();
    let limit = to.max_requests.unwrap_or(u64::MAX);
    let gate = Arc::new(tokio::sync::Semaphore::new(to.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let started = std::time::Instant::now();
    for &(_, account, n) in plan.iter().take(limit.min(usize::MAX as u64) as usize) {
        let a = &accounts[account as usize];
        let r = simulate::live_request(a, n, seed);
        let mut body: Value = r.body;
        body["model"] = json!(if r.endpoint == "embeddings" {
            to.embedding_model
        } else {
            to.model
        });
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("{base}/v1/{}", r.endpoint.replace('.', "/")))
            .header(
                "authorization",
                format!("Bearer {}", secrets[account as usize]),
            )
            .header("content-type", "application/json")
            .header("user-agent", r.user_agent)
            .body(Full::new(Bytes::from(body.to_string())))?;
        let permit = gate.clone().acquire_owned().await?;
        let client = client.clone();
        tasks.spawn(async move {
            let status = match client.request(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let _ = response.into_body().collect().await;
                    status
                }
                Err(_) => 0,
            };
            drop(permit);
            status
        });
    }
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        *statuses.entry(done.unwrap_or(0)).or_default() += 1;
    }
    let sent: u64 = statuses.values().sum();
    let summary: HashMap<String, u64> = statuses
        .iter()
        .map(|(s, n)| {
            let name = if *s == 0 {
                "unreachable".to_owned()
            } else {
                s.to_string()
            };
            (name, *n)
        })
        .collect();
    eprintln!(
        "sent {sent} requests from {} accounts in {:.1} s; statuses {}",
        accounts.len(),
        started.elapsed().as_secs_f64(),
        serde_json::to_string(&summary)?
    );
    anyhow::ensure!(
        statuses.get(&0).copied().unwrap_or(0) < sent || sent == 0,
        "the gateway at {base} could not be reached"
    );
    Ok(())
}
