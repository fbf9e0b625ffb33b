//! `trapezoid drive` against `trapezoid serve`, over loopback only: the RFC 3665 §2
//! registration flows, the §3 flows with one proxy (§3.5, §3.7) or none (§3.1), and three
//! §3 calls redrawn through one proxy (`tests/drive/`) pass with real UDP sockets, with the
//! same expectations as in the simulator; the two-proxy flows §3.2, §3.8 and §3.9 pass as
//! written against two serves, one per element (`--target NAME=HOST:PORT`); §3.9 against a
//! single target fails at the step that shows it needs two proxies; fault steps are refused.
//!
//! Each test runs its own `serve`s on their own ports, configured from the scenario's
//! `element:` settings with `address: 127.0.0.1:PORT`, and every run is bounded in time (the
//! scenario's timeouts, the readiness probe). serve runs with `--no-dns`: the scenarios name
//! example.com hosts, and no query may leave the machine; a proxy finds the other one's
//! domains and host names through `--host`, and a flow that needed a lookup would fail with
//! 404 or 503 instead.

mod common;
use common::Serve;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use rstest::rstest;
use serde_yaml::{Mapping, Value};
use trapezoid_scenarios::{drive_file, run_file, DriveError, DriveOptions, Outcome, RunOptions};

fn root(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trapezoid-drive-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The `element:` settings of the scenario as a `serve --config` file listening on
/// 127.0.0.1:`port`. Several elements are merged (their domains, host names and users): the
/// one target plays them all.
fn element_config(scenario: &Path, port: u16, dir: &Path) -> PathBuf {
    let doc: Value = serde_yaml::from_str(&std::fs::read_to_string(scenario).unwrap()).unwrap();
    let mut merged: Option<Mapping> = None;
    for (_, host) in doc["hosts"].as_mapping().unwrap() {
        let Some(e) = host.get("element").and_then(Value::as_mapping) else {
            continue;
        };
        let Some(m) = &mut merged else {
            merged = Some(e.clone());
            continue;
        };
        for key in ["domains", "host_names", "users"] {
            let Some(Value::Sequence(more)) = e.get(key) else {
                continue;
            };
            let list = m
                .entry(key.into())
                .or_insert_with(|| Value::Sequence(Vec::new()));
            if let Value::Sequence(list) = list {
                for v in more {
                    if !list.contains(v) {
                        list.push(v.clone());
                    }
                }
            }
        }
    }
    let mut element = merged.expect("the scenario has an element");
    element.insert("address".into(), format!("127.0.0.1:{port}").into());
    let path = dir.join("element.yaml");
    std::fs::write(&path, serde_yaml::to_string(&element).unwrap()).unwrap();
    path
}

/// The elements of the scenario, by name, in the order of the file.
fn elements(scenario: &Path) -> Vec<(String, Mapping)> {
    let doc: Value = serde_yaml::from_str(&std::fs::read_to_string(scenario).unwrap()).unwrap();
    doc["hosts"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter_map(|(name, host)| {
            let e = host.get("element")?.as_mapping()?.clone();
            Some((name.as_str()?.to_owned(), e))
        })
        .collect()
}

/// The names in the `key` list (`domains`, `host_names`) of an element.
fn names(element: &Mapping, key: &str) -> Vec<String> {
    match element.get(key) {
        Some(Value::Sequence(l)) => l
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Drives the scenario `flow` with a `serve` per element, each configured like its element
/// and listening on the next of `ports`, each reaching the others' domains and host names
/// through `--host` (no DNS).
fn drive_against_serves(flow: &str, ports: &[u16]) -> Outcome {
    let dir = scratch(&format!("each-{}", ports[0]));
    let scenario = root(flow);
    let elements = elements(&scenario);
    assert_eq!(elements.len(), ports.len(), "a port per element");
    let mut serves = Vec::new();
    let mut targets = Vec::new();
    for (i, (name, element)) in elements.iter().enumerate() {
        let mut element = element.clone();
        element.insert("address".into(), format!("127.0.0.1:{}", ports[i]).into());
        let config = dir.join(format!("{name}.yaml"));
        std::fs::write(&config, serde_yaml::to_string(&element).unwrap()).unwrap();
        let mut args = vec!["--config".to_owned(), config.display().to_string()];
        for (j, (_, other)) in elements.iter().enumerate() {
            if j == i {
                continue;
            }
            for n in names(other, "domains")
                .into_iter()
                .chain(names(other, "host_names"))
            {
                args.push("--host".into());
                args.push(format!("{n}=127.0.0.1:{}", ports[j]));
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        serves.push(Serve::start(ports[i], &args, &dir));
        targets.push((name.clone(), loopback(ports[i])));
    }
    let outcome =
        drive_file(&scenario, &DriveOptions::each(targets)).unwrap_or_else(|e| panic!("{e}"));
    drop(serves);
    outcome
}

#[rstest]
#[case("rfc3665/3_2_session_establishment_through_two_proxies.yaml", 25883)]
#[case("rfc3665/3_8_unsuccessful_no_answer.yaml", 25885)]
#[case("rfc3665/3_9_unsuccessful_busy.yaml", 25887)]
fn two_proxy_flow_passes_against_two_serves(#[case] flow: &str, #[case] port: u16) {
    let outcome = drive_against_serves(flow, &[port, port + 1]);
    if let Some(report) = outcome.report() {
        panic!("{report}");
    }
    // The UAs see the same messages as in the simulator; the messages between the two
    // proxies are theirs, not drive's, and are not in its ladder.
    let sim = run_file(&root(flow), &RunOptions::default()).unwrap();
    let at_uas = |o: &Outcome| {
        let both = |l: &String| l.contains("alice") || l.contains("bob");
        messages(o).into_iter().filter(both).collect::<Vec<_>>()
    };
    assert_eq!(at_uas(&outcome), at_uas(&sim), "{}", outcome.transcript());
}

/// Drives the scenario `flow` against a fresh `serve` configured like its element(s).
fn drive_against_serve(flow: &str, port: u16) -> Outcome {
    let dir = scratch(&port.to_string());
    let scenario = root(flow);
    let config = element_config(&scenario, port, &dir).display().to_string();
    let serve = Serve::start(port, &["--config", &config], &dir);
    let outcome =
        drive_file(&scenario, &DriveOptions::new(loopback(port))).unwrap_or_else(|e| panic!("{e}"));
    drop(serve);
    outcome
}

#[rstest]
#[case("rfc3665/2_1_successful_new_registration.yaml", 25871)]
#[case("rfc3665/2_2_update_of_contact_list.yaml", 25872)]
#[case("rfc3665/2_3_request_for_current_contact_list.yaml", 25873)]
#[case("rfc3665/2_4_cancellation_of_registration.yaml", 25874)]
#[case("rfc3665/2_5_unsuccessful_registration.yaml", 25875)]
#[case("rfc3665/3_5_session_through_a_sip_alg.yaml", 25881)]
#[case("rfc3665/3_7_session_with_re_invite_ip_address_change.yaml", 25882)]
#[case("tests/drive/call_through_one_proxy.yaml", 25876)]
#[case("tests/drive/busy_through_one_proxy.yaml", 25877)]
#[case("tests/drive/no_answer_through_one_proxy.yaml", 25878)]
fn flow_passes_against_serve(#[case] flow: &str, #[case] port: u16) {
    let outcome = drive_against_serve(flow, port);
    if let Some(report) = outcome.report() {
        panic!("{report}");
    }
    // The same messages as in the simulator (the order of two datagrams that arrive at two
    // UAs at once is the order drive reads its sockets in).
    let sim = run_file(&root(flow), &RunOptions::default()).unwrap();
    assert_eq!(
        messages(&outcome),
        messages(&sim),
        "{}",
        outcome.transcript()
    );
}

/// `from -> to  METHOD` or `from -> to  SIP/2.0 NNN` for each message, sorted.
fn messages(o: &Outcome) -> Vec<String> {
    let mut m: Vec<String> = o
        .lines
        .iter()
        .map(|l| {
            let first = l.first_line();
            let what = if first.starts_with("SIP/") {
                first.chars().take(11).collect()
            } else {
                first.split(' ').next().unwrap_or("").to_owned()
            };
            format!("{} -> {}  {what}", l.from, l.to)
        })
        .collect();
    m.sort();
    m
}

#[rstest]
#[case("tests/drive/call_through_one_proxy.yaml")]
#[case("tests/drive/busy_through_one_proxy.yaml")]
#[case("tests/drive/no_answer_through_one_proxy.yaml")]
fn the_one_proxy_flows_pass_in_the_simulator(#[case] flow: &str) {
    let outcome = run_file(&root(flow), &RunOptions::default()).unwrap();
    if let Some(report) = outcome.report() {
        panic!("{report}");
    }
}

#[test]
fn ua_to_ua_needs_no_target() {
    // RFC 3665 §3.1 has no element: the two UAs' sockets talk to each other.
    let outcome = drive_file(
        &root("rfc3665/3_1_successful_session_establishment.yaml"),
        &DriveOptions::new(loopback(9)),
    )
    .unwrap();
    if let Some(report) = outcome.report() {
        panic!("{report}");
    }
    assert_eq!(outcome.messages, 6, "{}", outcome.transcript());
}

#[test]
fn rfc3665_3_9_against_one_serve_fails_where_the_flow_needs_two_proxies() {
    // With a single `--target`, both proxies are the one target. Everything up to Bob's
    // INVITE holds (registration, the INVITE routed by the pre-loaded Route and relayed to
    // Bob's real socket, 100 Trying); the INVITE then carries one proxy's Via and
    // Record-Route, not two. With a target per proxy it passes (above).
    let outcome = drive_against_serve("rfc3665/3_9_unsuccessful_busy.yaml", 25879);
    let failure = outcome.failure.clone().expect("one proxy is not two");
    assert_eq!(failure.step, 5, "{}", outcome.report().unwrap());
    let report = outcome.report().unwrap();
    for line in [
        "- Via: (3 values)",
        "+ Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101",
        "- Record-Route: <sip:ss2.biloxi.example.com;lr>, <sip:ss1.atlanta.example.com;lr>",
        "+ Record-Route: <sip:ss1.atlanta.example.com;lr>",
        "addresses: drive checked the message with the real addresses mapped back",
        "replay with: trapezoid drive ",
    ] {
        assert!(report.contains(line), "no `{line}` in\n{report}");
    }
}

#[test]
fn fault_steps_are_refused_before_any_socket_is_opened() {
    let scenario = root("rfc3665/3_4_successful_session_with_proxy_failure.yaml");
    match drive_file(&scenario, &DriveOptions::new(loopback(9))) {
        Err(DriveError::Refused(e)) => {
            assert!(e.to_string().contains("`crash: proxy1`"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

fn bin(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trapezoid"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_drive_command_exits_0_1_or_2() {
    let port = 25880;
    let target = format!("127.0.0.1:{port}");
    let dir = scratch("cli");
    let flow = "rfc3665/2_1_successful_new_registration.yaml";
    let config = element_config(&root(flow), port, &dir)
        .display()
        .to_string();
    let serve = Serve::start(port, &["--config", &config], &dir);

    // 0: every step passed; the ladder names the scenario's hosts.
    let (code, stdout, stderr) = bin(&["drive", flow, "--target", &target, "--seed", "3"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("# RFC 3665 §2.1"), "{stdout}");
    assert!(stdout.contains("ss2 -> bob  SIP/2.0 200 OK"), "{stdout}");

    // 1: an expectation that does not hold; the report names the step and the replay.
    let wrong = dir.join("wrong.yaml");
    let mut f = std::fs::File::create(&wrong).unwrap();
    write!(
        f,
        "name: options\nhosts:\n  bob: {{ ua: {{ address: 192.0.2.201:5061 }} }}\n  \
         ss2: {{ element: {{ address: 192.0.2.222:5061, domains: [biloxi.example.com], \
         host_names: [ss2.biloxi.example.com] }} }}\nsteps:\n  - send:\n      from: bob\n      \
         to: ss2\n      message: |\n        OPTIONS sip:ss2.biloxi.example.com SIP/2.0\n        \
         Via: SIP/2.0/UDP 192.0.2.201:5061;branch=z9hG4bKo1\n        Max-Forwards: 70\n        \
         From: <sip:bob@biloxi.example.com>;tag=1\n        To: <sip:ss2.biloxi.example.com>\n        \
         Call-ID: o1\n        CSeq: 1 OPTIONS\n        Content-Length: 0\n  - expect:\n      \
         at: bob\n      status: 404\n"
    )
    .unwrap();
    drop(f);
    let wrong = wrong.display().to_string();
    let (code, stdout, _) = bin(&["drive", &wrong, "--target", &target]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains(":18: step 2 failed"), "{stdout}");
    assert!(stdout.contains("+ SIP/2.0 200 OK"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "replay with: trapezoid drive {wrong} --target {target} --seed 1"
        )),
        "{stdout}"
    );
    // The same with a target per element (here the only one), which the replay repeats.
    let named = format!("ss2={target}");
    let (code, stdout, _) = bin(&["drive", &wrong, "--target", &named]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("ss2 -> bob  SIP/2.0 200 OK"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "replay with: trapezoid drive {wrong} --target {named} --seed 1"
        )),
        "{stdout}"
    );
    drop(serve);

    // 2: a scenario drive cannot play, a bad target, a bad file: one line on stderr.
    for (args, says) in [
        (
            vec![
                "drive",
                "rfc3665/3_4_successful_session_with_proxy_failure.yaml",
                "--target",
                "127.0.0.1:9",
            ],
            "crash: proxy1",
        ),
        (vec!["drive", flow, "--target", "nowhere"], "--target"),
        (
            vec![
                "drive",
                "rfc3665/3_9_unsuccessful_busy.yaml",
                "--target",
                "proxy1=127.0.0.1:9",
            ],
            "no target for the element `proxy2`",
        ),
        (
            vec!["drive", flow, "--target", "bob=127.0.0.1:9"],
            "`bob`, which is not an element",
        ),
        (
            vec![
                "drive",
                flow,
                "--target",
                "127.0.0.1:9",
                "--target",
                "ss2=127.0.0.1:9",
            ],
            "either one HOST:PORT",
        ),
        (
            vec![
                "drive",
                flow,
                "--target",
                "ss2=127.0.0.1:9",
                "--target",
                "ss2=127.0.0.1:8",
            ],
            "two targets for the element `ss2`",
        ),
        (
            vec!["drive", flow, "--target", "=127.0.0.1:9"],
            "NAME=HOST:PORT",
        ),
        (
            vec!["drive", "no/such.yaml", "--target", "127.0.0.1:9"],
            "cannot read",
        ),
    ] {
        let (code, stdout, stderr) = bin(&args);
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
