//! Workers of one element ([`crate::shared`]): what one learns, the others know; the
//! branches a worker writes name it; a single element's branches do not change.

use std::time::Duration;

use super::proxy_util::*;
use super::util::*;
use crate::auth::Algorithm;
use crate::config::User;
use crate::shared::{branch_worker, worker_of, SharedState};
use crate::{Config, Event, Proxy};

/// Two workers of the biloxi element, on one clock.
fn two_workers(config: Config) -> (Harness, Harness) {
    let shared = SharedState::new(&config);
    let worker = |i| Harness {
        proxy: Proxy::worker(config.clone(), shared.clone(), i),
        now: crate::time::Instant::ZERO,
    };
    (worker(0), worker(1))
}

fn with_users() -> Config {
    let mut config = biloxi();
    config.auth.register = true;
    config.auth.algorithms = vec![Algorithm::Md5];
    config.auth.users = vec![User {
        name: "bob".into(),
        password: "zanzibar".into(),
        aors: vec![],
    }];
    config
}

/// RFC 7616 §3.3, §5.5 across workers: a nonce issued by one verifies on the other, and a
/// nonce count accepted by one is a replay on the other.
#[test]
fn a_nonce_issued_by_one_worker_verifies_on_another_and_its_count_is_not_replayed() {
    let (mut a, mut b) = two_workers(with_users());
    let r = a
        .receive(&register("z9hG4bK1", 1, "Contact: <sip:bob@192.0.2.201>\n"))
        .response();
    assert!(r.starts_with("SIP/2.0 401 "), "{r}");
    let nonce = nonce_of(&r);
    let first = authorization("bob", "zanzibar", Algorithm::Md5, &nonce, "00000001");
    let extra = format!("Contact: <sip:bob@192.0.2.201>\n{first}");
    assert_eq!(b.receive(&register("z9hG4bK2", 2, &extra)).status(), 200);
    // The same count on the first worker: a replay, challenged; nothing changes.
    let replay = format!("Contact: <sip:bob@192.0.2.201>;expires=0\n{first}");
    assert_eq!(a.receive(&register("z9hG4bK3", 3, &replay)).status(), 401);
    assert_eq!(a.proxy.registrar().location().binding_count(), 1);
    // The next count is accepted on either.
    let next = authorization("bob", "zanzibar", Algorithm::Md5, &nonce, "00000002");
    let extra = format!("Contact: <sip:bob@192.0.2.201>;expires=0\n{next}");
    assert_eq!(a.receive(&register("z9hG4bK4", 4, &extra)).status(), 200);
    assert_eq!(b.proxy.registrar().location().binding_count(), 0);
}

/// §16.5 across workers: Bob registers through one, Alice's INVITE reaches the other and is
/// forwarded to Bob with a branch that names that worker after the loop-detection hash
/// (§16.6 step 8), so that Bob's answers find it; the other worker hands them over.
#[test]
fn a_binding_made_on_one_worker_routes_an_invite_on_another_whose_branch_names_it() {
    let (mut a, mut b) = two_workers(biloxi());
    let contact = "Contact: <sip:bob@192.0.2.201>\n";
    assert_eq!(a.receive(&register("z9hG4bKreg", 1, contact)).status(), 200);
    let out = b.recv_from(ALICE, &invite("z9hG4bKinv"));
    let forwarded = out.to(BOB);
    assert!(forwarded.starts_with("INVITE sip:bob@192.0.2.201 SIP/2.0\r\n"));
    let ours = branch(&forwarded);
    assert!(ours.starts_with("z9hG4bK"), "{ours}");
    assert_eq!(ours.as_bytes()[23], b'w', "{ours}");
    assert_eq!(branch_worker(ours.as_bytes()), Some(1));
    let ringing = answer(&forwarded, 180, "314159", "");
    assert_eq!(worker_of(ringing.as_bytes()), Some(1));
    // The worker the branch names has the transaction: the 180 goes on to Alice.
    let out = b.recv_from(BOB, &ringing);
    assert!(out.to(ALICE).starts_with("SIP/2.0 180 Ringing\r\n"));
    // The CANCEL the worker sends Bob keeps the INVITE's branch, tag included (§9.1).
    let out = b.recv_from(ALICE, &cancel("z9hG4bKinv"));
    let cancel = out.to(BOB);
    assert!(cancel.starts_with("CANCEL "), "{cancel}");
    assert_eq!(branch(&cancel), ours);
}

/// A single element's branches carry no worker tag: the golden snapshots pin their bytes.
#[test]
fn a_single_element_writes_untagged_branches() {
    let mut h = registered("<sip:bob@192.0.2.201>");
    let out = h.recv_from(ALICE, &invite("z9hG4bKinv"));
    let ours = branch(&out.to(BOB));
    assert_eq!(ours.len(), "z9hG4bK".len() + 16 + ".1".len(), "{ours}");
    assert!(ours.ends_with(".1"));
    assert_eq!(branch_worker(ours.as_bytes()), None);
}

/// Each binding expires once: the first worker to see its time reports it, the other finds
/// nothing left.
#[test]
fn a_shared_binding_expires_once() {
    let (mut a, mut b) = two_workers(biloxi());
    let contact = "Contact: <sip:bob@192.0.2.201>;expires=60\n";
    assert_eq!(a.receive(&register("z9hG4bKreg", 1, contact)).status(), 200);
    let expired = |events: &[Event]| {
        events
            .iter()
            .filter(|e| matches!(e, Event::BindingExpired { .. }))
            .count()
    };
    let on_b = b.advance(Duration::from_secs(61));
    let on_a = a.advance(Duration::from_secs(61));
    assert_eq!(expired(&on_b.events), 1);
    assert_eq!(expired(&on_a.events), 0);
    assert_eq!(a.proxy.registrar().location().binding_count(), 0);
}
