//! Modify seats: an app's licence counts the modify users active on it *at once*. With
//! `seat_overflow = "refuse"` the N+1th concurrent modify user gets the "all N licences are in
//! use" page (limited users are never counted); sign-out and `admin seats release` free a seat
//! at once; with `seat_overflow = "admit"` everyone gets in and the overage is reported and
//! audited. Run under PostgreSQL too (`GATEHOUSE_TEST_DATABASE_URL`): seats are counted in the
//! database, so the concurrency claims must hold on both backends.

use crate::harness::{Browser, GOOD_PASSWORD, Options, Page, Server};
use crate::upstream::Upstream;
use futures_util::future::join_all;
use serde_json::Value;
use std::collections::BTreeSet;

const LICENSED: usize = 2;

/// The gateway with one metered app, `crm`, under `/crm/` on the gateway's own host.
fn start(upstream: &Upstream, overflow: &str) -> Server {
    start_idle(upstream, overflow, "15m")
}

fn start_idle(upstream: &Upstream, overflow: &str, idle: &str) -> Server {
    Server::start_with(Options {
        sections: format!(
            "[[app]]\n\
             id = \"crm\"\n\
             host = \"127.0.0.1:{{PORT}}\"\n\
             path_prefix = \"/crm/\"\n\
             upstream = \"{}\"\n\
             allow_roles = [\"modify\", \"limited\"]\n\
             modify_seats = {LICENSED}\n\
             seat_overflow = \"{overflow}\"\n\
             seat_idle_timeout = \"{idle}\"\n",
            upstream.url
        ),
        ..Default::default()
    })
}

/// Creates `n` users with `grant` (a few admin processes at a time) and signs each one in.
async fn signed_in(server: &Server, prefix: &str, n: usize, grant: &str) -> Vec<(String, Browser)> {
    let emails: Vec<String> = (0..n)
        .map(|i| format!("{prefix}{i:02}@example.com"))
        .collect();
    std::thread::scope(|s| {
        for chunk in emails.chunks(4) {
            s.spawn(move || {
                for e in chunk {
                    server.create_user(e, GOOD_PASSWORD, &[grant]);
                }
            });
        }
    });
    let mut out = Vec::new();
    for chunk in emails.chunks(4) {
        let logins = chunk.iter().map(|e| async move {
            let mut b = server.browser();
            let r = b.login(e, GOOD_PASSWORD).await;
            assert_eq!(r.status, 303, "sign-in of {e}: {}", r.body);
            assert!(
                !r.location().contains("/login") && !r.location().contains("/mfa"),
                "{e} is not fully signed in: {}",
                r.location()
            );
            (e.clone(), b)
        });
        out.extend(join_all(logins).await);
    }
    out
}

/// Every browser requests `path` at the same time.
async fn all_at_once(users: &mut [(String, Browser)], path: &str) -> Vec<(String, Page)> {
    join_all(users.iter_mut().map(|(e, b)| async move {
        let p = b.get(path).await;
        (e.clone(), p)
    }))
    .await
}

/// A 200 that really came from the upstream (its JSON echo of `/crm/x`), stamped with `seat`.
fn assert_from_upstream(who: &str, p: &Page, seat: &str) {
    assert_eq!(p.status, 200, "{who}: {}", p.body);
    let echo: Value = serde_json::from_str(&p.body)
        .unwrap_or_else(|e| panic!("{who}: not the upstream's echo ({e}): {}", p.body));
    assert!(
        echo["path"].as_str().is_some_and(|s| s.ends_with("/x")),
        "{who}: {echo}"
    );
    let stamped = echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "x-gatehouse-seat")
        .map(|h| h[1].as_str().unwrap().to_string());
    assert_eq!(stamped.as_deref(), Some(seat), "{who}: {echo}");
}

/// The refusal: 503, the licence message, and a Retry-After (seconds, within the idle timeout).
fn assert_licence_page(who: &str, p: &Page) {
    assert_eq!(p.status, 503, "{who}: {}", p.body);
    assert!(
        p.body
            .contains(&format!("All {LICENSED} licences are in use")),
        "{who}: {}",
        p.body
    );
    assert!(
        p.headers
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/html")),
        "{who}: {:?}",
        p.headers
    );
    let retry: i64 = p
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("{who}: no Retry-After: {:?}", p.headers))
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=15 * 60).contains(&retry), "{who}: Retry-After {retry}");
}

/// `seats list --app crm`: the holders' emails (from the JSON output, and checked against the text).
fn holders(server: &Server) -> BTreeSet<String> {
    let v: Value =
        serde_json::from_str(&server.admin_ok(&["seats", "list", "--app", "crm", "--json"]))
            .unwrap();
    let set: BTreeSet<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["email"].as_str().unwrap().to_string())
        .collect();
    let text = server.admin_ok(&["seats", "list", "--app", "crm"]);
    assert!(
        text.contains(&format!("{} seat(s) in use", set.len())),
        "{text}"
    );
    for e in &set {
        assert!(text.contains(e.as_str()), "{text}");
    }
    set
}

async fn sign_out(who: &str, b: &mut Browser) {
    let account = b.get("/").await;
    assert_eq!(account.status, 200, "{who}: {}", account.body);
    let csrf = account.csrf();
    let r = b.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 303, "{who} signing out: {}", r.body);
}

fn emails(v: &[(String, Page)], status: u16) -> BTreeSet<String> {
    v.iter()
        .filter(|(_, p)| p.status == status)
        .map(|(e, _)| e.clone())
        .collect()
}

fn take(users: &mut Vec<(String, Browser)>, email: &str) -> (String, Browser) {
    let i = users.iter().position(|(e, _)| e == email).unwrap();
    users.remove(i)
}

/// 20 modify users arrive at once on a 2-seat app that refuses overflow: exactly 2 get in,
/// 18 get the licence page; limited users arriving at the same time are not counted.
/// Returns the server and the signed-in users split into (holders, refused).
async fn full_house(
    upstream: &Upstream,
) -> (Server, Vec<(String, Browser)>, Vec<(String, Browser)>) {
    let server = start(upstream, "refuse");
    let mut modify = signed_in(&server, "mod", 20, "modify@crm").await;
    let mut limited = signed_in(&server, "lim", 3, "limited@crm").await;

    let started = std::time::Instant::now();
    let (m, l) = futures_util::join!(
        all_at_once(&mut modify, "/crm/x"),
        all_at_once(&mut limited, "/crm/x")
    );
    eprintln!("23 concurrent requests answered in {:?}", started.elapsed());

    for (e, p) in &l {
        assert_from_upstream(e, p, "limited");
    }
    let admitted = emails(&m, 200);
    assert_eq!(
        admitted.len(),
        LICENSED,
        "exactly {LICENSED} of 20 concurrent modify users may hold a seat; got {admitted:?}; statuses {:?}",
        m.iter().map(|(_, p)| p.status).collect::<Vec<_>>()
    );
    for (e, p) in &m {
        if admitted.contains(e) {
            assert_from_upstream(e, p, "modify");
        } else {
            assert_licence_page(e, p);
        }
    }
    assert_eq!(holders(&server), admitted);

    // The holders keep working, the others stay out (nothing was decided by chance or cache).
    let again = all_at_once(&mut modify, "/crm/x").await;
    assert_eq!(emails(&again, 200), admitted);
    assert_eq!(emails(&again, 503).len(), 20 - LICENSED);

    let mut holding = Vec::new();
    for e in &admitted {
        holding.push(take(&mut modify, e));
    }
    (server, holding, modify)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refuse_admits_exactly_the_licensed_number_of_concurrent_modify_users() {
    let upstream = Upstream::start();
    let (server, _holding, mut refused) = full_house(&upstream).await;

    // API clients get the same refusal as JSON.
    let (e, b) = &refused[0];
    let cookie = b
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let r = b
        .client
        .get(format!("{}/crm/x", server.base))
        .header("accept", "application/json")
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "{e}");
    assert!(r.headers().contains_key("retry-after"), "{e}");
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("All 2 licences are in use")),
        "{v}"
    );
    // Refusals are decided by the gateway: the upstream never saw a refused user.
    let seen = upstream
        .seen()
        .iter()
        .filter(|s| s.path_and_query.ends_with("/x"))
        .count();
    // Two rounds of the holders, one of the limited users.
    assert_eq!(seen, 2 * LICENSED + 3, "upstream requests");
    let (e, b) = &mut refused[1];
    assert_licence_page(e, &b.get("/crm/x").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signing_out_or_an_admin_release_frees_a_seat_at_once() {
    let upstream = Upstream::start();
    let (server, mut holding, mut refused) = full_house(&upstream).await;
    let (a_email, mut a) = holding.remove(0);
    let (b_email, mut b) = holding.remove(0);

    // (a) A holder signs out: the next modify user gets in at once, and only one does.
    sign_out(&a_email, &mut a).await;
    let (r1_email, mut r1) = refused.remove(0);
    assert_from_upstream(&r1_email, &r1.get("/crm/x").await, "modify");
    let (r2_email, mut r2) = refused.remove(0);
    assert_licence_page(&r2_email, &r2.get("/crm/x").await);
    assert_eq!(
        holders(&server),
        BTreeSet::from([b_email.clone(), r1_email.clone()])
    );

    // (b) An administrator releases B's seat: another modify user gets in at once.
    let out = server.admin_ok(&["seats", "release", "--app", "crm", "--email", &b_email]);
    assert!(
        out.contains(&format!("released the seat of {b_email} on crm")),
        "{out}"
    );
    assert_from_upstream(&r2_email, &r2.get("/crm/x").await, "modify");
    assert_eq!(
        holders(&server),
        BTreeSet::from([r1_email.clone(), r2_email.clone()])
    );

    // B's gateway state (its seat was confirmed less than a minute ago) must not outlive the
    // release: coming back, B finds the seats full and is refused like anyone else.
    assert_licence_page(&b_email, &b.get("/crm/x").await);
    // So is A, signing in again.
    let mut a2 = server.browser();
    assert_eq!(a2.login(&a_email, GOOD_PASSWORD).await.status, 303);
    assert_licence_page(&a_email, &a2.get("/crm/x").await);
    assert_eq!(
        holders(&server),
        BTreeSet::from([r1_email.clone(), r2_email.clone()])
    );

    // Releasing a user who holds no seat says so and changes nothing.
    let out = server.admin_ok(&["seats", "release", "--app", "crm", "--email", &b_email]);
    assert!(out.contains("held no seat"), "{out}");
    assert_licence_page(&b_email, &b.get("/crm/x").await);

    // The releases are audited.
    let audit = server.admin_ok(&["audit", "--format", "json"]);
    let rows: Vec<Value> = serde_json::from_str(&audit).unwrap();
    assert!(
        rows.iter()
            .any(|r| r["action"] == "seat.release" && r["target"] == b_email.as_str()),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admit_lets_everyone_in_and_reports_and_audits_the_overage() {
    let upstream = Upstream::start();
    let server = start(&upstream, "admit");
    let mut modify = signed_in(&server, "adm", 5, "modify@crm").await;

    let r = all_at_once(&mut modify, "/crm/x").await;
    for (e, p) in &r {
        assert_from_upstream(e, p, "modify");
    }
    assert_eq!(holders(&server).len(), 5);

    let today = time::OffsetDateTime::now_utc().date().to_string();
    let report: Value = serde_json::from_str(
        &server.admin_ok(&["seats", "report", "--app", "crm", "--format", "json"]),
    )
    .unwrap();
    let days = report.as_array().unwrap();
    assert_eq!(days.len(), 1, "{report}");
    let d = &days[0];
    assert_eq!(d["day"], today.as_str(), "{report}");
    assert_eq!(d["peak"], 5, "{report}");
    assert_eq!(d["licensed"], LICENSED, "{report}");
    let over = d["minutes_over"].as_i64().unwrap();
    assert!(over >= 1, "{report}");

    let csv = server.admin_ok(&[
        "seats", "report", "--app", "crm", "--since", "1d", "--format", "csv",
    ]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines,
        vec![
            "day,peak,licensed,minutes_over".to_string(),
            format!("{today},5,{LICENSED},{over}")
        ],
        "{csv}"
    );

    // Each admission beyond the licence is audited once: the 3rd, 4th and 5th seat.
    let audit = server.admin_ok(&["audit", "--format", "json"]);
    let rows: Vec<Value> = serde_json::from_str(&audit).unwrap();
    let overage: Vec<&Value> = rows
        .iter()
        .filter(|r| r["action"] == "seat.overage")
        .collect();
    let in_use: BTreeSet<i64> = overage
        .iter()
        .map(|r| r["details"]["in_use"].as_i64().unwrap())
        .collect();
    assert_eq!(overage.len(), 3, "{audit}");
    assert_eq!(in_use, BTreeSet::from([3, 4, 5]), "{audit}");
    for r in &overage {
        assert_eq!(r["target"], "crm", "{r}");
        assert_eq!(r["details"]["licensed"], LICENSED, "{r}");
    }

    // Within the minute, the admitted users keep working without new overage events.
    let r = all_at_once(&mut modify, "/crm/x").await;
    for (e, p) in &r {
        assert_from_upstream(e, p, "modify");
    }
    let rows: Vec<Value> =
        serde_json::from_str(&server.admin_ok(&["audit", "--format", "json"])).unwrap();
    assert_eq!(
        rows.iter()
            .filter(|r| r["action"] == "seat.overage")
            .count(),
        3
    );
}

/// The same browser (one session) sends `n` requests at once, as a page's first load fetching
/// its assets in parallel does.
async fn burst(b: &Browser, n: usize) -> Vec<Page> {
    join_all((0..n).map(|_| {
        let mut b = b.clone();
        async move { b.get("/crm/x").await }
    }))
    .await
}

/// One person is one seat, however many requests their browser sends at once: none of the
/// parallel requests of a first visit may be refused because a sibling request of the same user
/// is taking that user's seat, and the user is counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_requests_of_one_user_take_one_seat() {
    let upstream = Upstream::start();
    let server = start(&upstream, "refuse");
    let mut users = signed_in(&server, "par", 3, "modify@crm").await;
    let (y_email, mut y) = users.remove(0);
    let (x_email, x) = users.remove(0);
    let (z_email, mut z) = users.remove(0);
    assert_from_upstream(&y_email, &y.get("/crm/x").await, "modify");
    // One seat left: X's parallel first requests must all get in, on that one seat.
    for (i, p) in burst(&x, 12).await.iter().enumerate() {
        assert_from_upstream(&format!("{x_email} request {i}"), p, "modify");
    }
    assert_eq!(
        holders(&server),
        BTreeSet::from([y_email.clone(), x_email.clone()])
    );
    assert_licence_page(&z_email, &z.get("/crm/x").await);

    // With "admit", the licence report's peak counts people, not X's parallel requests.
    let upstream = Upstream::start();
    let server = start(&upstream, "admit");
    let mut users = signed_in(&server, "pad", 3, "modify@crm").await;
    for (e, b) in users.iter_mut().take(2) {
        assert_from_upstream(e, &b.get("/crm/x").await, "modify");
    }
    let (x_email, x) = users.remove(2);
    for (i, p) in burst(&x, 12).await.iter().enumerate() {
        assert_from_upstream(&format!("{x_email} request {i}"), p, "modify");
    }
    assert_eq!(holders(&server).len(), 3);
    let report: Value = serde_json::from_str(
        &server.admin_ok(&["seats", "report", "--app", "crm", "--format", "json"]),
    )
    .unwrap();
    assert_eq!(
        report[0]["peak"], 3,
        "three people, whatever their requests: {report}"
    );
    let rows: Vec<Value> =
        serde_json::from_str(&server.admin_ok(&["audit", "--format", "json"])).unwrap();
    let overage: Vec<&Value> = rows
        .iter()
        .filter(|r| r["action"] == "seat.overage")
        .collect();
    assert!(
        !overage.is_empty(),
        "X's admission beyond the licence is audited"
    );
    for r in &overage {
        assert_eq!(
            r["details"]["in_use"], 3,
            "X is the third person: {overage:?}"
        );
    }
}

/// A seat is held only while its user is active within `seat_idle_timeout`. A user idle for
/// longer has lost the seat: if others took the seats meanwhile, that user is refused — the
/// gateway's own per-session memory of a recent admission must not outlive the seat, whatever
/// the timeout (here shorter than the gateway's one-minute seat refresh).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_users_seat_expires_and_is_not_kept_by_the_gateway() {
    let upstream = Upstream::start();
    let server = start_idle(&upstream, "refuse", "4s");
    let mut users = signed_in(&server, "idl", 4, "modify@crm").await;
    let (a_email, mut a) = users.remove(0);
    let (b_email, mut b) = users.remove(0);
    assert_from_upstream(&a_email, &a.get("/crm/x").await, "modify");
    assert_from_upstream(&b_email, &b.get("/crm/x").await, "modify");
    let (c_email, c) = &mut users[0];
    assert_licence_page(c_email, &c.get("/crm/x").await);

    // A and B go idle past the timeout: their seats are free for C and D.
    // (Polled with the JSON listing alone: `holders` reads two listings, which a seat expiring
    // between them would make disagree.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let held = || server.admin_ok(&["seats", "list", "--app", "crm", "--json"]);
    while held().trim() != "[]" {
        assert!(
            std::time::Instant::now() < deadline,
            "A's and B's seats outlived their 4 s idle timeout: {}",
            held()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(holders(&server).is_empty());
    for (e, br) in users.iter_mut() {
        assert_from_upstream(e, &br.get("/crm/x").await, "modify");
    }
    // A comes back at once: both seats are held (by C and D), so A is refused — not let in as a
    // third user on a two-seat licence.
    let back = a.get("/crm/x").await;
    assert!(
        !holders(&server).contains(&a_email),
        "A must not be given a seat"
    );
    assert_licence_page(&a_email, &back);
}
