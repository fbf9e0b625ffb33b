//! Which transport a request leaves on (RFC 3263 §4.1, RFC 5626 §5.3) and what that
//! changes: the Via token, and no retransmission over a reliable transport (§17.1.1.2).

use std::net::SocketAddr;
use std::time::Duration;

use super::util::*;
use crate::{Transmit, Transport};

fn receive(h: &mut Harness, text: &str, remote: &str, transport: Transport) -> Vec<Transmit> {
    h.receive_over(&crlf(text), remote.parse().unwrap(), transport)
        .transmits
}

fn invite(branch: &str) -> String {
    format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.101:5060;branch={branch}\n\
         Max-Forwards: 70\n\
         From: <sip:alice@atlanta.example.com>;tag=a\n\
         To: <sip:bob@biloxi.example.com>\n\
         Call-ID: {branch}\n\
         CSeq: 1 INVITE\n\
         Content-Length: 0\n\n"
    )
}

#[test]
fn a_binding_registered_over_tcp_is_reached_over_its_connection() {
    let mut h = Harness::open();
    // The phone's connection comes from an ephemeral port; its Contact names its listener.
    let tcp_peer = "192.0.2.201:49152";
    let ok = receive(
        &mut h,
        &register(
            "z9hG4bKr1",
            1,
            "Contact: <sip:bob@192.0.2.201;transport=tcp>\n",
        ),
        tcp_peer,
        Transport::Tcp,
    );
    assert_eq!(ok[0].transport, Transport::Tcp);
    assert_eq!(ok[0].remote, tcp_peer.parse::<SocketAddr>().unwrap());
    let out = receive(
        &mut h,
        &invite("z9hG4bKi1"),
        "192.0.2.101:5060",
        Transport::Udp,
    );
    // 100 Trying to the caller over UDP, the INVITE to Bob over the TCP connection.
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(out[0].transport, Transport::Udp);
    let fwd = &out[1];
    assert_eq!(fwd.transport, Transport::Tcp);
    assert_eq!(fwd.remote, tcp_peer.parse::<SocketAddr>().unwrap());
    let text = String::from_utf8(fwd.bytes.clone()).unwrap();
    assert!(
        text.contains("\r\nVia: SIP/2.0/TCP ss2.biloxi.example.com;branch=z9hG4bK"),
        "{text}"
    );
    // §17.1.1.2: no Timer A over a reliable transport: nothing is sent again.
    let later = h.advance(Duration::from_secs(4));
    assert!(later.transmits.is_empty(), "{later:#?}");
}

#[test]
fn a_contact_asking_for_tcp_is_reached_over_tcp_and_a_udp_one_is_retransmitted() {
    let mut h = Harness::open();
    receive(
        &mut h,
        &register(
            "z9hG4bKr1",
            1,
            "Contact: <sip:bob@192.0.2.201:5070;transport=tcp>;q=1.0, <sip:bob@192.0.2.202:5070>;q=0.5\n",
        ),
        BOB,
        Transport::Udp,
    );
    let out = receive(
        &mut h,
        &invite("z9hG4bKi1"),
        "192.0.2.101:5060",
        Transport::Udp,
    );
    let fwd = &out[1];
    assert_eq!(fwd.transport, Transport::Tcp);
    assert_eq!(
        fwd.remote,
        "192.0.2.201:5070".parse::<SocketAddr>().unwrap()
    );
    assert!(String::from_utf8_lossy(&fwd.bytes).contains("Via: SIP/2.0/TCP "));
}
