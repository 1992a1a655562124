//! The listening address: a second server on an address another one serves refuses to start
//! (with `SO_REUSEPORT` it would otherwise join the port and the kernel would split the traffic
//! between the two).

use crate::harness::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A second `gatehouse serve` with the same `listen` exits non-zero naming the address, and
/// the first one still answers every connection.
#[test]
fn a_second_server_on_a_served_address_refuses_to_start() {
    let first = Server::start();
    let mut second = first
        .command(&["serve"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the second gatehouse");
    let deadline = Instant::now() + Duration::from_secs(30);
    while second.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = second.kill();
            let out = second.wait_with_output().unwrap();
            panic!(
                "the second server started on a served address:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let want = format!(
        "cannot listen on 127.0.0.1:{}: another process is already serving it",
        first.port
    );
    assert!(stderr.contains(&want), "wanted {want:?} in:\n{stderr}");

    // Each connection is a new hash for the kernel's spread: all reach the first server.
    for _ in 0..20 {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", first.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        assert!(
            buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200"),
            "{buf}"
        );
    }
}
