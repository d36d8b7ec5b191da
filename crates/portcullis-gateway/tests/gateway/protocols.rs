//! HTTP/2 and TLS on the same listeners, and certificate reload without a restart.

use crate::common;

use bytes::Bytes;
use common::Harness;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis_sim::SimOptions;
use rustls_pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use tokio::net::TcpStream;

#[tokio::test]
async fn http2_with_prior_knowledge_is_served() {
    let h = Harness::default().await;
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    for body in [
        r#"{"model":"chat","messages":[{"role":"user","content":"hi"}]}"#.to_owned(),
        common::stream_body("chat"),
    ] {
        let request =
            http::Request::post(format!("http://{}/v1/chat/completions", h.gateway.public))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.version(), http::Version::HTTP_2);
        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key("x-request-id"));
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert!(!bytes.is_empty());
    }
}

struct Pair {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

fn self_signed() -> Pair {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    Pair {
        cert_pem: generated.cert.pem(),
        key_pem: generated.signing_key.serialize_pem(),
        der: generated.cert.der().clone(),
    }
}

/// Connects with TLS offering `alpn`; returns the stream, the certificate the server showed
/// and the protocol it chose.
async fn connect(
    addr: std::net::SocketAddr,
    trusted: &[&Pair],
    alpn: &[&[u8]],
) -> (
    tokio_rustls::client::TlsStream<TcpStream>,
    CertificateDer<'static>,
    Option<Vec<u8>>,
) {
    let mut roots = rustls::RootCertStore::empty();
    for pair in trusted {
        roots.add(pair.der.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (_, session) = tls.get_ref();
    let shown = session.peer_certificates().unwrap()[0].clone().into_owned();
    let protocol = session.alpn_protocol().map(|p| p.to_vec());
    (tls, shown, protocol)
}

#[tokio::test]
async fn tls_serves_both_protocols_and_reloads_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let first = self_signed();
    std::fs::write(&cert, &first.cert_pem).unwrap();
    std::fs::write(&key, &first.key_pem).unwrap();
    let tls = format!(
        "[listeners.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    );
    // The [listeners.tls] table must follow [listeners]; the harness puts extras first, so
    // append it to the listeners section instead.
    let h = {
        let sim = portcullis_sim::Simulator::new(SimOptions::default());
        let sim_addr = sim.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let text = common::config_text(sim_addr, dir.path(), "")
            .replace("[store]", &format!("{tls}\n[store]"));
        let gateway = common::start_gateway(&text).await;
        (sim, gateway)
    };
    let addr = h.1.public;

    // HTTP/2 negotiated by ALPN.
    let (_, shown, protocol) = connect(addr, &[&first], &[b"h2", b"http/1.1"]).await;
    assert_eq!(shown, first.der);
    assert_eq!(protocol.as_deref(), Some(&b"h2"[..]));

    // HTTP/1.1 over TLS, with a real request.
    let (stream, _, protocol) = connect(addr, &[&first], &[b"http/1.1"]).await;
    assert_eq!(protocol.as_deref(), Some(&b"http/1.1"[..]));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = sender
        .send_request(
            http::Request::get("/v1/models")
                .header("host", "localhost")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The record of a request over TLS carries the client's hello, for the threat detector's
    // client fingerprint: the suites, schemes and groups rustls offered, and the ALPN list.
    let mut seen = None;
    for _ in 0..100 {
        // The admin listener speaks TLS too.
        let (stream, _, _) = connect(h.1.admin, &[&first], &[b"http/1.1"]).await;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let request = http::Request::get("/admin/v1/requests?limit=10")
            .header("host", "localhost")
            .header("authorization", format!("Bearer {}", h.1.state.admin_token))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let reply = sender.send_request(request).await.unwrap();
        let body = reply.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        seen = v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|r| r["client"]["tls"].as_str().map(str::to_owned));
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let hello = seen.expect("no record carried the TLS hello");
    assert!(
        hello.starts_with("c=1302.1301") || hello.starts_with("c=13"),
        "{hello}"
    );
    assert!(
        hello.contains(";s=") && hello.contains(";g=") && hello.ends_with(";a=http/1.1"),
        "{hello}"
    );

    // A new certificate on disk is picked up on reload (SIGHUP in the binary).
    let second = self_signed();
    std::fs::write(&cert, &second.cert_pem).unwrap();
    std::fs::write(&key, &second.key_pem).unwrap();
    h.1.reload_tls().unwrap();
    let (_, shown, _) = connect(addr, &[&first, &second], &[b"http/1.1"]).await;
    assert_eq!(shown, second.der);

    // A broken file is refused and the current certificate stays in service.
    std::fs::write(&key, "not a key").unwrap();
    assert!(h.1.reload_tls().is_err());
    let (_, shown, _) = connect(addr, &[&first, &second], &[b"http/1.1"]).await;
    assert_eq!(shown, second.der);
}
