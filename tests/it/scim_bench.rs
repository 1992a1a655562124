//! A measurement, not a test (ignored; run by `scripts/bench-scim`): SCIM users created per
//! second (POST /scim/v2/Users from concurrent clients, each a new account with its SCIM
//! record and audit event), and the latency of a `userName eq` lookup with that many users in
//! the database (p50/p99/max over sequential lookups of random existing users, each checked
//! to find exactly its user).

use crate::harness::*;
use crate::idp::Idp;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-scim-token-0123456789abcdef";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark: run with scripts/bench-scim"]
async fn bench_scim_create_and_lookup() {
    let users = env("SCIM_USERS", 100_000);
    let clients = env("SCIM_CLIENTS", 8).max(1);
    let lookups = env("SCIM_LOOKUPS", 2000);
    let idp = Idp::start();
    let provider = Idp::provider_toml("entra", "oidc", &idp.realm("entra", None, false));
    let server = Server::start_with(Options {
        sections: format!("{provider}scim_token = \"{TOKEN}\"\n"),
        ..Default::default()
    });
    let base = format!("{}/scim/v2", server.base);
    let http = reqwest::Client::new();
    let per = users / clients;
    let cpu0 = cpu_seconds(server.pid());
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, base) = (http.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            for i in c * per..(c + 1) * per {
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": format!("user{i}@bench.test"),
                    "externalId": format!("ext-{i}"),
                    "displayName": format!("User {i}"),
                    "active": true,
                    "emails": [{ "value": format!("user{i}@bench.test"), "type": "work", "primary": true }],
                });
                let r = http
                    .post(format!("{base}/Users"))
                    .bearer_auth(TOKEN)
                    .header("content-type", "application/scim+json")
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(server.pid()) - cpu0;
    let made = per * clients;

    // Sequential lookups of random existing users (xorshift: no extra dependency).
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut times = Vec::with_capacity(lookups);
    for _ in 0..lookups {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let i = (seed % made as u64) as usize;
        let filter = format!("userName eq \"USER{i}@bench.test\"");
        let q: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
        let t = Instant::now();
        let r = http
            .get(format!("{base}/Users?filter={q}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        times.push(t.elapsed());
        assert_eq!(body["totalResults"], 1, "{filter}: {body}");
        assert_eq!(body["Resources"][0]["externalId"], format!("ext-{i}"));
    }
    times.sort();
    println!(
        "SCIM: {made} users created by {clients} clients in {wall:.1} s = {:.0} users/s (gateway CPU {:.2} ms per create); \
         userName eq lookup with {made} users: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {lookups} lookups ({} database)",
        made as f64 / wall,
        cpu * 1000.0 / made as f64,
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        percentile(&times, 1.0),
        if server.db.is_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
    );
}
