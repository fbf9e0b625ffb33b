//! Same seed, same bytes; another seed, other random IDs but the same flow.

use std::path::Path;

use trapezoid_scenarios::{run_file, RunOptions};

fn flow() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/rfc3665/2_1_successful_new_registration.yaml"
    ))
}

#[test]
fn same_seed_gives_byte_identical_traces() {
    let opts = RunOptions {
        seed: Some(7),
        ..RunOptions::default()
    };
    let a = run_file(flow(), &opts).unwrap();
    let b = run_file(flow(), &opts).unwrap();
    assert!(a.passed() && b.passed());
    assert_eq!(a.lines, b.lines);
    assert_eq!(a.transcript(), b.transcript());
}

#[test]
fn another_seed_changes_random_ids_but_not_the_flow() {
    let a = run_file(
        flow(),
        &RunOptions {
            seed: Some(7),
            ..RunOptions::default()
        },
    )
    .unwrap();
    let b = run_file(
        flow(),
        &RunOptions {
            seed: Some(8),
            ..RunOptions::default()
        },
    )
    .unwrap();
    assert!(a.passed() && b.passed());
    let firsts = |o: &trapezoid_scenarios::Outcome| {
        o.lines
            .iter()
            .map(|l| (l.at, l.from.clone(), l.to.clone(), l.first_line()))
            .collect::<Vec<_>>()
    };
    assert_eq!(firsts(&a), firsts(&b), "the ladder is the same");
    // The registrar's To tags and nonces come from its seeded RNG.
    assert_ne!(
        a.lines[1].bytes, b.lines[1].bytes,
        "the 401 differs (To tag, nonce)"
    );
    // Bob's requests are templates with fixed values except the digest response, which
    // depends on the nonce.
    assert_eq!(a.lines[0].bytes, b.lines[0].bytes);
}

/// Faults are drawn from the seed: the same seed loses the same datagrams, byte for byte,
/// and the replay command carries the fault flags.
#[test]
fn faults_replay_by_seed() {
    let flow = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/rfc3665/3_10_unsuccessful_no_response_from_user_agent.yaml"
    ));
    let lossy = |seed| RunOptions {
        seed: Some(seed),
        loss_percent: Some(30),
        duplicate_percent: Some(10),
        jitter_ms: Some((0, 40)),
        ..RunOptions::default()
    };
    let a = run_file(flow, &lossy(5)).unwrap();
    let b = run_file(flow, &lossy(5)).unwrap();
    assert_eq!(a.transcript(), b.transcript());
    assert_eq!(
        a.replay,
        format!(
            "trapezoid run {} --seed 5 --loss 30 --dup 10 --jitter 0..40ms",
            flow.display()
        )
    );
    let lost = |o: &trapezoid_scenarios::Outcome| -> Vec<bool> {
        o.lines.iter().map(|l| l.lost).collect()
    };
    assert!(lost(&a).contains(&true), "30% loss lost nothing");
    let others: Vec<Vec<bool>> = (6..10)
        .map(|s| lost(&run_file(flow, &lossy(s)).unwrap()))
        .collect();
    assert!(
        others.iter().any(|l| *l != lost(&a)),
        "other seeds lose other datagrams"
    );
    // Without faults nothing is lost.
    let clean = run_file(
        flow,
        &RunOptions {
            seed: Some(5),
            ..RunOptions::default()
        },
    )
    .unwrap();
    assert!(!lost(&clean).contains(&true));
}
