//! `portcullis demo`: the quick start. The simulator and the gateway in one process, on
//! embedded defaults, with a first request printed ready to paste.

use portcullis_config::Config;
use portcullis_gateway::Gateway;
use std::net::SocketAddr;

pub async fn run(port: u16) -> anyhow::Result<()> {
    crate::logging::init(&Default::default());
    let sim = portcullis_sim::Simulator::new(portcullis_sim::SimOptions {
        tokens_per_second: 20.0,
        ..Default::default()
    });
    let sim_addr = sim.spawn(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let admin_port = port
        .checked_add(1)
        .ok_or_else(|| anyhow::anyhow!("--port must be below 65535"))?;
    let text = format!(
        r#"
[listeners]
public = "127.0.0.1:{port}"
admin = "127.0.0.1:{admin_port}"

[[upstreams]]
name = "sim"
base_url = "http://{sim_addr}/v1"

[[models]]
name = "sim-chat"
upstream = "sim"

[[models]]
name = "sim-embed"
upstream = "sim"
"#
    );
    let config = Config::parse(&text, std::env::vars())?;
    let gateway = Gateway::start(&config).await?;
    let key = demo_key(&gateway).await?;
    let base = format!("http://{}/v1", gateway.public);
    println!("{}", banner(&base, gateway.admin, sim_addr, &key));
    crate::commands::serve::terminate().await;
    gateway.shutdown().await;
    Ok(())
}

/// What to try, ready to paste: curl, the CLI (where the binary is, and the admin URL to
/// export when the ports moved) and Python, flush left so it runs as pasted.
fn banner(base: &str, admin: SocketAddr, sim: SocketAddr, key: &str) -> String {
    let cli = std::env::current_exe()
        .ok()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "portcullis".into());
    format!(
        r#"
Portcullis demo: the gateway on {base}, in front of a simulated model server on http://{sim}/v1.
Admin API: http://{admin}   (Ctrl-C to stop)
A demo tenant and a 1-day key were created for you (the admin token is in portcullis-data/admin-token).

Try it with curl:

  curl -s {base}/chat/completions \
    -H 'Content-Type: application/json' -H 'Authorization: Bearer {key}' \
    -d '{{"model":"sim-chat","messages":[{{"role":"user","content":"Hello!"}}]}}'

Manage it with the CLI ({cli}; put it on your PATH with
`cargo install --path crates/portcullis`), from this directory:

  export PORTCULLIS_ADMIN_URL=http://{admin}
  {cli} keys list
  {cli} usage show --tenant demo
  {cli} requests tail --follow

Or with the official openai Python package (pip install openai); paste into python3:

from openai import OpenAI
client = OpenAI(base_url="{base}", api_key="{key}")
reply = client.chat.completions.create(
    model="sim-chat", messages=[{{"role": "user", "content": "Hello!"}}])
print(reply.choices[0].message.content)
for chunk in client.chat.completions.create(
        model="sim-chat", messages=[{{"role": "user", "content": "Hello!"}}], stream=True):
    if chunk.choices:
        print(chunk.choices[0].delta.content or "", end="", flush=True)

print()
"#
    )
}

/// The marker of keys the demo makes: the next run revokes what the last one left.
const DEMO_KEY: &str = "created by portcullis demo";

/// A tenant `demo` (created once) and a fresh one-day key for it; the previous demo keys are
/// revoked. Each change is in the admin audit log, as if made through the admin API.
async fn demo_key(gateway: &portcullis_gateway::RunningGateway) -> anyhow::Result<String> {
    let state = &gateway.state;
    let store = &state.store;
    let audit = |action: &'static str, target: String, detail: &'static str| async move {
        store
            .record_audit("demo", action, &target, "portcullis demo", detail)
            .await
    };
    if store.tenant("demo").await?.is_none() {
        store
            .create_tenant("demo", portcullis_core::Audience::Customer, "default")
            .await?;
        audit(
            "tenant.create",
            "demo".into(),
            "audience=customer plan=default",
        )
        .await?;
    }
    for old in store.keys(Some("demo")).await? {
        if old.description == DEMO_KEY && old.revoked_at.is_none() {
            store
                .revoke_key(&old.id, "replaced by a new demo run")
                .await?;
            audit("key.revoke", old.id, "replaced by a new demo run").await?;
        }
    }
    let (minted, record) = portcullis_identity::new_key(
        state.keys.pepper(),
        "demo",
        portcullis_core::Environment::Live,
        vec!["inference".into()],
        None,
        DEMO_KEY.into(),
        24 * 3600,
    );
    let id = record.id.clone();
    store.insert_key(record).await?;
    audit("key.create", id, "roles=inference lifetime=1d").await?;
    state.keys.reload(store).await?;
    Ok(minted.text)
}
