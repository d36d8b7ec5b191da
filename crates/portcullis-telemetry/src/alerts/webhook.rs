//! Alert notifications to webhooks: a JSON body per state change, signed with HMAC-SHA256 so
//! the receiver can tell it came from this gateway, retried with backoff, never waited for.
//!
//! Headers: `x-portcullis-timestamp` (Unix seconds) and `x-portcullis-signature:
//! sha256=<hex>`, the HMAC of `<timestamp>.<body>` under the webhook's secret (a receiver
//! should also refuse timestamps more than a few minutes old, so a captured call cannot be
//! replayed later).

use super::Alert;
use crate::HttpClient;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use prometheus_client::metrics::counter::Counter;
use sha2::Sha256;
use std::time::Duration;
use tokio::sync::mpsc;

/// One webhook.
#[derive(Clone)]
pub struct WebhookTarget {
    pub url: http::Uri,
    /// Signs each call when set.
    pub secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &self.url)
            .field("signed", &self.secret.is_some())
            .finish()
    }
}

/// Tries per notification and target.
const ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const TIMEOUT: Duration = Duration::from_secs(5);

/// The evaluator's end of the notification queue.
#[derive(Clone)]
pub struct Webhooks {
    queue: mpsc::Sender<Alert>,
    dropped: Counter,
}

impl Webhooks {
    pub fn start(
        targets: Vec<WebhookTarget>,
        client: HttpClient,
        delivered: Counter,
        failed: Counter,
        dropped: Counter,
    ) -> Webhooks {
        let (tx, mut rx) = mpsc::channel::<Alert>(1024);
        tokio::spawn(async move {
            while let Some(alert) = rx.recv().await {
                let body = Bytes::from(serde_json::to_vec(&alert).unwrap_or_default());
                for target in &targets {
                    // Each delivery runs on its own: a slow receiver delays nobody else.
                    let (client, target, body) = (client.clone(), target.clone(), body.clone());
                    let (delivered, failed) = (delivered.clone(), failed.clone());
                    tokio::spawn(async move {
                        if deliver(&client, &target, body).await {
                            delivered.inc();
                        } else {
                            failed.inc();
                        }
                    });
                }
            }
        });
        Webhooks { queue: tx, dropped }
    }

    pub fn notify(&self, alert: Alert) {
        if self.queue.try_send(alert).is_err() {
            self.dropped.inc();
        }
    }
}

/// The signature header's value for `body` sent at `timestamp`.
pub fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::from("sha256=");
    for b in digest {
        use std::fmt::Write;
        let _ = write!(out, "{b:02x}");
    }
    out
}

async fn deliver(client: &HttpClient, target: &WebhookTarget, body: Bytes) -> bool {
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let timestamp = jiff::Timestamp::now().as_second().to_string();
        let mut request = http::Request::post(target.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("portcullis/", env!("CARGO_PKG_VERSION")),
            )
            .header("x-portcullis-timestamp", &timestamp);
        if let Some(secret) = &target.secret {
            request = request.header(
                "x-portcullis-signature",
                signature(secret, &timestamp, &body),
            );
        }
        let Ok(request) = request.body(Full::new(body.clone())) else {
            return false;
        };
        let outcome = tokio::time::timeout(TIMEOUT, client.request(request)).await;
        match outcome {
            Ok(Ok(response)) if response.status().is_success() => {
                let _ = response.into_body().collect().await;
                return true;
            }
            Ok(Ok(response)) => {
                tracing::warn!(url = %target.url, status = %response.status(), attempt, "alert webhook refused the notification")
            }
            Ok(Err(e)) => {
                tracing::warn!(url = %target.url, error = %e, attempt, "alert webhook unreachable")
            }
            Err(_) => tracing::warn!(url = %target.url, attempt, "alert webhook timed out"),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signature_covers_timestamp_and_body() {
        let a = super::signature(b"s3cret", "1796403600", b"{\"x\":1}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(a, super::signature(b"s3cret", "1796403601", b"{\"x\":1}"));
        assert_ne!(a, super::signature(b"s3cret", "1796403600", b"{\"x\":2}"));
        assert_ne!(a, super::signature(b"other", "1796403600", b"{\"x\":1}"));
    }
}
