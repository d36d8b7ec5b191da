//! Listeners: accepting connections and holding them to the wire limits.
//!
//! Each listener caps its open connections (more are closed on accept, before any read, so a
//! flood cannot exhaust memory), sets TCP_NODELAY (without it, small responses on reused
//! connections wait for delayed ACKs: tens of milliseconds per request), optionally terminates
//! TLS within the header timeout, and serves HTTP/1.1 and HTTP/2 on the same port.

mod connection;
pub mod tls;

pub use connection::{ConnectionLimits, PeerAddr, Served};

use crate::respond::GatewayBody;
use http::{Request, Response};
use hyper::body::Incoming;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

/// Everything an accept loop needs besides the socket.
pub struct AcceptContext<H> {
    pub name: &'static str,
    pub limits: Arc<ConnectionLimits>,
    pub tls: Option<Arc<tls::ReloadableTls>>,
    pub shutdown: watch::Receiver<bool>,
    /// Each connection task holds a clone; shutdown waits until all are dropped.
    pub drain: mpsc::Sender<()>,
    pub handler: H,
}

impl AcceptContext<()> {
    /// The same context serving with `handler`.
    pub fn with_handler<H>(self, handler: H) -> AcceptContext<H> {
        AcceptContext {
            name: self.name,
            limits: self.limits,
            tls: self.tls,
            shutdown: self.shutdown,
            drain: self.drain,
            handler,
        }
    }
}

/// Accepts until shutdown, serving each connection with `handler`.
pub async fn accept_loop<H, F>(listener: TcpListener, mut ctx: AcceptContext<H>)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<GatewayBody>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(ctx.limits.max_connections));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = ctx.shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Usually EMFILE: back off briefly instead of spinning.
                tracing::warn!(listener = ctx.name, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(listener = ctx.name, %peer, "connection cap reached; closing new connection");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let limits = ctx.limits.clone();
        let tls = ctx.tls.clone();
        let shutdown = ctx.shutdown.clone();
        let drain = ctx.drain.clone();
        let handler = ctx.handler.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _drain = drain;
            match tls {
                None => {
                    let peer = PeerAddr(peer, None);
                    connection::serve(stream, peer, &limits, shutdown, handler).await
                }
                Some(tls) => {
                    let handshake = tls.accept(stream);
                    match tokio::time::timeout(limits.header_read_timeout, handshake).await {
                        Ok(Ok((stream, hello))) => {
                            let peer = PeerAddr(peer, Some(Arc::from(hello)));
                            connection::serve(stream, peer, &limits, shutdown, handler).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}
