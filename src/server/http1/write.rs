//! Responses written to the client by the engine: a gateway response (any body), and the
//! header and date helpers the relay uses for its own response heads.

use super::Conn;
use axum::body::Body;
use axum::http::{Response, StatusCode, header};
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;

/// Writes a response made by the gateway (any body: sized bodies with `Content-Length`, others
/// chunked).
pub async fn write_response<S>(
    c: &mut Conn<S>,
    resp: Response<Body>,
    head_only: bool,
    close: bool,
) -> std::io::Result<()> {
    let (parts, mut body) = resp.into_parts();
    let status = parts.status;
    let no_body = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let size = http_body::Body::size_hint(&body).exact();
    let out = &mut c.out;
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (n, v) in parts.headers.iter() {
        if n == header::CONTENT_LENGTH || n == header::TRANSFER_ENCODING || n == header::CONNECTION
        {
            continue;
        }
        put_header(out, n.as_str().as_bytes(), v.as_bytes());
    }
    if !parts.headers.contains_key(header::DATE) {
        put_header(out, b"date", &http_date());
    }
    let chunked = !no_body && size.is_none();
    if !no_body {
        match size {
            Some(n) => put_header(out, b"content-length", n.to_string().as_bytes()),
            None => put_header(out, b"transfer-encoding", b"chunked"),
        }
    }
    if close {
        put_header(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    if head_only || no_body {
        c.io.write_all(&c.out).await?;
        return c.io.flush().await;
    }
    // Small bodies go out with the head in one write.
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(std::io::Error::other("response body failed"));
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        if chunked {
            c.out
                .extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        }
        if c.out.len() + data.len() <= 64 * 1024 {
            c.out.extend_from_slice(&data);
            if chunked {
                c.out.extend_from_slice(b"\r\n");
            }
        } else {
            c.io.write_all(&c.out).await?;
            c.out.clear();
            c.io.write_all(&data).await?;
            if chunked {
                c.out.extend_from_slice(b"\r\n");
            }
        }
    }
    if chunked {
        c.out.extend_from_slice(b"0\r\n\r\n");
    }
    if !c.out.is_empty() {
        c.io.write_all(&c.out).await?;
    }
    c.io.flush().await
}

pub fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The current time as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`), formatted once a
/// second per thread.
pub fn http_date() -> [u8; 29] {
    use std::cell::Cell;
    thread_local! {
        static CACHE: Cell<(i64, [u8; 29])> = const { Cell::new((i64::MIN, [0; 29])) };
    }
    let now = crate::store::now();
    CACHE.with(|c| {
        let (at, text) = c.get();
        if at == now {
            return text;
        }
        let fmt = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        let mut out = [0u8; 29];
        if let Ok(t) = time::OffsetDateTime::from_unix_timestamp(now)
            && let Ok(s) = t.format(&fmt)
            && s.len() == 29
        {
            out.copy_from_slice(s.as_bytes());
        }
        c.set((now, out));
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_imf_fixdate() {
        let d = http_date();
        let s = std::str::from_utf8(&d).unwrap();
        assert!(s.ends_with(" GMT") && s.as_bytes()[3] == b',', "{s}");
    }
}
