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
    println!(
        r#"
Portcullis demo: the gateway on {base}, in front of a simulated model server.
Admin: http://{admin}/readyz   (Ctrl-C to stop)
A demo tenant and a 1-day key were created for you (the admin token is in portcullis-data/admin-token).

Try it with curl:

  curl -s {base}/chat/completions \
    -H 'Content-Type: application/json' -H 'Authorization: Bearer {key}' \
    -d '{{"model":"sim-chat","messages":[{{"role":"user","content":"Hello!"}}]}}'

Or with the official openai Python package (pip install openai):

  from openai import OpenAI
  client = OpenAI(base_url="{base}", api_key="{key}")
  reply = client.chat.completions.create(
      model="sim-chat", messages=[{{"role": "user", "content": "Hello!"}}])
  print(reply.choices[0].message.content)
  for chunk in client.chat.completions.create(
          model="sim-chat", messages=[{{"role": "user", "content": "Hello!"}}], stream=True):
      print(chunk.choices[0].delta.content or "", end="", flush=True) if chunk.choices else None
"#,
        admin = gateway.admin
    );
    crate::commands::serve::terminate().await;
    gateway.shutdown().await;
    Ok(())
}

/// A tenant `demo` (created once) and a fresh one-day key for it.
async fn demo_key(gateway: &portcullis_gateway::RunningGateway) -> anyhow::Result<String> {
    let state = &gateway.state;
    if state.store.tenant("demo").await?.is_none() {
        state
            .store
            .create_tenant("demo", portcullis_core::Audience::Customer, "default")
            .await?;
    }
    let (minted, record) = portcullis_identity::new_key(
        state.keys.pepper(),
        "demo",
        portcullis_core::Environment::Live,
        vec!["inference".into()],
        None,
        "created by portcullis demo".into(),
        24 * 3600,
    );
    state.store.insert_key(record).await?;
    state.keys.reload(&state.store).await?;
    Ok(minted.text)
}
