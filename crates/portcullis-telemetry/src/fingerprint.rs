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
            buffer: Vec::with_capacity(BUFFER),
            pending_space: false,
            empty: true,
        }
    }
}

/// Normalisation: case folded, runs of whitespace one space, texts joined by one space; so
/// re-indenting or re-wrapping a prompt does not change it.
pub struct Fingerprint {
    mac: Hmac<Sha256>,
    /// Normalised bytes not yet hashed: the MAC is fed in blocks, not a character at a time.
    buffer: Vec<u8>,
    pending_space: bool,
    empty: bool,
}

const BUFFER: usize = 1024;

impl Fingerprint {
    pub fn add(&mut self, text: &str) {
        let mut buf = [0u8; 4];
        for c in text.chars() {
            if c.is_whitespace() {
                self.pending_space = !self.empty;
                continue;
            }
            if self.pending_space {
                self.buffer.push(b' ');
                self.pending_space = false;
            }
            self.empty = false;
            if c.is_ascii() {
                self.buffer.push(c.to_ascii_lowercase() as u8);
            } else {
                for lower in c.to_lowercase() {
                    self.buffer
                        .extend_from_slice(lower.encode_utf8(&mut buf).as_bytes());
                }
            }
            if self.buffer.len() >= BUFFER {
                self.mac.update(&self.buffer);
                self.buffer.clear();
            }
        }
        self.pending_space = !self.empty;
    }

    /// 32 hex digits (128 bits of the HMAC); `None` for an empty prompt.
    pub fn finish(self) -> Option<String> {
        if self.empty {
            return None;
        }
        let mut mac = self.mac;
        mac.update(&self.buffer);
        let digest = mac.finalize().into_bytes();
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
    fn non_ascii_text_is_folded_by_character() {
        let key = FingerprintKey::new(b"k1");
        assert_eq!(
            fp(&key, &["Ünïcode\u{2003}TEXT  ÉTÉ"]),
            fp(&key, &["ünïcode text\u{a0}été"])
        );
        assert_ne!(fp(&key, &["été"]), fp(&key, &["ete"]));
    }

    #[test]
    fn another_key_gives_another_fingerprint() {
        let one = fp(&FingerprintKey::new(b"k1"), &["hello"]);
        let two = fp(&FingerprintKey::new(b"k2"), &["hello"]);
        assert_ne!(one, two);
    }
}
