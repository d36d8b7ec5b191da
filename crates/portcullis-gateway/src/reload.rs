//! Configuration reload without a restart: `SIGHUP` or `POST /admin/v1/config/reload`
//! re-reads the configuration file, validates it whole, and puts its models, upstreams,
//! plans, roles, guard settings and alert rules in force at once for the requests that arrive
//! next. Requests in flight finish under the version they started with (they hold it).
//!
//! A file that does not load, or whose upstreams cannot be built, changes nothing: the error
//! is returned and logged, and the configuration in force stays. Sections that are bound at
//! start (listeners, store, identity, limit backend, telemetry sinks, logging, `http`, `dev`)
//! are compared and reported as needing a restart rather than half-applied.

use crate::state::{GatewayState, Settings};
use portcullis_config::{Config, ConfigError};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

/// Resolves an upstream's `api_key_env` (the process environment, or a test's stand-in).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The configuration in force, and where a reload reads the next one.
pub struct ActiveConfig {
    config: Config,
    /// The file the configuration came from; `None` when it came from the embedded defaults
    /// or from code (then there is nothing to re-read).
    file: Option<PathBuf>,
    env: EnvLookup,
}

impl ActiveConfig {
    pub fn new(config: Config, env: EnvLookup) -> ActiveConfig {
        ActiveConfig {
            config,
            file: None,
            env,
        }
    }
}

/// What a reload did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Reloaded {
    /// The settings version now in force (1 at start, one more per reload).
    pub version: u64,
    /// Sections that changed and are in force now.
    pub applied: Vec<&'static str>,
    /// Sections that changed but are bound at start: in force after a restart only.
    pub restart_needed: Vec<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the configuration came from the embedded defaults, not a file: there is nothing to reload (start with `serve --config FILE`)")]
    NoFile,
    #[error("{0}")]
    Invalid(#[from] ConfigError),
}

impl GatewayState {
    /// Remembers the file the configuration came from, so reloads re-read it.
    pub async fn set_config_file(&self, file: PathBuf) {
        self.active_config.lock().await.file = Some(file);
    }

    /// The file reloads read, when there is one.
    pub async fn config_file(&self) -> Option<PathBuf> {
        self.active_config.lock().await.file.clone()
    }

    /// Re-reads the configuration file and applies it (see the module documentation).
    pub async fn reload_config(&self) -> Result<Reloaded, ReloadError> {
        let mut active = self.active_config.lock().await;
        let file = active.file.clone().ok_or(ReloadError::NoFile)?;
        let loaded = tokio::task::spawn_blocking(move || Config::load(Some(&file)))
            .await
            .map_err(|_| ConfigError::new("", "the configuration could not be read"))?;
        let outcome = match loaded {
            Ok(config) => self.apply_config(&mut active, config),
            Err(e) => Err(e),
        };
        match &outcome {
            Ok(done) => tracing::info!(
                version = done.version,
                applied = ?done.applied,
                restart_needed = ?done.restart_needed,
                "configuration reloaded"
            ),
            Err(e) => tracing::error!(
                error = %e,
                "configuration reload refused; the configuration in force is kept"
            ),
        }
        Ok(outcome?)
    }

    /// Builds everything `config` needs first, and only then swaps it in: a failure changes
    /// nothing.
    fn apply_config(
        &self,
        active: &mut ActiveConfig,
        config: Config,
    ) -> Result<Reloaded, ConfigError> {
        let current = self.settings();
        let env = active.env.clone();
        let next = Settings::build(&config, current.version + 1, Some(&current), |var| env(var))?;
        let rules = crate::server::alert_rules(&config.telemetry);
        let (applied, restart_needed) = differences(&active.config, &config);
        // New upstreams get their probes; those no longer used end theirs when the last
        // request holding them finishes (the probes hold them weakly).
        let fresh: Vec<_> = next
            .upstreams
            .iter()
            .filter(|u| !current.upstreams.iter().any(|c| Arc::ptr_eq(c, u)))
            .cloned()
            .collect();
        crate::upstream::spawn_probes(&fresh, self.stopping.clone());
        for encoding in next.catalog.encodings() {
            tokio::task::spawn_blocking(move || encoding.warm_up());
        }
        let version = next.version;
        self.telemetry.replace_alert_rules(rules);
        if let Some(threats) = &self.threats {
            threats.reconfigure(&config.detect);
        }
        self.replace_settings(next);
        active.config = config;
        Ok(Reloaded {
            version,
            applied,
            restart_needed,
        })
    }
}

/// The sections that differ between `old` and `new`: those a reload applies, and those that
/// need a restart.
fn differences(old: &Config, new: &Config) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut applied = Vec::new();
    let mut restart = Vec::new();
    let mut check = |name: &'static str, changed: bool, reloadable: bool| {
        if changed {
            if reloadable {
                applied.push(name);
            } else {
                restart.push(name);
            }
        }
    };
    check("upstreams", old.upstreams != new.upstreams, true);
    check("models", old.models != new.models, true);
    check("plans", old.plans != new.plans, true);
    check(
        "tenant_limits",
        old.tenant_limits != new.tenant_limits,
        true,
    );
    check("key_limits", old.key_limits != new.key_limits, true);
    check("roles", old.roles != new.roles, true);
    check("guard", old.guard != new.guard, true);
    check("tenant_guard", old.tenant_guard != new.tenant_guard, true);
    check(
        "telemetry.alerts",
        old.telemetry.alerts != new.telemetry.alerts,
        true,
    );
    let telemetry_rest = |t: &portcullis_config::Telemetry| {
        let mut t = t.clone();
        t.alerts.clear();
        t
    };
    check(
        "telemetry",
        telemetry_rest(&old.telemetry) != telemetry_rest(&new.telemetry),
        false,
    );
    // The ladder and allow-list reload; turning the detector on or off, its queue and its
    // memory need a restart.
    let detect_fixed = |d: &portcullis_config::Detect| (d.enabled, d.queue, d.max_keys);
    check(
        "detect.ladder",
        old.detect.ladder != new.detect.ladder
            || old.detect.allow != new.detect.allow
            || old.detect.act_on_internal != new.detect.act_on_internal,
        true,
    );
    check(
        "detect",
        detect_fixed(&old.detect) != detect_fixed(&new.detect),
        false,
    );
    check("listeners", old.listeners != new.listeners, false);
    check("http", old.http != new.http, false);
    check("store", old.store != new.store, false);
    check("identity", old.identity != new.identity, false);
    check("limits", old.limits != new.limits, false);
    check("dev", old.dev != new.dev, false);
    check("log", old.log != new.log, false);
    (applied, restart)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_sorted_into_applied_and_needing_a_restart() {
        let old = Config::parse("", Vec::new()).unwrap();
        let new = Config::parse(
            "[listeners]\npublic = \"127.0.0.1:9999\"\n\
             [guard]\ninjection = \"flag\"\n\
             [plans.gold.key]\nrequests_per_minute = 5\n",
            Vec::new(),
        )
        .unwrap();
        let (applied, restart) = differences(&old, &new);
        assert_eq!(applied, vec!["plans", "guard"]);
        assert_eq!(restart, vec!["listeners"]);
        assert_eq!(differences(&new, &new), (Vec::new(), Vec::new()));
    }
}
