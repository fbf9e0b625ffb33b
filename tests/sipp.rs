//! `trapezoid serve` against SIPp (Debian `sip-tester`), over loopback only: registrations
//! with and without digest authentication, calls through the proxy over UDP and TCP (ACK and
//! BYE following the Record-Route) and with a 407 first, a busy callee, a cancelled call, and
//! bindings that survive `kill -9`.
//!
//! Each test runs its own `serve` on its own ports and bounds every process in time. Without
//! `sipp` the tests print why and pass, except when `CI` is set: CI installs SIPp, so a
//! missing one there is a failure.

use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::Serve;

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sipp/");
/// Longest any one SIPp run may take before the test fails.
const SIPP_MAX: Duration = Duration::from_secs(60);

fn sipp() -> Option<PathBuf> {
    common::peer("sipp", "sip-tester")
}

/// A scratch directory for one test (SIPp writes its logs into its working directory).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trapezoid-sipp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `serve` on UDP and TCP 127.0.0.1:`port`, with `extra` flags.
fn start(port: u16, extra: &[&str], dir: &Path) -> Serve {
    let udp = format!("udp:127.0.0.1:{port}");
    let tcp = format!("tcp:127.0.0.1:{port}");
    let mut args = vec!["--listen", udp.as_str(), "--listen", tcp.as_str()];
    args.extend_from_slice(extra);
    Serve::start(port, &args, dir)
}

/// Sends one request over UDP from an ephemeral port and returns the final response.
fn request(port: u16, text: &str) -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let me = socket.local_addr().unwrap();
    let text = text.replace("{me}", &me.to_string());
    socket
        .send_to(text.as_bytes(), ("127.0.0.1", port))
        .unwrap();
    let mut buf = [0u8; 8192];
    loop {
        let (len, _) = socket.recv_from(&mut buf).expect("an answer");
        let answer = String::from_utf8_lossy(&buf[..len]).into_owned();
        if !answer.starts_with("SIP/2.0 1") {
            return answer;
        }
    }
}

/// Registers `user` at `contact` (a URI) with the element on `port`, over UDP.
fn register(port: u16, user: &str, contact: &str) -> String {
    request(
        port,
        &format!(
            "REGISTER sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {{me}};branch=z9hG4bKreg{user}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@127.0.0.1>;tag=r\r\nTo: <sip:{user}@127.0.0.1>\r\n\
             Call-ID: reg-{user}\r\nCSeq: 1 REGISTER\r\nContact: <{contact}>\r\nContent-Length: 0\r\n\r\n"
        ),
    )
}

/// A SIPp process started in `dir`.
fn spawn_sipp(sipp: &Path, dir: &Path, args: &[String]) -> Child {
    Command::new(sipp)
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits for a process, killing it after `max`.
fn wait_bounded(child: &mut Child, max: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + max;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {max:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// SIPp's error log, for a failure message.
fn errors(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with("_errors.log") || name.starts_with("serve-") {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            out.push_str(&format!("--- {name}\n"));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

/// A UAC run: `calls` calls of `scenario` at `rate` per second from `local_port`.
struct Calls<'a> {
    scenario: &'a str,
    transport: &'a str,
    calls: u32,
    rate: u32,
    local_port: u16,
}

/// Runs a UAC scenario to completion against the element on `port`.
fn uac(sipp: &Path, dir: &Path, port: u16, c: Calls<'_>) {
    let mut child = spawn_sipp(
        sipp,
        dir,
        &args(&[
            &format!("127.0.0.1:{port}"),
            "-sf",
            &format!("{SCENARIOS}{}", c.scenario),
            "-s",
            "callee",
            "-i",
            "127.0.0.1",
            "-p",
            &c.local_port.to_string(),
            "-t",
            c.transport,
            "-m",
            &c.calls.to_string(),
            "-r",
            &c.rate.to_string(),
            "-l",
            "200",
            "-timeout",
            "50s",
            "-timeout_error",
            "-trace_err",
            "-nostdin",
        ]),
    );
    let status = wait_bounded(&mut child, SIPP_MAX, c.scenario);
    assert!(
        status.success(),
        "{} over {}: {status}\n{}",
        c.scenario,
        c.transport,
        errors(dir)
    );
}

/// Starts a UAS scenario for `calls` calls; returns it to wait for after the UAC.
fn uas(sipp: &Path, dir: &Path, scenario: &str, transport: &str, calls: u32, port: u16) -> Child {
    let child = spawn_sipp(
        sipp,
        dir,
        &args(&[
            "-sf",
            &format!("{SCENARIOS}{scenario}"),
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            transport,
            "-m",
            &calls.to_string(),
            "-timeout",
            "50s",
            "-timeout_error",
            "-trace_err",
            "-nostdin",
        ]),
    );
    // SIPp binds its socket at start; give it that moment (bounded by the run below anyway).
    std::thread::sleep(Duration::from_millis(300));
    child
}

fn users_file(dir: &Path, n: usize, with_password: bool) -> PathBuf {
    let path = dir.join("users.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "SEQUENTIAL").unwrap();
    for i in 0..n {
        if with_password {
            writeln!(f, "user{i};secret{i};").unwrap();
        } else {
            writeln!(f, "user{i};").unwrap();
        }
    }
    path
}

fn register_many(
    sipp: &Path,
    dir: &Path,
    port: u16,
    scenario: &str,
    users: &Path,
    local_port: u16,
) {
    let mut child = spawn_sipp(
        sipp,
        dir,
        &args(&[
            &format!("127.0.0.1:{port}"),
            "-sf",
            &format!("{SCENARIOS}{scenario}"),
            "-inf",
            &users.display().to_string(),
            "-i",
            "127.0.0.1",
            "-p",
            &local_port.to_string(),
            "-t",
            "u1",
            "-m",
            "1000",
            "-r",
            "200",
            "-l",
            "400",
            "-timeout",
            "50s",
            "-timeout_error",
            "-trace_err",
            "-nostdin",
        ]),
    );
    let status = wait_bounded(&mut child, SIPP_MAX, scenario);
    assert!(status.success(), "{scenario}: {status}\n{}", errors(dir));
}

/// A REGISTER without Contact lists the bindings (RFC 3261 §10.3 step 6... step 8).
fn bindings_of(port: u16, user: &str, auth: Option<&str>) -> String {
    let extra = auth.unwrap_or("");
    request(
        port,
        &format!(
            "REGISTER sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {{me}};branch=z9hG4bKq{user}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@127.0.0.1>;tag=q\r\nTo: <sip:{user}@127.0.0.1>\r\n\
             Call-ID: query-{user}\r\nCSeq: 1 REGISTER\r\n{extra}Content-Length: 0\r\n\r\n"
        ),
    )
}

#[test]
fn sipp_registers_1000_users_at_200_per_second() {
    let Some(sipp) = sipp() else { return };
    let dir = scratch("register");
    let serve = start(25160, &[], &dir);
    let users = users_file(&dir, 1000, false);
    register_many(&sipp, &dir, serve.port, "register.xml", &users, 25180);
    let r = bindings_of(serve.port, "user999", None);
    assert!(r.starts_with("SIP/2.0 200 OK"), "{r}");
    assert!(
        r.contains("Contact: <sip:user999@127.0.0.1:25180;transport=UDP>;expires="),
        "{r}"
    );
}

/// An element config (the scenario language's element settings) with MD5 digest on
/// REGISTER, `extra` YAML lines, and the users `callee` (password `pwcallee`) and `userI`
/// (password `secretI`) for I below `users`; returns its path.
fn digest_config(dir: &Path, port: u16, extra: &str, users: usize) -> String {
    let mut yaml = format!(
        "address: 127.0.0.1:{port}\ndomains: [127.0.0.1]\n\
         auth: {{ register: true, algorithms: [MD5] }}\n{extra}\
         users:\n  - {{ name: callee, password: pwcallee }}\n"
    );
    for i in 0..users {
        yaml.push_str(&format!("  - {{ name: user{i}, password: secret{i} }}\n"));
    }
    let path = dir.join("element.yaml");
    std::fs::write(&path, yaml).unwrap();
    path.display().to_string()
}

#[test]
fn sipp_registers_1000_users_with_digest_authentication() {
    let Some(sipp) = sipp() else { return };
    let dir = scratch("register-auth");
    // The users come from a config file: the element settings of the scenario language.
    // SIPp 3.6 answers only an MD5 challenge, and only the first one it sees: the element's
    // default offers SHA-256 first (RFC 8760 §2.4), so MD5 alone here.
    let config = digest_config(&dir, 25260, "", 1000);
    let serve = start(25260, &["--config", &config], &dir);
    let users = users_file(&dir, 1000, true);
    register_many(&sipp, &dir, serve.port, "register_auth.xml", &users, 25280);
    // Without credentials, a query is challenged.
    let r = bindings_of(serve.port, "user5", None);
    assert!(r.starts_with("SIP/2.0 401 "), "{r}");
}

fn calls(transport: &str, base: u16) {
    let Some(sipp) = sipp() else { return };
    let dir = scratch(&format!("calls-{transport}"));
    let serve = start(base, &[], &dir);
    let uas_port = base + 10;
    let contact = if transport == "t1" {
        format!("sip:callee@127.0.0.1:{uas_port};transport=tcp")
    } else {
        format!("sip:callee@127.0.0.1:{uas_port}")
    };
    let r = register(serve.port, "callee", &contact);
    assert!(r.starts_with("SIP/2.0 200 OK"), "{r}");
    let mut callee = uas(&sipp, &dir, "uas.xml", transport, 500, uas_port);
    uac(
        &sipp,
        &dir,
        serve.port,
        Calls {
            scenario: "uac.xml",
            transport,
            calls: 500,
            rate: 100,
            local_port: base + 20,
        },
    );
    let status = wait_bounded(&mut callee, SIPP_MAX, "uas.xml");
    assert!(
        status.success(),
        "callee over {transport}: {status}\n{}",
        errors(&dir)
    );
}

#[test]
fn sipp_500_calls_through_the_proxy_over_udp() {
    calls("u1", 25360);
}

#[test]
fn sipp_500_calls_through_the_proxy_over_tcp() {
    calls("t1", 25460);
}

/// Calls from users who must answer a 407 first (INVITE, 407, ACK, INVITE with
/// Proxy-Authorization): SIPp hashes `sip:IP:PORT` as the digest uri, not the Request-URI,
/// and the element accepts that (RFC 3261 §22.4 leaves the check to the server).
#[test]
fn sipp_200_calls_with_digest_through_the_proxy() {
    let Some(sipp) = sipp() else { return };
    let dir = scratch("calls-auth");
    let port = 25790;
    let uas_port = 25798;
    let config = digest_config(&dir, port, "proxy: { authenticate: true }\n", 20);
    let serve = start(port, &["--config", &config], &dir);
    // The callee registers with its credentials from the port its UAS will answer on.
    let callee = dir.join("callee.csv");
    std::fs::write(&callee, "SEQUENTIAL\ncallee;pwcallee;\n").unwrap();
    let mut child = spawn_sipp(
        &sipp,
        &dir,
        &args(&[
            &format!("127.0.0.1:{port}"),
            "-sf",
            &format!("{SCENARIOS}register_auth.xml"),
            "-inf",
            &callee.display().to_string(),
            "-i",
            "127.0.0.1",
            "-p",
            &uas_port.to_string(),
            "-t",
            "u1",
            "-m",
            "1",
            "-timeout",
            "20s",
            "-timeout_error",
            "-trace_err",
            "-nostdin",
        ]),
    );
    let status = wait_bounded(&mut child, SIPP_MAX, "register_auth.xml");
    assert!(status.success(), "callee: {status}\n{}", errors(&dir));
    let mut callee = uas(&sipp, &dir, "uas.xml", "u1", 200, uas_port);
    let users = users_file(&dir, 20, true);
    let mut caller = spawn_sipp(
        &sipp,
        &dir,
        &args(&[
            &format!("127.0.0.1:{}", serve.port),
            "-sf",
            &format!("{SCENARIOS}uac_auth.xml"),
            "-s",
            "callee",
            "-inf",
            &users.display().to_string(),
            "-i",
            "127.0.0.1",
            "-p",
            "25795",
            "-t",
            "u1",
            "-m",
            "200",
            "-r",
            "100",
            "-l",
            "200",
            "-timeout",
            "50s",
            "-timeout_error",
            "-trace_err",
            "-nostdin",
        ]),
    );
    let status = wait_bounded(&mut caller, SIPP_MAX, "uac_auth.xml");
    assert!(status.success(), "callers: {status}\n{}", errors(&dir));
    let status = wait_bounded(&mut callee, SIPP_MAX, "uas.xml");
    assert!(status.success(), "callee: {status}\n{}", errors(&dir));
}

#[test]
fn sipp_busy_callee_and_cancelled_calls() {
    let Some(sipp) = sipp() else { return };
    let dir = scratch("busy-cancel");
    let serve = start(25560, &[], &dir);
    let uas_port = 25570;
    let r = register(
        serve.port,
        "callee",
        &format!("sip:callee@127.0.0.1:{uas_port}"),
    );
    assert!(r.starts_with("SIP/2.0 200 OK"), "{r}");
    for kind in ["busy", "cancel"] {
        let mut callee = uas(&sipp, &dir, &format!("uas_{kind}.xml"), "u1", 20, uas_port);
        let scenario = format!("uac_{kind}.xml");
        uac(
            &sipp,
            &dir,
            serve.port,
            Calls {
                scenario: &scenario,
                transport: "u1",
                calls: 20,
                rate: 20,
                local_port: 25580,
            },
        );
        let status = wait_bounded(&mut callee, SIPP_MAX, kind);
        assert!(
            status.success(),
            "{kind} callee: {status}\n{}",
            errors(&dir)
        );
    }
}

#[test]
fn bindings_survive_kill_9_and_a_call_still_reaches_the_callee() {
    let Some(sipp) = sipp() else { return };
    let dir = scratch("restart");
    let db = dir.join("location.db").display().to_string();
    let port = 25660;
    let uas_port = 25670;
    let serve = start(port, &["--db", &db], &dir);
    let r = register(port, "callee", &format!("sip:callee@127.0.0.1:{uas_port}"));
    assert!(r.starts_with("SIP/2.0 200 OK"), "{r}");
    // SIGKILL right after the 200: no shutdown code runs.
    serve.kill();
    let serve = start(port, &["--db", &db], &dir);
    let mut callee = uas(&sipp, &dir, "uas.xml", "u1", 1, uas_port);
    uac(
        &sipp,
        &dir,
        serve.port,
        Calls {
            scenario: "uac.xml",
            transport: "u1",
            calls: 1,
            rate: 1,
            local_port: 25680,
        },
    );
    let status = wait_bounded(&mut callee, SIPP_MAX, "uas.xml");
    assert!(
        status.success(),
        "callee after restart: {status}\n{}",
        errors(&dir)
    );
}
