//! `upstream = "builtin:whoami"`: a demo app served by the gateway itself. It answers with the
//! request exactly as an upstream would receive it (identity headers included): as JSON to API
//! clients, and to a browser as a small page with the identity, the signed assertion's claims
//! (decoded for reading; an app verifies them with the gateway's keys) and a sign-out button.

use crate::config::app::AppConfig;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, header};
use base64::Engine;

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
    let browser = crate::web::request::accepts_html(req.headers());
    let body = serde_json::json!({
        "app": app.id,
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "query": req.uri().query(),
        "headers": headers,
    });
    let (text, content_type) = if browser {
        (
            page(app, &headers),
            HeaderValue::from_static("text/html; charset=utf-8"),
        )
    } else {
        (
            serde_json::to_string_pretty(&body).unwrap_or_default(),
            HeaderValue::from_static("application/json"),
        )
    };
    let mut r = Response::new(Body::from(text));
    r.headers_mut().insert(header::CONTENT_TYPE, content_type);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    r
}

fn esc(s: &str) -> String {
    minijinja::HtmlEscape(s).to_string()
}

/// The identity headers of the app's preset, then the assertion's claims.
fn page(app: &AppConfig, headers: &serde_json::Map<String, serde_json::Value>) -> String {
    let value = |name: &str| -> Option<String> {
        match headers.get(&name.to_ascii_lowercase())? {
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    };
    let h = &app.headers;
    let mut rows = String::new();
    for (label, name) in [
        ("User id", &h.user),
        ("Email", &h.email),
        ("Name", &h.name),
        ("Roles", &h.roles),
        ("Organization", &h.org),
        ("Seat", &h.seat),
    ] {
        if let Some(v) = value(name) {
            rows.push_str(&format!(
                "<dt>{}</dt><dd><code>{}</code>: {}</dd>",
                esc(label),
                esc(name),
                esc(&v)
            ));
        }
    }
    let claims = value(&h.assertion)
        .and_then(|jws| {
            let payload = jws.split('.').nth(1)?.to_string();
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default());
    let claims = match claims {
        Some(c) => format!(
            "<h2>Signed assertion ({})</h2><p class=\"hint\">Decoded for reading; an app verifies it with the keys at <code>/.well-known/jwks.json</code>.</p><pre>{}</pre>",
            esc(&h.assertion),
            esc(&c)
        ),
        None => "<p>No signed assertion in this request.</p>".to_string(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Who am I · {app_id} · Gatehouse</title>\
         <style>body{{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}}\
         header{{max-width:40rem;margin:2rem auto 0;font-weight:700;color:#1f5ed6;padding:0 .5rem}}\
         main{{max-width:40rem;margin:1rem auto;background:#fff;padding:1.5rem 2rem;border-radius:10px}}\
         dl{{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}}dt{{font-weight:600}}\
         dd{{margin:0;overflow-wrap:anywhere}}pre{{background:#f4f5f7;padding:1rem;white-space:pre-wrap;overflow-wrap:anywhere}}\
         @media (max-width:42rem){{header{{margin:1.25rem .5rem 0;padding:0 1.25rem}}main{{margin:.6rem .5rem 2rem;padding:1.25rem}}}}\
         .hint{{color:#5a6272;font-size:.9rem}}a.button{{display:inline-block;margin-top:1rem;padding:.6rem 1rem;\
         background:#1f5ed6;color:#fff;border-radius:6px;text-decoration:none}}</style></head>\
         <body><header>Gatehouse</header><main><h1>Who am I</h1>\
         <p>What the app <code>{app_id}</code> receives from the gateway for you.</p>\
         <dl>{rows}</dl>{claims}\
         <p><a class=\"button\" href=\"/.gatehouse/logout\">Sign out</a></p></main></body></html>",
        app_id = esc(&app.id),
    )
}
