//! Limits on the wire, exercised with raw sockets the way a hostile client would.

use crate::common;

use common::Harness;
use portcullis_sim::SimOptions;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMITS: &str = r#"
[http]
max_body_bytes = 1024
max_header_bytes = 8192
header_read_timeout = "400ms"
body_read_timeout = "400ms"
idle_timeout = "400ms"
max_connections = 3
"#;

async fn harness() -> Harness {
    Harness::start(SimOptions::default(), "", LIMITS).await
}

/// Reads until the server closes the connection (or `limit` passes); returns what arrived and
/// whether the server closed it.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&received).into(), true),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&received).into(), false),
        }
    }
}

fn head(addr: SocketAddr, extra: &str) -> String {
    format!("POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{extra}")
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_whether_declared_or_streamed() {
    let h = harness().await;
    let big = format!(r#"{{"model":"chat","pad":"{}"}}"#, "x".repeat(2000));
    let reply = h.post("/v1/chat/completions", &big).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.error_code(), "request_too_large");

    // Chunked, no length declared: cut off once the limit is crossed.
    let mut s = TcpStream::connect(h.gateway.public).await.unwrap();
    let mut request = head(h.gateway.public, "transfer-encoding: chunked\r\n\r\n");
    for _ in 0..4 {
        request.push_str(&format!("{:x}\r\n{}\r\n", 600, "y".repeat(600)));
    }
    request.push_str("0\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let (reply, _) = read_until_closed(&mut s, Duration::from_secs(2)).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert_eq!(h.sim.stats().requests, 0);
}

#[tokio::test]
async fn a_body_that_trickles_in_times_out_with_408() {
    let h = harness().await;
    let mut s = TcpStream::connect(h.gateway.public).await.unwrap();
    s.write_all(head(h.gateway.public, "content-length: 100\r\n\r\n{\"model\"").as_bytes())
        .await
        .unwrap();
    let started = Instant::now();
    let (reply, _) = read_until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("request_timeout"));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn slowloris_headers_are_cut_off() {
    let h = harness().await;
    let mut s = TcpStream::connect(h.gateway.public).await.unwrap();
    s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // One header byte every 100 ms: the head never completes.
    let mut closed = false;
    for _ in 0..40 {
        if s.write_all(b"x").await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    assert!(closed, "slow header connection was never closed");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let h = harness().await;
    let mut s = TcpStream::connect(h.gateway.public).await.unwrap();
    let huge = format!("x-big: {}\r\n", "a".repeat(20_000));
    s.write_all(
        head(
            h.gateway.public,
            &format!("{huge}content-length: 2\r\n\r\n{{}}"),
        )
        .as_bytes(),
    )
    .await
    .ok();
    let (reply, closed) = read_until_closed(&mut s, Duration::from_secs(2)).await;
    assert!(closed);
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 431"),
        "{reply}"
    );
    assert_eq!(h.sim.stats().requests, 0);
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    // A long header timeout, so only the idle timeout can close the connection.
    let limits = LIMITS.replace(
        "header_read_timeout = \"400ms\"",
        "header_read_timeout = \"30s\"",
    );
    let h = Harness::start(SimOptions::default(), "", &limits).await;
    let mut s = TcpStream::connect(h.gateway.public).await.unwrap();
    let request = format!(
        "GET /v1/models HTTP/1.1\r\nhost: {}\r\n\r\n",
        h.gateway.public
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (reply, closed) = read_until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(closed, "idle connection stayed open");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_on_accept() {
    let h = harness().await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let s = TcpStream::connect(h.gateway.public).await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut extra = TcpStream::connect(h.gateway.public).await.unwrap();
    let request = format!(
        "GET /v1/models HTTP/1.1\r\nhost: {}\r\n\r\n",
        h.gateway.public
    );
    let _ = extra.write_all(request.as_bytes()).await;
    let (reply, closed) = read_until_closed(&mut extra, Duration::from_secs(1)).await;
    assert!(
        closed && reply.is_empty(),
        "over-cap connection was served: {reply}"
    );
    // Freed slots are reused.
    held.clear();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        h.request(h.gateway.public, http::Method::GET, "/v1/models", &[], "")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn sockets_that_send_no_request_lose_their_slot_by_the_header_deadline() {
    // F10: 60 silent sockets locked every client out of a 50-connection listener until the
    // idle timeout. Here the cap is 3 and the header deadline 400 ms.
    let h = harness().await;
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(TcpStream::connect(h.gateway.public).await.unwrap());
    }
    // An HTTP/2 client that sends only its preface and an empty SETTINGS frame.
    let mut preface_only = TcpStream::connect(h.gateway.public).await.unwrap();
    preface_only
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let started = Instant::now();
    for s in silent.iter_mut() {
        let (_, closed) = read_until_closed(s, Duration::from_secs(3)).await;
        assert!(closed, "a silent socket was kept");
    }
    let (_, closed) = read_until_closed(&mut preface_only, Duration::from_secs(3)).await;
    assert!(closed, "a preface-only HTTP/2 connection was kept");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The slots are free again for callers who do send requests.
    assert_eq!(
        h.request(h.gateway.public, http::Method::GET, "/v1/models", &[], "")
            .await
            .status,
        200
    );
}
