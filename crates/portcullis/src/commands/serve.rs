//! `portcullis serve`: run until SIGTERM or SIGINT, reload the configuration file and the TLS
//! certificate on SIGHUP, then drain.

use portcullis_config::Config;
use portcullis_gateway::Gateway;

pub async fn serve(config: Config, file: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let gateway = Gateway::start(&config).await?;
    if let Some(file) = file {
        gateway
            .state
            .set_config_file(std::path::absolute(&file).unwrap_or(file))
            .await;
    }
    let data_dir = gateway.state.store.data_dir();
    let shown = std::path::absolute(&data_dir).unwrap_or(data_dir);
    tracing::info!(
        admin_token = %shown.join("admin-token").display(),
        key_pepper = %shown.join("key-pepper").display(),
        "the admin token and key pepper are kept here unless given by PORTCULLIS_ADMIN_TOKEN and PORTCULLIS_KEY_PEPPER (readable by this user only)"
    );
    if config.upstreams.is_empty() || config.models.is_empty() {
        tracing::warn!(
            "no upstream or model is configured: every inference request will be answered \
             404 model_not_found. Give a configuration file with [[upstreams]] and [[models]] \
             (`portcullis serve --config FILE`), or try `portcullis demo`"
        );
    }
    wait_for_shutdown(&gateway).await;
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    gateway.shutdown().await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT; reloads the configuration and TLS on every SIGHUP
/// meanwhile (each keeps what is in force when its reload fails, and logs why).
async fn wait_for_shutdown(gateway: &portcullis_gateway::RunningGateway) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with POST /admin/v1/config/reload");
                terminate().await;
                return;
            }
        };
        loop {
            tokio::select! {
                _ = terminate() => return,
                _ = hangup.recv() => {
                    // A reload logs its own success or refusal.
                    if let Err(portcullis_gateway::reload::ReloadError::NoFile) =
                        gateway.state.reload_config().await
                    {
                        tracing::info!("SIGHUP: no configuration file to reload (started on the embedded defaults)");
                    }
                    match gateway.reload_tls() {
                        Ok(true) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                        Ok(false) => {}
                        Err(e) => tracing::error!(error = %e, "SIGHUP: TLS reload failed; keeping the current certificate"),
                    }
                }
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
