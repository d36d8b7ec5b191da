//! API keys: `pc_live_<id>_<secret><checksum>` and `pc_test_...`.
//!
//! - `id`: 16 base62 characters, public. It is the lookup key and what logs and the admin API
//!   show.
//! - `secret`: 32 base62 characters from the OS CSPRNG, about 190 bits. Shown once, never
//!   stored: the store keeps HMAC-SHA-256(pepper, id ":" secret). A fast keyed hash is right
//!   for secrets this strong (no dictionary to slow down), and the server-side pepper means a
//!   leaked database alone cannot confirm a guessed key.
//! - `checksum`: 6 base62 characters of the CRC32 of everything before it, so secret scanners
//!   and our own redaction recognise a real key without a database, with few false positives;
//!   a mistyped key is refused without a store lookup.

use hmac::{Hmac, Mac};
use sha2::Sha256;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
pub const ID_LEN: usize = 16;
pub const SECRET_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;

pub use portcullis_core::Environment as KeyEnvironment;

/// A key as presented by a caller, checked for shape and checksum but not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedKey<'a> {
    pub environment: KeyEnvironment,
    pub id: &'a str,
    pub secret: &'a str,
}

/// A newly minted key: the full text (shown once) and its parts.
pub struct MintedKey {
    pub text: String,
    pub id: String,
    pub environment: KeyEnvironment,
    secret: String,
}

impl MintedKey {
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl std::fmt::Debug for MintedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedKey")
            .field("id", &self.id)
            .field("environment", &self.environment)
            .finish_non_exhaustive()
    }
}

/// Random base62 text from the OS CSPRNG, without modulo bias.
pub fn random_base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).expect("the OS random number generator is available");
        for &b in &buf {
            // 248 = 4 * 62: bytes above it would favour the first characters.
            if b < 248 && out.len() < len {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    out
}

fn checksum(body: &str) -> String {
    let mut value = crc32fast::hash(body.as_bytes()) as u64;
    let mut digits = [b'0'; CHECKSUM_LEN];
    for d in digits.iter_mut().rev() {
        *d = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(digits.to_vec()).expect("base62 is ASCII")
}

/// The key text for given parts, with its checksum. For tests and benchmarks that need
/// well-formed keys that were never issued.
pub fn with_secret(environment: KeyEnvironment, id: &str, secret: &str) -> String {
    let body = format!("pc_{}_{id}_{secret}", environment.as_str());
    format!("{body}{}", checksum(&body))
}

pub fn mint(environment: KeyEnvironment) -> MintedKey {
    let id = random_base62(ID_LEN);
    let secret = random_base62(SECRET_LEN);
    let body = format!("pc_{}_{id}_{secret}", environment.as_str());
    let text = format!("{body}{}", checksum(&body));
    MintedKey {
        text,
        id,
        environment,
        secret,
    }
}

fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Checks shape and checksum. `None` for anything that is not a well-formed key.
pub fn parse(text: &str) -> Option<PresentedKey<'_>> {
    let rest = text.strip_prefix("pc_")?;
    let (env, rest) = rest.split_once('_')?;
    let environment = KeyEnvironment::parse(env)?;
    let (id, tail) = rest.split_once('_')?;
    if id.len() != ID_LEN || tail.len() != SECRET_LEN + CHECKSUM_LEN {
        return None;
    }
    if !is_base62(id) || !is_base62(tail) {
        return None;
    }
    let (secret, sum) = tail.split_at(SECRET_LEN);
    let body = &text[..text.len() - CHECKSUM_LEN];
    if checksum(body) != sum {
        return None;
    }
    Some(PresentedKey {
        environment,
        id,
        secret,
    })
}

/// The stored form of a key's secret.
pub fn hash_secret(pepper: &[u8], id: &str, secret: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b":");
    mac.update(secret.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Constant-time comparison of a presented secret with a stored hash.
pub fn verify_secret(pepper: &[u8], id: &str, secret: &str, stored: &[u8; 32]) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b":");
    mac.update(secret.as_bytes());
    mac.verify_slice(stored).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_parse_and_verify() {
        let key = mint(KeyEnvironment::Live);
        assert!(key.text.starts_with("pc_live_"));
        assert_eq!(
            key.text.len(),
            3 + 5 + ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN
        );
        let parsed = parse(&key.text).unwrap();
        assert_eq!(parsed.id, key.id);
        let stored = hash_secret(b"pepper", &key.id, key.secret());
        assert!(verify_secret(b"pepper", parsed.id, parsed.secret, &stored));
        assert!(!verify_secret(b"other", parsed.id, parsed.secret, &stored));
        assert!(
            !format!("{key:?}").contains(key.secret()),
            "Debug leaks the secret"
        );
    }

    #[test]
    fn malformed_and_tampered_keys_are_refused() {
        let key = mint(KeyEnvironment::Test).text;
        let mut flipped = key.clone().into_bytes();
        let i = 20;
        flipped[i] = if flipped[i] == b'a' { b'b' } else { b'a' };
        for bad in [
            String::new(),
            "pc_live_".into(),
            key.replace("pc_test_", "pc_prod_"),
            String::from_utf8(flipped).unwrap(),
            key[..key.len() - 1].to_owned(),
            format!("{key}x"),
            key.replace('_', "-"),
        ] {
            assert!(parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn random_text_uses_the_whole_alphabet() {
        let text = random_base62(4000);
        let distinct: std::collections::HashSet<char> = text.chars().collect();
        assert_eq!(distinct.len(), 62);
        assert_ne!(random_base62(32), random_base62(32));
    }
}
