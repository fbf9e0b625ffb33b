//! `trapezoid serve` refuses a bad configuration before it starts anything: exit code 2 and
//! one line on stderr that names the problem.

use std::process::Command;

mod common;

fn serve(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trapezoid"))
        .arg("serve")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn one_line_error(args: &[&str], names: &str) {
    let (code, stderr) = serve(args);
    assert_eq!(code, 2, "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains(names),
        "{args:?} should name {names}: {stderr}"
    );
}

fn config(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("trapezoid-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn bad_flags_exit_2_with_one_line() {
    one_line_error(&["--listen", "xyz"], "--listen");
    one_line_error(
        &["--listen", "sctp:127.0.0.1:5060"],
        "transport must be udp or tcp",
    );
    one_line_error(&["--listen", "udp:localhost"], "IP:PORT");
    one_line_error(&["--user", "alice"], "NAME:PASSWORD");
    one_line_error(&["--host", "biloxi.example.com"], "NAME=IP:PORT");
    one_line_error(&["--host", "biloxi.example.com=localhost:5060"], "IP:PORT");
    one_line_error(&["--host", "127.0.0.2=127.0.0.1:5060"], "NAME=IP:PORT");
    one_line_error(&["--mode", "b2bua"], "--mode");
    one_line_error(&["--max-transactions", "0"], "--max-transactions");
    one_line_error(&["--no-such-flag"], "--no-such-flag");
}

#[test]
fn a_bad_config_file_exits_2_naming_the_field_and_its_line() {
    let unknown = config(
        "unknown.yaml",
        "address: 127.0.0.1:5090\ndomains: [x]\nusrs: []\n",
    );
    one_line_error(
        &["--config", &unknown],
        "unknown.yaml:3:1: unknown field `usrs`",
    );
    let order = config(
        "order.yaml",
        "address: 127.0.0.1:5090\ndomains: [x]\nregistrar: { min_expires: 600, default_expires: 60 }\n",
    );
    one_line_error(
        &["--config", &order],
        "default_expires (60) is less than min_expires (600)",
    );
    let algorithm = config(
        "alg.yaml",
        "address: 127.0.0.1:5090\ndomains: [x]\nauth: { algorithms: [SHA-1] }\n",
    );
    one_line_error(
        &["--config", &algorithm],
        "unknown digest algorithm `SHA-1`",
    );
    one_line_error(
        &["--config", "/nonexistent/element.yaml"],
        "/nonexistent/element.yaml",
    );
}

/// `--listen udp:[::1]:PORT` alone: the element serves `[::1]` and registers over IPv6.
#[test]
fn serve_registers_over_ipv6_loopback() {
    use std::net::UdpSocket;
    use std::time::{Duration, Instant};
    let Ok(socket) = UdpSocket::bind("[::1]:0") else {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    };
    let port = 25990;
    let mut child = Command::new(env!("CARGO_BIN_EXE_trapezoid"))
        .args([
            "serve",
            "--listen",
            &format!("udp:[::1]:{port}"),
            "--seed",
            "1",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let me = socket.local_addr().unwrap();
    let register = format!(
        "REGISTER sip:[::1]:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKv6\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@[::1]>;tag=1\r\nTo: <sip:alice@[::1]>\r\n\
         Call-ID: v6\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@{me}>\r\nContent-Length: 0\r\n\r\n"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut answer = String::new();
    while Instant::now() < deadline && answer.is_empty() {
        let _ = socket.send_to(register.as_bytes(), ("::1", port));
        let mut buf = [0u8; 4096];
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            answer = String::from_utf8_lossy(&buf[..n]).into_owned();
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(answer.starts_with("SIP/2.0 200 OK"), "{answer}");
    assert!(
        answer.contains(&format!("Contact: <sip:alice@{me}>;expires=3600")),
        "{answer}"
    );
}

/// `--max-transactions N`: with N transactions alive (each lives 32 s after its final
/// response over UDP), a new request gets 503 Too Many Transactions.
#[test]
fn max_transactions_caps_live_transactions_with_503() {
    use std::net::UdpSocket;
    use std::time::Duration;
    let dir = std::env::temp_dir().join(format!("trapezoid-cli-cap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = 25995;
    let listen = format!("udp:127.0.0.1:{port}");
    // The readiness probe's OPTIONS already holds one or two of the three.
    let serve = common::Serve::start(
        port,
        &["--listen", &listen, "--max-transactions", "3"],
        &dir,
    );
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let me = socket.local_addr().unwrap();
    let mut statuses = Vec::new();
    for n in 0..4 {
        let register = format!(
            "REGISTER sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKcap{n}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=1\r\nTo: <sip:alice@127.0.0.1>\r\n\
             Call-ID: cap{n}\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@{me}>\r\nContent-Length: 0\r\n\r\n"
        );
        socket
            .send_to(register.as_bytes(), ("127.0.0.1", serve.port))
            .unwrap();
        let mut buf = [0u8; 4096];
        let (len, _) = socket.recv_from(&mut buf).expect("an answer");
        let answer = String::from_utf8_lossy(&buf[..len]).into_owned();
        statuses.push(answer.lines().next().unwrap_or_default().to_owned());
    }
    let first_503 = statuses
        .iter()
        .position(|s| s == "SIP/2.0 503 Too Many Transactions")
        .unwrap_or_else(|| panic!("no 503: {statuses:?}"));
    assert!(first_503 >= 1, "{statuses:?}");
    assert!(
        statuses[..first_503].iter().all(|s| s == "SIP/2.0 200 OK"),
        "{statuses:?}"
    );
    assert!(
        statuses[first_503..]
            .iter()
            .all(|s| s == "SIP/2.0 503 Too Many Transactions"),
        "{statuses:?}"
    );
}
