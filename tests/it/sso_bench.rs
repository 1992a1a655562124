//! A measurement, not a test (ignored; run by `scripts/bench-sso`): SSO sign-ins per second
//! through the callback against the in-process test provider, and the gateway's CPU time per
//! sign-in (its own process, read from /proc: the provider's work is not counted).

use crate::harness::*;
use crate::idp::{Idp, Next};
use serde_json::json;
use std::time::Instant;

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

async fn one(b: &mut Browser, client: &reqwest::Client) {
    let r = b.get("/.gatehouse/sso/corp?rd=/").await;
    assert_eq!(r.status, 303);
    let at = client.get(r.location()).send().await.unwrap();
    let callback = at.headers()["location"].to_str().unwrap().to_string();
    let r = b.get(&callback).await;
    assert_eq!(r.status, 303, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark: run with scripts/bench-sso"]
async fn bench_sso_sign_ins() {
    let total: usize = std::env::var("SSO_SIGNINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let clients: usize = std::env::var("SSO_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let idp = Idp::start();
    let url = idp.realm("corp", None, false);
    let server = Server::start_with(Options {
        // One client address starts every sign-in here.
        sections: format!(
            "[lockout]\nip_max_sso_starts = 100000000\n{}",
            Idp::provider_toml("corp", "oidc", &url)
        ),
        ..Default::default()
    });
    server.admin_ok(&[
        "invite",
        "--email",
        "bench@acme.test",
        "--role",
        "limited",
        "--provider",
        "corp",
    ]);
    idp.next(Next::claims(
        json!({"sub": "b-1", "email": "bench@acme.test", "email_verified": true, "name": "Bench"}),
    ));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Link once and warm up.
    for _ in 0..20 {
        one(&mut server.browser(), &client).await;
    }
    let lines0 = server.logs().lines().count();
    let cpu0 = cpu_seconds(server.pid());
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let base = server.base.clone();
        let client = client.clone();
        let n = total / clients;
        tasks.push(tokio::spawn(async move {
            for _ in 0..n {
                // A new browser each time: every sign-in is a new state, cookie and session.
                one(&mut Browser::new(&base), &client).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(server.pid()) - cpu0;
    let done = (total / clients) * clients;
    let lines = server.logs().lines().count() - lines0;
    println!(
        "SSO sign-ins: {done} with {clients} clients in {wall:.2} s = {:.0}/s; gateway CPU {:.3} ms per sign-in ({} database; {:.1} log lines per sign-in)",
        done as f64 / wall,
        cpu * 1000.0 / done as f64,
        if server.db.is_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        lines as f64 / done as f64
    );
}
