//! Prompt fingerprints: a keyed hash of the normalised prompt, so that the same prompt sent
//! twice (by one account or by many) is recognisable in the trail without the trail holding
//! the text. The key is the deployment's own: without it a fingerprint cannot be checked
//! against a guessed prompt.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The deployment's fingerprint key.
#[derive(Clone)]
pub struct FingerprintKey(Hmac<Sha256>);

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey(..)")
    }
}

impl FingerprintKey {
    pub fn new(secret: &[u8]) -> FingerprintKey {
        // HMAC takes a key of any length.
        FingerprintKey(Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key"))
    }

    /// A fingerprint being built from the prompt's texts, in order.
    pub fn start(&self) -> Fingerprint {
        Fingerprint {
            mac: self.0.clone(),
            pending_space: false,
            empty: true,
        }
    }
}

/// Normalisation: case folded, runs of whitespace one space, texts joined by one space; so
/// re-indenting or re-wrapping a prompt does not change it.
pub struct Fingerprint {
    mac: Hmac<Sha256>,
    pending_space: bool,
    empty: bool,
}

impl Fingerprint {
    pub fn add(&mut self, text: &str) {
        let mut buf = [0u8; 4];
        for c in text.chars() {
            if c.is_whitespace() {
                self.pending_space = !self.empty;
                continue;
            }
            if self.pending_space {
                self.mac.update(b" ");
                self.pending_space = false;
            }
            self.empty = false;
            for lower in c.to_lowercase() {
                self.mac.update(lower.encode_utf8(&mut buf).as_bytes());
            }
        }
        self.pending_space = !self.empty;
    }

    /// 32 hex digits (128 bits of the HMAC); `None` for an empty prompt.
    pub fn finish(self) -> Option<String> {
        if self.empty {
            return None;
        }
        let digest = self.mac.finalize().into_bytes();
        let mut out = String::with_capacity(32);
        for b in &digest[..16] {
            use std::fmt::Write;
            let _ = write!(out, "{b:02x}");
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(key: &FingerprintKey, texts: &[&str]) -> Option<String> {
        let mut f = key.start();
        for t in texts {
            f.add(t);
        }
        f.finish()
    }

    #[test]
    fn spacing_and_case_do_not_change_a_fingerprint_but_words_do() {
        let key = FingerprintKey::new(b"k1");
        let a = fp(&key, &["Tell me  a joke", "about cats\n"]);
        assert_eq!(a, fp(&key, &["  tell me a\tJOKE about", "cats"]));
        assert_ne!(a, fp(&key, &["tell me a joke about dogs"]));
        assert_ne!(a, fp(&key, &["tell me a jokeabout cats"]));
        assert_eq!(a.as_ref().map(String::len), Some(32));
        assert_eq!(fp(&key, &["", "  "]), None);
    }

    #[test]
    fn another_key_gives_another_fingerprint() {
        let one = fp(&FingerprintKey::new(b"k1"), &["hello"]);
        let two = fp(&FingerprintKey::new(b"k2"), &["hello"]);
        assert_ne!(one, two);
    }
}
