//! RFC 3261 §8.3 and §21.3: the element as a redirect server, through the element.

use std::time::Duration;

use super::util::*;
use crate::config::User;

fn redirect_server() -> Harness {
    let mut c = biloxi();
    c.proxy.redirect = true;
    c.auth.users = vec![User {
        name: "carol".into(),
        password: "x".into(),
        aors: Vec::new(),
    }];
    Harness::new(c)
}

fn invite(user: &str, branch: &str) -> String {
    format!(
        "INVITE sip:{user}@biloxi.example.com SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.101:5060;branch={branch}\n\
         Max-Forwards: 70\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\n\
         To: <sip:{user}@biloxi.example.com>\n\
         Call-ID: redirect-{branch}\n\
         CSeq: 1 INVITE\n\
         Contact: <sip:alice@192.0.2.101>\n\
         Content-Length: 0\n\n"
    )
}

#[test]
fn a_registered_aor_gets_302_with_every_binding_best_q_first() {
    let mut h = redirect_server();
    h.receive(&register(
        "z9hG4bKr1",
        1,
        "Contact: <sip:bob@192.0.2.201>;q=0.5, <sip:bob@192.0.2.202>;q=0.9, \
         <sip:bob@chicago.example.com>\n",
    ));
    h.now = h.now + Duration::from_secs(100);
    let out = h.receive(&invite("bob", "z9hG4bKi1"));
    // §8.3: no 100 Trying, no forwarding: the one message is the final answer.
    let r = out.response();
    assert!(r.starts_with("SIP/2.0 302 Moved Temporarily\r\n"), "{r}");
    // A Contact without q counts as q=1 (§16.6 q ordering); `expires` is what is left.
    assert_eq!(
        header_lines(&r, "Contact"),
        [
            "<sip:bob@chicago.example.com>;expires=3500",
            "<sip:bob@192.0.2.202>;q=0.9;expires=3500",
            "<sip:bob@192.0.2.201>;q=0.5;expires=3500",
        ]
    );
    assert!(header_lines(&r, "To")[0].contains(";tag="));
    // Only the INVITE server transaction: no client transaction, no response context.
    // (The REGISTER's ended on Timer J long ago.)
    assert_eq!(h.proxy.transaction_count(), 1, "the INVITE's");
    assert_eq!(h.proxy.context_count(), 0);
}

#[test]
fn the_302_is_acknowledged_and_the_transaction_ends() {
    let mut h = redirect_server();
    h.receive(&register(
        "z9hG4bKr1",
        1,
        "Contact: <sip:bob@192.0.2.201>\n",
    ));
    let r = h.receive(&invite("bob", "z9hG4bKi1")).response();
    let tag = header_lines(&r, "To")[0]
        .split(";tag=")
        .nth(1)
        .unwrap()
        .to_owned();
    // §17.2.1: the ACK for a non-2xx is absorbed by the server transaction.
    let ack = h.receive(&format!(
        "ACK sip:bob@biloxi.example.com SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKi1\n\
         Max-Forwards: 70\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\n\
         To: <sip:bob@biloxi.example.com>;tag={tag}\n\
         Call-ID: redirect-z9hG4bKi1\n\
         CSeq: 1 ACK\n\
         Content-Length: 0\n\n"
    ));
    assert!(ack.transmits.is_empty(), "{ack:#?}");
    // Timer I (T4 over UDP) then Timer J (64*T1) end both transactions.
    h.advance(Duration::from_secs(33));
    assert_eq!(h.proxy.transaction_count(), 0);
}

#[test]
fn an_unknown_user_gets_404_and_a_known_one_without_binding_480() {
    let mut h = redirect_server();
    let out = h.receive(&invite("nobody", "z9hG4bKi1"));
    assert_eq!(out.status(), 404);
    let out = h.receive(&invite("carol", "z9hG4bKi2"));
    assert_eq!(out.status(), 480);
}

#[test]
fn an_expired_binding_is_not_offered() {
    let mut h = redirect_server();
    h.receive(&register(
        "z9hG4bKr1",
        1,
        "Contact: <sip:bob@192.0.2.201>;expires=60, <sip:bob@192.0.2.202>\n",
    ));
    h.now = h.now + Duration::from_secs(61);
    let r = h.receive(&invite("bob", "z9hG4bKi1")).response();
    assert_eq!(
        header_lines(&r, "Contact"),
        ["<sip:bob@192.0.2.202>;expires=3539"]
    );
}

#[test]
fn another_domain_is_not_redirected() {
    let mut h = redirect_server();
    let out = h.receive(
        "MESSAGE sip:bob@elsewhere.example.net SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKm1\n\
         Max-Forwards: 70\n\
         From: <sip:alice@atlanta.example.com>;tag=1\n\
         To: <sip:bob@elsewhere.example.net>\n\
         Call-ID: m1\n\
         CSeq: 1 MESSAGE\n\
         Content-Length: 0\n\n",
    );
    let r = out.response();
    assert!(r.starts_with("SIP/2.0 404 Domain Not Found\r\n"), "{r}");
}

#[test]
fn an_aor_a_user_lists_counts_as_known() {
    let mut c = biloxi();
    c.proxy.redirect = true;
    c.auth.users = vec![User {
        name: "carol".into(),
        password: "x".into(),
        aors: vec!["sip:help@biloxi.example.com".into()],
    }];
    let mut h = Harness::new(c);
    // Listed exactly: a known address with no binding, 480; the user part is case-sensitive
    // (RFC 3261 §19.1.4), so `Help` is nobody: 404.
    assert_eq!(h.receive(&invite("help", "z9hG4bKi1")).status(), 480);
    assert_eq!(h.receive(&invite("Help", "z9hG4bKi2")).status(), 404);
}
