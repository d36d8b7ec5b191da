//! Keeping secret keys out of browsers.
//!
//! A secret key used from a web page is a leaked key: anyone who loads the page can read it.
//! Browsers announce themselves (`Origin`, the `Sec-Fetch-*` metadata they add to every
//! request, CORS preflights), and the official SDKs do too when run in a browser
//! (`X-Stainless-Runtime: browser:...`, `anthropic-dangerous-direct-browser-access`). A secret
//! key presented with any of these is refused, and the event is recorded against the key.

use http::{HeaderMap, Method};

/// The first browser signal found, named for the audit record.
pub fn browser_signal(method: &Method, headers: &HeaderMap) -> Option<&'static str> {
    if method == Method::OPTIONS && headers.contains_key("access-control-request-method") {
        return Some("cors-preflight");
    }
    for (name, signal) in [
        ("origin", "origin"),
        ("sec-fetch-mode", "sec-fetch-mode"),
        ("sec-fetch-site", "sec-fetch-site"),
        (
            "anthropic-dangerous-direct-browser-access",
            "sdk-browser-flag",
        ),
    ] {
        if headers.contains_key(name) {
            return Some(signal);
        }
    }
    let stainless = headers
        .get("x-stainless-runtime")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    stainless
        .to_ascii_lowercase()
        .starts_with("browser:")
        .then_some("sdk-browser-runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_browser_requests() {
        let server = HeaderMap::new();
        assert_eq!(browser_signal(&Method::POST, &server), None);
        for (name, value) in [
            ("origin", "https://example.com"),
            ("sec-fetch-mode", "cors"),
            ("sec-fetch-site", "cross-site"),
            ("x-stainless-runtime", "browser:chrome"),
            ("anthropic-dangerous-direct-browser-access", "true"),
        ] {
            let mut h = HeaderMap::new();
            h.insert(name, value.parse().unwrap());
            assert!(browser_signal(&Method::POST, &h).is_some(), "{name}");
        }
        let mut node = HeaderMap::new();
        node.insert("x-stainless-runtime", "node".parse().unwrap());
        assert_eq!(browser_signal(&Method::POST, &node), None);
    }
}
