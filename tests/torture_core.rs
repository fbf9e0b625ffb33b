//! RFC 4475 torture messages through the whole element: every file of the RFC's archive
//! (`tests/data/rfc4475/`, byte-exact) arrives as one UDP datagram at a proxy and registrar
//! for `example.com` (no authentication, nobody registered) on 192.0.2.222:5060, from
//! 192.0.2.10:5060, and the element must give the answer RFC 4475 asks for.
//! `tests/torture.rs` checks the parser's view of the same files; this checks what goes
//! back on the wire.
//!
//! For each file the test asserts everything that came out:
//!
//! - [`Answer::Stateful`]: one response to a non-INVITE, from a new server transaction, with
//!   this status and reason phrase, and one `TransactionCompleted` event (plus the
//!   registrar's binding events). A retransmission of the request gets the stored bytes
//!   again (RFC 3261 §17.2.2) and no new event; Timer J then ends the transaction.
//! - [`Answer::Invite`]: 100 Trying at once (§16.2), then the final response. The INVITE
//!   server transaction retransmits that final response on Timer G and on every
//!   retransmitted INVITE, always the same bytes, until Timer H ends it (§17.2.1): nobody
//!   sends the ACK here.
//! - [`Answer::Forwarded`]: the request goes on to the next hop, spliced (§16.6), and no
//!   response comes back. The client transaction retransmits it on Timer E and gives up on
//!   Timer F; RFC 4320 §4.2 forbids the 408 upstream, so nothing is ever answered and both
//!   transactions end.
//! - [`Answer::Stateless`]: one response, no transaction, no event: the request failed
//!   validation. A retransmission fails the same way and gets the same status and reason.
//! - [`Answer::Dropped`]: nothing sent, one `Event::Dropped`: a response that matches no
//!   client transaction (RFC 6026 §7.3: "The proxy MUST NOT forward the response if
//!   there is no matching transaction state machine"), or a datagram without a readable header section.
//!
//! Every 400 names the problem in its reason phrase. The element never panics, holds at most
//! two transactions per case, and its outputs always drain.

mod common;

use std::net::SocketAddr;

use common::torture::{none, play, Answer, Answered, Check, Wire};
use rstest::rstest;
use trapezoid_core::config::Relay;
use trapezoid_core::message::{HeaderName, Message, Uri};
use trapezoid_core::time::Instant;
use trapezoid_core::{Config, Event, Proxy};
use Answer::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rfc4475/");
const ELEMENT: &str = "192.0.2.222:5060";
const SENDER: &str = "192.0.2.10:5060";

fn read(name: &str) -> Vec<u8> {
    let path = format!("{DIR}{name}.dat");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
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
        .map(|b| b.contact().to_owned())
        .collect()
}

fn header<'a>(m: &'a Message, name: &str) -> Vec<&'a str> {
    m.values(&HeaderName::parse(name)).collect()
}

/// A request for a user of the domain, when nobody has registered: §16.5 finds no target
/// and the location service is left as it was.
fn nothing_bound(a: &Answered<'_>) {
    assert!(header(a.sent, "Contact").is_empty());
    assert_eq!(a.proxy.registrar().location().aor_count(), 0);
}

// §3.1.1.1: every Via value, folded or compact, goes back in order (§8.2.6.2, §16.7 step 3:
// only the top Via is ours to remove, and the proxy answered itself).
fn wsinv(a: &Answered<'_>) {
    nothing_bound(a);
    let hosts: Vec<_> = a.sent.vias().iter().map(|v| v.host).collect();
    assert_eq!(
        hosts,
        ["192.0.2.2", "spindle.example.com", "192.168.255.111"]
    );
}

// §3.1.1.4: two distinct bindings, and the AOR is not cut at the escaped NUL.
fn escnull(a: &Answered<'_>) {
    let aor = "sip:null-%00-null@example.com";
    assert_eq!(
        contact_values(a.sent),
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
    nothing_bound(a);
    assert_eq!(a.sent.cseq().unwrap().method, "RE%47IST%45R");
}

// §3.1.1.7: all 34 Via values go back, the long ones intact.
fn longreq(a: &Answered<'_>) {
    nothing_bound(a);
    assert_eq!(a.sent.count(&HeaderName::Via), 34);
    let last = a.sent.vias().pop().unwrap();
    assert!(last.branch().unwrap().ends_with("branchvalue"));
    assert_eq!(a.sent.call_id().unwrap().len(), 141);
}

// §3.1.1.8: the REGISTER is processed; the INVITE-looking octets after it are not.
fn dblreq(a: &Answered<'_>) {
    let aor = "sip:j.user@example.com";
    assert_eq!(
        contact_values(a.sent),
        ["<sip:j.user@host.example.com>;expires=3600"]
    );
    assert_eq!(bound(a.proxy, aor), ["sip:j.user@host.example.com"]);
    assert_eq!(registered(a.events).len(), 1);
}

/// §11.2: the element, as the final recipient of an OPTIONS, says what it supports.
fn options_ok(a: &Answered<'_>) {
    assert_eq!(
        header(a.sent, "Allow"),
        ["INVITE", "ACK", "CANCEL", "BYE", "REGISTER", "OPTIONS"]
    );
    assert_eq!(header(a.sent, "Accept"), ["application/sdp"]);
}

// §3.1.1.10: every transport token, known or not, goes back as written.
fn transports(a: &Answered<'_>) {
    nothing_bound(a);
    let t: Vec<_> = a.sent.vias().iter().map(|v| v.transport).collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
}

// §3.1.1.11: the MESSAGE follows its Route (loose routing, §16.4 and §16.6 step 6) and
// goes on spliced: Max-Forwards one less, our Via on top, the sender's Via with `received`
// and `rport` (RFC 3581 §4), and the multipart body with its NULs byte for byte.
fn mpart01(a: &Answered<'_>) {
    let m = a.sent;
    assert_eq!(m.method().map(|m| m.as_str()), Some("MESSAGE"));
    assert_eq!(m.request_uri(), Some("sip:kumiko@example.org"));
    assert_eq!(m.max_forwards(), Some(69));
    assert_eq!(header(m, "Route"), ["<sip:127.0.0.1:5080>"]);
    let vias = m.vias();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[0].host, "192.0.2.222");
    assert!(vias[0].branch().unwrap().starts_with("z9hG4bK"));
    assert_eq!(vias[1].host, "127.0.0.1");
    assert_eq!(vias[1].rport(), Some(Some(5060)));
    assert_eq!(vias[1].received(), Some("192.0.2.10"));
    let original = read("mpart01");
    let original = Message::parse(&original, &Default::default()).unwrap();
    assert_eq!(m.body(), original.body());
    assert_eq!(m.body().len(), 553);
    assert_eq!(a.proxy.registrar().location().aor_count(), 0);
}

// §3.2.1: the branch is only the magic cookie; the element falls back to RFC 2543 matching
// (§17.2.3), which the RFC allows, so the retransmission still finds the transaction.
fn badbranch(a: &Answered<'_>) {
    nothing_bound(a);
    assert_eq!(a.sent.top_via().unwrap().branch(), Some("z9hG4bK"));
}

// §3.3.4: a registrar refuses a To that is not a SIP or SIPS URI (§10.2).
fn unksm2(a: &Answered<'_>) {
    assert_eq!(a.proxy.registrar().location().aor_count(), 0);
}

// §3.3.5: the OPTIONS is for a user, so the element is its proxy: it lists the Proxy-Require
// tags (§16.3 step 5); Require is for the UAS further on (§8.2.2.3).
fn bext01(a: &Answered<'_>) {
    assert_eq!(
        header(a.sent, "Unsupported"),
        ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]
    );
}

// §3.3.7: with no authentication configured, the unknown Authorization is ignored and the
// REGISTER (no Contact) is a fetch of no bindings.
fn regaut01(a: &Answered<'_>) {
    assert!(contact_values(a.sent).is_empty());
    assert!(header(a.sent, "WWW-Authenticate").is_empty());
    assert_eq!(registered(a.events).len(), 0);
}

// §3.3.12: `unknownparam` is a contact-param: outside the <> of the binding, not in its URI.
fn cparam01(a: &Answered<'_>) {
    assert_eq!(
        contact_values(a.sent),
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
        contact_values(a.sent),
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
        contact_values(a.sent),
        ["<sip:user@example.com?Route=%3Csip:sip.example.com%3E>;expires=3600"]
    );
    assert_eq!(
        bound(a.proxy, "sip:user@example.com"),
        ["sip:user@example.com?Route=%3Csip:sip.example.com%3E"]
    );
}

#[rstest]
// §3.1.1: valid messages.
// §3.1.1.1: its Route names a host the static table does not know (no DNS here).
#[case::wsinv("wsinv", Invite(503, "Next Hop Not Resolvable"), wsinv)]
// A proxy forwards a method it does not know (§16.1); nobody is registered as the user.
#[case::intmeth("intmeth", Stateful(404, "Not Found"), nothing_bound)]
// example.net is neither served here nor in the static table (§21.4.5: 404 also "if the
// domain in the Request-URI does not match any of the domains handled by the recipient").
#[case::esc01("esc01", Invite(404, "Domain Not Found"), nothing_bound)]
#[case::escnull("escnull", Stateful(200, "OK"), escnull)]
#[case::esc02("esc02", Stateful(404, "Domain Not Found"), esc02)]
#[case::lwsdisp("lwsdisp", Stateful(404, "Not Found"), nothing_bound)]
#[case::longreq("longreq", Invite(404, "Not Found"), longreq)]
#[case::dblreq("dblreq", Stateful(200, "OK"), dblreq)]
#[case::semiuri("semiuri", Stateful(404, "Not Found"), nothing_bound)]
#[case::transports("transports", Stateful(404, "Not Found"), transports)]
#[case::mpart01("mpart01", Forwarded("127.0.0.1:5080"), mpart01)]
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
// §3.1.2.12: the element does not use Date, so it ignores it and proxies the INVITE.
#[case::baddate("baddate", Invite(404, "Not Found"), nothing_bound)]
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
#[case::badbranch("badbranch", Stateful(404, "Not Found"), badbranch)]
// §3.3: application layer.
#[case::insuf("insuf", Stateless(400, "Missing To"), none)]
#[case::unkscm("unkscm", Stateful(416, "Unsupported URI Scheme"), none)]
// §3.3.3: the element never accepts soap.beep, so "unknown" and 416.
#[case::novelsc("novelsc", Stateful(416, "Unsupported URI Scheme"), none)]
#[case::unksm2("unksm2", Stateful(400, "To Is Not A SIP URI"), unksm2)]
#[case::bext01("bext01", Stateful(420, "Bad Extension"), bext01)]
// §3.3.6: a proxy does not look at the body; it routes the INVITE.
#[case::invut("invut", Invite(404, "Not Found"), nothing_bound)]
#[case::regaut01("regaut01", Stateful(200, "OK"), regaut01)]
#[case::multi01("multi01", Stateless(400, "Duplicate To"), none)]
#[case::mcl01("mcl01", Stateless(400, "Duplicate Content-Length"), none)]
// §3.3.10: dropped, never forwarded to the broadcast address.
#[case::bcast("bcast", Dropped, none)]
// §3.3.11 asks a proxy for 483; RFC 3261 §16.3 step 3, the normative text, lets it "act as
// the final recipient and respond per Section 11" to an OPTIONS, which is what a ping that
// probes one hop wants. Any other method gets the 483.
#[case::zeromf("zeromf", Stateful(200, "OK"), options_ok)]
#[case::cparam01("cparam01", Stateful(200, "OK"), cparam01)]
#[case::cparam02("cparam02", Stateful(200, "OK"), cparam02)]
#[case::regescrt("regescrt", Stateful(200, "OK"), regescrt)]
// §3.3.15: 406 or 400 is for the UAS; a proxy routes the INVITE.
#[case::sdp01("sdp01", Invite(404, "Not Found"), nothing_bound)]
// §3.4: backward compatibility. The RFC 2543 request (no branch, no From tag) is accepted
// and routed; its transaction is matched the RFC 2543 way (§17.2.3).
#[case::inv2543("inv2543", Invite(404, "Not Found"), nothing_bound)]
// In the archive but in no section: no SIP-Version, a header line without a colon. There is
// no header section to answer from.
#[case::unclassified("test", Dropped, none)]
fn rfc4475_through_the_element(#[case] file: &str, #[case] answer: Answer, #[case] check: Check) {
    let bytes = read(file);
    // The messages come from strangers (example.net): the element relays for them, so
    // that what it does with their other domains shows (its default would refuse them with
    // 403, which the core's own tests cover).
    let mut config = Config::new("example.com");
    config.proxy.relay = Relay::Open;
    let proxy = Proxy::new(config);
    let wire = Wire {
        element: addr(ELEMENT),
        sender: addr(SENDER),
        // §18.2.2: to the source address, at the sent-by port (no rport) or the source
        // port (rport). Only quotbal's Via names a port other than 5060.
        reply_to: SocketAddr::new(
            addr(SENDER).ip(),
            if file == "quotbal" { 5050 } else { 5060 },
        ),
    };
    play(file, &bytes, proxy, &wire, answer, check);
}

/// Every file of the archive has a case above.
#[test]
fn every_file_is_covered() {
    // Without white space, so that rustfmt may wrap a long case.
    let source: String = include_str!("torture_core.rs").split_whitespace().collect();
    let files = common::dat_files(DIR);
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
