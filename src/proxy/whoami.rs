//! `upstream = "builtin:whoami"`: a demo app served by the gateway itself. It answers with the
//! request exactly as an upstream would receive it (identity headers included), as JSON.

use crate::config::app::AppConfig;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, header};

pub fn respond<B>(app: &AppConfig, req: Request<B>) -> Response<Body> {
    let mut headers = serde_json::Map::new();
    for (name, value) in req.headers() {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(serde_json::Value::Array(a)) => a.push(v.into()),
            Some(prev) => *prev = serde_json::json!([prev.clone(), v]),
            None => {
                headers.insert(name.as_str().to_string(), v.into());
            }
        }
    }
    let body = serde_json::json!({
        "app": app.id,
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "query": req.uri().query(),
        "headers": headers,
    });
    let mut r = Response::new(Body::from(
        serde_json::to_string_pretty(&body).unwrap_or_default(),
    ));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
