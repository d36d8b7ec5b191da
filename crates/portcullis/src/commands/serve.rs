//! `portcullis serve`: run until SIGTERM or SIGINT, reload TLS on SIGHUP, then drain.

use portcullis_config::Config;
use portcullis_gateway::Gateway;

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let gateway = Gateway::start(&config).await?;
    wait_for_shutdown(&gateway).await;
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    gateway.shutdown().await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT; reloads TLS on every SIGHUP meanwhile.
async fn wait_for_shutdown(gateway: &portcullis_gateway::RunningGateway) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; TLS reload disabled");
                terminate().await;
                return;
            }
        };
        loop {
            tokio::select! {
                _ = terminate() => return,
                _ = hangup.recv() => match gateway.reload_tls() {
                    Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: TLS reload failed; keeping the current certificate"),
                },
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = gateway;
        terminate().await;
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn terminate() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
