//! RFC 4475 torture messages through the whole element: every file of the RFC's archive
//! (`tests/data/rfc4475/`, byte-exact) arrives as one UDP datagram at a registrar for
//! `example.com` (no authentication) on 192.0.2.222:5060, from 192.0.2.10:5060, and the
//! element must give the answer RFC 4475 asks for. `tests/torture.rs` checks the parser's
//! view of the same files; this checks what goes back on the wire.
//!
//! For each file the test asserts everything that came out:
//!
//! - [`Answer::Stateful`]: one response, from a new server transaction, with this status and
//!   reason phrase, and one `TransactionCompleted` event (plus the registrar's binding
//!   events). A retransmission of the request gets the stored bytes again (RFC 3261 §17.2.2
//!   "the server transaction MUST pass the final response to the transport layer for
//!   retransmission") and no new event; Timer J then ends the transaction.
//! - [`Answer::Stateless`]: one response, no transaction, no event: the request failed
//!   validation. A retransmission fails the same way and gets the same status and reason.
//! - [`Answer::Dropped`]: nothing sent, one `Event::Dropped`. The element has no client
//!   transactions yet, so every response is dropped (RFC 3261 §18.1.2: a response that matches
//!   no client transaction is discarded), as is a datagram without a readable header section.
//!
//! Every 400 names the problem in its reason phrase. The element never panics, holds at most
//! one transaction per case, and its outputs always drain.
//!
//! INVITE and the methods the element does not implement get 501 today: the proxy core that
//! forwards them comes later, and RFC 3261 §21.5.2 makes 501 the answer when "the server
//! does not support the functionality required to fulfill the request". Their expectations
//! change with it (RFC 4475 §3.3.6 invut and §3.4.1 inv2543 are forwarded by a proxy).

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use rstest::rstest;
use trapezoid_core::message::{HeaderName, Message, Uri};
use trapezoid_core::time::Instant;
use trapezoid_core::{
    Config, Datagram, Event, Input, InputKind, Output, Proxy, Transmit, Transport,
};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rfc4475/");
const ELEMENT: &str = "192.0.2.222:5060";
const SENDER: &str = "192.0.2.10:5060";

/// RFC 3261 Timer J for UDP: 64*T1 with the default T1 of 500 ms (§17.2.2).
const TIMER_J: Duration = Duration::from_secs(32);

fn read(name: &str) -> Vec<u8> {
    let path = format!("{DIR}{name}.dat");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// What the element must answer.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// From a server transaction: status and reason phrase.
    Stateful(u16, &'static str),
    /// Without a transaction (validation failed): status and reason phrase.
    Stateless(u16, &'static str),
    /// Nothing sent; an `Event::Dropped`.
    Dropped,
}

use Answer::*;

/// What one input produced.
struct Round {
    transmits: Vec<Transmit>,
    events: Vec<Event>,
}

/// What a check looks at after the first delivery.
struct Answered<'a> {
    /// The response, parsed back.
    response: &'a Message,
    /// The events of the first delivery.
    events: &'a [Event],
    /// The element, for its location service.
    proxy: &'a Proxy,
}

type Check = fn(&Answered<'_>);

fn none(_: &Answered<'_>) {}

/// Feeds one input and drains every output, asserting that the element does not panic and
/// that the outputs end.
fn feed(proxy: &mut Proxy, file: &str, now: Instant, kind: InputKind<'_>) -> Round {
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

fn deliver(proxy: &mut Proxy, file: &str, now: Instant, bytes: &[u8]) -> Round {
    let d = Datagram {
        local: addr(ELEMENT),
        remote: addr(SENDER),
        transport: Transport::Udp,
        bytes,
    };
    feed(proxy, file, now, InputKind::Datagram(d))
}

/// The single response of a round, checked for where it goes and parsed back.
fn the_response(file: &str, round: &Round) -> Message {
    assert_eq!(round.transmits.len(), 1, "{file}: one response");
    let t = &round.transmits[0];
    assert_eq!(t.transport, Transport::Udp, "{file}");
    assert_eq!(t.local, addr(ELEMENT), "{file}");
    // §18.2.2: to the source address, at the sent-by port (no rport) or the source port
    // (rport, mpart01). Only quotbal's Via names a port other than 5060.
    let port = if file == "quotbal" { 5050 } else { 5060 };
    assert_eq!(t.remote, SocketAddr::new(addr(SENDER).ip(), port), "{file}");
    Message::parse(&t.bytes, &Default::default())
        .unwrap_or_else(|e| panic!("{file}: our own response does not parse: {e}"))
}

fn status_of(file: &str, m: &Message) -> (u16, String) {
    let status = m
        .status()
        .unwrap_or_else(|| panic!("{file}: not a response"));
    (status, m.reason().unwrap_or_default().to_owned())
}

fn contact_values(m: &Message) -> Vec<&str> {
    m.values(&HeaderName::Contact).collect()
}

fn registered(events: &[Event]) -> Vec<(&str, &str)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Registered { aor, contact, .. } => Some((aor.as_str(), contact.as_str())),
            _ => None,
        })
        .collect()
}

/// The URIs bound to `aor` now.
fn bound(proxy: &Proxy, aor: &str) -> Vec<String> {
    proxy
        .registrar()
        .location()
        .bindings(aor, Instant::ZERO)
        .iter()
        .map(|b| b.contact.clone())
        .collect()
}

fn header<'a>(m: &'a Message, name: &str) -> Vec<&'a str> {
    m.values(&HeaderName::parse(name)).collect()
}

/// 501 lists what the element does implement (RFC 3261 §21.5.2 does not require Allow, but
/// it tells the sender what to try) and binds nothing.
fn not_implemented(a: &Answered<'_>) {
    assert_eq!(header(a.response, "Allow"), ["REGISTER", "OPTIONS"]);
    assert_eq!(a.proxy.registrar().location().aor_count(), 0);
}

// §3.1.1.1: every Via value, folded or compact, goes back in order (§8.2.6.2).
fn wsinv(a: &Answered<'_>) {
    not_implemented(a);
    let hosts: Vec<_> = a.response.vias().iter().map(|v| v.host).collect();
    assert_eq!(
        hosts,
        ["192.0.2.2", "spindle.example.com", "192.168.255.111"]
    );
}

// §3.1.1.4: two distinct bindings, and the AOR is not cut at the escaped NUL.
fn escnull(a: &Answered<'_>) {
    let aor = "sip:null-%00-null@example.com";
    assert_eq!(
        contact_values(a.response),
        [
            "<sip:%00@host5.example.com>;expires=3600",
            "<sip:%00%00@host5.example.com>;expires=3600"
        ]
    );
    assert_eq!(
        bound(a.proxy, aor),
        ["sip:%00@host5.example.com", "sip:%00%00@host5.example.com"]
    );
    assert_eq!(
        registered(a.events),
        [
            (aor, "sip:%00@host5.example.com"),
            (aor, "sip:%00%00@host5.example.com")
        ]
    );
}

// §3.1.1.5: RE%47IST%45R is not REGISTER: nothing is bound.
fn esc02(a: &Answered<'_>) {
    not_implemented(a);
    assert_eq!(a.response.cseq().unwrap().method, "RE%47IST%45R");
}

// §3.1.1.7: all 34 Via values go back, the long ones intact.
fn longreq(a: &Answered<'_>) {
    not_implemented(a);
    assert_eq!(a.response.count(&HeaderName::Via), 34);
    let last = a.response.vias().pop().unwrap();
    assert!(last.branch().unwrap().ends_with("branchvalue"));
    assert_eq!(a.response.call_id().unwrap().len(), 141);
}

// §3.1.1.8: the REGISTER is processed; the INVITE-looking octets after it are not.
fn dblreq(a: &Answered<'_>) {
    let aor = "sip:j.user@example.com";
    assert_eq!(
        contact_values(a.response),
        ["<sip:j.user@host.example.com>;expires=3600"]
    );
    assert_eq!(bound(a.proxy, aor), ["sip:j.user@host.example.com"]);
    assert_eq!(registered(a.events).len(), 1);
}

/// §11.2: the element answers OPTIONS to itself with what it supports.
fn options_ok(a: &Answered<'_>) {
    assert_eq!(header(a.response, "Allow"), ["REGISTER", "OPTIONS"]);
    assert_eq!(header(a.response, "Accept"), ["application/sdp"]);
}

// §3.1.1.10: every transport token, known or not, goes back as written.
fn transports(a: &Answered<'_>) {
    options_ok(a);
    let t: Vec<_> = a.response.vias().iter().map(|v| v.transport).collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
}

// §3.1.1.11: `rport` gets the source port (RFC 3581 §4).
fn mpart01(a: &Answered<'_>) {
    not_implemented(a);
    let via = a.response.top_via().unwrap();
    assert_eq!(via.rport(), Some(Some(5060)));
    assert_eq!(via.received(), Some("192.0.2.10"));
}

// §3.2.1: the branch is only the magic cookie; the element falls back to RFC 2543 matching
// (§17.2.3), which the RFC allows, so the retransmission still finds the transaction.
fn badbranch(a: &Answered<'_>) {
    options_ok(a);
    assert_eq!(a.response.top_via().unwrap().branch(), Some("z9hG4bK"));
}

// §3.3.4: a registrar refuses a To that is not a SIP or SIPS URI (§10.2).
fn unksm2(a: &Answered<'_>) {
    assert_eq!(a.proxy.registrar().location().aor_count(), 0);
}

// §3.3.5: the element answers as the UAS of the OPTIONS, so it lists the Require tags
// (§8.2.2.3); Proxy-Require is for the role of a proxy (§16.3 step 5).
fn bext01(a: &Answered<'_>) {
    assert_eq!(
        header(a.response, "Unsupported"),
        ["nothingSupportsThis", "nothingSupportsThisEither"]
    );
}

// §3.3.7: with no authentication configured, the unknown Authorization is ignored and the
// REGISTER (no Contact) is a fetch of no bindings.
fn regaut01(a: &Answered<'_>) {
    assert!(contact_values(a.response).is_empty());
    assert!(header(a.response, "WWW-Authenticate").is_empty());
    assert_eq!(registered(a.events).len(), 0);
}

// §3.3.12: `unknownparam` is a contact-param: outside the <> of the binding, not in its URI.
fn cparam01(a: &Answered<'_>) {
    assert_eq!(
        contact_values(a.response),
        ["<sip:+19725552222@gw1.example.net>;unknownparam;expires=3600"]
    );
    assert_eq!(
        bound(a.proxy, "sip:watson@example.com"),
        ["sip:+19725552222@gw1.example.net"]
    );
}

// §3.3.13: inside <>, `unknownparam` is a url-parameter the binding keeps.
fn cparam02(a: &Answered<'_>) {
    assert_eq!(
        contact_values(a.response),
        ["<sip:+19725552222@gw1.example.net;unknownparam>;expires=3600"]
    );
    let uris = bound(a.proxy, "sip:watson@example.com");
    assert_eq!(uris, ["sip:+19725552222@gw1.example.net;unknownparam"]);
    let Ok(Uri::Sip(u)) = Uri::parse(&uris[0]) else {
        panic!("binding URI")
    };
    assert_eq!(u.params.get("unknownparam"), Some(None));
}

// §3.3.14: "The register should succeed, and a subsequent retrieval of the registration must
// include the escaped Route header in the contact URI for this binding."
fn regescrt(a: &Answered<'_>) {
    assert_eq!(
        contact_values(a.response),
        ["<sip:user@example.com?Route=%3Csip:sip.example.com%3E>;expires=3600"]
    );
    assert_eq!(
        bound(a.proxy, "sip:user@example.com"),
        ["sip:user@example.com?Route=%3Csip:sip.example.com%3E"]
    );
}

#[rstest]
// §3.1.1: valid messages.
#[case::wsinv("wsinv", Stateful(501, "Not Implemented"), wsinv)]
#[case::intmeth("intmeth", Stateful(501, "Not Implemented"), not_implemented)]
#[case::esc01("esc01", Stateful(501, "Not Implemented"), not_implemented)]
#[case::escnull("escnull", Stateful(200, "OK"), escnull)]
#[case::esc02("esc02", Stateful(501, "Not Implemented"), esc02)]
#[case::lwsdisp("lwsdisp", Stateful(200, "OK"), options_ok)]
#[case::longreq("longreq", Stateful(501, "Not Implemented"), longreq)]
#[case::dblreq("dblreq", Stateful(200, "OK"), dblreq)]
#[case::semiuri("semiuri", Stateful(200, "OK"), options_ok)]
#[case::transports("transports", Stateful(200, "OK"), transports)]
#[case::mpart01("mpart01", Stateful(501, "Not Implemented"), mpart01)]
// Responses: no client transaction to give them to.
#[case::unreason("unreason", Dropped, none)]
#[case::noreason("noreason", Dropped, none)]
// §3.1.2: invalid messages.
#[case::badinv01("badinv01", Stateless(400, "Bad Via"), none)]
// §3.1.2.2, RFC 3261 §18.3: "the element SHOULD generate a 400".
#[case::clerr("clerr", Stateless(400, "Content-Length Larger Than Message"), none)]
#[case::ncl("ncl", Stateless(400, "Bad Content-Length"), none)]
#[case::scalar02("scalar02", Stateless(400, "Bad CSeq"), none)]
// §3.1.2.5: "An element receiving this response will simply discard it."
#[case::scalarlg("scalarlg", Dropped, none)]
#[case::quotbal("quotbal", Stateless(400, "Bad To"), none)]
#[case::ltgtruri("ltgtruri", Stateless(400, "Bad Request-URI"), none)]
// §3.1.2.8: "should respond with a 400"; §3.1.2.9-10: "acceptable to reject".
#[case::lwsruri("lwsruri", Stateless(400, "LWS In Request-URI"), none)]
#[case::lwsstart("lwsstart", Stateless(400, "Bad Request-Line"), none)]
#[case::trws("trws", Stateless(400, "Bad Request-Line"), none)]
// §3.1.2.11: rejecting is acceptable; a proxy would otherwise have to strip them.
#[case::escruri("escruri", Stateless(400, "Headers In Request-URI"), none)]
// §3.1.2.12: the element does not use Date, so it ignores it; the INVITE is then 501.
#[case::baddate("baddate", Stateful(501, "Not Implemented"), not_implemented)]
#[case::regbadct("regbadct", Stateless(400, "Bad Contact"), none)]
#[case::badaspec("badaspec", Stateless(400, "Bad To"), none)]
#[case::baddn("baddn", Stateless(400, "Bad From"), none)]
#[case::badvers("badvers", Stateless(505, "Version Not Supported"), none)]
#[case::mismatch01("mismatch01", Stateless(400, "CSeq Method Mismatch"), none)]
// §3.1.2.18: an unknown method "should" get 501 rather than 400.
#[case::mismatch02("mismatch02", Stateless(501, "Not Implemented"), none)]
// §3.1.2.19: "An element receiving this response should simply drop it."
#[case::bigcode("bigcode", Dropped, none)]
// §3.2: transaction layer.
#[case::badbranch("badbranch", Stateful(200, "OK"), badbranch)]
// §3.3: application layer.
#[case::insuf("insuf", Stateless(400, "Missing To"), none)]
#[case::unkscm("unkscm", Stateful(416, "Unsupported URI Scheme"), none)]
// §3.3.3: the element never accepts soap.beep, so "unknown" and 416.
#[case::novelsc("novelsc", Stateful(416, "Unsupported URI Scheme"), none)]
#[case::unksm2("unksm2", Stateful(400, "To Is Not A SIP URI"), unksm2)]
#[case::bext01("bext01", Stateful(420, "Bad Extension"), bext01)]
#[case::invut("invut", Stateful(501, "Not Implemented"), not_implemented)]
#[case::regaut01("regaut01", Stateful(200, "OK"), regaut01)]
#[case::multi01("multi01", Stateless(400, "Duplicate To"), none)]
#[case::mcl01("mcl01", Stateless(400, "Duplicate Content-Length"), none)]
// §3.3.10: dropped, never forwarded to the broadcast address.
#[case::bcast("bcast", Dropped, none)]
// §3.3.11 with RFC 3261 §16.3 step 3: Max-Forwards 0 on an OPTIONS lets the element "act as
// the final recipient and respond per Section 11".
#[case::zeromf("zeromf", Stateful(200, "OK"), options_ok)]
#[case::cparam01("cparam01", Stateful(200, "OK"), cparam01)]
#[case::cparam02("cparam02", Stateful(200, "OK"), cparam02)]
#[case::regescrt("regescrt", Stateful(200, "OK"), regescrt)]
// §3.3.15: 406 or 400 is for the UAS; here the INVITE is not implemented yet.
#[case::sdp01("sdp01", Stateful(501, "Not Implemented"), not_implemented)]
// §3.4: backward compatibility. The RFC 2543 request is accepted, then not implemented.
#[case::inv2543("inv2543", Stateful(501, "Not Implemented"), not_implemented)]
// In the archive but in no section: no SIP-Version, a header line without a colon. There is
// no header section to answer from.
#[case::unclassified("test", Dropped, none)]
fn rfc4475_through_the_element(#[case] file: &str, #[case] answer: Answer, #[case] check: Check) {
    let bytes = read(file);
    let mut proxy = Proxy::new(Config::new("example.com"));
    let first = deliver(&mut proxy, file, Instant::ZERO, &bytes);
    let stored = match answer {
        Dropped => {
            assert!(first.transmits.is_empty(), "{file}: {:?}", first.transmits);
            assert!(
                matches!(
                    first.events.as_slice(),
                    [Event::Dropped { remote, .. }] if *remote == addr(SENDER)
                ),
                "{file}: {:?}",
                first.events
            );
            assert_eq!(proxy.transaction_count(), 0, "{file}");
            None
        }
        Stateful(status, reason) | Stateless(status, reason) => {
            let response = the_response(file, &first);
            assert_eq!(
                status_of(file, &response),
                (status, reason.to_owned()),
                "{file}"
            );
            if status == 400 {
                assert_ne!(reason, "Bad Request", "{file}: name the problem");
            }
            // §8.2.6.2: the response copies what the client matches it with (§17.1.3).
            let request = Message::parse(&bytes, &Default::default()).unwrap();
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
            let completed: Vec<_> = first
                .events
                .iter()
                .filter_map(|e| match e {
                    Event::TransactionCompleted { status, .. } => Some(*status),
                    _ => None,
                })
                .collect();
            if matches!(answer, Stateful(..)) {
                assert_eq!(proxy.transaction_count(), 1, "{file}");
                assert_eq!(completed, [status], "{file}");
                // §8.2.6.2: the UAS adds a To tag.
                assert!(response.to().and_then(|t| t.tag()).is_some(), "{file}");
                let others = first.events.iter().filter(|e| {
                    !matches!(
                        e,
                        Event::TransactionCompleted { .. } | Event::Registered { .. }
                    )
                });
                assert_eq!(others.count(), 0, "{file}: {:?}", first.events);
            } else {
                assert_eq!(proxy.transaction_count(), 0, "{file}");
                assert!(first.events.is_empty(), "{file}: {:?}", first.events);
            }
            check(&Answered {
                response: &response,
                events: &first.events,
                proxy: &proxy,
            });
            Some(first.transmits[0].bytes.clone())
        }
    };

    // The same datagram again: a retransmission.
    let again = deliver(&mut proxy, file, Instant::from_millis(500), &bytes);
    assert!(proxy.transaction_count() <= 1, "{file}");
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
        Stateless(status, reason) => {
            let response = the_response(file, &again);
            assert_eq!(
                status_of(file, &response),
                (status, reason.to_owned()),
                "{file}"
            );
            assert!(again.events.is_empty(), "{file}: {:?}", again.events);
        }
    }

    // Timer J ends the transaction: nothing leaks.
    let later = feed(
        &mut proxy,
        file,
        Instant::ZERO + TIMER_J,
        InputKind::Timeout,
    );
    assert!(later.transmits.is_empty(), "{file}");
    assert_eq!(proxy.transaction_count(), 0, "{file}");
}

/// Every file of the archive has a case above.
#[test]
fn every_file_is_covered() {
    // Without white space, so that rustfmt may wrap a long case.
    let source: String = include_str!("torture_core.rs").split_whitespace().collect();
    let mut files: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".dat")
                .map(str::to_owned)
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 50);
    for f in &files {
        // `test` is a case named `unclassified`: a case named `test` would shadow the
        // `#[test]` attribute inside the module rstest generates.
        let name = if f == "test" { "unclassified" } else { f };
        assert!(
            source.contains(&format!("#[case::{name}(\"{f}\"")),
            "{f} has no case"
        );
    }
}
