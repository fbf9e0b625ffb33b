//! A driver for tests: one element, one virtual clock, a UA address.

use std::net::SocketAddr;
use std::time::Duration;

use crate::auth::{compute_response, Algorithm};
use crate::time::Instant;
use crate::{Config, Datagram, Event, Input, InputKind, Output, Proxy, Transmit, Transport};

pub(crate) const REGISTRAR: &str = "192.0.2.222:5060";
pub(crate) const BOB: &str = "192.0.2.201:5060";

/// What one input produced.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    pub(crate) transmits: Vec<Transmit>,
    pub(crate) events: Vec<Event>,
    pub(crate) timeout: Option<Instant>,
}

impl Drained {
    /// The single response sent, as text.
    pub(crate) fn response(&self) -> String {
        assert_eq!(self.transmits.len(), 1, "expected one response: {self:#?}");
        String::from_utf8(self.transmits[0].bytes.clone()).unwrap()
    }

    /// Its status code.
    pub(crate) fn status(&self) -> u16 {
        self.response()[8..11].parse().unwrap()
    }
}

pub(crate) struct Harness {
    pub(crate) proxy: Proxy,
    pub(crate) now: Instant,
}

impl Harness {
    pub(crate) fn new(config: Config) -> Self {
        Harness {
            proxy: Proxy::new(config),
            now: Instant::ZERO,
        }
    }

    /// A registrar for biloxi.example.com on [`REGISTRAR`], open (no auth).
    pub(crate) fn open() -> Self {
        Self::new(biloxi())
    }

    fn drain(&mut self) -> Drained {
        let mut d = Drained::default();
        loop {
            match self.proxy.poll_output() {
                Output::Transmit(t) => d.transmits.push(t),
                Output::Event(e) => d.events.push(e),
                Output::Timeout(at) => {
                    d.timeout = at;
                    return d;
                }
            }
        }
    }

    /// Delivers `text` (LF line ends become CRLF) from [`BOB`] over UDP.
    pub(crate) fn receive(&mut self, text: &str) -> Drained {
        let bytes = crlf(text);
        self.receive_bytes(&bytes, BOB.parse().unwrap())
    }

    pub(crate) fn receive_bytes(&mut self, bytes: &[u8], remote: SocketAddr) -> Drained {
        self.receive_over(bytes, remote, Transport::Udp)
    }

    /// Delivers `bytes` from `remote` over `transport`.
    pub(crate) fn receive_over(
        &mut self,
        bytes: &[u8],
        remote: SocketAddr,
        transport: Transport,
    ) -> Drained {
        self.input(InputKind::Datagram(Datagram {
            local: REGISTRAR.parse().unwrap(),
            remote,
            transport,
            bytes,
        }))
    }

    /// Feeds any input at the current time and drains the outputs.
    pub(crate) fn input(&mut self, kind: InputKind<'_>) -> Drained {
        self.proxy.handle_input(Input {
            now: self.now,
            kind,
        });
        self.drain()
    }

    /// Moves the clock and delivers a timeout.
    pub(crate) fn advance(&mut self, d: Duration) -> Drained {
        self.now = self.now + d;
        self.proxy.handle_input(Input {
            now: self.now,
            kind: InputKind::Timeout,
        });
        self.drain()
    }
}

pub(crate) fn biloxi() -> Config {
    let mut c = Config::new("biloxi.example.com");
    c.seed = 42;
    c.host_names = vec!["ss2.biloxi.example.com".into()];
    c.local_addrs = vec![REGISTRAR.parse().unwrap()];
    c
}

/// LF → CRLF, so tests can write messages as plain text.
pub(crate) fn crlf(text: &str) -> Vec<u8> {
    text.replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

/// A REGISTER from Bob with the given branch, CSeq and extra header lines.
pub(crate) fn register(branch: &str, cseq: u32, extra: &str) -> String {
    format!(
        "REGISTER sip:biloxi.example.com SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.201:5060;branch={branch}\n\
         Max-Forwards: 70\n\
         From: Bob <sip:bob@biloxi.example.com>;tag=456248\n\
         To: Bob <sip:bob@biloxi.example.com>\n\
         Call-ID: 843817637684230@998sdasdh09\n\
         CSeq: {cseq} REGISTER\n\
         {extra}Content-Length: 0\n\n"
    )
}

/// The values of header `name` in a response text, one per line.
pub(crate) fn header_lines(response: &str, name: &str) -> Vec<String> {
    let prefix = format!("{name}: ");
    response
        .split("\r\n")
        .filter_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

/// The `nonce` of a challenge line.
pub(crate) fn nonce_of(challenge: &str) -> String {
    let start = challenge.find("nonce=\"").unwrap() + 7;
    let end = challenge[start..].find('"').unwrap();
    challenge[start..start + end].to_owned()
}

/// An Authorization line for a REGISTER to biloxi.example.com answering `nonce` with count
/// `nc` (qop=auth), LF-terminated as the test messages are.
pub(crate) fn authorization(
    user: &str,
    password: &str,
    alg: Algorithm,
    nonce: &str,
    nc: &str,
) -> String {
    let uri = "sip:biloxi.example.com";
    let response = compute_response(
        alg,
        user,
        "biloxi.example.com",
        password,
        "REGISTER",
        uri,
        nonce,
        Some("auth"),
        Some(nc),
        Some("0a4f113b"),
    );
    format!(
        "Authorization: Digest username=\"{user}\", realm=\"biloxi.example.com\", nonce=\"{nonce}\", \
         uri=\"{uri}\", qop=auth, nc={nc}, cnonce=\"0a4f113b\", response=\"{response}\", algorithm={alg}\n"
    )
}
