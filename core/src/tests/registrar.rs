//! RFC 3261 §10.3, step by step, through the element.

use std::time::Duration;

use super::util::*;
use crate::auth::Algorithm;
use crate::config::User;
use crate::Event;

#[test]
fn registrar_binds_a_contact_and_lists_it_with_expires() {
    let mut h = Harness::open();
    let out = h.receive(&register("z9hG4bK1", 1, "Contact: <sip:bob@192.0.2.201>\n"));
    let r = out.response();
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    assert_eq!(
        header_lines(&r, "Contact"),
        ["<sip:bob@192.0.2.201>;expires=3600"]
    );
    assert!(out.events.contains(&Event::Registered {
        aor: "sip:bob@biloxi.example.com".into(),
        contact: "sip:bob@192.0.2.201".into(),
        expires: 3600,
    }));
    // §8.2.6.2: the To tag is added; Via, From, Call-ID and CSeq are copied.
    assert!(header_lines(&r, "To")[0].starts_with("Bob <sip:bob@biloxi.example.com>;tag="));
    assert_eq!(header_lines(&r, "CSeq"), ["1 REGISTER"]);
    assert_eq!(
        header_lines(&r, "Via"),
        ["SIP/2.0/UDP 192.0.2.201:5060;branch=z9hG4bK1"],
        "sent-by is the source address, so no received= (§18.2.1)"
    );
}

#[test]
fn contact_expires_param_wins_over_expires_header() {
    let mut h = Harness::open();
    let r = h
        .receive(&register(
            "z9hG4bK1",
            1,
            "Expires: 1200\nContact: <sip:bob@192.0.2.201>;expires=600, <sip:bob@192.0.2.202>\n",
        ))
        .response();
    assert_eq!(
        header_lines(&r, "Contact"),
        [
            "<sip:bob@192.0.2.201>;expires=600",
            "<sip:bob@192.0.2.202>;expires=1200"
        ]
    );
}

#[test]
fn registrar_rejects_expires_below_min_with_423_and_min_expires() {
    let mut h = Harness::open();
    let out = h.receive(&register(
        "z9hG4bK1",
        1,
        "Contact: <sip:bob@192.0.2.201>;expires=30\n",
    ));
    let r = out.response();
    assert!(r.starts_with("SIP/2.0 423 Interval Too Brief\r\n"), "{r}");
    assert_eq!(header_lines(&r, "Min-Expires"), ["60"]);
    assert_eq!(h.proxy.registrar().location().binding_count(), 0);
}

#[test]
fn registrar_shortens_expires_above_max() {
    let mut config = biloxi();
    config.registrar.max_expires = 7200;
    let mut h = Harness::new(config);
    let r = h
        .receive(&register(
            "z9hG4bK1",
            1,
            "Contact: <sip:bob@192.0.2.201>;expires=86400\n",
        ))
        .response();
    assert_eq!(
        header_lines(&r, "Contact"),
        ["<sip:bob@192.0.2.201>;expires=7200"]
    );
}

#[test]
fn registrar_rejects_an_out_of_order_refresh_and_changes_nothing() {
    let mut h = Harness::open();
    h.receive(&register("z9hG4bK1", 5, "Contact: <sip:bob@192.0.2.201>\n"));
    let out = h.receive(&register(
        "z9hG4bK2",
        4,
        "Contact: <sip:bob@192.0.2.201>;expires=0\n",
    ));
    assert_eq!(out.status(), 400);
    assert!(out
        .response()
        .starts_with("SIP/2.0 400 CSeq Out Of Order\r\n"));
    assert_eq!(h.proxy.registrar().location().binding_count(), 1);
    // Equal CSeq is not higher either (§10.3 step 7).
    assert_eq!(
        h.receive(&register("z9hG4bK3", 5, "Contact: <sip:bob@192.0.2.201>\n"))
            .status(),
        400
    );
    // A higher CSeq goes through.
    assert_eq!(
        h.receive(&register("z9hG4bK4", 6, "Contact: <sip:bob@192.0.2.201>\n"))
            .status(),
        200
    );
}

#[test]
fn another_call_id_may_update_a_binding_whatever_its_cseq() {
    let mut h = Harness::open();
    h.receive(&register("z9hG4bK1", 9, "Contact: <sip:bob@192.0.2.201>\n"));
    let other = register("z9hG4bK2", 1, "Contact: <sip:bob@192.0.2.201>;expires=0\n")
        .replace("843817637684230@998sdasdh09", "another-call-id");
    assert_eq!(h.receive(&other).status(), 200);
    assert_eq!(h.proxy.registrar().location().binding_count(), 0);
}

#[test]
fn wildcard_contact_with_expires_zero_removes_every_binding() {
    let mut h = Harness::open();
    h.receive(&register(
        "z9hG4bK1",
        1,
        "Contact: <sip:bob@192.0.2.201>, <sip:bob@192.0.2.202>\n",
    ));
    let out = h.receive(&register("z9hG4bK2", 2, "Expires: 0\nContact: *\n"));
    let r = out.response();
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"));
    assert!(header_lines(&r, "Contact").is_empty());
    let removed = out
        .events
        .iter()
        .filter(|e| matches!(e, Event::Unregistered { .. }))
        .count();
    assert_eq!(removed, 2);
    assert_eq!(h.proxy.registrar().location().binding_count(), 0);
}

#[test]
fn wildcard_contact_needs_expires_zero_and_to_be_alone() {
    let mut h = Harness::open();
    assert_eq!(
        h.receive(&register("z9hG4bK1", 1, "Contact: *\n")).status(),
        400
    );
    assert_eq!(
        h.receive(&register(
            "z9hG4bK2",
            2,
            "Expires: 0\nContact: *, <sip:bob@192.0.2.201>\n"
        ))
        .status(),
        400
    );
}

#[test]
fn a_wildcard_decides_before_the_other_contacts_are_checked_and_the_first_refusal_wins() {
    // §10.3 step 6 looks for `*` before step 7 checks each Contact: the answer names the
    // wildcard, not the bad q-value written before it.
    let mut h = Harness::open();
    let r = h
        .receive(&register(
            "z9hG4bK1",
            1,
            "Expires: 0\nContact: <sip:bob@192.0.2.201>;q=1.5, *\n",
        ))
        .response();
    assert!(
        r.starts_with("SIP/2.0 400 Wildcard Contact Must Be Alone\r\n"),
        "{r}"
    );
    // Without a wildcard, the Contacts are checked in order and the first refusal answers.
    let r = h
        .receive(&register(
            "z9hG4bK2",
            2,
            "Contact: <sip:bob@192.0.2.201>;q=1.5, <sip:bob@192.0.2.202>;expires=30\n",
        ))
        .response();
    assert!(r.starts_with("SIP/2.0 400 Bad q-value\r\n"), "{r}");
}

#[test]
fn register_without_contact_is_a_query_that_changes_nothing() {
    let mut h = Harness::open();
    h.receive(&register("z9hG4bK1", 1, "Contact: <sip:bob@192.0.2.201>\n"));
    h.advance(Duration::from_secs(100));
    let out = h.receive(&register("z9hG4bK2", 2, ""));
    assert_eq!(
        header_lines(&out.response(), "Contact"),
        ["<sip:bob@192.0.2.201>;expires=3500"],
        "the remaining time, not a refreshed one"
    );
    assert!(!out
        .events
        .iter()
        .any(|e| matches!(e, Event::Registered { .. })));
}

#[test]
fn expires_zero_removes_one_binding_and_keeps_the_other() {
    let mut h = Harness::open();
    h.receive(&register(
        "z9hG4bK1",
        1,
        "Contact: <sip:bob@192.0.2.201>, <sip:bob@192.0.2.202>\n",
    ));
    let r = h
        .receive(&register(
            "z9hG4bK2",
            2,
            "Contact: <sip:bob@192.0.2.201>;expires=0\n",
        ))
        .response();
    assert_eq!(
        header_lines(&r, "Contact"),
        ["<sip:bob@192.0.2.202>;expires=3600"]
    );
}

#[test]
fn bindings_expire_in_virtual_time_with_an_event() {
    let mut h = Harness::open();
    let out = h.receive(&register(
        "z9hG4bK1",
        1,
        "Contact: <sip:bob@192.0.2.201>;expires=120\n",
    ));
    assert_eq!(
        out.timeout,
        Some(crate::time::Instant::from_millis(32_000)),
        "Timer J first"
    );
    let out = h.advance(Duration::from_secs(32));
    assert_eq!(
        out.timeout,
        Some(crate::time::Instant::from_millis(120_000))
    );
    assert!(h.advance(Duration::from_secs(87)).events.is_empty());
    let out = h.advance(Duration::from_secs(1));
    assert_eq!(
        out.events,
        [Event::BindingExpired {
            aor: "sip:bob@biloxi.example.com".into(),
            contact: "sip:bob@192.0.2.201".into()
        }]
    );
    assert_eq!(out.timeout, None, "nothing left to wake up for");
    assert_eq!(h.proxy.registrar().location().aor_count(), 0);
}

#[test]
fn a_refresh_updates_the_binding_instead_of_adding_one() {
    let mut h = Harness::open();
    h.receive(&register("z9hG4bK1", 1, "Contact: <sip:bob@192.0.2.201>\n"));
    // §19.1.4: the same URI written differently (host case, default port) is the same binding.
    let r = h
        .receive(&register(
            "z9hG4bK2",
            2,
            "Contact: <sip:bob@192.0.2.201>;expires=900\n",
        ))
        .response();
    assert_eq!(
        header_lines(&r, "Contact"),
        ["<sip:bob@192.0.2.201>;expires=900"]
    );
}

#[test]
fn q_values_are_kept_and_listed_and_bad_ones_refused() {
    let mut h = Harness::open();
    let r = h
        .receive(&register(
            "z9hG4bK1",
            1,
            "Contact: <sip:bob@192.0.2.201>;q=0.7, <sip:bob@192.0.2.202>;q=1\n",
        ))
        .response();
    assert_eq!(
        header_lines(&r, "Contact"),
        [
            "<sip:bob@192.0.2.201>;q=0.7;expires=3600",
            "<sip:bob@192.0.2.202>;q=1;expires=3600"
        ]
    );
    assert_eq!(
        h.receive(&register(
            "z9hG4bK2",
            2,
            "Contact: <sip:bob@192.0.2.203>;q=1.5\n"
        ))
        .status(),
        400
    );
}

#[test]
fn bindings_per_aor_are_capped() {
    let mut config = biloxi();
    config.registrar.bindings_per_aor_max = 2;
    let mut h = Harness::new(config);
    assert_eq!(
        h.receive(&register(
            "z9hG4bK1",
            1,
            "Contact: <sip:bob@192.0.2.201>, <sip:bob@192.0.2.202>\n"
        ))
        .status(),
        200
    );
    let out = h.receive(&register("z9hG4bK2", 2, "Contact: <sip:bob@192.0.2.203>\n"));
    assert!(out
        .response()
        .starts_with("SIP/2.0 403 Too Many Contacts\r\n"));
    assert_eq!(h.proxy.registrar().location().binding_count(), 2);
}

#[test]
fn a_contact_pointing_at_the_registrar_is_refused() {
    let mut h = Harness::open();
    for contact in [
        "<sip:bob@biloxi.example.com>",
        "<sip:bob@ss2.biloxi.example.com:5060>",
        "<sip:bob@192.0.2.222>",
    ] {
        let out = h.receive(&register("z9hG4bK1", 1, &format!("Contact: {contact}\n")));
        assert!(
            out.response()
                .starts_with("SIP/2.0 403 Contact Points At This Registrar\r\n"),
            "{contact}"
        );
    }
    // Another port on the same host is another element.
    assert_eq!(
        h.receive(&register(
            "z9hG4bK2",
            2,
            "Contact: <sip:bob@192.0.2.222:5070>\n"
        ))
        .status(),
        200
    );
}

#[test]
fn a_foreign_domain_is_not_served() {
    let mut h = Harness::open();
    let foreign = register("z9hG4bK1", 1, "Contact: <sip:bob@192.0.2.201>\n").replace(
        "REGISTER sip:biloxi.example.com",
        "REGISTER sip:atlanta.example.com",
    );
    assert_eq!(h.receive(&foreign).status(), 404);
    let foreign_to = register("z9hG4bK2", 1, "Contact: <sip:bob@192.0.2.201>\n").replace(
        "To: Bob <sip:bob@biloxi.example.com>",
        "To: Bob <sip:bob@atlanta.example.com>",
    );
    assert_eq!(h.receive(&foreign_to).status(), 404);
}

#[test]
fn unknown_extensions_in_require_get_420_with_unsupported() {
    let mut h = Harness::open();
    let r = h
        .receive(&register(
            "z9hG4bK1",
            1,
            "Require: nobodyknowsthis, path\nContact: <sip:bob@192.0.2.201>\n",
        ))
        .response();
    assert!(r.starts_with("SIP/2.0 420 Bad Extension\r\n"), "{r}");
    assert_eq!(header_lines(&r, "Unsupported"), ["nobodyknowsthis, path"]);
}

// --- authentication (§10.3 steps 3 and 4, §22) ---

fn with_auth(algorithms: Vec<Algorithm>) -> Harness {
    let mut config = biloxi();
    config.auth.register = true;
    config.auth.algorithms = algorithms;
    config.auth.users = vec![
        User {
            name: "bob".into(),
            password: "zanzibar".into(),
            aors: vec![],
        },
        User {
            name: "carol".into(),
            password: "c4r0l".into(),
            aors: vec!["sip:team@biloxi.example.com".into()],
        },
    ];
    Harness::new(config)
}

#[test]
fn registrar_challenges_with_every_algorithm_most_preferred_first() {
    let mut h = with_auth(vec![Algorithm::Sha256, Algorithm::Md5]);
    let r = h
        .receive(&register("z9hG4bK1", 1, "Contact: <sip:bob@192.0.2.201>\n"))
        .response();
    assert!(r.starts_with("SIP/2.0 401 Unauthorized\r\n"));
    let challenges = header_lines(&r, "WWW-Authenticate");
    assert_eq!(challenges.len(), 2);
    assert!(challenges[0].ends_with("algorithm=SHA-256"));
    assert!(challenges[1].ends_with("algorithm=MD5"));
    assert_eq!(nonce_of(&challenges[0]), nonce_of(&challenges[1]));
    assert_eq!(h.proxy.registrar().location().binding_count(), 0);
}

#[test]
fn sha256_credentials_register_and_the_next_nonce_count_is_accepted() {
    let mut h = with_auth(vec![Algorithm::Sha256, Algorithm::Md5]);
    let r = h
        .receive(&register("z9hG4bK1", 1, "Contact: <sip:bob@192.0.2.201>\n"))
        .response();
    let nonce = nonce_of(&header_lines(&r, "WWW-Authenticate")[0]);
    let auth = authorization("bob", "zanzibar", Algorithm::Sha256, &nonce, "00000001");
    let extra = format!("Contact: <sip:bob@192.0.2.201>\n{auth}");
    assert_eq!(h.receive(&register("z9hG4bK2", 2, &extra)).status(), 200);
    // The same nc again is a replay (RFC 7616 §5.5): challenged, nothing changes.
    let replay = format!("Contact: <sip:bob@192.0.2.201>;expires=0\n{auth}");
    assert_eq!(h.receive(&register("z9hG4bK3", 3, &replay)).status(), 401);
    assert_eq!(h.proxy.registrar().location().binding_count(), 1);
    // The next nc works.
    let next = authorization("bob", "zanzibar", Algorithm::Sha256, &nonce, "00000002");
    let extra = format!("Contact: <sip:bob@192.0.2.201>;expires=0\n{next}");
    assert_eq!(h.receive(&register("z9hG4bK4", 4, &extra)).status(), 200);
    assert_eq!(h.proxy.registrar().location().binding_count(), 0);
}

#[test]
fn a_wrong_password_gets_a_fresh_challenge_and_no_binding() {
    let mut h = with_auth(vec![Algorithm::Md5]);
    let r = h
        .receive(&register("z9hG4bK1", 1, "Contact: <sip:bob@192.0.2.201>\n"))
        .response();
    let nonce = nonce_of(&r);
    let auth = authorization("bob", "wrong", Algorithm::Md5, &nonce, "00000001");
    let r2 = h
        .receive(&register(
            "z9hG4bK2",
            2,
            &format!("Contact: <sip:bob@192.0.2.201>\n{auth}"),
        ))
        .response();
    assert!(r2.starts_with("SIP/2.0 401 Unauthorized\r\n"));
    assert!(!r2.contains("stale=TRUE"));
    assert_ne!(nonce_of(&r2), nonce);
    assert_eq!(h.proxy.registrar().location().binding_count(), 0);
}

#[test]
fn a_stale_nonce_is_challenged_with_stale_true() {
    let mut h = with_auth(vec![Algorithm::Md5]);
    let r = h
        .receive(&register("z9hG4bK1", 1, "Contact: <sip:bob@192.0.2.201>\n"))
        .response();
    let nonce = nonce_of(&r);
    h.advance(Duration::from_secs(301));
    let auth = authorization("bob", "zanzibar", Algorithm::Md5, &nonce, "00000001");
    let r2 = h
        .receive(&register(
            "z9hG4bK2",
            2,
            &format!("Contact: <sip:bob@192.0.2.201>\n{auth}"),
        ))
        .response();
    assert!(r2.starts_with("SIP/2.0 401 Unauthorized\r\n"), "{r2}");
    assert!(r2.contains(", stale=TRUE, "), "{r2}");
}

#[test]
fn a_user_may_register_only_its_own_aors() {
    let mut h = with_auth(vec![Algorithm::Md5]);
    let r = h
        .receive(&register("z9hG4bK1", 1, "Contact: <sip:bob@192.0.2.201>\n"))
        .response();
    let nonce = nonce_of(&r);
    // Carol's valid credentials for Bob's AOR: 403 (§10.3 step 4).
    let auth = authorization("carol", "c4r0l", Algorithm::Md5, &nonce, "00000001");
    let out = h.receive(&register(
        "z9hG4bK2",
        2,
        &format!("Contact: <sip:carol@192.0.2.77>\n{auth}"),
    ));
    assert_eq!(out.status(), 403);
    // ...but the AOR her configuration lists is hers to register.
    let auth = authorization("carol", "c4r0l", Algorithm::Md5, &nonce, "00000002");
    let team = register(
        "z9hG4bK3",
        3,
        &format!("Contact: <sip:carol@192.0.2.77>\n{auth}"),
    )
    .replace("To: Bob <sip:bob@", "To: <sip:team@");
    assert_eq!(h.receive(&team).status(), 200);
}

/// `Reports` off: the same answers, byte for byte, without the optional events; the
/// bindings still expire. On (the default), each of them is reported.
#[test]
fn optional_events_are_built_only_when_reported() {
    let run = |reports: crate::config::Reports| {
        let mut config = biloxi();
        config.reports = reports;
        let mut h = Harness::new(config);
        let mut wire = Vec::new();
        let mut events = Vec::new();
        for out in [
            h.receive(&register(
                "z9hG4bK1",
                1,
                "Contact: <sip:bob@192.0.2.201>\nExpires: 60\n",
            )),
            h.receive(&register(
                "z9hG4bK2",
                2,
                "Contact: <sip:bob@192.0.2.202>\nExpires: 60\n",
            )),
            h.receive(&register(
                "z9hG4bK3",
                3,
                "Contact: <sip:bob@192.0.2.202>\nExpires: 0\n",
            )),
            h.advance(Duration::from_secs(61)),
        ] {
            wire.extend(out.transmits.into_iter().map(|t| t.bytes));
            events.extend(out.events);
        }
        let left = h.proxy.registrar().location().aor_count();
        (wire, events, left)
    };
    let (all_wire, all, _) = run(crate::config::Reports::default());
    let (quiet_wire, quiet, left) = run(crate::config::Reports {
        transactions: false,
        bindings: false,
    });
    assert_eq!(quiet_wire, all_wire);
    assert_eq!(left, 0, "the binding expired all the same");
    assert_eq!(all_wire.len(), 3, "three 200 OKs");
    assert_eq!(quiet, [], "no event was asked for");
    let kinds: Vec<&str> = all
        .iter()
        .map(|e| match e {
            Event::Registered { .. } => "registered",
            Event::Unregistered { .. } => "unregistered",
            Event::BindingExpired { .. } => "expired",
            Event::TransactionCompleted { .. } => "transaction",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "registered",
            "transaction",
            "registered",
            "transaction",
            "unregistered",
            "transaction",
            "expired"
        ]
    );
}
