//! SIP under a network that delivers every datagram twice: the core answers a duplicated
//! request as a retransmission (RFC 3261 §17.2) and ignores a duplicated response (§17.1),
//! and a scripted UA's `expect` takes a message once however many copies arrive, so every
//! flow of the repository still passes. Under any mix of loss, duplication, jitter and
//! scheduled faults the RFC 3665 flows finish (or end by an RFC 3261 timeout) with the
//! transaction invariants holding.

mod common;

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use trapezoid_scenarios::{run_file, RunOptions, Scheduled};

#[test]
fn every_flow_holds_when_every_datagram_arrives_twice() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for dir in ["rfc3665", "scenarios/examples"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        for file in files {
            let doubled = RunOptions {
                duplicate_percent: Some(100),
                ..RunOptions::default()
            };
            let outcome = run_file(&file, &doubled).unwrap();
            if let Some(report) = outcome.report() {
                panic!("{} with every datagram doubled:\n{report}", file.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 28, "{checked}");
}

/// The RFC 3665 flows, in a fixed order.
fn rfc3665_flows() -> Vec<std::path::PathBuf> {
    common::yaml_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rfc3665"))
}

fn scheduled() -> impl Strategy<Value = Scheduled> {
    prop_oneof![Just(Scheduled::Drop), Just(Scheduled::Duplicate)]
}

/// Plays RFC 3665 flow `flow` under the given faults; the report of a failure.
fn holds(
    flow: usize,
    seed: u64,
    loss: u8,
    dup: u8,
    jitter: u64,
    schedule: Vec<(u32, Scheduled)>,
) -> Result<(), String> {
    let flows = rfc3665_flows();
    assert_eq!(flows.len(), 16);
    let options = RunOptions {
        seed: Some(seed),
        loss_percent: Some(loss),
        duplicate_percent: Some(dup),
        jitter_ms: Some((0, jitter)),
        schedule,
    };
    let outcome = run_file(&flows[flow], &options).unwrap();
    outcome.report().map_or(Ok(()), Err)
}

// Any mix of random loss, duplication and jitter, plus a schedule of single datagrams
// dropped or doubled, leaves every RFC 3665 flow either finished or ended by the timeout
// RFC 3261 prescribes, with the invariants holding. A failure shrinks toward no random
// faults and the fewest scheduled ones: the minimal fault schedule that breaks the flow.
//
// Four tests of four flows each, so that the test harness runs them on every core; 40
// cases each (160 in all) by default, PROPTEST_CASES for more (`trapezoid sweep` is the fast
// way to run thousands of seeds). The cases are drawn from a fixed seed, so `cargo test`
// checks the same 160 every time and a red run is never luck; PROPTEST_RNG_SEED=<n> draws
// another set. A failure prints its shrunk input: flow, seed and faults, which
// `trapezoid run` replays.
macro_rules! flows_hold_under_faults {
    ($($name:ident: $first:expr;)*) => {$(
        proptest! {
            #![proptest_config(ProptestConfig {
                cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(40),
                failure_persistence: None,
                rng_seed: RngSeed::Fixed(
                    std::env::var("PROPTEST_RNG_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or(3665),
                ),
                ..ProptestConfig::default()
            })]

            #[test]
            fn $name(
                flow in $first..$first + 4usize,
                seed in 0u64..1_000_000,
                loss in 0u8..=25,
                dup in 0u8..=15,
                jitter in 0u64..=40,
                schedule in proptest::collection::vec((1u32..80, scheduled()), 0..6),
            ) {
                let held = holds(flow, seed, loss, dup, jitter, schedule);
                prop_assert!(held.is_ok(), "{}", held.unwrap_err());
            }
        }
    )*};
}

flows_hold_under_faults! {
    registration_flows_hold_under_faults: 0;
    first_session_flows_hold_under_faults: 4;
    second_session_flows_hold_under_faults: 8;
    last_session_flows_hold_under_faults: 12;
}

/// A scheduled fault hits exactly its datagram: dropping the first datagram of §3.1 (Alice's
/// INVITE) makes Alice send it again at T1 (Timer A), and the run says so on replay.
#[test]
fn a_scheduled_drop_is_recovered_by_timer_a() {
    let flow = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("rfc3665/3_1_successful_session_establishment.yaml");
    let options = RunOptions {
        schedule: vec![(1, Scheduled::Drop)],
        ..RunOptions::default()
    };
    let outcome = run_file(&flow, &options).unwrap();
    assert!(outcome.report().is_none(), "{}", outcome.report().unwrap());
    assert!(outcome.lines[0].lost);
    assert_eq!(
        outcome.lines[0].bytes, outcome.lines[1].bytes,
        "the INVITE again"
    );
    assert_eq!(
        outcome.lines[1].at - outcome.lines[0].at,
        std::time::Duration::from_millis(500)
    );
    assert!(
        outcome.replay.ends_with("--drop-datagram 1"),
        "{}",
        outcome.replay
    );
}
