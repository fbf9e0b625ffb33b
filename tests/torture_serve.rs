//! Every RFC 4475 and RFC 5118 torture message over real UDP sockets to one `trapezoid
//! serve`: each gets the answer expected of it (or none), a proxied one reaches its next
//! hop, and serve stays up and keeps answering: an OPTIONS probe after every message, and
//! at the end, on IPv4 and IPv6.
//!
//! The messages name 192.0.2.x, 2001:db8:: and example.com hosts, and a proxy forwards or
//! answers toward them. So serve and the sender run in a network namespace of their own
//! that has only `lo`: the test creates one (`ip netns add`, a unique name, deleted by a
//! drop guard, also on panic, with whatever still runs in it) and runs itself again inside
//! it (`ip netns exec NAME <this test binary> --exact every_torture_message_over_udp`),
//! which needs neither `unsafe` (`setns` would, and the workspace forbids it) nor a
//! dependency. Inside, the test first checks that `lo` is the only interface, and serve
//! runs with `--no-dns`. Without `ip` or the right to create a namespace (root), the test
//! says why it skips, except under CI (env var `CI`), where it fails.
//!
//! Serve listens on 127.0.0.1:25720 and [::1]:25720 for `example.com`. RFC 4475 messages
//! go over IPv4, RFC 5118 messages over IPv6 (files with CRLF and the missing empty line,
//! `common::rfc5118`). A response goes to the source address at the Via sent-by port (RFC
//! 3261 §18.2.2), so each message is sent from a socket bound to its sent-by port: 5060 for
//! most, 5050, 6050 or 19823 for three. The next hops serve proxies to listen on
//! 127.0.0.1:5080 and on IPv6 addresses put on the namespace's `lo`. All these ports are the
//! namespace's own and collide with nothing outside it.
//!
//! Serve reads a socket in order and sends what each datagram causes before it reads the
//! next, so once the probe that follows a message is answered, everything the message
//! caused has arrived: a message with no answer is told from a slow one without waiting.
//!
//! One serve takes the messages one after another, as a real one would, and transaction
//! state lasts 32 s (Timer J): a message that matches an earlier one's transaction (same
//! branch, sent-by and method, §17.2.3) is a retransmission of it, and gets what the first
//! got. The archives have five such pairs ([`Expect::Again`] in the table).

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{rfc5118, Serve};
use trapezoid_core::message::{HeaderName, Message};

/// Set (to the namespace's name) in the copy of the test that runs inside the namespace.
const INSIDE: &str = "TRAPEZOID_TORTURE_NETNS";
const TEST: &str = "every_torture_message_over_udp";
const SERVE_PORT: u16 = 25720;
/// Loopback delivery is not instant: a datagram serve sent before the probe's answer may
/// still be on its way to another socket when that answer arrives.
const SETTLE: Duration = Duration::from_millis(10);
/// The whole run inside the namespace takes a few seconds; this only stops a hang.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Which archive a message comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Set {
    Rfc4475,
    Rfc5118,
}

use Set::*;

/// What serve does with a message.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Answers with these statuses, in order (none: dropped), and forwards nothing.
    Answers(&'static [u16]),
    /// Proxies it to this next hop, and answers with these statuses (100 for an INVITE).
    Forwarded(&'static str, &'static [u16]),
    /// It is a retransmission of this earlier message's request (§17.2.3: same branch,
    /// sent-by and method): serve sends that one's final response again, if it had one,
    /// and nothing new.
    Again(&'static str),
}

use Expect::*;

/// Every message in the order sent, and what serve does with it. Serve's configuration
/// differs from the element tests' (`tests/torture_core.rs`, `tests/torture_ipv6_core.rs`):
/// it is at 127.0.0.1 and [::1], it serves example.com only, and it has seen every message
/// before.
const EXPECTED: &[(Set, &str, Expect)] = &[
    // RFC 4475 §3.1.1: valid messages.
    (Rfc4475, "wsinv", Answers(&[100, 503])),
    (Rfc4475, "intmeth", Answers(&[404])),
    (Rfc4475, "esc01", Answers(&[100, 404])),
    (Rfc4475, "escnull", Answers(&[200])),
    (Rfc4475, "esc02", Answers(&[404])),
    (Rfc4475, "lwsdisp", Answers(&[404])),
    (Rfc4475, "longreq", Answers(&[100, 404])),
    (Rfc4475, "dblreq", Answers(&[200])),
    (Rfc4475, "semiuri", Answers(&[404])),
    (Rfc4475, "transports", Answers(&[404])),
    // To its Route, where nobody answers.
    (Rfc4475, "mpart01", Forwarded("127.0.0.1:5080", &[])),
    // Responses that match no transaction: dropped.
    (Rfc4475, "unreason", Answers(&[])),
    (Rfc4475, "noreason", Answers(&[])),
    // §3.1.2: invalid messages.
    (Rfc4475, "badinv01", Answers(&[400])),
    (Rfc4475, "clerr", Answers(&[400])),
    (Rfc4475, "ncl", Answers(&[400])),
    (Rfc4475, "scalar02", Answers(&[400])),
    (Rfc4475, "scalarlg", Answers(&[])),
    (Rfc4475, "quotbal", Answers(&[400])),
    (Rfc4475, "ltgtruri", Answers(&[400])),
    (Rfc4475, "lwsruri", Answers(&[400])),
    (Rfc4475, "lwsstart", Answers(&[400])),
    (Rfc4475, "trws", Answers(&[400])),
    (Rfc4475, "escruri", Answers(&[400])),
    (Rfc4475, "baddate", Answers(&[100, 404])),
    (Rfc4475, "regbadct", Answers(&[400])),
    (Rfc4475, "badaspec", Answers(&[400])),
    (Rfc4475, "baddn", Answers(&[400])),
    (Rfc4475, "badvers", Answers(&[505])),
    (Rfc4475, "mismatch01", Answers(&[400])),
    (Rfc4475, "mismatch02", Answers(&[501])),
    (Rfc4475, "bigcode", Answers(&[])),
    // §3.2, §3.3, §3.4.
    (Rfc4475, "badbranch", Answers(&[404])),
    (Rfc4475, "insuf", Answers(&[400])),
    (Rfc4475, "unkscm", Answers(&[416])),
    (Rfc4475, "novelsc", Again("unkscm")),
    (Rfc4475, "unksm2", Answers(&[400])),
    (Rfc4475, "bext01", Answers(&[420])),
    (Rfc4475, "invut", Answers(&[100, 404])),
    (Rfc4475, "regaut01", Answers(&[200])),
    (Rfc4475, "multi01", Answers(&[400])),
    (Rfc4475, "mcl01", Answers(&[400])),
    (Rfc4475, "bcast", Answers(&[])),
    (Rfc4475, "zeromf", Answers(&[200])),
    (Rfc4475, "cparam01", Answers(&[200])),
    (Rfc4475, "cparam02", Again("cparam01")),
    (Rfc4475, "regescrt", Again("escnull")),
    (Rfc4475, "sdp01", Answers(&[100, 404])),
    (Rfc4475, "inv2543", Answers(&[100, 404])),
    (Rfc4475, "test", Answers(&[])),
    // RFC 5118, over IPv6. [2001:db8::10] is not serve here, so what is addressed to it is
    // proxied there.
    (Rfc5118, "ipv6-good", Forwarded("[2001:db8::10]:5060", &[])),
    (Rfc5118, "ipv6-bad", Answers(&[400])),
    (Rfc5118, "port-ambiguous", Again("ipv6-good")),
    (Rfc5118, "port-unambiguous", Again("ipv6-good")),
    (
        Rfc5118,
        "via-received-param-with-delim",
        Forwarded("[2001:db8::10]:5060", &[]),
    ),
    (
        Rfc5118,
        "via-received-param-no-delim",
        Forwarded("[2001:db8::10]:5060", &[]),
    ),
    (Rfc5118, "ipv6-in-sdp", Answers(&[400])),
    (Rfc5118, "mult-ip-in-header", Answers(&[404])),
    (
        Rfc5118,
        "mult-ip-in-sdp",
        Forwarded("[2001:db8::10]:5060", &[100]),
    ),
    (Rfc5118, "ipv4-mapped-ipv6", Answers(&[100, 404])),
    (
        Rfc5118,
        "ipv6-bug-abnf-3-colons",
        Forwarded("[2001:db8::c000:201]:5060", &[]),
    ),
    (
        Rfc5118,
        "ipv6-correct-abnf-2-colons",
        Again("ipv6-bug-abnf-3-colons"),
    ),
];

/// Where forwarded requests arrive: the next hops above. The 2001:db8:: addresses are put
/// on the namespace's `lo`.
const NEXT_HOPS: [&str; 3] = [
    "127.0.0.1:5080",
    "[2001:db8::10]:5060",
    "[2001:db8::c000:201]:5060",
];

/// The Via sent-by port of a message, where its response goes, when not 5060.
fn sent_by_port(file: &str) -> u16 {
    match file {
        "quotbal" => 5050,
        "mult-ip-in-header" => 6050,
        "ipv4-mapped-ipv6" => 19823,
        _ => 5060,
    }
}

fn datagram(set: Set, file: &str) -> Vec<u8> {
    match set {
        Rfc4475 => {
            let path = format!(
                "{}/tests/data/rfc4475/{file}.dat",
                env!("CARGO_MANIFEST_DIR")
            );
            std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
        }
        Rfc5118 => rfc5118::datagram(file),
    }
}

#[test]
fn every_torture_message_over_udp() {
    if let Some(name) = std::env::var_os(INSIDE) {
        return inside(&name.to_string_lossy());
    }
    let Some(ip) = common::peer("ip", "iproute2") else {
        return;
    };
    let Some(netns) = Netns::create(&ip) else {
        return;
    };
    // Serve's log and what the test printed inside, kept for a failure.
    let dir = std::env::temp_dir().join(&netns.name);
    std::fs::create_dir_all(&dir).unwrap();
    let output = std::fs::File::create(dir.join("inside.log")).unwrap();
    let mut child = Command::new(&ip)
        .args(["netns", "exec", &netns.name])
        .arg(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, &netns.name)
        .stdin(Stdio::null())
        .stdout(output.try_clone().unwrap())
        .stderr(output)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = std::fs::read_to_string(dir.join("inside.log")).unwrap_or_default();
    println!("{log}");
    match status {
        Some(s) => assert!(
            s.success(),
            "inside the namespace: {s}; logs in {}",
            dir.display()
        ),
        None => panic!("inside the namespace: no end after {RUN_LIMIT:?}"),
    }
}

/// A network namespace of this test's own, deleted when dropped (with whatever still runs
/// in it).
struct Netns {
    ip: PathBuf,
    name: String,
}

impl Netns {
    /// `ip netns add` and `lo` up; `None` (after saying why) when that is not allowed here.
    fn create(ip: &Path) -> Option<Netns> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("trapezoid-torture-{}-{nanos}", std::process::id());
        let added = Command::new(ip).args(["netns", "add", &name]).output();
        let why = match added {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = why {
            assert!(
                std::env::var_os("CI").is_none(),
                "`ip netns add` failed ({why}), and CI must run this test (as root)"
            );
            eprintln!("skipped: cannot create a network namespace (root needed): {why}");
            return None;
        }
        let netns = Netns {
            ip: ip.to_owned(),
            name,
        };
        let inside = |args: &[&str]| {
            let done = Command::new(ip)
                .args(["netns", "exec", &netns.name])
                .arg(ip)
                .args(args)
                .status()
                .unwrap();
            assert!(done.success(), "{args:?} in {}", netns.name);
        };
        inside(&["link", "set", "lo", "up"]);
        // The IPv6 next hops, on `lo`: local addresses, no route out.
        for hop in NEXT_HOPS {
            let hop: SocketAddr = hop.parse().unwrap();
            if let IpAddr::V6(a) = hop.ip() {
                inside(&[
                    "-6",
                    "addr",
                    "add",
                    &format!("{a}/128"),
                    "dev",
                    "lo",
                    "nodad",
                ]);
            }
        }
        Some(netns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // The copy of the test and the serve it started, should they still run.
        if let Ok(out) = Command::new(&self.ip)
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new(&self.ip)
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// The network interfaces this process sees.
fn interfaces() -> Vec<String> {
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap();
    dev.lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(name, _)| name.trim().to_owned()))
        .collect()
}

/// The sockets that send the messages and get their responses, by family and port.
struct Senders {
    sockets: Vec<UdpSocket>,
}

impl Senders {
    fn bind() -> Senders {
        let mut sockets = Vec::new();
        for ip in [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ] {
            for port in [5060, 5050, 6050, 19823] {
                let s = UdpSocket::bind(SocketAddr::new(ip, port)).unwrap();
                s.set_nonblocking(true).unwrap();
                sockets.push(s);
            }
        }
        Senders { sockets }
    }

    fn get(&self, ip: IpAddr, port: u16) -> &UdpSocket {
        self.sockets
            .iter()
            .find(|s| s.local_addr().unwrap() == SocketAddr::new(ip, port))
            .unwrap()
    }
}

/// An OPTIONS to serve from `socket` (the family of the message before it, so that serve
/// reads the two in order), until its 200 comes back (bounded).
fn probe(socket: &UdpSocket, serve: SocketAddr, n: usize) {
    let me = socket.local_addr().unwrap();
    let host = match serve.ip() {
        IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let call_id = format!("probe{n}");
    let options = format!(
        "OPTIONS sip:{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKprobe{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{host}>;tag=p\r\nTo: <sip:{host}:{port}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        port = serve.port()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 65_535];
    while Instant::now() < deadline {
        socket.send_to(options.as_bytes(), serve).unwrap();
        let until = Instant::now() + Duration::from_millis(200);
        while Instant::now() < until {
            let Ok((len, _)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(m) = Message::parse(&buf[..len], &Default::default()) else {
                continue;
            };
            if m.call_id() == Some(call_id.as_str()) && m.status() == Some(200) {
                return;
            }
        }
    }
    panic!("serve did not answer probe {n} on {serve}");
}

/// Call-ID and CSeq: what ties a response or a forwarded request to the request it
/// comes from.
fn key(m: &Message) -> (Option<String>, Option<String>) {
    (
        m.call_id().map(str::to_owned),
        m.value(&HeaderName::CSeq).map(str::to_owned),
    )
}

/// What came back for one message.
#[derive(Debug, Default)]
struct Got {
    /// The statuses of new responses to it, in order.
    answers: Vec<u16>,
    /// Where it was forwarded.
    forwarded: Vec<SocketAddr>,
    /// Datagrams sent before, sent again (an earlier transaction's retransmissions).
    again: Vec<Vec<u8>>,
}

/// Everything that arrived on `sockets` (after the probe: serve has sent it all, and
/// [`SETTLE`] lets the kernel deliver it), sorted into what concerns the message with
/// `key_sent`, retransmissions, and strays.
fn collect(
    sockets: &[&UdpSocket],
    key_sent: Option<&(Option<String>, Option<String>)>,
    seen: &mut Vec<Vec<u8>>,
    strays: &mut Vec<String>,
) -> Got {
    std::thread::sleep(SETTLE);
    let mut got = Got::default();
    let mut buf = [0u8; 65_535];
    for socket in sockets {
        let me = socket.local_addr().unwrap();
        while let Ok((len, _)) = socket.recv_from(&mut buf) {
            let bytes = buf[..len].to_vec();
            let m = Message::parse(&bytes, &Default::default())
                .unwrap_or_else(|e| panic!("serve sent {me} what does not parse: {e}"));
            if seen.contains(&bytes) {
                got.again.push(bytes);
                continue;
            }
            if key_sent == Some(&key(&m)) {
                match m.status() {
                    Some(status) => got.answers.push(status),
                    None => got.forwarded.push(me),
                }
            } else {
                strays.push(format!("{me} got {}", String::from_utf8_lossy(&bytes)));
            }
            seen.push(bytes);
        }
    }
    got
}

fn inside(netns: &str) {
    // The safety rule: nothing of this may reach a network.
    assert_eq!(interfaces(), ["lo"], "not alone in namespace {netns}");
    let dir = std::env::temp_dir().join(netns);
    let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), SERVE_PORT);
    let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), SERVE_PORT);
    // An open relay, as the element of tests/torture_core.rs: the messages come from
    // foreign domains, and what RFC 4475 asks of a proxy is that it forwards them, not the
    // relay policy's 403.
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("serve.yaml");
    std::fs::write(
        &config,
        format!("address: {v4}\ndomains: [example.com]\nproxy: {{ relay: open }}\n"),
    )
    .unwrap();
    let serve = Serve::start(
        SERVE_PORT,
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &format!("udp:{v4}"),
            "--listen",
            &format!("udp:{v6}"),
            "--domain",
            "example.com",
        ],
        &dir,
    );
    let senders = Senders::bind();
    let next_hops: Vec<UdpSocket> = NEXT_HOPS
        .iter()
        .map(|a| {
            let s = UdpSocket::bind(a).unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let probes = [
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("[::1]:0").unwrap(),
    ];
    for p in &probes {
        p.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    }
    // Every datagram seen: an INVITE's final response comes again on Timer G (nobody sends
    // the ACK), a forwarded request on Timer E (nobody answers it), the same bytes.
    let mut seen: Vec<Vec<u8>> = Vec::new();
    // The final response each message got, for the ones that come again.
    let mut finals: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut failures = Vec::new();
    let started = Instant::now();
    for (n, &(set, file, expect)) in EXPECTED.iter().enumerate() {
        let (to, probe_socket) = match set {
            Rfc4475 => (v4, &probes[0]),
            Rfc5118 => (v6, &probes[1]),
        };
        let socket = senders.get(to.ip(), sent_by_port(file));
        let bytes = datagram(set, file);
        let sent_key = Message::parse(&bytes, &Default::default())
            .ok()
            .map(|m| key(&m));
        socket.send_to(&bytes, to).unwrap();
        // Serve reads a socket in order and sends in order: once the probe is answered,
        // everything the message caused has been sent.
        probe(probe_socket, to, n);
        let mut sockets = vec![socket];
        sockets.extend(next_hops.iter());
        let mut strays = Vec::new();
        let got = collect(&sockets, sent_key.as_ref(), &mut seen, &mut strays);
        println!("{set:?} {file}: {:?} {:?}", got.answers, got.forwarded);
        failures.extend(strays.into_iter().map(|s| format!("{file}: {s}")));
        let ok = match expect {
            Answers(statuses) => got.answers == statuses && got.forwarded.is_empty(),
            Forwarded(hop, statuses) => {
                got.answers == statuses && got.forwarded == [hop.parse().unwrap()]
            }
            Again(earlier) => {
                let earlier_final = finals.iter().find(|(f, _)| *f == earlier);
                got.answers.is_empty()
                    && got.forwarded.is_empty()
                    && earlier_final.is_none_or(|(_, b)| got.again.contains(b))
            }
        };
        if !ok {
            failures.push(format!("{file}: expected {expect:?}, got {got:?}"));
        }
        // Its final response, for a later retransmission of the same request.
        let last_final = seen.iter().rev().find(|b| {
            Message::parse(b, &Default::default()).is_ok_and(|m| {
                m.status().is_some_and(|s| s >= 200) && sent_key.as_ref() == Some(&key(&m))
            })
        });
        if let Some(last) = last_final {
            finals.push((file, last.clone()));
        }
    }
    // Still up, on both families.
    probe(&probes[0], v4, EXPECTED.len());
    probe(&probes[1], v6, EXPECTED.len() + 1);
    println!("{} messages in {:?}", EXPECTED.len(), started.elapsed());
    serve.kill();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Every file of both archives is in the table, once.
#[test]
fn every_file_is_sent() {
    let mut names: Vec<String> = EXPECTED.iter().map(|(_, f, _)| f.to_string()).collect();
    // An `Again` names a message sent before it.
    for (i, (_, file, expect)) in EXPECTED.iter().enumerate() {
        if let Again(earlier) = expect {
            assert!(
                EXPECTED[..i].iter().any(|(_, f, _)| f == earlier),
                "{file}: {earlier} comes later"
            );
        }
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rfc4475");
    let mut files = common::dat_files(dir);
    files.extend(rfc5118::files_on_disk());
    files.sort();
    names.sort();
    assert_eq!(names, files);
}
