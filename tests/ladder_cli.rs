//! `trapezoid run --ladder text|mermaid|svg [-o PATH]`: the run as a sequence diagram, on
//! stdout instead of the transcript, or in a file next to the usual output.

use std::path::PathBuf;
use std::process::{Command, Output};

const FLOW: &str = "rfc3665/3_2_session_establishment_through_two_proxies.yaml";
const HOSTS: [&str; 4] = ["alice", "proxy1", "proxy2", "bob"];

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trapezoid"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("run")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Messages in the flow: the transcript's `--- Fn` lines.
fn messages() -> usize {
    stdout(&run(&[FLOW]))
        .lines()
        .filter(|l| l.starts_with("--- F"))
        .count()
}

#[test]
fn text_has_the_hosts_in_scenario_order_and_a_row_pair_per_message() {
    let d = stdout(&run(&[FLOW, "--ladder", "text"]));
    let rows: Vec<&str> = d.lines().collect();
    assert_eq!(rows[0].split_whitespace().collect::<Vec<_>>(), HOSTS, "{d}");
    assert_eq!(rows[1].matches('|').count(), HOSTS.len(), "{d}");
    assert_eq!(rows.len(), 2 + 2 * messages(), "{d}");
    assert!(rows[2].starts_with("F1 "), "{d}");
    assert!(
        rows[2].contains("REGISTER sip:biloxi.example.com SIP/2.0"),
        "{d}"
    );
    assert!(!d.contains("--- F1"), "the diagram replaces the transcript");
}

#[test]
fn mermaid_has_a_participant_per_host_and_an_arrow_per_message() {
    let d = stdout(&run(&[FLOW, "--ladder", "mermaid"]));
    assert!(d.starts_with("sequenceDiagram\n"), "{d}");
    let participants: Vec<&str> = d
        .lines()
        .filter_map(|l| l.trim().strip_prefix("participant "))
        .collect();
    let expected: Vec<String> = HOSTS
        .iter()
        .enumerate()
        .map(|(i, h)| format!("h{} as {h}", i + 1))
        .collect();
    assert_eq!(participants, expected);
    assert_eq!(d.lines().filter(|l| l.contains("->>")).count(), messages());
}

#[test]
fn svg_goes_to_a_file_and_the_usual_output_is_unchanged() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("trapezoid-ladder-{}.svg", std::process::id()));
    let with = stdout(&run(&[
        FLOW,
        "--ladder",
        "svg",
        "-o",
        path.to_str().unwrap(),
    ]));
    assert_eq!(with, stdout(&run(&[FLOW])));
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<?xml"), "{svg}");
    assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
    assert_eq!(svg.matches(r#"class="lifeline""#).count(), HOSTS.len());
    assert_eq!(svg.matches(r#"class="arrow""#).count(), messages());
    std::fs::remove_file(&path).ok();
}

#[test]
fn bad_ladder_flags_are_one_line_and_exit_code_2() {
    for args in [&[FLOW, "--ladder", "png"][..], &[FLOW, "-o", "x.svg"][..]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    }
}
