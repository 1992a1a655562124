//! Several `gatehouse serve` instances on one database, behind one public name: a session
//! ended on instance A is refused by instance B — on a connection B keeps alive, too —
//! within a second; on PostgreSQL through `LISTEN`/`NOTIFY`, which survives a restart of the
//! database server (the instances listen again and revocation still crosses within the
//! second). `bench_revocation_across_instances` measures the delay (`scripts/bench-revocation`).

use crate::harness::*;
use crate::pg_cluster::PgCluster;
use crate::raw::Client;
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
    let a = Server::start_with(Options {
        sections: whoami("{PORT}"),
        database_url,
        ..Default::default()
    });
    let b = Server::start_with(Options {
        sections: whoami(&a.port.to_string()),
        database_url: Some(a.db.url.clone()),
        public_port: Some(a.port),
        ..Default::default()
    });
    (a, b)
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

/// A measurement, not a test (run by `scripts/bench-revocation`): from a sign-out on
/// instance A to the first refusal on instance B, over `REVOCATION_RUNS` (default 100) runs.
#[tokio::test]
#[ignore = "a benchmark: run with scripts/bench-revocation"]
async fn bench_revocation_across_instances() {
    let runs: usize = std::env::var("REVOCATION_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let (a, b) = two_instances(None);
    if a.db.is_postgres() {
        for s in [&a, &b] {
            wait_log(s, "invalidation notifications on");
        }
    }
    a.create_user("pat@example.test", GOOD_PASSWORD, &["limited@whoami"]);
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut on_a = sign_in(&a, "pat@example.test").await;
        let mut to_b = connection_to(&b, &a).await;
        times.push(refused_after_sign_out(&mut on_a, &mut to_b).await);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "revocation across instances ({}, {runs} runs): median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
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
