//! One client connection: HTTP/1.1 or HTTP/2, bounded in header size and time, closed when
//! idle, drained gracefully on shutdown.
//!
//! Idleness is measured in requests, not bytes: a connection is idle when no request is in
//! flight (a response body still streaming counts as in flight). For HTTP/1, hyper's header
//! read timeout also bounds how long a kept-alive connection may wait for its next request.

use crate::respond::GatewayBody;
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use pin_project_lite::pin_project;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Instant;

/// Per-connection limits, from `[http]`.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub max_header_bytes: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

impl ConnectionLimits {
    pub fn from_config(http: &portcullis_config::HttpLimits) -> Self {
        ConnectionLimits {
            max_connections: http.max_connections,
            max_header_bytes: http.max_header_bytes,
            header_read_timeout: http.header_read_timeout.get(),
            idle_timeout: http.idle_timeout.get(),
        }
    }

    fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .max_buf_size(self.max_header_bytes.max(8192))
            .max_headers(128);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(self.max_header_bytes as u32)
            .max_concurrent_streams(256)
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(Duration::from_secs(10));
        builder
    }
}

/// Requests in flight on one connection and when the last one ended.
struct Activity {
    /// A request has begun on this connection.
    started: AtomicBool,
    in_flight: AtomicUsize,
    origin: Instant,
    last_ended_ms: AtomicU64,
}

impl Activity {
    fn idle_since(&self) -> Option<Instant> {
        (self.in_flight.load(Ordering::Acquire) == 0).then(|| {
            self.origin + Duration::from_millis(self.last_ended_ms.load(Ordering::Relaxed))
        })
    }
}

/// Marks a request in flight for as long as its response body lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.started.store(true, Ordering::Relaxed);
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let elapsed = self.0.origin.elapsed().as_millis() as u64;
        self.0.last_ended_ms.store(elapsed, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project! {
    /// A response body that keeps its request counted as in flight until it ends.
    pub struct Served {
        #[pin]
        body: GatewayBody,
        in_flight: Option<InFlight>,
    }
}

impl Body for Served {
    type Data = Bytes;
    type Error = crate::respond::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let frame = this.body.poll_frame(cx);
        if let Poll::Ready(None) = frame {
            this.in_flight.take();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The client's address, in every request's extensions.
/// The connection's peer, and its TLS hello's fingerprint when TLS ends here.
#[derive(Debug, Clone)]
pub struct PeerAddr(pub std::net::SocketAddr, pub Option<Arc<str>>);

/// Serves `io` until the client closes it, it idles out, or shutdown drains it.
pub(super) async fn serve<IO, H, F>(
    io: IO,
    peer: PeerAddr,
    limits: &ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
    handler: H,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<GatewayBody>> + Send + 'static,
{
    let activity = Arc::new(Activity {
        started: AtomicBool::new(false),
        in_flight: AtomicUsize::new(0),
        origin: Instant::now(),
        last_ended_ms: AtomicU64::new(0),
    });
    let service_activity = activity.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(peer.clone());
        let in_flight = InFlight::start(&service_activity);
        let response = handler(request);
        async move {
            let response = response.await;
            Ok::<_, Infallible>(response.map(|body| Served {
                body,
                in_flight: Some(in_flight),
            }))
        }
    });
    let builder = limits.builder();
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);

    let idle_timeout = limits.idle_timeout;
    let idle_timer = tokio::time::sleep(idle_timeout);
    tokio::pin!(idle_timer);
    // A connection that has not begun a request by the header deadline (it sent nothing, or
    // only an HTTP/2 preface and settings) is closed: idle sockets must not hold the
    // listener's connection slots for a whole idle timeout.
    let first_request = tokio::time::sleep(limits.header_read_timeout);
    tokio::pin!(first_request);
    let mut draining = *shutdown.borrow();
    if draining {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = shutdown.changed(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
            _ = first_request.as_mut(), if !activity.started.load(Ordering::Relaxed) => {
                // The guard was read when this wait began; a request may have begun since.
                if !activity.started.load(Ordering::Relaxed) {
                    tracing::debug!("closing a connection that sent no request in time");
                    return;
                }
            }
            _ = idle_timer.as_mut(), if !draining => {
                match activity.idle_since() {
                    Some(since) if since.elapsed() >= idle_timeout => {
                        tracing::debug!("closing idle connection");
                        draining = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    Some(since) => idle_timer.as_mut().reset(since + idle_timeout),
                    None => idle_timer.as_mut().reset(Instant::now() + idle_timeout),
                }
            }
        }
    }
}
