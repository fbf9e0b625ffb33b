//! `trapezoid serve --workers 2` over loopback UDP: callees register and callers call them
//! from sockets of their own, which the kernel spreads over both workers; every call
//! completes (INVITE, 180, 200, ACK, BYE, 200) whichever worker each socket reached. The
//! bindings reach the database shared by the workers, and SIGTERM stops both with exit
//! code 0. (`server/tests/workers.rs` makes caller and callee reach different workers on
//! purpose and counts the hand-overs.)

use std::net::{SocketAddr, UdpSocket};

mod common;
#[path = "../server/tests/ua/mod.rs"]
mod ua;
use ua::{answer, first_line, header, recv, recv_past_trying, socket};

/// Callees and callers: with 6 pairs, that every caller reaches its callee's worker has a
/// chance of 1 in 64; the test passes either way, only less of it runs across workers.
const CALLS: usize = 6;

#[test]
fn two_workers_complete_every_call_share_the_database_and_stop_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("trapezoid-workers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("location.db").display().to_string();
    let port = 26710;
    let listen = format!("udp:127.0.0.1:{port}");
    let args = ["--listen", &listen, "--workers", "2", "--db", &db];
    let serve = common::Serve::start(port, &args, &dir);
    let proxy: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    let callees: Vec<(UdpSocket, SocketAddr)> = (0..CALLS).map(|_| socket()).collect();
    for (n, (s, b)) in callees.iter().enumerate() {
        let register = format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {b};branch=z9hG4bKreg{n}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:u{n}@127.0.0.1>;tag=r\r\nTo: <sip:u{n}@127.0.0.1>\r\n\
             Call-ID: reg{n}\r\nCSeq: 1 REGISTER\r\nContact: <sip:u{n}@{b}>\r\n\
             Content-Length: 0\r\n\r\n"
        );
        s.send_to(register.as_bytes(), proxy).unwrap();
        let ok = recv(s);
        assert_eq!(first_line(&ok), "SIP/2.0 200 OK", "{ok}");
    }

    for (n, (bob, b)) in callees.iter().enumerate() {
        let (alice, a) = socket();
        let invite = format!(
            "INVITE sip:u{n}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKinv{n}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:u{n}@127.0.0.1>\r\n\
             Call-ID: call{n}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{a}>\r\n\
             Content-Length: 0\r\n\r\n"
        );
        alice.send_to(invite.as_bytes(), proxy).unwrap();
        let at_bob = recv(bob);
        assert_eq!(first_line(&at_bob), format!("INVITE sip:u{n}@{b} SIP/2.0"));
        let route = header(&at_bob, "Record-Route");
        assert_eq!(route, [format!("<sip:{proxy};lr>")], "{at_bob}");
        bob.send_to(answer(&at_bob, "180 Ringing", "b", "").as_bytes(), proxy)
            .unwrap();
        let ringing = recv_past_trying(&alice);
        assert_eq!(first_line(&ringing), "SIP/2.0 180 Ringing", "{ringing}");
        let contact = format!("Contact: <sip:u{n}@{b}>\r\n");
        bob.send_to(answer(&at_bob, "200 OK", "b", &contact).as_bytes(), proxy)
            .unwrap();
        let ok = recv_past_trying(&alice);
        assert_eq!(first_line(&ok), "SIP/2.0 200 OK", "{ok}");
        assert_eq!(header(&ok, "CSeq"), ["1 INVITE"]);
        assert_eq!(header(&ok, "To"), [format!("<sip:u{n}@127.0.0.1>;tag=b")]);
        assert_eq!(
            header(&ok, "Via"),
            [format!("SIP/2.0/UDP {a};branch=z9hG4bKinv{n}")]
        );
        let in_dialog = |method: &str, cseq: u32| {
            format!(
                "{method} sip:u{n}@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bK{method}{n}\r\n\
                 Route: {}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a\r\n\
                 To: <sip:u{n}@127.0.0.1>;tag=b\r\nCall-ID: call{n}\r\nCSeq: {cseq} {method}\r\n\
                 Content-Length: 0\r\n\r\n",
                route[0]
            )
        };
        alice
            .send_to(in_dialog("ACK", 1).as_bytes(), proxy)
            .unwrap();
        assert_eq!(first_line(&recv(bob)), format!("ACK sip:u{n}@{b} SIP/2.0"));
        alice
            .send_to(in_dialog("BYE", 2).as_bytes(), proxy)
            .unwrap();
        let bye = recv(bob);
        assert_eq!(first_line(&bye), format!("BYE sip:u{n}@{b} SIP/2.0"));
        bob.send_to(answer(&bye, "200 OK", "b", "").as_bytes(), proxy)
            .unwrap();
        let ok = recv_past_trying(&alice);
        assert_eq!(first_line(&ok), "SIP/2.0 200 OK", "{ok}");
        assert_eq!(header(&ok, "CSeq"), ["2 BYE"]);
    }

    assert_eq!(serve.terminate(), Some(0));
    let log = std::fs::read_to_string(dir.join(format!("serve-{port}.log"))).unwrap();
    assert!(log.contains("; 2 workers"), "{log}");
    assert!(log.contains("SIGTERM"), "{log}");

    // Every binding, written through either worker, is in the one database.
    let port = 26711;
    let listen = format!("udp:127.0.0.1:{port}");
    let args = ["--listen", &listen, "--workers", "2", "--db", &db];
    let serve = common::Serve::start(port, &args, &dir);
    assert_eq!(serve.terminate(), Some(0));
    let log = std::fs::read_to_string(dir.join(format!("serve-{port}.log"))).unwrap();
    assert!(log.contains(&format!("({CALLS} restored)")), "{log}");
}
