//! Watermark keys. Every key derives from a server secret: one global detection key (a
//! campaign spread over a thousand accounts still adds up under it) and one attribution key
//! per tenant, HMAC(secret, tenant id). Secrets are versioned: the newest marks, all are
//! tried by detection, so rotating the secret does not orphan evidence against a student
//! trained on older outputs. Keys never appear in `Debug` output, logs or errors.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A derived 256-bit key, kept as a ready HMAC state (cloned per slot: cheaper than keying).
#[derive(Clone)]
pub struct Key {
    mac: HmacSha256,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// A key from raw bytes (tests, and the calibration runs over random keys).
    pub fn from_bytes(bytes: &[u8]) -> Key {
        Key {
            mac: HmacSha256::new_from_slice(bytes).expect("HMAC takes any key length"),
        }
    }

    /// HMAC(key, parts joined by a zero byte).
    pub fn hash(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                mac.update(&[0]);
            }
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

/// One version of the server secret.
#[derive(Clone)]
pub struct Secret {
    /// A label for reports ("2026-12", "v2"): never the secret itself.
    pub version: String,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({})", self.version)
    }
}

impl Secret {
    pub fn new(version: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Secret {
        Secret {
            version: version.into(),
            bytes: bytes.into(),
        }
    }

    /// The global detection key of this version.
    pub fn global(&self) -> Key {
        Key::from_bytes(&self.derive(b"portcullis-watermark/v1/global", b""))
    }

    /// The attribution key of `tenant` under this version.
    pub fn tenant(&self, tenant: &str) -> Key {
        Key::from_bytes(&self.derive(b"portcullis-watermark/v1/tenant", tenant.as_bytes()))
    }

    fn derive(&self, label: &[u8], context: &[u8]) -> [u8; 32] {
        Key::from_bytes(&self.bytes).hash(&[label, context])
    }
}

/// The secrets detection tries, newest first; the first marks.
#[derive(Debug, Clone)]
pub struct KeyRing {
    secrets: Vec<Secret>,
}

impl KeyRing {
    /// A ring from versions, newest first. `None` when empty.
    pub fn new(secrets: Vec<Secret>) -> Option<KeyRing> {
        (!secrets.is_empty()).then_some(KeyRing { secrets })
    }

    /// Parses `version:secret[,version:secret...]` (newest first), the form the environment
    /// and the configuration give. A secret shorter than 16 bytes is refused.
    pub fn parse(spec: &str) -> Result<KeyRing, String> {
        let mut secrets = Vec::new();
        for (i, item) in spec.split(',').map(str::trim).enumerate() {
            if item.is_empty() {
                continue;
            }
            let (version, secret) = match item.split_once(':') {
                Some((v, s)) => (v.to_owned(), s),
                None => (format!("v{}", i + 1), item),
            };
            if secret.len() < 16 {
                return Err(format!(
                    "watermark secret {version} is shorter than 16 characters"
                ));
            }
            secrets.push(Secret::new(version, secret.as_bytes().to_vec()));
        }
        KeyRing::new(secrets).ok_or_else(|| "no watermark secret given".to_owned())
    }

    /// The secret that marks new outputs.
    pub fn current(&self) -> &Secret {
        &self.secrets[0]
    }

    /// Every version, newest first.
    pub fn secrets(&self) -> &[Secret] {
        &self.secrets
    }
}

/// The keys one response is marked with.
#[derive(Debug, Clone)]
pub struct MarkKeys {
    pub global: Key,
    pub tenant: Key,
}

impl MarkKeys {
    pub fn new(secret: &Secret, tenant: &str) -> MarkKeys {
        MarkKeys {
            global: secret.global(),
            tenant: secret.tenant(tenant),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_tenant_and_version_and_never_print() {
        let ring = KeyRing::parse("new:0123456789abcdef-new,old:0123456789abcdef-old").unwrap();
        assert_eq!(ring.current().version, "new");
        let a = ring.secrets()[0].tenant("acme").hash(&[b"x"]);
        let b = ring.secrets()[0].tenant("globex").hash(&[b"x"]);
        let c = ring.secrets()[1].tenant("acme").hash(&[b"x"]);
        assert!(a != b && a != c);
        let printed = format!("{ring:?} {:?}", ring.current().global());
        assert!(!printed.contains("0123456789abcdef"), "{printed}");
        assert!(KeyRing::parse("v1:short").is_err());
        assert!(KeyRing::parse("").is_err());
    }
}
