//! Simulator speed: 50 callers call 50 registered callees through one proxy, over and over,
//! for 10 simulated minutes (100 UAs, one element, 10 ms links), and the bench prints how
//! many calls completed and how many simulated calls and seconds one wall second buys.
//!
//!     cargo bench -p trapezoid-sim --bench calls [-- SIM_SECONDS] [-- one-host-per-ua]
//!
//! By default the callers share one host (one IP, a port each) and so do the callees, as
//! SIPp runs many UAs in one process; `one-host-per-ua` gives each UA a host of its own, which
//! shows what turmoil's per-tick cost per host does to a load.
//!
//! Each call is INVITE / 100 / 180 / 200 / ACK / BYE / 200 with Record-Route, held 2 s.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use trapezoid_core::message::{response, HeaderName, Limits, Message};
use trapezoid_core::Config;
use trapezoid_sim::{Ua, World, WorldConfig};

const PAIRS: usize = 50;
const HOLD: Duration = Duration::from_secs(2);

fn addr(i: usize, base: u8, spread: bool) -> SocketAddr {
    if spread {
        SocketAddr::new(
            IpAddr::from([10, base, (i / 250) as u8, (i % 250 + 1) as u8]),
            5060,
        )
    } else {
        SocketAddr::new(IpAddr::from([10, base, 0, 1]), 5060 + i as u16)
    }
}

/// Where a caller is in its call.
enum Caller {
    Idle {
        until: Duration,
    },
    Inviting {
        call: u64,
    },
    Talking {
        call: u64,
        until: Duration,
        to_tag: String,
    },
    Leaving {
        call: u64,
    },
}

fn parse(bytes: &[u8]) -> Option<Message> {
    Message::parse(bytes, &Limits::default()).ok()
}

fn main() {
    let sim_seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(600);
    let spread = std::env::args().any(|a| a == "one-host-per-ua");
    let proxy = SocketAddr::from(([10, 0, 0, 1], 5060));
    let mut world = World::new(&WorldConfig {
        seed: 1,
        latency: Duration::from_millis(10),
    });
    let mut config = Config::new("example.com");
    config.local_addrs = vec![proxy];
    world.add_element("proxy", proxy, config, Vec::new());
    let mut group = |base: u8, prefix: &str| -> Vec<Ua> {
        let names: Vec<(String, SocketAddr)> = (0..PAIRS)
            .map(|i| (format!("{prefix}{i}"), addr(i, base, spread)))
            .collect();
        if spread {
            names.iter().map(|(n, a)| world.add_ua(n, *a)).collect()
        } else {
            let refs: Vec<(&str, SocketAddr)> =
                names.iter().map(|(n, a)| (n.as_str(), *a)).collect();
            world.add_uas(&refs)
        }
    };
    let callees = group(2, "callee");
    let callers = group(1, "caller");
    for (i, ua) in callees.iter().enumerate() {
        let a = ua.addr();
        ua.send(
            proxy,
            format!(
                "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKreg{i}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:u{i}@example.com>;tag=r{i}\r\nTo: <sip:u{i}@example.com>\r\n\
                 Call-ID: reg{i}\r\nCSeq: 1 REGISTER\r\nContact: <sip:u{i}@{a}>\r\nExpires: 7200\r\n\
                 Content-Length: 0\r\n\r\n"
            )
            .into_bytes(),
        );
    }
    let mut state: Vec<Caller> = (0..PAIRS)
        .map(|i| Caller::Idle {
            until: Duration::from_millis(500 + 20 * i as u64),
        })
        .collect();
    let mut next_call = 0u64;
    let mut completed = 0u64;
    let end = Duration::from_secs(sim_seconds);
    let started = Instant::now();
    while world.now() < end {
        world.step().expect("the simulation runs");
        let now = world.now();
        // Callees answer what they get.
        for ua in &callees {
            while let Some(r) = ua.take_where(|_| true) {
                let Some(m) = parse(&r.bytes) else { continue };
                let Some(method) = m.method().map(|x| x.as_str().to_owned()) else {
                    continue;
                };
                let rr: Vec<(&str, &str)> = m
                    .values(&HeaderName::RecordRoute)
                    .map(|v| ("Record-Route", v))
                    .collect();
                let contact = format!("<sip:callee@{}>", ua.addr());
                match method.as_str() {
                    "INVITE" => {
                        let mut extra = rr.clone();
                        extra.push(("Contact", &contact));
                        ua.send(
                            r.from,
                            response(&m, 180, "Ringing", Some("b"), None, None, &extra, b""),
                        );
                        ua.send(
                            r.from,
                            response(&m, 200, "OK", Some("b"), None, None, &extra, b""),
                        );
                    }
                    "BYE" => ua.send(r.from, response(&m, 200, "OK", None, None, None, &[], b"")),
                    _ => {}
                }
            }
        }
        // Callers run their calls.
        for (i, ua) in callers.iter().enumerate() {
            let me = ua.addr();
            let got: Vec<Message> = std::iter::from_fn(|| ua.take_where(|_| true))
                .filter_map(|r| parse(&r.bytes))
                .collect();
            // The final response to the call's request, with its To tag (provisionals that
            // came in the same tick are passed over).
            let status_of = |call: u64, method: &str| {
                got.iter().find_map(|m| {
                    let c = m.cseq()?;
                    let status = m.status().filter(|s| *s >= 200)?;
                    (m.call_id() == Some(format!("c{call}").as_str()) && c.method == method)
                        .then(|| (status, m.to().and_then(|t| t.tag().map(str::to_owned))))
                })
            };
            state[i] = match std::mem::replace(&mut state[i], Caller::Idle { until: now }) {
                Caller::Idle { until } if now >= until => {
                    next_call += 1;
                    let call = next_call;
                    ua.send(
                        proxy,
                        format!(
                            "INVITE sip:u{i}@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKi{call}\r\n\
                             Max-Forwards: 70\r\nFrom: <sip:caller{i}@example.com>;tag=a{call}\r\n\
                             To: <sip:u{i}@example.com>\r\nCall-ID: c{call}\r\nCSeq: 1 INVITE\r\n\
                             Contact: <sip:caller{i}@{me}>\r\nContent-Length: 0\r\n\r\n"
                        )
                        .into_bytes(),
                    );
                    Caller::Inviting { call }
                }
                Caller::Inviting { call } => match status_of(call, "INVITE") {
                    Some((200, Some(to_tag))) => {
                        let callee = addr(i, 2, spread);
                        ua.send(
                            proxy,
                            format!(
                                "ACK sip:callee@{callee} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKa{call}\r\n\
                                 Max-Forwards: 70\r\nRoute: <sip:{proxy};lr>\r\nFrom: <sip:caller{i}@example.com>;tag=a{call}\r\n\
                                 To: <sip:u{i}@example.com>;tag={to_tag}\r\nCall-ID: c{call}\r\nCSeq: 1 ACK\r\n\
                                 Content-Length: 0\r\n\r\n"
                            )
                            .into_bytes(),
                        );
                        Caller::Talking {
                            call,
                            until: now + HOLD,
                            to_tag,
                        }
                    }
                    _ => Caller::Inviting { call },
                },
                Caller::Talking {
                    call,
                    until,
                    to_tag,
                } if now >= until => {
                    let callee = addr(i, 2, spread);
                    ua.send(
                        proxy,
                        format!(
                            "BYE sip:callee@{callee} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKb{call}\r\n\
                             Max-Forwards: 70\r\nRoute: <sip:{proxy};lr>\r\nFrom: <sip:caller{i}@example.com>;tag=a{call}\r\n\
                             To: <sip:u{i}@example.com>;tag={to_tag}\r\nCall-ID: c{call}\r\nCSeq: 2 BYE\r\n\
                             Content-Length: 0\r\n\r\n"
                        )
                        .into_bytes(),
                    );
                    Caller::Leaving { call }
                }
                Caller::Leaving { call } => match status_of(call, "BYE") {
                    Some((200, _)) => {
                        completed += 1;
                        Caller::Idle { until: now + HOLD }
                    }
                    _ => Caller::Leaving { call },
                },
                other => other,
            };
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let messages = world.trace().len() / 2;
    println!(
        "{PAIRS} callers, {PAIRS} callees ({}), one proxy, {sim_seconds} s simulated in {wall:.2} s of wall time",
        if spread { "a host each" } else { "two hosts" }
    );
    println!(
        "calls completed {completed} ({:.0} simulated calls per wall second), {messages} datagrams, {:.0} simulated seconds per wall second",
        completed as f64 / wall,
        sim_seconds as f64 / wall
    );
    assert!(completed > 0, "no call completed: the bench is broken");
}
