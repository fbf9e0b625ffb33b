//! RFC 3261 §17.2.2 and §18.2 through the element.

use std::time::Duration;

use super::util::*;
use crate::Event;

#[test]
fn a_retransmitted_register_gets_the_stored_response_byte_for_byte() {
    let mut h = Harness::open();
    let req = register("z9hG4bK1", 1, "Contact: <sip:bob@192.0.2.201>\n");
    let first = h.receive(&req);
    h.advance(Duration::from_millis(500));
    let again = h.receive(&req);
    assert_eq!(
        first.response(),
        again.response(),
        "same To tag, same bytes"
    );
    assert!(
        again.events.is_empty(),
        "the registrar did not run twice: {:?}",
        again.events
    );
    assert_eq!(h.proxy.transaction_count(), 1);
}

#[test]
fn timer_j_ends_the_transaction_after_64_t1() {
    let mut h = Harness::open();
    let req = register("z9hG4bK1", 1, "Contact: <sip:bob@192.0.2.201>\n");
    let first = h.receive(&req).response();
    h.advance(Duration::from_millis(31_999));
    assert_eq!(h.proxy.transaction_count(), 1);
    h.advance(Duration::from_millis(1));
    assert_eq!(h.proxy.transaction_count(), 0);
    // The same bytes now start a new transaction: the registrar sees CSeq 1 again and
    // refuses it as out of order, with a new To tag.
    let late = h.receive(&req).response();
    assert!(late.starts_with("SIP/2.0 400 CSeq Out Of Order\r\n"));
    assert_ne!(header_lines(&first, "To"), header_lines(&late, "To"));
}

#[test]
fn responses_go_to_the_received_address_and_rport() {
    let mut h = Harness::open();
    // sent-by names a host, not the source: received= is added (§18.2.1); rport asked:
    // filled with the source port and the response goes there (RFC 3581 §4).
    let req = register("z9hG4bK1", 1, "Contact: <sip:bob@192.0.2.201>\n").replace(
        "Via: SIP/2.0/UDP 192.0.2.201:5060;branch=z9hG4bK1",
        "Via: SIP/2.0/UDP client.biloxi.example.com:5060;rport;branch=z9hG4bK1",
    );
    let out = h.receive_bytes(&crlf(&req), "192.0.2.201:40123".parse().unwrap());
    assert_eq!(
        out.transmits[0].remote,
        "192.0.2.201:40123".parse().unwrap()
    );
    assert_eq!(
        header_lines(&out.response(), "Via"),
        ["SIP/2.0/UDP client.biloxi.example.com:5060;rport=40123;branch=z9hG4bK1;received=192.0.2.201"]
    );
    // Without rport, the response goes to the sent-by port at the source address.
    let req = register("z9hG4bK2", 2, "Contact: <sip:bob@192.0.2.201>\n").replace(
        "Via: SIP/2.0/UDP 192.0.2.201:5060;branch=z9hG4bK2",
        "Via: SIP/2.0/UDP client.biloxi.example.com:5061;branch=z9hG4bK2",
    );
    let out = h.receive_bytes(&crlf(&req), "192.0.2.201:40123".parse().unwrap());
    assert_eq!(out.transmits[0].remote, "192.0.2.201:5061".parse().unwrap());
}

#[test]
fn options_to_the_element_is_answered_with_allow() {
    let mut h = Harness::open();
    let r = h
        .receive(
            "OPTIONS sip:ss2.biloxi.example.com SIP/2.0\n\
             Via: SIP/2.0/UDP 192.0.2.201:5060;branch=z9hG4bKo1\n\
             Max-Forwards: 70\n\
             From: <sip:bob@biloxi.example.com>;tag=1\n\
             To: <sip:ss2.biloxi.example.com>\n\
             Call-ID: o1\n\
             CSeq: 1 OPTIONS\n\
             Content-Length: 0\n\n",
        )
        .response();
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"));
    assert_eq!(
        header_lines(&r, "Allow"),
        ["INVITE, ACK, CANCEL, BYE, REGISTER, OPTIONS"]
    );
}

#[test]
fn unknown_methods_are_proxied_like_any_other() {
    let mut h = Harness::open();
    h.receive(&register(
        "z9hG4bK1",
        1,
        "Contact: <sip:bob@192.0.2.201:5070>\n",
    ));
    let out = h.receive(
        "FROBNICATE sip:bob@biloxi.example.com SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKf1\n\
         Max-Forwards: 70\n\
         From: <sip:alice@atlanta.example.com>;tag=1\n\
         To: <sip:bob@biloxi.example.com>\n\
         Call-ID: f1\n\
         CSeq: 1 FROBNICATE\n\
         Content-Length: 0\n\n",
    );
    assert_eq!(out.transmits.len(), 1);
    assert_eq!(out.transmits[0].remote, "192.0.2.201:5070".parse().unwrap());
    let fwd = String::from_utf8(out.transmits[0].bytes.clone()).unwrap();
    assert!(
        fwd.starts_with("FROBNICATE sip:bob@192.0.2.201:5070 SIP/2.0\r\n"),
        "{fwd}"
    );
    assert!(fwd.contains("\r\nMax-Forwards: 69\r\n"));
}

#[test]
fn a_request_for_an_unknown_user_gets_404() {
    let mut h = Harness::open();
    let out = h.receive(
        "MESSAGE sip:nobody@biloxi.example.com SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKm1\n\
         Max-Forwards: 70\n\
         From: <sip:alice@atlanta.example.com>;tag=1\n\
         To: <sip:nobody@biloxi.example.com>\n\
         Call-ID: m1\n\
         CSeq: 1 MESSAGE\n\
         Content-Length: 0\n\n",
    );
    assert_eq!(out.status(), 404);
}

#[test]
fn an_unknown_request_uri_scheme_gets_416() {
    let mut h = Harness::open();
    let out = h.receive(
        "OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.201:5060;branch=z9hG4bKs1\n\
         Max-Forwards: 70\n\
         From: <sip:bob@biloxi.example.com>;tag=1\n\
         To: <sip:ss2.biloxi.example.com>\n\
         Call-ID: s1\n\
         CSeq: 1 OPTIONS\n\
         Content-Length: 0\n\n",
    );
    assert_eq!(out.status(), 416);
}

#[test]
fn stray_ack_and_responses_are_dropped_with_a_reason() {
    let mut h = Harness::open();
    let out = h.receive(
        "ACK sip:bob@biloxi.example.com SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.201:5060;branch=z9hG4bKa1\n\
         Max-Forwards: 70\n\
         From: <sip:alice@atlanta.example.com>;tag=1\n\
         To: <sip:bob@biloxi.example.com>;tag=2\n\
         Call-ID: a1\n\
         CSeq: 1 ACK\n\
         Content-Length: 0\n\n",
    );
    assert!(out.transmits.is_empty());
    assert!(matches!(out.events[..], [Event::Dropped { .. }]));
    let out = h.receive(
        "SIP/2.0 200 OK\n\
         Via: SIP/2.0/UDP 192.0.2.222:5060;branch=z9hG4bKr1\n\
         From: <sip:alice@atlanta.example.com>;tag=1\n\
         To: <sip:bob@biloxi.example.com>;tag=2\n\
         Call-ID: r1\n\
         CSeq: 1 OPTIONS\n\
         Content-Length: 0\n\n",
    );
    assert!(out.transmits.is_empty());
    assert!(matches!(out.events[..], [Event::Dropped { .. }]));
}

#[test]
fn garbage_never_panics_and_is_dropped() {
    let mut h = Harness::open();
    for bytes in [
        &b"\x00\x01\x02"[..],
        b"HELLO",
        b"\r\n\r\n",
        b"INVITE",
        &[0xff; 300],
    ] {
        let out = h.receive_bytes(bytes, BOB.parse().unwrap());
        assert!(out.transmits.is_empty());
    }
}
