//! The configuration refuses what is wrong and names the field.

use portcullis_config::{Config, Visibility};

fn parse(text: &str) -> Result<Config, portcullis_config::ConfigError> {
    Config::parse(text, Vec::new())
}

const VALID: &str = r#"
[listeners]
public = "127.0.0.1:8080"
admin = "127.0.0.1:8081"
internal = "127.0.0.1:8082"

[store]
url = "sqlite://portcullis-data/portcullis.db"

[[upstreams]]
name = "sim"
base_url = "http://127.0.0.1:9000/v1"
api_key_env = "SIM_API_KEY"
max_concurrency = 512
connect_timeout = "2s"
first_byte_timeout = "60s"
idle_timeout = "250ms"

[[models]]
name = "sim-chat"
upstream = "sim"
upstream_model = "sim-chat-v2"
visibility = "internal"
"#;

#[test]
fn the_documented_example_parses() {
    let c = parse(VALID).unwrap();
    assert_eq!(c.upstreams[0].idle_timeout.get().as_millis(), 250);
    assert_eq!(c.models[0].upstream_model(), "sim-chat-v2");
    assert_eq!(c.models[0].visibility, Visibility::Internal);
    assert!(c.listeners.internal.is_some());
}

#[test]
fn empty_config_is_the_safe_default() {
    let c = parse("").unwrap();
    assert!(!c.dev.allow_anonymous);
    assert!(c.listeners.public.ip().is_loopback());
    assert!(c.upstreams.is_empty());
}

fn error_field(text: &str) -> String {
    let err = parse(text).unwrap_err();
    assert!(!err.to_string().is_empty());
    err.field
}

#[test]
fn errors_name_the_field() {
    let bad_duration = VALID.replace("\"2s\"", "\"2 parsecs\"");
    assert_eq!(error_field(&bad_duration), "upstreams[0].connect_timeout");

    let unknown = VALID.replace("max_concurrency = 512", "max_concurency = 512");
    let err = parse(&unknown).unwrap_err();
    assert!(err.to_string().contains("max_concurency"), "{err}");

    let bad_ref = VALID.replace("upstream = \"sim\"", "upstream = \"nope\"");
    assert_eq!(error_field(&bad_ref), "models[0].upstream");

    let bad_url = VALID.replace("http://127.0.0.1:9000/v1", "ftp://x");
    assert_eq!(error_field(&bad_url), "upstreams[0].base_url");

    let bad_addr = VALID.replace("127.0.0.1:8080", "not-an-address");
    assert_eq!(error_field(&bad_addr), "listeners.public");

    let bad_vis = VALID.replace("\"internal\"\n", "\"secret\"\n");
    assert_eq!(error_field(&bad_vis), "models[0].visibility");

    let zero = VALID.replace("max_concurrency = 512", "max_concurrency = 0");
    assert_eq!(error_field(&zero), "upstreams[0].max_concurrency");

    let test_upstream = VALID
        .replace(
            "max_concurrency = 512",
            "max_concurrency = 512\nenvironment = \"test\"",
        )
        .replace(
            "visibility = \"internal\"",
            "visibility = \"internal\"\nenvironment = \"live\"",
        );
    assert_eq!(error_field(&test_upstream), "models[0].environment");

    let dup = format!("{VALID}\n[[models]]\nname = \"sim-chat\"\nupstream = \"sim\"\n");
    assert_eq!(error_field(&dup), "models[1].name");
}

#[test]
fn syntax_errors_are_reported() {
    let err = parse("[listeners\npublic = 1").unwrap_err();
    assert!(err.to_string().contains("invalid TOML"), "{err}");
}

#[test]
fn anonymous_access_is_refused_off_loopback() {
    let text = "[listeners]\npublic = \"0.0.0.0:8080\"\n[dev]\nallow_anonymous = true\n";
    assert_eq!(error_field(text), "dev.allow_anonymous");
    let ok = "[dev]\nallow_anonymous = true\n";
    assert!(parse(ok).unwrap().dev.allow_anonymous);
}

#[test]
fn environment_overrides_fields() {
    let env = vec![
        (
            "PORTCULLIS_LISTENERS__PUBLIC".to_string(),
            "127.0.0.1:18080".to_string(),
        ),
        (
            "PORTCULLIS_UPSTREAMS__0__MAX_CONCURRENCY".to_string(),
            "3".to_string(),
        ),
        (
            "PORTCULLIS_HTTP__MAX_BODY_BYTES".to_string(),
            "1024".to_string(),
        ),
    ];
    let c = Config::parse(VALID, env).unwrap();
    assert_eq!(c.listeners.public.port(), 18080);
    assert_eq!(c.upstreams[0].max_concurrency, 3);
    assert_eq!(c.http.max_body_bytes, 1024);

    let bad = vec![(
        "PORTCULLIS_HTTP__MAX_BODY_BYTES".to_string(),
        "lots".to_string(),
    )];
    assert_eq!(
        Config::parse(VALID, bad).unwrap_err().field,
        "http.max_body_bytes"
    );
}
