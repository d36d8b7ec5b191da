//! The Portcullis configuration: one TOML file, overridable field by field from the environment,
//! checked completely before anything starts.
//!
//! Every field is declared, typed and documented here; this file is the reference the README
//! copies from. Unknown fields are errors (a typo must not silently leave a safe default in
//! place), and every error names the field it is about: `upstreams[0].connect_timeout: ...`.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod detect;
mod duration;
mod env;
mod guard;
mod limits;
mod model;
pub mod reference;
mod telemetry;
mod validate;

pub use detect::*;
pub use duration::Duration;
pub use guard::*;
pub use limits::*;
pub use model::*;
pub use telemetry::*;
pub use validate::PERMISSIONS;

use std::path::Path;

/// Why a configuration was refused. `field` is the dotted path of the offending field, or
/// empty when the file as a whole is unreadable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{problem}", if field.is_empty() { String::new() } else { format!("`{field}`: ") })]
pub struct ConfigError {
    pub field: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// The prefix of environment variables that override configuration fields.
pub const ENV_PREFIX: &str = "PORTCULLIS_";

impl Config {
    /// Reads a file (or the embedded defaults when `path` is `None`), applies the process
    /// environment's overrides and validates the result.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new("", format!("cannot read {}: {e}", path.display()))
            })?,
            None => String::new(),
        };
        Config::parse(&text, std::env::vars())
    }

    /// Parses TOML text, applies the given `PORTCULLIS_...` overrides and validates.
    pub fn parse(
        text: &str,
        environment: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::new("", format!("invalid TOML: {e}")))?;
        env::apply_overrides(&mut table, environment)?;
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| ConfigError::new(e.path().to_string(), e.inner().message().to_string()))?;
        validate::validate(&config)?;
        Ok(config)
    }
}
