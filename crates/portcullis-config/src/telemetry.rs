//! `[telemetry]`: metrics, the audit trail and what they may carry.

use crate::Duration;
use serde::Deserialize;
use std::path::PathBuf;

/// Metrics on the admin listener's `/metrics`, and the audit trail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// Serve Prometheus metrics on the admin listener's `/metrics`. Default true.
    #[serde(default = "yes")]
    pub metrics: bool,
    /// Label request and token counts with key ids too. Off by default: a deployment with
    /// many keys would make as many series.
    #[serde(default)]
    pub per_key_metrics: bool,
    /// The audit trail of every request and admin action.
    #[serde(default)]
    pub audit: Audit,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            metrics: true,
            per_key_metrics: false,
            audit: Audit::default(),
        }
    }
}

/// JSON-lines files of request records and security events, rotated and pruned.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// Write the trail. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Directory of the files (created mode 0700; files 0600). Default `audit` in the store's
    /// data directory.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// A file is closed and a new one begun at this size. Default 64 MiB.
    #[serde(default = "max_file_bytes")]
    pub max_file_bytes: u64,
    /// ... or at this age. Default 1 day.
    #[serde(default = "max_file_age")]
    pub max_file_age: Duration,
    /// Files last written longer ago than this many days are removed. Default 30.
    #[serde(default = "retention_days")]
    pub retention_days: u32,
    /// Records that may wait for the writer; past this they are dropped and counted
    /// (`portcullis_audit_records_dropped_total`), never waited for. Default 65536.
    #[serde(default = "queue")]
    pub queue: usize,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            enabled: true,
            dir: None,
            max_file_bytes: max_file_bytes(),
            max_file_age: max_file_age(),
            retention_days: retention_days(),
            queue: queue(),
        }
    }
}

fn yes() -> bool {
    true
}

fn max_file_bytes() -> u64 {
    64 * 1024 * 1024
}

fn max_file_age() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn retention_days() -> u32 {
    30
}

fn queue() -> usize {
    65536
}
