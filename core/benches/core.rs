//! The core's cost per message, without sockets: parse, REGISTER with and without digest,
//! an INVITE forwarded, and a whole call (INVITE/100/180/200/ACK/BYE/200) through the proxy.
//! Messages are realistic in size (the INVITE is 830 bytes with its SDP). The forward path
//! is measured message by message too: the INVITE (with its 100 Trying), then a 180 and a 200
//! relayed upstream.
//!
//! `cargo bench -p trapezoid-core` prints the time per iteration; the target for an
//! INVITE forward is under 1 µs.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use trapezoid_core::auth::{compute_response, Algorithm};
use trapezoid_core::message::{Limits, Message};
use trapezoid_core::time::Instant;
use trapezoid_core::Proxy;

mod support;

use support::*;

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
