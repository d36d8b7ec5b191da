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

[dev]
allow_anonymous = true

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
    let base = format!("http://{}/v1", gateway.public);
    println!(
        r#"
Portcullis demo: the gateway on {base}, in front of a simulated model server.
Admin: http://{admin}/readyz   (Ctrl-C to stop)

Try it with curl:

  curl -s {base}/chat/completions \
    -H 'Content-Type: application/json' -H 'Authorization: Bearer demo' \
    -d '{{"model":"sim-chat","messages":[{{"role":"user","content":"Hello!"}}]}}'

Or with the official openai Python package (pip install openai):

  from openai import OpenAI
  client = OpenAI(base_url="{base}", api_key="demo")
  reply = client.chat.completions.create(
      model="sim-chat", messages=[{{"role": "user", "content": "Hello!"}}])
  print(reply.choices[0].message.content)
  for chunk in client.chat.completions.create(
          model="sim-chat", messages=[{{"role": "user", "content": "Hello!"}}], stream=True):
      print(chunk.choices[0].delta.content or "", end="", flush=True) if chunk.choices else None
"#,
        admin = gateway.admin
    );
    crate::serve::terminate().await;
    gateway.shutdown().await;
    Ok(())
}
