//! The rate-limit headers OpenAI clients parse, and how a refusal is told.

use http::{HeaderMap, HeaderName, HeaderValue};
use portcullis_limits::RateHeaders;

/// A duration as OpenAI writes it in `x-ratelimit-reset-*`: `20ms`, `1.5s`, `6m0s`.
pub fn format_reset(us: u64) -> String {
    let ms = us.div_ceil(1000);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let total_s = ms as f64 / 1000.0;
    if total_s < 60.0 {
        let s = format!("{total_s:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        return format!("{s}s");
    }
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else {
        format!("{m}m{s}s")
    }
}

fn put(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` for the limits that applied.
pub fn rate_headers(headers: &mut HeaderMap, rate: &RateHeaders) {
    if let Some(r) = rate.requests {
        put(headers, "x-ratelimit-limit-requests", r.limit.to_string());
        put(
            headers,
            "x-ratelimit-remaining-requests",
            r.remaining.to_string(),
        );
        put(
            headers,
            "x-ratelimit-reset-requests",
            format_reset(r.reset_us),
        );
    }
    if let Some(r) = rate.tokens {
        put(headers, "x-ratelimit-limit-tokens", r.limit.to_string());
        put(
            headers,
            "x-ratelimit-remaining-tokens",
            r.remaining.to_string(),
        );
        put(
            headers,
            "x-ratelimit-reset-tokens",
            format_reset(r.reset_us),
        );
    }
}

/// `Retry-After` (whole seconds, rounded up) and `retry-after-ms`, and whether the SDKs
/// should retry at all: `x-should-retry: false` for what waiting cannot fix soon.
pub fn retry_headers(headers: &mut HeaderMap, retry_after_us: Option<u64>, should_retry: bool) {
    if let Some(us) = retry_after_us {
        put(
            headers,
            "retry-after",
            us.div_ceil(1_000_000).max(1).to_string(),
        );
        put(
            headers,
            "retry-after-ms",
            us.div_ceil(1000).max(1).to_string(),
        );
    }
    put(headers, "x-should-retry", should_retry.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_read_like_openai() {
        assert_eq!(format_reset(19_500), "20ms");
        assert_eq!(format_reset(1_500_000), "1.5s");
        assert_eq!(format_reset(2_000_000), "2s");
        assert_eq!(format_reset(360_000_000), "6m0s");
        assert_eq!(format_reset(3_723_000_000), "1h2m3s");
    }
}
