//! Hostile input: floods from one address, relaying through the proxy, guessing user names,
//! and requests over the limits. Each gets the RFC's answer (or none), never a crash.

use std::time::Duration;

use super::proxy_util::*;
use super::util::*;
use crate::auth::{compute_response, Algorithm};
use crate::config::{IpNet, OverLimit, Relay, User};
use crate::{Config, Event};

/// Far away: no exemption applies to it.
const STRANGER: &str = "203.0.113.9:5060";

fn options(branch: &str) -> String {
    format!(
        "OPTIONS sip:biloxi.example.com SIP/2.0\n\
         Via: SIP/2.0/UDP 203.0.113.9:5060;branch={branch}\n\
         Max-Forwards: 70\n\
         From: <sip:scan@203.0.113.9>;tag=1\n\
         To: <sip:biloxi.example.com>\n\
         Call-ID: {branch}\n\
         CSeq: 1 OPTIONS\n\
         Content-Length: 0\n\n"
    )
}

fn rate_limited(per_second: u32, burst: u32, over: OverLimit) -> Harness {
    let mut c = biloxi();
    c.limits.source_rate.per_second = per_second;
    c.limits.source_rate.burst = burst;
    c.limits.source_rate.over = over;
    Harness::new(c)
}

fn limited_events(out: &Drained) -> usize {
    out.events
        .iter()
        .filter(|e| matches!(e, Event::SourceLimited { .. }))
        .count()
}

// --- requests per source ---

#[test]
fn a_source_over_its_rate_gets_503_with_retry_after_and_one_event() {
    let mut h = rate_limited(2, 3, OverLimit::Reject { retry_after_s: 7 });
    for i in 0..3 {
        let out = h.recv_from(STRANGER, &options(&format!("z9hG4bKr{i}")));
        assert_eq!(out.status(), 200);
    }
    let out = h.recv_from(STRANGER, &options("z9hG4bKr3"));
    let r = out.response();
    assert!(r.starts_with("SIP/2.0 503 Rate Limit Exceeded\r\n"), "{r}");
    assert_eq!(header_lines(&r, "Retry-After"), ["7"]);
    assert_eq!(limited_events(&out), 1);
    assert_eq!(
        out.events,
        [Event::SourceLimited {
            source: "203.0.113.9".parse().unwrap()
        }]
    );
    // Still over: answered again, but the event is not repeated.
    let out = h.recv_from(STRANGER, &options("z9hG4bKr4"));
    assert_eq!(out.status(), 503);
    assert_eq!(limited_events(&out), 0);
    // No transaction was made for the refused requests: nothing to keep.
    assert_eq!(h.proxy.transaction_count(), 3);
    // Two a second: half a second later there is a token again.
    h.wait_ms(500);
    assert_eq!(h.recv_from(STRANGER, &options("z9hG4bKr5")).status(), 200);
}

#[test]
fn retransmissions_do_not_count_against_the_rate() {
    let mut h = rate_limited(1, 1, OverLimit::Reject { retry_after_s: 5 });
    let first = h.recv_from(STRANGER, &options("z9hG4bKr0")).response();
    for _ in 0..10 {
        // §17.2.1: the transaction answers a retransmission with the response it sent.
        assert_eq!(
            h.recv_from(STRANGER, &options("z9hG4bKr0")).response(),
            first
        );
    }
    assert_eq!(h.recv_from(STRANGER, &options("z9hG4bKr1")).status(), 503);
}

#[test]
fn a_source_over_its_rate_is_ignored_when_configured_to_drop() {
    let mut h = rate_limited(1, 1, OverLimit::Drop);
    assert_eq!(h.recv_from(STRANGER, &options("z9hG4bKr0")).status(), 200);
    let out = h.recv_from(STRANGER, &options("z9hG4bKr1"));
    assert!(out.transmits.is_empty());
    assert_eq!(limited_events(&out), 1);
    let out = h.recv_from(STRANGER, &options("z9hG4bKr2"));
    assert!(out.transmits.is_empty() && out.events.is_empty());
    // Another address is not held back by this one.
    assert_eq!(h.recv_from(ALICE, &options("z9hG4bKa0")).status(), 200);
}

#[test]
fn loopback_is_exempt_by_default_and_other_networks_when_listed() {
    let mut c = biloxi();
    c.limits.source_rate.per_second = 1;
    c.limits.source_rate.burst = 1;
    c.limits
        .source_rate
        .exempt
        .push(IpNet::parse("203.0.113.0/24").unwrap());
    let mut h = Harness::new(c);
    for i in 0..20 {
        let b = format!("z9hG4bKl{i}");
        assert_eq!(h.recv_from("127.0.0.1:5070", &options(&b)).status(), 200);
        assert_eq!(h.recv_from(STRANGER, &options(&b)).status(), 200);
    }
    assert_eq!(h.recv_from(ALICE, &options("z9hG4bKa0")).status(), 200);
    assert_eq!(h.recv_from(ALICE, &options("z9hG4bKa1")).status(), 503);
}

#[test]
fn the_default_rate_lets_a_busy_client_through() {
    let mut h = Harness::open();
    // 400 at once, then 200 a second for ten seconds.
    for i in 0..400 {
        let out = h.recv_from(STRANGER, &options(&format!("z9hG4bKb{i}")));
        assert_eq!(out.status(), 200, "request {i}");
    }
    for i in 0..2000 {
        h.wait_ms(5);
        let out = h.recv_from(STRANGER, &options(&format!("z9hG4bKs{i}")));
        assert_eq!(out.status(), 200, "request {i}");
    }
}

// --- no open relay ---

/// Alice of atlanta.example.com, or `from`, asks the biloxi proxy for chicago.example.com.
fn relay_attempt(from: &str) -> String {
    alice("OPTIONS", "z9hG4bKrel1", "")
        .replace(
            "OPTIONS sip:bob@biloxi.example.com",
            "OPTIONS sip:carol@chicago.example.com",
        )
        .replace(
            "To: Bob <sip:bob@biloxi.example.com>",
            "To: <sip:carol@chicago.example.com>",
        )
        .replace("sip:alice@atlanta.example.com", from)
}

fn with_relay(relay: Relay) -> Harness {
    let mut c = biloxi();
    c.proxy.relay = relay;
    registered_with(c, "<sip:bob@192.0.2.201>")
}

#[test]
fn a_stranger_cannot_relay_to_another_domain_by_default() {
    let mut h = registered("<sip:bob@192.0.2.201>");
    let out = h.recv_from(ALICE, &relay_attempt("sip:alice@atlanta.example.com"));
    assert_eq!(
        out.ladder(),
        ["192.0.2.101:5060 SIP/2.0 403 Relaying Denied"]
    );
    assert_eq!(h.proxy.context_count(), 0);
}

#[test]
fn without_authentication_a_from_in_a_served_domain_may_relay() {
    let mut h = registered("<sip:bob@192.0.2.201>");
    let out = h.recv_from(ALICE, &relay_attempt("sip:bob@biloxi.example.com"));
    assert_eq!(
        out.ladder(),
        ["192.0.2.150:5060 OPTIONS sip:carol@chicago.example.com SIP/2.0"]
    );
}

#[test]
fn relay_open_forwards_anyone_and_relay_none_no_one() {
    let mut h = with_relay(Relay::Open);
    let out = h.recv_from(ALICE, &relay_attempt("sip:alice@atlanta.example.com"));
    assert_eq!(
        out.ladder(),
        ["192.0.2.150:5060 OPTIONS sip:carol@chicago.example.com SIP/2.0"]
    );
    let mut h = with_relay(Relay::None);
    let out = h.recv_from(ALICE, &relay_attempt("sip:bob@biloxi.example.com"));
    assert_eq!(
        out.ladder(),
        ["192.0.2.101:5060 SIP/2.0 403 Relaying Denied"]
    );
}

#[test]
fn requests_for_served_users_and_record_routed_dialogs_are_not_relays() {
    let mut h = with_relay(Relay::None);
    // From a stranger to Bob: delivered.
    let out = h.recv_from(ALICE, &alice("OPTIONS", "z9hG4bKo1", ""));
    assert_eq!(
        out.ladder(),
        ["192.0.2.201:5060 OPTIONS sip:bob@192.0.2.201 SIP/2.0"]
    );
    // Inside a dialog that came through here (our Route on top), to Bob's device.
    let out = h.recv_from(ALICE, &in_dialog("BYE", "z9hG4bKbye1", 2));
    assert_eq!(
        out.ladder(),
        ["192.0.2.201:5060 BYE sip:bob@192.0.2.201 SIP/2.0"]
    );
    // The same BYE without our Route is a relay to wherever its Request-URI points.
    let bare = in_dialog("BYE", "z9hG4bKbye2", 3).replace(ROUTE_ME, "");
    let out = h.recv_from(ALICE, &bare);
    assert_eq!(
        out.ladder(),
        ["192.0.2.101:5060 SIP/2.0 403 Relaying Denied"]
    );
}

#[test]
fn an_ack_that_would_relay_is_dropped() {
    let mut h = registered("<sip:bob@192.0.2.201>");
    let ack = in_dialog("ACK", "z9hG4bKack1", 1).replace(ROUTE_ME, "");
    let out = h.recv_from(ALICE, &ack);
    assert!(out.transmits.is_empty());
    assert!(
        matches!(&out.events[..], [Event::Dropped { reason, .. }] if reason.contains("relaying denied"))
    );
    // Through our Route it is forwarded.
    let out = h.recv_from(ALICE, &in_dialog("ACK", "z9hG4bKack2", 1));
    assert_eq!(
        out.ladder(),
        ["192.0.2.201:5060 ACK sip:bob@192.0.2.201 SIP/2.0"]
    );
}

// --- no user enumeration ---

const REALM: &str = "biloxi.example.com";

/// An element that authenticates, knowing only `user` (with the password "secret").
fn authenticating(user: &str) -> Harness {
    let mut c = biloxi();
    c.auth.register = true;
    c.proxy.authenticate = true;
    c.auth.users = vec![User {
        name: user.into(),
        password: "secret".into(),
        aors: vec![],
    }];
    Harness::new(c)
}

fn request_for(method: &str, user: &str, branch: &str, extra: &str) -> String {
    let ruri = if method == "REGISTER" {
        "sip:biloxi.example.com".to_owned()
    } else {
        format!("sip:{user}@biloxi.example.com")
    };
    format!(
        "{method} {ruri} SIP/2.0\n\
         Via: SIP/2.0/UDP 203.0.113.9:5060;branch={branch}\n\
         Max-Forwards: 70\n\
         From: \"{user}\" <sip:{user}@biloxi.example.com>;tag=7\n\
         To: \"{user}\" <sip:{user}@biloxi.example.com>\n\
         Call-ID: {branch}@203.0.113.9\n\
         CSeq: 1 {method}\n\
         Contact: <sip:{user}@203.0.113.9:5060>\n\
         {extra}Content-Length: 0\n\n"
    )
}

fn nonce_in(response: &str) -> String {
    let start = response.find("nonce=\"").unwrap() + 7;
    let end = response[start..].find('"').unwrap();
    response[start..start + end].to_owned()
}

fn credentials(header: &str, method: &str, user: &str, password: &str, nonce: &str) -> String {
    let uri = if method == "REGISTER" {
        "sip:biloxi.example.com".to_owned()
    } else {
        format!("sip:{user}@biloxi.example.com")
    };
    let response = compute_response(
        Algorithm::Sha256,
        user,
        REALM,
        password,
        method,
        &uri,
        nonce,
        Some("auth"),
        Some("00000001"),
        Some("0a4f113b"),
    );
    format!(
        "{header}: Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", \
         uri=\"{uri}\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"{response}\", \
         algorithm=SHA-256\n"
    )
}

/// The same requests about alice to an element that knows her and to one that does not (it
/// knows mallory), from the same seed: the answers must be the same bytes, nonces and tags
/// included, both for no credentials and for a wrong password.
#[test]
fn a_known_user_and_an_unknown_one_get_the_same_bytes() {
    for (method, header) in [
        ("REGISTER", "Authorization"),
        ("INVITE", "Proxy-Authorization"),
        ("OPTIONS", "Proxy-Authorization"),
        ("MESSAGE", "Proxy-Authorization"),
    ] {
        let mut knows = authenticating("alice");
        let mut does_not = authenticating("mallory");
        let first = request_for(method, "alice", "z9hG4bKe1", "");
        let a = knows.recv_from(STRANGER, &first).response();
        let b = does_not.recv_from(STRANGER, &first).response();
        let status = if method == "REGISTER" { 401 } else { 407 };
        assert!(
            a.starts_with(&format!("SIP/2.0 {status} ")),
            "{method}: {a}"
        );
        assert_eq!(a, b, "{method} without credentials");

        let creds = credentials(header, method, "alice", "wrong", &nonce_in(&a));
        let retry = request_for(method, "alice", "z9hG4bKe2", &creds);
        let a = knows.recv_from(STRANGER, &retry).response();
        let b = does_not.recv_from(STRANGER, &retry).response();
        assert!(
            a.starts_with(&format!("SIP/2.0 {status} ")),
            "{method}: {a}"
        );
        assert_eq!(a, b, "{method} with a wrong password");
    }
}

#[test]
fn the_right_password_still_gets_in() {
    let mut h = authenticating("alice");
    let r = h
        .recv_from(STRANGER, &request_for("REGISTER", "alice", "z9hG4bKe1", ""))
        .response();
    let creds = credentials(
        "Authorization",
        "REGISTER",
        "alice",
        "secret",
        &nonce_in(&r),
    );
    let retry = request_for("REGISTER", "alice", "z9hG4bKe2", &creds);
    assert_eq!(h.recv_from(STRANGER, &retry).status(), 200);
}

#[test]
fn unauthenticated_requests_in_a_dialog_do_not_tell_known_users_from_unknown() {
    for user in ["alice", "nobody"] {
        let mut h = authenticating("alice");
        // A To tag: inside a dialog, so not challenged; nobody is registered.
        let req = request_for("OPTIONS", user, "z9hG4bKd1", "")
            .replace("@biloxi.example.com>\n", "@biloxi.example.com>;tag=99\n");
        let out = h.recv_from(STRANGER, &req);
        assert_eq!(
            out.ladder(),
            ["203.0.113.9:5060 SIP/2.0 404 Not Found"],
            "{user}"
        );
    }
}

// --- limits ---

#[test]
fn a_datagram_over_the_size_limit_gets_513() {
    let mut c = biloxi();
    c.limits.message.message_bytes_max = 1000;
    let mut h = Harness::new(c);
    let big = options("z9hG4bKbig").replace(
        "Content-Length: 0",
        &format!("X-Padding: {}\nContent-Length: 0", "a".repeat(1200)),
    );
    let out = h.recv_from(STRANGER, &big);
    let r = out.response();
    assert!(r.starts_with("SIP/2.0 513 Message Too Large\r\n"), "{r}");
    assert_eq!(
        header_lines(&r, "Via"),
        ["SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bKbig"]
    );
    // A body over the limit too.
    let body = "v=0\n".repeat(300);
    let big = options("z9hG4bKbig2").replace(
        "Content-Length: 0\n\n",
        &format!(
            "Content-Type: application/sdp\nContent-Length: {}\n\n{body}",
            body.len()
        ),
    );
    assert_eq!(h.recv_from(STRANGER, &big).status(), 513);
    // Nothing to answer: no Via in reach.
    let out = h.receive_bytes(&vec![b'x'; 2000], addr(STRANGER));
    assert!(out.transmits.is_empty());
    assert!(matches!(&out.events[..], [Event::Dropped { .. }]));
    assert_eq!(h.proxy.transaction_count(), 0);
}

#[test]
fn a_message_with_too_many_headers_gets_400() {
    let mut c = biloxi();
    c.limits.message.headers_max = 20;
    let mut h = Harness::new(c);
    let many = options("z9hG4bKmany").replace(
        "Content-Length: 0",
        &format!("{}Content-Length: 0", "X-Junk: 1\n".repeat(30)),
    );
    let r = h.recv_from(STRANGER, &many).response();
    assert!(r.starts_with("SIP/2.0 400 Too Many Headers\r\n"), "{r}");
}

#[test]
fn new_requests_beyond_the_transaction_limit_get_503_until_one_ends() {
    let mut c = biloxi();
    c.limits.transactions_max = 2;
    let mut h = Harness::new(c);
    assert_eq!(h.recv_from(STRANGER, &options("z9hG4bKt1")).status(), 200);
    assert_eq!(h.recv_from(STRANGER, &options("z9hG4bKt2")).status(), 200);
    let r = h.recv_from(STRANGER, &options("z9hG4bKt3")).response();
    assert!(
        r.starts_with("SIP/2.0 503 Too Many Transactions\r\n"),
        "{r}"
    );
    assert_eq!(h.proxy.transaction_count(), 2);
    // Timer J (64*T1) ends the first two.
    h.advance(Duration::from_secs(32));
    assert_eq!(h.proxy.transaction_count(), 0);
    assert_eq!(h.recv_from(STRANGER, &options("z9hG4bKt3")).status(), 200);
}

#[test]
fn a_new_aor_beyond_the_location_limit_gets_503() {
    let mut c: Config = biloxi();
    c.registrar.aors_max = 1;
    let mut h = Harness::new(c);
    let reg = |user: &str, branch: &str| request_for("REGISTER", user, branch, "");
    assert_eq!(
        h.recv_from(STRANGER, &reg("alice", "z9hG4bKa1")).status(),
        200
    );
    let r = h.recv_from(STRANGER, &reg("bob", "z9hG4bKa2")).response();
    assert!(
        r.starts_with("SIP/2.0 503 Location Service Full\r\n"),
        "{r}"
    );
    // The AOR already there may still refresh.
    let refresh = reg("alice", "z9hG4bKa3").replace("CSeq: 1", "CSeq: 2");
    assert_eq!(h.recv_from(STRANGER, &refresh).status(), 200);
    assert_eq!(h.proxy.registrar().location().binding_count(), 1);
}
