//! `trapezoid serve` against hostile peers over loopback: `svwar` (SIPVicious, Debian package
//! `sipvicious`) guessing user names, a flood from one address, and more TCP connections
//! than allowed. Ports 25760-25769.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{peer, Serve};
use trapezoid_core::auth::{compute_response, Algorithm};

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trapezoid-abuse-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Sends `text` to 127.0.0.1:`port` until a final response comes back (bounded).
fn ask(socket: &UdpSocket, port: u16, text: &str) -> String {
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        socket
            .send_to(text.as_bytes(), ("127.0.0.1", port))
            .unwrap();
        let mut buf = [0u8; 8192];
        while let Ok((n, _)) = socket.recv_from(&mut buf) {
            let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
            if answer.starts_with("SIP/2.0 ") && !answer.starts_with("SIP/2.0 1") {
                return answer;
            }
        }
    }
    panic!("no final answer from port {port} to:\n{text}");
}

fn register(socket: &UdpSocket, port: u16, user: &str, cseq: u32, extra: &str) -> String {
    let me = socket.local_addr().unwrap();
    let text = format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKreg{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@127.0.0.1>;tag=r\r\nTo: <sip:{user}@127.0.0.1>\r\n\
         Call-ID: reg-{user}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{me}>\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    );
    ask(socket, port, &text)
}

/// Registers `user` from `socket` (its Contact is the socket's address), answering the
/// digest challenge when there is one.
fn register_user(socket: &UdpSocket, port: u16, user: &str, password: &str) {
    let first = register(socket, port, user, 1, "");
    let answer = if first.starts_with("SIP/2.0 401") {
        let start = first.find("nonce=\"").unwrap() + 7;
        let nonce = &first[start..start + first[start..].find('"').unwrap()];
        let uri = "sip:127.0.0.1";
        let response = compute_response(
            Algorithm::Sha256,
            user,
            "127.0.0.1",
            password,
            "REGISTER",
            uri,
            nonce,
            Some("auth"),
            Some("00000001"),
            Some("c0ffee"),
        );
        let credentials = format!(
            "Authorization: Digest username=\"{user}\", realm=\"127.0.0.1\", nonce=\"{nonce}\", \
             uri=\"{uri}\", qop=auth, nc=00000001, cnonce=\"c0ffee\", response=\"{response}\", \
             algorithm=SHA-256\r\n"
        );
        register(socket, port, user, 2, &credentials)
    } else {
        first
    };
    assert!(answer.starts_with("SIP/2.0 200 OK"), "{answer}");
}

/// A phone behind `socket` that answers every request with 200 (until dropped), so that a
/// request reaching a registered user gets the answer a real phone would give.
struct Phone {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Phone {
    fn answering(socket: UdpSocket) -> Phone {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                if request.starts_with("SIP/2.0") || request.starts_with("ACK ") {
                    continue;
                }
                let mut answer = String::from("SIP/2.0 200 OK\r\n");
                for line in request.split("\r\n").take_while(|l| !l.is_empty()) {
                    let name = line.split(':').next().unwrap_or("");
                    match name {
                        "Via" | "From" | "Call-ID" | "CSeq" => answer += &format!("{line}\r\n"),
                        "To" => answer += &format!("{line};tag=phone\r\n"),
                        _ => {}
                    }
                }
                answer += "Content-Length: 0\r\n\r\n";
                let _ = socket.send_to(answer.as_bytes(), from);
            }
        });
        Phone {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `svwar` with `method` against 127.0.0.1:`port` over `alice` and extensions
/// 100-200, from 127.0.0.1:`local_port`; its output (log and result table).
///
/// svwar first asks for a random extension to learn the answer for an unknown one, then
/// goes through the list, reporting each extension answered otherwise. It stops at the
/// first answer it cannot classify, and the unknown one's challenge repeated is such an
/// answer: so alice comes first, and is the one extension compared whatever the outcome.
fn svwar(program: &Path, port: u16, local_port: u16, method: &str, dir: &Path) -> String {
    let dictionary = dir.join("extensions.txt");
    let names: Vec<String> = std::iter::once("alice".to_owned())
        .chain((100..=200).map(|n| n.to_string()))
        .collect();
    std::fs::write(&dictionary, names.join("\n") + "\n").unwrap();
    let out = Command::new(program)
        .args(["-d", dictionary.to_str().unwrap()])
        .args(["-m", method])
        // Scan even though an unknown extension is challenged (svwar would stop there).
        .arg("--force")
        .args(["-b", "127.0.0.1", "-x", "127.0.0.1"])
        .args(["-P", &local_port.to_string()])
        .args(["-p", &port.to_string()])
        .args(["--maximumtime", "5"])
        .arg("127.0.0.1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "svwar failed:\n{text}");
    text
}

/// With authentication on, alice (who exists and is registered) gets the challenge an
/// unknown extension gets, so svwar finds no one.
#[test]
fn svwar_finds_no_user_when_authentication_is_on() {
    let Some(program) = peer("svwar", "sipvicious") else {
        return;
    };
    let port = 25760;
    let dir = dir("svwar-auth");
    let listen = format!("udp:127.0.0.1:{port}");
    let _serve = Serve::start(port, &["--listen", &listen, "--user", "alice:s3cret"], &dir);
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    register_user(&phone, port, "alice", "s3cret");
    let _phone = Phone::answering(phone);
    for method in ["REGISTER", "OPTIONS", "INVITE"] {
        let out = svwar(&program, port, 25761, method, &dir);
        assert!(out.contains("found nothing"), "{method}:\n{out}");
        assert!(!out.contains("| Extension"), "{method}:\n{out}");
        // svwar did ask about alice: her answer is the one it could not tell apart.
        assert!(out.contains("<sip:alice@127.0.0.1>"), "{method}:\n{out}");
    }
}

/// The same scan with authentication off finds alice: the test above could fail.
#[test]
fn svwar_finds_the_registered_user_when_authentication_is_off() {
    let Some(program) = peer("svwar", "sipvicious") else {
        return;
    };
    let port = 25762;
    let dir = dir("svwar-open");
    let listen = format!("udp:127.0.0.1:{port}");
    let _serve = Serve::start(port, &["--listen", &listen], &dir);
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    register_user(&phone, port, "alice", "");
    let _phone = Phone::answering(phone);
    let out = svwar(&program, port, 25763, "OPTIONS", &dir);
    // The result table: one row, alice, reachable without authentication.
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[1].contains("alice") && rows[1].contains("noauth"),
        "{out}"
    );
    assert!(!out.contains("found nothing"), "{out}");
}

fn options(me: SocketAddr, n: u32) -> String {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKflood{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:flood@127.0.0.1>;tag=f\r\nTo: <sip:127.0.0.1>\r\n\
         Call-ID: flood{n}\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// The rate per source, configured in the element file with no exemption: a burst from one
/// address beyond it gets 503 with Retry-After.
#[test]
fn a_flood_from_one_address_gets_503_with_retry_after() {
    let port = 25764;
    let dir = dir("flood");
    let config = dir.join("element.yaml");
    std::fs::write(
        &config,
        format!(
            "address: 127.0.0.1:{port}\ndomains: [127.0.0.1]\n\
             limits: {{ source_rate: {{ per_second: 1, burst: 5, retry_after_s: 9, exempt: [] }} }}\n"
        ),
    )
    .unwrap();
    let _serve = Serve::start(port, &["--config", config.to_str().unwrap()], &dir);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let me = socket.local_addr().unwrap();
    // The readiness probe took a token or two already: of ten at once, five at most pass.
    for n in 0..10 {
        socket
            .send_to(options(me, n).as_bytes(), ("127.0.0.1", port))
            .unwrap();
    }
    let mut answers = Vec::new();
    let mut buf = [0u8; 4096];
    while answers.len() < 10 {
        let Ok((n, _)) = socket.recv_from(&mut buf) else {
            break;
        };
        answers.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(answers.len(), 10, "{answers:#?}");
    let ok = answers
        .iter()
        .filter(|a| a.starts_with("SIP/2.0 200 OK\r\n"))
        .count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|a| a.starts_with("SIP/2.0 503 Rate Limit Exceeded\r\n"))
        .collect();
    assert!(ok <= 5 && ok + refused.len() == 10, "{answers:#?}");
    assert!(
        refused.iter().all(|a| a.contains("\r\nRetry-After: 9\r\n")),
        "{refused:#?}"
    );
    let log = std::fs::read_to_string(dir.join(format!("serve-{port}.log"))).unwrap();
    assert!(log.contains("source over its request rate"), "{log}");
}

fn tcp_options(stream: &mut TcpStream, n: u32) -> std::io::Result<String> {
    let me = stream.local_addr()?;
    let text = format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKtcp{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:tcp@127.0.0.1>;tag=t\r\nTo: <sip:127.0.0.1>\r\n\
         Call-ID: tcp{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(text.as_bytes())?;
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// limits.tcp_connections_max: a connection beyond it is closed at once, the others keep
/// working, and one more is accepted once one has gone.
#[test]
fn tcp_connections_beyond_the_limit_are_closed() {
    let port = 25766;
    let dir = dir("tcp");
    let config = dir.join("element.yaml");
    std::fs::write(
        &config,
        format!("address: 127.0.0.1:{port}\ndomains: [127.0.0.1]\nlimits: {{ tcp_connections_max: 2 }}\n"),
    )
    .unwrap();
    let _serve = Serve::start(port, &["--config", config.to_str().unwrap()], &dir);
    let connect = || {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    };
    let mut a = connect();
    let mut b = connect();
    assert!(tcp_options(&mut a, 1)
        .unwrap()
        .starts_with("SIP/2.0 200 OK"));
    assert!(tcp_options(&mut b, 2)
        .unwrap()
        .starts_with("SIP/2.0 200 OK"));
    let mut c = connect();
    match tcp_options(&mut c, 3) {
        Ok(answer) => assert!(answer.is_empty(), "a third connection was served: {answer}"),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "{e}"
        ),
    }
    assert!(tcp_options(&mut a, 4)
        .unwrap()
        .starts_with("SIP/2.0 200 OK"));
    drop(b);
    // The element notices the close when its read returns: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut d = connect();
        match tcp_options(&mut d, 5) {
            Ok(answer) if answer.starts_with("SIP/2.0 200 OK") => break,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("no room after a connection closed: {other:?}"),
        }
    }
}
