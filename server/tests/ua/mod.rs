//! A hand-written UA on a loopback UDP socket, for the tests that run workers of one
//! element: send text, read text, answer a request. Shared by `server/tests/workers.rs` and
//! the binary's `tests/serve_workers.rs`.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// How long a message may take at most (it takes well under a millisecond; the bound only
/// keeps a broken build from hanging).
pub const WAIT_MAX: Duration = Duration::from_secs(5);

/// A socket on 127.0.0.1 whose reads give up after [`WAIT_MAX`], and its address.
pub fn socket() -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(WAIT_MAX)).unwrap();
    let a = s.local_addr().unwrap();
    (s, a)
}

/// The next datagram on `s`, as text.
pub fn recv(s: &UdpSocket) -> String {
    let mut buf = vec![0u8; 8192];
    let (n, _) = s.recv_from(&mut buf).expect("a message within the bound");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The next message on `s` that is not a 100 Trying.
pub fn recv_past_trying(s: &UdpSocket) -> String {
    loop {
        let m = recv(s);
        if !m.starts_with("SIP/2.0 100 ") {
            return m;
        }
    }
}

/// The start line.
pub fn first_line(m: &str) -> &str {
    m.split("\r\n").next().unwrap_or("")
}

/// The values of the header lines called `name`, in order.
pub fn header<'a>(m: &'a str, name: &str) -> Vec<&'a str> {
    m.split("\r\n")
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .collect()
}

/// What a UA answers to `request` (RFC 3261 §8.2.6.2): its Vias, Record-Routes, From,
/// Call-ID and CSeq copied, its To with `tag` unless it has one, then `extra` lines.
pub fn answer(request: &str, status: &str, tag: &str, extra: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in request.split("\r\n").take_while(|l| !l.is_empty()).skip(1) {
        match line.split(':').next().unwrap_or("") {
            "Via" | "Record-Route" | "From" | "Call-ID" | "CSeq" => {
                out.push_str(line);
                out.push_str("\r\n");
            }
            "To" if line.contains(";tag=") => {
                out.push_str(line);
                out.push_str("\r\n");
            }
            "To" => out.push_str(&format!("{line};tag={tag}\r\n")),
            _ => {}
        }
    }
    out.push_str(extra);
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}
