//! The serving workers: one single-threaded runtime per worker thread, each accepting on its
//! own listening socket (`SO_REUSEPORT` on Linux, so the kernel spreads connections over the
//! workers), HTTP/1.1 and HTTP/2 (h2c, or ALPN over TLS) with upgrades, and a graceful drain.
//!
//! The kernel spreads connections by a hash of their addresses, which leaves a few long-lived
//! ones (a front load balancer's pool, a benchmark's eight) unevenly spread: a worker that
//! accepts a connection while holding more than the least busy one hands it to that one
//! (`Balance`), so no worker holds two more than another. From then on a connection lives its
//! whole life on one worker, and so do the upstream connections it uses (see
//! `proxy::forward::Upstreams`): no work-stealing, no cross-thread wake-ups on the proxy path.
//! Everything else (revocation follower, seat sampler, signals) runs on the main runtime.

use super::Dispatch;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

thread_local! {
    /// 1-based index of the serving worker running on this thread; 0 elsewhere.
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Which serving worker this thread is (1..=workers), or 0 off the workers (CLI, main runtime).
pub fn worker_slot() -> usize {
    WORKER.with(Cell::get)
}

/// Caps glibc's allocator at one arena per serving worker (at least two). Left alone, glibc
/// gives every thread that meets a busy arena one of its own, up to eight per CPU: the database
/// connection threads and the runtime's each end up with one, holding their own freed memory
/// (about 10% more RSS with 100,000 live sessions). The serving workers, which allocate
/// little, keep an arena each. Called before the runtime starts.
pub fn limit_allocator_arenas(workers: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let arenas = workers.clamp(2, 1024) as libc::c_int;
        // SAFETY: `mallopt` sets a tunable of glibc's allocator under the allocator's own
        // lock; any value is valid for M_ARENA_MAX.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = workers;
}

/// Binds `n` listening sockets on `addr` (one per worker). With `SO_REUSEPORT` each worker
/// has its own accept queue; where that is unavailable they share one socket.
///
/// `SO_REUSEPORT` would also let a second server join a port another one already serves (the
/// kernel then splits the traffic between them), so [`ensure_free`] checks first that nobody
/// listens on `addr`.
pub fn bind(addr: SocketAddr, n: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    ensure_free(addr)?;
    let first = listener(addr, n > 1)?;
    // Port 0: the others join the port the first one got.
    let addr = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..n {
        let next = if cfg!(target_os = "linux") {
            listener(addr, true)?
        } else {
            all[0].try_clone()?
        };
        all.push(next);
    }
    Ok(all)
}

/// What [`ensure_free`] says when another process serves the address.
pub const ALREADY_SERVED: &str = "another process is already serving it";

/// Fails (`AddrInUse`, [`ALREADY_SERVED`]) when another socket is bound to `addr`, whether or
/// not it set `SO_REUSEPORT`: a socket without `SO_REUSEPORT` cannot join it. It keeps
/// `SO_REUSEADDR` (as the workers' sockets do), so connections of an earlier run still in
/// `TIME_WAIT` do not count. The probe is closed at once; the workers' sockets then share the
/// port among themselves. Port 0 (any free port) is always free.
pub fn ensure_free(addr: SocketAddr) -> std::io::Result<()> {
    use socket2::{Domain, Socket, Type};
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    probe.set_reuse_address(true)?;
    match probe.bind(&addr.into()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            ALREADY_SERVED,
        )),
        Err(e) => Err(e),
    }
}

fn listener(addr: SocketAddr, reuse_port: bool) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    #[cfg(target_os = "linux")]
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = reuse_port;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// How many connections each worker holds, and a way to hand one to another worker.
struct Balance {
    open: Vec<Counter>,
    inboxes: Vec<tokio::sync::mpsc::UnboundedSender<HandedOver>>,
}

/// A connection on its way to another worker, already counted there (so that a burst of
/// accepts on one worker does not pile onto the same other one before it has taken any).
type HandedOver = (std::net::TcpStream, SocketAddr, Held);

/// One worker's count, on a cache line of its own.
#[repr(align(64))]
#[derive(Default)]
struct Counter(std::sync::atomic::AtomicUsize);

impl Balance {
    /// Where worker `me` should serve a connection it just accepted: itself, unless it holds
    /// more connections than the least busy worker.
    fn pick(&self, me: usize) -> usize {
        let load = |i: usize| self.open[i].0.load(std::sync::atomic::Ordering::Relaxed);
        least_busy(me, (0..self.open.len()).map(load))
    }

    /// Counts a connection on worker `i` until the returned guard is dropped.
    fn hold(self: &Arc<Self>, i: usize) -> Held {
        self.open[i]
            .0
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Held(self.clone(), i)
    }
}

/// `me`, or the worker with the fewest connections when `me` has more.
fn least_busy(me: usize, loads: impl Iterator<Item = usize>) -> usize {
    let loads: smallvec::SmallVec<[usize; 16]> = loads.collect();
    let (best, &fewest) = loads
        .iter()
        .enumerate()
        .min_by_key(|(_, n)| **n)
        .unwrap_or((me, &0));
    if loads.get(me).is_some_and(|&mine| mine > fewest) {
        best
    } else {
        me
    }
}

struct Held(Arc<Balance>, usize);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.open[self.1]
            .0
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The serving workers, running until `drain` turns true; then each drains its connections.
pub struct Workers {
    threads: Vec<std::thread::JoinHandle<()>>,
    done: tokio::sync::mpsc::Receiver<()>,
    release: watch::Sender<bool>,
}

impl Workers {
    /// Starts one worker thread per listener.
    pub fn start<D: Dispatch>(
        listeners: Vec<std::net::TcpListener>,
        handler: D,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
        drain: watch::Receiver<bool>,
    ) -> std::io::Result<Workers> {
        let (done_tx, done) = tokio::sync::mpsc::channel(listeners.len().max(1));
        let (release, release_rx) = watch::channel(false);
        let (inboxes, mut inbox_rx): (Vec<_>, Vec<_>) = (0..listeners.len())
            .map(|_| tokio::sync::mpsc::unbounded_channel())
            .unzip();
        let balance = Arc::new(Balance {
            open: (0..listeners.len()).map(|_| Counter::default()).collect(),
            inboxes,
        });
        let mut threads = Vec::new();
        for (i, l) in listeners.into_iter().enumerate() {
            let (handler, tls, drain, done_tx, mut release_rx) = (
                handler.clone(),
                tls.clone(),
                drain.clone(),
                done_tx.clone(),
                release_rx.clone(),
            );
            let (balance, inbox) = (balance.clone(), inbox_rx.remove(0));
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let thread = std::thread::Builder::new()
                .name(format!("gatehouse-w{}", i + 1))
                .spawn(move || {
                    WORKER.with(|w| w.set(i + 1));
                    rt.block_on(async move {
                        let serve = async {
                            match tokio::net::TcpListener::from_std(l) {
                                Ok(l) => {
                                    let worker = Worker {
                                        index: i,
                                        balance,
                                        inbox,
                                    };
                                    accept_loop(l, worker, handler, tls, drain).await
                                }
                                Err(e) => tracing::error!(error = %e, "worker cannot listen"),
                            }
                            let _ = done_tx.send(()).await;
                            // Stay alive (driving this runtime's sockets, database connections
                            // included) until the process has closed what it shares.
                            std::future::pending::<()>().await
                        };
                        // Released: after the drain, or when the grace period ran out.
                        tokio::select! {
                            _ = serve => {}
                            _ = release_rx.wait_for(|r| *r) => {}
                        }
                    });
                })?;
            threads.push(thread);
        }
        Ok(Workers {
            threads,
            done,
            release,
        })
    }

    /// Waits until every worker has drained (or `grace` is over); true when all drained.
    pub async fn drained(&mut self, grace: Duration) -> bool {
        let n = self.threads.len();
        tokio::time::timeout(grace, async {
            for _ in 0..n {
                if self.done.recv().await.is_none() {
                    break;
                }
            }
        })
        .await
        .is_ok()
    }

    /// Lets the worker threads end (closing what connections remain) and joins them.
    pub fn stop(self) {
        let _ = self.release.send(true);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// A worker's place among the others: its index, the shared counts and its inbox.
struct Worker {
    index: usize,
    balance: Arc<Balance>,
    inbox: tokio::sync::mpsc::UnboundedReceiver<HandedOver>,
}

async fn accept_loop<D: Dispatch>(
    listener: tokio::net::TcpListener,
    mut worker: Worker,
    handler: D,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    mut drain: watch::Receiver<bool>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // This worker's own copy of the drain signal: its connections wait on it without touching
    // another core's memory.
    let (local_drain, local_rx) = watch::channel(false);
    loop {
        let (tcp, peer, held) = tokio::select! {
            _ = drain.wait_for(|d| *d) => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    // Small responses and streamed pieces go out at once (no Nagle delay).
                    let _ = tcp.set_nodelay(true);
                    let to = worker.balance.pick(worker.index);
                    let held = worker.balance.hold(to);
                    if to == worker.index {
                        (tcp, peer, held)
                    } else {
                        tracing::debug!(
                            from = worker.index + 1,
                            to = to + 1,
                            "connection handed to a less busy worker"
                        );
                        let Ok(std) = tcp.into_std() else { continue };
                        match worker.balance.inboxes[to].send((std, peer, held)) {
                            Ok(()) => continue,
                            // That worker has stopped: serve it here after all.
                            Err(back) => {
                                let (std, peer, _) = back.0;
                                match tokio::net::TcpStream::from_std(std) {
                                    Ok(tcp) => (tcp, peer, worker.balance.hold(worker.index)),
                                    Err(_) => continue,
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some((std, peer, held)) = worker.inbox.recv() => match tokio::net::TcpStream::from_std(std) {
                Ok(tcp) => (tcp, peer, held),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take over a connection from another worker");
                    continue;
                }
            },
        };
        let handler = handler.clone();
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let drain = local_rx.clone();
        match &acceptor {
            // Plain HTTP: HTTP/1.1 by hand on the hot path (hyper takes over the rest).
            None => {
                tokio::spawn(async move {
                    let _held = held;
                    let io = super::http1::ClientIo::Plain(tcp);
                    super::http1::serve(io, peer, handler, builder, watcher, drain).await
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _held = held;
                    // TLS handshakes (10 s at most) off the accept loop.
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp));
                    let Ok(Ok(stream)) = handshake.await else {
                        return;
                    };
                    // HTTP/2 (by ALPN) is hyper's; HTTP/1.1 takes the same path as plain HTTP.
                    if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
                        let io = super::http1::ClientIo::Tls(Box::new(stream));
                        return super::http1::serve(io, peer, handler, builder, watcher, drain)
                            .await;
                    }
                    serve_with_hyper(stream, peer, handler, builder, watcher).await
                });
            }
        }
    }
    let _ = local_drain.send(true);
    graceful.shutdown().await;
}

/// Serves a connection with hyper (HTTP/1.1 or HTTP/2, with upgrades), every request answered
/// by the gateway, until it closes or the graceful shutdown ends it.
pub async fn serve_with_hyper<I, D: Dispatch>(
    io: I,
    peer: SocketAddr,
    gateway: D,
    builder: hyper_util::server::conn::auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let reply = gateway.call(peer, req.map(axum::body::Body::new));
        async move { Ok::<_, std::convert::Infallible>(reply.await) }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    let _ = watcher.watch(conn.into_owned()).await;
}

#[cfg(test)]
mod tests {
    use super::{ALREADY_SERVED, bind, least_busy};
    use std::net::SocketAddr;

    fn refused(addr: SocketAddr, n: usize) -> std::io::Error {
        match bind(addr, n) {
            Ok(_) => panic!("bound {addr} while another socket serves it"),
            Err(e) => e,
        }
    }

    /// A port served by another socket (plain, or the workers of another server with
    /// `SO_REUSEPORT`, or a wildcard listener covering the address) is refused, naming why; the
    /// workers of one server share their port, and it is free again once they close.
    #[test]
    fn a_served_address_is_refused_and_the_workers_share_theirs() {
        let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = plain.local_addr().unwrap();
        let e = refused(addr, 2);
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
        assert_eq!(e.to_string(), ALREADY_SERVED);
        drop(plain);

        let ours = bind(addr, 3).expect("three workers on one port");
        assert_eq!(ours.len(), 3);
        assert!(ours.iter().all(|l| l.local_addr().unwrap() == addr));
        assert_eq!(refused(addr, 2).to_string(), ALREADY_SERVED);
        assert_eq!(refused(addr, 1).to_string(), ALREADY_SERVED);
        drop(ours);
        assert_eq!(bind(addr, 2).unwrap().len(), 2);

        let wildcard = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = wildcard.local_addr().unwrap().port();
        let e = refused(SocketAddr::from(([127, 0, 0, 1], port)), 2);
        assert_eq!(e.to_string(), ALREADY_SERVED);
    }

    #[test]
    fn a_worker_keeps_a_connection_unless_another_holds_fewer() {
        let pick = |me: usize, loads: &[usize]| least_busy(me, loads.iter().copied());
        assert_eq!(pick(0, &[0, 0]), 0);
        assert_eq!(pick(0, &[0, 1]), 0);
        assert_eq!(pick(0, &[1, 0]), 1);
        assert_eq!(pick(1, &[3, 5, 4]), 0);
        assert_eq!(pick(2, &[3, 3, 3]), 2);
        assert_eq!(pick(0, &[7]), 0);
    }

    /// Eight connections arriving on one worker (a worst-case hash) end up four and four.
    #[test]
    fn connections_arriving_on_one_worker_are_spread() {
        let mut loads = [0usize; 2];
        for _ in 0..8 {
            let to = least_busy(0, loads.iter().copied());
            loads[to] += 1;
        }
        assert_eq!(loads, [4, 4]);
    }
}
