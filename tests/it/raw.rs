//! Raw HTTP/1.x over TCP, shared by the test modules that need exact bytes on the wire: a
//! client (`Client`, reading `Resp`onses byte by byte) and a scripted upstream (`Scripted`)
//! that records each request's raw head (`RawRequest`) and answers with scripted bytes (`Reply`).

#![allow(dead_code)]

use crate::harness::*;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// No single step of these tests waits longer than this: a test fails, it never hangs.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(IO_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {IO_TIMEOUT:?}: {what}"))
}

/// Waits until the other end of a loopback connection has read everything sent to it: the
/// kernel's receive queue of its socket (local address `theirs`, remote `ours`, as listed in
/// `/proc/net/tcp`) is empty, or the socket is gone. Tests that split what they send use this
/// so that the gateway reads each piece on its own, instead of hoping a pause is long enough.
pub async fn peer_has_read(ours: std::net::SocketAddr, theirs: std::net::SocketAddr) {
    let hex = |a: std::net::SocketAddr| match a {
        std::net::SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            v4.port()
        ),
        std::net::SocketAddr::V6(_) => panic!("peer_has_read: IPv4 loopback only ({a})"),
    };
    let (local, remote) = (hex(theirs), hex(ours));
    let unread = || -> Option<u64> {
        let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
        table.lines().skip(1).find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() > 4 && f[1] == local && f[2] == remote)
                .then(|| u64::from_str_radix(f[4].split(':').nth(1)?, 16).ok())
                .flatten()
        })
    };
    let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
    loop {
        match unread() {
            None | Some(0) => return,
            Some(n) if tokio::time::Instant::now() > deadline => {
                panic!("{theirs} left {n} bytes from {ours} unread for {IO_TIMEOUT:?}")
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client.

/// One response as it came over the wire.
#[derive(Debug)]
pub struct Resp {
    pub version: String,
    pub status: u16,
    /// (name as sent, value) in order.
    pub headers: Vec<(String, String)>,
    /// The body, decoded from its framing.
    pub body: Vec<u8>,
    /// Trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
}

impl Resp {
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// The header's only value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(all.len() <= 1, "{name} sent {} times: {self:?}", all.len());
        all.first().copied()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }
}

/// A client connection to the gateway, reading responses byte by byte.
pub struct Client {
    pub tcp: TcpStream,
    pub buf: Vec<u8>,
    pub host: String,
}

impl Client {
    pub async fn connect(server: &Server) -> Client {
        let tcp = within("connect", TcpStream::connect(("127.0.0.1", server.port)))
            .await
            .expect("connect to the gateway");
        // Each `send` goes out at once (no Nagle wait for the gateway's acknowledgement).
        tcp.set_nodelay(true).expect("TCP_NODELAY");
        Client {
            tcp,
            buf: Vec::new(),
            host: format!("127.0.0.1:{}", server.port),
        }
    }

    /// A request head (no body) with `Host` and the given header lines.
    pub fn head(&self, method: &str, target: &str, headers: &[&str]) -> String {
        let mut s = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for h in headers {
            s.push_str(h);
            s.push_str("\r\n");
        }
        s.push_str("\r\n");
        s
    }

    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        within("write to the gateway", self.tcp.write_all(bytes.as_ref()))
            .await
            .expect("write to the gateway");
    }

    /// Waits until the gateway has read everything sent so far (see [`peer_has_read`]).
    pub async fn wait_read(&self) {
        let ours = self.tcp.local_addr().unwrap();
        peer_has_read(ours, self.tcp.peer_addr().unwrap()).await;
    }

    /// Reads once more into the buffer; 0 at the end of the stream (a reset counts as one).
    pub async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        match within("read from the gateway", self.tcp.read(&mut chunk)).await {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                n
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Err(e) => panic!("read from the gateway: {e}"),
        }
    }

    /// The next line, without its CRLF.
    pub async fn line(&mut self) -> String {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return line;
            }
            if self.fill().await == 0 {
                panic!(
                    "connection closed in the middle of a line: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
    }

    pub async fn exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            if self.fill().await == 0 {
                panic!("connection closed after {} of {n} bytes", self.buf.len());
            }
        }
        self.buf.drain(..n).collect()
    }

    /// Everything until the gateway closes the connection.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        while self.fill().await > 0 {}
        std::mem::take(&mut self.buf)
    }

    /// The gateway closes the connection with nothing more to say.
    pub async fn expect_eof(&mut self) {
        let rest = self.read_to_end().await;
        assert!(
            rest.is_empty(),
            "bytes after the last response: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }

    /// The next response, interim (1xx) ones included. `head_only`: the answer to a HEAD.
    pub async fn response(&mut self, head_only: bool) -> Resp {
        let status_line = self.line().await;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("").to_string();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a status line: {status_line:?}"));
        assert!(
            version == "HTTP/1.1" || version == "HTTP/1.0",
            "{status_line:?}"
        );
        let mut headers = Vec::new();
        loop {
            let line = self.line().await;
            if line.is_empty() {
                break;
            }
            let (n, v) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("not a header line: {line:?}"));
            assert!(!n.is_empty() && !n.contains(' '), "header name {n:?}");
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let mut r = Resp {
            version,
            status,
            headers,
            body: Vec::new(),
            trailers: Vec::new(),
        };
        if head_only || (100..200).contains(&status) || status == 204 || status == 304 {
            return r;
        }
        let te = r.all("transfer-encoding").join(",");
        if !te.is_empty() {
            let last = te.rsplit(',').next().unwrap_or("").trim();
            assert!(last.eq_ignore_ascii_case("chunked"), "framing {te:?}");
            assert!(
                r.all("content-length").is_empty(),
                "both Transfer-Encoding and Content-Length: {r:?}"
            );
            loop {
                let size_line = self.line().await;
                let size = size_line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size, 16)
                    .unwrap_or_else(|_| panic!("chunk size line {size_line:?}"));
                if size == 0 {
                    loop {
                        let t = self.line().await;
                        if t.is_empty() {
                            break;
                        }
                        let (n, v) = t.split_once(':').expect("trailer field");
                        r.trailers.push((n.to_string(), v.trim().to_string()));
                    }
                    break;
                }
                let data = self.exact(size).await;
                r.body.extend_from_slice(&data);
                assert_eq!(self.exact(2).await, b"\r\n", "chunk not ended by CRLF");
            }
        } else if let Some(len) = r.header("content-length") {
            let len: usize = len.parse().expect("numeric content-length");
            r.body = self.exact(len).await;
        } else {
            r.body = self.read_to_end().await;
        }
        r
    }

    /// The next final response, skipping interim ones.
    pub async fn final_response(&mut self, head_only: bool) -> Resp {
        loop {
            let r = self.response(head_only).await;
            if !(100..200).contains(&r.status) {
                return r;
            }
        }
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// A scripted upstream: reads request heads (and `Content-Length` bodies) and writes exactly the
// bytes a script returns.

#[derive(Clone, Debug)]
pub struct RawRequest {
    /// Which upstream connection carried it (0 for the first one accepted).
    pub conn: usize,
    pub method: String,
    pub target: String,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn all(&self, name: &str) -> Vec<String> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

pub struct Reply {
    /// Written one after the other, each once the gateway has read the one before (see
    /// [`peer_has_read`]), so the gateway reads them separately.
    pub parts: Vec<Vec<u8>>,
    /// Close the connection after the reply (without saying so unless the bytes do).
    pub close: bool,
}

impl Reply {
    pub fn keep(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply {
            parts: vec![bytes.into()],
            close: false,
        }
    }
    pub fn close(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply {
            parts: vec![bytes.into()],
            close: true,
        }
    }
}

type Script = Arc<dyn Fn(&RawRequest) -> Reply + Send + Sync>;

pub struct Scripted {
    pub url: String,
    seen: Arc<Mutex<Vec<RawRequest>>>,
    /// Replies written whole (and their connection shut down, for `close` ones).
    replied: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Scripted {
    pub fn start(script: impl Fn(&RawRequest) -> Reply + Send + Sync + 'static) -> Scripted {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let seen: Arc<Mutex<Vec<RawRequest>>> = Arc::default();
        let script: Script = Arc::new(script);
        let replied: Arc<AtomicUsize> = Arc::default();
        let (seen2, replied2) = (seen.clone(), replied.clone());
        let task = tokio::spawn(async move {
            let conns = AtomicUsize::new(0);
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let conn = conns.fetch_add(1, Ordering::SeqCst);
                let (script, seen, replied) = (script.clone(), seen2.clone(), replied2.clone());
                tokio::spawn(serve_scripted(tcp, conn, script, seen, replied));
            }
        });
        Scripted {
            url: format!("http://127.0.0.1:{port}"),
            seen,
            replied,
            task,
        }
    }

    pub fn seen(&self) -> Vec<RawRequest> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `n` replies have been written whole (a `close` one: and its connection shut
    /// down), so that what they sent is on its way to the gateway.
    pub async fn wait_replied(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
        while self.replied.load(Ordering::SeqCst) < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the scripted upstream wrote {} of {n} replies in {IO_TIMEOUT:?}",
                self.replied.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_scripted(
    mut tcp: TcpStream,
    conn: usize,
    script: Script,
    seen: Arc<Mutex<Vec<RawRequest>>>,
    replied: Arc<AtomicUsize>,
) {
    // Each write goes out at once: with Nagle's algorithm a small part waits for the gateway's
    // (delayed) acknowledgement of the one before, and would arrive after the test moved on.
    let _ = tcp.set_nodelay(true);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            match tcp.read(&mut chunk).await {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let mut words = head.split(' ');
        let method = words.next().unwrap_or("").to_string();
        let target = words.next().unwrap_or("").to_string();
        let mut req = RawRequest {
            conn,
            method,
            target,
            head,
            body: Vec::new(),
        };
        if req
            .all("transfer-encoding")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("chunked"))
        {
            // A chunked body (the gateway's hyper path sends one): decoded, trailers skipped.
            let Some(body) = read_chunked(&mut tcp, &mut buf).await else {
                return;
            };
            req.body = body;
        } else {
            let len: usize = req
                .all("content-length")
                .first()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < len {
                match tcp.read(&mut chunk).await {
                    Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                    _ => return,
                }
            }
            req.body = buf.drain(..len).collect();
        }
        seen.lock().unwrap().push(req.clone());
        let reply = script(&req);
        for (i, part) in reply.parts.iter().enumerate() {
            if i > 0
                && let (Ok(ours), Ok(theirs)) = (tcp.local_addr(), tcp.peer_addr())
            {
                peer_has_read(ours, theirs).await;
            }
            if tcp.write_all(part).await.is_err() {
                return;
            }
        }
        if reply.close {
            let _ = tcp.shutdown().await;
            replied.fetch_add(1, Ordering::SeqCst);
            return;
        }
        replied.fetch_add(1, Ordering::SeqCst);
    }
}

/// Reads a chunked body from `buf` (refilled from `tcp`); `None` if the connection ends first.
async fn read_chunked(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 16 * 1024];
    let mut body = Vec::new();
    // The next CRLF-ended line, without its CRLF.
    macro_rules! line {
        () => {
            loop {
                if let Some(i) = find(buf, b"\r\n") {
                    let l: Vec<u8> = buf.drain(..i + 2).take(i).collect();
                    break l;
                }
                match tcp.read(&mut chunk).await {
                    Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                    _ => return None,
                }
            }
        };
    }
    loop {
        let size_line = line!();
        let size = String::from_utf8_lossy(&size_line);
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            while !line!().is_empty() {}
            return Some(body);
        }
        while buf.len() < size + 2 {
            match tcp.read(&mut chunk).await {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
        body.extend(buf.drain(..size));
        buf.drain(..2);
    }
}

pub fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
