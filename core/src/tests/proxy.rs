//! RFC 3261 §16 and §17 through the element, as a transaction-stateful proxy: Alice calls
//! Bob's AOR at biloxi.example.com, the proxy finds Bob's bindings and forwards.

use super::proxy_util::*;
use super::util::*;
use crate::auth::{compute_response, Algorithm};
use crate::config::User;
use crate::element::TimerRef;

const ALICE_VIA: &str = "SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKnashds8";

/// Bob at one device, Alice's INVITE forwarded to it: the harness and the forwarded text.
fn call_forwarded() -> (Harness, String) {
    let mut h = registered("<sip:bob@192.0.2.201>");
    let out = h.recv_from(ALICE, &invite("z9hG4bKnashds8"));
    let fwd = out.to(BOB);
    (h, fwd)
}

/// Bob at two devices with equal q: the harness and the two forwarded INVITEs.
fn call_forked() -> (Harness, String, String) {
    let mut h = registered("<sip:bob@192.0.2.201>, <sip:bob@192.0.2.202>");
    let out = h.recv_from(ALICE, &invite("z9hG4bKnashds8"));
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.101:5060 SIP/2.0 100 Trying",
            "192.0.2.201:5060 INVITE sip:bob@192.0.2.201 SIP/2.0",
            "192.0.2.202:5060 INVITE sip:bob@192.0.2.202 SIP/2.0",
        ]
    );
    let (a, b) = (out.to(BOB), out.to(BOB2));
    (h, a, b)
}

/// The response as the proxy must relay it: the text Bob sent without its top Via (§16.7
/// step 3), nothing else changed.
fn relayed(response: &str) -> String {
    let text = String::from_utf8(crlf(response)).unwrap();
    let top = format!("Via: {}\r\n", header_lines(&text, "Via")[0]);
    text.replacen(&top, "", 1)
}

fn assert_idle(h: &Harness) {
    assert_eq!(h.proxy.transaction_count(), 0, "transactions left");
    assert_eq!(h.proxy.context_count(), 0, "response contexts left");
}

// --- §16.3 request validation ---

#[test]
fn max_forwards_zero_on_an_invite_gets_483_and_nothing_is_forwarded() {
    let mut h = registered("<sip:bob@192.0.2.201>");
    // §16.3 step 3: no 100 Trying either, validation comes first.
    let out = h.recv_from(
        ALICE,
        &invite("z9hG4bKnashds8").replace("Max-Forwards: 70", "Max-Forwards: 0"),
    );
    assert_eq!(out.ladder(), ["192.0.2.101:5060 SIP/2.0 483 Too Many Hops"]);
    assert_eq!(h.proxy.context_count(), 0);
}

#[test]
fn options_to_a_user_with_max_forwards_zero_is_answered_by_the_proxy_with_allow() {
    let mut h = registered("<sip:bob@192.0.2.201>");
    // §16.3 step 3: for OPTIONS the element MAY act as the final recipient (§11).
    let out = h.recv_from(
        ALICE,
        &alice("OPTIONS", "z9hG4bKo1", "").replace("Max-Forwards: 70", "Max-Forwards: 0"),
    );
    assert_eq!(out.ladder(), ["192.0.2.101:5060 SIP/2.0 200 OK"]);
    let r = out.to(ALICE);
    assert_eq!(
        header(&r, "Allow"),
        "INVITE, ACK, CANCEL, BYE, REGISTER, OPTIONS"
    );
    assert_eq!(header(&r, "CSeq"), "1 OPTIONS");
}

#[test]
fn max_forwards_one_is_forwarded_as_zero() {
    let mut h = registered("<sip:bob@192.0.2.201>");
    // §16.6 step 3: decremented by one, and 1 is still allowed through.
    let out = h.recv_from(
        ALICE,
        &alice("OPTIONS", "z9hG4bKo1", "").replace("Max-Forwards: 70", "Max-Forwards: 1"),
    );
    assert_eq!(
        out.ladder(),
        ["192.0.2.201:5060 OPTIONS sip:bob@192.0.2.201 SIP/2.0"]
    );
    assert_eq!(header(&out.to(BOB), "Max-Forwards"), "0");
}

#[test]
fn an_unknown_proxy_require_tag_gets_420_listing_it_in_unsupported() {
    let mut h = registered("<sip:bob@192.0.2.201>");
    // §16.3 step 5.
    let out = h.recv_from(
        ALICE,
        &alice("INVITE", "z9hG4bKnashds8", "Proxy-Require: foo-bar\n"),
    );
    assert_eq!(out.ladder(), ["192.0.2.101:5060 SIP/2.0 420 Bad Extension"]);
    assert_eq!(header(&out.to(ALICE), "Unsupported"), "foo-bar");
    assert_eq!(h.proxy.context_count(), 0);
}

#[test]
fn require_is_for_the_uas_and_travels_through_the_proxy() {
    let mut h = registered("<sip:bob@192.0.2.201>");
    // §16.3 step 5 inspects Proxy-Require only; Require is left to the UAS (§8.2.2.3).
    let out = h.recv_from(
        ALICE,
        &alice("INVITE", "z9hG4bKnashds8", "Require: foo-bar\n"),
    );
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.101:5060 SIP/2.0 100 Trying",
            "192.0.2.201:5060 INVITE sip:bob@192.0.2.201 SIP/2.0"
        ]
    );
    assert_eq!(header(&out.to(BOB), "Require"), "foo-bar");
}

/// Bob registered with a proxy that relays for anyone: Alice of atlanta.example.com uses
/// it as her outbound proxy to reach chicago.example.com.
fn open_relay() -> Harness {
    let mut config = biloxi();
    config.proxy.relay = crate::config::Relay::Open;
    registered_with(config, "<sip:bob@192.0.2.201>")
}

/// An INVITE for chicago.example.com, which the proxy sends on to [`CHICAGO`].
fn invite_for_chicago() -> String {
    invite("z9hG4bKnashds8")
        .replace(
            "INVITE sip:bob@biloxi.example.com",
            "INVITE sip:carol@chicago.example.com",
        )
        .replace(
            "To: Bob <sip:bob@biloxi.example.com>",
            "To: Carol <sip:carol@chicago.example.com>",
        )
}

/// What `fwd` looks like when chicago's proxy sends it back: its Via on top, one hop less.
fn sent_back_by_chicago(fwd: &str) -> String {
    fwd.replacen(
        "Via: ",
        "Via: SIP/2.0/UDP 192.0.2.150:5060;branch=z9hG4bKchi1\r\nVia: ",
        1,
    )
    .replace("Max-Forwards: 69", "Max-Forwards: 68")
}

#[test]
fn a_request_that_comes_back_unchanged_is_a_loop_and_gets_482() {
    let mut h = open_relay();
    let out = h.recv_from(ALICE, &invite_for_chicago());
    let fwd = out.to(CHICAGO);
    assert!(fwd.starts_with("INVITE sip:carol@chicago.example.com SIP/2.0\r\n"));
    // §16.3 step 4: our own Via comes back with the branch hash of this very request.
    let out = h.recv_from(CHICAGO, &sent_back_by_chicago(&fwd));
    assert_eq!(out.ladder(), ["192.0.2.150:5060 SIP/2.0 482 Loop Detected"]);
    assert_eq!(
        header_lines(&out.to(CHICAGO), "Via")[0],
        "SIP/2.0/UDP 192.0.2.150:5060;branch=z9hG4bKchi1"
    );
    assert_eq!(
        h.proxy.context_count(),
        1,
        "only Alice's request is pending"
    );
}

#[test]
fn a_spiral_with_a_new_request_uri_is_forwarded_not_refused() {
    let mut h = open_relay();
    let fwd = h.recv_from(ALICE, &invite_for_chicago()).to(CHICAGO);
    // Chicago retargets to Bob's AOR and sends it back: our Via is in it, but the
    // Request-URI changed, so the branch hash differs (§16.3 step 4, RFC 5393 §4.2).
    let spiral = sent_back_by_chicago(&fwd).replace(
        "INVITE sip:carol@chicago.example.com",
        "INVITE sip:bob@biloxi.example.com",
    );
    let out = h.recv_from(CHICAGO, &spiral);
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.150:5060 SIP/2.0 100 Trying",
            "192.0.2.201:5060 INVITE sip:bob@192.0.2.201 SIP/2.0"
        ]
    );
    let second = out.to(BOB);
    let vias = header_lines(&second, "Via");
    assert_eq!(vias.len(), 4, "{second}");
    assert_eq!(vias[1], "SIP/2.0/UDP 192.0.2.150:5060;branch=z9hG4bKchi1");
    assert_eq!(vias[2], header_lines(&fwd, "Via")[0]);
    assert_eq!(vias[3], ALICE_VIA);
    assert_ne!(branch(&second), branch(&fwd));
    assert_eq!(header(&second, "Max-Forwards"), "67");
    assert_eq!(h.proxy.context_count(), 2);
}

// --- §22.3 proxy authentication ---

fn with_proxy_auth() -> Harness {
    let mut config = biloxi();
    config.proxy.authenticate = true;
    config.auth.users = vec![User {
        name: "alice".into(),
        password: "wonderland".into(),
        aors: vec![],
    }];
    registered_with(config, "<sip:bob@192.0.2.201>")
}

fn nonce_of(challenge: &str) -> String {
    let start = challenge.find("nonce=\"").unwrap() + 7;
    let end = challenge[start..].find('"').unwrap();
    challenge[start..start + end].to_owned()
}

/// Credentials of another proxy's realm, which this proxy must pass on untouched.
const ATLANTA_CREDENTIALS: &str = "Digest username=\"alice\", realm=\"atlanta.example.com\", \
    nonce=\"wf84f1ceczx41ae6cbe5aea9c8e88d359\", uri=\"sip:bob@biloxi.example.com\", \
    response=\"42ce3cef44b22f50c6a6071bc8\"";

#[test]
fn an_initial_invite_is_challenged_with_407_and_the_ack_is_absorbed() {
    let mut h = with_proxy_auth();
    let out = h.recv_from(ALICE, &invite("z9hG4bKnashds8"));
    assert_eq!(
        out.ladder(),
        ["192.0.2.101:5060 SIP/2.0 407 Proxy Authentication Required"]
    );
    let r = out.to(ALICE);
    let challenges = header_lines(&r, "Proxy-Authenticate");
    assert_eq!(challenges.len(), 2, "{r}");
    assert!(challenges[0].starts_with("Digest realm=\"biloxi.example.com\""));
    assert!(challenges[0].ends_with("algorithm=SHA-256"));
    assert!(challenges[1].ends_with("algorithm=MD5"));
    assert_eq!(h.proxy.context_count(), 0, "nothing was forwarded");
    // §17.2.1: the ACK for the 407 ends in the server transaction.
    let out = h.recv_from(ALICE, &ack_non_2xx("z9hG4bKnashds8", &header(&r, "To")));
    assert!(out.transmits.is_empty());
    h.wait_ms(5_000);
    assert_idle(&h);
}

#[test]
fn valid_credentials_are_consumed_and_another_realms_travel_on() {
    let mut h = with_proxy_auth();
    let r = h.recv_from(ALICE, &invite("z9hG4bKnashds8")).to(ALICE);
    let nonce = nonce_of(&header_lines(&r, "Proxy-Authenticate")[0]);
    let uri = "sip:bob@biloxi.example.com";
    let response = compute_response(
        Algorithm::Sha256,
        "alice",
        "biloxi.example.com",
        "wonderland",
        "INVITE",
        uri,
        &nonce,
        Some("auth"),
        Some("00000001"),
        Some("0a4f113b"),
    );
    let ours = format!(
        "Digest username=\"alice\", realm=\"biloxi.example.com\", nonce=\"{nonce}\", \
         uri=\"{uri}\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"{response}\", \
         algorithm=SHA-256"
    );
    let retry = alice(
        "INVITE",
        "z9hG4bKnashds9",
        &format!("Proxy-Authorization: {ATLANTA_CREDENTIALS}\nProxy-Authorization: {ours}\n"),
    )
    .replace("CSeq: 1 INVITE", "CSeq: 2 INVITE");
    let out = h.recv_from(ALICE, &retry);
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.101:5060 SIP/2.0 100 Trying",
            "192.0.2.201:5060 INVITE sip:bob@192.0.2.201 SIP/2.0"
        ]
    );
    // §22.3: the proxy consumes the credentials of its own realm only.
    assert_eq!(
        header_lines(&out.to(BOB), "Proxy-Authorization"),
        [ATLANTA_CREDENTIALS]
    );
}

#[test]
fn wrong_credentials_are_challenged_again_and_nothing_is_forwarded() {
    let mut h = with_proxy_auth();
    let r = h.recv_from(ALICE, &invite("z9hG4bKnashds8")).to(ALICE);
    let nonce = nonce_of(&header_lines(&r, "Proxy-Authenticate")[0]);
    let response = compute_response(
        Algorithm::Sha256,
        "alice",
        "biloxi.example.com",
        "not-her-password",
        "INVITE",
        "sip:bob@biloxi.example.com",
        &nonce,
        Some("auth"),
        Some("00000001"),
        Some("0a4f113b"),
    );
    let creds = format!(
        "Proxy-Authorization: Digest username=\"alice\", realm=\"biloxi.example.com\", \
         nonce=\"{nonce}\", uri=\"sip:bob@biloxi.example.com\", qop=auth, nc=00000001, \
         cnonce=\"0a4f113b\", response=\"{response}\", algorithm=SHA-256\n"
    );
    let retry = alice("INVITE", "z9hG4bKnashds9", &creds).replace("CSeq: 1", "CSeq: 2");
    let out = h.recv_from(ALICE, &retry);
    assert_eq!(
        out.ladder(),
        ["192.0.2.101:5060 SIP/2.0 407 Proxy Authentication Required"]
    );
    assert_eq!(h.proxy.context_count(), 0);
}

// --- §16.4 route information preprocessing ---

#[test]
fn a_route_naming_the_proxy_is_removed_and_the_next_route_is_followed() {
    let mut h = open_relay();
    let req = invite_for_chicago().replace(
        "Max-Forwards: 70\n",
        "Max-Forwards: 70\nRoute: <sip:ss2.biloxi.example.com;lr>, <sip:192.0.2.160;lr>\n",
    );
    let out = h.recv_from(ALICE, &req);
    // The next hop is the remaining Route, not chicago.example.com (§16.6 step 7); the
    // Request-URI stays as it is (loose routing).
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.101:5060 SIP/2.0 100 Trying",
            "192.0.2.160:5060 INVITE sip:carol@chicago.example.com SIP/2.0"
        ]
    );
    assert_eq!(
        header_lines(&out.to("192.0.2.160:5060"), "Route"),
        ["<sip:192.0.2.160;lr>"]
    );
}

#[test]
fn a_request_uri_naming_the_proxy_from_a_strict_router_is_replaced_by_the_last_route() {
    let mut h = registered("<sip:bob@192.0.2.201>");
    // §16.4: a strict router put our Record-Route URI in the Request-URI and the remote
    // target at the end of the Route set.
    let bye = in_dialog("BYE", "z9hG4bKbye1", 2)
        .replace(
            "BYE sip:bob@192.0.2.201 SIP/2.0",
            "BYE sip:ss2.biloxi.example.com;lr SIP/2.0",
        )
        .replace(ROUTE_ME, "Route: <sip:bob@192.0.2.201>\n");
    let out = h.recv_from(ALICE, &bye);
    assert_eq!(
        out.ladder(),
        ["192.0.2.201:5060 BYE sip:bob@192.0.2.201 SIP/2.0"]
    );
    assert!(header_lines(&out.to(BOB), "Route").is_empty());
}

// --- §16.5 target set ---

#[test]
fn an_unknown_user_gets_404() {
    let mut h = registered("<sip:bob@192.0.2.201>");
    let req = invite("z9hG4bKnashds8").replace(
        "INVITE sip:bob@biloxi.example.com",
        "INVITE sip:nobody@biloxi.example.com",
    );
    let out = h.recv_from(ALICE, &req);
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.101:5060 SIP/2.0 100 Trying",
            "192.0.2.101:5060 SIP/2.0 404 Not Found"
        ]
    );
    assert_eq!(h.proxy.context_count(), 0);
}

#[test]
fn a_known_user_without_a_binding_gets_480() {
    let mut config = biloxi();
    config.auth.users = vec![User {
        name: "carol".into(),
        password: "c4r0l".into(),
        aors: vec![],
    }];
    let mut h = registered_with(config, "<sip:bob@192.0.2.201>");
    let req = invite("z9hG4bKnashds8").replace(
        "INVITE sip:bob@biloxi.example.com",
        "INVITE sip:carol@biloxi.example.com",
    );
    let out = h.recv_from(ALICE, &req);
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.101:5060 SIP/2.0 100 Trying",
            "192.0.2.101:5060 SIP/2.0 480 Temporarily Unavailable"
        ]
    );
}

// --- §16.6 forwarding ---

#[test]
fn an_invite_gets_100_trying_at_once_and_is_forwarded_to_the_binding() {
    let mut h = registered("<sip:bob@192.0.2.201>");
    let out = h.recv_from(ALICE, &invite("z9hG4bKnashds8"));
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.101:5060 SIP/2.0 100 Trying",
            "192.0.2.201:5060 INVITE sip:bob@192.0.2.201 SIP/2.0"
        ]
    );
    // §8.2.6.2: no To tag on a 100.
    assert_eq!(
        header(&out.to(ALICE), "To"),
        "Bob <sip:bob@biloxi.example.com>"
    );
    let fwd = out.to(BOB);
    let b = branch(&fwd);
    assert!(b.starts_with("z9hG4bK") && b.ends_with(".1"), "{b}");
    // §16.6 steps 2-8: new Request-URI, Max-Forwards less one, Record-Route, our Via on
    // top; every other byte as received.
    assert_eq!(
        fwd.replace(&b, "BRANCH"),
        String::from_utf8(crlf(&format!(
            "INVITE sip:bob@192.0.2.201 SIP/2.0\n\
             Via: SIP/2.0/UDP ss2.biloxi.example.com;branch=BRANCH\n\
             Via: {ALICE_VIA}\n\
             Record-Route: <sip:ss2.biloxi.example.com;lr>\n\
             Max-Forwards: 69\n\
             From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\n\
             To: Bob <sip:bob@biloxi.example.com>\n\
             Call-ID: 3848276298220188511@atlanta.example.com\n\
             CSeq: 1 INVITE\n\
             Contact: <sip:alice@192.0.2.101>\n\
             Content-Length: 0\n\n"
        )))
        .unwrap()
    );
}

#[test]
fn record_route_is_not_added_when_disabled() {
    let mut config = biloxi();
    config.proxy.record_route = false;
    let mut h = registered_with(config, "<sip:bob@192.0.2.201>");
    let out = h.recv_from(ALICE, &invite("z9hG4bKnashds8"));
    assert!(header_lines(&out.to(BOB), "Record-Route").is_empty());
}

#[test]
fn a_bye_in_dialog_follows_the_route_set_without_record_route() {
    let mut h = registered("<sip:bob@192.0.2.201>");
    // §16.6 step 4: Record-Route only on requests that may create a dialog.
    let out = h.recv_from(ALICE, &in_dialog("BYE", "z9hG4bKbye1", 2));
    assert_eq!(
        out.ladder(),
        ["192.0.2.201:5060 BYE sip:bob@192.0.2.201 SIP/2.0"]
    );
    let fwd = out.to(BOB);
    assert!(header_lines(&fwd, "Record-Route").is_empty(), "{fwd}");
    assert!(
        header_lines(&fwd, "Route").is_empty(),
        "our Route value is consumed"
    );
    let ok = answer(&fwd, 200, "314159", "");
    let out = h.recv_from(BOB, &ok);
    assert_eq!(out.ladder(), ["192.0.2.101:5060 SIP/2.0 200 OK"]);
    assert_eq!(out.to(ALICE), relayed(&ok));
    // Timer K (T4) and Timer J (64*T1) end both transactions.
    h.wait_ms(32_000);
    assert_idle(&h);
}

// --- §16.7 response processing, INVITE ---

#[test]
fn a_100_from_downstream_is_not_relayed() {
    let (mut h, fwd) = call_forwarded();
    // §16.7 step 5: "MUST NOT forward any 100 (Trying) response".
    let out = h.recv_from(BOB, &answer(&fwd, 100, "", ""));
    assert!(out.transmits.is_empty(), "{out:#?}");
}

#[test]
fn ringing_and_200_are_relayed_upstream_without_the_proxys_via() {
    let (mut h, fwd) = call_forwarded();
    let rr = "Record-Route: <sip:ss2.biloxi.example.com;lr>\nContact: <sip:bob@192.0.2.201>\n";
    let ringing = answer(&fwd, 180, "314159", rr);
    let out = h.recv_from(BOB, &ringing);
    assert_eq!(out.ladder(), ["192.0.2.101:5060 SIP/2.0 180 Ringing"]);
    assert_eq!(out.to(ALICE), relayed(&ringing));
    assert_eq!(header_lines(&out.to(ALICE), "Via"), [ALICE_VIA]);
    let ok = answer(&fwd, 200, "314159", rr);
    let out = h.recv_from(BOB, &ok);
    assert_eq!(out.ladder(), ["192.0.2.101:5060 SIP/2.0 200 OK"]);
    assert_eq!(out.to(ALICE), relayed(&ok));
    assert_eq!(h.proxy.context_count(), 0, "the 2xx was the final answer");
}

/// §16.7 step 9 removes the top Via; the rest of a response goes to the UA as it came. The
/// proxy does not judge the headers it only carries (Contact, Record-Route, the URIs of From
/// and To, Vias below its own): a 180 with an unparsable Contact and Record-Route still
/// reaches Alice, unchanged.
#[test]
fn a_response_is_relayed_without_judging_the_headers_the_proxy_only_carries() {
    let (mut h, fwd) = call_forwarded();
    let odd = "Record-Route: <sip:[ss2.biloxi;lr>\nContact: <sip:bob@192.0.2.201\n";
    let ringing = answer(&fwd, 180, "314159", odd)
        .replace(
            "From: Alice <sip:alice@atlanta",
            "From: Alice <sip:alice@[atlanta",
        )
        .replace(
            &format!("Via: {ALICE_VIA}"),
            &format!("Via: {ALICE_VIA};=x"),
        );
    let out = h.recv_from(BOB, &ringing);
    assert_eq!(out.ladder(), ["192.0.2.101:5060 SIP/2.0 180 Ringing"]);
    assert_eq!(out.to(ALICE), relayed(&ringing));
}

/// What the proxy reads from a response must parse, or the response is dropped with its
/// reason and nothing is relayed: its own Via on top, CSeq, Call-ID, To and From as
/// name-addrs (the To tag is read), one of each.
#[test]
fn a_response_whose_parts_the_proxy_reads_are_broken_is_dropped_with_a_reason() {
    let (_, fwd) = call_forwarded();
    let ok = answer(&fwd, 180, "314159", "");
    let top_via = header_lines(&String::from_utf8(crlf(&ok)).unwrap(), "Via")[0].clone();
    let cases = [
        (
            "Bad Via",
            ok.replacen(&top_via, &format!("{top_via};branch"), 1),
        ),
        ("Bad CSeq", ok.replace("CSeq: 1 INVITE", "CSeq: one INVITE")),
        ("Bad Call-ID", ok.replace("Call-ID: ", "Call-ID: a b ")),
        ("Bad To", ok.replace(";tag=314159", ";tag")),
        (
            "Bad From",
            ok.replace("From: Alice <sip:", "From: Alice sip:<"),
        ),
        ("Duplicate To", ok.replace("To: ", "To: <sip:x@y>\nTo: ")),
        ("Missing CSeq", ok.replace("CSeq: 1 INVITE\n", "")),
    ];
    for (reason, broken) in cases {
        assert_ne!(broken, ok, "{reason}: the case must change the response");
        let (mut h, _) = call_forwarded();
        let out = h.recv_from(BOB, &broken);
        assert!(out.transmits.is_empty(), "{reason}: {out:#?}");
        let dropped: Vec<String> = out
            .events
            .iter()
            .filter_map(|e| match e {
                crate::Event::Dropped { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(dropped, [format!("invalid response: {reason}")], "{broken}");
    }
}

#[test]
fn the_ack_for_a_2xx_is_forwarded_statelessly() {
    let (mut h, fwd) = call_forwarded();
    h.recv_from(BOB, &answer(&fwd, 200, "314159", ""));
    let before = h.proxy.transaction_count();
    // §16.4, §16.6 without a transaction: the ACK for a 2xx is a request of its own.
    let out = h.recv_from(ALICE, &in_dialog("ACK", "z9hG4bKack1", 1));
    assert_eq!(
        out.ladder(),
        ["192.0.2.201:5060 ACK sip:bob@192.0.2.201 SIP/2.0"]
    );
    let ack = out.to(BOB);
    assert_eq!(
        header_lines(&ack, "Via")[1],
        "SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKack1"
    );
    assert!(header_lines(&ack, "Route").is_empty());
    assert_eq!(header(&ack, "Max-Forwards"), "69");
    assert_eq!(h.proxy.transaction_count(), before, "no transaction for it");
}

#[test]
fn a_retransmitted_200_is_forwarded_again() {
    let (mut h, fwd) = call_forwarded();
    let ok = answer(&fwd, 200, "314159", "Contact: <sip:bob@192.0.2.201>\n");
    let first = h.recv_from(BOB, &ok).to(ALICE);
    h.wait_ms(500);
    // RFC 6026 §7.2: the client transaction is Accepted and passes every 2xx up; the
    // UAS retransmits until its ACK arrives, and each copy must reach the UAC.
    let out = h.recv_from(BOB, &ok);
    assert_eq!(out.ladder(), ["192.0.2.101:5060 SIP/2.0 200 OK"]);
    assert_eq!(out.to(ALICE), first);
    // Timer M and Timer L (64*T1) end the transactions.
    h.wait_ms(32_000);
    assert_idle(&h);
}

// Found by the mutation test (core/tests/mutations.rs): a 2xx retransmission that has lost
// the Via to forward it to vanished without a word.
#[test]
fn a_retransmitted_200_with_nowhere_to_go_is_dropped_with_a_reason() {
    let (mut h, fwd) = call_forwarded();
    let ok = answer(&fwd, 200, "314159", "Contact: <sip:bob@192.0.2.201>\n");
    h.recv_from(BOB, &ok);
    assert_eq!(h.proxy.context_count(), 0);
    let only_ours = ok.replace(&format!("Via: {ALICE_VIA}\n"), "");
    assert_ne!(only_ours, ok);
    let out = h.recv_from(BOB, &only_ours);
    assert!(out.transmits.is_empty(), "{out:#?}");
    assert!(
        matches!(
            out.events.as_slice(),
            [crate::Event::Dropped { reason, .. }] if reason.contains("without a Via")
        ),
        "{out:#?}"
    );
    let unknown_host = ok.replace("192.0.2.101:5060", "pc33.atlanta.example.com");
    let out = h.recv_from(BOB, &unknown_host);
    assert!(out.transmits.is_empty(), "{out:#?}");
    assert!(
        matches!(
            out.events.as_slice(),
            [crate::Event::Dropped { reason, .. }] if reason.contains("no address")
        ),
        "{out:#?}"
    );
}

#[test]
fn a_486_is_acked_hop_by_hop_and_relayed_upstream() {
    let (mut h, fwd) = call_forwarded();
    let busy = answer(&fwd, 486, "314159", "");
    let out = h.recv_from(BOB, &busy);
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.101:5060 SIP/2.0 486 Busy Here",
            "192.0.2.201:5060 ACK sip:bob@192.0.2.201 SIP/2.0"
        ]
    );
    // §17.1.1.3: the ACK has the INVITE's branch and the response's To.
    let ack = out.to(BOB);
    assert_eq!(branch(&ack), branch(&fwd));
    assert_eq!(header(&ack, "CSeq"), "1 ACK");
    assert_eq!(
        header(&ack, "To"),
        "Bob <sip:bob@biloxi.example.com>;tag=314159"
    );
    assert_eq!(out.to(ALICE), relayed(&busy));
    // Bob did not get the ACK and resends: the ACK again, nothing upstream.
    let out = h.recv_from(BOB, &busy);
    assert_eq!(
        out.ladder(),
        ["192.0.2.201:5060 ACK sip:bob@192.0.2.201 SIP/2.0"]
    );
    assert_eq!(out.to(BOB), ack);
}

#[test]
fn the_upstream_ack_for_a_486_is_absorbed_by_the_server_transaction() {
    let (mut h, fwd) = call_forwarded();
    let up = h.recv_from(BOB, &answer(&fwd, 486, "314159", "")).to(ALICE);
    // §17.2.1: the ACK for a non-2xx belongs to the transaction; it is not forwarded.
    let out = h.recv_from(ALICE, &ack_non_2xx("z9hG4bKnashds8", &header(&up, "To")));
    assert!(out.transmits.is_empty(), "{out:#?}");
    // Timer G would resend the 486 had the ACK not arrived.
    assert!(h.wait_ms(1_000).transmits.is_empty());
    // Timer I (T4) and Timer D (32 s) end both transactions.
    h.wait_ms(31_000);
    assert_idle(&h);
}

/// §16.6 step 8: the branch is unique. Two INVITEs that differ only in their Via (two
/// server transactions) share a loop hash, so the second's branch gets a suffix; each
/// response then finds its own client transaction and goes to its own caller.
#[test]
fn a_second_request_with_the_same_loop_hash_gets_its_own_branch() {
    let mut h = registered("<sip:bob@192.0.2.201>");
    let first = h.recv_from(ALICE, &invite("z9hG4bKnashds8")).to(BOB);
    let second = h.recv_from(ALICE, &invite("z9hG4bKother9")).to(BOB);
    let branch = |fwd: &str| {
        let via = header_lines(fwd, "Via")[0].clone();
        via.split(";branch=").nth(1).unwrap_or("").to_owned()
    };
    assert_eq!(branch(&second), format!("{}.2", branch(&first)));
    for (fwd, alice_branch) in [(&second, "z9hG4bKother9"), (&first, "z9hG4bKnashds8")] {
        let out = h.recv_from(BOB, &answer(fwd, 180, "314159", ""));
        let relayed = out.to(ALICE);
        assert!(
            header_lines(&relayed, "Via")[0].ends_with(&format!("branch={alice_branch}")),
            "{relayed}"
        );
    }
}

// --- §16.6 forking ---

#[test]
fn a_parallel_fork_cancels_the_ringing_branch_when_another_answers() {
    let (mut h, a, b) = call_forked();
    assert_ne!(branch(&a), branch(&b));
    let out = h.recv_from(BOB2, &answer(&b, 180, "b2", ""));
    assert_eq!(out.ladder(), ["192.0.2.101:5060 SIP/2.0 180 Ringing"]);
    // §16.7 step 10: the 200 goes up at once and the pending branch is cancelled.
    let ok = answer(&a, 200, "b1", "");
    let out = h.recv_from(BOB, &ok);
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.101:5060 SIP/2.0 200 OK",
            "192.0.2.202:5060 CANCEL sip:bob@192.0.2.202 SIP/2.0"
        ]
    );
    assert_eq!(out.to(ALICE), relayed(&ok));
    let cancel = out.to(BOB2);
    // §9.1: the CANCEL has the INVITE's branch, Request-URI, To and CSeq number.
    assert_eq!(branch(&cancel), branch(&b));
    assert_eq!(header(&cancel, "CSeq"), "1 CANCEL");
    assert_eq!(header(&cancel, "To"), "Bob <sip:bob@biloxi.example.com>");
    assert!(h
        .recv_from(BOB2, &answer(&cancel, 200, "b2", ""))
        .transmits
        .is_empty());
    // The 487 of the cancelled branch is acknowledged and goes no further: exactly one
    // final response reached Alice.
    let out = h.recv_from(BOB2, &answer(&b, 487, "b2", ""));
    assert_eq!(
        out.ladder(),
        ["192.0.2.202:5060 ACK sip:bob@192.0.2.202 SIP/2.0"]
    );
    assert_eq!(branch(&out.to(BOB2)), branch(&b));
    assert_eq!(h.proxy.context_count(), 0);
    h.recv_from(ALICE, &in_dialog("ACK", "z9hG4bKack1", 1));
    h.wait_ms(32_000);
    assert_idle(&h);
}

#[test]
fn every_2xx_of_a_parallel_fork_is_relayed() {
    let (mut h, a, b) = call_forked();
    let first = answer(&a, 200, "b1", "");
    assert_eq!(
        h.recv_from(BOB, &first).ladder(),
        ["192.0.2.101:5060 SIP/2.0 200 OK"]
    );
    // §16.7 step 5: after the final response, every 2xx to an INVITE is still forwarded;
    // Alice sees two dialogs and decides what to do with the second.
    let second = answer(&b, 200, "b2", "");
    let out = h.recv_from(BOB2, &second);
    assert_eq!(out.ladder(), ["192.0.2.101:5060 SIP/2.0 200 OK"]);
    assert_eq!(out.to(ALICE), relayed(&second));
}

#[test]
fn a_branch_cancelled_before_it_rang_gets_its_cancel_when_it_rings() {
    let (mut h, a, b) = call_forked();
    // §9.1: the second branch has had no provisional response, so no CANCEL yet...
    assert_eq!(
        h.recv_from(BOB, &answer(&a, 200, "b1", "")).ladder(),
        ["192.0.2.101:5060 SIP/2.0 200 OK"]
    );
    // ...until it rings. Its 180 comes after the final response: not relayed (§16.7 step 5).
    let out = h.recv_from(BOB2, &answer(&b, 180, "b2", ""));
    assert_eq!(
        out.ladder(),
        ["192.0.2.202:5060 CANCEL sip:bob@192.0.2.202 SIP/2.0"]
    );
    assert_eq!(branch(&out.to(BOB2)), branch(&b));
}

#[test]
fn a_serial_fork_tries_the_lower_q_after_the_higher_fails() {
    let mut h = registered("<sip:bob@192.0.2.201>;q=1.0, <sip:bob@192.0.2.202>;q=0.5");
    let out = h.recv_from(ALICE, &invite("z9hG4bKnashds8"));
    // §16.6: the highest q first, alone.
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.101:5060 SIP/2.0 100 Trying",
            "192.0.2.201:5060 INVITE sip:bob@192.0.2.201 SIP/2.0"
        ]
    );
    let first = out.to(BOB);
    let out = h.recv_from(BOB, &answer(&first, 486, "b1", ""));
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.201:5060 ACK sip:bob@192.0.2.201 SIP/2.0",
            "192.0.2.202:5060 INVITE sip:bob@192.0.2.202 SIP/2.0"
        ],
        "the 486 waits: another target is left"
    );
    let second = out.to(BOB2);
    assert_ne!(branch(&second), branch(&first));
    let ok = answer(&second, 200, "b2", "");
    let out = h.recv_from(BOB2, &ok);
    assert_eq!(out.ladder(), ["192.0.2.101:5060 SIP/2.0 200 OK"]);
    assert_eq!(out.to(ALICE), relayed(&ok));
}

// --- §16.7 step 6: the best response ---

#[test]
fn a_6xx_cancels_the_other_branches_and_wins_over_their_487() {
    let (mut h, a, b) = call_forked();
    h.recv_from(BOB2, &answer(&b, 180, "b2", ""));
    let decline = answer(&a, 603, "b1", "");
    let out = h.recv_from(BOB, &decline);
    // §16.7 step 5: a 6xx is not forwarded at once; pending branches are cancelled.
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.201:5060 ACK sip:bob@192.0.2.201 SIP/2.0",
            "192.0.2.202:5060 CANCEL sip:bob@192.0.2.202 SIP/2.0"
        ]
    );
    let out = h.recv_from(BOB2, &answer(&b, 487, "b2", ""));
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.101:5060 SIP/2.0 603 Decline",
            "192.0.2.202:5060 ACK sip:bob@192.0.2.202 SIP/2.0"
        ]
    );
    assert_eq!(out.to(ALICE), relayed(&decline));
}

#[test]
fn the_lowest_class_wins_when_every_branch_fails() {
    let (mut h, a, b) = call_forked();
    assert_eq!(
        h.recv_from(BOB, &answer(&a, 486, "b1", "")).ladder(),
        ["192.0.2.201:5060 ACK sip:bob@192.0.2.201 SIP/2.0"]
    );
    let moved = answer(&b, 302, "b2", "Contact: <sip:bob@192.0.2.99>\n");
    let out = h.recv_from(BOB2, &moved);
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.101:5060 SIP/2.0 302 Moved Temporarily",
            "192.0.2.202:5060 ACK sip:bob@192.0.2.202 SIP/2.0"
        ]
    );
    assert_eq!(out.to(ALICE), relayed(&moved));
}

#[test]
fn a_407_is_preferred_over_other_4xx() {
    let (mut h, a, b) = call_forked();
    let challenge = answer(
        &a,
        407,
        "b1",
        "Proxy-Authenticate: Digest realm=\"chicago.example.com\", nonce=\"c1\"\n",
    );
    h.recv_from(BOB, &challenge);
    let out = h.recv_from(BOB2, &answer(&b, 486, "b2", ""));
    // §16.7 step 6: the caller can act on a 407 and retry; a 486 it cannot.
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.101:5060 SIP/2.0 407 Proxy Authentication Required",
            "192.0.2.202:5060 ACK sip:bob@192.0.2.202 SIP/2.0"
        ]
    );
    assert_eq!(out.to(ALICE), relayed(&challenge));
}

#[test]
fn the_chosen_401_carries_the_challenges_of_every_401_and_407() {
    let (mut h, a, b) = call_forked();
    let www = "Digest realm=\"bob-phone\", nonce=\"p1\", qop=\"auth\"";
    let proxy = "Digest realm=\"chicago.example.com\", nonce=\"c1\", qop=\"auth\"";
    let unauthorized = answer(&a, 401, "b1", &format!("WWW-Authenticate: {www}\n"));
    h.recv_from(BOB, &unauthorized);
    let out = h.recv_from(
        BOB2,
        &answer(&b, 407, "b2", &format!("Proxy-Authenticate: {proxy}\n")),
    );
    // §16.7 step 7: Alice must answer every challenge when she retries, so the response
    // chosen carries all of them, unmodified.
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.101:5060 SIP/2.0 401 Unauthorized",
            "192.0.2.202:5060 ACK sip:bob@192.0.2.202 SIP/2.0"
        ]
    );
    let up = out.to(ALICE);
    assert_eq!(header_lines(&up, "WWW-Authenticate"), [www]);
    assert_eq!(header_lines(&up, "Proxy-Authenticate"), [proxy]);
    assert_eq!(header(&up, "To"), "Bob <sip:bob@biloxi.example.com>;tag=b1");
    assert_eq!(header_lines(&up, "Via"), [ALICE_VIA]);
}

#[test]
fn a_503_from_the_only_branch_goes_upstream_as_500() {
    let (mut h, fwd) = call_forwarded();
    let out = h.recv_from(BOB, &answer(&fwd, 503, "314159", "Retry-After: 120\n"));
    // §16.7 step 6: a 503 would tell the caller this proxy is unavailable.
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.101:5060 SIP/2.0 500 Server Internal Error",
            "192.0.2.201:5060 ACK sip:bob@192.0.2.201 SIP/2.0"
        ]
    );
    let up = out.to(ALICE);
    assert_eq!(header_lines(&up, "Via"), [ALICE_VIA]);
    assert_eq!(header(&up, "CSeq"), "1 INVITE");
    assert!(header_lines(&up, "Retry-After").is_empty());
}

// --- §16.10 CANCEL ---

#[test]
fn a_cancel_is_answered_at_once_and_sent_downstream_only_after_a_provisional() {
    let (mut h, fwd) = call_forwarded();
    let out = h.recv_from(ALICE, &cancel("z9hG4bKnashds8"));
    // §16.10: 200 to the CANCEL; §9.1: no CANCEL before a provisional response.
    assert_eq!(out.ladder(), ["192.0.2.101:5060 SIP/2.0 200 OK"]);
    assert_eq!(header(&out.to(ALICE), "CSeq"), "1 CANCEL");
    let out = h.recv_from(BOB, &answer(&fwd, 100, "", ""));
    assert_eq!(
        out.ladder(),
        ["192.0.2.201:5060 CANCEL sip:bob@192.0.2.201 SIP/2.0"]
    );
    let cancel_down = out.to(BOB);
    assert_eq!(branch(&cancel_down), branch(&fwd));
    assert!(h
        .recv_from(BOB, &answer(&cancel_down, 200, "314159", ""))
        .transmits
        .is_empty());
    // The INVITE's 487 is acknowledged downstream and relayed upstream.
    let terminated = answer(&fwd, 487, "314159", "");
    let out = h.recv_from(BOB, &terminated);
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.101:5060 SIP/2.0 487 Request Terminated",
            "192.0.2.201:5060 ACK sip:bob@192.0.2.201 SIP/2.0"
        ]
    );
    assert_eq!(out.to(ALICE), relayed(&terminated));
    h.recv_from(
        ALICE,
        &ack_non_2xx(
            "z9hG4bKnashds8",
            "Bob <sip:bob@biloxi.example.com>;tag=314159",
        ),
    );
    h.wait_ms(32_000);
    assert_idle(&h);
}

#[test]
fn a_cancel_matching_no_transaction_gets_481() {
    let mut h = registered("<sip:bob@192.0.2.201>");
    let out = h.recv_from(ALICE, &cancel("z9hG4bKnothing"));
    assert_eq!(
        out.ladder(),
        ["192.0.2.101:5060 SIP/2.0 481 Call/Transaction Does Not Exist"]
    );
}

#[test]
fn a_200_crossing_the_cancel_is_still_relayed_upstream() {
    let (mut h, fwd) = call_forwarded();
    h.recv_from(BOB, &answer(&fwd, 180, "314159", ""));
    let out = h.recv_from(ALICE, &cancel("z9hG4bKnashds8"));
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.101:5060 SIP/2.0 200 OK",
            "192.0.2.201:5060 CANCEL sip:bob@192.0.2.201 SIP/2.0"
        ]
    );
    let cancel_down = out.to(BOB);
    // Bob answered before the CANCEL reached him: the call is up and Alice must know
    // (§16.7 step 5, every 2xx; §9.2, the CANCEL has no effect on a completed INVITE).
    let ok = answer(&fwd, 200, "314159", "");
    let out = h.recv_from(BOB, &ok);
    assert_eq!(out.ladder(), ["192.0.2.101:5060 SIP/2.0 200 OK"]);
    assert_eq!(out.to(ALICE), relayed(&ok));
    assert_eq!(header(&out.to(ALICE), "CSeq"), "1 INVITE");
    assert!(h
        .recv_from(BOB, &answer(&cancel_down, 200, "314159", ""))
        .transmits
        .is_empty());
    let out = h.recv_from(ALICE, &in_dialog("ACK", "z9hG4bKack1", 1));
    assert_eq!(
        out.ladder(),
        ["192.0.2.201:5060 ACK sip:bob@192.0.2.201 SIP/2.0"]
    );
    h.wait_ms(32_000);
    assert_idle(&h);
}

// --- §17.1 timers on the branches ---

#[test]
fn timer_a_retransmits_a_silent_branch_and_timer_b_sends_408_upstream() {
    let (mut h, fwd) = call_forwarded();
    // §17.1.1.2: the same bytes again after T1.
    let out = h.wait_ms(500);
    assert_eq!(out.to(BOB), fwd);
    let invite_again = "192.0.2.201:5060 INVITE sip:bob@192.0.2.201 SIP/2.0".to_owned();
    // ...then at 2*T1, 4*T1, ... after the previous one; Timer B at 64*T1 ends the branch
    // and §16.7 step 6 has no final response: 408.
    assert_eq!(
        h.run_for(31_500),
        [
            (1_000, invite_again.clone()),
            (3_000, invite_again.clone()),
            (7_000, invite_again.clone()),
            (15_000, invite_again.clone()),
            (31_000, invite_again),
            (
                31_500,
                "192.0.2.101:5060 SIP/2.0 408 Request Timeout".to_owned()
            ),
        ]
    );
    assert_eq!(h.proxy.context_count(), 0);
    // Timer G resends the 408 until Alice's ACK; then Timer I ends it.
    let out = h.wait_ms(500);
    assert_eq!(
        out.ladder(),
        ["192.0.2.101:5060 SIP/2.0 408 Request Timeout"]
    );
    let to = header(&out.to(ALICE), "To");
    assert!(h
        .recv_from(ALICE, &ack_non_2xx("z9hG4bKnashds8", &to))
        .transmits
        .is_empty());
    h.wait_ms(5_000);
    assert_idle(&h);
}

#[test]
fn a_silent_non_invite_branch_is_retransmitted_and_gets_no_408_upstream() {
    let mut h = registered("<sip:bob@192.0.2.201>");
    let message = alice("MESSAGE", "z9hG4bKm1", "");
    let out = h.recv_from(ALICE, &message);
    assert_eq!(
        out.ladder(),
        ["192.0.2.201:5060 MESSAGE sip:bob@192.0.2.201 SIP/2.0"]
    );
    let again = "192.0.2.201:5060 MESSAGE sip:bob@192.0.2.201 SIP/2.0".to_owned();
    assert_eq!(h.wait_ms(500).ladder(), [again.as_str()]);
    // Alice's own retransmission is absorbed: nothing to resend yet, nothing forwarded.
    assert!(h.recv_from(ALICE, &message).transmits.is_empty());
    // §17.1.2.2: Timer E doubles up to T2, Timer F at 64*T1. RFC 4320 §4.2: no 408 for a
    // non-INVITE, Alice's transaction times out by itself.
    let times: Vec<u64> = h
        .run_for(31_500)
        .into_iter()
        .map(|(t, line)| {
            assert_eq!(line, again);
            t
        })
        .collect();
    assert_eq!(
        times,
        [1_000, 3_000, 7_000, 11_000, 15_000, 19_000, 23_000, 27_000, 31_000]
    );
    assert_idle(&h);
}

// Found by the `handle_input` fuzz target: two requests that differ only in their Via
// sent-by are two server transactions (§17.2.3) with one loop hash; their branches were the
// same, so the second client transaction replaced the first, whose server transaction and
// response context then waited forever.
#[test]
fn requests_with_one_loop_hash_get_distinct_branches_and_both_end() {
    let mut h = registered("<sip:bob@192.0.2.201>");
    let message = alice("MESSAGE", "z9hG4bKsame", "");
    let first = h.recv_from(ALICE, &message).to(BOB);
    let other = message.replace("192.0.2.101:5060;", "192.0.2.105:5060;");
    let second = h.recv_from("192.0.2.105:5060", &other).to(BOB);
    let (a, b) = (branch(&first), branch(&second));
    assert_ne!(a, b);
    // Loop detection reads the hash after the magic cookie: the same in both.
    assert_eq!(a[..23], b[..23]);
    assert_eq!(h.proxy.transaction_count(), 4);
    h.recv_from(BOB, &answer(&second, 200, "314159", ""));
    h.recv_from(BOB, &answer(&first, 200, "314159", ""));
    h.wait_ms(40_000);
    assert_idle(&h);
}

// --- §16.8 Timer C ---

#[test]
fn timer_c_cancels_a_branch_that_rings_too_long_and_the_487_goes_upstream() {
    let (mut h, fwd) = call_forwarded();
    h.wait_ms(1_000);
    assert_eq!(
        h.recv_from(BOB, &answer(&fwd, 180, "314159", "")).ladder(),
        ["192.0.2.101:5060 SIP/2.0 180 Ringing"]
    );
    // §16.7 step 2: the 180 restarts Timer C (185 s); §16.8: it fires with a provisional
    // received, so the branch is cancelled.
    assert_eq!(
        h.run_for(185_000),
        [(
            185_000,
            "192.0.2.201:5060 CANCEL sip:bob@192.0.2.201 SIP/2.0".to_owned()
        )]
    );
    let terminated = answer(&fwd, 487, "314159", "");
    let out = h.recv_from(BOB, &terminated);
    assert_eq!(
        out.ladder(),
        [
            "192.0.2.101:5060 SIP/2.0 487 Request Terminated",
            "192.0.2.201:5060 ACK sip:bob@192.0.2.201 SIP/2.0"
        ]
    );
    assert_eq!(out.to(ALICE), relayed(&terminated));
}

#[test]
fn a_100_from_downstream_does_not_restart_timer_c() {
    let (mut h, fwd) = call_forwarded();
    h.wait_ms(1_000);
    h.recv_from(BOB, &answer(&fwd, 100, "", ""));
    // §16.7 step 2: only 101-199 restart Timer C, so it fires 185 s after the INVITE left,
    // 184 s after the 100.
    assert_eq!(
        h.run_for(184_000),
        [(
            184_000,
            "192.0.2.201:5060 CANCEL sip:bob@192.0.2.201 SIP/2.0".to_owned()
        )]
    );
}

#[test]
fn every_ringing_restarts_timer_c_and_the_timer_index_keeps_one_entry() {
    let (mut h, fwd) = call_forwarded();
    let timer_c_entries = |h: &Harness| {
        h.proxy
            .timers
            .iter()
            .filter(|(_, t)| matches!(t, TimerRef::TimerC(..)))
            .count()
    };
    // A 180 every 100 s: each restarts Timer C (§16.7 step 2), so the branch outlives
    // the 185 s any one of them would give it, and the index never holds a second entry.
    for _ in 0..4 {
        h.recv_from(BOB, &answer(&fwd, 180, "314159", ""));
        assert_eq!(timer_c_entries(&h), 1);
        let sent = h.run_for(100_000);
        assert!(sent.is_empty(), "{sent:?}");
    }
    assert_eq!(timer_c_entries(&h), 1);
    // The last 180 came 100 s ago: Timer C fires 85 s from now, not earlier.
    assert_eq!(
        h.run_for(85_000),
        [(
            85_000,
            "192.0.2.201:5060 CANCEL sip:bob@192.0.2.201 SIP/2.0".to_owned()
        )]
    );
    // The 487 ends the branch: its Timer C entry leaves the index with it.
    h.recv_from(BOB, &answer(&fwd, 487, "314159", ""));
    assert_eq!(timer_c_entries(&h), 0);
}

#[test]
fn timer_c_gives_up_on_a_branch_that_ignores_its_cancel() {
    let (mut h, fwd) = call_forwarded();
    h.recv_from(BOB, &answer(&fwd, 180, "314159", ""));
    let cancel_line = "192.0.2.201:5060 CANCEL sip:bob@192.0.2.201 SIP/2.0".to_owned();
    assert_eq!(h.run_for(185_000), [(185_000, cancel_line.clone())]);
    // Bob answers neither the CANCEL nor the INVITE. §16.8: the proxy MUST reset Timer C
    // or end the client transaction; §9.1: after 64*T1 without a final response the
    // INVITE is taken as cancelled. No final response at all: 408 (§16.7 step 6).
    let sent = h.run_for(31_999);
    assert_eq!(sent.len(), 10, "Timer E resends the CANCEL: {sent:?}");
    assert!(sent.iter().all(|(_, l)| *l == cancel_line), "{sent:?}");
    let out = h.wait_ms(1);
    assert_eq!(
        out.ladder(),
        ["192.0.2.101:5060 SIP/2.0 408 Request Timeout"]
    );
    let to = header(&out.to(ALICE), "To");
    assert!(h
        .recv_from(ALICE, &ack_non_2xx("z9hG4bKnashds8", &to))
        .transmits
        .is_empty());
    h.wait_ms(5_000);
    assert_idle(&h);
}
