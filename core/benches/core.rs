//! The core's cost per message, without sockets: parse, REGISTER with and without digest,
//! an INVITE forwarded, and a whole call (INVITE/100/180/200/ACK/BYE/200) through the proxy.
//! Messages are realistic in size (the INVITE is 830 bytes with its SDP). The forward path
//! is measured message by message too: the INVITE (with its 100 Trying), then a 180 and a 200
//! relayed upstream.
//!
//! `cargo bench -p trapezoid-core` prints the time per iteration; the target for an
//! INVITE forward is under 1 µs.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use trapezoid_core::auth::{compute_response, Algorithm};
use trapezoid_core::config::User;
use trapezoid_core::message::{self, HeaderName, Limits, Message};
use trapezoid_core::time::Instant;
use trapezoid_core::{Config, Datagram, Input, InputKind, Output, Proxy, Transport};

const PROXY: &str = "192.0.2.222:5060";
const ALICE: &str = "192.0.2.101:5060";
const BOB: &str = "192.0.2.201:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn invite(n: u64) -> String {
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

fn register(n: u64, cseq: u64, auth: Option<&str>) -> String {
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

/// One input and its outputs; returns the transmits' bytes.
fn feed(p: &mut Proxy, now: Instant, from: &str, bytes: &[u8]) -> Vec<Vec<u8>> {
    p.handle_input(Input {
        now,
        kind: InputKind::Datagram(Datagram {
            local: addr(PROXY),
            remote: addr(from),
            transport: Transport::Udp,
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
fn expect(out: &[Vec<u8>], starts: &[&str]) {
    assert_eq!(out.len(), starts.len(), "outputs: {:?}", lines(out));
    for (o, s) in out.iter().zip(starts) {
        assert!(
            o.starts_with(s.as_bytes()),
            "expected {s:?}, got {:?}",
            lines(out)
        );
    }
}

fn lines(out: &[Vec<u8>]) -> Vec<String> {
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

fn element(auth: bool) -> Proxy {
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
fn with_bob() -> Proxy {
    let mut p = element(false);
    let reg = register(0, 1, None).replace("bob0", "bob");
    feed(&mut p, Instant::ZERO, BOB, reg.as_bytes());
    p
}

/// `iters` iterations in chunks of at most 10,000, each on a fresh [`with_bob`] element:
/// unanswered INVITEs live 32 s (Timer B) and retransmit (Timer A, 500 ms), so with time
/// going on later iterations would also measure earlier INVITEs' retransmissions. `chunk`
/// gets the element and the chunk's size and returns the time it measured.
fn in_chunks(iters: u64, mut chunk: impl FnMut(&mut Proxy, u64) -> Duration) -> Duration {
    const CHUNK: u64 = 10_000;
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let batch = left.min(CHUNK);
        total += chunk(&mut with_bob(), batch);
        left -= batch;
    }
    total
}

/// The downstream UA's response to `request` (RFC 3261 §8.2.6.2, the core's own builder),
/// with its tag, the Record-Route copied (§12.1.1) and a Contact.
fn answer(request: &[u8], code: u16, reason: &str, tag: &str) -> Vec<u8> {
    let m = Message::parse(request, &Limits::default()).unwrap();
    let rr: Vec<&str> = m.values(&HeaderName::RecordRoute).collect();
    let mut extra: Vec<(&str, &str)> = rr.iter().map(|v| ("Record-Route", *v)).collect();
    extra.push(("Contact", "<sip:bob@192.0.2.201>"));
    message::response(&m, code, reason, Some(tag), None, None, &extra, b"")
}

fn benches(c: &mut Criterion) {
    let inv = invite(1);
    println!("INVITE size: {} bytes", inv.len());
    c.bench_function("parse INVITE (830 B)", |b| {
        b.iter(|| Message::parse(black_box(inv.as_bytes()), &Limits::default()).unwrap())
    });
    c.bench_function("parse + validate INVITE", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(inv.as_bytes()), &Limits::default()).unwrap();
            m.validate().unwrap();
            m
        })
    });

    // REGISTER without auth: one new binding per iteration (distinct AORs), time moving on so
    // transactions end (Timer J) and the tables stay at their steady size.
    c.bench_function("REGISTER, no auth (new binding)", |b| {
        let mut p = element(false);
        let mut n = 0u64;
        let mut now = Instant::ZERO;
        b.iter(|| {
            n += 1;
            now = now + Duration::from_millis(1);
            let msg = register(n % 100_000, n / 100_000 + 1, None);
            let out = feed(&mut p, now, BOB, msg.as_bytes());
            expect(&out, &["SIP/2.0 200 "]);
            out
        })
    });

    // REGISTER with digest: the 401 round and the authorised REGISTER, per iteration.
    c.bench_function("REGISTER with digest (401 then 200)", |b| {
        let mut p = element(true);
        let mut n = 0u64;
        let mut now = Instant::ZERO;
        b.iter(|| {
            n += 1;
            now = now + Duration::from_millis(1);
            let first = register(0, 1, None)
                .replace("nashds0", &format!("nashds{n}a"))
                .replace("tn0@", &format!("tn{n}@"));
            let challenge = feed(&mut p, now, BOB, first.as_bytes());
            expect(&challenge, &["SIP/2.0 401 "]);
            let text = String::from_utf8_lossy(&challenge[0]).into_owned();
            let nonce = text
                .split("nonce=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap()
                .to_owned();
            let uri = "sip:biloxi.example.com";
            let response = compute_response(
                Algorithm::Md5,
                "bob0",
                "biloxi.example.com",
                "zanzibar",
                "REGISTER",
                uri,
                &nonce,
                Some("auth"),
                Some("00000001"),
                Some("0a4f113b"),
            );
            let credentials = format!(
                "Digest username=\"bob0\", realm=\"biloxi.example.com\", nonce=\"{nonce}\", \
                 uri=\"{uri}\", response=\"{response}\", algorithm=MD5, qop=auth, \
                 nc=00000001, cnonce=\"0a4f113b\""
            );
            let second = register(0, 1, Some(&credentials))
                .replace("nashds0", &format!("nashds{n}b"))
                .replace("tn0@", &format!("tn{n}@"));
            let out = feed(&mut p, now, BOB, second.as_bytes());
            expect(&out, &["SIP/2.0 200 "]);
            out
        })
    });

    // An INVITE forwarded: validation, location lookup, Record-Route, Via, splice, client
    // transaction. Bob is registered once.
    c.bench_function("INVITE forwarded (100 + forward)", |b| {
        // Chunks of INVITEs on fresh elements ([`in_chunks`]), a microsecond apart (a chunk
        // spans 10 ms, far from Timer A; deadlines do not all tie, as they would not on a
        // real clock); only the INVITEs are timed.
        let mut n = 0u64;
        b.iter_custom(|iters| {
            in_chunks(iters, |p, batch| {
                let msgs: Vec<String> = (0..batch).map(|i| invite(n + i)).collect();
                n += batch;
                // The bench's own stopwatch, outside the core.
                #[allow(clippy::disallowed_methods)]
                let start = std::time::Instant::now();
                for (i, msg) in (1u64..).zip(&msgs) {
                    let now = Instant::ZERO + Duration::from_micros(i);
                    let out = feed(p, now, ALICE, msg.as_bytes());
                    expect(&out, &["SIP/2.0 100 ", "INVITE "]);
                    black_box(out);
                }
                start.elapsed()
            })
        })
    });

    // A 180 and a 200 forwarded upstream (RFC 3261 §16.7): parse, match the client
    // transaction, take the top Via off, relay through the server transaction. Each response
    // needs an INVITE of its own forwarded first; those and the answers are made outside the
    // stopwatch, in chunks on fresh elements as above.
    for (code, reason) in [(180, "Ringing"), (200, "OK")] {
        c.bench_function(&format!("{code} forwarded upstream"), |b| {
            let mut n = 0u64;
            b.iter_custom(|iters| {
                in_chunks(iters, |p, batch| {
                    let mut answers = Vec::new();
                    for i in 1..=batch {
                        let now = Instant::ZERO + Duration::from_micros(i);
                        let out = feed(p, now, ALICE, invite(n + i).as_bytes());
                        expect(&out, &["SIP/2.0 100 ", "INVITE "]);
                        let forwarded = out.last().unwrap();
                        answers.push(answer(forwarded, code, reason, "314159"));
                    }
                    n += batch;
                    let status = format!("SIP/2.0 {code} ");
                    // The bench's own stopwatch, outside the core.
                    #[allow(clippy::disallowed_methods)]
                    let start = std::time::Instant::now();
                    for (i, msg) in (batch + 1..).zip(&answers) {
                        let now = Instant::ZERO + Duration::from_micros(i);
                        let out = feed(p, now, BOB, msg);
                        expect(&out, &[status.as_str()]);
                        black_box(out);
                    }
                    start.elapsed()
                })
            })
        });
    }

    // A whole call through the core: INVITE, 100 and forward, 180, 200, ACK, BYE, 200. The
    // answers are built from what the core sent, so they cannot be made in advance; only
    // the core's handling of each message is timed (the stopwatch's own cost, two clock
    // reads per message, is included).
    c.bench_function("call (INVITE/180/200/ACK/BYE/200)", |b| {
        let mut p = with_bob();
        let mut n = 0u64;
        let mut now = Instant::ZERO;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut timed = |p: &mut Proxy, now: Instant, from: &str, bytes: &[u8]| {
                // The bench's own stopwatch, outside the core.
                #[allow(clippy::disallowed_methods)]
                let start = std::time::Instant::now();
                let out = feed(p, now, from, bytes);
                total += start.elapsed();
                out
            };
            for _ in 0..iters {
                n += 1;
                now = now + Duration::from_millis(1);
                let msg = invite(n);
                let out = timed(&mut p, now, ALICE, msg.as_bytes());
                expect(&out, &["SIP/2.0 100 ", "INVITE "]);
                let forwarded = out.last().unwrap().clone();
                let ringing = answer(&forwarded, 180, "Ringing", "314159");
                expect(&timed(&mut p, now, BOB, &ringing), &["SIP/2.0 180 "]);
                let ok = answer(&forwarded, 200, "OK", "314159");
                expect(&timed(&mut p, now, BOB, &ok), &["SIP/2.0 200 "]);
                let ack = format!(
                    "ACK sip:bob@192.0.2.201 SIP/2.0\r\nVia: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bKack{n}\r\n\
                     Max-Forwards: 70\r\nRoute: <sip:ss2.biloxi.example.com;lr>\r\n\
                     From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl{n}\r\nTo: Bob <sip:bob@biloxi.example.com>;tag=314159\r\n\
                     Call-ID: 3848276298220188511{n}@atlanta.example.com\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
                );
                expect(&timed(&mut p, now, ALICE, ack.as_bytes()), &["ACK "]);
                let bye = format!(
                    "BYE sip:bob@192.0.2.201 SIP/2.0\r\nVia: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bKbye{n}\r\n\
                     Max-Forwards: 70\r\nRoute: <sip:ss2.biloxi.example.com;lr>\r\n\
                     From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl{n}\r\nTo: Bob <sip:bob@biloxi.example.com>;tag=314159\r\n\
                     Call-ID: 3848276298220188511{n}@atlanta.example.com\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
                );
                let out = timed(&mut p, now, ALICE, bye.as_bytes());
                expect(&out, &["BYE "]);
                let bye_ok = answer(out.last().unwrap(), 200, "OK", "314159");
                let out = timed(&mut p, now, BOB, &bye_ok);
                expect(&out, &["SIP/2.0 200 "]);
                black_box(out);
            }
            total
        })
    });
}

criterion_group!(core, benches);
criterion_main!(core);
