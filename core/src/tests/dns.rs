//! RFC 3263 through the element: the proxy asks its driver for a name's address with
//! `Event::Resolve`, waits, and goes on with `InputKind::Resolved`.

use std::net::SocketAddr;
use std::time::Duration;

use super::util::*;
use crate::{Event, InputKind, Query, Resolution, Transport};

fn element() -> Harness {
    let mut c = biloxi();
    c.proxy.dns = true;
    Harness::new(c)
}

fn invite(branch: &str, domain: &str) -> String {
    format!(
        "INVITE sip:carol@{domain} SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.201:5060;branch={branch}\n\
         Max-Forwards: 70\n\
         From: <sip:bob@biloxi.example.com>;tag=b\n\
         To: <sip:carol@{domain}>\n\
         Call-ID: {branch}\n\
         CSeq: 1 INVITE\n\
         Content-Length: 0\n\n"
    )
}

fn query(name: &str) -> Query {
    Query {
        name: name.into(),
        port: None,
        transport: Transport::Udp,
    }
}

fn resolved(h: &mut Harness, name: &str, addrs: &[&str]) -> Drained {
    h.input(InputKind::Resolved(Resolution {
        query: query(name),
        addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
    }))
}

fn statuses(d: &Drained) -> Vec<String> {
    d.transmits
        .iter()
        .map(|t| {
            let text = String::from_utf8_lossy(&t.bytes);
            text.lines().next().unwrap_or("").to_owned()
        })
        .collect()
}

#[test]
fn a_foreign_domain_is_looked_up_once_and_the_answer_is_kept() {
    let mut h = element();
    let out = h.receive(&invite("z9hG4bKd1", "chicago.example.com"));
    // 100 Trying, and a question; nothing forwarded yet.
    assert_eq!(statuses(&out), ["SIP/2.0 100 Trying"]);
    assert!(out
        .events
        .contains(&Event::Resolve(query("chicago.example.com"))));
    let out = resolved(&mut h, "chicago.example.com", &["192.0.2.233:5060"]);
    assert_eq!(out.transmits.len(), 1, "{out:#?}");
    assert_eq!(
        out.transmits[0].remote,
        "192.0.2.233:5060".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        statuses(&out),
        ["INVITE sip:carol@chicago.example.com SIP/2.0"]
    );
    // The next request to the domain goes at once, without asking again.
    let out = h.receive(&invite("z9hG4bKd2", "chicago.example.com"));
    assert_eq!(
        statuses(&out),
        [
            "SIP/2.0 100 Trying",
            "INVITE sip:carol@chicago.example.com SIP/2.0"
        ]
    );
    assert!(!out.events.iter().any(|e| matches!(e, Event::Resolve(_))));
}

#[test]
fn requests_waiting_on_one_name_share_one_question() {
    let mut h = element();
    let a = h.receive(&invite("z9hG4bKd1", "chicago.example.com"));
    let b = h.receive(&invite("z9hG4bKd2", "chicago.example.com"));
    let asked = |d: &Drained| {
        d.events
            .iter()
            .filter(|e| matches!(e, Event::Resolve(_)))
            .count()
    };
    assert_eq!((asked(&a), asked(&b)), (1, 0));
    let out = resolved(&mut h, "chicago.example.com", &["192.0.2.233:5060"]);
    assert_eq!(out.transmits.len(), 2, "both go on: {out:#?}");
}

#[test]
fn a_name_without_address_gets_404() {
    let mut h = element();
    h.receive(&invite("z9hG4bKd1", "nowhere.example.com"));
    let out = resolved(&mut h, "nowhere.example.com", &[]);
    assert_eq!(statuses(&out), ["SIP/2.0 404 Not Found"]);
    assert_eq!(h.proxy.context_count(), 0);
}

#[test]
fn no_answer_in_time_gets_504() {
    let mut h = element();
    h.receive(&invite("z9hG4bKd1", "slow.example.com"));
    let out = h.advance(Duration::from_secs(3));
    assert!(out.transmits.is_empty(), "{out:#?}");
    let out = h.advance(Duration::from_secs(1));
    assert_eq!(statuses(&out), ["SIP/2.0 504 Server Time-out"]);
    // A late answer finds nobody waiting.
    let late = resolved(&mut h, "slow.example.com", &["192.0.2.9:5060"]);
    assert!(late.transmits.is_empty(), "{late:#?}");
}

#[test]
fn a_cancel_while_the_name_is_looked_up_ends_the_invite_with_487() {
    let mut h = element();
    h.receive(&invite("z9hG4bKd1", "chicago.example.com"));
    let out = h.receive(
        "CANCEL sip:carol@chicago.example.com SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.201:5060;branch=z9hG4bKd1\n\
         Max-Forwards: 70\n\
         From: <sip:bob@biloxi.example.com>;tag=b\n\
         To: <sip:carol@chicago.example.com>\n\
         Call-ID: z9hG4bKd1\n\
         CSeq: 1 CANCEL\n\
         Content-Length: 0\n\n",
    );
    let s = statuses(&out);
    assert!(s.contains(&"SIP/2.0 200 OK".to_owned()), "{s:?}");
    let later = resolved(&mut h, "chicago.example.com", &["192.0.2.233:5060"]);
    let mut all = s;
    all.extend(statuses(&later));
    assert!(
        all.contains(&"SIP/2.0 487 Request Terminated".to_owned()),
        "{all:?}"
    );
    assert!(
        !all.iter().any(|l| l.starts_with("INVITE")),
        "nothing is forwarded after the CANCEL: {all:?}"
    );
}

#[test]
fn without_lookups_a_foreign_domain_fails_at_once() {
    let mut h = Harness::open();
    let out = h.receive(&invite("z9hG4bKd1", "chicago.example.com"));
    assert_eq!(
        statuses(&out),
        ["SIP/2.0 100 Trying", "SIP/2.0 404 Domain Not Found"]
    );
    assert!(!out.events.iter().any(|e| matches!(e, Event::Resolve(_))));
}
