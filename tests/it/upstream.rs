//! A real upstream application for proxy tests: an HTTP/1.1 server (hyper) on a loopback port,
//! running on its own runtime thread, that records every request it receives.
//!
//! Paths (matched on the last segment, so any app prefix works):
//! - `…/download?bytes=N` streams N bytes (`x` repeated) without buffering them;
//! - `…/upload` reads the request body as a stream and answers `{"bytes": N}`;
//! - `…/body` answers with the request body exactly as it arrived (decoded from its framing);
//! - `…/never` never answers;
//! - `…/ws` accepts a WebSocket and echoes every message;
//! - anything else echoes the request as JSON: `method`, `path`, `query`, `headers` (pairs,
//!   every occurrence, names lowercased).

#![allow(dead_code)]

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio_tungstenite::tungstenite::protocol::Role;

type Body = BoxBody<Bytes, Infallible>;

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    /// (lowercased name, value) for every header line.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }
    pub fn one(&self, name: &str) -> Option<String> {
        let all = self.all(name);
        assert!(all.len() <= 1, "header {name} arrived {} times", all.len());
        all.into_iter().next()
    }
}

pub struct Upstream {
    pub port: u16,
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    pub fn start() -> Upstream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let seen2 = seen.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let seen = seen2.clone();
                            tokio::spawn(async move {
                                let svc = hyper::service::service_fn(move |req| {
                                    handle(req, seen.clone())
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), svc)
                                    .with_upgrades()
                                    .await;
                            });
                        }
                    }
                }
            });
            // Dropping the runtime aborts every connection task: the port is really closed.
            rt.shutdown_background();
        });
        Upstream {
            port,
            url: format!("http://127.0.0.1:{port}"),
            seen,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The last request whose path starts with `prefix`.
    pub fn last(&self, prefix: &str) -> Seen {
        self.seen()
            .into_iter()
            .rev()
            .find(|s| s.path_and_query.starts_with(prefix))
            .unwrap_or_else(|| panic!("upstream saw no request for {prefix}"))
    }

    /// Stops listening and drops every open connection.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(http_body_util::Full::new(body.into()).boxed())
        .unwrap()
}

async fn handle(
    req: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<Body>, Infallible> {
    let record = Seen {
        method: req.method().to_string(),
        path_and_query: req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    };
    seen.lock().unwrap().push(record.clone());
    let path = req.uri().path().to_string();
    let last = path.rsplit('/').next().unwrap_or("");
    match last {
        "download" => {
            let total: u64 = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("bytes="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            const CHUNK: usize = 64 * 1024;
            let chunk = Bytes::from(vec![b'x'; CHUNK]);
            let stream = futures_util::stream::unfold(total, move |left| {
                let chunk = chunk.clone();
                async move {
                    if left == 0 {
                        return None;
                    }
                    let n = left.min(CHUNK as u64);
                    Some((
                        Ok::<_, Infallible>(Frame::data(chunk.slice(..n as usize))),
                        left - n,
                    ))
                }
            });
            Ok(Response::builder()
                .header("content-type", "application/octet-stream")
                .header("content-length", total.to_string())
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .unwrap())
        }
        "upload" => {
            let mut body = req.into_body();
            let mut n: u64 = 0;
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => {
                        if let Some(d) = f.data_ref() {
                            n += d.len() as u64;
                        }
                    }
                    Err(_) => break,
                }
            }
            Ok(full(
                StatusCode::OK,
                "application/json",
                serde_json::json!({ "bytes": n }).to_string(),
            ))
        }
        "body" => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => Bytes::from_static(b"<body failed>"),
            };
            Ok(full(StatusCode::OK, "application/octet-stream", body))
        }
        "never" => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        "ws" => {
            let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
                return Ok(full(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    "not a websocket",
                ));
            };
            let accept =
                tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
            tokio::spawn(async move {
                if let Ok(upgraded) = hyper::upgrade::on(req).await {
                    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        None,
                    )
                    .await;
                    while let Some(Ok(msg)) = ws.next().await {
                        if msg.is_close() {
                            break;
                        }
                        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                            break;
                        }
                    }
                }
            });
            Ok(Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-accept", accept)
                .body(http_body_util::Empty::new().boxed())
                .unwrap())
        }
        _ => {
            let body = serde_json::json!({
                "method": record.method,
                "path": path,
                "query": req.uri().query(),
                "headers": record.headers,
            });
            Ok(full(StatusCode::OK, "application/json", body.to_string()))
        }
    }
}
