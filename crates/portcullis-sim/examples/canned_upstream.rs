//! An upstream for the load benchmark that is never the bottleneck: one canned chat
//! completion (or one canned stream) per request, bytes prepared once, no JSON parsed.
//!
//! The simulator is a faithful OpenAI server with faults and recording, and that fidelity costs
//! more per request than nginx does, so with it upstream a benchmark measures the simulator.
//! This one reads the request, looks for `"stream":true` in its body and writes fixed bytes:
//! a few microseconds of work, far below any proxy in front of it.
//!
//!   cargo run --release -p portcullis-sim --example canned_upstream -- 127.0.0.1:9000

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use tokio::net::TcpListener;

const COMPLETION: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1764900000,"model":"sim-chat","choices":[{"index":0,"message":{"role":"assistant","content":"A gateway keeps keys, limits and guards in one place in front of every model."},"finish_reason":"stop"}],"usage":{"prompt_tokens":58,"completion_tokens":16,"total_tokens":74}}"#;

const STREAM: &str = concat!(
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1764900000,\"model\":\"sim-chat\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"A gateway keeps keys, \"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1764900000,\"model\":\"sim-chat\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"limits and guards in one place.\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1764900000,\"model\":\"sim-chat\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1764900000,\"model\":\"sim-chat\",\"choices\":[],\"usage\":{\"prompt_tokens\":58,\"completion_tokens\":12,\"total_tokens\":70}}\n\n",
    "data: [DONE]\n\n",
);

const MODELS: &str = r#"{"object":"list","data":[{"id":"sim-chat","object":"model","created":1764900000,"owned_by":"bench"}]}"#;

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let is_models = request.uri().path().ends_with("/models");
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let (bytes, content_type) = if is_models {
        (MODELS, "application/json")
    } else if wants_stream(&body) {
        (STREAM, "text/event-stream")
    } else {
        (COMPLETION, "application/json")
    };
    let mut response = Response::new(Full::new(Bytes::from_static(bytes.as_bytes())));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

/// `"stream":true` anywhere in the body, with or without a space after the colon.
fn wants_stream(body: &[u8]) -> bool {
    body.windows(8).enumerate().any(|(at, window)| {
        window == b"\"stream\"" && {
            let rest = &body[at + 8..];
            let rest = rest
                .iter()
                .skip_while(|b| b.is_ascii_whitespace() || **b == b':')
                .copied();
            rest.take(4).eq(b"true".iter().copied())
        }
    })
}

fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".into());
    // One thread: the benchmark pins this process to a core it shares with the load generator.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&listen).await?;
        eprintln!("canned upstream on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper::service::service_fn(answer))
                    .await;
            });
        }
    })
}
