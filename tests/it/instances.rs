//! Several `gatehouse serve` instances on one database, behind one public name: a session
//! ended on instance A is refused by instance B — on a connection B keeps alive, too —
//! within a second; on PostgreSQL through `LISTEN`/`NOTIFY`, which survives a restart of the
//! database server (the instances listen again and revocation still crosses within the
//! second); a SCIM deactivation sent to A is refused by B within the second.
//! `bench_revocation_across_instances` measures the delay from a SCIM deactivation on A to the
//! refusal on B (`scripts/bench-revocation`).

use crate::harness::*;
use crate::idp::{Idp, Next};
use crate::pg_cluster::PgCluster;
use crate::raw::Client;
use crate::scim::{ENTRA_TOKEN, Scim};
use serde_json::json;
use std::time::{Duration, Instant};

fn whoami(public_port: &str) -> String {
    format!(
        "[[app]]\nid = \"whoami\"\nhost = \"127.0.0.1:{public_port}\"\npath_prefix = \"/whoami/\"\n\
         upstream = \"builtin:whoami\"\nallow_roles = [\"limited\"]\n"
    )
}

/// Instance A (fresh database, or `database_url`) and instance B on A's database, both
/// answering for A's public name.
fn two_instances(database_url: Option<String>) -> (Server, Server) {
    two_instances_with(database_url, "")
}

/// [`two_instances`] with `extra` config on both.
fn two_instances_with(database_url: Option<String>, extra: &str) -> (Server, Server) {
    let a = Server::start_with(Options {
        sections: format!("{}{extra}", whoami("{PORT}")),
        database_url,
        ..Default::default()
    });
    let b = Server::start_with(Options {
        sections: format!("{}{extra}", whoami(&a.port.to_string())),
        database_url: Some(a.db.url.clone()),
        public_port: Some(a.port),
        ..Default::default()
    });
    (a, b)
}

/// Both instances with the provider `entra` (a realm of `idp`) provisioning over SCIM.
fn two_instances_with_scim(idp: &Idp) -> (Server, Server) {
    let realm = idp.realm("entra", None, false);
    let provider = format!(
        "{}scim_token = \"{ENTRA_TOKEN}\"\n",
        Idp::provider_toml("entra", "oidc", &realm)
    );
    two_instances_with(None, &provider)
}

/// Signs the SCIM-provisioned `pat@corp.test` in on `server` through the provider.
async fn sign_in_upstream(server: &Server, idp: &Idp) -> Browser {
    idp.next(Next::claims(json!({
        "sub": "entra-pat", "email": "pat@corp.test", "email_verified": true,
    })));
    let mut b = server.browser();
    let r = b.get("/.gatehouse/sso/entra?rd=%2Fwhoami%2F").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let at_idp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(r.location())
        .send()
        .await
        .unwrap();
    let callback = at_idp.headers()["location"].to_str().unwrap().to_string();
    let r = b.get(&callback).await;
    assert_eq!(r.status, 303, "{}", r.body);
    b
}

/// Deactivates `id` over SCIM on A; returns how long until `c` (on B) refuses `cookies`,
/// polled as fast as B answers while the SCIM request is still under way (A answers it once
/// every instance has confirmed, which this does not wait for).
async fn refused_after_scim_deactivation(
    scim: &Scim,
    id: &str,
    c: &mut Client,
    cookies: &str,
) -> Duration {
    assert_eq!(whoami_status(c, cookies).await, 200, "served before");
    let path = format!("/Users/{id}");
    let t0 = Instant::now();
    let patch = scim.patch(
        &path,
        json!([{ "op": "Replace", "path": "active", "value": "False" }]),
    );
    let refused = async {
        loop {
            if whoami_status(c, cookies).await != 200 {
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "still served after 5 s"
            );
        }
    };
    let (r, took) = tokio::join!(patch, refused);
    assert_eq!(r.status, 200, "{}", r.body);
    took
}

async fn reactivate(scim: &Scim, id: &str) {
    let r = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{ "op": "replace", "value": { "active": true } }]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// A provisioned person with the app's role; their SCIM id.
async fn provisioned(a: &Server, scim: &Scim) -> String {
    let id = scim.create("pat@corp.test", "e-pat", "Pat").await;
    a.admin_ok(&[
        "grant",
        "--user",
        "pat@corp.test",
        "--role",
        "limited",
        "--app",
        "whoami",
    ]);
    id
}

/// A kept-alive connection to instance B, sending A's public name.
async fn connection_to(b: &Server, public: &Server) -> Client {
    let mut c = Client::connect(b).await;
    c.host = format!("127.0.0.1:{}", public.port);
    c
}

/// One `GET /whoami/` on the connection with the browser's cookies; the status.
async fn whoami_status(c: &mut Client, cookies: &str) -> u16 {
    let head = c.head("GET", "/whoami/", &[&format!("Cookie: {cookies}")]);
    c.send(head).await;
    c.response(false).await.status
}

/// Signs `browser` out on its instance; returns how long until `c` (on the other instance)
/// is refused, polling it as fast as it answers (panics after 5 s).
async fn refused_after_sign_out(browser: &mut Browser, c: &mut Client) -> Duration {
    let cookies = browser.cookie_header();
    assert_eq!(whoami_status(c, &cookies).await, 200, "served before");
    let csrf = browser.get("/").await.csrf();
    let t0 = Instant::now();
    let r = browser.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    loop {
        let status = whoami_status(c, &cookies).await;
        if status != 200 {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "still served after 5 s"
        );
    }
}

async fn sign_in(server: &Server, email: &str) -> Browser {
    let mut b = server.browser();
    let r = b.login(email, GOOD_PASSWORD).await;
    assert_eq!(r.status, 303, "sign-in of {email}: {}", r.body);
    b
}

#[tokio::test]
async fn a_session_ended_on_one_instance_is_refused_by_the_other_within_a_second() {
    let (a, b) = two_instances(None);
    a.create_user("pat@example.test", GOOD_PASSWORD, &["limited@whoami"]);
    for _ in 0..3 {
        let mut on_a = sign_in(&a, "pat@example.test").await;
        let mut to_b = connection_to(&b, &a).await;
        let took = refused_after_sign_out(&mut on_a, &mut to_b).await;
        assert!(took < Duration::from_secs(1), "B refused after {took:?}");
    }
    // Blocked by an administrator (another process): refused by both at once.
    let on_a = sign_in(&a, "pat@example.test").await;
    let cookies = on_a.cookie_header();
    let mut to_b = connection_to(&b, &a).await;
    assert_eq!(whoami_status(&mut to_b, &cookies).await, 200);
    let out = a.admin_ok(&["user", "block", "--email", "pat@example.test"]);
    assert!(!out.contains("did not confirm"), "{out}");
    assert_ne!(whoami_status(&mut to_b, &cookies).await, 200);
}

#[tokio::test]
async fn a_scim_deactivation_sent_to_one_instance_is_refused_by_the_other_within_a_second() {
    let idp = Idp::start();
    let (a, b) = two_instances_with_scim(&idp);
    let scim = Scim::new(&a, ENTRA_TOKEN);
    let id = provisioned(&a, &scim).await;
    for _ in 0..3 {
        let on_a = sign_in_upstream(&a, &idp).await;
        let mut to_b = connection_to(&b, &a).await;
        let took =
            refused_after_scim_deactivation(&scim, &id, &mut to_b, &on_a.cookie_header()).await;
        assert!(took < Duration::from_secs(1), "B refused after {took:?}");
        // Deprovisioned: no new sign-in until reactivated.
        idp.next(Next::claims(json!({
            "sub": "entra-pat", "email": "pat@corp.test", "email_verified": true,
        })));
        let mut again = a.browser();
        let r = again.get("/.gatehouse/sso/entra?rd=%2Fwhoami%2F").await;
        let at_idp = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(r.location())
            .send()
            .await
            .unwrap();
        let callback = at_idp.headers()["location"].to_str().unwrap().to_string();
        let r = again.get(&callback).await;
        assert_eq!(
            r.status, 403,
            "a deprovisioned person signs in nowhere: {}",
            r.body
        );
        reactivate(&scim, &id).await;
    }
}

#[tokio::test]
async fn revocation_crosses_instances_again_after_the_database_server_restarts() {
    let pg = PgCluster::start();
    let (a, b) = two_instances(Some(pg.url()));
    for s in [&a, &b] {
        wait_log(s, "invalidation notifications on");
    }
    a.create_user("pat@example.test", GOOD_PASSWORD, &["limited@whoami"]);
    let mut on_a = sign_in(&a, "pat@example.test").await;
    let mut to_b = connection_to(&b, &a).await;
    let took = refused_after_sign_out(&mut on_a, &mut to_b).await;
    assert!(
        took < Duration::from_secs(1),
        "before the restart: {took:?}"
    );

    pg.restart();
    for s in [&a, &b] {
        wait_log(s, "invalidation notifications resumed");
    }
    // The pools replace their dead connections; the first sign-in may meet one.
    let mut on_a = None;
    for _ in 0..20 {
        let mut br = a.browser();
        if br.login("pat@example.test", GOOD_PASSWORD).await.status == 303 {
            on_a = Some(br);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut on_a = on_a.unwrap_or_else(|| panic!("no sign-in after the restart:\n{}", a.logs()));
    let mut to_b = connection_to(&b, &a).await;
    let took = refused_after_sign_out(&mut on_a, &mut to_b).await;
    assert!(took < Duration::from_secs(1), "after the restart: {took:?}");
    assert!(
        b.logs().contains("invalidation notifications lost"),
        "{}",
        b.logs()
    );
}

/// Waits (up to 20 s) until the server's log has `message`.
fn wait_log(s: &Server, message: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !s.logs().contains(message) {
        assert!(
            Instant::now() < deadline,
            "no {message:?} in:\n{}",
            s.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A measurement, not a test (run by `scripts/bench-revocation`): from a SCIM deactivation
/// sent to instance A to the first refusal on instance B (of the session the person holds
/// there, on a kept-alive connection), over `REVOCATION_RUNS` (default 100) runs.
#[tokio::test]
#[ignore = "a benchmark: run with scripts/bench-revocation"]
async fn bench_revocation_across_instances() {
    let runs: usize = std::env::var("REVOCATION_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let idp = Idp::start();
    let (a, b) = two_instances_with_scim(&idp);
    if a.db.is_postgres() {
        for s in [&a, &b] {
            wait_log(s, "invalidation notifications on");
        }
    }
    let scim = Scim::new(&a, ENTRA_TOKEN);
    let id = provisioned(&a, &scim).await;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let on_a = sign_in_upstream(&a, &idp).await;
        let mut to_b = connection_to(&b, &a).await;
        times.push(
            refused_after_scim_deactivation(&scim, &id, &mut to_b, &on_a.cookie_header()).await,
        );
        reactivate(&scim, &id).await;
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "SCIM deactivation on A to refusal on B ({}, {runs} runs): median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        if a.db.is_postgres() {
            "PostgreSQL, LISTEN/NOTIFY"
        } else {
            "SQLite, polling"
        },
        ms(times[runs / 2]),
        ms(times[runs * 9 / 10]),
        ms(times[runs - 1])
    );
}
