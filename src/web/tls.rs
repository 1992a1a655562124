//! HTTPS without a terminating proxy in front: `[server.tls]` certificate and key (PEM), TLS 1.2+
//! via rustls with ALPN `h2` and `http/1.1`, and `gatehouse dev-cert`, which writes a
//! self-signed certificate for local use.

use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The rustls server configuration from PEM files. Errors say which of the two (`"cert"` or
/// `"key"`) is wrong and how, never the key's content.
pub fn server_config(
    cert: &Path,
    key: &Path,
) -> Result<Arc<rustls::ServerConfig>, (&'static str, String)> {
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
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ("key", format!("does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
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
        assert!(server_config(&cert, &key).is_ok());
        assert!(
            dev_cert(&cert, &key, &hosts, false)
                .unwrap_err()
                .contains("--force")
        );
        dev_cert(&cert, &key, &hosts, true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "key readable by others: {mode:o}");
        }
        // A certificate file given as the key is refused with a clear message.
        let (field, err) = server_config(&cert, &cert).unwrap_err();
        assert_eq!(field, "key");
        assert!(err.contains("private key"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
