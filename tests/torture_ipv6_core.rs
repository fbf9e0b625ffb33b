//! RFC 5118 IPv6 torture messages through the whole element. The messages are addressed to
//! `[2001:db8::10]`, so that is where the element is: a proxy and registrar on
//! `[2001:db8::10]:5060` whose domains are `example.com` (the AORs of the REGISTERs) and
//! `[2001:db8::10]` itself (as `trapezoid serve` serves its own address), no authentication,
//! nobody registered. Each file arrives as one UDP datagram from the address its top Via
//! names (unless a case says otherwise), and the test asserts everything that comes out,
//! as `tests/torture_core.rs` does for RFC 4475:
//!
//! - [`Answer::Stateful`]: one response from a new server transaction, its retransmission
//!   on a retransmitted request (RFC 3261 §17.2.2), then Timer J ends it.
//! - [`Answer::Invite`]: 100 Trying, then the final response, repeated on Timer G and on
//!   every retransmitted INVITE until Timer H ends the transaction (§17.2.1).
//! - [`Answer::Forwarded`]: the request goes to this next hop, and no response comes back;
//!   Timer E repeats it, Timer F ends both transactions, nothing is answered upstream
//!   (RFC 4320 §4.2).
//! - [`Answer::Stateless`]: one response, no transaction: the request failed validation.
//!
//! The datagrams are the archive's files with CRLF line endings and the missing empty line
//! added; Content-Length is left as published, so RFC 3261 §18.3 decides
//! (`common::rfc5118` says why). Where the next hop or the reply shows how an IPv6
//! reference was read, the check says so: port 5070 inside or outside the brackets, the
//! `received` parameter in both forms, the IPv4-mapped sent-by, the RFC 2373 extra colon.

mod common;

use std::net::SocketAddr;

use common::rfc5118;
use common::torture::{play, Answer, Answered, Check, Wire};
use rstest::rstest;
use trapezoid_core::message::{HeaderName, Message};
use trapezoid_core::time::Instant;
use trapezoid_core::{Config, Event, Proxy};
use Answer::*;

const ELEMENT: &str = "[2001:db8::10]:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn element() -> Proxy {
    let mut config = Config::new("example.com");
    config.domains.push("[2001:db8::10]".into());
    config.local_addrs = vec![addr(ELEMENT)];
    Proxy::new(config)
}

fn header<'a>(m: &'a Message, name: &str) -> Vec<&'a str> {
    m.values(&HeaderName::parse(name)).collect()
}

fn nothing_bound(a: &Answered<'_>) {
    assert_eq!(a.proxy.registrar().location().aor_count(), 0);
}

/// The top Via of what was sent, as written.
fn top_via(m: &Message) -> &str {
    m.values(&HeaderName::Via).next().unwrap()
}

// §4.1: the REGISTER is for the element (`sip:[2001:db8::10]`), the Contact's IPv6
// reference is bound as written. The sender is its sent-by, so no `received` is added.
fn ipv6_good(a: &Answered<'_>) {
    assert_eq!(
        header(a.sent, "Contact"),
        ["<sip:caller@[2001:db8::1]>;expires=3600"]
    );
    let bound: Vec<String> = a
        .proxy
        .registrar()
        .location()
        .bindings("sip:user@example.com", Instant::ZERO)
        .iter()
        .map(|b| b.contact().to_owned())
        .collect();
    assert_eq!(bound, ["sip:caller@[2001:db8::1]"]);
    assert!(a.events.iter().any(|e| matches!(
        e,
        Event::Registered { aor, contact, .. }
            if aor == "sip:user@example.com" && contact == "sip:caller@[2001:db8::1]"
    )));
    assert_eq!(
        top_via(a.sent),
        "SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111"
    );
}

/// A request proxied on as §16.6 says: the Request-URI untouched, Max-Forwards one less,
/// our Via on top with the IPv6 reference of the element, the sender's Via next.
fn forwarded(a: &Answered<'_>, request_uri: &str, sender_via: &str) {
    let m = a.sent;
    assert_eq!(m.request_uri(), Some(request_uri));
    assert_eq!(m.max_forwards(), Some(69));
    let vias: Vec<&str> = m.values(&HeaderName::Via).collect();
    assert_eq!(vias.len(), 2);
    assert!(
        vias[0].starts_with("SIP/2.0/UDP [2001:db8::10];branch=z9hG4bK"),
        "{}",
        vias[0]
    );
    assert_eq!(vias[1], sender_via);
    nothing_bound(a);
}

// §4.3: the host is 2001:db8::10:5070, another host, at the default port: not the element,
// so the REGISTER is proxied there (see the next hop in the case).
fn port_ambiguous(a: &Answered<'_>) {
    forwarded(
        a,
        "sip:[2001:db8::10:5070]",
        "SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111",
    );
}

// §4.4: the element's own address, but port 5070, where it does not listen: the server the
// sender meant is there.
fn port_unambiguous(a: &Answered<'_>) {
    forwarded(
        a,
        "sip:[2001:db8::10]:5070",
        "SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111",
    );
}

// §4.5: the request came from 2001:db8::9:255, not from its sent-by, so the element notes
// `received` (§18.2.1). The bracketed value it was given is replaced by its own, without
// brackets: "When sending a request, implementations must not put the delimiting "[" and
// "]" tokens."
fn via_received_param_with_delim(a: &Answered<'_>) {
    assert_eq!(
        top_via(a.sent),
        "SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111;received=2001:db8::9:255"
    );
    assert_eq!(header(a.sent, "To"), ["sip:user@example.com;tag=bd76ya"]);
    nothing_bound(a);
}

fn via_received_param_no_delim(a: &Answered<'_>) {
    assert_eq!(
        top_via(a.sent),
        "SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3;received=2001:db8::9:255"
    );
    // §11.2: the element, as the final recipient of an OPTIONS, says what it supports.
    assert_eq!(
        header(a.sent, "Allow"),
        ["INVITE", "ACK", "CANCEL", "BYE", "REGISTER", "OPTIONS"]
    );
    nothing_bound(a);
}

// §4.6 as meant: `sip:user@[2001:db8::10]` is a user of the domain [2001:db8::10], who has
// not registered.
fn ipv6_in_sdp(a: &Answered<'_>) {
    assert_eq!(
        top_via(a.sent),
        "SIP/2.0/UDP [2001:db8::20];branch=z9hG4bKas3-111"
    );
    nothing_bound(a);
}

// §4.7: host.example.net is no domain of ours and unknown without DNS; the answer goes back
// to port 6050 of the IPv6 sent-by, and every Via, IPv4 and IPv6, goes back as written.
fn mult_ip_in_header(a: &Answered<'_>) {
    let vias: Vec<&str> = a.sent.values(&HeaderName::Via).collect();
    assert_eq!(
        vias,
        [
            "SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3-111",
            "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKjhja8781hjuaij65144",
            "SIP/2.0/TCP [2001:db8::9:255];branch=z9hG4bK451jj;received=192.0.2.200"
        ]
    );
    nothing_bound(a);
}

// §4.9: a dual-stack socket reports the IPv4 sender as ::ffff:192.0.2.10, the sent-by says
// [::ffff:192.0.2.10]:19823: the same address, so no `received`, and the answer goes to
// port 19823, outside the brackets.
fn ipv4_mapped_ipv6(a: &Answered<'_>) {
    let vias: Vec<&str> = a.sent.values(&HeaderName::Via).collect();
    assert_eq!(
        vias,
        [
            "SIP/2.0/UDP [::ffff:192.0.2.10]:19823;branch=z9hG4bKbh19",
            "SIP/2.0/UDP [::ffff:192.0.2.2];branch=z9hG4bKas3-111"
        ]
    );
    nothing_bound(a);
}

// §4.10: the extra colon is ignored: the OPTIONS goes to the same address as the correct
// form's. The Request-URI is passed on as written (the RFC lets a proxy drop the colon;
// this one never rewrites a Request-URI it does not retarget). The sent-by is a name, so
// the element notes `received`, without brackets.
fn ipv6_bug_abnf_3_colons(a: &Answered<'_>) {
    forwarded(
        a,
        "sip:user@[2001:db8:::192.0.2.1]",
        "SIP/2.0/UDP lab1.east.example.com;branch=z9hG4bKas3-111;received=2001:db8::9:1",
    );
}

fn ipv6_correct_abnf_2_colons(a: &Answered<'_>) {
    forwarded(
        a,
        "sip:user@[2001:db8::192.0.2.1]",
        "SIP/2.0/UDP lab1.east.example.com;branch=z9hG4bKas3-111;received=2001:db8::9:1",
    );
}

#[rstest]
#[case::ipv6_good("ipv6-good", "[2001:db8::9:1]:5060", Stateful(200, "OK"), ipv6_good)]
// §4.2: "should respond with a 400 Bad Request error".
#[case::ipv6_bad(
    "ipv6-bad",
    "[2001:db8::9:1]:5060",
    Stateless(400, "IPv6 Address Without Brackets In Request-URI"),
    nothing_bound
)]
#[case::port_ambiguous(
    "port-ambiguous",
    "[2001:db8::9:1]:5060",
    Forwarded("[2001:db8::10:5070]:5060"),
    port_ambiguous
)]
#[case::port_unambiguous(
    "port-unambiguous",
    "[2001:db8::9:1]:5060",
    Forwarded("[2001:db8::10]:5070"),
    port_unambiguous
)]
// The BYE names the element itself (no user part), which is no user agent and has no
// dialog: it answers as it does any method but REGISTER and OPTIONS (§8.2.1).
#[case::via_received_param_with_delim(
    "via-received-param-with-delim",
    "[2001:db8::9:255]:5060",
    Stateful(405, "Method Not Allowed"),
    via_received_param_with_delim
)]
#[case::via_received_param_no_delim(
    "via-received-param-no-delim",
    "[2001:db8::9:255]:5060",
    Stateful(200, "OK"),
    via_received_param_no_delim
)]
// As published, 17 octets short of its Content-Length: RFC 3261 §18.3 "SHOULD generate a
// 400". `ipv6_in_sdp_as_meant` sends it with the right Content-Length.
#[case::ipv6_in_sdp(
    "ipv6-in-sdp",
    "[2001:db8::20]:5060",
    Stateless(400, "Content-Length Larger Than Message"),
    nothing_bound
)]
#[case::mult_ip_in_header(
    "mult-ip-in-header",
    "[2001:db8::9:1]:6050",
    Stateful(404, "Domain Not Found"),
    mult_ip_in_header
)]
// Its last 8 octets are beyond Content-Length and discarded (§18.3); the INVITE is for a
// user of [2001:db8::10] who has not registered.
#[case::mult_ip_in_sdp(
    "mult-ip-in-sdp",
    "[2001:db8::9:1]:5060",
    Invite(404, "Not Found"),
    nothing_bound
)]
// Its last 9 octets are discarded too; sip:user@example.com has not registered.
#[case::ipv4_mapped_ipv6(
    "ipv4-mapped-ipv6",
    "[::ffff:192.0.2.10]:19823",
    Invite(404, "Not Found"),
    ipv4_mapped_ipv6
)]
#[case::ipv6_bug_abnf_3_colons(
    "ipv6-bug-abnf-3-colons",
    "[2001:db8::9:1]:5060",
    Forwarded("[2001:db8::c000:201]:5060"),
    ipv6_bug_abnf_3_colons
)]
#[case::ipv6_correct_abnf_2_colons(
    "ipv6-correct-abnf-2-colons",
    "[2001:db8::9:1]:5060",
    Forwarded("[2001:db8::c000:201]:5060"),
    ipv6_correct_abnf_2_colons
)]
fn rfc5118_through_the_element(
    #[case] file: &str,
    #[case] from: &str,
    #[case] answer: Answer,
    #[case] check: Check,
) {
    run(file, &rfc5118::datagram(file), addr(from), answer, check);
}

/// §4.6 with the Content-Length of its body: processed like any INVITE for a user of the
/// domain [2001:db8::10].
#[test]
fn ipv6_in_sdp_as_meant() {
    let bytes = rfc5118::fix_content_length(&rfc5118::datagram("ipv6-in-sdp"));
    let from = addr("[2001:db8::20]:5060");
    run(
        "ipv6-in-sdp",
        &bytes,
        from,
        Invite(404, "Not Found"),
        ipv6_in_sdp,
    );
}

fn run(file: &str, bytes: &[u8], from: SocketAddr, answer: Answer, check: Check) {
    // Every sender here uses its sent-by port as its source port (§18.2.2).
    let wire = Wire {
        element: addr(ELEMENT),
        sender: from,
        reply_to: from,
    };
    play(file, bytes, element(), &wire, answer, check);
}

/// Every file of the archive has a case above.
#[test]
fn every_file_is_covered() {
    let source: String = include_str!("torture_ipv6_core.rs")
        .split_whitespace()
        .collect();
    let files = rfc5118::files_on_disk();
    assert_eq!(files.len(), 12);
    for f in &files {
        let case = f.replace('-', "_");
        assert!(
            source.contains(&format!("#[case::{case}(\"{f}\"")),
            "{f} has no case"
        );
    }
}
