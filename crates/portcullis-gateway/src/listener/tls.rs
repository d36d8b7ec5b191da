//! TLS termination with a certificate that can be replaced without a restart.
//!
//! The certificate and key are read at start (an unreadable pair stops start-up) and again on
//! SIGHUP; a reload that fails keeps the current pair and reports why, so a bad deploy of a
//! certificate never takes the gateway down. New connections use the new pair; open ones keep
//! theirs.

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

#[derive(Debug)]
struct Resolver {
    current: ArcSwap<CertifiedKey>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

pub struct ReloadableTls {
    cert: PathBuf,
    key: PathBuf,
    resolver: Arc<Resolver>,
    acceptor: TlsAcceptor,
    config: Arc<rustls::ServerConfig>,
}

impl ReloadableTls {
    pub fn load(config: &portcullis_config::Tls) -> Result<ReloadableTls, String> {
        let certified = load_pair(&config.cert, &config.key)?;
        let resolver = Arc::new(Resolver {
            current: ArcSwap::from_pointee(certified),
        });
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let server = Arc::new(server);
        Ok(ReloadableTls {
            cert: config.cert.clone(),
            key: config.key.clone(),
            resolver,
            acceptor: TlsAcceptor::from(server.clone()),
            config: server,
        })
    }

    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// Completes a handshake, reading the client's hello on the way: the stream, and the
    /// hello's fingerprint (see [`fingerprint`]).
    pub async fn accept<IO>(
        &self,
        stream: IO,
    ) -> std::io::Result<(tokio_rustls::server::TlsStream<IO>, String)>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let start =
            tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream)
                .await?;
        let print = fingerprint(&start.client_hello());
        let stream = start.into_stream(self.config.clone()).await?;
        Ok((stream, print))
    }

    /// Re-reads the certificate and key; on failure the current pair stays in use.
    pub fn reload(&self) -> Result<(), String> {
        let certified = load_pair(&self.cert, &self.key)?;
        self.resolver.current.store(Arc::new(certified));
        Ok(())
    }
}

fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid certificate PEM in {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("no certificate found in {}", cert.display()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read private key {}: {e}", key.display()))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| format!("unusable private key {}: {e}", key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| format!("certificate and key do not match: {e}"))?;
    Ok(certified)
}

/// The client's TLS hello as a fingerprint (in the manner of JA3/JA4, without their hashing,
/// so an operator can read it): cipher suites, signature schemes and groups in the client's
/// order (GREASE values dropped), and the ALPN protocols. A client library and its TLS
/// stack choose these, not the caller's code: a script that claims a browser's user agent
/// still shakes hands as a script. At most 256 characters.
pub fn fingerprint(hello: &ClientHello<'_>) -> String {
    use std::fmt::Write;
    let grease = |v: u16| v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff);
    let mut out = String::with_capacity(128);
    out.push_str("c=");
    for (i, suite) in hello.cipher_suites().iter().enumerate() {
        let v = u16::from(*suite);
        if !grease(v) {
            let _ = write!(out, "{}{v:04x}", if i == 0 { "" } else { "." });
        }
    }
    out.push_str(";s=");
    for (i, scheme) in hello.signature_schemes().iter().enumerate() {
        let _ = write!(
            out,
            "{}{:04x}",
            if i == 0 { "" } else { "." },
            u16::from(*scheme)
        );
    }
    out.push_str(";g=");
    for (i, group) in hello.named_groups().unwrap_or(&[]).iter().enumerate() {
        let v = u16::from(*group);
        if !grease(v) {
            let _ = write!(out, "{}{v:04x}", if i == 0 { "" } else { "." });
        }
    }
    out.push_str(";a=");
    if let Some(alpn) = hello.alpn() {
        for (i, p) in alpn.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&String::from_utf8_lossy(p));
        }
    }
    let mut end = out.len().min(256);
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    out
}
