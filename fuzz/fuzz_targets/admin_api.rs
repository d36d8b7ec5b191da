//! The admin API on arbitrary request bodies and query strings, through its real router and
//! store (a gateway on a throwaway SQLite directory, started once): every answer is a JSON
//! document with a 2xx or 4xx status, never a 500 (a store error the input caused) and never a
//! panic. The first byte picks the route; the rest is the body (or the query).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_gateway::{Gateway, RunningGateway};
use std::sync::OnceLock;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    gateway: RunningGateway,
    key_id: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = std::env::temp_dir().join(format!("portcullis-fuzz-admin-{}", std::process::id()));
        let config = format!(
            r#"
[listeners]
public = "127.0.0.1:0"
admin = "127.0.0.1:0"
[store]
url = "sqlite://{}/portcullis.db"
[[upstreams]]
name = "sim"
base_url = "http://127.0.0.1:9/v1"
health_check_interval = "0s"
[[models]]
name = "chat"
upstream = "sim"
"#,
            dir.display()
        );
        let config = portcullis_config::Config::parse(&config, std::iter::empty()).expect("config");
        let gateway = runtime.block_on(Gateway::start(&config)).expect("gateway");
        let state = gateway.state.clone();
        let key_id = runtime.block_on(async {
            let create = |path: &str, body: &str| request("POST", path, body, &state.admin_token);
            portcullis_gateway::admin::serve(
                &state,
                create("/admin/v1/tenants", r#"{"name":"acme","audience":"customer","plan":"default"}"#),
            )
            .await;
            let reply = portcullis_gateway::admin::serve(
                &state,
                create("/admin/v1/keys", r#"{"tenant":"acme"}"#),
            )
            .await;
            let body = http_body_util::BodyExt::collect(reply.into_body()).await.expect("body");
            let value: serde_json::Value = serde_json::from_slice(&body.to_bytes()).expect("json");
            value["id"].as_str().unwrap_or_else(|| panic!("no key id in {value}")).to_owned()
        });
        Fixture { runtime, gateway, key_id }
    })
}

fn request(method: &str, path: &str, body: &str, token: &str) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body.to_owned())))
        .expect("a request")
}

fuzz_target!(|data: &[u8]| {
    let Some((&route, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let f = fixture();
    let key = &f.key_id;
    let (method, path, body) = match route % 9 {
        0 => ("POST", "/admin/v1/tenants".to_owned(), text.as_ref()),
        1 => ("POST", "/admin/v1/keys".to_owned(), text.as_ref()),
        2 => ("POST", format!("/admin/v1/keys/{key}/rotate"), text.as_ref()),
        3 => ("POST", format!("/admin/v1/keys/{key}x/revoke"), text.as_ref()),
        4 => ("POST", "/admin/v1/leaks".to_owned(), text.as_ref()),
        5 => ("PUT", "/admin/v1/risk/tenant:acme".to_owned(), text.as_ref()),
        6 => ("GET", format!("/admin/v1/usage?{}", text.replace(['#', ' '], "")), ""),
        7 => ("GET", format!("/admin/v1/audit?{}", text.replace(['#', ' '], "")), ""),
        _ => ("GET", format!("/admin/v1/keys?{}", text.replace(['#', ' '], "")), ""),
    };
    let Ok(uri) = path.parse::<http::Uri>() else {
        return;
    };
    let state = f.gateway.state.clone();
    let mut req = request(method, "/", body, &state.admin_token);
    *req.uri_mut() = uri;
    let (status, body) = f.runtime.block_on(async {
        let reply = portcullis_gateway::admin::serve(&state, req).await;
        let status = reply.status();
        let body = http_body_util::BodyExt::collect(reply.into_body()).await.expect("body");
        (status, body.to_bytes())
    });
    assert!(status.as_u16() < 500, "{status} for {method} {path}: {}", String::from_utf8_lossy(&body));
    assert!(
        serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
        "not JSON: {}",
        String::from_utf8_lossy(&body)
    );
});
