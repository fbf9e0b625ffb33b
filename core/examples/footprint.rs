//! Memory the core keeps per binding, per live REGISTER transaction and per call/s, without
//! sockets or a runtime: the figures `bench/run.sh` measures, without its noise, in seconds.
//!
//! `cargo run --release -p trapezoid-core --example footprint [tcp|udp|calls] [bindings|seconds]`
//!
//! Each figure is the growth of the process's PSS (Linux), as bench/run.sh reads it for
//! `trapezoid serve`: the allocator's overhead counts, and memory freed stays counted.

use std::net::SocketAddr;
use std::time::Duration;

use trapezoid_core::message::{self, HeaderName, Limits, Message};
use trapezoid_core::time::Instant;
use trapezoid_core::{Config, Input, InputKind, Output, Proxy, Transport};

#[path = "../benches/support/mod.rs"]
mod support;

/// This process's proportional set size in bytes (Linux), as bench/run.sh reads it.
fn pss() -> i64 {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .unwrap_or(0)
        * 1024
}

const PROXY: &str = "127.0.0.1:5060";
const UAC: &str = "127.0.0.1:5061";
const UAS: &str = "127.0.0.1:5062";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn feed(
    p: &mut Proxy,
    now: Instant,
    from: &str,
    transport: Transport,
    bytes: &[u8],
) -> Vec<Vec<u8>> {
    support::deliver(p, now, addr(PROXY), addr(from), transport, bytes)
}

fn tick(p: &mut Proxy, now: Instant) {
    p.handle_input(Input {
        now,
        kind: InputKind::Timeout,
    });
    while !matches!(p.poll_output(), Output::Timeout(_)) {}
}

fn element() -> Proxy {
    let mut c = Config::new("127.0.0.1");
    c.local_addrs = vec![addr(PROXY)];
    c.seed = 1;
    c.limits.source_rate.per_second = 0;
    c.limits.transactions_max = usize::MAX;
    c.registrar.aors_max = usize::MAX;
    Proxy::new(c)
}

/// SIPp's register.xml, as bench/run.sh sends it.
fn register(user: &str, n: u64) -> String {
    format!(
        "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4242-{n}-0\r\n\
Max-Forwards: 70\r\n\
From: <sip:{user}@127.0.0.1:5060>;tag=4242SIPpTag00{n}\r\n\
To: <sip:{user}@127.0.0.1:5060>\r\n\
Call-ID: {n}-4242@127.0.0.1\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:{user}@127.0.0.1:5061;transport=UDP>\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\r\n"
    )
}

/// SIPp's uac.xml INVITE.
fn invite(n: u64) -> String {
    let body =
        "v=0\r\no=caller 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    format!(
        "INVITE sip:callee@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4242-{n}-0\r\n\
Max-Forwards: 70\r\n\
From: <sip:caller@127.0.0.1:5061>;tag=4242c{n}\r\n\
To: <sip:callee@127.0.0.1:5060>\r\n\
Call-ID: {n}-4242@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:caller@127.0.0.1:5061;transport=UDP>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn in_dialog(method: &str, n: u64, cseq: u32, branch: &str, route: &str) -> String {
    format!(
        "{method} sip:callee@127.0.0.1:5062;transport=UDP SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4242-{n}-{branch}\r\n\
Max-Forwards: 70\r\n\
Route: {route}\r\n\
From: <sip:caller@127.0.0.1:5061>;tag=4242c{n}\r\n\
To: <sip:callee@127.0.0.1:5060>;tag=uas{n}\r\n\
Call-ID: {n}-4242@127.0.0.1\r\n\
CSeq: {cseq} {method}\r\n\
Content-Length: 0\r\n\r\n"
    )
}

/// The UAS's answer to a forwarded request (uas.xml), made with the core's own builder
/// (RFC 3261 §8.2.6.2): its tag, the Record-Route copied (§12.1.1) and a Contact.
fn answer(request: &[u8], code: u16, reason: &str, n: u64) -> Vec<u8> {
    let m = Message::parse(request, &Limits::default()).unwrap();
    let tag = format!("uas{n}");
    let rr: Vec<&str> = m.values(&HeaderName::RecordRoute).collect();
    let mut extra: Vec<(&str, &str)> = rr.iter().map(|v| ("Record-Route", *v)).collect();
    extra.push(("Contact", "<sip:callee@127.0.0.1:5062;transport=UDP>"));
    message::response(&m, code, reason, Some(&tag), None, None, &extra, b"")
}

fn bindings(n: u64, transport: Transport) -> f64 {
    let mut p = element();
    tick(&mut p, Instant::ZERO);
    let base = pss();
    let mut now = Instant::ZERO;
    for i in 0..n {
        // 20,000 a second, as bench/run.sh sends them.
        now = Instant::from_duration(Duration::from_micros(i * 50));
        let out = feed(
            &mut p,
            now,
            UAC,
            transport,
            register(&format!("m{i}"), i).as_bytes(),
        );
        assert!(
            out[0].starts_with(b"SIP/2.0 200 "),
            "{}",
            String::from_utf8_lossy(&out[0])
        );
    }
    let _ = now;
    let per = (pss() - base) as f64 / n as f64;
    println!(
        "{n} REGISTERs over {transport:?}: {per:.0} B of PSS each; {} transactions live",
        p.transaction_count()
    );
    per
}

fn calls(rate: u64, secs: u64, sample: &[u64]) {
    let mut p = element();
    let reg = register("callee", 0).replace("5061", "5062");
    feed(&mut p, Instant::ZERO, UAS, Transport::Udp, reg.as_bytes());
    tick(&mut p, Instant::ZERO);
    let base = pss();
    let step = Duration::from_micros(1_000_000 / rate);
    let mut now = Instant::ZERO;
    for n in 1..=rate * secs {
        now = now + step;
        tick(&mut p, now);
        let out = feed(&mut p, now, UAC, Transport::Udp, invite(n).as_bytes());
        assert!(
            out.len() == 2,
            "{:?}",
            out.iter()
                .map(|o| String::from_utf8_lossy(o)
                    .lines()
                    .next()
                    .unwrap()
                    .to_owned())
                .collect::<Vec<_>>()
        );
        let fwd = out[1].clone();
        feed(
            &mut p,
            now,
            UAS,
            Transport::Udp,
            &answer(&fwd, 180, "Ringing", n),
        );
        let ok = answer(&fwd, 200, "OK", n);
        feed(&mut p, now, UAS, Transport::Udp, &ok);
        let text = String::from_utf8_lossy(&ok).into_owned();
        let route: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("Record-Route: "))
            .collect();
        let route = route.join(", ");
        let ack = in_dialog("ACK", n, 1, "ack", &route);
        feed(&mut p, now, UAC, Transport::Udp, ack.as_bytes());
        let bye = in_dialog("BYE", n, 2, "bye", &route);
        let out = feed(&mut p, now, UAC, Transport::Udp, bye.as_bytes());
        let bye_fwd = out.last().unwrap().clone();
        assert!(bye_fwd.starts_with(b"BYE "));
        let out = feed(
            &mut p,
            now,
            UAS,
            Transport::Udp,
            &answer(&bye_fwd, 200, "OK", n),
        );
        assert!(out[0].starts_with(b"SIP/2.0 200 "));
        if n % rate == 0 && sample.contains(&(n / rate)) {
            println!(
                "calls at {rate}/s after {:>3} s: {:.1} kB of PSS per call/s; {} transactions, {} contexts",
                n / rate,
                (pss() - base) as f64 / rate as f64 / 1024.0,
                p.transaction_count(),
                p.context_count()
            );
        }
    }
}

/// One measurement per process, so that none reuses memory another freed.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    match args.first().map(String::as_str) {
        Some("tcp") => drop(bindings(n, Transport::Tcp)),
        Some("udp") => drop(bindings(n, Transport::Udp)),
        // Timer C (3 minutes) is the longest-lived deadline of a call.
        Some("calls") => calls(1000, n.min(200), &[10, 33, 40, 100, 181, 200]),
        _ => {
            let me = std::env::current_exe().unwrap();
            for mode in ["tcp", "udp", "calls"] {
                let status = std::process::Command::new(&me)
                    .arg(mode)
                    .arg(n.to_string())
                    .status();
                assert!(status.is_ok_and(|s| s.success()), "{mode} failed");
            }
        }
    }
}
