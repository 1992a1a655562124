//! `/metrics`: Prometheus text with every proxied request counted by app and outcome (on the
//! fast path and through hyper alike), audit events, seats; served only to `metrics_allow`,
//! which a spoofed `X-Forwarded-For` does not get around.

use crate::harness::*;
use crate::upstream::Upstream;
use std::collections::HashMap;

/// The samples of a Prometheus text page: `name{label="v",...}` (labels sorted) → value.
fn samples(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let key = match series.split_once('{') {
            Some((name, labels)) => {
                let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                labels.sort();
                format!("{name}{{{}}}", labels.join(","))
            }
            None => series.to_string(),
        };
        out.insert(key, value.parse::<f64>().expect("sample value"));
    }
    out
}

async fn scrape(server: &Server, xff: Option<&str>) -> (u16, String, String) {
    let mut req = reqwest::Client::new().get(format!("{}/metrics", server.base));
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ctype, r.text().await.unwrap())
}

#[tokio::test]
async fn every_proxied_request_is_counted_by_app_and_outcome() {
    let upstream = Upstream::start();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let server = Server::start_with(Options {
        port: None,
        sections: format!(
            r#"{crm}
[[app]]
id = "dead"
host = "127.0.0.1:{{PORT}}"
path_prefix = "/dead/"
upstream = "{dead}"
allow_roles = ["*"]
modify_seats = 5
"#,
            crm = crm_app(&upstream.url, "2s")
        ),
        // The forward-auth calls below come from loopback, which must be a trusted proxy.
        env: vec![(
            "GATEHOUSE_SERVER__TRUSTED_PROXIES".into(),
            r#"["127.0.0.1/32"]"#.into(),
        )],
        ..Default::default()
    });
    let mut modify = signed_in(&server, "mod@example.com", &["modify@crm", "modify@dead"]).await;
    let mut limited = signed_in(&server, "lim@example.com", &["limited@crm"]).await;
    let mut nobody = server.browser();
    let refused = nobody.login("mod@example.com", "Wrong-password-1").await;
    assert_ne!(refused.status, 303, "{}", refused.body);

    for _ in 0..3 {
        assert_eq!(modify.get("/crm/orders").await.status, 200);
    }
    // Over HTTP/2 the request takes hyper's path instead of the fast one; it counts the same.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2
        .get(format!("{}/crm/orders", server.base))
        .header("cookie", modify.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.version(), r.status().as_u16()),
        (reqwest::Version::HTTP_2, 200)
    );
    assert_eq!(limited.get("/crm/admin/users").await.status, 403);
    assert_eq!(nobody.get("/crm/orders").await.status, 302);
    let r = reqwest::Client::new()
        .get(format!("{}/crm/orders", server.base))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(modify.get("/dead/x").await.status, 502);
    // Forward-auth answers are counted apart.
    let host = format!("127.0.0.1:{}", server.port);
    for (cookie, uri, want) in [
        (None, "/crm/orders", 401),
        (Some(modify.cookie_header()), "/crm/orders", 200),
        (Some(modify.cookie_header()), "/crm/admin/x", 200),
        (Some(limited.cookie_header()), "/crm/admin/x", 403),
    ] {
        let mut req = reqwest::Client::new()
            .get(format!("{}/.gatehouse/verify", server.base))
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-proto", "http")
            .header("x-forwarded-host", &host)
            .header("x-forwarded-uri", uri);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        assert_eq!(req.send().await.unwrap().status(), want, "{uri}");
    }

    let (status, ctype, text) = scrape(&server, None).await;
    assert_eq!(status, 200, "{text}");
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    assert!(
        text.contains("# TYPE gatehouse_proxy_requests_total counter"),
        "{text}"
    );
    let s = samples(&text);
    let proxied = |app: &str, outcome: &str| {
        s.get(&format!(
            "gatehouse_proxy_requests_total{{app=\"{app}\",outcome=\"{outcome}\"}}"
        ))
        .copied()
        .unwrap_or_else(|| panic!("no {app}/{outcome} in {text}"))
    };
    assert_eq!(proxied("crm", "forwarded"), 4.0);
    assert_eq!(proxied("crm", "denied"), 1.0);
    assert_eq!(proxied("crm", "unauthenticated"), 2.0);
    assert_eq!(proxied("crm", "upstream_unreachable"), 0.0);
    assert_eq!(proxied("dead", "upstream_unreachable"), 1.0);
    assert_eq!(proxied("dead", "forwarded"), 0.0);
    let verified = |outcome: &str| {
        s.get(&format!(
            "gatehouse_verify_requests_total{{app=\"crm\",outcome=\"{outcome}\"}}"
        ))
        .copied()
        .unwrap_or_else(|| panic!("no verify/{outcome} in {text}"))
    };
    assert_eq!(verified("allowed"), 2.0);
    assert_eq!(verified("unauthenticated"), 1.0);
    assert_eq!(verified("denied"), 1.0);
    // Forward-auth answers are not proxied requests (the proxied counts above came after them).
    assert!(
        !s.keys()
            .any(|k| k.starts_with("gatehouse_proxy_requests_total") && k.contains("allowed")),
        "{text}"
    );
    let audited = |action: &str, outcome: &str| {
        s.get(&format!(
            "gatehouse_audit_events_total{{action=\"{action}\",outcome=\"{outcome}\"}}"
        ))
        .copied()
        .unwrap_or(0.0)
    };
    assert_eq!(audited("signin", "success"), 2.0, "{text}");
    assert_eq!(audited("signin", "failure"), 1.0, "{text}");
    // The two refusals of the limited user (proxied and through forward-auth) are one event:
    // denied requests are audited at most once a minute per user, app and reason.
    assert_eq!(audited("proxy.denied", "denied"), 1.0, "{text}");
    assert!(s["gatehouse_sessions_cached"] >= 2.0, "{text}");
    // The modify user took a seat of `dead` on the way to its 502.
    assert_eq!(s["gatehouse_seats_in_use{app=\"dead\"}"], 1.0, "{text}");
    assert_eq!(s["gatehouse_seats_licensed{app=\"dead\"}"], 5.0, "{text}");
    assert!(
        !s.contains_key("gatehouse_seats_in_use{app=\"crm\"}"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "gatehouse_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    // Nothing about anyone: no address, no session cookie.
    let token = &modify.cookies["gatehouse_session"];
    for secret in ["mod@example.com", "lim@example.com", token] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[tokio::test]
async fn metrics_are_served_only_to_the_allowed_addresses() {
    // Loopback is not allowed here, and the client's own X-Forwarded-For is not believed.
    let server = Server::start_with(Options {
        port: None,
        sections: String::new(),
        env: vec![(
            "GATEHOUSE_SERVER__METRICS_ALLOW".into(),
            r#"["10.0.0.0/8"]"#.into(),
        )],
        ..Default::default()
    });
    for xff in [None, Some("10.1.2.3"), Some("10.1.2.3, 127.0.0.1")] {
        let (status, _, text) = scrape(&server, xff).await;
        assert_eq!(status, 403, "{xff:?}: {text}");
        assert!(!text.contains("gatehouse_"), "{text}");
    }

    // Behind a trusted proxy, the address it saw decides.
    let server = Server::start_with(Options {
        port: None,
        sections: String::new(),
        env: vec![
            (
                "GATEHOUSE_SERVER__METRICS_ALLOW".into(),
                r#"["10.0.0.0/8"]"#.into(),
            ),
            (
                "GATEHOUSE_SERVER__TRUSTED_PROXIES".into(),
                r#"["127.0.0.1"]"#.into(),
            ),
        ],
        ..Default::default()
    });
    assert_eq!(scrape(&server, Some("10.1.2.3")).await.0, 200);
    assert_eq!(scrape(&server, Some("192.0.2.7")).await.0, 403);
    assert_eq!(scrape(&server, Some("10.1.2.3, 192.0.2.7")).await.0, 403);
}

/// What administrators deprovision at the command line (another process) shows on every
/// instance's `/metrics`: people blocked and deleted, and the sessions that ended with them.
#[tokio::test]
async fn deprovisioning_by_administrators_is_counted_for_every_instance() {
    let server = Server::start();
    let _pat = signed_in(&server, "pat@example.test", &["limited"]).await;
    let _sam = signed_in(&server, "sam@example.test", &["limited"]).await;
    server.admin_ok(&["user", "block", "--email", "pat@example.test"]);
    server.admin_ok(&["session", "revoke", "--email", "sam@example.test"]);
    server.admin_ok(&["user", "delete", "--email", "sam@example.test"]);
    let (status, _, text) = scrape(&server, None).await;
    assert_eq!(status, 200);
    let s = samples(&text);
    let get = |step: &str| {
        s.get(&format!(
            "gatehouse_admin_deprovisioning_total{{step=\"{step}\"}}"
        ))
        .copied()
    };
    assert_eq!(get("users_blocked"), Some(1.0), "{text}");
    assert_eq!(get("users_deleted"), Some(1.0), "{text}");
    assert_eq!(get("sessions_ended"), Some(2.0), "pat's and sam's: {text}");
}
