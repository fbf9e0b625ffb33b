//! Seed inputs for `handle_input` that a fuzzer would hardly find alone: whole call flows,
//! where every response from Bob matches the branch the element put on the request it
//! forwarded, and every REGISTER or INVITE retry carries credentials computed from the nonce
//! of the challenge. They are built by running the target's own element, so they follow it
//! when it changes; `fuzz/seeds/handle_input/` holds them as files (`tests/replay.rs` checks
//! that those are current, and writes them with `WRITE_SEEDS=1`).

use trapezoid_core::auth::{compute_response, Algorithm};
use trapezoid_core::message::{self, HeaderName, Message};
use trapezoid_core::Transmit;

use crate::{flags, Driver, Limits, SEPARATOR};

/// Control bytes: who sends a datagram, over what.
const ALICE: u8 = 0;
const BOB: u8 = 0b010;
const BOB_TCP: u8 = 0b011;

/// Runs the element as the target will, recording the input that does the same.
struct Recorder {
    driver: Driver,
    input: Vec<u8>,
}

impl Recorder {
    fn new(flags: u8) -> Self {
        let mut driver = Driver::new(flags);
        driver.sent = Some(Vec::new());
        // The flags byte always, so that a first datagram's control byte is not taken for it.
        Recorder {
            driver,
            input: vec![flags],
        }
    }

    /// Delivers `text` (LF line ends become CRLF); what the element sent.
    fn send(&mut self, control: u8, text: &str) -> Sent {
        let bytes = crlf(text);
        self.send_bytes(control, &bytes)
    }

    fn send_bytes(&mut self, control: u8, bytes: &[u8]) -> Sent {
        if self.input.len() > 1 {
            self.input.extend_from_slice(SEPARATOR);
        }
        if control != ALICE {
            self.input.push(control);
        }
        self.input.extend_from_slice(bytes);
        self.driver.datagram(control, bytes);
        Sent(std::mem::take(
            self.driver.sent.as_mut().expect("recording"),
        ))
    }
}

/// What one datagram made the element send.
struct Sent(Vec<Transmit>);

impl Sent {
    /// The message sent whose start line begins with `start`, the `nth` of them.
    fn find(&self, start: &str, nth: usize) -> Message {
        let t = self
            .0
            .iter()
            .filter(|t| t.bytes.starts_with(start.as_bytes()))
            .nth(nth)
            .unwrap_or_else(|| panic!("nothing sent starting with {start}: {:?}", self.0));
        Message::parse(&t.bytes, &Limits::default()).expect("the element's own output")
    }
}

fn crlf(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

/// What a UA answers to `req` (§8.2.6.2), Record-Route copied (§12.1.1).
fn answer(req: &Message, status: u16, extra: &[(&str, &str)]) -> Vec<u8> {
    let rr: Vec<&str> = req.values(&HeaderName::RecordRoute).collect();
    let mut headers: Vec<(&str, &str)> = rr.iter().map(|v| ("Record-Route", *v)).collect();
    headers.extend_from_slice(extra);
    message::response(
        req,
        status,
        message::reason_phrase(status),
        (status != 100).then_some("b0b"),
        None,
        None,
        &headers,
        b"",
    )
}

const SDP: &str = "v=0\no=alice 2890844526 2890844526 IN IP4 192.0.2.101\ns=-\n\
c=IN IP4 192.0.2.101\nt=0 0\nm=audio 49172 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n";

/// Alice's request to `uri` outside a dialog.
fn alice(method: &str, uri: &str, branch: &str, cseq: u32, extra: &str) -> String {
    let body = if method == "INVITE" { SDP } else { "" };
    let len = body.replace('\n', "\r\n").len();
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\n"
    };
    format!(
        "{method} {uri} SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.101:5060;branch={branch};rport\n\
         Max-Forwards: 70\n\
         From: Alice <sip:alice@example.com>;tag=9fxced76sl\n\
         To: <{uri}>\n\
         Call-ID: {branch}@192.0.2.101\n\
         CSeq: {cseq} {method}\n\
         Contact: <sip:alice@192.0.2.101>\n\
         {extra}{ctype}Content-Length: {len}\n\n{body}"
    )
}

/// Alice's request inside the dialog Bob answered: to his Contact, through the route set.
fn in_dialog(method: &str, call: &str, route: &str, branch: &str, cseq: u32) -> String {
    format!(
        "{method} sip:bob@192.0.2.201 SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.101:5060;branch={branch}\n\
         Max-Forwards: 70\n\
         Route: {route}\n\
         From: Alice <sip:alice@example.com>;tag=9fxced76sl\n\
         To: <sip:bob@example.com>;tag=b0b\n\
         Call-ID: {call}@192.0.2.101\n\
         CSeq: {cseq} {method}\n\
         Content-Length: 0\n\n"
    )
}

/// The ACK for a non-2xx final response `to` Alice's INVITE sent with `branch` (§17.1.1.3).
fn ack_non_2xx(uri: &str, branch: &str, to: &str, cseq: u32) -> String {
    format!(
        "ACK {uri} SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.101:5060;branch={branch};rport\n\
         Max-Forwards: 70\n\
         From: Alice <sip:alice@example.com>;tag=9fxced76sl\n\
         To: {to}\n\
         Call-ID: {branch}@192.0.2.101\n\
         CSeq: {cseq} ACK\n\
         Content-Length: 0\n\n"
    )
}

/// Digest credentials for `challenge` (the first WWW- or Proxy-Authenticate value).
fn credentials(challenge: &str, user: &str, password: &str, method: &str, uri: &str) -> String {
    let param = |name: &str| -> String {
        let start = challenge
            .find(&format!("{name}=\""))
            .map(|i| i + name.len() + 2)
            .unwrap_or_else(|| panic!("no {name} in {challenge}"));
        let end = challenge[start..].find('"').expect("a closing quote");
        challenge[start..start + end].to_owned()
    };
    let (realm, nonce) = (param("realm"), param("nonce"));
    let alg = if challenge.contains("SHA-256") {
        Algorithm::Sha256
    } else {
        Algorithm::Md5
    };
    let response = compute_response(
        alg,
        user,
        &realm,
        password,
        method,
        uri,
        &nonce,
        Some("auth"),
        Some("00000001"),
        Some("0a4f113b"),
    );
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"{response}\", \
         algorithm={}",
        alg.as_str()
    )
}

/// Alice calls Bob, who rings and answers on his UDP device; the TCP one is cancelled and
/// says 487; Alice acknowledges, then hangs up.
fn call() -> Vec<u8> {
    let mut r = Recorder::new(0);
    let sent = r.send(
        ALICE,
        &alice("INVITE", "sip:bob@example.com", "z9hG4bKcall", 1, ""),
    );
    let (udp, tcp) = (
        sent.find("INVITE sip:bob@192.0.2.201 ", 0),
        sent.find("INVITE sip:bob@192.0.2.202", 0),
    );
    let contact = [("Contact", "<sip:bob@192.0.2.201>")];
    r.send_bytes(BOB, &answer(&udp, 100, &[]));
    r.send_bytes(BOB_TCP, &answer(&tcp, 100, &[]));
    r.send_bytes(BOB, &answer(&udp, 180, &contact));
    let sent = r.send_bytes(BOB, &answer(&udp, 200, &contact));
    let cancel = sent.find("CANCEL", 0);
    r.send_bytes(BOB_TCP, &answer(&cancel, 200, &[]));
    r.send_bytes(BOB_TCP, &answer(&tcp, 487, &[]));
    let route = udp.value(&HeaderName::RecordRoute).expect("Record-Route");
    r.send(
        ALICE,
        &in_dialog("ACK", "z9hG4bKcall", route, "z9hG4bKack", 1),
    );
    let sent = r.send(
        ALICE,
        &in_dialog("BYE", "z9hG4bKcall", route, "z9hG4bKbye", 2),
    );
    r.send_bytes(BOB, &answer(&sent.find("BYE", 0), 200, &[]));
    r.input
}

/// Alice calls Bob and cancels while it rings; both devices say 487, Alice acknowledges.
fn cancel() -> Vec<u8> {
    let mut r = Recorder::new(0);
    let uri = "sip:bob@example.com";
    let sent = r.send(ALICE, &alice("INVITE", uri, "z9hG4bKcnl", 1, ""));
    let (udp, tcp) = (
        sent.find("INVITE sip:bob@192.0.2.201 ", 0),
        sent.find("INVITE sip:bob@192.0.2.202", 0),
    );
    r.send_bytes(
        BOB,
        &answer(&udp, 180, &[("Contact", "<sip:bob@192.0.2.201>")]),
    );
    r.send_bytes(BOB_TCP, &answer(&tcp, 100, &[]));
    let sent = r.send(ALICE, &alice("CANCEL", uri, "z9hG4bKcnl", 1, ""));
    let cancels = [sent.find("CANCEL", 0), sent.find("CANCEL", 1)];
    for c in &cancels {
        let control = if c.top_via().is_some_and(|v| v.transport == "TCP") {
            BOB_TCP
        } else {
            BOB
        };
        r.send_bytes(control, &answer(c, 200, &[]));
    }
    r.send_bytes(BOB, &answer(&udp, 487, &[]));
    let sent = r.send_bytes(BOB_TCP, &answer(&tcp, 487, &[]));
    let to = sent.find("SIP/2.0 487", 0);
    let to = to.value(&HeaderName::To).expect("To");
    r.send(ALICE, &ack_non_2xx(uri, "z9hG4bKcnl", to, 1));
    r.input
}

/// Bob registers: challenged, then with credentials; then a refresh removes every binding.
fn register() -> Vec<u8> {
    let mut r = Recorder::new(0);
    let uri = "sip:example.com";
    let register = |branch: &str, cseq: u32, extra: &str| {
        format!(
            "REGISTER {uri} SIP/2.0\n\
             Via: SIP/2.0/UDP 192.0.2.201:5060;branch={branch}\n\
             Max-Forwards: 70\n\
             From: Bob <sip:bob@example.com>;tag=a73kszlfl\n\
             To: Bob <sip:bob@example.com>\n\
             Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.201\n\
             CSeq: {cseq} REGISTER\n\
             {extra}Content-Length: 0\n\n"
        )
    };
    // One digest round: the request without credentials is challenged (401), the same
    // request with them (next branch and CSeq) gets its 200.
    let mut cseq = 0;
    let mut round = |r: &mut Recorder, headers: &str| {
        cseq += 1;
        let sent = r.send(BOB, &register(&format!("z9hG4bKreg{cseq}"), cseq, headers));
        let challenge = sent.find("SIP/2.0 401", 0);
        let challenge = challenge
            .value(&HeaderName::WwwAuthenticate)
            .expect("a challenge");
        let auth = credentials(challenge, "bob", "secret", "REGISTER", uri);
        cseq += 1;
        let with = format!("Authorization: {auth}\n{headers}");
        let sent = r.send(BOB, &register(&format!("z9hG4bKreg{cseq}"), cseq, &with));
        sent.find("SIP/2.0 200", 0);
    };
    round(&mut r, "Contact: <sip:bob@192.0.2.201>;expires=3600\n");
    round(&mut r, "Contact: *\nExpires: 0\n");
    r.input
}

/// With INVITEs challenged: 407, ACK, the INVITE again with credentials, forwarded.
fn auth_invite() -> Vec<u8> {
    let mut r = Recorder::new(flags::AUTH_INVITE);
    let uri = "sip:bob@example.com";
    let sent = r.send(ALICE, &alice("INVITE", uri, "z9hG4bKai1", 1, ""));
    let challenge = sent.find("SIP/2.0 407", 0);
    let to = challenge.value(&HeaderName::To).expect("To");
    r.send(ALICE, &ack_non_2xx(uri, "z9hG4bKai1", to, 1));
    let challenge = challenge
        .value(&HeaderName::ProxyAuthenticate)
        .expect("a challenge");
    let auth = credentials(challenge, "alice", "wonderland", "INVITE", uri);
    let extra = format!("Proxy-Authorization: {auth}\n");
    let sent = r.send(ALICE, &alice("INVITE", uri, "z9hG4bKai2", 2, &extra));
    sent.find("INVITE sip:bob@192.0.2.201 ", 0);
    r.input
}

/// As a redirect server: 302 with Bob's contacts, ACK; an OPTIONS over TCP.
fn redirect() -> Vec<u8> {
    let mut r = Recorder::new(flags::REDIRECT);
    let uri = "sip:bob@example.com";
    let sent = r.send(ALICE, &alice("INVITE", uri, "z9hG4bKrd", 1, ""));
    let to = sent.find("SIP/2.0 302", 0);
    let to = to.value(&HeaderName::To).expect("To");
    r.send(ALICE, &ack_non_2xx(uri, "z9hG4bKrd", to, 1));
    r.send(
        0b001,
        &alice("OPTIONS", "sip:proxy.example.com", "z9hG4bKop", 1, ""),
    );
    r.input
}

/// With DNS: Carol's contact is a name that resolves; a Route to one that does not.
fn dns() -> Vec<u8> {
    let mut r = Recorder::new(flags::DNS);
    let sent = r.send(
        ALICE,
        &alice("MESSAGE", "sip:carol@example.com", "z9hG4bKdn1", 1, ""),
    );
    let fwd = sent.find("MESSAGE", 0);
    r.send_bytes(BOB, &answer(&fwd, 200, &[]));
    let extra = "Route: <sip:nowhere.example.org;lr>\n";
    r.send(
        ALICE,
        &alice("INVITE", "sip:dave@example.org", "z9hG4bKdn2", 1, extra),
    );
    r.input
}

/// Every seed, by name.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("call", call()),
        ("cancel", cancel()),
        ("register", register()),
        ("auth-invite", auth_invite()),
        ("redirect", redirect()),
        ("dns", dns()),
    ]
}
