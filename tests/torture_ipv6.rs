//! RFC 5118 IPv6 torture tests, the parser's view: every message of the RFC's archive
//! (`tests/data/rfc5118/`, byte-exact) goes through `Message::parse` and `Message::validate`
//! and gets the outcome the RFC asks for, with checks that each IPv6 reference was read as
//! the RFC means it. `tests/torture_ipv6_core.rs` checks what the element answers.
//!
//! The archive is not wire-format SIP: its lines end with a bare LF, and two files have no
//! empty line after the header section. Each file is turned into a datagram first
//! (`common::rfc5118`): LF becomes CRLF, body included, and a missing empty line is added.
//! The Content-Length values stay as published, and RFC 3261 §18.3 applies to them as to
//! any datagram: `ipv6-in-sdp` declares more octets than its body has, a 400 ("Content-Length
//! Larger Than Message"); `mult-ip-in-sdp` and `ipv4-mapped-ipv6` declare fewer, and the
//! octets after Content-Length are discarded. `ipv6_in_sdp_as_meant` checks the message the
//! RFC meant, with its Content-Length corrected.

mod common;

use std::net::IpAddr;

use common::rfc5118;
use rstest::rstest;
use trapezoid_core::message::{host_ip, Contacts, Message, SipUri, Uri};

/// What a message must yield.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    /// Parses and validates.
    Valid,
    /// Parses (so it can be answered) but `validate` fails with this status and reason.
    Invalid(u16, &'static str),
}

use Outcome::*;

type Check = fn(&Message);

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn sip(uri: &str) -> SipUri<'_> {
    match Uri::parse(uri) {
        Ok(Uri::Sip(u)) => u,
        other => panic!("{uri}: {other:?}"),
    }
}

fn request_uri(m: &Message) -> SipUri<'_> {
    sip(m.request_uri().unwrap())
}

fn contact_uri(m: &Message) -> SipUri<'_> {
    let Ok(Contacts::List(c)) = m.contacts() else {
        panic!("contacts")
    };
    assert_eq!(c.len(), 1);
    sip(c[0].uri)
}

/// The body a datagram carries after the empty line, whatever Content-Length says.
fn octets_after_header(datagram: &[u8]) -> &[u8] {
    let end = datagram.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    &datagram[end..]
}

/// The top Via as the RFC's REGISTER requests have it.
fn via_2001_db8_9_1(m: &Message) {
    let via = m.top_via().unwrap();
    assert_eq!((via.host, via.port), ("[2001:db8::9:1]", None));
    assert_eq!(via.host_ip(), ip("2001:db8::9:1"));
    assert_eq!(via.branch(), Some("z9hG4bKas3-111"));
}

// §4.1: IPv6 references in the Request-URI, the Via sent-by and the Contact.
fn ipv6_good(m: &Message) {
    let ruri = request_uri(m);
    assert_eq!(
        (ruri.host, ruri.port, ruri.user),
        ("[2001:db8::10]", None, None)
    );
    assert_eq!(host_ip(ruri.host), ip("2001:db8::10"));
    via_2001_db8_9_1(m);
    let contact = contact_uri(m);
    assert_eq!(
        (contact.user, contact.host),
        (Some("caller"), "[2001:db8::1]")
    );
}

// §4.2: the rest of the message is readable, so the 400 can be sent back.
fn ipv6_bad(m: &Message) {
    assert_eq!(m.request_uri(), Some("sip:2001:db8::10"));
    via_2001_db8_9_1(m);
    assert_eq!(m.cseq().unwrap().seq, 98176);
}

// §4.3: "the intended port number becomes the last octet of the reference": a host
// 2001:db8::10:5070 and the default port.
fn port_ambiguous(m: &Message) {
    let ruri = request_uri(m);
    assert_eq!((ruri.host, ruri.port), ("[2001:db8::10:5070]", None));
    assert_eq!(host_ip(ruri.host), ip("2001:db8::10:5070"));
    via_2001_db8_9_1(m);
}

// §4.4: host 2001:db8::10, port 5070.
fn port_unambiguous(m: &Message) {
    let ruri = request_uri(m);
    assert_eq!((ruri.host, ruri.port), ("[2001:db8::10]", Some(5070)));
    assert_eq!(host_ip(ruri.host), ip("2001:db8::10"));
    via_2001_db8_9_1(m);
}

// §4.5: "robust implementations must nonetheless be able to parse the topmost Via header
// field and continue processing the request".
fn via_received_param_with_delim(m: &Message) {
    via_2001_db8_9_1(m);
    let via = m.top_via().unwrap();
    assert_eq!(via.received(), Some("[2001:db8::9:255]"));
    assert_eq!(via.received_ip(), ip("2001:db8::9:255"));
}

fn via_received_param_no_delim(m: &Message) {
    let via = m.top_via().unwrap();
    assert_eq!(via.host, "[2001:db8::9:1]");
    assert_eq!(via.branch(), Some("z9hG4bKas3"));
    assert_eq!(via.received(), Some("2001:db8::9:255"));
    assert_eq!(via.received_ip(), ip("2001:db8::9:255"));
    assert_eq!(request_uri(m).host, "[2001:db8::10]");
}

// §4.6 as published: 268 declared, 251 octets after the empty line (§18.3: an error).
fn ipv6_in_sdp(m: &Message) {
    assert_eq!(m.content_length(), Some(268));
    assert_eq!(m.body().len(), 251);
    ipv6_in_sdp_headers(m);
}

fn ipv6_in_sdp_headers(m: &Message) {
    let ruri = request_uri(m);
    assert_eq!((ruri.user, ruri.host), (Some("user"), "[2001:db8::10]"));
    assert_eq!(sip(m.to().unwrap().uri).host, "[2001:db8::10]");
    assert_eq!(m.top_via().unwrap().host_ip(), ip("2001:db8::20"));
    assert_eq!(contact_uri(m).host, "[2001:db8::20]");
}

// §4.7: IPv6 references and IPv4 addresses in one Via list, an IPv4 `received` on an IPv6
// sent-by.
fn mult_ip_in_header(m: &Message) {
    let vias = m.vias();
    let got: Vec<_> = vias
        .iter()
        .map(|v| (v.transport, v.host, v.port, v.host_ip().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "UDP",
                "[2001:db8::9:1]",
                Some(6050),
                ip("2001:db8::9:1").unwrap()
            ),
            ("UDP", "192.0.2.1", None, ip("192.0.2.1").unwrap()),
            (
                "TCP",
                "[2001:db8::9:255]",
                None,
                ip("2001:db8::9:255").unwrap()
            ),
        ]
    );
    assert_eq!(vias[2].received_ip(), ip("192.0.2.200"));
    assert_eq!(vias[2].branch(), Some("z9hG4bK451jj"));
    assert_eq!(request_uri(m).host, "host.example.net");
}

// §4.8: 181 declared, 189 after the empty line: the last 8 octets are not the message's.
fn mult_ip_in_sdp(m: &Message) {
    let datagram = rfc5118::datagram("mult-ip-in-sdp");
    let sent = octets_after_header(&datagram);
    assert_eq!((m.content_length(), sent.len()), (Some(181), 189));
    assert_eq!(m.body(), &sent[..181]);
    let sdp = std::str::from_utf8(m.body()).unwrap();
    assert!(sdp.contains("\r\nc=IN IP4 192.0.2.1\r\n"), "{sdp}");
    assert!(sdp.contains("\r\nc=IN IP6 2001:db8::1\r\n"), "{sdp}");
    assert!(sdp.ends_with("a=rtpmap:107 H263-1998"), "{sdp}");
    assert_eq!(contact_uri(m).host, "[2001:db8::9:1]");
}

// §4.9: IPv4-mapped IPv6 addresses; the port outside the brackets.
fn ipv4_mapped_ipv6(m: &Message) {
    let vias = m.vias();
    assert_eq!(
        (vias[0].host, vias[0].port),
        ("[::ffff:192.0.2.10]", Some(19823))
    );
    assert_eq!(vias[0].host_ip(), ip("::ffff:192.0.2.10"));
    assert_eq!(
        vias[0].host_ip().map(|a| a.to_canonical()),
        ip("192.0.2.10")
    );
    assert_eq!((vias[1].host, vias[1].port), ("[::ffff:192.0.2.2]", None));
    let contact = contact_uri(m);
    assert_eq!(
        (contact.user, contact.host),
        (Some("ted"), "[::ffff:192.0.2.2]")
    );
    assert_eq!(host_ip(contact.host), ip("::ffff:192.0.2.2"));
    // 236 declared, 245 after the empty line: the SDP loses its last 9 octets.
    assert_eq!((m.content_length(), m.body().len()), (Some(236), 236));
    assert!(m.body().ends_with(b"\r\na=rtpmap:107 H263-199"));
    assert!(std::str::from_utf8(m.body())
        .unwrap()
        .contains("\r\nc=IN IP6 ::ffff:192.0.2.2\r\n"));
}

// §4.10: the extra colon of RFC 2373's grammar is tolerated: the same address as the
// correct form.
fn ipv6_bug_abnf_3_colons(m: &Message) {
    let ruri = request_uri(m);
    assert_eq!(ruri.host, "[2001:db8:::192.0.2.1]");
    assert_eq!(host_ip(ruri.host), ip("2001:db8::192.0.2.1"));
    assert_eq!(
        host_ip(sip(m.to().unwrap().uri).host),
        ip("2001:db8::c000:201")
    );
    assert!(m.body().is_empty());
}

fn ipv6_correct_abnf_2_colons(m: &Message) {
    let ruri = request_uri(m);
    assert_eq!(ruri.host, "[2001:db8::192.0.2.1]");
    assert_eq!(host_ip(ruri.host), ip("2001:db8::c000:201"));
    assert_eq!(m.top_via().unwrap().host, "lab1.east.example.com");
    assert!(m.body().is_empty());
}

#[rstest]
#[case::ipv6_good("ipv6-good", Valid, ipv6_good)]
// §4.2: "should respond with a 400 Bad Request error"; the reason phrase names the problem.
#[case::ipv6_bad(
    "ipv6-bad",
    Invalid(400, "IPv6 Address Without Brackets In Request-URI"),
    ipv6_bad
)]
#[case::port_ambiguous("port-ambiguous", Valid, port_ambiguous)]
#[case::port_unambiguous("port-unambiguous", Valid, port_unambiguous)]
#[case::via_received_param_with_delim(
    "via-received-param-with-delim",
    Valid,
    via_received_param_with_delim
)]
#[case::via_received_param_no_delim(
    "via-received-param-no-delim",
    Valid,
    via_received_param_no_delim
)]
// Valid for the RFC, but its Content-Length is 17 octets too large (RFC 3261 §18.3).
#[case::ipv6_in_sdp(
    "ipv6-in-sdp",
    Invalid(400, "Content-Length Larger Than Message"),
    ipv6_in_sdp
)]
#[case::mult_ip_in_header("mult-ip-in-header", Valid, mult_ip_in_header)]
#[case::mult_ip_in_sdp("mult-ip-in-sdp", Valid, mult_ip_in_sdp)]
#[case::ipv4_mapped_ipv6("ipv4-mapped-ipv6", Valid, ipv4_mapped_ipv6)]
#[case::ipv6_bug_abnf_3_colons("ipv6-bug-abnf-3-colons", Valid, ipv6_bug_abnf_3_colons)]
#[case::ipv6_correct_abnf_2_colons("ipv6-correct-abnf-2-colons", Valid, ipv6_correct_abnf_2_colons)]
fn rfc5118_message(#[case] file: &str, #[case] outcome: Outcome, #[case] check: Check) {
    let bytes = rfc5118::datagram(file);
    let m = Message::parse(&bytes, &Default::default())
        .unwrap_or_else(|e| panic!("{file}: wanted {outcome:?}, got {e:?}"));
    match outcome {
        Valid => assert_eq!(m.validate(), Ok(()), "{file}"),
        Invalid(status, reason) => {
            let e = m.validate().expect_err(file);
            assert_eq!((e.status, e.reason), (status, reason), "{file}");
        }
    }
    check(&m);
}

/// §4.6 as its authors meant it: with the Content-Length of its body, it is valid, and the
/// SDP's IPv6 addresses (no brackets, RFC 4566) are the proxy's business only as octets.
#[test]
fn ipv6_in_sdp_as_meant() {
    let bytes = rfc5118::fix_content_length(&rfc5118::datagram("ipv6-in-sdp"));
    let m = Message::parse(&bytes, &Default::default()).unwrap();
    assert_eq!(m.validate(), Ok(()));
    assert_eq!((m.content_length(), m.body().len()), (Some(251), 251));
    let sdp = std::str::from_utf8(m.body()).unwrap();
    assert!(sdp.contains("\r\no=assistant 971731711378798081 0 IN IP6 2001:db8::20\r\n"));
    assert!(sdp.contains("\r\nc=IN IP6 2001:db8::20\r\n"));
    assert!(sdp.ends_with("a=rtpmap:107 H263-1998/90000\r\n"));
    ipv6_in_sdp_headers(&m);
}

/// What the harness does to the published bytes, and only that.
#[test]
fn datagrams_are_the_files_with_crlf() {
    for file in rfc5118::FILES {
        let published = rfc5118::published(file);
        assert!(!published.contains(&b'\r'), "{file}: already CRLF?");
        let datagram = rfc5118::datagram(file);
        let lf = published.iter().filter(|&&b| b == b'\n').count();
        let missing_empty_line = file.contains("abnf");
        // Only the two `abnf` files lack the empty line (and end after `Content-Length: 0`).
        let has_empty_line = published.windows(2).any(|w| w == b"\n\n");
        assert_eq!(has_empty_line, !missing_empty_line, "{file}");
        assert!(published.ends_with(b"\n"), "{file}");
        let added = lf + 2 * usize::from(missing_empty_line);
        assert_eq!(datagram.len(), published.len() + added, "{file}");
        assert!(datagram.ends_with(b"\r\n"), "{file}");
        // Removing every CR gives the file back (plus the LF of the added empty line).
        let back: Vec<u8> = datagram.iter().copied().filter(|&b| b != b'\r').collect();
        let mut expected = published.clone();
        if missing_empty_line {
            expected.push(b'\n');
        }
        assert_eq!(back, expected, "{file}");
    }
}

/// Every file of the archive has a case above.
#[test]
fn every_file_is_covered() {
    let source: String = include_str!("torture_ipv6.rs").split_whitespace().collect();
    let files = rfc5118::files_on_disk();
    assert_eq!(files.len(), 12);
    let mut listed: Vec<String> = rfc5118::FILES.iter().map(|f| f.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed);
    for f in &files {
        let case = f.replace('-', "_");
        assert!(
            source.contains(&format!("#[case::{case}(\"{f}\"")),
            "{f} has no case"
        );
    }
}
