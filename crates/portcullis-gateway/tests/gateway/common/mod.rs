//! Shared harness for the gateway's black-box tests: a real simulator and a real gateway on
//! free loopback ports, and a plain HTTP client talking to them over sockets.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use portcullis_config::Config;
use portcullis_gateway::{Gateway, RunningGateway};
use portcullis_sim::{SimOptions, Simulator};
pub use portcullis_testkit::PgDatabase;
use serde_json::Value;
use std::net::SocketAddr;

pub struct Harness {
    pub sim: Simulator,
    pub sim_addr: SocketAddr,
    pub gateway: RunningGateway,
    pub client: Client<HttpConnector, Full<Bytes>>,
    /// The configuration the gateway was started with (empty for wrapped gateways).
    pub config: String,
    _data: tempfile::TempDir,
    _database: Option<PgDatabase>,
}

/// With `PORTCULLIS_TEST_STORE=postgres` (and `PORTCULLIS_TEST_POSTGRES_URL`), every harness
/// gets a fresh PostgreSQL database instead of a SQLite file, so the same black-box suite
/// runs on both backends (scripts/test.sh runs it both ways).
async fn harness_database() -> Option<PgDatabase> {
    if std::env::var("PORTCULLIS_TEST_STORE").ok().as_deref() != Some("postgres") {
        return None;
    }
    let server = PgDatabase::server_url()
        .expect("PORTCULLIS_TEST_STORE=postgres needs PORTCULLIS_TEST_POSTGRES_URL");
    Some(PgDatabase::create_in(&server).await)
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

/// Config with one simulator upstream and the usual models; `extra` is appended verbatim.
pub fn config_text(sim_addr: SocketAddr, data_dir: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
[listeners]
public = "127.0.0.1:0"
admin = "127.0.0.1:0"
internal = "127.0.0.1:0"

[store]
url = "sqlite://{data}/portcullis.db"

[dev]
allow_anonymous = true

[[upstreams]]
name = "sim"
base_url = "http://{sim_addr}/v1"
api_key_env = "SIM_KEY"
{extra}

[[models]]
name = "chat"
upstream = "sim"
upstream_model = "sim-chat-large"

[[models]]
name = "embed"
upstream = "sim"

[[models]]
name = "secret-model"
upstream = "sim"
visibility = "internal"
"#,
        data = data_dir.display(),
        // Probes off unless asked for: they would show up in the simulator's records.
        extra = if extra.contains("health_check_interval") {
            extra.to_owned()
        } else {
            format!("health_check_interval = \"0s\"\n{extra}")
        }
    )
}

impl Harness {
    /// A simulator and a gateway in front of it. `upstream_extra` goes into the upstream's
    /// table (e.g. timeouts); `top_extra` is prepended to the file (e.g. an `[http]` section).
    pub async fn start(options: SimOptions, upstream_extra: &str, top_extra: &str) -> Harness {
        Harness::start_clocked(
            options,
            upstream_extra,
            top_extra,
            portcullis_core::clock::system(),
        )
        .await
    }

    /// As [`Harness::start`], with key and token expiry decided by `clock`.
    pub async fn start_clocked(
        options: SimOptions,
        upstream_extra: &str,
        top_extra: &str,
        clock: portcullis_core::SharedClock,
    ) -> Harness {
        let sim = Simulator::new(options);
        let sim_addr = sim.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let data = tempfile::tempdir().unwrap();
        let mut text = format!(
            "{top_extra}\n{}",
            config_text(sim_addr, data.path(), upstream_extra)
        );
        let database = harness_database().await.inspect(|db| {
            let sqlite = format!("url = \"sqlite://{}/portcullis.db\"", data.path().display());
            text = text.replace(
                &sqlite,
                &format!(
                    "url = \"{}\"\ndata_dir = \"{}\"",
                    db.url(),
                    data.path().display()
                ),
            );
        });
        let gateway = start_with_sim_key(&text, clock).await;
        Harness {
            sim,
            sim_addr,
            gateway,
            client: Client::builder(TokioExecutor::new()).build_http(),
            config: text,
            _data: data,
            _database: database,
        }
    }

    /// A harness around a gateway the test started itself.
    pub fn wrap(
        sim: Simulator,
        sim_addr: SocketAddr,
        gateway: RunningGateway,
        data: tempfile::TempDir,
    ) -> Harness {
        Harness {
            sim,
            sim_addr,
            gateway,
            client: Client::builder(TokioExecutor::new()).build_http(),
            config: String::new(),
            _data: data,
            _database: None,
        }
    }

    /// Stops the gateway gracefully and starts a new one on the same configuration, store and
    /// simulator: what an operator's restart does.
    pub async fn restart(self) -> Harness {
        let (h, drained) = self.restart_reporting_drain().await;
        assert!(drained, "the gateway drained");
        h
    }

    /// As [`Harness::restart`], whether or not the old gateway drained within its grace.
    pub async fn restart_reporting_drain(self) -> (Harness, bool) {
        let Harness {
            sim,
            sim_addr,
            gateway,
            client,
            config,
            _data,
            _database,
        } = self;
        let drained = gateway.shutdown().await;
        let gateway = start_with_sim_key(&config, portcullis_core::clock::system()).await;
        let h = Harness {
            sim,
            sim_addr,
            gateway,
            client,
            config,
            _data,
            _database,
        };
        (h, drained)
    }

    /// Opens a streamed chat request on the public listener (with `bearer` as the credential,
    /// if any) and returns the response as soon as its head arrives.
    pub async fn open_stream(
        &self,
        body: String,
        bearer: Option<&str>,
    ) -> hyper::Response<hyper::body::Incoming> {
        let mut request = http::Request::post(format!(
            "http://{}/v1/chat/completions",
            self.gateway.public
        ))
        .header("content-type", "application/json");
        if let Some(key) = bearer {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let request = request
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        self.client.request(request).await.unwrap()
    }

    /// Writes `text` as the gateway's configuration file, the one reloads read.
    pub async fn write_config_file(&self, text: &str) {
        let path = self._data.path().join("portcullis.toml");
        std::fs::write(&path, text).unwrap();
        self.gateway.state.set_config_file(path).await;
    }

    pub async fn default() -> Harness {
        Harness::start(SimOptions::default(), "", "").await
    }

    pub async fn request(
        &self,
        addr: SocketAddr,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let response = self
            .client
            .request(
                builder
                    .body(Full::new(Bytes::from(body.to_owned())))
                    .unwrap(),
            )
            .await
            .expect("the gateway answered");
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    pub async fn post(&self, path: &str, body: &str) -> Reply {
        self.request(
            self.gateway.public,
            Method::POST,
            path,
            &[("content-type", "application/json")],
            body,
        )
        .await
    }

    /// Calls the admin API with the gateway's admin token.
    pub async fn admin(&self, method: Method, path: &str, body: &str) -> Reply {
        let token = format!("Bearer {}", self.gateway.state.admin_token);
        self.request(
            self.gateway.admin,
            method,
            path,
            &[
                ("authorization", &token),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
    }

    /// Creates the tenant if needed and a key for it; returns the key's text and id.
    pub async fn key(&self, tenant: &str, audience: &str, key_fields: &str) -> (String, String) {
        let _ = self
            .admin(
                Method::POST,
                "/admin/v1/tenants",
                &format!(r#"{{"name":"{tenant}","audience":"{audience}","plan":"default"}}"#),
            )
            .await;
        let extra = if key_fields.is_empty() {
            String::new()
        } else {
            format!(",{key_fields}")
        };
        let reply = self
            .admin(
                Method::POST,
                "/admin/v1/keys",
                &format!(r#"{{"tenant":"{tenant}"{extra}}}"#),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let v = reply.json();
        (
            v["key"].as_str().unwrap().to_owned(),
            v["id"].as_str().unwrap().to_owned(),
        )
    }

    /// A chat request with a bearer key and extra headers.
    pub async fn chat_as(
        &self,
        addr: SocketAddr,
        key: &str,
        model: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let auth = format!("Bearer {key}");
        let mut all = vec![
            ("content-type", "application/json"),
            ("authorization", auth.as_str()),
        ];
        all.extend_from_slice(headers);
        self.request(
            addr,
            Method::POST,
            "/v1/chat/completions",
            &all,
            &format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#),
        )
        .await
    }

    /// An embeddings request for the `embed` model with a bearer credential.
    pub async fn embed_as(&self, key: &str) -> Reply {
        let auth = format!("Bearer {key}");
        let headers = [
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ];
        self.request(
            self.gateway.public,
            Method::POST,
            "/v1/embeddings",
            &headers,
            r#"{"model":"embed","input":"x"}"#,
        )
        .await
    }

    pub async fn chat(&self, model: &str) -> Reply {
        self.post(
            "/v1/chat/completions",
            &format!(
                r#"{{"model":"{model}","messages":[{{"role":"user","content":"hello there"}}]}}"#
            ),
        )
        .await
    }
}

/// A loopback address where nothing listens: a port the OS handed out and took back.
pub fn closed_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The watermark secrets the harness's environment holds (newest first).
pub const WATERMARK_SECRETS: &str =
    "2026-12:harness watermark secret,2026-01:an older harness secret";

/// Starts a gateway from configuration text, with the simulator upstream's key set.
async fn start_with_sim_key(text: &str, clock: portcullis_core::SharedClock) -> RunningGateway {
    let config = Config::parse(text, Vec::new()).unwrap();
    Gateway::start_with(
        &config,
        |var| match var {
            "SIM_KEY" => Some("sk-upstream-secret".to_owned()),
            "PORTCULLIS_WATERMARK_SECRETS" => Some(WATERMARK_SECRETS.to_owned()),
            _ => None,
        },
        clock,
    )
    .await
    .unwrap()
}

/// Starts a gateway from configuration text (upstream keys resolve to a dummy value).
pub async fn start_gateway(text: &str) -> RunningGateway {
    let config = Config::parse(text, Vec::new()).unwrap();
    Gateway::start_with_env(&config, |_| Some("k".into()))
        .await
        .unwrap()
}

/// The body of a chat request with streaming on.
pub fn stream_body(model: &str) -> String {
    format!(
        r#"{{"model":"{model}","stream":true,"messages":[{{"role":"user","content":"hello there"}}]}}"#
    )
}

/// Waits until `f` holds, for at most two seconds.
pub async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if f() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}
