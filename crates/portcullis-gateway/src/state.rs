//! What every request handler shares: built once at start-up, read-only afterwards.

use crate::catalog::Catalog;
use crate::upstream::Upstream;
use portcullis_config::{Config, HttpLimits};
use portcullis_identity::Store;
use std::collections::HashMap;
use std::sync::Arc;

pub struct GatewayState {
    pub catalog: Catalog,
    pub upstreams: Vec<Arc<Upstream>>,
    /// Bulkhead size per upstream, same order as `upstreams`.
    pub upstream_capacity: Vec<usize>,
    pub http: HttpLimits,
    pub allow_anonymous: bool,
    pub store: Store,
}

impl GatewayState {
    /// `api_keys` resolves an upstream's `api_key_env` to its value.
    pub fn new(
        config: &Config,
        store: Store,
        api_keys: impl Fn(&str) -> Option<String>,
    ) -> Result<GatewayState, portcullis_config::ConfigError> {
        let mut upstreams = Vec::new();
        let mut index = HashMap::new();
        for (i, u) in config.upstreams.iter().enumerate() {
            let key = match &u.api_key_env {
                Some(var) => Some(api_keys(var).ok_or_else(|| {
                    portcullis_config::ConfigError::new(
                        format!("upstreams[{i}].api_key_env"),
                        format!("the environment variable {var} is not set"),
                    )
                })?),
                None => None,
            };
            let upstream = Upstream::new(u, key).map_err(|problem| {
                portcullis_config::ConfigError::new(format!("upstreams[{i}]"), problem)
            })?;
            index.insert(u.name.clone(), i);
            upstreams.push(Arc::new(upstream));
        }
        Ok(GatewayState {
            catalog: Catalog::new(config, &index),
            upstream_capacity: config.upstreams.iter().map(|u| u.max_concurrency).collect(),
            upstreams,
            http: config.http.clone(),
            allow_anonymous: config.dev.allow_anonymous,
            store,
        })
    }
}
