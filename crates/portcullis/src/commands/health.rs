//! `portcullis health`: GET a health URL and exit 0 on 200, for container health checks (the
//! image has no shell and no curl).

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

pub async fn check(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("invalid --url {url}"))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = tokio::time::timeout(timeout, client.get(uri))
        .await
        .with_context(|| format!("{url} did not answer within {timeout:?}"))?
        .with_context(|| format!("cannot reach {url}"))?;
    if response.status() != http::StatusCode::OK {
        bail!("{url} answered {}", response.status());
    }
    println!("ok: {url}");
    Ok(())
}
