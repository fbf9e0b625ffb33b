//! Messages and an element shared by the core's bench (`benches/core.rs`), its instruction
//! counter (`examples/instructions.rs`) and its memory counter (`examples/footprint.rs`): the
//! same realistic messages, so that time, instructions and memory are of the same work.

// Each user takes what it needs.
#![allow(dead_code)]

use std::net::SocketAddr;

use trapezoid_core::auth::Algorithm;
use trapezoid_core::config::{Reports, User};
use trapezoid_core::message::{self, HeaderName, Limits, Message};
use trapezoid_core::time::Instant;
use trapezoid_core::{Config, Datagram, Input, InputKind, Output, Proxy, Transport};

pub const PROXY: &str = "192.0.2.222:5060";
pub const ALICE: &str = "192.0.2.101:5060";
pub const BOB: &str = "192.0.2.201:5060";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn invite(n: u64) -> String {
    let body = "v=0\r\no=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com\r\n\
s=-\r\nc=IN IP4 192.0.2.101\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0 8 18 101\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:18 G729/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n";
    format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9{n};rport\r\n\
Max-Forwards: 70\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl{n}\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511{n}@atlanta.example.com\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@client.atlanta.example.com;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO\r\n\
Supported: replaces, timer\r\n\
User-Agent: Bench Phone 1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

pub fn register(n: u64, cseq: u64, auth: Option<&str>) -> String {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "REGISTER sip:biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.201:5060;branch=z9hG4bKnashds{n}\r\n\
Max-Forwards: 70\r\n\
From: Bob <sip:bob{n}@biloxi.example.com>;tag=a73kszlfl\r\n\
To: Bob <sip:bob{n}@biloxi.example.com>\r\n\
Call-ID: 1j9FpLxk3uxtm8tn{n}@biloxi.example.com\r\n\
CSeq: {} REGISTER\r\n\
Contact: <sip:bob{n}@192.0.2.201>\r\n\
{auth}Expires: 3600\r\n\
Content-Length: 0\r\n\r\n",
        if auth.is_empty() { cseq } else { cseq + 1 }
    )
}

/// One datagram from Alice or Bob (`from`) over UDP, and its outputs (see [`deliver`]).
pub fn feed(p: &mut Proxy, now: Instant, from: &str, bytes: &[u8]) -> Vec<Vec<u8>> {
    deliver(p, now, addr(PROXY), addr(from), Transport::Udp, bytes)
}

/// One datagram in, and the bytes of every datagram it makes the element send.
pub fn deliver(
    p: &mut Proxy,
    now: Instant,
    local: SocketAddr,
    remote: SocketAddr,
    transport: Transport,
    bytes: &[u8],
) -> Vec<Vec<u8>> {
    p.handle_input(Input {
        now,
        kind: InputKind::Datagram(Datagram {
            local,
            remote,
            transport,
            bytes,
        }),
    });
    let mut out = Vec::new();
    loop {
        match p.poll_output() {
            Output::Transmit(t) => out.push(t.bytes),
            Output::Event(_) => {}
            Output::Timeout(_) => return out,
        }
    }
}

/// Fails the bench when an output is not what the case is meant to measure (a 503 from a
/// limit would be cheaper than the work and make the figure meaningless).
pub fn expect(out: &[Vec<u8>], starts: &[&str]) {
    assert_eq!(out.len(), starts.len(), "outputs: {:?}", lines(out));
    for (o, s) in out.iter().zip(starts) {
        assert!(
            o.starts_with(s.as_bytes()),
            "expected {s:?}, got {:?}",
            lines(out)
        );
    }
}

pub fn lines(out: &[Vec<u8>]) -> Vec<String> {
    out.iter()
        .map(|o| {
            String::from_utf8_lossy(o)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

pub fn element(auth: bool) -> Proxy {
    let mut c = Config::new("biloxi.example.com");
    c.host_names = vec!["ss2.biloxi.example.com".into()];
    c.local_addrs = vec![addr(PROXY)];
    c.seed = 7;
    // The bench sends thousands of requests a second from one address: the per-source
    // rate limit would turn them into 503s and measure those instead.
    c.limits.source_rate.per_second = 0;
    // A call a simulated millisecond keeps about 101,000 transactions live (32 s each over
    // UDP): past the default cap of 100,000 the bench would time 503s, as `bench/run.sh`
    // would without `--max-transactions`.
    c.limits.transactions_max = 10_000_000;
    // What `serve` builds when it logs at `warn`, as `bench/run.sh` runs it: no transaction
    // or binding reports (their text is copied out of each message for a log line).
    c.reports = Reports {
        transactions: false,
        bindings: false,
    };
    if auth {
        c.auth.register = true;
        c.auth.algorithms = vec![Algorithm::Md5];
        c.auth.users = vec![User {
            name: "bob0".into(),
            password: "zanzibar".into(),
            aors: Vec::new(),
        }];
    }
    Proxy::new(c)
}

/// An element with Bob registered at 192.0.2.201.
pub fn with_bob() -> Proxy {
    let mut p = element(false);
    let reg = register(0, 1, None).replace("bob0", "bob");
    feed(&mut p, Instant::ZERO, BOB, reg.as_bytes());
    p
}

/// The downstream UA's response to `request` (RFC 3261 §8.2.6.2, the core's own builder),
/// with its tag, the Record-Route copied (§12.1.1) and a Contact.
pub fn answer(request: &[u8], code: u16, reason: &str, tag: &str) -> Vec<u8> {
    let m = Message::parse(request, &Limits::default()).unwrap();
    let rr: Vec<&str> = m.values(&HeaderName::RecordRoute).collect();
    let mut extra: Vec<(&str, &str)> = rr.iter().map(|v| ("Record-Route", *v)).collect();
    extra.push(("Contact", "<sip:bob@192.0.2.201>"));
    message::response(&m, code, reason, Some(tag), None, None, &extra, b"")
}
