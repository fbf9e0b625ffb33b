//! SIP under a network that delivers every datagram twice: the core answers a duplicated
//! request as a retransmission (RFC 3261 §17.2) and ignores a duplicated response (§17.1),
//! and a scripted UA's `expect` takes a message once however many copies arrive, so every
//! flow of the repository still passes.

use std::path::Path;

use trapezoid_scenarios::{run_file, RunOptions};

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
