//! Who is calling: the client address (believing `X-Forwarded-For` only from
//! `[server] trusted_proxies`) and the user agent.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use ipnet::IpNet;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: IpAddr,
    pub user_agent: String,
}

/// Walks `X-Forwarded-For` from the right, skipping trusted proxies: the first untrusted address
/// is the client. A client cannot forge its way past a proxy that appends what it saw.
pub fn client_ip(peer: IpAddr, xff: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut ip = peer;
    if let Some(xff) = xff {
        for hop in xff.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(h) => {
                    ip = h;
                    if !is_trusted(&h) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    }
    ip
}

/// Application state that knows the trusted proxies.
pub trait TrustedProxies {
    fn trusted_proxies(&self) -> &[IpNet];
}

impl<T: TrustedProxies> TrustedProxies for Arc<T> {
    fn trusted_proxies(&self) -> &[IpNet] {
        T::trusted_proxies(self)
    }
}

impl<S> FromRequestParts<S> for ClientInfo
where
    S: TrustedProxies + Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let xff = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(256)
            .collect();
        Ok(ClientInfo {
            ip: client_ip(peer, xff, state.trusted_proxies()),
            user_agent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(client_ip(client, Some("1.2.3.4"), &trusted), client);
        assert_eq!(
            client_ip(proxy, Some("1.2.3.4, 203.0.113.9"), &trusted),
            client
        );
        assert_eq!(client_ip(proxy, Some("garbage"), &trusted), proxy);
    }
}
