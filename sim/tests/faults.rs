//! Faults on the simulated wire: lost datagrams never arrive and the trace says so;
//! duplicated ones arrive twice; the same seed gives the same run.

use std::time::Duration;

use trapezoid_sim::{LinkFaults, World, WorldConfig};

/// Sends `n` datagrams from a to b under `faults`; returns (arrivals at b, sends marked lost).
fn run(seed: u64, n: usize, faults: LinkFaults) -> (Vec<Vec<u8>>, usize) {
    let mut w = World::new(&WorldConfig {
        seed,
        latency: Duration::from_millis(5),
    });
    let a = w.add_ua("a", "192.0.2.1:5060".parse().unwrap());
    let b = w.add_ua("b", "192.0.2.2:5060".parse().unwrap());
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
                duplicate: 0.0
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
        },
    );
    assert_eq!(lost, 0);
    assert_eq!(got.len(), 100);
    assert_eq!(got[0], got[1]);
}

#[test]
fn the_other_direction_is_untouched() {
    let mut w = World::new(&WorldConfig {
        seed: 1,
        latency: Duration::from_millis(5),
    });
    let a = w.add_ua("a", "192.0.2.1:5060".parse().unwrap());
    let b = w.add_ua("b", "192.0.2.2:5060".parse().unwrap());
    w.set_link_faults(
        a.addr(),
        b.addr(),
        LinkFaults {
            loss: 1.0,
            duplicate: 0.0,
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
