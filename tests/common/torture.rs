//! The element torture harness of `tests/torture_core.rs` (RFC 4475) and
//! `tests/torture_ipv6_core.rs` (RFC 5118): one datagram in, and everything that comes out
//! asserted, through the retransmission of the same datagram and the timers that end every
//! transaction. What each [`Answer`] means is in those files' heads.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use trapezoid_core::message::{HeaderName, Message};
use trapezoid_core::time::Instant;
use trapezoid_core::{Datagram, Event, Input, InputKind, Output, Proxy, Transmit, Transport};

/// RFC 3261 Timer J for UDP: 64*T1 with the default T1 of 500 ms (§17.2.2).
pub const TIMER_J: Duration = Duration::from_secs(32);

/// What the element must answer.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    /// From a server transaction: status and reason phrase.
    Stateful(u16, &'static str),
    /// From an INVITE server transaction, after 100 Trying: status and reason phrase.
    Invite(u16, &'static str),
    /// Proxied to this next hop; nothing answered upstream.
    Forwarded(&'static str),
    /// Without a transaction (validation failed): status and reason phrase.
    Stateless(u16, &'static str),
    /// Nothing sent; an `Event::Dropped`.
    Dropped,
}

use Answer::*;

/// Where the datagram comes from and goes, and where responses must go.
pub struct Wire {
    /// The element's address.
    pub element: SocketAddr,
    /// The datagram's source.
    pub sender: SocketAddr,
    /// Where a response goes (§18.2.2: the source address, at the sent-by port without
    /// rport).
    pub reply_to: SocketAddr,
}

/// What one input produced.
pub struct Round {
    pub transmits: Vec<Transmit>,
    pub events: Vec<Event>,
}

/// What a check looks at after the first delivery.
pub struct Answered<'a> {
    /// What went out, parsed back: the final response, or the forwarded request.
    pub sent: &'a Message,
    /// The events of the first delivery.
    pub events: &'a [Event],
    /// The element, for its location service.
    pub proxy: &'a Proxy,
}

pub type Check = fn(&Answered<'_>);

/// A check that looks at nothing more.
pub fn none(_: &Answered<'_>) {}

/// Feeds one input and drains every output, asserting that the element does not panic and
/// that the outputs end.
pub fn feed(proxy: &mut Proxy, file: &str, now: Instant, kind: InputKind<'_>) -> Round {
    catch_unwind(AssertUnwindSafe(|| proxy.handle_input(Input { now, kind })))
        .unwrap_or_else(|_| panic!("{file}: the element panicked"));
    let mut round = Round {
        transmits: Vec::new(),
        events: Vec::new(),
    };
    // A generous bound: a torture message yields one response and a few events.
    for _ in 0..64 {
        match proxy.poll_output() {
            Output::Transmit(t) => round.transmits.push(t),
            Output::Event(e) => round.events.push(e),
            Output::Timeout(_) => return round,
        }
    }
    panic!("{file}: outputs never drained");
}

fn deliver(proxy: &mut Proxy, file: &str, now: Instant, wire: &Wire, bytes: &[u8]) -> Round {
    let d = Datagram {
        local: wire.element,
        remote: wire.sender,
        transport: Transport::Udp,
        bytes,
    };
    feed(proxy, file, now, InputKind::Datagram(d))
}

/// The single response of a round, checked for where it goes and parsed back.
fn the_response(file: &str, round: &Round, wire: &Wire) -> Message {
    assert_eq!(round.transmits.len(), 1, "{file}: one response");
    response_in(file, &round.transmits[0], wire)
}

/// A response sent back to the sender, checked for where it goes and parsed back.
fn response_in(file: &str, t: &Transmit, wire: &Wire) -> Message {
    assert_eq!(t.transport, Transport::Udp, "{file}");
    assert_eq!(t.local, wire.element, "{file}");
    assert_eq!(t.remote, wire.reply_to, "{file}");
    Message::parse(&t.bytes, &Default::default())
        .unwrap_or_else(|e| panic!("{file}: our own response does not parse: {e}"))
}

/// Status code and reason phrase of a response.
pub fn status_of(file: &str, m: &Message) -> (u16, String) {
    let status = m
        .status()
        .unwrap_or_else(|| panic!("{file}: not a response"));
    (status, m.reason().unwrap_or_default().to_owned())
}

/// §8.2.6.2: a response copies what the client matches it with (§17.1.3).
fn same_transaction(file: &str, response: &Message, request: &Message) {
    assert_eq!(response.call_id(), request.call_id(), "{file}");
    assert_eq!(
        response.value(&HeaderName::CSeq),
        request.value(&HeaderName::CSeq),
        "{file}"
    );
    assert_eq!(
        response
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned)),
        request
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned)),
        "{file}"
    );
}

/// Delivers `bytes` to `proxy` as `wire` says, asserts `answer` and `check`, delivers the
/// same datagram again 500 ms later (a retransmission), and runs the element's timers until
/// every transaction has ended, asserting that it only ever repeats what it sent.
pub fn play(file: &str, bytes: &[u8], mut proxy: Proxy, wire: &Wire, answer: Answer, check: Check) {
    let request = Message::parse(bytes, &Default::default()).ok();
    let first = deliver(&mut proxy, file, Instant::ZERO, wire, bytes);
    // What the element keeps sending until its transactions end: the final response, or the
    // forwarded request.
    let stored = match answer {
        Dropped => {
            assert!(first.transmits.is_empty(), "{file}: {:?}", first.transmits);
            assert!(
                matches!(
                    first.events.as_slice(),
                    [Event::Dropped { remote, .. }] if *remote == wire.sender
                ),
                "{file}: {:?}",
                first.events
            );
            assert_eq!(proxy.transaction_count(), 0, "{file}");
            None
        }
        Forwarded(next_hop) => {
            assert_eq!(first.transmits.len(), 1, "{file}: {:?}", first.transmits);
            let t = &first.transmits[0];
            assert_eq!(t.remote, next_hop.parse::<SocketAddr>().unwrap(), "{file}");
            assert_eq!(t.local, wire.element, "{file}");
            assert!(first.events.is_empty(), "{file}: {:?}", first.events);
            // A server and a client transaction, and the response context between them.
            assert_eq!(proxy.transaction_count(), 2, "{file}");
            assert_eq!(proxy.context_count(), 1, "{file}");
            let sent = Message::parse(&t.bytes, &Default::default())
                .unwrap_or_else(|e| panic!("{file}: what we forwarded does not parse: {e}"));
            check(&Answered {
                sent: &sent,
                events: &first.events,
                proxy: &proxy,
            });
            Some(t.bytes.clone())
        }
        Stateful(status, reason) | Invite(status, reason) | Stateless(status, reason) => {
            let final_at = match answer {
                Invite(..) => {
                    assert_eq!(first.transmits.len(), 2, "{file}: 100 and a final response");
                    let trying = response_in(file, &first.transmits[0], wire);
                    assert_eq!(status_of(file, &trying), (100, "Trying".to_owned()));
                    same_transaction(file, &trying, request.as_ref().unwrap());
                    1
                }
                _ => {
                    assert_eq!(first.transmits.len(), 1, "{file}: one response");
                    0
                }
            };
            let response = response_in(file, &first.transmits[final_at], wire);
            assert_eq!(
                status_of(file, &response),
                (status, reason.to_owned()),
                "{file}"
            );
            if status == 400 {
                assert_ne!(reason, "Bad Request", "{file}: name the problem");
            }
            same_transaction(file, &response, request.as_ref().unwrap());
            let completed: Vec<_> = first
                .events
                .iter()
                .filter_map(|e| match e {
                    Event::TransactionCompleted { status, .. } => Some(*status),
                    _ => None,
                })
                .collect();
            if matches!(answer, Stateless(..)) {
                assert_eq!(proxy.transaction_count(), 0, "{file}");
                assert!(first.events.is_empty(), "{file}: {:?}", first.events);
            } else {
                assert_eq!(proxy.transaction_count(), 1, "{file}");
                assert_eq!(proxy.context_count(), 0, "{file}");
                assert_eq!(completed, [status], "{file}");
                // §8.2.6.2: the element answered itself, so it adds a To tag.
                assert!(response.to().and_then(|t| t.tag()).is_some(), "{file}");
                let others = first.events.iter().filter(|e| {
                    !matches!(
                        e,
                        Event::TransactionCompleted { .. } | Event::Registered { .. }
                    )
                });
                assert_eq!(others.count(), 0, "{file}: {:?}", first.events);
            }
            check(&Answered {
                sent: &response,
                events: &first.events,
                proxy: &proxy,
            });
            Some(first.transmits[final_at].bytes.clone())
        }
    };

    // The same datagram again, 500 ms later: a retransmission. T1 has passed too, so an
    // INVITE server transaction's Timer G and a client transaction's Timer E fire with it.
    let again = deliver(&mut proxy, file, Instant::from_millis(500), wire, bytes);
    assert!(proxy.transaction_count() <= 2, "{file}");
    match answer {
        Dropped => {
            assert!(again.transmits.is_empty(), "{file}");
            assert!(
                matches!(again.events.as_slice(), [Event::Dropped { .. }]),
                "{file}"
            );
        }
        Stateful(..) => {
            // §17.2.2: the stored response, byte for byte (same To tag), and nothing new.
            assert_eq!(again.transmits.len(), 1, "{file}");
            assert_eq!(Some(&again.transmits[0].bytes), stored.as_ref(), "{file}");
            assert!(again.events.is_empty(), "{file}: {:?}", again.events);
        }
        Invite(..) => {
            // §17.2.1: Timer G and the retransmitted INVITE each send the stored response.
            assert_eq!(again.transmits.len(), 2, "{file}");
            for t in &again.transmits {
                assert_eq!(Some(&t.bytes), stored.as_ref(), "{file}");
            }
            assert!(again.events.is_empty(), "{file}: {:?}", again.events);
        }
        Forwarded(_) => {
            // The server transaction absorbs the retransmission (no response yet, §17.2.2
            // Trying); Timer E sends the request on again, the same bytes.
            assert_eq!(again.transmits.len(), 1, "{file}: {:?}", again.transmits);
            assert_eq!(Some(&again.transmits[0].bytes), stored.as_ref(), "{file}");
            assert!(again.events.is_empty(), "{file}: {:?}", again.events);
        }
        Stateless(status, reason) => {
            let response = the_response(file, &again, wire);
            assert_eq!(
                status_of(file, &response),
                (status, reason.to_owned()),
                "{file}"
            );
            assert!(again.events.is_empty(), "{file}: {:?}", again.events);
        }
    }

    // Timers J, H or F end everything; until then the element only repeats what it sent.
    // Nobody answers a forwarded request, and RFC 4320 §4.2 forbids the 408 upstream.
    let mut now = Instant::from_millis(500);
    while now < Instant::ZERO + TIMER_J {
        let next = match proxy.poll_output() {
            Output::Timeout(Some(at)) => at,
            Output::Timeout(None) => break,
            other => panic!("{file}: undrained output {other:?}"),
        };
        assert!(next > now, "{file}: a timer in the past");
        now = next;
        let round = feed(&mut proxy, file, now, InputKind::Timeout);
        for t in &round.transmits {
            assert_eq!(Some(&t.bytes), stored.as_ref(), "{file} at {now:?}");
        }
        assert!(round.events.is_empty(), "{file}: {:?}", round.events);
    }
    assert!(now <= Instant::ZERO + TIMER_J, "{file}: ended at {now:?}");
    assert_eq!(proxy.transaction_count(), 0, "{file}");
    assert_eq!(proxy.context_count(), 0, "{file}");
    // What may still wait is a binding's expiry (RFC 3261 §10.3 step 7), nothing else.
    match proxy.poll_output() {
        Output::Timeout(None) => {}
        Output::Timeout(Some(_)) => assert!(
            proxy.registrar().location().aor_count() > 0,
            "{file}: a timer outlived every transaction"
        ),
        other => panic!("{file}: undrained output {other:?}"),
    }
}
