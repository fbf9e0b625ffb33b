//! The `trapezoid` binary: `check` summarises and fails loudly, `run` is reproducible.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trapezoid"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_runs_the_rfc3665_and_example_folders_by_default_and_prints_the_summary() {
    let out = bin().arg("check").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let last = stdout.lines().last().unwrap();
    let n: usize = ["rfc3665", "scenarios/examples"]
        .iter()
        .map(|d| {
            std::fs::read_dir(root().join(d))
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "yaml")
                })
                .count()
        })
        .sum();
    assert!(n >= 16, "the flows and examples are there: {n}");
    assert_eq!(last, format!("{n} passed, 0 failed"));
    // Progress lines are for terminals only: a pipe gets none.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn run_with_a_seed_is_byte_identical_twice() {
    let run = || {
        bin()
            .args([
                "run",
                "rfc3665/2_1_successful_new_registration.yaml",
                "--seed",
                "7",
            ])
            .output()
            .unwrap()
    };
    let (a, b) = (run(), run());
    assert!(a.status.success());
    assert!(!a.stdout.is_empty());
    assert_eq!(a.stdout, b.stdout);
}

/// A copy of a flow with one expected header changed must fail with a readable diff, the
/// file and line, and the seed with the replay command.
#[test]
fn a_changed_expectation_fails_with_a_diff_and_the_seed() {
    let src = root().join("rfc3665/2_1_successful_new_registration.yaml");
    let text = std::fs::read_to_string(&src).unwrap();
    let broken = text.replacen(
        "Contact: \"<sips:bob@client.biloxi.example.com>;expires=3600\"",
        "Contact: \"<sips:bob@client.biloxi.example.com>;expires=1800\"",
        1,
    );
    assert_ne!(text, broken);
    let dir = std::env::temp_dir().join(format!("trapezoid-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("broken.yaml");
    std::fs::write(&copy, broken).unwrap();
    let out = bin().arg("check").arg(&copy).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.ends_with("0 passed, 1 failed\n"), "{stdout}");
    assert!(
        stdout.contains("- Contact: <sips:bob@client.biloxi.example.com>;expires=1800"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+ Contact: <sips:bob@client.biloxi.example.com>;expires=3600"),
        "{stdout}"
    );
    assert!(stdout.contains("seed 1"), "{stdout}");
    assert!(
        stdout.contains(&format!("trapezoid run {} --seed 1", copy.display())),
        "{stdout}"
    );
    let line = text
        .lines()
        .position(|l| l.contains("# F4 200 OK"))
        .map(|i| i + 2)
        .unwrap();
    assert!(
        stdout.contains(&format!("{}:{line}:", copy.display())),
        "expected the step's line {line}: {stdout}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sweep_counts_every_seed_and_prints_each_failure_with_its_replay_command() {
    let good = root().join("rfc3665/2_1_successful_new_registration.yaml");
    let out = bin()
        .args([
            "sweep", "--seeds", "3", "--loss", "20%", "--jitter", "0..40ms",
        ])
        .arg(&good)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with("3 passed, 0 failed  (1 scenarios x 3 seeds;"),
        "{stdout}"
    );

    let text = std::fs::read_to_string(&good).unwrap();
    let broken = text.replacen(
        "Contact: \"<sips:bob@client.biloxi.example.com>;expires=3600\"",
        "Contact: \"<sips:bob@client.biloxi.example.com>;expires=1800\"",
        1,
    );
    let dir = std::env::temp_dir().join(format!("trapezoid-sweep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("broken.yaml");
    std::fs::write(&copy, broken).unwrap();
    let out = bin()
        .args(["sweep", "--seeds", "2", "--first-seed", "7", "--dup", "10%"])
        .arg(&copy)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    for seed in [7, 8] {
        assert!(
            stdout.contains(&format!("FAIL  {} seed {seed}", copy.display())),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!(
                "replay with: trapezoid run {} --seed {seed} --dup 10",
                copy.display()
            )),
            "{stdout}"
        );
    }
    assert!(stdout.contains("step "), "{stdout}");
    assert!(stdout.contains("0 passed, 2 failed"), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}
