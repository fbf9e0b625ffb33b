//! Faults on the simulated wire: lost datagrams never arrive and the trace says so;
//! duplicated ones arrive twice; the same seed gives the same run.

use std::time::Duration;

use trapezoid_sim::{LinkFaults, Ua, World, WorldConfig};

/// A world of two UAs, a (192.0.2.1) and b (192.0.2.2), 5 ms apart.
fn two_uas(seed: u64) -> (World, Ua, Ua) {
    let mut w = World::new(&WorldConfig {
        seed,
        latency: Duration::from_millis(5),
    });
    let a = w.add_ua("a", "192.0.2.1:5060".parse().unwrap());
    let b = w.add_ua("b", "192.0.2.2:5060".parse().unwrap());
    (w, a, b)
}

/// Sends `n` datagrams from a to b under `faults`; returns (arrivals at b, sends marked lost).
fn run(seed: u64, n: usize, faults: LinkFaults) -> (Vec<Vec<u8>>, usize) {
    let (mut w, a, b) = two_uas(seed);
    w.set_link_faults(a.addr(), b.addr(), faults);
    for i in 0..n {
        a.send(b.addr(), format!("datagram {i}").into_bytes());
        w.step().unwrap();
    }
    for _ in 0..20 {
        w.step().unwrap();
    }
    let got = b.pending().into_iter().map(|r| r.bytes).collect();
    let lost = w
        .trace()
        .sent_with_fate()
        .iter()
        .filter(|(_, delivered)| !delivered)
        .count();
    (got, lost)
}

#[test]
fn lost_datagrams_never_arrive_and_are_marked() {
    let (got, lost) = run(
        3,
        400,
        LinkFaults {
            loss: 0.25,
            duplicate: 0.0,
            ..LinkFaults::default()
        },
    );
    assert_eq!(got.len() + lost, 400);
    assert!((60..140).contains(&lost), "{lost}");
    // The same seed loses the same datagrams.
    assert_eq!(
        run(
            3,
            400,
            LinkFaults {
                loss: 0.25,
                duplicate: 0.0,
                ..LinkFaults::default()
            }
        ),
        (got, lost)
    );
}

#[test]
fn a_duplicated_datagram_arrives_twice() {
    let (got, lost) = run(
        1,
        50,
        LinkFaults {
            loss: 0.0,
            duplicate: 1.0,
            ..LinkFaults::default()
        },
    );
    assert_eq!(lost, 0);
    assert_eq!(got.len(), 100);
    assert_eq!(got[0], got[1]);
}

#[test]
fn the_other_direction_is_untouched() {
    let (mut w, a, b) = two_uas(1);
    w.set_link_faults(
        a.addr(),
        b.addr(),
        LinkFaults {
            loss: 1.0,
            duplicate: 0.0,
            ..LinkFaults::default()
        },
    );
    b.send(a.addr(), b"back".to_vec());
    a.send(b.addr(), b"there".to_vec());
    for _ in 0..20 {
        w.step().unwrap();
    }
    assert_eq!(a.pending().len(), 1);
    assert!(b.pending().is_empty());
}

#[test]
fn jitter_reorders_without_losing_and_replays_by_seed() {
    let faults = LinkFaults {
        jitter: (Duration::ZERO, Duration::from_millis(40)),
        ..LinkFaults::default()
    };
    // `run` waits 20 ticks after the last send; a 40 ms jitter needs more.
    let arrivals = |seed| {
        let (mut w, a, b) = two_uas(seed);
        w.set_link_faults(a.addr(), b.addr(), faults);
        for i in 0..100 {
            a.send(b.addr(), format!("datagram {i}").into_bytes());
            w.step().unwrap();
        }
        for _ in 0..60 {
            w.step().unwrap();
        }
        b.pending()
            .into_iter()
            .map(|r| String::from_utf8(r.bytes).unwrap())
            .collect::<Vec<_>>()
    };
    let got = arrivals(4);
    assert_eq!(got.len(), 100, "jitter loses nothing");
    let sent: Vec<String> = (0..100).map(|i| format!("datagram {i}")).collect();
    assert_ne!(got, sent, "a 40 ms jitter on 1 ms spacing reorders");
    let mut sorted = got.clone();
    sorted.sort_by_key(|s| s[9..].parse::<u32>().unwrap());
    assert_eq!(sorted, sent);
    assert_eq!(arrivals(4), got, "same seed, same order");
}

#[test]
fn a_scripted_rule_drops_exactly_its_datagram() {
    let (mut w, a, b) = two_uas(1);
    w.add_fault_rule(trapezoid_sim::Rule {
        from: Some(a.addr().ip()),
        to: None,
        message: Some("INVITE".into()),
        nth: Some(2),
        action: trapezoid_sim::Action::Drop,
    });
    for text in [
        "INVITE sip:b 1",
        "OPTIONS sip:b",
        "INVITE sip:b 2",
        "INVITE sip:b 3",
    ] {
        a.send(b.addr(), text.as_bytes().to_vec());
        w.step().unwrap();
    }
    for _ in 0..20 {
        w.step().unwrap();
    }
    let got: Vec<Vec<u8>> = b.pending().into_iter().map(|r| r.bytes).collect();
    assert_eq!(
        got,
        vec![
            b"INVITE sip:b 1".to_vec(),
            b"OPTIONS sip:b".to_vec(),
            b"INVITE sip:b 3".to_vec()
        ]
    );
}

#[test]
fn uas_sharing_a_host_each_get_their_own_datagrams() {
    let mut w = World::new(&WorldConfig {
        seed: 1,
        latency: Duration::from_millis(5),
    });
    let group = w.add_uas(&[
        ("a1", "192.0.2.1:5060".parse().unwrap()),
        ("a2", "192.0.2.1:5062".parse().unwrap()),
    ]);
    let b = w.add_ua("b", "192.0.2.2:5060".parse().unwrap());
    b.send(group[1].addr(), b"to a2".to_vec());
    b.send(group[0].addr(), b"to a1".to_vec());
    group[0].send(b.addr(), b"from a1".to_vec());
    for _ in 0..20 {
        w.step().unwrap();
    }
    let got = |ua: &trapezoid_sim::Ua| -> Vec<Vec<u8>> {
        ua.pending().into_iter().map(|r| r.bytes).collect()
    };
    assert_eq!(got(&group[0]), vec![b"to a1".to_vec()]);
    assert_eq!(got(&group[1]), vec![b"to a2".to_vec()]);
    assert_eq!(got(&b), vec![b"from a1".to_vec()]);
    assert_eq!(w.name_of(group[1].addr()), "a2");
}
