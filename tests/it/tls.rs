//! HTTPS served by the gateway itself: `gatehouse dev-cert` and `[server.tls]`.

use crate::harness::*;
use std::process::Command;

fn dev_cert(dir: &TempDir) -> (String, String) {
    let (cert, key) = (dir.path("dev.pem"), dir.path("dev.key"));
    let out = Command::new(BIN)
        .args(["dev-cert", "--cert"])
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert.display().to_string(), key.display().to_string())
}

#[tokio::test]
async fn the_gateway_serves_https_with_a_dev_certificate_over_http1_and_http2() {
    let certs = TempDir::new();
    let (cert, key) = dev_cert(&certs);
    let upstream = crate::upstream::Upstream::start();
    let server = Server::start_with(Options {
        port: None,
        sections: format!(
            "[server.tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n\n\
             [[app]]\nid = \"whoami\"\nhost = \"localhost:{{PORT}}\"\npath_prefix = \"/whoami/\"\n\
             upstream = \"builtin:whoami\"\nallow_roles = [\"*\"]\n\n\
             [[app]]\nid = \"crm\"\nhost = \"localhost:{{PORT}}\"\npath_prefix = \"/crm/\"\n\
             upstream = \"{}\"\nallow_roles = [\"*\"]\n",
            upstream.url
        ),
        env: vec![(
            "GATEHOUSE_SERVER__PUBLIC_URL".into(),
            "https://localhost:{PORT}".into(),
        )],
        ..Default::default()
    });
    server.create_user("tls@example.com", GOOD_PASSWORD, &["limited"]);
    let root = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let base = format!("https://localhost:{}", server.port);
    let client = |http1: bool| {
        let mut b = reqwest::Client::builder()
            .add_root_certificate(root.clone())
            .resolve("localhost", ([127, 0, 0, 1], server.port).into())
            .redirect(reqwest::redirect::Policy::none());
        if http1 {
            b = b.http1_only();
        }
        b.build().unwrap()
    };

    let r = client(false)
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "ALPN h2");
    let r = client(true)
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_11);

    // Sign in over HTTPS: host-prefixed, Secure cookies; then the proxy answers over TLS.
    let mut b = Browser::new(&base);
    b.client = client(false);
    let r = b.login("tls@example.com", GOOD_PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let set = r.set_cookies().join("\n");
    assert!(
        set.contains("__Host-gatehouse_session=") && set.contains("Secure"),
        "{set}"
    );
    let r = b.get("/whoami/").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("tls@example.com"), "{}", r.body);

    // An app behind the gateway over HTTPS, with HTTP/2 and with HTTP/1.1 (several requests on
    // one kept-alive TLS connection, each answered in full): the identity reaches the upstream
    // and the gateway's cookie does not.
    let r = b.get("/crm/over-h2").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let h1 = client(true);
    for i in 0..5 {
        let r = h1
            .get(format!("{base}/crm/over-h1/{i}"))
            .header("cookie", b.cookie_header())
            .send()
            .await
            .unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_11);
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["path"], format!("/crm/over-h1/{i}"), "{body}");
    }
    for path in ["/crm/over-h2", "/crm/over-h1/4"] {
        let seen = upstream.last(path);
        assert_eq!(
            seen.one("x-gatehouse-email").as_deref(),
            Some("tls@example.com"),
            "{path}"
        );
        assert_eq!(
            seen.one("x-forwarded-proto").as_deref(),
            Some("https"),
            "{path}"
        );
        assert!(seen.one("cookie").is_none(), "{path}");
    }

    // Plain HTTP on the TLS port gets nothing useful.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", server.port))
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));
}

#[test]
fn check_config_names_a_bad_tls_file() {
    let certs = TempDir::new();
    let (cert, _key) = dev_cert(&certs);
    let dir = TempDir::new();
    let path = dir.path("g.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[server.tls]\ncert = \"{cert}\"\nkey = \"{cert}\"\n\n\
             [secrets]\nmaster_key_env = \"K\"\n"
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .env("K", MASTER_KEY)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("server.tls.key"), "{err}");
    assert!(err.contains("private key"), "{err}");
    // The certificate's content is not echoed either.
    let pem = std::fs::read_to_string(&cert).unwrap();
    let body_line = pem.lines().nth(1).unwrap();
    assert!(!err.contains(body_line), "{err}");
}
