//! `trapezoid run --pcap`: the capture of a simulated run, read back by tshark, holds every SIP
//! message of the trace, in order, with the scenario's addresses, the simulation's clock and
//! good checksums. Without `tshark` the test prints why and passes, except when `CI` is set:
//! CI installs tshark, so a missing one fails there.

mod common;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use trapezoid_scenarios::{run_file, RunOptions};

const FLOW: &str = "rfc3665/3_2_session_establishment_through_two_proxies.yaml";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tshark() -> Option<std::path::PathBuf> {
    common::peer("tshark", "tshark")
}

/// What tshark should print for a message: `METHOD\t` for a request, `\tCODE` for a response.
fn method_or_status(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let first = text.lines().next().unwrap_or("");
    let mut words = first.split(' ');
    match (words.next(), words.next()) {
        (Some("SIP/2.0"), Some(code)) => format!("\t{code}"),
        (Some(method), _) => format!("{method}\t"),
        _ => String::new(),
    }
}

fn read_back(tshark: &Path, pcap: &Path, fields: &[&str]) -> Vec<String> {
    let mut cmd = Command::new(tshark);
    cmd.args(["-n", "-r"])
        .arg(pcap)
        .args([
            "-o",
            "udp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
        ])
        .args(["-Y", "sip", "-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_pcap_of_a_run_reads_back_in_tshark_with_every_sip_message_in_order() {
    let Some(tshark) = tshark() else { return };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let pcap = dir.join(format!("trapezoid-{}.pcap", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_trapezoid"))
        .current_dir(root())
        .args(["run", FLOW, "--pcap"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let plain = Command::new(env!("CARGO_BIN_EXE_trapezoid"))
        .current_dir(root())
        .args(["run", FLOW])
        .output()
        .unwrap();
    assert_eq!(
        out.stdout, plain.stdout,
        "--pcap leaves the output as it is"
    );

    let outcome = run_file(&root().join(FLOW), &RunOptions::default()).unwrap();
    assert!(outcome.passed());
    assert!(outcome.lines.len() >= 20, "the whole call is there");

    let expected: Vec<String> = outcome
        .lines
        .iter()
        .map(|l| method_or_status(&l.bytes))
        .collect();
    let found = read_back(&tshark, &pcap, &["sip.Method", "sip.Status-Code"]);
    assert_eq!(found, expected, "every SIP message, in order");

    // The simulation's fixed epoch (2003-12-01) plus sim time.
    let epoch = trapezoid_scenarios::pcap::sim_epoch();
    assert_eq!(epoch, Duration::from_secs(1_070_236_800));
    let expected: Vec<String> = outcome
        .lines
        .iter()
        .map(|l| {
            let at = epoch + l.at;
            format!(
                "{}\t{}\t{}\t{}\t{}.{:09}\t1\t1",
                l.from_addr.ip(),
                l.from_addr.port(),
                l.to_addr.ip(),
                l.to_addr.port(),
                at.as_secs(),
                at.subsec_nanos()
            )
        })
        .collect();
    let found = read_back(
        &tshark,
        &pcap,
        &[
            "ip.src",
            "udp.srcport",
            "ip.dst",
            "udp.dstport",
            "frame.time_epoch",
            "ip.checksum.status",
            "udp.checksum.status",
        ],
    );
    assert_eq!(
        found, expected,
        "addresses, ports, sim epoch + sim time, good checksums"
    );

    // Each message's bytes are the UDP payload, whole.
    let sizes: Vec<String> = outcome
        .lines
        .iter()
        .map(|l| (l.bytes.len() + 8).to_string())
        .collect();
    assert_eq!(read_back(&tshark, &pcap, &["udp.length"]), sizes);
    std::fs::remove_file(&pcap).ok();
}
