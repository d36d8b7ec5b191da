//! Request ids: echo a well-formed one from the caller, otherwise make one.
//!
//! The id is copied into logs, the upstream request and the response, so an incoming one is
//! only trusted when it is short and made of harmless characters: anything else could forge
//! log lines or smuggle header content, and is replaced.

use http::HeaderValue;

/// The header that carries the id, in and out.
pub const HEADER: &str = "x-request-id";

/// Longest incoming id that is echoed.
const MAX_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The caller's id when it is well formed, a fresh one otherwise.
    pub fn from_incoming(incoming: Option<&HeaderValue>) -> Self {
        match incoming {
            Some(value) if is_well_formed(value.as_bytes()) => RequestId(value.clone()),
            _ => RequestId::generate(),
        }
    }

    /// A fresh id: 128 random bits from a thread-local generator seeded by the OS. Ids need
    /// to be unique, not secret, so this avoids a `getrandom` system call per request.
    pub fn generate() -> Self {
        let text = format!("req_{:032x}", fastrand::u128(..));
        RequestId(HeaderValue::from_str(&text).expect("hex is a valid header value"))
    }

    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII ever gets in (checked or generated).
        self.0.to_str().unwrap_or("")
    }
}

fn is_well_formed(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.len() <= MAX_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_well_formed_ids() {
        let v = HeaderValue::from_static("abc-123_x.y:z");
        assert_eq!(RequestId::from_incoming(Some(&v)).as_str(), "abc-123_x.y:z");
    }

    #[test]
    fn replaces_malformed_ids() {
        for bad in ["", "has space", "semi;colon", &"a".repeat(129)] {
            let v = HeaderValue::from_str(bad).unwrap();
            let id = RequestId::from_incoming(Some(&v));
            assert!(id.as_str().starts_with("req_"), "{bad:?} was echoed");
        }
    }

    #[test]
    fn generated_ids_are_unique() {
        assert_ne!(RequestId::generate(), RequestId::generate());
    }
}
