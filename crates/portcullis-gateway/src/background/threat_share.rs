//! The detector's observations shared across replicas through Redis (`[detect] backend`).
//!
//! Each replica computes the features of its own requests (the costly part) once, folds them
//! into its detector, and appends them to one Redis stream; each also reads the stream and
//! folds in the other replicas' features. So every replica's detector sees all of the
//! traffic: a key whose requests are spread over replicas is one account, and a campaign
//! over many keys and replicas is one campaign. Only features travel (hashes, counts,
//! flags: never a prompt). A rung of the ladder acts once across replicas: the first replica
//! to reach it claims it in Redis (`SET NX`, for the rung's hold); the others record that it
//! was taken. When Redis is unreachable each replica goes on with what it sees itself, and
//! acts without claiming (a duplicate action is better than a missed one).

use portcullis_hunt::Observation;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::Duration;

const STREAM: &str = "portcullis:detect:observations";
const CLAIMS: &str = "portcullis:detect:rung";
/// Entries kept in the stream (approximately): minutes of traffic at high volume, far more
/// than a replica falls behind between two reads.
const MAX_LEN: usize = 200_000;
/// Most entries read per drain.
const READ_COUNT: usize = 20_000;

/// One request's features, as they travel between replicas.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Observed {
    pub tenant: String,
    pub key: String,
    pub plan: String,
    /// The tenant's audience is internal (observed, acted on only with `act_on_internal`).
    pub internal: bool,
    pub obs: Observation,
}

pub struct Share {
    connection: ConnectionManager,
    /// This process's name in the stream, so it skips what it published itself.
    replica: String,
    /// The id of the last entry read.
    last_id: Mutex<String>,
}

impl Share {
    /// Prepares the connection without waiting for it (the gateway starts while Redis is
    /// down). Reading starts at the present: history before this process is not replayed.
    pub fn new(url: &str) -> Result<Share, String> {
        let client = redis::Client::open(url).map_err(|e| format!("invalid redis_url: {e}"))?;
        let timeout = Duration::from_millis(500);
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("cannot prepare the redis connection: {e}"))?;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Ok(Share {
            connection,
            replica: portcullis_identity::keys::random_base62(16),
            last_id: Mutex::new(format!("{now_ms}-0")),
        })
    }

    /// Appends this replica's observations (one pipelined round trip).
    pub async fn publish(&self, items: &[Observed]) {
        if items.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for item in items {
            let Ok(json) = serde_json::to_string(item) else {
                continue;
            };
            pipe.cmd("XADD")
                .arg(STREAM)
                .arg("MAXLEN")
                .arg("~")
                .arg(MAX_LEN)
                .arg("*")
                .arg("r")
                .arg(&self.replica)
                .arg("o")
                .arg(json)
                .ignore();
        }
        let mut c = self.connection.clone();
        if let Err(e) = pipe.query_async::<()>(&mut c).await {
            tracing::warn!(error = %e, "cannot share detector observations");
        }
    }

    /// The other replicas' observations since the last read.
    pub async fn read_others(&self) -> Vec<Observed> {
        let from = self
            .last_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut c = self.connection.clone();
        let reply: redis::RedisResult<redis::streams::StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("STREAMS")
            .arg(STREAM)
            .arg(&from)
            .query_async(&mut c)
            .await;
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read shared detector observations");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        let mut last = from;
        for key in reply.keys {
            for entry in key.ids {
                last = entry.id.clone();
                let from_self = entry.get::<String>("r").as_deref() == Some(&self.replica);
                if from_self {
                    continue;
                }
                match entry
                    .get::<String>("o")
                    .and_then(|o| serde_json::from_str::<Observed>(&o).ok())
                {
                    Some(o) => out.push(o),
                    None => tracing::warn!(id = %entry.id, "unreadable shared observation skipped"),
                }
            }
        }
        *self.last_id.lock().unwrap_or_else(|p| p.into_inner()) = last;
        out
    }

    /// Claims rung `rung` (1-based) of `key` for `hold`: true if this replica is the one to
    /// act (or Redis cannot say).
    pub async fn claim(&self, key: &str, rung: usize, hold: Duration) -> bool {
        let mut c = self.connection.clone();
        let claimed: redis::RedisResult<Option<String>> = redis::cmd("SET")
            .arg(format!("{CLAIMS}:{key}:{rung}"))
            .arg(&self.replica)
            .arg("NX")
            .arg("PX")
            .arg(hold.as_millis().max(1) as u64)
            .query_async(&mut c)
            .await;
        match claimed {
            Ok(reply) => reply.is_some(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim a ladder rung; acting without a claim");
                true
            }
        }
    }

    /// Releases every rung claim of `key` (an operator cleared it: its ladder starts again).
    pub async fn release(&self, key: &str, rungs: usize) {
        let names: Vec<String> = (1..=rungs).map(|i| format!("{CLAIMS}:{key}:{i}")).collect();
        if names.is_empty() {
            return;
        }
        let mut c = self.connection.clone();
        if let Err(e) = redis::cmd("DEL").arg(names).query_async::<()>(&mut c).await {
            tracing::warn!(error = %e, "cannot release ladder claims");
        }
    }
}
