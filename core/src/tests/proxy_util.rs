//! The parties around the proxy in the proxy tests, and the messages they send.
//!
//! The proxy is ss2.biloxi.example.com on [`REGISTRAR`]; Alice calls from atlanta.example.com
//! at [`ALICE`]; Bob's devices are at [`BOB`] and [`BOB2`]; chicago.example.com's proxy is at
//! [`CHICAGO`] (reached through the static host table).

use std::net::SocketAddr;
use std::time::Duration;

use super::util::*;
use crate::message::reason_phrase;
use crate::Config;

/// Alice's UA, the caller.
pub(crate) const ALICE: &str = "192.0.2.101:5060";
/// Bob's second device.
pub(crate) const BOB2: &str = "192.0.2.202:5060";
/// The proxy of chicago.example.com.
pub(crate) const CHICAGO: &str = "192.0.2.150:5060";
/// The Route value naming the proxy (what its Record-Route puts in a route set).
pub(crate) const ROUTE_ME: &str = "Route: <sip:ss2.biloxi.example.com;lr>\n";

pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The biloxi proxy with Bob registered at `contacts` (a Contact header value) and the
/// REGISTER transaction over, so that every transaction the test sees is its own.
pub(crate) fn registered(contacts: &str) -> Harness {
    registered_with(biloxi(), contacts)
}

pub(crate) fn registered_with(mut config: Config, contacts: &str) -> Harness {
    config
        .hosts
        .push(("chicago.example.com".into(), addr(CHICAGO)));
    let mut h = Harness::new(config);
    let contact = format!("Contact: {contacts}\n");
    assert_eq!(
        h.receive(&register("z9hG4bKreg", 1, &contact)).status(),
        200
    );
    // Timer J (64*T1) ends the REGISTER's server transaction.
    h.advance(Duration::from_secs(32));
    assert_eq!(h.proxy.transaction_count(), 0);
    h
}

impl Harness {
    /// Delivers `text` (LF line ends become CRLF) from `remote` over UDP.
    pub(crate) fn recv_from(&mut self, remote: &str, text: &str) -> Drained {
        self.receive_bytes(&crlf(text), addr(remote))
    }

    /// Moves the clock by `ms` milliseconds.
    pub(crate) fn wait_ms(&mut self, ms: u64) -> Drained {
        self.advance(Duration::from_millis(ms))
    }

    /// Runs the clock from timeout to timeout for `ms` milliseconds; every datagram sent,
    /// as (milliseconds from the start, destination and start line).
    pub(crate) fn run_for(&mut self, ms: u64) -> Vec<(u64, String)> {
        let start = self.now;
        let end = start + Duration::from_millis(ms);
        let mut sent = Vec::new();
        let mut next = self.advance(Duration::ZERO).timeout;
        while let Some(at) = next.filter(|at| *at <= end) {
            let out = self.advance(at - self.now);
            let t = (self.now - start).as_millis() as u64;
            sent.extend(out.ladder().into_iter().map(|l| (t, l)));
            next = out.timeout;
        }
        self.advance(end - self.now);
        sent
    }
}

impl Drained {
    /// One line per datagram sent, "destination start-line", sorted: the order of datagrams
    /// produced by one input means nothing on the wire.
    pub(crate) fn ladder(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .transmits
            .iter()
            .map(|t| {
                let text = String::from_utf8_lossy(&t.bytes).into_owned();
                let first = text.split("\r\n").next().unwrap_or("").to_owned();
                format!("{} {first}", t.remote)
            })
            .collect();
        lines.sort();
        lines
    }

    /// The one datagram sent to `remote`, as text.
    pub(crate) fn to(&self, remote: &str) -> String {
        let to: Vec<_> = self
            .transmits
            .iter()
            .filter(|t| t.remote == addr(remote))
            .collect();
        assert_eq!(to.len(), 1, "expected one datagram to {remote}: {self:#?}");
        String::from_utf8(to[0].bytes.clone()).unwrap()
    }
}

/// A request from Alice to Bob's AOR, outside any dialog: CSeq 1, no To tag.
pub(crate) fn alice(method: &str, branch: &str, extra: &str) -> String {
    format!(
        "{method} sip:bob@biloxi.example.com SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.101:5060;branch={branch}\n\
         Max-Forwards: 70\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\n\
         To: Bob <sip:bob@biloxi.example.com>\n\
         Call-ID: 3848276298220188511@atlanta.example.com\n\
         CSeq: 1 {method}\n\
         Contact: <sip:alice@192.0.2.101>\n\
         {extra}Content-Length: 0\n\n"
    )
}

/// Alice's initial INVITE.
pub(crate) fn invite(branch: &str) -> String {
    alice("INVITE", branch, "")
}

/// Alice's CANCEL of the INVITE sent with `branch` (§9.1: same branch, Request-URI, To).
pub(crate) fn cancel(branch: &str) -> String {
    format!(
        "CANCEL sip:bob@biloxi.example.com SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.101:5060;branch={branch}\n\
         Max-Forwards: 70\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\n\
         To: Bob <sip:bob@biloxi.example.com>\n\
         Call-ID: 3848276298220188511@atlanta.example.com\n\
         CSeq: 1 CANCEL\n\
         Content-Length: 0\n\n"
    )
}

/// Alice's ACK for a non-2xx final response to the INVITE sent with `branch`, whose To
/// header was `to` (§17.1.1.3: same branch, the response's To).
pub(crate) fn ack_non_2xx(branch: &str, to: &str) -> String {
    format!(
        "ACK sip:bob@biloxi.example.com SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.101:5060;branch={branch}\n\
         Max-Forwards: 70\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\n\
         To: {to}\n\
         Call-ID: 3848276298220188511@atlanta.example.com\n\
         CSeq: 1 ACK\n\
         Content-Length: 0\n\n"
    )
}

/// A request from Alice inside the dialog Bob answered from `sip:bob@192.0.2.201` with To
/// tag 314159, through the proxy's Record-Route.
pub(crate) fn in_dialog(method: &str, branch: &str, cseq: u32) -> String {
    format!(
        "{method} sip:bob@192.0.2.201 SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.101:5060;branch={branch}\n\
         Max-Forwards: 70\n\
         {ROUTE_ME}\
         From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\n\
         To: Bob <sip:bob@biloxi.example.com>;tag=314159\n\
         Call-ID: 3848276298220188511@atlanta.example.com\n\
         CSeq: {cseq} {method}\n\
         Content-Length: 0\n\n"
    )
}

/// The response a UA sends to `request` (text as received): every Via, From, To (with
/// `to_tag` added unless the status is 100 or To has one), Call-ID and CSeq copied
/// (§8.2.6.2), then `extra` header lines.
pub(crate) fn answer(request: &str, status: u16, to_tag: &str, extra: &str) -> String {
    let mut out = format!("SIP/2.0 {status} {}\n", reason_phrase(status));
    for line in request.split("\r\n").flat_map(|l| l.split('\n')) {
        if line.is_empty() {
            break;
        }
        let name = line.split(':').next().unwrap_or("").trim();
        match name {
            "Via" | "From" | "Call-ID" | "CSeq" => {
                out.push_str(line);
                out.push('\n');
            }
            "To" => {
                out.push_str(line);
                if status != 100 && !line.contains(";tag=") {
                    out.push_str(";tag=");
                    out.push_str(to_tag);
                }
                out.push('\n');
            }
            _ => {}
        }
    }
    out.push_str(extra);
    out.push_str("Content-Length: 0\n\n");
    out
}

/// The branch parameter of the top Via of a message text.
pub(crate) fn branch(msg: &str) -> String {
    let via = &header_lines(msg, "Via")[0];
    let start = via.find("branch=").expect("a branch") + 7;
    via[start..]
        .split([';', ',', ' '])
        .next()
        .unwrap()
        .to_owned()
}

/// The value of the one header `name` of a message text.
pub(crate) fn header(msg: &str, name: &str) -> String {
    let values = header_lines(msg, name);
    assert_eq!(values.len(), 1, "one {name} in {msg}");
    values[0].clone()
}
