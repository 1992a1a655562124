//! HTTPS without a terminating proxy in front: `[server.tls]` certificate and key (PEM), TLS 1.2+
//! via rustls with ALPN `h2` and `http/1.1`, and `gatehouse dev-cert`, which writes a
//! self-signed certificate for local use.

use std::path::Path;
use std::sync::{Arc, RwLock};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

/// The certificate and key the server presents, loaded from PEM files and asked for on every
/// handshake (`ResolvesServerCert`). This is the seam for reloading certificates on change:
/// [`Certificates::reload`] swaps in a newly loaded pair, and handshakes from then on present
/// it, without rebuilding the server configuration or restarting the workers. (Nothing watches
/// the files yet.)
#[derive(Debug)]
pub struct Certificates {
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    /// Loads the pair. Errors say which of the two (`"cert"` or `"key"`) is wrong and how, never
    /// the key's content.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Certificates>, (&'static str, String)> {
        Ok(Arc::new(Certificates {
            current: RwLock::new(certified_key(cert, key)?),
        }))
    }

    /// Loads the pair again and, when it is valid, presents it from the next handshake on; a
    /// pair that does not load leaves the current one in place.
    pub fn reload(&self, cert: &Path, key: &Path) -> Result<(), (&'static str, String)> {
        let loaded = certified_key(cert, key)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        Ok(())
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The rustls server configuration presenting `certs`: TLS 1.2+, ALPN `h2` and `http/1.1`.
pub fn server_config(certs: Arc<Certificates>) -> Arc<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A certificate chain and its private key from PEM files, checked to fit each other.
fn certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, (&'static str, String)> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| ("cert", format!("{}: cannot read: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            (
                "cert",
                format!("{}: not a PEM certificate chain: {e}", cert.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(("cert", format!("{}: holds no certificate", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        (
            "key",
            format!(
                "{}: not a readable PEM private key (PKCS#8, PKCS#1 or SEC1): {}",
                key.display(),
                pem_error_kind(&e)
            ),
        )
    })?;
    // The build's one crypto provider (the process default the server configuration uses).
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(certs, key, &provider)
        .map(Arc::new)
        .map_err(|e| ("key", format!("does not fit the certificate: {e}")))
}

/// A description of a PEM error that cannot echo file content.
fn pem_error_kind(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error;
    match e {
        Error::NoItemsFound => "no private key found",
        Error::Io(_) => "cannot read the file",
        _ => "malformed PEM",
    }
}

/// Writes a self-signed certificate and its key for `hosts` (names or IP addresses) into
/// `cert` and `key` (the key readable by its owner only). Refuses to overwrite unless `force`.
pub fn dev_cert(cert: &Path, key: &Path, hosts: &[String], force: bool) -> Result<(), String> {
    for p in [cert, key] {
        if p.exists() && !force {
            return Err(format!(
                "{} exists; pass --force to replace it",
                p.display()
            ));
        }
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
    }
    let mut params =
        rcgen::CertificateParams::new(hosts.to_vec()).map_err(|e| format!("--host: {e}"))?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "Gatehouse development certificate",
    );
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(365);
    let key_pair = rcgen::KeyPair::generate().map_err(|e| format!("key generation: {e}"))?;
    let certificate = params
        .self_signed(&key_pair)
        .map_err(|e| format!("signing: {e}"))?;
    write_private(key, key_pair.serialize_pem().as_bytes())?;
    std::fs::write(cert, certificate.pem())
        .map_err(|e| format!("cannot write {}: {e}", cert.display()))?;
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.write_all(bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_cert_makes_a_usable_pair_and_never_overwrites_silently() {
        let dir = std::env::temp_dir().join(format!("gh-tls-{}", uuid::Uuid::new_v4().simple()));
        let (cert, key) = (dir.join("c.pem"), dir.join("k.pem"));
        let hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        dev_cert(&cert, &key, &hosts, false).unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certs = Certificates::load(&cert, &key).expect("the pair loads");
        let _config = server_config(certs.clone());
        let first = certs.current();
        assert!(
            dev_cert(&cert, &key, &hosts, false)
                .unwrap_err()
                .contains("--force")
        );
        dev_cert(&cert, &key, &hosts, true).unwrap();
        // The seam for reloading: a new pair is presented from then on, a bad one is not.
        certs.reload(&cert, &key).expect("the new pair loads");
        let second = certs.current();
        assert_ne!(first.cert, second.cert);
        assert!(certs.reload(&cert, &cert).is_err());
        assert_eq!(certs.current().cert, second.cert);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "key readable by others: {mode:o}");
        }
        // A certificate file given as the key is refused with a clear message.
        let (field, err) = Certificates::load(&cert, &cert).unwrap_err();
        assert_eq!(field, "key");
        assert!(err.contains("private key"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
