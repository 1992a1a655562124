//! Kept-alive upstream connections: the one a client connection used last, the worker's idle
//! ones (`forward::Upstreams`), or a new one.

use super::Conn;
use super::exchange::Failure;
use crate::proxy::Proxy;
use crate::proxy::forward::Target;
use bytes::BytesMut;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// An idle upstream connection older than this is not reused.
const KEEP_IDLE: Duration = Duration::from_secs(60);

/// A kept-alive HTTP/1.1 connection to an upstream.
pub struct UpConn {
    pub(super) tcp: TcpStream,
    pub(super) buf: BytesMut,
    pub(super) idle_since: Instant,
}

impl UpConn {
    pub fn fresh(&self) -> bool {
        self.idle_since.elapsed() < KEEP_IDLE
    }
}

/// A connection to app `idx`'s upstream: the one this client used last, an idle one of this
/// worker, or a new one. The flag says whether it was used before.
pub(super) async fn connection(
    proxy: &Proxy,
    idx: usize,
    target: &Target,
    c: &mut Conn,
    new_only: bool,
) -> Result<(UpConn, bool), Failure> {
    let kept = match c.slot.upstream.take() {
        Some((i, up)) if i == idx && up.fresh() && still_open(&up) => Some(up),
        Some((i, up)) => {
            proxy.upstreams.give_back(i, up);
            None
        }
        None => None,
    };
    if !new_only && let Some(up) = kept.or_else(|| proxy.upstreams.take_idle(idx)) {
        return Ok((up, true));
    }
    let app = &proxy.config.apps[idx];
    match tokio::time::timeout(app.connect_timeout, TcpStream::connect(&target.connect)).await {
        Ok(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            Ok((
                UpConn {
                    tcp,
                    buf: BytesMut::with_capacity(16 * 1024),
                    idle_since: Instant::now(),
                },
                false,
            ))
        }
        Ok(Err(_)) => Err(Failure::Upstream("cannot connect")),
        Err(_) => Err(Failure::Upstream("connect timed out")),
    }
}

/// Whether a kept connection can carry another request: nothing arrived on it since its last
/// response (no end-of-stream, and no stray bytes that would pass for the next answer). Costs
/// no system call unless the socket was reported readable.
pub fn still_open(up: &UpConn) -> bool {
    let mut probe = [0u8; 1];
    matches!(up.tcp.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}
