//! `[server]`: where to listen, the public URL, trusted proxies, metrics readers, TLS.

use super::reader::Section;
use std::net::SocketAddr;
use std::time::Duration;
use url::Url;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub public_url: Url,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Who may read `/metrics` (the client address, as `trusted_proxies` decide it).
    pub metrics_allow: Vec<ipnet::IpNet>,
    /// How long graceful shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Serving threads, each with its own runtime and listening socket (`workers = 0`, the
    /// default: one per CPU).
    pub workers: usize,
    /// `[server.tls]`: serve HTTPS directly (checked at load: the files parse and fit).
    pub tls: Option<TlsConfig>,
}

#[derive(Clone)]
pub struct TlsConfig {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    /// The loaded pair, which the server presents (and a reload may swap).
    pub certs: std::sync::Arc<crate::server::tls::Certificates>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

pub(super) fn read_server(s: &Section) -> ServerConfig {
    let listen = s.string("listen", "127.0.0.1:8080");
    let listen = listen.parse().unwrap_or_else(|_| {
        s.problem("listen", "not a socket address (e.g. \"127.0.0.1:8080\")");
        SocketAddr::from(([127, 0, 0, 1], 8080))
    });
    let public = s.string("public_url", "http://localhost:8080");
    let public_url = match Url::parse(&public) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
            if u.path() != "/" || u.query().is_some() {
                s.problem(
                    "public_url",
                    "must be an origin without a path (e.g. \"https://login.example.com\")",
                );
            }
            u
        }
        _ => {
            s.problem("public_url", "must be an http:// or https:// URL");
            Url::parse("http://localhost:8080").expect("valid")
        }
    };
    let trusted_proxies = networks(s, "trusted_proxies", &[]);
    let metrics_allow = networks(s, "metrics_allow", &["127.0.0.0/8", "::1/128"]);
    let shutdown_grace = s.duration("shutdown_grace", "20s");
    let workers = match s.int("workers", 0, 0, 256) {
        // One per CPU the process may use.
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n as usize,
    };
    let tls = s.raw("tls").is_some().then(|| s.sub("tls")).and_then(|t| {
        let (cert, key) = (t.string("cert", ""), t.string("key", ""));
        t.finish();
        if cert.is_empty() || key.is_empty() {
            for (k, v) in [("cert", &cert), ("key", &key)] {
                if v.is_empty() {
                    t.problem(k, "required: a PEM file path");
                }
            }
            return None;
        }
        let (cert, key) = (
            std::path::PathBuf::from(cert),
            std::path::PathBuf::from(key),
        );
        match crate::server::tls::Certificates::load(&cert, &key) {
            Ok(certs) => Some(TlsConfig { cert, key, certs }),
            Err((k, message)) => {
                t.problem(k, message);
                None
            }
        }
    });
    s.finish();
    ServerConfig {
        listen,
        public_url,
        trusted_proxies,
        metrics_allow,
        shutdown_grace,
        workers,
        tls,
    }
}

/// A list of IP addresses or CIDRs under `key` (`default` when the key is absent).
pub(super) fn networks(s: &Section, key: &str, default: &[&str]) -> Vec<ipnet::IpNet> {
    let given = if s.raw(key).is_some() {
        s.strings(key)
    } else {
        default.iter().map(|d| d.to_string()).collect()
    };
    let mut nets = Vec::new();
    for (i, cidr) in given.iter().enumerate() {
        match cidr
            .parse::<ipnet::IpNet>()
            .or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        {
            Ok(net) => nets.push(net),
            Err(_) => s.problem(&format!("{key}[{i}]"), "not an IP address or CIDR"),
        }
    }
    nets
}
